// The bounded HTTP/1.1 server: POSIX sockets with poll() deadlines for I/O, Boost.Beast's incremental
// parser for requests and its status table for reason phrases.
#include "core/http/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
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

std::string Serialize(const Response& r, bool chunked, bool keep_alive = false) {
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
  out += keep_alive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
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

std::string JsonEscape(const std::string& s) {
  std::string o;
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') o += '\\', o += static_cast<char>(c);
    else if (c < 0x20 || c >= 0x80) {  // control bytes, and non-ASCII whose validity is unknown
      char b[8];
      std::snprintf(b, sizeof b, "\\u%04x", c);
      o += b;
    } else o += static_cast<char>(c);
  }
  return o;
}

// A connection between two requests: the bytes already read past the previous one, if any.
struct Conn {
  int fd = -1;
  std::string peer;
  std::string carry;
  Clock::time_point idle_until{};
};

}  // namespace

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
  std::deque<Conn> queue;
  std::vector<Conn> returned;  // kept-alive connections handed back by workers (guarded by mu)
  std::vector<Conn> idle;      // acceptor thread only: kept-alive connections awaiting a request
  bool stopping = false;
  std::atomic<bool> stopped{false};
  ServerStats st;

  void AcceptLoop();
  void WorkerLoop();
  // Serves requests on c until it is closed or handed back for keep-alive; true when handed back.
  bool Serve(Conn& c);
  std::string ErrorBody(int status, const std::string& msg) const {
    if (opt.error_body) return opt.error_body(status, msg);
    return "{\"error\": \"" + JsonEscape(msg) + "\"}";
  }
  void Reply(int fd, int status, const std::string& msg) {
    Response r = Response::Json(status, ErrorBody(status, msg));
    SendAll(fd, Serialize(r, false), 1.0);
  }
  void HandBack(Conn c) {
    {
      std::lock_guard<std::mutex> lk(mu);
      if (!stopping) {
        returned.push_back(std::move(c));
        c.fd = -1;
      }
    }
    if (c.fd >= 0) {
      ::close(c.fd);
      return;
    }
    (void)!::write(wake_pipe[1], "k", 1);
  }
};

void Server::Impl::AcceptLoop() {
  std::vector<pollfd> p;
  for (;;) {
    p.assign({{listen_fd, POLLIN, 0}, {wake_pipe[0], POLLIN, 0}});
    auto now = Clock::now();
    int timeout_ms = -1;
    for (auto& c : idle) {
      p.push_back({c.fd, POLLIN | POLLRDHUP, 0});
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(c.idle_until - now).count() + 1;
      timeout_ms = timeout_ms < 0 ? static_cast<int>(std::max<int64_t>(ms, 0))
                                  : std::min(timeout_ms, static_cast<int>(std::max<int64_t>(ms, 0)));
    }
    int r = ::poll(p.data(), p.size(), timeout_ms);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return;
    if (p[1].revents & POLLIN) {
      char b[256];
      while (::read(wake_pipe[0], b, sizeof b) == static_cast<ssize_t>(sizeof b)) {
      }
      if (stopped.load()) return;
      std::lock_guard<std::mutex> lk(mu);
      for (auto& c : returned) {
        if (static_cast<int>(idle.size()) >= opt.max_idle_connections) {
          ::close(c.fd);
          continue;
        }
        c.idle_until = Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(opt.keep_alive_s * 1000));
        idle.push_back(std::move(c));
      }
      returned.clear();
    }
    // Idle connections: a request arriving goes to the workers; a close or the idle deadline ends it.
    now = Clock::now();
    std::vector<Conn> keep;
    bool queued_any = false;
    for (size_t i = 0; i < idle.size(); ++i) {
      const short ev = i + 2 < p.size() ? p[i + 2].revents : 0;
      if (ev & POLLIN) {
        std::lock_guard<std::mutex> lk(mu);
        ++st.reused;
        queue.push_back(std::move(idle[i]));
        st.queued = static_cast<int>(queue.size());
        queued_any = true;
      } else if ((ev & (POLLHUP | POLLERR | POLLRDHUP)) || now >= idle[i].idle_until) {
        ::close(idle[i].fd);
      } else {
        keep.push_back(std::move(idle[i]));
      }
    }
    idle.swap(keep);
    if (queued_any) cv.notify_all();
    if (!(p[0].revents & POLLIN)) continue;
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    int fd = ::accept4(listen_fd, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE) std::this_thread::sleep_for(std::chrono::milliseconds(10));
      continue;
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    std::unique_lock<std::mutex> lk(mu);
    ++st.accepted;
    if (stopping || static_cast<int>(queue.size()) >= opt.max_queue) {
      ++st.rejected_429;
      lk.unlock();
      Response resp = Response::Json(429, ErrorBody(429, "too many requests: the queue is full"));
      resp.headers.push_back({"Retry-After", "1"});
      SendAll(fd, Serialize(resp, false), 1.0);
      DrainAndClose(fd);
      continue;
    }
    Conn c;
    c.fd = fd;
    c.peer = PeerName(ss);
    queue.push_back(std::move(c));
    st.queued = static_cast<int>(queue.size());
    lk.unlock();
    cv.notify_one();
  }
}

void Server::Impl::WorkerLoop() {
  for (;;) {
    Conn item;
    {
      std::unique_lock<std::mutex> lk(mu);
      cv.wait(lk, [&] { return stopping || !queue.empty(); });
      if (queue.empty()) return;  // stopping and drained
      item = std::move(queue.front());
      queue.pop_front();
      st.queued = static_cast<int>(queue.size());
      ++st.in_flight;
    }
    const bool kept = Serve(item);
    if (kept) HandBack(std::move(item));
    std::lock_guard<std::mutex> lk(mu);
    --st.in_flight;
  }
}

bool Server::Impl::Serve(Conn& c) {
  const int fd = c.fd;
  const std::string& peer = c.peer;
  for (;;) {  // one request per turn; more than one only when the client pipelined them
  beast_http::request_parser<beast_http::string_body> parser;
  parser.header_limit(static_cast<std::uint32_t>(std::min<int64_t>(opt.max_header_bytes, UINT32_MAX)));
  parser.body_limit(static_cast<std::uint64_t>(opt.max_body_bytes));
  parser.eager(true);
  std::string buf = std::move(c.carry);
  c.carry.clear();
  char tmp[16384];
  auto start = Clock::now();
  auto fail = [&](int status, const std::string& msg) {
    {
      std::lock_guard<std::mutex> lk(mu);
      ++st.bad_requests;
    }
    Reply(fd, status, msg);
    DrainAndClose(fd);
    return false;
  };
  boost::system::error_code ec;
  // Bytes carried over from a pipelined request are parsed before reading more.
  auto feed = [&] {
    while (!buf.empty() && !parser.is_done()) {
      size_t used = parser.put(boost::asio::buffer(buf.data(), buf.size()), ec);
      buf.erase(0, used);
      if (ec == beast_http::error::need_more) {
        ec = {};
        break;
      }
      if (ec) break;
      if (used == 0) break;
    }
  };
  feed();
  while (!ec && !parser.is_done()) {
    double limit = parser.is_header_done() ? opt.body_timeout_s : opt.header_timeout_s;
    double left = limit - std::chrono::duration<double>(Clock::now() - start).count();
    if (left <= 0) return fail(408, "request timeout");
    pollfd p{fd, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(std::max(1.0, left * 1000)));
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) return fail(408, "request timeout");
    ssize_t n = ::recv(fd, tmp, sizeof tmp, MSG_DONTWAIT);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) {
      ::close(fd);  // the client went away before a complete request (or closed a kept-alive connection)
      return false;
    }
    buf.append(tmp, static_cast<size_t>(n));
    feed();
  }
  if (ec == beast_http::error::body_limit) return fail(413, "request body larger than " + std::to_string(opt.max_body_bytes) + " bytes");
  if (ec == beast_http::error::header_limit) return fail(431, "request header larger than " + std::to_string(opt.max_header_bytes) + " bytes");
  if (ec) return fail(400, "malformed request: " + ec.message());
  auto msg = parser.release();
  const bool keep = opt.keep_alive_s > 0 && msg.keep_alive() && !stopped.load();
  Request req;
  req.method = std::string(msg.method_string());
  req.target = std::string(msg.target());
  for (auto& f : msg) {
    std::string k(f.name_string());
    for (auto& ch : k) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    req.headers[k] = std::string(f.value());
  }
  req.body = std::move(msg.body());
  req.remote = peer;
  req.client_gone = [fd] {
    pollfd p{fd, POLLRDHUP, 0};
    return ::poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
  };
  Response resp;
  try {
    resp = handler(req);
  } catch (const std::exception&) {
    // Handlers should not throw (STYLE.md habit 5); if one does, the client gets a 500, not a crash.
    resp = Response::Json(500, ErrorBody(500, "internal error"));
  }
  bool ok;
  if (!resp.stream) {
    ok = SendAll(fd, Serialize(resp, false, keep), opt.write_timeout_s);
  } else if (!SendAll(fd, Serialize(resp, true, keep), opt.write_timeout_s)) {
    ok = false;
  } else {
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
    ok = alive && SendAll(fd, "0\r\n\r\n", wt);
  }
  {
    std::lock_guard<std::mutex> lk(mu);
    ++st.completed;
  }
  if (!ok) {
    ::close(fd);
    return false;
  }
  if (!keep) {
    DrainAndClose(fd);
    return false;
  }
  if (buf.empty()) return true;  // idle until the next request: back to the acceptor
  c.carry = std::move(buf);      // a pipelined request is already here
  }
}

Expected<std::unique_ptr<Server>> Server::Start(const ServerOptions& opt, Handler handler) {
  if (opt.max_concurrent < 1 || opt.max_queue < 0) {
    return InvalidArgument("http: max_concurrent must be >= 1 and max_queue >= 0");
  }
  if (opt.port < 0 || opt.port > 65535) return InvalidArgument("http: port " + std::to_string(opt.port) + " out of range");
  auto impl = std::make_unique<Impl>();
  impl->opt = opt;
  impl->handler = std::move(handler);
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
  if (::pipe2(impl->wake_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
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
  for (auto& c : impl_->idle) ::close(c.fd);
  for (auto& c : impl_->returned) ::close(c.fd);
  impl_->idle.clear();
  impl_->returned.clear();
  ::close(impl_->wake_pipe[0]);
  ::close(impl_->wake_pipe[1]);
}

ServerStats Server::stats() const {
  std::lock_guard<std::mutex> lk(impl_->mu);
  return impl_->st;
}

}  // namespace k2::http
