// The rendezvous key-value store (store.h): an asynchronous Boost.Asio server on one I/O thread and a
// client whose every call runs its socket operations on a private io_context until a deadline.
//
// Wire format (little-endian): request = op (1 byte: 'S' set, 'N' set-if-absent, 'G' get), u32 key
// length, key, and for S/N u32 value length, value. Reply: S -> 1; N -> 1 set / 0 existed;
// G -> 1, u32 length, value / 0 absent. A malformed request closes that connection.
#include "engine/dist/store.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>

#include <boost/asio.hpp>
#include <gloo/common/error.h>

namespace k2::engine::dist {

namespace asio = boost::asio;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

constexpr uint32_t kMaxKey = 4096;
constexpr uint32_t kMaxValue = 64u << 20;

void PutU32(std::vector<char>* b, uint32_t v) {
  for (int i = 0; i < 4; ++i) b->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint32_t GetU32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}

Expected<tcp::endpoint> Resolve(const std::string& host, int port) {
  boost::system::error_code ec;
  asio::io_context io;
  tcp::resolver res(io);
  auto r = res.resolve(tcp::v4(), host, std::to_string(port), ec);
  if (ec || r.empty())
    return InvalidArgument("MASTER_ADDR \"" + host + "\": cannot resolve to an IPv4 address: " + ec.message());
  return r.begin()->endpoint();
}

// ---- server ----

class Server final : public StoreServer {
 public:
  Server() : acceptor_(io_) {}
  // Stopping the context abandons pending operations; their handlers (and the sessions they own) are
  // destroyed with io_ without running.
  ~Server() override {
    io_.stop();
    if (thread_.joinable()) thread_.join();
  }
  int port() const override { return port_; }

  Status Listen(const tcp::endpoint& ep) {
    boost::system::error_code ec;
    acceptor_.open(ep.protocol(), ec);
    if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec)
      return IoError("rank 0: cannot serve the rendezvous store on " + ep.address().to_string() + ":" +
                     std::to_string(ep.port()) + ": " + ec.message() + " (is MASTER_PORT in use?)");
    port_ = acceptor_.local_endpoint().port();
    Accept();
    thread_ = std::thread([this] { io_.run(); });
    return Status::Ok();
  }

 private:
  struct Session : std::enable_shared_from_this<Session> {
    Session(Server* s, tcp::socket sock) : server(s), socket(std::move(sock)) {}
    Server* server;
    tcp::socket socket;
    char head[5] = {};
    char len[4] = {};
    std::string key;
    std::vector<char> value, reply;

    void ReadHead() {
      auto self = shared_from_this();
      asio::async_read(socket, asio::buffer(head), [self](boost::system::error_code ec, size_t) {
        if (ec) return;
        const char op = self->head[0];
        const uint32_t kl = GetU32(self->head + 1);
        if ((op != 'S' && op != 'N' && op != 'G') || kl > kMaxKey) return;  // not our protocol: drop it
        self->key.assign(kl, '\0');
        asio::async_read(self->socket, asio::buffer(self->key), [self](boost::system::error_code ec2, size_t) {
          if (ec2) return;
          if (self->head[0] == 'G') return self->Reply();
          asio::async_read(self->socket, asio::buffer(self->len), [self](boost::system::error_code ec3, size_t) {
            if (ec3) return;
            const uint32_t vl = GetU32(self->len);
            if (vl > kMaxValue) return;
            self->value.assign(vl, '\0');
            asio::async_read(self->socket, asio::buffer(self->value), [self](boost::system::error_code ec4, size_t) {
              if (!ec4) self->Reply();
            });
          });
        });
      });
    }
    void Reply() {
      reply.clear();
      auto& kv = server->kv_;  // touched only on the I/O thread
      if (head[0] == 'S') {
        kv[key] = value;
        reply.push_back(1);
      } else if (head[0] == 'N') {
        reply.push_back(kv.emplace(key, value).second ? 1 : 0);
      } else {
        auto it = kv.find(key);
        if (it == kv.end()) {
          reply.push_back(0);
        } else {
          reply.push_back(1);
          PutU32(&reply, static_cast<uint32_t>(it->second.size()));
          reply.insert(reply.end(), it->second.begin(), it->second.end());
        }
      }
      auto self = shared_from_this();
      asio::async_write(socket, asio::buffer(reply), [self](boost::system::error_code ec, size_t) {
        if (!ec) self->ReadHead();
      });
    }
  };

  void Accept() {
    acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket sock) {
      if (ec) {
        if (ec != asio::error::operation_aborted && acceptor_.is_open()) Accept();
        return;
      }
      boost::system::error_code ign;
      sock.set_option(tcp::no_delay(true), ign);
      std::make_shared<Session>(this, std::move(sock))->ReadHead();
      Accept();
    });
  }

  asio::io_context io_;
  tcp::acceptor acceptor_;
  std::thread thread_;
  int port_ = 0;
  std::map<std::string, std::vector<char>> kv_;
};

}  // namespace

Expected<std::unique_ptr<StoreServer>> StoreServer::Start(const std::string& addr, int port) {
  K2_ASSIGN_OR_RETURN(tcp::endpoint ep, Resolve(addr, port));
  auto s = std::make_unique<Server>();
  K2_RETURN_IF_ERROR(s->Listen(ep));
  return std::unique_ptr<StoreServer>(std::move(s));
}

// ---- client ----

struct StoreClient::Impl {
  asio::io_context io;
  tcp::socket socket{io};
  std::string what;
  std::chrono::milliseconds timeout{300000};

  // Runs the started asynchronous operation until it completes or the deadline passes (then the socket
  // is closed, which cancels it).
  boost::system::error_code RunUntil(Clock::time_point deadline, bool* done) {
    io.restart();
    io.run_until(deadline);
    if (!*done) {
      boost::system::error_code ign;
      socket.close(ign);
      io.restart();
      io.run();  // lets the cancelled handler run
      return asio::error::timed_out;
    }
    return {};
  }
  boost::system::error_code Write(const std::vector<char>& b, Clock::time_point deadline) {
    bool done = false;
    boost::system::error_code result;
    asio::async_write(socket, asio::buffer(b), [&](boost::system::error_code ec, size_t) { result = ec, done = true; });
    auto t = RunUntil(deadline, &done);
    return t ? t : result;
  }
  boost::system::error_code Read(char* p, size_t n, Clock::time_point deadline) {
    bool done = false;
    boost::system::error_code result;
    asio::async_read(socket, asio::buffer(p, n), [&](boost::system::error_code ec, size_t) { result = ec, done = true; });
    auto t = RunUntil(deadline, &done);
    return t ? t : result;
  }
};

StoreClient::StoreClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
StoreClient::~StoreClient() = default;

Expected<std::unique_ptr<StoreClient>> StoreClient::Connect(const std::string& addr, int port, double timeout_s,
                                                            const std::string& what) {
  K2_ASSIGN_OR_RETURN(tcp::endpoint ep, Resolve(addr, port));
  auto impl = std::make_unique<Impl>();
  impl->what = what;
  impl->timeout = std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
  const auto deadline = Clock::now() + impl->timeout;
  std::string last = "no attempt";
  while (true) {
    bool done = false;
    boost::system::error_code result;
    impl->socket = tcp::socket(impl->io);
    impl->socket.async_connect(ep, [&](boost::system::error_code ec) { result = ec, done = true; });
    const auto t = impl->RunUntil(deadline, &done);
    if (!t && !result) break;
    last = (t ? t : result).message();
    boost::system::error_code ign;
    impl->socket.close(ign);
    if (Clock::now() >= deadline)
      return Timeout("could not reach " + what + " within " + std::to_string(timeout_s) + " s (last error: " + last +
                     "; is rank 0 running, and MASTER_ADDR/MASTER_PORT the same on every rank?)");
    // Refused: the server may not be up yet; retry until the deadline.
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  boost::system::error_code ign;
  impl->socket.set_option(tcp::no_delay(true), ign);
  return std::unique_ptr<StoreClient>(new StoreClient(std::move(impl)));
}

std::string StoreClient::local_address() const {
  boost::system::error_code ec;
  auto ep = impl_->socket.local_endpoint(ec);
  return ec ? std::string("127.0.0.1") : ep.address().to_string();
}

Expected<std::vector<char>> StoreClient::Call(char op, const std::string& key, const std::vector<char>* value) {
  if (!impl_->socket.is_open()) return IoError("the connection to " + impl_->what + " was lost earlier");
  std::vector<char> req;
  req.push_back(op);
  PutU32(&req, static_cast<uint32_t>(key.size()));
  req.insert(req.end(), key.begin(), key.end());
  if (value) {
    PutU32(&req, static_cast<uint32_t>(value->size()));
    req.insert(req.end(), value->begin(), value->end());
  }
  const auto deadline = Clock::now() + impl_->timeout;
  auto fail = [&](const boost::system::error_code& ec) -> Status {
    boost::system::error_code ign;
    impl_->socket.close(ign);
    if (ec == asio::error::timed_out) return Timeout(impl_->what + " did not answer within the timeout");
    return IoError(impl_->what + ": " + ec.message() + " (did rank 0 exit?)");
  };
  if (auto ec = impl_->Write(req, deadline)) return fail(ec);
  char flag = 0;
  if (auto ec = impl_->Read(&flag, 1, deadline)) return fail(ec);
  std::vector<char> out(1, flag);
  if (op == 'G' && flag == 1) {
    char len[4];
    if (auto ec = impl_->Read(len, 4, deadline)) return fail(ec);
    const uint32_t n = GetU32(len);
    if (n > kMaxValue) return IoError(impl_->what + ": a value of " + std::to_string(n) + " bytes (not a k2gym store?)");
    out.resize(1 + n);
    if (auto ec = impl_->Read(out.data() + 1, n, deadline)) return fail(ec);
  }
  return out;
}

Status StoreClient::Set(const std::string& key, const std::vector<char>& value) {
  K2_ASSIGN_OR_RETURN(auto r, Call('S', key, &value));
  (void)r;
  return Status::Ok();
}

Expected<bool> StoreClient::SetIfAbsent(const std::string& key, const std::vector<char>& value) {
  K2_ASSIGN_OR_RETURN(auto r, Call('N', key, &value));
  return r[0] == 1;
}

Expected<std::optional<std::vector<char>>> StoreClient::TryGet(const std::string& key) {
  K2_ASSIGN_OR_RETURN(auto r, Call('G', key, nullptr));
  if (r[0] != 1) return std::optional<std::vector<char>>();
  return std::optional<std::vector<char>>(std::vector<char>(r.begin() + 1, r.end()));
}

Status StoreClient::Wait(const std::vector<std::string>& keys, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  std::vector<std::string> missing = keys;
  auto pause = std::chrono::milliseconds(2);
  while (true) {
    std::vector<std::string> still;
    for (const auto& k : missing) {
      K2_ASSIGN_OR_RETURN(auto v, TryGet(k));
      if (!v) still.push_back(k);
    }
    missing = std::move(still);
    if (missing.empty()) return Status::Ok();
    if (Clock::now() >= deadline) {
      std::string names;
      for (const auto& k : missing) names += (names.empty() ? "" : ", ") + k;
      return Timeout("waited " + std::to_string(timeout.count()) + " ms for store keys [" + names + "] at " +
                     impl_->what);
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(50));
  }
}

void StoreClient::set(const std::string& key, const std::vector<char>& data) {
  Status st = Set(key, data);
  if (!st.ok()) throw gloo::IoException(st.ToString());
}

std::vector<char> StoreClient::get(const std::string& key) {
  Status st = Wait({key}, impl_->timeout);
  if (!st.ok()) throw gloo::IoException(st.ToString());
  auto v = TryGet(key);
  if (!v.ok()) throw gloo::IoException(v.status().ToString());
  if (!v->has_value()) throw gloo::IoException("store key " + key + " vanished");
  return std::move(**v);
}

void StoreClient::wait(const std::vector<std::string>& keys) { wait(keys, impl_->timeout); }

void StoreClient::wait(const std::vector<std::string>& keys, const std::chrono::milliseconds& timeout) {
  Status st = Wait(keys, timeout);
  if (!st.ok()) throw gloo::IoException(st.ToString());
}

}  // namespace k2::engine::dist
