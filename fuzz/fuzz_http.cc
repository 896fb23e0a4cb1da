// libFuzzer harness: HTTP request parsing in the server every service uses (core/http: Boost.Beast
// parser under the header/body caps, header map, path), with the JSON body read as `serve` reads it.
// One server on 127.0.0.1 per process; each input is sent raw on a fresh connection, the write side is
// shut, and the reply is read to the end, so the request is fully handled before the next input.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>

#include "core/http/server.h"
#include "core/json.h"

namespace {

int Port() {
  static std::unique_ptr<k2::http::Server> server = [] {
    k2::http::ServerOptions o;
    o.bind = "127.0.0.1";
    o.port = 0;
    o.max_concurrent = 2;
    o.max_body_bytes = 1 << 20;
    o.max_header_bytes = 16 << 10;
    o.header_timeout_s = 2;
    o.body_timeout_s = 2;
    auto s = k2::http::Server::Start(o, [](const k2::http::Request& r) {
      (void)r.Header("Content-Type");
      (void)r.Path();
      auto j = k2::ParseJson(r.body, "request body");
      return j.ok() ? k2::http::Response::Json(200, "{}") : k2::http::Response::Text(400, j.status().message());
    });
    if (!s.ok()) __builtin_trap();
    return std::move(*s);
  }();
  return server->port();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  int port = Port();
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return 0;
  }
  size_t off = 0;
  while (off < size) {
    ssize_t n = ::send(fd, data + off, size - off, MSG_NOSIGNAL);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
  ::shutdown(fd, SHUT_WR);
  char buf[4096];
  while (::recv(fd, buf, sizeof buf, 0) > 0) {
  }
  ::close(fd);
  return 0;
}
