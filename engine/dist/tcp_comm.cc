// The TCP ring Communicator: rendezvous at rank 0, ring sockets to the next and previous rank, ring
// all-reduce (reduce-scatter + all-gather), broadcast along the ring, barrier. POSIX sockets with poll():
// every wait has a deadline, so a missing or dead peer is an error, never a hang.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <thread>
#include <vector>

#include "engine/dist/comm.h"
#include "engine/dist/tcp.h"

namespace k2::engine::dist {

namespace {
using Clock = std::chrono::steady_clock;
constexpr uint32_t kHelloMagic = 0x4b324452;  // "K2DR": rendezvous hello
constexpr uint32_t kRingMagic = 0x4b325249;   // "K2RI": ring connection identification
constexpr uint32_t kCollMagic = 0x4b32434f;   // "K2CO": per-collective header

std::string Errno(int e) { return std::strerror(e); }

std::string Secs(double s) {
  char b[32];
  std::snprintf(b, sizeof b, "%g s", s);
  return b;
}

int RemainingMs(Clock::time_point deadline) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return static_cast<int>(std::clamp<int64_t>(ms, 0, 1000));  // wake up at least every second
}

void Tune(int fd) {
  int one = 1;
  (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  int buf = 4 << 20;  // large kernel buffers: a ring step moves whole chunks
  (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
  (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
}

void SetNonBlocking(int fd) {
  const int fl = fcntl(fd, F_GETFL, 0);
  (void)fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

}  // namespace

// ---- socket helpers (tcp.h) ----

Fd::~Fd() { Close(); }
void Fd::Close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}
Fd& Fd::operator=(Fd&& o) noexcept {
  if (this != &o) {
    Close();
    fd_ = o.fd_;
    o.fd_ = -1;
  }
  return *this;
}

Expected<uint32_t> ResolveIpv4(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const int rc = getaddrinfo(host.c_str(), nullptr, &hints, &res);
  if (rc != 0 || res == nullptr)
    return InvalidArgument("MASTER_ADDR \"" + host + "\": cannot resolve to an IPv4 address: " + gai_strerror(rc));
  const uint32_t ip = reinterpret_cast<sockaddr_in*>(res->ai_addr)->sin_addr.s_addr;
  freeaddrinfo(res);
  return ip;
}

std::string Ipv4String(uint32_t ip_be, int port) {
  char b[INET_ADDRSTRLEN] = {};
  in_addr a{};
  a.s_addr = ip_be;
  inet_ntop(AF_INET, &a, b, sizeof b);
  return std::string(b) + ":" + std::to_string(port);
}

Expected<Fd> ListenTcp(uint32_t ip_be, int port, int* bound_port) {
  Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.ok()) return IoError("socket(): " + Errno(errno));
  int one = 1;
  (void)setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = ip_be;
  a.sin_port = htons(static_cast<uint16_t>(port));
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
    return IoError("cannot listen on " + Ipv4String(ip_be, port) + ": " + Errno(errno));
  if (::listen(fd.get(), 256) != 0) return IoError("listen(" + Ipv4String(ip_be, port) + "): " + Errno(errno));
  socklen_t len = sizeof a;
  (void)getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len);
  if (bound_port) *bound_port = ntohs(a.sin_port);
  SetNonBlocking(fd.get());
  return fd;
}

Expected<Fd> ConnectTcpRetry(uint32_t ip_be, int port, Clock::time_point deadline, const std::string& what) {
  std::string last = "no attempt";
  while (true) {
    Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd.ok()) return IoError("socket(): " + Errno(errno));
    SetNonBlocking(fd.get());
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = ip_be;
    a.sin_port = htons(static_cast<uint16_t>(port));
    int rc = ::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a);
    int err = rc == 0 ? 0 : errno;
    if (err == EINPROGRESS) {
      pollfd p{fd.get(), POLLOUT, 0};
      int pr = 0;
      while ((pr = ::poll(&p, 1, RemainingMs(deadline))) == 0 && Clock::now() < deadline) {
      }
      if (pr > 0) {
        socklen_t len = sizeof err;
        (void)getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
      } else {
        err = pr < 0 ? errno : ETIMEDOUT;
      }
    }
    if (err == 0) {
      Tune(fd.get());
      return fd;
    }
    last = Errno(err);
    if (Clock::now() >= deadline)
      return Timeout("could not connect to " + what + " at " + Ipv4String(ip_be, port) + " before the timeout (last error: " +
                     last + ")");
    // The peer may simply not be up yet (refused): retry until the deadline.
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min(50, RemainingMs(deadline))));
  }
}

Expected<Fd> AcceptWithin(int listen_fd, Clock::time_point deadline) {
  while (true) {
    pollfd p{listen_fd, POLLIN, 0};
    const int pr = ::poll(&p, 1, RemainingMs(deadline));
    if (pr < 0 && errno != EINTR) return IoError("poll(accept): " + Errno(errno));
    if (pr > 0) {
      int c = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (c >= 0) {
        Tune(c);
        return Fd(c);
      }
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return IoError("accept(): " + Errno(errno));
    }
    if (Clock::now() >= deadline) return Timeout("no connection arrived before the timeout");
  }
}

Status Exchange(int send_fd, const void* sbuf, size_t sn, int recv_fd, void* rbuf, size_t rn,
                Clock::time_point deadline, const std::string& send_peer, const std::string& recv_peer) {
  const char* s = static_cast<const char*>(sbuf);
  char* r = static_cast<char*>(rbuf);
  size_t sent = 0, got = 0;
  while (sent < sn || got < rn) {
    pollfd p[2];
    int np = 0, si = -1, ri = -1;
    if (sent < sn) si = np, p[np++] = pollfd{send_fd, POLLOUT, 0};
    if (got < rn) ri = np, p[np++] = pollfd{recv_fd, POLLIN, 0};
    const int pr = ::poll(p, static_cast<nfds_t>(np), RemainingMs(deadline));
    if (pr < 0) {
      if (errno == EINTR) continue;
      return IoError("poll(): " + Errno(errno));
    }
    if (pr == 0) {
      if (Clock::now() >= deadline)
        return Timeout(got < rn ? "no data from " + recv_peer + " before the timeout (is it still running?)"
                                : "could not send to " + send_peer + " before the timeout (is it still reading?)");
      continue;
    }
    if (ri >= 0 && (p[ri].revents & (POLLIN | POLLHUP | POLLERR))) {
      const ssize_t k = ::recv(recv_fd, r + got, rn - got, 0);
      if (k == 0) return IoError(recv_peer + " closed the connection (did it exit?)");
      if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        return IoError("receiving from " + recv_peer + ": " + Errno(errno));
      if (k > 0) got += static_cast<size_t>(k);
    }
    if (si >= 0 && (p[si].revents & (POLLOUT | POLLHUP | POLLERR))) {
      const ssize_t k = ::send(send_fd, s + sent, sn - sent, MSG_NOSIGNAL);
      if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        return IoError("sending to " + send_peer + ": " + Errno(errno) + " (did it exit?)");
      if (k > 0) sent += static_cast<size_t>(k);
    }
  }
  return Status::Ok();
}

Status SendAll(int fd, const void* buf, size_t n, Clock::time_point deadline, const std::string& peer) {
  return Exchange(fd, buf, n, fd, nullptr, 0, deadline, peer, peer);
}
Status RecvAll(int fd, void* buf, size_t n, Clock::time_point deadline, const std::string& peer) {
  return Exchange(fd, nullptr, 0, fd, buf, n, deadline, peer, peer);
}

// ---- the ring ----

namespace {

struct Hello {
  uint32_t magic, rank, world, ip, port;
};
struct Entry {
  uint32_t ip, port;
};
struct CollHeader {
  uint32_t magic;
  uint32_t kind;   // collective kind and element type (see Kind)
  uint64_t count;  // elements or bytes
  uint64_t seq;    // collectives issued so far on this communicator
};
enum Kind : uint32_t { kAllReduceF32Sum = 1, kAllReduceF32Max, kAllReduceF64Sum, kAllReduceF64Max, kBroadcast, kBarrier };

class TcpRing final : public Communicator {
 public:
  TcpRing(int rank, int world, double timeout_s) : rank_(rank), world_(world), timeout_s_(timeout_s) {}
  int rank() const override { return rank_; }
  int world_size() const override { return world_; }
  std::string backend() const override { return "tcp"; }

  Status Connect(const TcpOptions& o) {
    const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.timeout_s));
    K2_ASSIGN_OR_RETURN(uint32_t master_ip, ResolveIpv4(o.master_addr));
    const std::string master = "rank 0 (MASTER_ADDR:MASTER_PORT " + Ipv4String(master_ip, o.master_port) + ")";
    std::vector<Entry> table(static_cast<size_t>(world_));
    Fd ring_listener;
    if (rank_ == 0) {
      int port = 0;
      auto l = ListenTcp(master_ip, o.master_port, &port);
      if (!l.ok()) return l.status().Context("rank 0: rendezvous (MASTER_ADDR:MASTER_PORT)");
      Fd rdv = std::move(*l);
      if (o.on_listen) o.on_listen(port);
      int ring_port = 0;
      K2_ASSIGN_OR_RETURN(ring_listener, ListenTcp(master_ip, 0, &ring_port));
      table[0] = {master_ip, static_cast<uint32_t>(ring_port)};
      std::vector<Fd> peers(static_cast<size_t>(world_));
      int joined = 1;
      while (joined < world_) {
        auto c = AcceptWithin(rdv.get(), deadline);
        if (!c.ok()) {
          std::string missing;
          for (int r = 1; r < world_; ++r)
            if (!peers[r].ok()) missing += (missing.empty() ? "" : ", ") + std::to_string(r);
          return Timeout("rank 0: " + std::to_string(world_ - joined) + " of " + std::to_string(world_) +
                         " ranks did not join the rendezvous at " + Ipv4String(master_ip, port) + " within " +
                         Secs(o.timeout_s) + " (missing ranks: " + missing + ")");
        }
        Hello h{};
        Status st = RecvAll(c->get(), &h, sizeof h, deadline, "a joining rank");
        if (!st.ok()) return st.Context("rank 0: rendezvous");
        if (h.magic != kHelloMagic)
          return IoError("rank 0: a connection to the rendezvous port " + std::to_string(port) +
                         " is not a k2gym rank (bad hello); is MASTER_PORT used by something else?");
        if (static_cast<int>(h.world) != world_)
          return InvalidArgument("rank 0: rank " + std::to_string(h.rank) + " reports WORLD_SIZE=" +
                                 std::to_string(h.world) + " but rank 0 has WORLD_SIZE=" + std::to_string(world_));
        if (h.rank == 0 || static_cast<int>(h.rank) >= world_ || peers[h.rank].ok())
          return InvalidArgument("rank 0: a second process claims RANK=" + std::to_string(h.rank) +
                                 " (each rank in [0, WORLD_SIZE) must be launched exactly once)");
        table[h.rank] = {h.ip, h.port};
        peers[h.rank] = std::move(*c);
        ++joined;
      }
      for (int r = 1; r < world_; ++r)
        K2_RETURN_IF_ERROR(SendAll(peers[r].get(), table.data(), table.size() * sizeof(Entry), deadline,
                                   "rank " + std::to_string(r)));
    } else {
      auto c = ConnectTcpRetry(master_ip, o.master_port, deadline, master);
      if (!c.ok())
        return Timeout("rank " + std::to_string(rank_) + ": could not reach " + master + " within " +
                       Secs(o.timeout_s) + ": " + c.status().message());
      // Our ring listener binds the local address that routes to rank 0 (loopback in a local job).
      sockaddr_in me{};
      socklen_t len = sizeof me;
      (void)getsockname(c->get(), reinterpret_cast<sockaddr*>(&me), &len);
      int ring_port = 0;
      K2_ASSIGN_OR_RETURN(ring_listener, ListenTcp(me.sin_addr.s_addr, 0, &ring_port));
      Hello h{kHelloMagic, static_cast<uint32_t>(rank_), static_cast<uint32_t>(world_), me.sin_addr.s_addr,
              static_cast<uint32_t>(ring_port)};
      Status st = SendAll(c->get(), &h, sizeof h, deadline, master);
      if (st.ok()) st = RecvAll(c->get(), table.data(), table.size() * sizeof(Entry), deadline, master);
      if (!st.ok())
        return st.Context("rank " + std::to_string(rank_) + ": rendezvous (rank 0 rejects a mismatched WORLD_SIZE "
                          "or a duplicate RANK; see its error)");
    }
    // Ring: connect to the next rank, accept the previous one (connects complete in the listen backlog,
    // so the order cannot deadlock).
    const int nxt = (rank_ + 1) % world_, prv = (rank_ + world_ - 1) % world_;
    auto nc = ConnectTcpRetry(table[nxt].ip, static_cast<int>(table[nxt].port), deadline,
                              "rank " + std::to_string(nxt) + " (ring)");
    if (!nc.ok()) return nc.status().Context("rank " + std::to_string(rank_));
    next_ = std::move(*nc);
    const uint32_t ident[2] = {kRingMagic, static_cast<uint32_t>(rank_)};
    K2_RETURN_IF_ERROR(SendAll(next_.get(), ident, sizeof ident, deadline, Peer(nxt)));
    while (!prev_.ok()) {
      auto pc = AcceptWithin(ring_listener.get(), deadline);
      if (!pc.ok())
        return Timeout("rank " + std::to_string(rank_) + ": rank " + std::to_string(prv) +
                       " did not open its ring connection within " + Secs(o.timeout_s));
      uint32_t id[2] = {0, 0};
      if (!RecvAll(pc->get(), id, sizeof id, deadline, Peer(prv)).ok()) continue;
      if (id[0] == kRingMagic && static_cast<int>(id[1]) == prv) prev_ = std::move(*pc);
    }
    return Status::Ok();
  }

  Status AllReduce(float* data, int64_t n, ReduceOp op) override {
    return Guard(RingAllReduce(data, n, op, op == ReduceOp::kSum ? kAllReduceF32Sum : kAllReduceF32Max));
  }
  Status AllReduce(double* data, int64_t n, ReduceOp op) override {
    return Guard(RingAllReduce(data, n, op, op == ReduceOp::kSum ? kAllReduceF64Sum : kAllReduceF64Max));
  }

  Status Broadcast(void* data, int64_t bytes, int root) override {
    if (root < 0 || root >= world_)
      return InvalidArgument("Broadcast: root " + std::to_string(root) + " outside [0, " + std::to_string(world_) + ")");
    if (world_ == 1 || bytes == 0) return Status::Ok();
    Status st = Precheck();
    if (st.ok()) st = Header(kBroadcast, static_cast<uint64_t>(bytes) ^ (static_cast<uint64_t>(root) << 56));
    // Along the ring from the root: receive from prev (unless root), forward to next (unless next is root).
    const auto deadline = Deadline();
    const int nxt = (rank_ + 1) % world_, prv = (rank_ + world_ - 1) % world_;
    if (st.ok() && rank_ != root) st = RecvAll(prev_.get(), data, static_cast<size_t>(bytes), deadline, Peer(prv));
    if (st.ok() && nxt != root) st = SendAll(next_.get(), data, static_cast<size_t>(bytes), deadline, Peer(nxt));
    return Guard(st);
  }

  Status Barrier() override {
    if (world_ == 1) return Status::Ok();
    Status st = Precheck();
    if (st.ok()) st = Header(kBarrier, 0);
    double x = 1;
    if (st.ok()) st = RingAllReduce(&x, 1, ReduceOp::kSum, kBarrier);
    return Guard(st);
  }

 private:
  std::string Peer(int r) const { return "rank " + std::to_string(r); }
  Clock::time_point Deadline() const {
    return Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(timeout_s_));
  }
  Status Precheck() const {
    if (!broken_.empty()) return FailedPrecondition("communicator unusable after an earlier error: " + broken_);
    return Status::Ok();
  }
  Status Guard(Status st) {
    if (!st.ok()) {
      st = st.Context("rank " + std::to_string(rank_) + " of " + std::to_string(world_) + " (tcp ring)");
      if (broken_.empty()) broken_ = st.message();
    }
    return st;
  }
  // Every collective starts with a header exchange so that ranks calling different collectives (or the
  // same one with different sizes) fail with a clear message instead of mixing bytes.
  Status Header(uint32_t kind, uint64_t count) {
    CollHeader mine{kCollMagic, kind, count, seq_++}, theirs{};
    const int nxt = (rank_ + 1) % world_, prv = (rank_ + world_ - 1) % world_;
    K2_RETURN_IF_ERROR(
        Exchange(next_.get(), &mine, sizeof mine, prev_.get(), &theirs, sizeof theirs, Deadline(), Peer(nxt), Peer(prv)));
    if (theirs.magic != kCollMagic || theirs.kind != mine.kind || theirs.count != mine.count || theirs.seq != mine.seq)
      return FailedPrecondition("collective mismatch: this rank issued #" + std::to_string(mine.seq) + " kind " +
                                std::to_string(mine.kind) + " count " + std::to_string(mine.count) + ", rank " +
                                std::to_string(prv) + " issued #" + std::to_string(theirs.seq) + " kind " +
                                std::to_string(theirs.kind) + " count " + std::to_string(theirs.count));
    return Status::Ok();
  }

  template <class T>
  Status RingAllReduce(T* data, int64_t n, ReduceOp op, uint32_t kind) {
    if (world_ == 1 || n == 0) return Status::Ok();
    if (kind != kBarrier) {
      K2_RETURN_IF_ERROR(Precheck());
      K2_RETURN_IF_ERROR(Header(kind, static_cast<uint64_t>(n)));
    }
    const int W = world_, nxt = (rank_ + 1) % W, prv = (rank_ + W - 1) % W;
    // Chunk c covers [off(c), off(c+1)): sizes differ by at most one element.
    auto off = [&](int c) { return static_cast<int64_t>(c) * (n / W) + std::min<int64_t>(c, n % W); };
    const size_t max_chunk = static_cast<size_t>(n / W + 1) * sizeof(T);
    if (scratch_.size() < max_chunk) scratch_.resize(max_chunk);
    T* tmp = reinterpret_cast<T*>(scratch_.data());
    // Reduce-scatter: after W-1 steps rank r holds the full reduction of chunk (r+1) mod W.
    for (int s = 0; s < W - 1; ++s) {
      const int sc = ((rank_ - s) % W + W) % W, rc = ((rank_ - s - 1) % W + W) % W;
      const int64_t s0 = off(sc), sn = off(sc + 1) - s0, r0 = off(rc), rn = off(rc + 1) - r0;
      K2_RETURN_IF_ERROR(Exchange(next_.get(), data + s0, static_cast<size_t>(sn) * sizeof(T), prev_.get(), tmp,
                                  static_cast<size_t>(rn) * sizeof(T), Deadline(), Peer(nxt), Peer(prv)));
      T* d = data + r0;
      if (op == ReduceOp::kSum) {
        for (int64_t i = 0; i < rn; ++i) d[i] += tmp[i];
      } else {
        for (int64_t i = 0; i < rn; ++i) d[i] = std::max(d[i], tmp[i]);
      }
    }
    // All-gather: pass the finished chunks around; every rank ends with the same bits.
    for (int s = 0; s < W - 1; ++s) {
      const int sc = ((rank_ + 1 - s) % W + W) % W, rc = ((rank_ - s) % W + W) % W;
      const int64_t s0 = off(sc), sn = off(sc + 1) - s0, r0 = off(rc), rn = off(rc + 1) - r0;
      K2_RETURN_IF_ERROR(Exchange(next_.get(), data + s0, static_cast<size_t>(sn) * sizeof(T), prev_.get(), data + r0,
                                  static_cast<size_t>(rn) * sizeof(T), Deadline(), Peer(nxt), Peer(prv)));
    }
    return Status::Ok();
  }

  int rank_, world_;
  double timeout_s_;
  Fd next_, prev_;
  uint64_t seq_ = 0;
  std::vector<char> scratch_;
  std::string broken_;
};

}  // namespace

Expected<std::unique_ptr<Communicator>> ConnectTcp(const TcpOptions& o) {
  if (o.world_size < 1) return InvalidArgument("tcp communicator: world_size must be >= 1, got " + std::to_string(o.world_size));
  if (o.rank < 0 || o.rank >= o.world_size)
    return InvalidArgument("tcp communicator: rank " + std::to_string(o.rank) + " outside [0, " +
                           std::to_string(o.world_size) + ")");
  if (!(o.timeout_s > 0) || !std::isfinite(o.timeout_s))
    return InvalidArgument("tcp communicator: timeout_s must be a positive number of seconds");
  if (o.master_port < 0 || o.master_port > 65535 || (o.master_port == 0 && o.rank != 0))
    return InvalidArgument("tcp communicator: master_port " + std::to_string(o.master_port) +
                           " outside [1, 65535] (0 = any port is for rank 0 only)");
  auto ring = std::make_unique<TcpRing>(o.rank, o.world_size, o.timeout_s);
  if (o.world_size > 1) K2_RETURN_IF_ERROR(ring->Connect(o));
  return std::unique_ptr<Communicator>(std::move(ring));
}

}  // namespace k2::engine::dist
