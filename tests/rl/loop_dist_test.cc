// Data-parallel RL loop on real components (tiny model, generator + engine policy, synthetic world,
// judge): 2 and 3 ranks (threads, each with its own model and rollout engine, Gloo on loopback) against
// one process — the same metric sequence and weights to fp32 rounding, bit-identical weights on every
// rank; a resume at another world size continues the same run; a rank that fails makes the others stop
// with an error, not a hang.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <future>
#include <map>

#include "engine/dist/comm.h"
#include "rl/engine_rollouts.h"
#include "rl/loop.h"
#include "tests/rl/rl_fixture.h"

namespace k2::rl {
namespace {

using Comms = std::vector<std::unique_ptr<engine::dist::Communicator>>;

std::string Tmp(const std::string& name) {
  auto d = std::filesystem::temp_directory_path() / ("k2gym_loop_dist_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(d);
  return (d / name).string();
}

struct Shared {
  fixture::SmallWorld w = fixture::MakeSmallWorld();
  text::Tokenizer tok = fixture::TrainTokenizer(fixture::ChatCorpus(fixture::OracleTrajectories(w)));
};
const Shared& S() {
  static const Shared* s = new Shared();
  return *s;
}

RlConfig Config() {
  RlConfig c;
  c.iterations = 2;
  c.tasks_per_iteration = 3;  // groups: 2/1 on two ranks, 1/1/1 on three
  c.rollouts_per_task = 2;
  c.temperature = {"linear", 1.2, 0.8, 2};
  c.update.seq_len = 1024;
  c.update.micro_batch = 1;  // several micro-batches to split over the ranks
  c.threads = 1;
  c.optimizer.lr = 1e-2;
  c.optimizer.qk_clip_tau = 0.05;       // QK-Clip acts
  c.optimizer.bias_update_speed = 0.01;  // router bias follows the loads
  c.dist.timeout_s = 60;
  return c;
}

RolloutConfig Rollout() {
  RolloutConfig r;
  r.reward = "judge_mean";
  r.episode.max_turns = 2;
  r.episode.max_tokens_per_turn = 12;
  r.episode.max_tokens = 0;
  return r;
}

Comms ConnectAll(int world) {
  std::promise<int> port;
  auto pf = port.get_future().share();
  std::vector<std::future<Expected<std::unique_ptr<engine::dist::Communicator>>>> fs;
  for (int r = 0; r < world; ++r)
    fs.push_back(std::async(std::launch::async, [=, &port]() {
      engine::dist::GlooOptions o;
      o.rank = r, o.world_size = world, o.timeout_s = 60;
      if (r == 0) o.master_port = 0, o.on_listen = [&port](int p) { port.set_value(p); };
      else o.master_port = pf.get();
      return engine::dist::ConnectGloo(o);
    }));
  Comms out;
  for (auto& f : fs) {
    auto c = f.get();
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    out.push_back(c.ok() ? std::move(*c) : nullptr);
  }
  return out;
}

struct RankOut {
  Expected<RlResult> res = Internal("not run");
  std::vector<std::vector<float>> weights;
};

// W ranks of the loop (W = 1: plain, no communicator). `fail_rank` >= 0: that rank's collector fails at
// the second iteration.
std::vector<RankOut> RunRanks(int W, const std::string& out, int64_t stop_after, bool resume, int fail_rank = -1,
                              const RlConfig& cfg = Config()) {
  Comms cs = W > 1 ? ConnectAll(W) : Comms{};
  std::vector<RankOut> outs(static_cast<size_t>(W));
  std::vector<std::future<void>> fs;
  for (int r = 0; r < W; ++r)
    fs.push_back(std::async(std::launch::async, [&, r] {
      const auto& tok = S().tok;
      auto model = engine::Model<float>::Create(fixture::TinyModel(tok.vocab_size()), 1);
      K2_CHECK(model.ok());
      RolloutConfig rc = Rollout();
      if (cfg.partial_rollout.token_budget > 0) rc.episode.max_turns = 3;
      auto ro = EngineRollouts::Create(model->get(), &tok, S().w.world, S().w.tasks, rc);
      if (!ro.ok()) {
        outs[r].res = ro.status();
        return;
      }
      int calls = 0;
      CollectFn collect = [&](const std::vector<agents::EpisodeJob>& jobs, double t, uint64_t seed)
          -> Expected<std::vector<agents::Trajectory>> {
        if (r == fail_rank && ++calls == 2) return Internal("collector of rank " + std::to_string(r) + " failed");
        // Rewards by trial (the global job index): members of a group differ, so every group has a
        // gradient, whichever rank rolls it out.
        std::vector<agents::Trajectory> ts = (*ro)->Run(jobs, t, seed);
        for (size_t i = 0; i < ts.size(); ++i) ts[i].reward = 0.25 * (jobs[i].trial % 3);
        return ts;
      };
      RlRun run;
      run.out_dir = out;
      run.seed = 9;
      run.stop_after = stop_after;
      run.resume = resume;
      run.comm = W > 1 ? cs[r].get() : nullptr;
      run.partial_collect = [&](const std::vector<PartialJob>& jobs, int64_t it, int64_t budget) {
        return (*ro)->Advance(jobs, it, budget);
      };
      outs[r].res = RunRl(model->get(), tok, cfg, S().w.tasks, collect, run);
      // A failing rank leaves: its connections close, so the others see it at once.
      if (W > 1 && !outs[r].res.ok()) cs[r].reset();
      for (const auto& p : (*model)->params()) outs[r].weights.push_back(p.w);
    }));
  for (auto& f : fs) f.get();
  return outs;
}

bool Wallclock(const std::string& key) {
  return key.rfind("time_", 0) == 0 || key.find("tokens_per_s") != std::string::npos;
}

// The update's gradients are summed in another order than one process sums them (per rank, then over
// the ranks), so the metrics agree to fp32 rounding: within 1e-5 relative (logp_mismatch, the sampler's
// own float noise, within 1e-6 absolute). Counts and rewards are exact.
void ExpectSameHistory(const RlResult& a, const RlResult& b, const std::string& what) {
  ASSERT_EQ(a.history.size(), b.history.size()) << what;
  for (size_t it = 0; it < a.history.size(); ++it) {
    ASSERT_EQ(a.history[it].size(), b.history[it].size()) << what << " iteration " << it;
    for (const auto& [k, v] : a.history[it]) {
      if (Wallclock(k)) continue;
      ASSERT_TRUE(b.history[it].count(k)) << what << " " << k;
      const double w = b.history[it].at(k);
      if (k == "logp_mismatch") EXPECT_NEAR(v, w, 1e-6) << what << " iteration " << it << " " << k;
      else if (k == "reward_mean" || k == "policy_tokens" || k == "qk_clipped_heads" || k == "rollouts_updated")
        EXPECT_EQ(v, w) << what << " iteration " << it << " " << k;
      else
        EXPECT_LE(std::abs(v - w), 1e-5 * std::max(std::abs(v), std::abs(w)) + 1e-9)
            << what << " iteration " << it << " " << k << ": " << v << " vs " << w;
    }
  }
}

// Ranks of one run hold bit-identical weights; against one process they agree within `tol` (max abs).
double MaxWeightDiff(const RankOut& a, const RankOut& b) {
  double worst = 0;
  for (size_t p = 0; p < a.weights.size() && p < b.weights.size(); ++p)
    for (size_t i = 0; i < a.weights[p].size() && i < b.weights[p].size(); ++i)
      worst = std::max(worst, std::abs(static_cast<double>(a.weights[p][i]) - b.weights[p][i]));
  return worst;
}

void ExpectSameWeights(const RankOut& a, const RankOut& b, const std::string& what, bool bitwise) {
  ASSERT_EQ(a.weights.size(), b.weights.size());
  for (size_t p = 0; p < a.weights.size(); ++p) ASSERT_EQ(a.weights[p].size(), b.weights[p].size());
  if (bitwise) {
    for (size_t p = 0; p < a.weights.size(); ++p)
      EXPECT_EQ(std::memcmp(a.weights[p].data(), b.weights[p].data(), a.weights[p].size() * sizeof(float)), 0)
          << what << ": parameter " << p;
  } else {
    EXPECT_LE(MaxWeightDiff(a, b), 1e-4) << what;
  }
}

TEST(DataParallelRl, TwoAndThreeRanksEqualOneProcess) {
  auto one = RunRanks(1, Tmp("one"), 0, false);
  ASSERT_TRUE(one[0].res.ok()) << one[0].res.status().ToString();
  ASSERT_EQ(one[0].res->history.size(), 2u);
  for (const auto& h : one[0].res->history) EXPECT_GT(h.at("grad_norm"), 0.0);  // every iteration updates
  EXPECT_GT(one[0].res->history[0].at("qk_clipped_heads") + one[0].res->history[1].at("qk_clipped_heads"), 0.0)
      << "max_logit " << one[0].res->history[0].at("max_logit");
  for (int W : {2, 3}) {
    const std::string what = std::to_string(W) + " ranks";
    auto dp = RunRanks(W, Tmp("w" + std::to_string(W)), 0, false);
    for (int r = 0; r < W; ++r) ASSERT_TRUE(dp[r].res.ok()) << what << " rank " << r << ": " << dp[r].res.status().ToString();
    ExpectSameHistory(*one[0].res, *dp[0].res, what);
    for (int r = 1; r < W; ++r) ExpectSameHistory(*dp[0].res, *dp[r].res, what + " rank " + std::to_string(r));
    for (int r = 0; r < W; ++r) ExpectSameWeights(dp[0], dp[r], what + " rank " + std::to_string(r), true);
    ExpectSameWeights(one[0], dp[0], what, false);
    RecordProperty("max_abs_weight_diff_w" + std::to_string(W), std::to_string(MaxWeightDiff(one[0], dp[0])));
    // Rank 0 alone wrote the trajectories and metrics (every group's rollouts, in group order).
    auto lines = ReadFile(Tmp("w" + std::to_string(W)) + "/trajectories/iter_1.jsonl");
    ASSERT_TRUE(lines.ok());
    EXPECT_EQ(std::count(lines->begin(), lines->end(), '\n'), 6);
  }
}

TEST(DataParallelRl, StoppedAtTwoRanksResumesAtThree) {
  auto one = RunRanks(1, Tmp("r_one"), 0, false);
  ASSERT_TRUE(one[0].res.ok()) << one[0].res.status().ToString();
  auto a = RunRanks(2, Tmp("r_dp"), 1, false);
  for (auto& o : a) ASSERT_TRUE(o.res.ok()) << o.res.status().ToString();
  auto b = RunRanks(3, Tmp("r_dp"), 0, true);
  for (auto& o : b) ASSERT_TRUE(o.res.ok()) << o.res.status().ToString();
  ExpectSameHistory(*one[0].res, *b[0].res, "resumed at 3 ranks");
  for (auto& o : b) ExpectSameWeights(b[0], o, "resumed at 3 ranks", true);
  ExpectSameWeights(one[0], b[0], "resumed at 3 ranks", false);
}

// Partial rollouts: each rank advances its own paused episodes with its share of the token budget; the
// ended ones are gathered, groups enter the update once all K have ended on whichever rank, and a run
// stopped at 2 ranks resumes at 3 (the paused episodes restart on rank group % W). Not comparable to one
// process (the budget is shared differently), so: every rank's weights identical, whole groups only,
// episodes paused and resumed.
TEST(DataParallelRl, PartialRolloutsCarryEpisodesPerRankAndResumeAtAnotherWorldSize) {
  RlConfig c = Config();
  c.iterations = 4;
  c.partial_rollout.token_budget = 24;
  auto a = RunRanks(2, Tmp("partial"), 2, false, -1, c);
  for (auto& o : a) ASSERT_TRUE(o.res.ok()) << o.res.status().ToString();
  ExpectSameWeights(a[0], a[1], "partial, 2 ranks", true);
  auto b = RunRanks(3, Tmp("partial"), 0, true, -1, c);
  for (auto& o : b) ASSERT_TRUE(o.res.ok()) << o.res.status().ToString();
  for (int r = 1; r < 3; ++r) ExpectSameWeights(b[0], b[r], "partial, resumed at 3 ranks", true);
  ASSERT_EQ(b[0].res->history.size(), 4u);
  double paused = 0, resumed = 0, updated = 0;
  for (const auto& h : b[0].res->history) {
    EXPECT_EQ(std::fmod(h.at("rollouts_updated"), 2.0), 0.0) << "whole groups only";
    paused += h.at("episodes_paused");
    resumed += h.at("episodes_resumed");
    updated += h.at("rollouts_updated");
  }
  EXPECT_GT(paused, 0);
  EXPECT_GT(resumed, 0);
  EXPECT_GT(updated, 0);
}

TEST(DataParallelRl, AFailingRankStopsTheOthersWithAnError) {
  auto dp = RunRanks(2, Tmp("fail"), 0, false, /*fail_rank=*/1);
  ASSERT_FALSE(dp[1].res.ok());
  EXPECT_NE(dp[1].res.status().message().find("collector of rank 1 failed"), std::string::npos);
  ASSERT_FALSE(dp[0].res.ok());  // blocked in the gather, then the closed connection
  EXPECT_NE(dp[0].res.status().message().find("(gloo)"), std::string::npos) << dp[0].res.status().ToString();
}

}  // namespace
}  // namespace k2::rl
