// The Gloo Communicator against plain sums/maxima (world sizes 1..4, odd lengths, in-process threads
// on loopback), broadcast and barrier, the launch environment parser, and the failure paths: bad
// variables, a peer that never connects, a peer that dies, mismatched collectives — each a clear error
// within a bounded time.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <map>
#include <future>
#include <thread>
#include <vector>

#include "core/rng.h"
#include "engine/dist/comm.h"

namespace k2::engine::dist {
namespace {

using Comms = std::vector<std::unique_ptr<Communicator>>;

// Connects `world` ranks on loopback in threads (rank 0 on an ephemeral port) and returns them in rank order.
Comms ConnectAll(int world, double timeout_s = 20) {
  std::promise<int> port;
  auto port_f = port.get_future().share();
  std::vector<std::future<Expected<std::unique_ptr<Communicator>>>> fs;
  for (int r = 0; r < world; ++r)
    fs.push_back(std::async(std::launch::async, [=, &port]() {
      GlooOptions o;
      o.rank = r, o.world_size = world, o.timeout_s = timeout_s;
      if (r == 0) {
        o.master_port = 0;
        o.on_listen = [&port](int p) { port.set_value(p); };
      } else {
        o.master_port = port_f.get();
      }
      return ConnectGloo(o);
    }));
  Comms out;
  for (auto& f : fs) {
    auto c = f.get();
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    out.push_back(c.ok() ? std::move(*c) : nullptr);
  }
  return out;
}

// Runs fn(rank) on every rank concurrently and collects the statuses.
template <class F>
std::vector<Status> OnAll(Comms& cs, F fn) {
  std::vector<std::future<Status>> fs;
  for (size_t r = 0; r < cs.size(); ++r) fs.push_back(std::async(std::launch::async, [&, r] { return fn(static_cast<int>(r)); }));
  std::vector<Status> out;
  for (auto& f : fs) out.push_back(f.get());
  return out;
}

template <class T>
void CheckAllReduce(Comms& cs, int64_t n, ReduceOp op, uint64_t seed) {
  const int W = static_cast<int>(cs.size());
  std::vector<std::vector<T>> data(static_cast<size_t>(W));
  Rng rng(seed);
  for (auto& d : data) {
    d.resize(static_cast<size_t>(n));
    for (auto& x : d) x = static_cast<T>(rng.Normal());
  }
  // Reference: a plain loop over ranks in rank order.
  std::vector<double> ref(static_cast<size_t>(n), op == ReduceOp::kSum ? 0.0 : -1e300);
  for (const auto& d : data)
    for (int64_t i = 0; i < n; ++i)
      ref[i] = op == ReduceOp::kSum ? ref[i] + static_cast<double>(d[i]) : std::max(ref[i], static_cast<double>(d[i]));
  auto st = OnAll(cs, [&](int r) { return cs[r]->AllReduce(data[r].data(), n, op); });
  for (int r = 0; r < W; ++r) ASSERT_TRUE(st[r].ok()) << "rank " << r << ": " << st[r].ToString();
  const double tol = op == ReduceOp::kMax ? 0.0 : (sizeof(T) == 4 ? 1e-5 : 1e-13) * W;
  for (int64_t i = 0; i < n; ++i) {
    ASSERT_NEAR(static_cast<double>(data[0][i]), ref[i], tol) << "W=" << W << " n=" << n << " i=" << i;
    for (int r = 1; r < W; ++r)  // every rank holds the same bits
      ASSERT_EQ(std::memcmp(&data[r][i], &data[0][i], sizeof(T)), 0) << "rank " << r << " i=" << i;
  }
}

TEST(Gloo, AllReduceMatchesPlainLoopForWorldSizes1To4) {
  for (int W = 1; W <= 4; ++W) {
    Comms cs = ConnectAll(W);
    ASSERT_EQ(cs.size(), static_cast<size_t>(W));
    for (auto& c : cs) ASSERT_NE(c, nullptr);
    EXPECT_EQ(cs[W - 1]->rank(), W - 1);
    EXPECT_EQ(cs[0]->world_size(), W);
    EXPECT_EQ(cs[0]->backend(), "gloo");
    uint64_t seed = 100 * static_cast<uint64_t>(W);
    // Lengths: empty, shorter than the world, odd, not a multiple of W, and large (several socket buffers).
    for (int64_t n : {int64_t{0}, int64_t{1}, int64_t{2}, int64_t{3}, int64_t{7}, int64_t{1001}, int64_t{300007}}) {
      CheckAllReduce<float>(cs, n, ReduceOp::kSum, ++seed);
      CheckAllReduce<double>(cs, n, ReduceOp::kSum, ++seed);
      CheckAllReduce<float>(cs, n, ReduceOp::kMax, ++seed);
      CheckAllReduce<double>(cs, n, ReduceOp::kMax, ++seed);
    }
  }
}

TEST(Gloo, IntegerValuedSumsAreExact) {
  Comms cs = ConnectAll(3);
  std::vector<std::vector<double>> d(3, std::vector<double>(101));
  for (int r = 0; r < 3; ++r)
    for (int i = 0; i < 101; ++i) d[r][i] = r * 1000 + i;
  auto st = OnAll(cs, [&](int r) { return cs[r]->AllReduce(d[r].data(), 101, ReduceOp::kSum); });
  for (auto& s : st) ASSERT_TRUE(s.ok()) << s.ToString();
  for (int r = 0; r < 3; ++r)
    for (int i = 0; i < 101; ++i) ASSERT_EQ(d[r][i], 3000.0 + 3 * i);
}

TEST(Gloo, BroadcastFromEveryRootAndBarrier) {
  Comms cs = ConnectAll(4);
  for (int root = 0; root < 4; ++root) {
    std::vector<std::vector<char>> buf(4, std::vector<char>(100003));
    for (int r = 0; r < 4; ++r)
      for (size_t i = 0; i < buf[r].size(); ++i) buf[r][i] = static_cast<char>(r == root ? (i * 7 + root) % 251 : 0);
    auto st = OnAll(cs, [&](int r) { return cs[r]->Broadcast(buf[r].data(), static_cast<int64_t>(buf[r].size()), root); });
    for (auto& s : st) ASSERT_TRUE(s.ok()) << s.ToString();
    for (int r = 0; r < 4; ++r) ASSERT_EQ(buf[r], buf[root]) << "root " << root << " rank " << r;
  }
  auto st = OnAll(cs, [&](int r) { return cs[r]->Barrier(); });
  for (auto& s : st) EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(cs[1]->Broadcast(nullptr, 4, 9).code(), Code::kInvalidArgument);
}

TEST(Gloo, MismatchedCollectivesFailOnBothRanks) {
  Comms cs = ConnectAll(2, 5);
  std::vector<float> a(10), b(11);
  auto st = OnAll(cs, [&](int r) { return r == 0 ? cs[0]->AllReduce(a.data(), 10, ReduceOp::kSum)
                                                 : cs[1]->AllReduce(b.data(), 11, ReduceOp::kSum); });
  for (auto& s : st) {
    EXPECT_EQ(s.code(), Code::kFailedPrecondition) << s.ToString();
    EXPECT_NE(s.message().find("collective mismatch"), std::string::npos) << s.message();
  }
  // A broken communicator fails fast afterwards.
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(cs[0]->Barrier().ok());
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 2.0);
}

TEST(Gloo, PeerThatNeverConnectsIsATimeoutNamingTheMissingRank) {
  GlooOptions o;
  o.rank = 0, o.world_size = 3, o.master_port = 0, o.timeout_s = 0.5;
  const auto t0 = std::chrono::steady_clock::now();
  auto c = ConnectGloo(o);
  const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), Code::kTimeout);
  EXPECT_NE(c.status().message().find("2 of 3 ranks did not join"), std::string::npos) << c.status().message();
  EXPECT_NE(c.status().message().find("missing ranks: 1, 2"), std::string::npos) << c.status().message();
  EXPECT_LT(dt, 10.0);  // bounded (generous against a loaded machine); the timeout is 0.5 s
}

TEST(Gloo, MasterThatNeverListensIsATimeout) {
  // Find a port nobody listens on: bind an ephemeral one and close it.
  int port = 0;
  {
    GlooOptions o;
    o.master_port = 0, o.world_size = 1;
    // world 1 opens no socket, so take the port from a 2-rank rendezvous that times out immediately.
    o.world_size = 2, o.timeout_s = 0.1;
    o.on_listen = [&](int p) { port = p; };
    (void)ConnectGloo(o);
  }
  ASSERT_GT(port, 0);
  GlooOptions o;
  o.rank = 1, o.world_size = 2, o.master_port = port, o.timeout_s = 0.5;
  auto c = ConnectGloo(o);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), Code::kTimeout);
  EXPECT_NE(c.status().message().find("could not reach rank 0's store"), std::string::npos) << c.status().message();
}

TEST(Gloo, PeerThatDiesIsAnErrorNotAHang) {
  Comms cs = ConnectAll(2, 30);
  cs[1].reset();  // rank 1 exits: its sockets close
  std::vector<double> x(1000, 1.0);
  const auto t0 = std::chrono::steady_clock::now();
  Status st = cs[0]->AllReduce(x.data(), 1000, ReduceOp::kSum);
  const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(st.code(), Code::kIoError) << st.ToString();
  EXPECT_NE(st.message().find("rank 0 of 2 (gloo)"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("is rank 1]"), std::string::npos) << st.message();  // the dead peer, named
  EXPECT_LT(dt, 10.0);  // found by EOF/reset, far below the 30 s timeout
  EXPECT_EQ(cs[0]->Barrier().code(), Code::kFailedPrecondition);  // broken: fails fast afterwards
}

TEST(Gloo, SilentPeerIsATimeoutWithinTheTimeout) {
  Comms cs = ConnectAll(2, 1.0);
  std::vector<float> x(10, 1.0f);
  const auto t0 = std::chrono::steady_clock::now();
  Status st = cs[0]->AllReduce(x.data(), 10, ReduceOp::kSum);  // rank 1 never calls
  const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(st.code(), Code::kTimeout) << st.ToString();
  EXPECT_LT(dt, 10.0);
}

TEST(Gloo, WrongWorldSizeAndDuplicateRankAreRejected) {
  for (int variant = 0; variant < 2; ++variant) {
    std::promise<int> port;
    auto pf = port.get_future();
    auto master = std::async(std::launch::async, [&] {
      GlooOptions o;
      o.rank = 0, o.world_size = 3, o.master_port = 0, o.timeout_s = 1.5;
      o.on_listen = [&](int p) { port.set_value(p); };
      return ConnectGloo(o);
    });
    const int p = pf.get();
    auto join = [&](int rank, int world) {
      return std::async(std::launch::async, [=] {
        GlooOptions o;
        o.rank = rank, o.world_size = world, o.master_port = p, o.timeout_s = 1.5;
        return ConnectGloo(o);
      });
    };
    std::vector<std::future<Expected<std::unique_ptr<Communicator>>>> peers;
    if (variant == 0) {
      peers.push_back(join(1, 4));  // claims a different WORLD_SIZE
    } else {
      peers.push_back(join(1, 3));
      peers.push_back(join(1, 3));  // RANK launched twice
    }
    auto m = master.get();
    ASSERT_FALSE(m.ok());
    std::string all = m.status().message();
    for (auto& f : peers) {
      auto r = f.get();
      ASSERT_FALSE(r.ok());  // nobody connects a broken job
      all += "\n" + r.status().message();
    }
    if (variant == 0) {
      EXPECT_EQ(m.status().code(), Code::kInvalidArgument);
      EXPECT_NE(all.find("rank 1 reports WORLD_SIZE=4 but this rank has WORLD_SIZE=3"), std::string::npos) << all;
    } else {
      EXPECT_NE(all.find("another process already joined as RANK=1"), std::string::npos) << all;
      EXPECT_NE(all.find("missing ranks: 2"), std::string::npos) << all;
    }
  }
}

TEST(Gloo, SocketIfnameNamesTheInterfaceAndABadOneIsAnError) {
  ::setenv("GLOO_SOCKET_IFNAME", "lo", 1);
  {
    Comms cs = ConnectAll(2, 20);
    ASSERT_TRUE(cs[0] && cs[1]);
    CheckAllReduce<float>(cs, 1000, ReduceOp::kSum, 7);
  }
  ::setenv("GLOO_SOCKET_IFNAME", "k2gym-no-such-if", 1);
  std::promise<int> port;
  auto pf = port.get_future().share();
  auto f0 = std::async(std::launch::async, [&] {
    GlooOptions o;
    o.rank = 0, o.world_size = 2, o.master_port = 0, o.timeout_s = 3;
    o.on_listen = [&](int p) { port.set_value(p); };
    return ConnectGloo(o);
  });
  GlooOptions o;
  o.rank = 1, o.world_size = 2, o.master_port = pf.get(), o.timeout_s = 3;
  auto c1 = ConnectGloo(o);
  auto c0 = f0.get();
  ::unsetenv("GLOO_SOCKET_IFNAME");
  ASSERT_FALSE(c1.ok());
  ASSERT_FALSE(c0.ok());
  // Rank 0 fails on the interface; rank 1 on it too, or first on rank 0's store closing: an error either way.
  EXPECT_NE(c0.status().message().find("connecting the Gloo mesh"), std::string::npos) << c0.status().ToString();
}

// ---- launch environment ----

Expected<LaunchEnv> FromMap(const std::map<std::string, std::string>& m) {
  return LaunchEnvFromEnv([&](const char* k) -> const char* {
    auto it = m.find(k);
    return it == m.end() ? nullptr : it->second.c_str();
  });
}

TEST(LaunchEnv, TorchrunSlurmAndDefault) {
  auto d = FromMap({});
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->world_size, 1);
  EXPECT_EQ(d->source, "default");
  auto t = FromMap({{"RANK", "2"}, {"WORLD_SIZE", "4"}, {"LOCAL_RANK", "0"}, {"MASTER_ADDR", "10.0.0.7"}, {"MASTER_PORT", "1234"}});
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->rank, 2);
  EXPECT_EQ(t->world_size, 4);
  EXPECT_EQ(t->master_addr, "10.0.0.7");
  EXPECT_EQ(t->master_port, 1234);
  EXPECT_EQ(t->source, "torchrun");
  // torchrun's agent holds MASTER_PORT with its own store: k2gym's goes on the next port.
  auto a = FromMap({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "29500"}, {"TORCHELASTIC_USE_AGENT_STORE", "True"}});
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->master_port, 29501);
  auto s = FromMap({{"SLURM_PROCID", "5"}, {"SLURM_NTASKS", "8"}, {"SLURM_LOCALID", "1"}, {"MASTER_ADDR", "node1"}});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->rank, 5);
  EXPECT_EQ(s->world_size, 8);
  EXPECT_EQ(s->local_rank, 1);
  EXPECT_EQ(s->master_port, 29500);
  EXPECT_EQ(s->source, "slurm");
}

TEST(LaunchEnv, BadVariablesNameTheVariableAndTheExpectation) {
  struct Case {
    std::map<std::string, std::string> env;
    std::string want;
  };
  const std::vector<Case> cases = {
      {{{"RANK", "x"}, {"WORLD_SIZE", "2"}}, "RANK=\"x\": expected an integer in [0, 2)"},
      {{{"RANK", "2"}, {"WORLD_SIZE", "2"}}, "RANK=\"2\": expected an integer in [0, 2)"},
      {{{"RANK", "-1"}, {"WORLD_SIZE", "2"}}, "RANK=\"-1\""},
      {{{"RANK", "0"}, {"WORLD_SIZE", "0"}}, "WORLD_SIZE=\"0\": expected an integer >= 1"},
      {{{"RANK", "0"}, {"WORLD_SIZE", "2x"}}, "WORLD_SIZE=\"2x\""},
      {{{"RANK", "0"}}, "WORLD_SIZE is not set but RANK is"},
      {{{"WORLD_SIZE", "2"}}, "RANK is not set but WORLD_SIZE is"},
      {{{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "70000"}}, "MASTER_PORT=\"70000\": expected a TCP port"},
      {{{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", ""}}, "MASTER_ADDR is empty"},
      {{{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"LOCAL_RANK", "a"}}, "LOCAL_RANK=\"a\""},
      {{{"SLURM_PROCID", "3"}, {"SLURM_NTASKS", "2"}}, "SLURM_PROCID=\"3\": expected an integer in [0, 2)"},
      {{{"SLURM_NTASKS", "2"}}, "SLURM_PROCID is not set but SLURM_NTASKS is"},
  };
  for (const auto& c : cases) {
    auto e = FromMap(c.env);
    ASSERT_FALSE(e.ok()) << c.want;
    EXPECT_EQ(e.status().code(), Code::kInvalidArgument);
    EXPECT_NE(e.status().message().find(c.want), std::string::npos) << e.status().message();
  }
}

TEST(Gloo, BadOptionsAreRejectedBeforeAnySocket) {
  GlooOptions o;
  o.rank = 3, o.world_size = 2;
  EXPECT_EQ(ConnectGloo(o).status().code(), Code::kInvalidArgument);
  o.rank = 1, o.master_port = 0;
  EXPECT_EQ(ConnectGloo(o).status().code(), Code::kInvalidArgument);
  o.rank = 0, o.master_port = 1234, o.timeout_s = 0;
  EXPECT_EQ(ConnectGloo(o).status().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace k2::engine::dist
