// A minimal blocking HTTP/1.1 client for the server and service tests (loopback only): one request per
// connection, reads until the server closes.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

namespace k2::http::testing {

struct Reply {
  int status = 0;       // 0: connection failed
  std::string head, body;
};

inline int Connect(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

inline Reply ReadReply(int fd, int timeout_ms = 30000) {
  Reply r;
  std::string all;
  char buf[65536];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) break;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    all.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  size_t sep = all.find("\r\n\r\n");
  if (sep == std::string::npos || all.size() < 12) return r;
  r.head = all.substr(0, sep);
  r.body = all.substr(sep + 4);
  r.status = std::atoi(all.c_str() + 9);
  return r;
}

inline Reply Send(int port, const std::string& raw, int timeout_ms = 30000) {
  int fd = Connect(port);
  if (fd < 0) return {};
  size_t off = 0;
  while (off < raw.size()) {
    ssize_t n = ::send(fd, raw.data() + off, raw.size() - off, MSG_NOSIGNAL);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
  return ReadReply(fd, timeout_ms);
}

inline Reply Post(int port, const std::string& path, const std::string& body, const std::string& extra = "") {
  return Send(port, "POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + extra +
                        "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
}

inline Reply Get(int port, const std::string& path, const std::string& extra = "") {
  return Send(port, "GET " + path + " HTTP/1.1\r\nHost: x\r\n" + extra + "\r\n");
}

}  // namespace k2::http::testing
