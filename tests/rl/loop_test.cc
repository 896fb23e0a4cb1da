// Pins the RL loop end to end on real components (tiny model, generator + engine policy, synthetic
// world and tasks, scripted user, judge): metrics per iteration, schedules as configured, budget
// truncation of the loss mask, and resume after an interruption with the identical metric sequence.
#include "rl/loop.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <map>

#include "rl/engine_rollouts.h"
#include "rl/report.h"
#include "tests/rl/rl_fixture.h"
#include "toolgen/synth/tasks.h"

namespace k2::rl {
namespace {

std::string Tmp(const std::string& name) {
  auto d = std::filesystem::temp_directory_path() / ("k2gym_loop_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(d);
  return (d / name).string();
}

// One world, corpus and tokenizer for every test of this binary (deterministic, built once).
struct Shared {
  fixture::SmallWorld w = fixture::MakeSmallWorld();
  std::vector<agents::Trajectory> oracle = fixture::OracleTrajectories(w);
  text::Tokenizer tok = fixture::TrainTokenizer(fixture::ChatCorpus(oracle));
  std::string ptx = [this] {  // the oracle dialogs as PTX data (sft::LoadDialogs reads trajectories)
    std::string lines;
    for (const auto& t : oracle) lines += t.ToJson().dump() + "\n";
    const std::string p = Tmp("ptx.jsonl");
    K2_CHECK(WriteFileAtomic(p, lines).ok());
    return p;
  }();
};
const Shared& S() {
  static const Shared* s = new Shared();
  return *s;
}

RlConfig Config() {
  RlConfig c;
  c.iterations = 3;
  c.tasks_per_iteration = 1;
  c.rollouts_per_task = 2;
  c.temperature = {"linear", 1.2, 0.8, 2};
  c.update.seq_len = 1024;
  c.threads = 1;  // one compute thread: OpenMP reductions combine in a fixed order
  c.update.micro_batch = 1;
  c.budget.default_budget = 8;  // below one turn (12 tokens) on purpose: the penalty must show in the metrics
  c.budget.penalty = 0.25;
  c.optimizer.lr = 1e-2;
  c.ptx.data = S().ptx;
  c.ptx.coef = {"linear", 0.4, 0.1, 2};
  c.ptx.rows = 1;
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

// Engine rollouts whose rewards are replaced by reward(i) (i: the trajectory's index in the iteration);
// `seen`, if given, receives the last iteration's trajectories.
CollectFn CollectWithRewards(EngineRollouts* ro, std::function<double(size_t)> reward,
                             std::vector<agents::Trajectory>* seen = nullptr) {
  return [ro, reward, seen](const std::vector<agents::EpisodeJob>& jobs, double temperature,
                            uint64_t seed) -> Expected<std::vector<agents::Trajectory>> {
    std::vector<agents::Trajectory> ts = ro->Run(jobs, temperature, seed);
    for (size_t i = 0; i < ts.size(); ++i) ts[i].reward = reward(i);
    if (seen) *seen = ts;
    return ts;
  };
}

bool Deterministic(const std::string& key) {
  return key.rfind("time_", 0) != 0 && key.find("tokens_per_s") == std::string::npos;
}

// logp_mismatch measures the sampler's float noise itself: the generator's log-probs are not bitwise
// reproducible from run to run (two fresh runs in one process differ by ~1e-7 at iteration 0, whatever
// the compute threads), so it compares to 1e-6; every other metric must be identical (the update
// ignores that noise: UpdateConfig::logratio_floor).
bool FloatNoise(const std::string& key) {
  return key == "logp_mismatch";
}

void ExpectSameMetric(const std::string& key, double a, double b, size_t it) {
  if (FloatNoise(key)) {
    EXPECT_NEAR(a, b, 1e-6) << "iteration " << it << " " << key;
  } else {
    EXPECT_EQ(a, b) << "iteration " << it << " " << key;
  }
}

Expected<RlResult> RunLoop(const std::string& out, int64_t stop_after, bool resume, const RlConfig& cfg = Config()) {
  const text::Tokenizer& tok = S().tok;
  const fixture::SmallWorld& w = S().w;
  auto model = engine::Model<float>::Create(fixture::TinyModel(tok.vocab_size()), 1);
  K2_CHECK(model.ok());
  auto ro = EngineRollouts::Create(model->get(), &tok, w.world, w.tasks, Rollout());
  if (!ro.ok()) return ro.status();
  CollectFn collect = [&](const std::vector<agents::EpisodeJob>& jobs, double temperature, uint64_t seed)
      -> Expected<std::vector<agents::Trajectory>> { return (*ro)->Run(jobs, temperature, seed); };
  RlRun run;
  run.out_dir = out;
  run.seed = 9;
  run.stop_after = stop_after;
  run.resume = resume;
  return RunRl(model->get(), tok, cfg, w.tasks, collect, run);
}

TEST(SmallWorld, HasOneOrTwoToolsAndShortPrompts) {
  const auto& w = S().w;
  EXPECT_GE(w.tools.size(), 1u);
  EXPECT_LE(w.tools.size(), 2u);
  ASSERT_GE(w.tasks.size(), 2u);
  EXPECT_EQ(w.world->domains().front()->ops.size(), w.tools.size());
}

TEST(RunRl, LogsEveryIterationAndResumesWithTheIdenticalMetricSequence) {
  const std::string a = Tmp("a"), b = Tmp("b");
  std::filesystem::remove_all(a);
  std::filesystem::remove_all(b);
  auto full = RunLoop(a, 0, false);
  ASSERT_TRUE(full.ok()) << full.status().ToString();
  ASSERT_EQ(full->history.size(), 3u);
  // Schedules as configured (start, middle, end): temperature 1.2 -> 1.0 -> 0.8, PTX coefficient
  // 0.4 -> 0.25 -> 0.1, the budget 8 tokens per sample at every iteration.
  const double temps[] = {1.2, 1.0, 0.8}, ptx[] = {0.4, 0.25, 0.1};
  for (int i = 0; i < 3; ++i) {
    EXPECT_NEAR(full->history[i].at("temperature"), temps[i], 1e-12) << i;
    EXPECT_NEAR(full->history[i].at("ptx_coef"), ptx[i], 1e-12) << i;
    EXPECT_EQ(full->history[i].at("budget_tokens"), 8) << i;
    EXPECT_GT(full->history[i].at("loss_ptx"), 0) << i;
  }
  for (const auto& h : full->history) {
    EXPECT_GT(h.at("response_length"), 0);
    EXPECT_GT(h.at("policy_tokens"), 0);
    EXPECT_GE(h.at("entropy"), 0);
    EXPECT_LT(h.at("logp_mismatch"), 1e-2) << "the sampler and the trainer disagree on the policy's log-probs";
    EXPECT_GT(h.at("budget_over_rate"), 0);  // a 12-token turn > 8
  }
  // The same values read back from metrics.csv.
  auto csv_a = ReadMetricsCsv(a + "/metrics.csv");
  ASSERT_TRUE(csv_a.ok()) << csv_a.status().ToString();
  for (const char* key : {"temperature", "ptx_coef", "budget_tokens"}) {
    ASSERT_EQ(csv_a->at(key).size(), 3u) << key;
    for (int i = 0; i < 3; ++i) {
      EXPECT_EQ(csv_a->at(key)[i].first, i) << key;
      EXPECT_NEAR(csv_a->at(key)[i].second, full->history[i].at(key), 1e-8) << key;  // CSV holds %.9g
    }
  }
  EXPECT_TRUE(std::filesystem::exists(a + "/trajectories/iter_2.jsonl"));
  EXPECT_TRUE(std::filesystem::exists(a + "/checkpoint/trainer_state.json"));

  auto part = RunLoop(b, 1, false);
  ASSERT_TRUE(part.ok()) << part.status().ToString();
  ASSERT_EQ(part->iterations_done, 1);
  auto rest = RunLoop(b, 0, true);
  ASSERT_TRUE(rest.ok()) << rest.status().ToString();
  ASSERT_EQ(rest->history.size(), 3u);
  for (size_t i = 0; i < 3; ++i)
    for (const auto& [k, v] : full->history[i])
      if (Deterministic(k)) ExpectSameMetric(k, v, rest->history[i].at(k), i);
  // metrics.csv holds each iteration once.
  auto csv = ReadFile(b + "/metrics.csv");
  ASSERT_TRUE(csv.ok());
  size_t n = 0;
  for (size_t p = csv->find(",reward_mean,"); p != std::string::npos; p = csv->find(",reward_mean,", p + 1)) ++n;
  EXPECT_EQ(n, 3u);
}

// skip_uniform_groups: a group whose K rewards are equal is left out of the update (counted in
// groups_skipped); the other group is still updated, and nothing is skipped without the option.
TEST(RunRl, SkipUniformGroupsLeavesEqualRewardGroupsOut) {
  for (bool skip : {true, false}) {
    RlConfig cfg = Config();
    cfg.iterations = 2;
    cfg.tasks_per_iteration = 2;
    cfg.budget.default_budget = 0;  // no budget penalty: the rewards below are the rollouts' rewards
    cfg.update.skip_uniform_groups = skip;
    const text::Tokenizer& tok = S().tok;
    const fixture::SmallWorld& w = S().w;
    auto model = engine::Model<float>::Create(fixture::TinyModel(tok.vocab_size()), 1);
    ASSERT_TRUE(model.ok());
    auto ro = EngineRollouts::Create(model->get(), &tok, w.world, w.tasks, Rollout());
    ASSERT_TRUE(ro.ok()) << ro.status().ToString();
    CollectFn collect = CollectWithRewards(ro->get(), [](size_t i) {
      return i < 2 ? 0.5 : static_cast<double>(i % 2);  // group 0 equal
    });
    const std::string out = Tmp(skip ? "skip" : "noskip");
    std::filesystem::remove_all(out);
    RlRun run;
    run.out_dir = out;
    run.seed = 9;
    auto r = RunRl(model->get(), tok, cfg, w.tasks, collect, run);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(r->history.size(), 2u);
    for (const auto& h : r->history) {
      EXPECT_EQ(h.at("rollouts_updated"), skip ? 2 : 4);
      EXPECT_EQ(h.count("groups_skipped"), skip ? 1u : 0u);
      if (skip) {
        EXPECT_EQ(h.at("groups_skipped"), 1);
      }
      EXPECT_GT(h.at("policy_tokens"), 0);
      EXPECT_GT(h.at("grad_norm"), 0);
      EXPECT_NEAR(h.at("reward_mean"), 0.5, 1e-12);  // the metrics still cover every rollout
    }
  }
}

// minibatches = 2: one iteration with two groups takes two optimizer steps, group 0 then group 1, each
// scored by the weights the previous step left: the same weights as two PolicyUpdate calls by hand.
TEST(RunRl, MinibatchesStepOnEachPartInGroupOrder) {
  RlConfig cfg = Config();
  cfg.iterations = 1;
  cfg.tasks_per_iteration = 2;
  cfg.budget.default_budget = 0;
  cfg.ptx.data = "";
  cfg.ptx.coef = {"constant", 0.0, 0.0, 1};
  cfg.update.minibatches = 2;
  const text::Tokenizer& tok = S().tok;
  const fixture::SmallWorld& w = S().w;
  auto a = engine::Model<float>::Create(fixture::TinyModel(tok.vocab_size()), 1);
  auto b = engine::Model<float>::Create(fixture::TinyModel(tok.vocab_size()), 1);
  ASSERT_TRUE(a.ok() && b.ok());
  auto ro = EngineRollouts::Create(a->get(), &tok, w.world, w.tasks, Rollout());
  ASSERT_TRUE(ro.ok()) << ro.status().ToString();
  std::vector<agents::Trajectory> seen;
  CollectFn collect =
      CollectWithRewards(ro->get(), [](size_t i) { return static_cast<double>(i % 2); }, &seen);  // both mixed
  const std::string out = Tmp("minibatches");
  std::filesystem::remove_all(out);
  RlRun run;
  run.out_dir = out;
  run.seed = 5;
  auto r = RunRl(a->get(), tok, cfg, w.tasks, collect, run);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->history.size(), 1u);
  EXPECT_EQ(r->history[0].at("update_steps"), 2);
  EXPECT_EQ(r->history[0].at("rollouts_updated"), 4);
  ASSERT_EQ(seen.size(), 4u);

  engine::OptimizerConfig oc = cfg.optimizer;
  oc.total_steps = std::max<int64_t>(oc.total_steps, 2);
  engine::Optimizer<float> opt(b->get(), oc);
  for (int64_t g = 0; g < 2; ++g) {
    std::vector<struct Rollout> part;  // (the fixture's Rollout() hides the type's plain name)
    for (int64_t i = 2 * g; i < 2 * g + 2; ++i) {
      auto ro_i = TrajectoryToRollout(seen[static_cast<size_t>(i)], cfg.budget, cfg.task_type, g, nullptr);
      ASSERT_TRUE(ro_i.ok());
      part.push_back(*ro_i);
    }
    auto st = PolicyUpdate(b->get(), &opt, g, part, nullptr, 0.0, cfg.update);
    ASSERT_TRUE(st.ok()) << st.status().ToString();
    EXPECT_GT(st->opt.grad_norm, 0);
  }
  const auto& pa = (*a)->params();
  const auto& pb = (*b)->params();
  double diff = 0, moved = 0;
  auto c = engine::Model<float>::Create(fixture::TinyModel(tok.vocab_size()), 1);  // the initial weights
  ASSERT_TRUE(c.ok());
  for (size_t i = 0; i < pa.size(); ++i)
    for (size_t j = 0; j < pa[i].w.size(); ++j) {
      diff = std::max(diff, std::fabs(static_cast<double>(pa[i].w[j]) - pb[i].w[j]));
      moved = std::max(moved, std::fabs(static_cast<double>(pa[i].w[j]) - (*c)->params()[i].w[j]));
    }
  EXPECT_LT(diff, 1e-6) << "RunRl's two minibatch steps differ from two PolicyUpdate calls";
  EXPECT_GT(moved, 1e-3) << "the steps moved nothing";
}

// GRPO with a KL term: the frozen reference is written at the start, kl_ref is logged, and a resumed
// run (which reloads the reference, not the checkpoint's weights) logs the same sequence. Two Model
// instances with identical weights give log-probs that differ by ~1e-7 (the engine's forward is not
// bitwise reproducible across instances), and once the policy has moved the KL gradient carries that
// noise, so float metrics here compare to 1e-4 relative; counts, rewards and schedules exactly.
TEST(RunRl, GrpoKlReferenceSurvivesResume) {
  RlConfig c = Config();
  c.update.objective = "grpo";
  c.update.kl_coef = 0.5;
  const std::string a = Tmp("kl_a"), b = Tmp("kl_b");
  std::filesystem::remove_all(a);
  std::filesystem::remove_all(b);
  auto full = RunLoop(a, 0, false, c);
  ASSERT_TRUE(full.ok()) << full.status().ToString();
  EXPECT_TRUE(std::filesystem::exists(a + "/reference/model.safetensors"));
  for (const auto& h : full->history) EXPECT_GE(h.at("kl_ref"), 0);
  ASSERT_TRUE(RunLoop(b, 1, false, c).ok());
  auto rest = RunLoop(b, 0, true, c);
  ASSERT_TRUE(rest.ok()) << rest.status().ToString();
  ASSERT_EQ(rest->history.size(), full->history.size());
  for (size_t i = 0; i < full->history.size(); ++i)
    for (const auto& [k, v] : full->history[i])
      if (Deterministic(k)) {
        const double w = rest->history[i].at(k);
        if (k == "grad_norm" || k == "loss_policy" || k == "kl_ref" || k == "entropy" || k == "loss_ptx" ||
            k == "max_logit" || k == "expert_load_max_over_mean" || k == "clip_fraction" || k == "logp_mismatch") {
          EXPECT_NEAR(v, w, 1e-4 * std::max(1e-2, std::fabs(v))) << "iteration " << i << " " << k;
        } else {
          EXPECT_EQ(v, w) << "iteration " << i << " " << k;
        }
      }
  EXPECT_EQ(full->history[0].at("kl_ref"), 0) << "at the start the policy is the reference (noise floored)";
  RlConfig k2 = Config();
  k2.update.kl_coef = 0.5;  // objective k2
  auto bad = RunLoop(Tmp("kl_bad"), 0, false, k2);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("kl_coef"), std::string::npos) << bad.status().ToString();
}

// Partial rollout: the same greedy episodes advanced in slices of a small token budget over several
// "iterations" (no update in between) end exactly as when each runs uninterrupted.
TEST(PartialRollout, PausedEpisodesResumeToTheUninterruptedResult) {
  const text::Tokenizer& tok = S().tok;
  const fixture::SmallWorld& w = S().w;
  auto model = engine::Model<float>::Create(fixture::TinyModel(tok.vocab_size()), 1);
  ASSERT_TRUE(model.ok());
  RolloutConfig rc = Rollout();
  rc.episode.max_turns = 3;
  rc.episode.max_tokens_per_turn = 12;
  std::vector<agents::EpisodeJob> jobs;
  for (size_t i = 0; i < 2 && i < w.tasks.size(); ++i)
    for (int k = 0; k < 2; ++k) jobs.push_back({w.tasks[i], k});
  const uint64_t seed = 77;
  auto whole = EngineRollouts::Create(model->get(), &tok, w.world, w.tasks, rc);
  ASSERT_TRUE(whole.ok()) << whole.status().ToString();
  std::vector<agents::Trajectory> ref = (*whole)->Run(jobs, 0.0, seed);

  for (int threads : {1, 2}) {
    rc.episode_threads = threads;
    auto part = EngineRollouts::Create(model->get(), &tok, w.world, w.tasks, rc);
    ASSERT_TRUE(part.ok()) << part.status().ToString();
    std::vector<PartialJob> pj;
    for (size_t i = 0; i < jobs.size(); ++i) pj.push_back({jobs[i], static_cast<int64_t>(i), 0, seed, 0.0});
    std::map<std::pair<std::string, int>, agents::Trajectory> got;
    int64_t max_paused = 0, iters = 0;
    for (int64_t it = 0; it < 40 && (it == 0 || (*part)->paused() > 0); ++it, ++iters) {
      auto st = (*part)->Advance(it == 0 ? pj : std::vector<PartialJob>{}, it, /*token_budget=*/16);
      ASSERT_TRUE(st.ok()) << st.status().ToString();
      max_paused = std::max(max_paused, st->paused);
      EXPECT_EQ(st->paused, static_cast<int64_t>(st->carried.size()));
      EXPECT_EQ(st->resumed, it == 0 ? 0 : static_cast<int64_t>((*part)->paused() + st->done.size()));
      for (size_t i = 0; i < st->done.size(); ++i) {
        agents::Trajectory& t = st->done[i];
        EXPECT_EQ(t.provenance.value("rl_group", -1), st->groups[i]);
        EXPECT_EQ(t.provenance.value("rl_staleness", -1), it) << "started at iteration 0, ended at " << it;
        EXPECT_GE(t.provenance.value("rl_weight_versions", 0), 1);
        got[{t.task_id, t.trial}] = std::move(t);
      }
    }
    EXPECT_GT(max_paused, 0) << "the budget never paused an episode: the test proves nothing";
    EXPECT_GE(iters, 2);
    ASSERT_EQ(got.size(), ref.size());
    for (const auto& r : ref) {
      auto it = got.find({r.task_id, r.trial});
      ASSERT_NE(it, got.end()) << r.task_id << " #" << r.trial;
      const agents::Trajectory& t = it->second;
      EXPECT_EQ(t.tokens, r.tokens) << r.task_id;
      EXPECT_EQ(t.policy_mask, r.policy_mask);
      ASSERT_EQ(t.policy_logprobs.size(), r.policy_logprobs.size());
      for (size_t j = 0; j < t.policy_logprobs.size(); ++j)  // float noise of the generator, see FloatNoise
        EXPECT_NEAR(t.policy_logprobs[j], r.policy_logprobs[j], 1e-5) << j;
      EXPECT_EQ(t.end_reason, r.end_reason);
      EXPECT_EQ(t.turns, r.turns);
      EXPECT_EQ(t.reward, r.reward);
      EXPECT_EQ(t.reward_components, r.reward_components);
      ASSERT_EQ(t.messages.size(), r.messages.size());
      for (size_t m = 0; m < t.messages.size(); ++m) EXPECT_EQ(ToJson(t.messages[m]), ToJson(r.messages[m])) << m;
    }
  }
}

// The loop with partial rollout: episodes pause and resume across iterations, groups enter updates
// when complete, and the counts and staleness show in the metrics.
TEST(RunRl, PartialRolloutCarriesEpisodesAcrossIterations) {
  const text::Tokenizer& tok = S().tok;
  const fixture::SmallWorld& w = S().w;
  auto model = engine::Model<float>::Create(fixture::TinyModel(tok.vocab_size()), 1);
  ASSERT_TRUE(model.ok());
  RolloutConfig rc = Rollout();
  rc.episode.max_turns = 3;
  auto ro = EngineRollouts::Create(model->get(), &tok, w.world, w.tasks, rc);
  ASSERT_TRUE(ro.ok());
  RlConfig c = Config();
  c.iterations = 4;
  c.ptx = PtxConfig{};
  c.partial_rollout.token_budget = 12;
  RlRun run;
  run.out_dir = Tmp("partial");
  std::filesystem::remove_all(run.out_dir);
  run.seed = 3;
  run.partial_collect = [&](const std::vector<PartialJob>& jobs, int64_t it, int64_t budget) {
    return (*ro)->Advance(jobs, it, budget);
  };
  CollectFn unused = [](const std::vector<agents::EpisodeJob>&, double, uint64_t)
      -> Expected<std::vector<agents::Trajectory>> { return Internal("partial rollout must not call collect"); };
  auto res = RunRl(model->get(), tok, c, w.tasks, unused, run);
  ASSERT_TRUE(res.ok()) << res.status().ToString();
  ASSERT_EQ(res->history.size(), 4u);
  double paused = 0, resumed = 0, updated = 0, stale = 0;
  for (const auto& h : res->history) {
    EXPECT_EQ(h.at("rollout_token_budget"), 12);
    EXPECT_LE(h.at("rollout_policy_tokens"), 12 + 12 * 4) << "at most one turn over each episode's share";
    EXPECT_EQ(std::fmod(h.at("rollouts_updated"), 2.0), 0.0) << "whole groups only";
    paused += h.at("episodes_paused");
    resumed += h.at("episodes_resumed");
    updated += h.at("rollouts_updated");
    stale = std::max(stale, h.at("staleness_max"));
  }
  EXPECT_GT(paused, 0);
  EXPECT_GT(resumed, 0);
  EXPECT_GT(updated, 0);
  EXPECT_GE(stale, 1);
  auto bad = RunRl(model->get(), tok, c, w.tasks, unused, RlRun{.out_dir = Tmp("partial_bad")});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("partial"), std::string::npos) << bad.status().ToString();
}

TEST(TrajectoryToRollout, OverBudgetCutsTheMaskAndPenalizes) {
  agents::Trajectory t;
  t.id = "x";
  t.tokens = {1, 2, 3, 4, 5, 6};
  t.policy_mask = {0, 1, 1, 0, 1, 1};
  t.policy_logprobs = {0, -1, -1, 0, -1, -1};
  t.reward = 1.0;
  rewards::BudgetConfig b;
  b.default_budget = 3;
  b.penalty = 0.5;
  rewards::BudgetDecision d;
  auto r = TrajectoryToRollout(t, b, "tool", 7, &d);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(d.over);
  EXPECT_EQ(r->mask, (std::vector<uint8_t>{0, 1, 1, 0, 1, 0}));
  EXPECT_DOUBLE_EQ(r->reward, 0.5);
  EXPECT_EQ(r->group, 7);
  b.default_budget = 4;  // exactly at the budget: no penalty
  r = TrajectoryToRollout(t, b, "tool", 0, &d);
  EXPECT_FALSE(d.over);
  EXPECT_DOUBLE_EQ(r->reward, 1.0);
  t.tokens.clear();
  t.policy_mask.clear();
  t.policy_logprobs.clear();
  EXPECT_FALSE(TrajectoryToRollout(t, b, "tool", 0, nullptr).ok());
}

}  // namespace
}  // namespace k2::rl
