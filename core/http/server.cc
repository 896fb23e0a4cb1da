// The bounded HTTP/1.1 server: POSIX sockets with poll() deadlines for I/O, Boost.Beast's incremental
// parser for requests and its status table for reason phrases.
#include "core/http/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>

#include <boost/beast/http.hpp>

namespace k2::http {

namespace beast_http = boost::beast::http;
using Clock = std::chrono::steady_clock;

std::string Request::Header(std::string_view name) const {
  std::string key(name);
  for (auto& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  auto it = headers.find(key);
  return it == headers.end() ? "" : it->second;
}

std::string Request::Path() const { return target.substr(0, target.find('?')); }

Response Response::Json(int status, const std::string& json_text) {
  Response r;
  r.status = status;
  r.headers.push_back({"Content-Type", "application/json"});
  r.body = json_text;
  return r;
}

Response Response::Text(int status, const std::string& text) {
  Response r;
  r.status = status;
  r.headers.push_back({"Content-Type", "text/plain; charset=utf-8"});
  r.body = text;
  return r;
}

Response Response::Sse(std::function<void(const ChunkWriter&)> producer) {
  Response r;
  r.headers.push_back({"Content-Type", "text/event-stream"});
  r.headers.push_back({"Cache-Control", "no-cache"});
  r.stream = std::move(producer);
  return r;
}

namespace {

// Sends all of `data` or gives up after `timeout_s` without progress.
bool SendAll(int fd, std::string_view data, double timeout_s) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      data.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{fd, POLLOUT, 0};
      int r = ::poll(&p, 1, static_cast<int>(timeout_s * 1000));
      if (r <= 0 || (p.revents & (POLLERR | POLLHUP))) return false;
      continue;
    }
    return false;
  }
  return true;
}

std::string StatusLine(int status) {
  auto reason = beast_http::obsolete_reason(beast_http::int_to_status(static_cast<unsigned>(status)));
  return "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason.data(), reason.size()) + "\r\n";
}

std::string Serialize(const Response& r, bool chunked) {
  std::string out = StatusLine(r.status);
  for (auto& [k, v] : r.headers) {
    std::string lk = k;
    for (auto& c : lk) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (lk == "content-length" || lk == "connection" || lk == "transfer-encoding") continue;
    // Header injection through handler-provided values is refused by dropping CR/LF.
    std::string clean;
    for (char c : v) if (c != '\r' && c != '\n') clean += c;
    out += k + ": " + clean + "\r\n";
  }
  if (chunked) {
    out += "Transfer-Encoding: chunked\r\n";
  } else {
    out += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
  }
  out += "Connection: close\r\n\r\n";
  if (!chunked) out += r.body;
  return out;
}

// Reads what is already there so that close() does not reset a client still sending (it would lose our
// error response).
void DrainAndClose(int fd) {
  ::shutdown(fd, SHUT_WR);
  char buf[4096];
  auto until = Clock::now() + std::chrono::milliseconds(200);
  while (Clock::now() < until) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) break;
    ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n <= 0) break;
  }
  ::close(fd);
}

std::string PeerName(const sockaddr_storage& ss) {
  char host[INET6_ADDRSTRLEN] = "?";
  int port = 0;
  if (ss.ss_family == AF_INET) {
    auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    ::inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
    port = ntohs(a->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    ::inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
    port = ntohs(a->sin6_port);
  }
  return std::string(host) + ":" + std::to_string(port);
}

}  // namespace

// A connection whose request is still arriving. Read by the acceptor thread alone, so a slow or stalled
// client costs a poll slot and its buffered bytes, never a worker; its deadlines count from accept.
struct Reading {
  int fd = -1;
  std::string peer;
  Clock::time_point accepted;
  std::unique_ptr<beast_http::request_parser<beast_http::string_body>> parser;
  std::string buf;
  int64_t charged = 0;  // bytes counted against the server's buffer budget
};

// A complete request waiting for a worker.
struct Ready {
  int fd = -1;
  std::string peer;
  beast_http::request<beast_http::string_body> msg;
  int64_t charged = 0;
};

// A connection we answered with an error: its output side is shut, what the client still sends is read
// and dropped for a moment, so that close() does not reset it before it has read our answer.
struct Closing {
  int fd = -1;
  Clock::time_point until;
};

struct Server::Impl {
  ServerOptions opt;
  Handler handler;
  int listen_fd = -1;
  int wake_pipe[2] = {-1, -1};  // wakes the acceptor on Stop()
  int port = 0;
  std::thread acceptor;
  std::vector<std::thread> workers;
  mutable std::mutex mu;
  std::condition_variable cv;
  std::deque<Ready> queue;
  bool stopping = false;
  std::atomic<bool> stopped{false};
  ServerStats st;
  // Bytes of requests being read, queued or handled: bounded so that many large bodies at once cannot
  // take the process's memory (per connection the caps are max_header_bytes + max_body_bytes).
  std::atomic<int64_t> buffered{0};
  int64_t buffer_budget = 0;
  std::vector<Reading> reading;  // acceptor thread only
  std::vector<Closing> closing;  // acceptor thread only

  void AcceptLoop();
  void WorkerLoop();
  void Accept();
  // Reads what arrived on reading[i]; true when the connection left the reading set.
  bool ReadSome(size_t i);
  void Fail(Reading& c, int status, const std::string& msg);
  void Serve(Ready& r);
};

void Server::Impl::Fail(Reading& c, int status, const std::string& msg) {
  {
    std::lock_guard<std::mutex> lk(mu);
    if (status != 429) ++st.bad_requests;
  }
  Response r = Response::Json(status, "{\"error\": \"" + msg + "\"}");
  if (status == 429) r.headers.push_back({"Retry-After", "1"});
  std::string out = Serialize(r, false);
  // One non-blocking attempt: an error answer is small and the socket's buffer is empty; a client that
  // does not read cannot hold the acceptor.
  (void)!::send(c.fd, out.data(), out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  ::shutdown(c.fd, SHUT_WR);
  closing.push_back({c.fd, Clock::now() + std::chrono::milliseconds(200)});
  c.fd = -1;
}

void Server::Impl::Accept() {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  int fd = ::accept4(listen_fd, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (fd < 0) {
    if (errno == EMFILE || errno == ENFILE) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return;
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  {
    std::lock_guard<std::mutex> lk(mu);
    ++st.accepted;
  }
  Reading c;
  c.fd = fd;
  c.peer = PeerName(ss);
  c.accepted = Clock::now();
  if (static_cast<int>(reading.size()) >= opt.max_connections) {
    {
      std::lock_guard<std::mutex> lk(mu);
      ++st.rejected_429;
    }
    Fail(c, 429, "too many requests: too many connections are still sending theirs");
    return;
  }
  c.parser = std::make_unique<beast_http::request_parser<beast_http::string_body>>();
  c.parser->header_limit(static_cast<std::uint32_t>(std::min<int64_t>(opt.max_header_bytes, UINT32_MAX)));
  c.parser->body_limit(static_cast<std::uint64_t>(opt.max_body_bytes));
  c.parser->eager(true);
  reading.push_back(std::move(c));
}

bool Server::Impl::ReadSome(size_t i) {
  Reading& c = reading[i];
  char tmp[16384];
  for (;;) {
    ssize_t n = ::recv(c.fd, tmp, sizeof tmp, MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return false;
    if (n <= 0) {  // the client went away before a complete request
      ::close(c.fd);
      c.fd = -1;
      return true;
    }
    if (buffered.load() + n > buffer_budget) {
      Fail(c, 503, "server busy: too many request bytes in flight");
      return true;
    }
    buffered += n;
    c.charged += n;
    c.buf.append(tmp, static_cast<size_t>(n));
    boost::system::error_code ec;
    while (!c.buf.empty() && !c.parser->is_done()) {
      size_t used = c.parser->put(boost::asio::buffer(c.buf.data(), c.buf.size()), ec);
      c.buf.erase(0, used);
      if (ec == beast_http::error::need_more) {
        ec = {};
        break;
      }
      if (ec || used == 0) break;
    }
    if (ec == beast_http::error::body_limit) {
      Fail(c, 413, "request body larger than " + std::to_string(opt.max_body_bytes) + " bytes");
      return true;
    }
    if (ec == beast_http::error::header_limit) {
      Fail(c, 431, "request header larger than " + std::to_string(opt.max_header_bytes) + " bytes");
      return true;
    }
    if (ec) {
      Fail(c, 400, "malformed request: " + ec.message());
      return true;
    }
    if (!c.parser->is_done()) continue;
    Ready r;
    r.fd = c.fd;
    r.peer = std::move(c.peer);
    r.msg = c.parser->release();
    r.charged = c.charged;
    c.charged = 0;
    std::unique_lock<std::mutex> lk(mu);
    if (stopping || static_cast<int>(queue.size()) >= opt.max_queue) {
      ++st.rejected_429;
      lk.unlock();
      buffered -= r.charged;
      Fail(c, 429, "too many requests: the queue is full");
      return true;
    }
    queue.push_back(std::move(r));
    st.queued = static_cast<int>(queue.size());
    lk.unlock();
    cv.notify_one();
    c.fd = -1;
    return true;
  }
}

void Server::Impl::AcceptLoop() {
  std::vector<pollfd> p;
  for (;;) {
    // Deadlines count from accept: the header must be complete within header_timeout_s and the whole
    // request within body_timeout_s, however the client paces its bytes.
    auto now = Clock::now();
    int timeout_ms = -1;
    auto bound = [&](Clock::time_point t) {
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t - now).count() + 1;
      ms = std::max<int64_t>(0, ms);
      if (timeout_ms < 0 || ms < timeout_ms) timeout_ms = static_cast<int>(std::min<int64_t>(ms, 60000));
    };
    for (size_t i = 0; i < reading.size();) {
      Reading& c = reading[i];
      const bool header = c.parser->is_header_done();
      const double limit = header ? opt.body_timeout_s : opt.header_timeout_s;
      auto deadline = c.accepted + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(limit));
      if (now >= deadline) {
        buffered -= c.charged;
        Fail(c, 408, "request timeout");
        reading[i] = std::move(reading.back());
        reading.pop_back();
        continue;
      }
      bound(deadline);
      ++i;
    }
    for (size_t i = 0; i < closing.size();) {
      if (now >= closing[i].until) {
        ::close(closing[i].fd);
        closing[i] = closing.back();
        closing.pop_back();
        continue;
      }
      bound(closing[i].until);
      ++i;
    }
    p.clear();
    p.push_back({listen_fd, POLLIN, 0});
    p.push_back({wake_pipe[0], POLLIN, 0});
    for (auto& c : reading) p.push_back({c.fd, POLLIN, 0});
    for (auto& c : closing) p.push_back({c.fd, POLLIN, 0});
    int r = ::poll(p.data(), static_cast<nfds_t>(p.size()), timeout_ms);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 || (p[1].revents & POLLIN)) break;
    // Back to front, so that removing reading[i] (swap with the last) keeps the indices before it valid.
    const size_t nr = reading.size();
    for (size_t k = closing.size(); k-- > 0;) {
      if (!p[2 + nr + k].revents) continue;
      char buf[4096];
      ssize_t n = ::recv(closing[k].fd, buf, sizeof buf, MSG_DONTWAIT);
      if (n <= 0 && !(n < 0 && (errno == EAGAIN || errno == EINTR))) {
        ::close(closing[k].fd);
        closing[k] = closing.back();
        closing.pop_back();
      }
    }
    for (size_t k = nr; k-- > 0;) {
      if (!p[2 + k].revents) continue;
      if (ReadSome(k)) {
        buffered -= reading[k].charged;  // closed or failed: what it held (0 once queued)
        reading[k] = std::move(reading.back());
        reading.pop_back();
      }
    }
    if (p[0].revents & POLLIN) Accept();
  }
  for (auto& c : reading) {
    buffered -= c.charged;
    ::close(c.fd);
  }
  reading.clear();
  for (auto& c : closing) ::close(c.fd);
  closing.clear();
}

void Server::Impl::WorkerLoop() {
  for (;;) {
    Ready item;
    {
      std::unique_lock<std::mutex> lk(mu);
      cv.wait(lk, [&] { return stopping || !queue.empty(); });
      if (queue.empty()) return;  // stopping and drained
      item = std::move(queue.front());
      queue.pop_front();
      st.queued = static_cast<int>(queue.size());
      ++st.in_flight;
    }
    Serve(item);
    const int64_t charged = item.charged;
    item = Ready{};
    buffered -= charged;
    // A large body leaves glibc holding its pages (the mmap threshold grows with each large free):
    // give them back so that a burst of large requests does not stay in the RSS.
    if (charged > (1 << 20)) ::malloc_trim(0);
    std::lock_guard<std::mutex> lk(mu);
    --st.in_flight;
    ++st.completed;
  }
}

void Server::Impl::Serve(Ready& ready) {
  const int fd = ready.fd;
  const std::string& peer = ready.peer;
  auto& msg = ready.msg;
  Request req;
  req.method = std::string(msg.method_string());
  req.target = std::string(msg.target());
  for (auto& f : msg) {
    std::string k(f.name_string());
    for (auto& c : k) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    req.headers[k] = std::string(f.value());
  }
  req.body = std::move(msg.body());
  req.remote = peer;
  Response resp;
  try {
    resp = handler(req);
  } catch (const std::exception&) {
    // Handlers should not throw (STYLE.md habit 5); if one does, the client gets a 500, not a crash.
    resp = Response::Json(500, "{\"error\": \"internal error\"}");
  }
  if (!resp.stream) {
    SendAll(fd, Serialize(resp, false), opt.write_timeout_s);
    DrainAndClose(fd);
    return;
  }
  if (!SendAll(fd, Serialize(resp, true), opt.write_timeout_s)) {
    ::close(fd);
    return;
  }
  bool alive = true;
  const double wt = opt.write_timeout_s;
  ChunkWriter write = [&](std::string_view chunk) {
    if (!alive) return false;
    if (chunk.empty()) return true;  // an empty chunk would end the body
    char hex[32];
    std::snprintf(hex, sizeof hex, "%zx\r\n", chunk.size());
    alive = SendAll(fd, hex, wt) && SendAll(fd, chunk, wt) && SendAll(fd, "\r\n", wt);
    return alive;
  };
  resp.stream(write);
  if (alive) SendAll(fd, "0\r\n\r\n", wt);
  DrainAndClose(fd);
}

Expected<std::unique_ptr<Server>> Server::Start(const ServerOptions& opt, Handler handler) {
  if (opt.max_concurrent < 1 || opt.max_queue < 0 || opt.max_connections < 1) {
    return InvalidArgument("http: max_concurrent and max_connections must be >= 1 and max_queue >= 0");
  }
  if (opt.port < 0 || opt.port > 65535) return InvalidArgument("http: port " + std::to_string(opt.port) + " out of range");
  auto impl = std::make_unique<Impl>();
  impl->opt = opt;
  impl->handler = std::move(handler);
  impl->buffer_budget = std::max<int64_t>(64 << 20, 4 * (opt.max_body_bytes + opt.max_header_bytes));
  sockaddr_storage ss{};
  socklen_t len = 0;
  auto* a4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* a6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (::inet_pton(AF_INET, opt.bind.c_str(), &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons(static_cast<uint16_t>(opt.port));
    len = sizeof(sockaddr_in);
  } else if (::inet_pton(AF_INET6, opt.bind.c_str(), &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(static_cast<uint16_t>(opt.port));
    len = sizeof(sockaddr_in6);
  } else {
    return InvalidArgument("http: bind address \"" + opt.bind + "\": expected an IPv4 or IPv6 literal");
  }
  int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return IoError(std::string("http: socket: ") + std::strerror(errno));
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(fd, 1024) != 0) {
    int e = errno;
    ::close(fd);
    return IoError("http: bind " + opt.bind + ":" + std::to_string(opt.port) + ": " + std::strerror(e));
  }
  sockaddr_storage bound{};
  socklen_t blen = sizeof bound;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &blen);
  impl->port = bound.ss_family == AF_INET ? ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port)
                                          : ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
  impl->listen_fd = fd;
  if (::pipe2(impl->wake_pipe, O_CLOEXEC) != 0) {
    ::close(fd);
    return IoError(std::string("http: pipe: ") + std::strerror(errno));
  }
  Impl* raw = impl.get();
  for (int i = 0; i < opt.max_concurrent; ++i) raw->workers.emplace_back([raw] { raw->WorkerLoop(); });
  raw->acceptor = std::thread([raw] { raw->AcceptLoop(); });
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() { Stop(); }

int Server::port() const { return impl_->port; }

std::string Server::address() const {
  return (impl_->opt.bind.find(':') != std::string::npos ? "[" + impl_->opt.bind + "]" : impl_->opt.bind) + ":" +
         std::to_string(impl_->port);
}

void Server::Stop() {
  if (impl_->stopped.exchange(true)) return;
  (void)!::write(impl_->wake_pipe[1], "x", 1);
  if (impl_->acceptor.joinable()) impl_->acceptor.join();
  ::close(impl_->listen_fd);
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  for (auto& w : impl_->workers) w.join();
  ::close(impl_->wake_pipe[0]);
  ::close(impl_->wake_pipe[1]);
}

ServerStats Server::stats() const {
  std::lock_guard<std::mutex> lk(impl_->mu);
  return impl_->st;
}

}  // namespace k2::http
