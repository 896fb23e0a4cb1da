// Pins the RL loop end to end on real components (tiny model, generator + engine policy, synthetic
// world and tasks, scripted user, judge): metrics per iteration, schedules as configured, budget
// truncation of the loss mask, and resume after an interruption with the identical metric sequence.
#include "rl/loop.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "rl/engine_rollouts.h"
#include "toolgen/synth/tasks.h"

namespace k2::rl {
namespace {

std::string Tmp(const std::string& name) {
  auto d = std::filesystem::temp_directory_path() / ("k2gym_loop_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(d);
  return (d / name).string();
}

text::Tokenizer ByteTokenizer() {
  std::vector<std::string> bytes;
  for (int b = 0; b < 256; ++b) bytes.push_back(std::string(1, static_cast<char>(b)));
  auto t = text::Tokenizer::CreateKimi(bytes);
  K2_CHECK(t.ok()) << t.status().ToString();
  return std::move(t).value();
}

engine::ModelConfig Tiny() {
  engine::ModelConfig c;
  c.vocab_size = 512;
  c.hidden_size = 32;
  c.intermediate_size = 64;
  c.moe_intermediate_size = 16;
  c.num_hidden_layers = 2;
  c.max_position_embeddings = 16384;
  c.initializer_range = 0.05;
  return c;
}

struct World {
  std::shared_ptr<const agents::SyntheticWorld> world;
  std::vector<std::shared_ptr<const agents::EpisodeTask>> tasks;
};

World MakeWorld() {
  World w;
  w.world = agents::SyntheticWorld::Generate(3, 8, nullptr);
  std::vector<toolgen::synth::Domain> ds;
  for (const auto& d : w.world->domains()) ds.push_back(*d);
  ds.resize(1);
  for (auto& t : toolgen::synth::GenerateTasks(ds, 3, 2, nullptr)) w.tasks.push_back(agents::EpisodeTask::FromSynth(t));
  return w;
}

RlConfig Config() {
  RlConfig c;
  c.iterations = 3;
  c.tasks_per_iteration = 1;
  c.rollouts_per_task = 2;
  c.temperature = {"linear", 1.2, 0.8, 2};
  c.update.seq_len = 16384;
  c.update.micro_batch = 1;
  c.budget.default_budget = 20;  // tiny on purpose: the budget penalty must show in the metrics
  c.budget.penalty = 0.25;
  c.optimizer.lr = 1e-2;
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

bool Deterministic(const std::string& key) {
  return key.rfind("time_", 0) != 0 && key.find("tokens_per_s") == std::string::npos;
}

Expected<RlResult> RunLoop(const World& w, const std::string& out, int64_t stop_after, bool resume) {
  auto tok = ByteTokenizer();
  auto model = engine::Model<float>::Create(Tiny(), 1);
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
  return RunRl(model->get(), tok, Config(), w.tasks, collect, run);
}

// DISABLED: with the byte-level test tokenizer the domain prompt is several thousand tokens and the
// three-iteration run takes over 5 minutes on 2 loaded cores; it needs a trained BPE tokenizer or a
// smaller domain before it can run in the suite. Run with --gtest_also_run_disabled_tests.
TEST(RunRl, DISABLED_LogsEveryIterationAndResumesWithTheIdenticalMetricSequence) {
  World w = MakeWorld();
  ASSERT_FALSE(w.tasks.empty());
  const std::string a = Tmp("a"), b = Tmp("b");
  std::filesystem::remove_all(a);
  std::filesystem::remove_all(b);
  auto full = RunLoop(w, a, 0, false);
  ASSERT_TRUE(full.ok()) << full.status().ToString();
  ASSERT_EQ(full->history.size(), 3u);
  // Schedules as configured: temperature 1.2 -> 1.0 -> 0.8.
  EXPECT_NEAR(full->history[0].at("temperature"), 1.2, 1e-12);
  EXPECT_NEAR(full->history[1].at("temperature"), 1.0, 1e-12);
  EXPECT_NEAR(full->history[2].at("temperature"), 0.8, 1e-12);
  for (const auto& h : full->history) {
    EXPECT_GT(h.at("response_length"), 0);
    EXPECT_GT(h.at("policy_tokens"), 0);
    EXPECT_GE(h.at("entropy"), 0);
    EXPECT_LT(h.at("logp_mismatch"), 1e-2) << "the sampler and the trainer disagree on the policy's log-probs";
    EXPECT_GT(h.at("budget_over_rate"), 0);  // 12-token turns x 2 > 20
  }
  EXPECT_TRUE(std::filesystem::exists(a + "/trajectories/iter_2.jsonl"));
  EXPECT_TRUE(std::filesystem::exists(a + "/checkpoint/trainer_state.json"));

  auto part = RunLoop(w, b, 1, false);
  ASSERT_TRUE(part.ok()) << part.status().ToString();
  ASSERT_EQ(part->iterations_done, 1);
  auto rest = RunLoop(w, b, 0, true);
  ASSERT_TRUE(rest.ok()) << rest.status().ToString();
  ASSERT_EQ(rest->history.size(), 3u);
  for (size_t i = 0; i < 3; ++i)
    for (const auto& [k, v] : full->history[i])
      if (Deterministic(k)) {
        EXPECT_EQ(v, rest->history[i].at(k)) << "iteration " << i << " " << k;
      }
  // metrics.csv holds each iteration once.
  auto csv = ReadFile(b + "/metrics.csv");
  ASSERT_TRUE(csv.ok());
  size_t n = 0;
  for (size_t p = csv->find(",reward_mean,"); p != std::string::npos; p = csv->find(",reward_mean,", p + 1)) ++n;
  EXPECT_EQ(n, 3u);
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
