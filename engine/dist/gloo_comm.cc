// The Gloo Communicator (CPU): rendezvous through rank 0's store (store.h), Gloo's TCP full mesh, and
// its ring all-reduce, broadcast and barrier behind comm.h; plus ConnectFromEnv, the launcher's choice.
// Gloo reports failures by exception; every call is wrapped so that none escapes.
#include <csignal>
#include <cstdlib>
#include <cmath>
#include <cstring>
#include <thread>
#include <utility>
#include <vector>

#include <gloo/allreduce.h>
#include <gloo/barrier.h>
#include <gloo/broadcast.h>
#include <gloo/common/error.h>
#include <gloo/math.h>
#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/prefix_store.h>
#include <gloo/transport/tcp/device.h>

#include "engine/dist/comm.h"
#include "engine/dist/store.h"

namespace k2::engine::dist {

namespace {

enum Kind : uint32_t { kAllReduceF32Sum = 1, kAllReduceF32Max, kAllReduceF64Sum, kAllReduceF64Max, kBroadcast, kBarrier };

std::string Secs(double s) {
  char b[32];
  std::snprintf(b, sizeof b, "%g s", s);
  return b;
}

// Gloo's exceptions as Status: its timeouts say "Timed out"; everything else is an I/O failure.
Status FromException(const std::exception& e) {
  const std::string m = e.what();
  if (m.find("Timed out") != std::string::npos || m.find("timed out") != std::string::npos ||
      m.find("Timeout") != std::string::npos)
    return Timeout(m + " (a peer is missing, dead or stuck)");
  return IoError(m + " (did a peer exit?)");
}

template <class T>
void SumFn(void* c, const void* a, const void* b, size_t n) {
  gloo::sum<T>(c, a, b, n);
}
template <class T>
void MaxFn(void* c, const void* a, const void* b, size_t n) {
  gloo::max<T>(c, a, b, n);
}

class GlooComm final : public Communicator {
 public:
  GlooComm(int rank, int world, double timeout_s)
      : rank_(rank), world_(world), timeout_(std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000))) {}
  int rank() const override { return rank_; }
  int world_size() const override { return world_; }
  std::string backend() const override { return "gloo"; }

  Status Connect(const GlooOptions& o) {
    // Gloo writes with writev(), which raises SIGPIPE on a peer that closed; ignored, it is EPIPE.
    std::signal(SIGPIPE, SIG_IGN);
    const std::string where = "rank 0's store (MASTER_ADDR:MASTER_PORT " + o.master_addr + ":";
    int port = o.master_port;
    if (rank_ == 0) {
      auto s = StoreServer::Start(o.master_addr, o.master_port);
      if (!s.ok()) return s.status();
      server_ = std::move(*s);
      port = server_->port();
      if (o.on_listen) o.on_listen(port);
    }
    const std::string what = where + std::to_string(port) + ")";
    auto c = StoreClient::Connect(o.master_addr, port, o.timeout_s, what);
    if (!c.ok()) return c.status().Context("rank " + std::to_string(rank_) + ": rendezvous");
    store_ = std::move(*c);
    // Registration: each rank once, all with the same world size.
    const std::string ws = std::to_string(world_);
    K2_ASSIGN_OR_RETURN(bool fresh, store_->SetIfAbsent("k2gym/join/" + std::to_string(rank_), {ws.begin(), ws.end()}));
    if (!fresh)
      return InvalidArgument("rank " + std::to_string(rank_) + ": another process already joined as RANK=" +
                             std::to_string(rank_) + " (each rank in [0, WORLD_SIZE) must be launched exactly once)");
    // Every rank's registration, checked as it arrives (a different WORLD_SIZE fails at once).
    const auto deadline = std::chrono::steady_clock::now() + timeout_;
    std::vector<char> joined(static_cast<size_t>(world_), 0);
    auto pause = std::chrono::milliseconds(2);
    for (int n = 0; n < world_;) {
      n = 0;
      for (int r = 0; r < world_; ++r) {
        if (!joined[r]) {
          auto v = store_->TryGet("k2gym/join/" + std::to_string(r));
          if (!v.ok()) return v.status().Context("rank " + std::to_string(rank_) + ": rendezvous");
          if (!v->has_value()) continue;
          const std::string theirs((*v)->begin(), (*v)->end());
          if (theirs != ws)
            return InvalidArgument("rank " + std::to_string(rank_) + ": rank " + std::to_string(r) +
                                   " reports WORLD_SIZE=" + theirs + " but this rank has WORLD_SIZE=" + ws);
          joined[r] = 1;
        }
        ++n;
      }
      if (n == world_) break;
      if (std::chrono::steady_clock::now() >= deadline) {
        std::string missing;
        for (int r = 0; r < world_; ++r)
          if (!joined[r]) missing += (missing.empty() ? "" : ", ") + std::to_string(r);
        return Timeout("rank " + std::to_string(rank_) + ": " + std::to_string(world_ - n) + " of " +
                       std::to_string(world_) + " ranks did not join the rendezvous at " + what + " within " +
                       Secs(o.timeout_s) + " (missing ranks: " + missing + ")");
      }
      std::this_thread::sleep_for(pause);
      pause = std::min(pause * 2, std::chrono::milliseconds(50));
    }
    try {
      gloo::transport::tcp::attr attr;
      // The interface that routes to rank 0 (loopback in a local job); rank 0 uses MASTER_ADDR itself.
      attr.hostname = rank_ == 0 ? o.master_addr : store_->local_address();
      attr.ai_family = AF_INET;
      // PyTorch's variable for the interface Gloo binds (a cluster's fast network, say).
      if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname != nullptr && *ifname != '\0') {
        attr.iface = ifname;
        attr.hostname.clear();
      }
      auto dev = gloo::transport::tcp::CreateDevice(attr);
      auto ctx = std::make_shared<gloo::rendezvous::Context>(rank_, world_);
      ctx->setTimeout(timeout_);
      gloo::rendezvous::PrefixStore mesh("k2gym/mesh", *store_);
      ctx->connectFullMesh(mesh, dev);
      ctx_ = std::move(ctx);
    } catch (const std::exception& e) {
      return FromException(e).Context("rank " + std::to_string(rank_) + " of " + std::to_string(world_) +
                                       ": connecting the Gloo mesh");
    }
    // Gloo's errors name a peer by its address: every rank publishes the address of its pair with each
    // other rank, so that an error here can say which rank is behind it.
    for (int r = 0; r < world_; ++r) {
      if (r == rank_) continue;
      const std::string a = ctx_->getPair(r)->address().str();
      K2_RETURN_IF_ERROR(store_->Set("k2gym/pair/" + std::to_string(rank_) + "/" + std::to_string(r), {a.begin(), a.end()}));
    }
    for (int r = 0; r < world_; ++r) {
      if (r == rank_) continue;
      const std::string key = "k2gym/pair/" + std::to_string(r) + "/" + std::to_string(rank_);
      K2_RETURN_IF_ERROR(store_->Wait({key}, timeout_));
      K2_ASSIGN_OR_RETURN(auto v, store_->TryGet(key));
      if (v) peer_addr_.emplace_back(std::string(v->begin(), v->end()), r);
    }
    return Status::Ok();
  }

  Status AllReduce(float* data, int64_t n, ReduceOp op) override {
    return Reduce(data, n, op, op == ReduceOp::kSum ? kAllReduceF32Sum : kAllReduceF32Max);
  }
  Status AllReduce(double* data, int64_t n, ReduceOp op) override {
    return Reduce(data, n, op, op == ReduceOp::kSum ? kAllReduceF64Sum : kAllReduceF64Max);
  }

  Status Broadcast(void* data, int64_t bytes, int root) override {
    if (root < 0 || root >= world_)
      return InvalidArgument("Broadcast: root " + std::to_string(root) + " outside [0, " + std::to_string(world_) + ")");
    if (world_ == 1 || bytes == 0) return Status::Ok();
    K2_RETURN_IF_ERROR(Precheck());
    K2_RETURN_IF_ERROR(Guard(Header(kBroadcast, static_cast<uint64_t>(bytes) * 64 + static_cast<uint64_t>(root))));
    return Guard(Run([&] {
      gloo::BroadcastOptions opts(ctx_);
      opts.setOutput(static_cast<uint8_t*>(data), static_cast<size_t>(bytes));
      opts.setRoot(root);
      opts.setTag(tag_++);
      opts.setTimeout(timeout_);
      gloo::broadcast(opts);
    }));
  }

  // The header all-reduce is itself a barrier: every rank must contribute before any leaves.
  Status Barrier() override {
    if (world_ == 1) return Status::Ok();
    K2_RETURN_IF_ERROR(Precheck());
    return Guard(Header(kBarrier, 0));
  }

 private:
  Status Precheck() const {
    if (!broken_.empty()) return FailedPrecondition("communicator unusable after an earlier error: " + broken_);
    return Status::Ok();
  }
  Status Guard(Status st) {
    if (!st.ok()) {
      // A pair that accepted its connection knows the peer by the connecting socket's address instead
      // (not published); with two ranks the peer is the other one anyway.
      std::string who;
      for (const auto& [addr, r] : peer_addr_)
        if (!addr.empty() && st.message().find(addr) != std::string::npos) who = "peer " + addr + " is rank " + std::to_string(r);
      if (who.empty() && world_ == 2 && st.message().find("peer") != std::string::npos)
        who = "the peer is rank " + std::to_string(1 - rank_);
      if (!who.empty()) st = Status(st.code(), st.message() + " [" + who + "]");
      st = st.Context("rank " + std::to_string(rank_) + " of " + std::to_string(world_) + " (gloo)");
      if (broken_.empty()) broken_ = st.message();
    }
    return st;
  }
  template <class F>
  Status Run(F f) {
    try {
      f();
    } catch (const std::exception& e) {
      return FromException(e);
    }
    return Status::Ok();
  }

  // Every collective starts with a max-all-reduce of (kind, count, seq) and their negations: the ranks
  // agree on all three exactly when every maximum equals this rank's value and every minimum too, so
  // ranks calling different collectives or sizes fail with one message instead of mixing bytes.
  Status Header(uint32_t kind, uint64_t count) {
    const double mine[3] = {static_cast<double>(kind), static_cast<double>(count), static_cast<double>(seq_++)};
    double h[6] = {mine[0], mine[1], mine[2], -mine[0], -mine[1], -mine[2]};
    K2_RETURN_IF_ERROR(Run([&] {
      gloo::AllreduceOptions opts(ctx_);
      opts.setOutput(h, 6);
      opts.setReduceFunction(&MaxFn<double>);
      opts.setTag(tag_++);
      opts.setTimeout(timeout_);
      gloo::allreduce(opts);
    }));
    for (int i = 0; i < 3; ++i)
      if (h[i] != mine[i] || -h[i + 3] != mine[i])
        return FailedPrecondition("collective mismatch: this rank issued #" + std::to_string(static_cast<uint64_t>(mine[2])) +
                                  " kind " + std::to_string(kind) + " count " + std::to_string(count) +
                                  "; over the ranks kind is in [" + std::to_string(-h[3]) + ", " + std::to_string(h[0]) +
                                  "], count in [" + std::to_string(-h[4]) + ", " + std::to_string(h[1]) + "]");
    return Status::Ok();
  }

  template <class T>
  Status Reduce(T* data, int64_t n, ReduceOp op, uint32_t kind) {
    if (world_ == 1 || n == 0) return Status::Ok();
    K2_RETURN_IF_ERROR(Precheck());
    K2_RETURN_IF_ERROR(Guard(Header(kind, static_cast<uint64_t>(n))));
    return Guard(Run([&] {
      gloo::AllreduceOptions opts(ctx_);
      opts.setOutput(data, static_cast<size_t>(n));
      if (op == ReduceOp::kSum) opts.setReduceFunction(&SumFn<T>);
      else opts.setReduceFunction(&MaxFn<T>);
      opts.setTag(tag_++);
      opts.setTimeout(timeout_);
      gloo::allreduce(opts);
    }));
  }

  int rank_, world_;
  std::chrono::milliseconds timeout_;
  std::unique_ptr<StoreServer> server_;  // rank 0: kept for the communicator's life (idle after the mesh)
  std::unique_ptr<StoreClient> store_;
  std::shared_ptr<gloo::Context> ctx_;
  std::vector<std::pair<std::string, int>> peer_addr_;  // a peer's pair address -> its rank
  uint64_t seq_ = 0;
  uint32_t tag_ = 0;
  std::string broken_;
};

}  // namespace

Expected<std::unique_ptr<Communicator>> ConnectGloo(const GlooOptions& o) {
  if (o.world_size < 1) return InvalidArgument("gloo communicator: world_size must be >= 1, got " + std::to_string(o.world_size));
  if (o.rank < 0 || o.rank >= o.world_size)
    return InvalidArgument("gloo communicator: rank " + std::to_string(o.rank) + " outside [0, " +
                           std::to_string(o.world_size) + ")");
  if (!(o.timeout_s > 0) || !std::isfinite(o.timeout_s))
    return InvalidArgument("gloo communicator: timeout_s must be a positive number of seconds");
  if (o.master_port < 0 || o.master_port > 65535 || (o.master_port == 0 && o.rank != 0))
    return InvalidArgument("gloo communicator: master_port " + std::to_string(o.master_port) +
                           " outside [1, 65535] (0 = any port is for rank 0 only)");
  auto c = std::make_unique<GlooComm>(o.rank, o.world_size, o.timeout_s);
  if (o.world_size > 1) K2_RETURN_IF_ERROR(c->Connect(o));
  return std::unique_ptr<Communicator>(std::move(c));
}

Expected<std::unique_ptr<Communicator>> ConnectFromEnv(const LaunchEnv& env, const DistConfig& cfg,
                                                       const std::string& what) {
  if (env.world_size <= 1) return std::unique_ptr<Communicator>();
  if (cfg.backend == "nccl") {
    auto c = ConnectNccl(env, cfg.timeout_s);
    if (!c.ok()) return c.status().Context(what + ".dist.backend=nccl");
    return std::move(*c);
  }
  if (cfg.backend != "gloo")
    return InvalidArgument(what + ".dist.backend: \"" + cfg.backend + "\" is not one of gloo, nccl");
  GlooOptions o;
  o.rank = env.rank, o.world_size = env.world_size, o.master_addr = env.master_addr;
  o.master_port = env.master_port, o.timeout_s = cfg.timeout_s;
  auto c = ConnectGloo(o);
  if (!c.ok()) return c.status().Context(what + ": data-parallel rendezvous (" + env.source + " environment)");
  return std::move(*c);
}

}  // namespace k2::engine::dist
