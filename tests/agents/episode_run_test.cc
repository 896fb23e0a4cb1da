// The resumable episode (EpisodeRun): sliced advances replay the uninterrupted run byte for byte,
// pauses are recorded, misuse is an error, and unfinished runs are cut as "aborted".
#include <gtest/gtest.h>

#include <limits>

#include "agents/episode.h"
#include "agents/scripted_policies.h"
#include "agents/scripted_user.h"
#include "tests/agents/test_world.h"

namespace k2::agents {
namespace {

using testing::Maker;
using testing::TestWorld;

constexpr int64_t kAll = std::numeric_limits<int64_t>::max();

// The oracle with an engine-like token stream: the reply's bytes are its "generated tokens" and
// the logprobs come from the per-turn seed, so token counts vary per turn and any mix-up in the
// request order (seed, history) shows in the stream.
class TokenOracle : public Policy {
 public:
  std::string name() const override { return "token-oracle"; }
  Expected<PolicyTurn> Act(const PolicyRequest& r) override {
    K2_ASSIGN_OR_RETURN(PolicyTurn t, oracle_.Act(r));
    std::string text = t.message.content;
    for (const auto& c : t.message.tool_calls) text += c.name + c.arguments;
    t.context_tokens = {static_cast<int32_t>(r.messages.size()), 1, 2};
    for (unsigned char ch : text) t.tokens.push_back(ch);
    if (t.tokens.empty()) t.tokens.push_back(0);
    for (size_t i = 0; i < t.tokens.size(); ++i) {
      t.logprobs.push_back(-static_cast<float>((r.seed >> (i % 48)) & 0xff) / 256.0f);
      t.policy_logprobs.push_back(t.logprobs.back() - 0.5f);
    }
    t.completion_tokens = static_cast<int64_t>(t.tokens.size());
    return t;
  }
  void EndSession(const std::string& s) override {
    ++ended;
    oracle_.EndSession(s);
  }
  size_t live_sessions() const { return oracle_.live_sessions(); }
  int ended = 0;

 private:
  OracleTaskPolicy oracle_;  // default imperfection rates: clarifications, errors, distractors
};

// Everything but wall time and the pause record.
std::string Stable(Trajectory t) {
  json j = t.ToJson();
  j.erase("timings");
  j["provenance"].erase("pauses");
  j["provenance"].erase("pause_at_tokens");
  return CanonicalJson(j);
}

TEST(EpisodeRun, SlicedAdvancesGiveTheUninterruptedTrajectory) {
  TokenOracle policy;
  ScriptedUser user;
  auto env = Maker()();
  ASSERT_TRUE(env.ok());
  int paused_episodes = 0;
  for (size_t k = 0; k < 12; ++k) {
    const auto& task = TestWorld().tasks[k];
    const Trajectory whole = RunEpisode(task, **env, policy, &user, {}, 21);
    ASSERT_TRUE(whole.Validate().ok()) << whole.Validate().ToString();
    EXPECT_EQ(whole.provenance["pauses"], 0);
    for (int64_t budget : {int64_t{1}, int64_t{2}, int64_t{5}, int64_t{17}, int64_t{60}, int64_t{1000}}) {
      EpisodeRun run(task, **env, policy, &user, {}, 21);
      int calls = 0;
      while (true) {
        auto r = run.Advance(budget);
        ASSERT_TRUE(r.ok()) << r.status().ToString();
        ++calls;
        if (*r) break;
        EXPECT_FALSE(run.done());
        ASSERT_LT(calls, 10000);
      }
      EXPECT_TRUE(run.done());
      EXPECT_EQ(run.pauses(), calls - 1);
      EXPECT_EQ(run.policy_tokens(), whole.completion_tokens);
      const int pauses = run.pauses();
      Trajectory sliced = run.Finish();
      EXPECT_EQ(Stable(sliced), Stable(whole)) << "task " << k << " budget " << budget;
      EXPECT_EQ(sliced.provenance["pauses"], pauses);
      ASSERT_EQ(sliced.provenance["pause_at_tokens"].size(), static_cast<size_t>(pauses));
      // Budget 1 pauses after every policy turn that leaves the episode running.
      if (budget == 1) {
        EXPECT_GE(pauses, whole.turns - 1);
      }
      paused_episodes += pauses > 0;
    }
  }
  EXPECT_GT(paused_episodes, 24);
  EXPECT_EQ(policy.live_sessions(), 0u);
}

TEST(EpisodeRun, InterleavedRunsOnTheirOwnEnvsMatchSequentialRuns) {
  // As a partial-rollout loop does it: many episodes alive at once, advanced round-robin.
  TokenOracle policy;
  ScriptedUser user;
  std::vector<std::unique_ptr<Env>> envs;
  std::vector<EpisodeRun> runs;
  std::vector<std::string> expected;
  auto seq_env = Maker()();
  ASSERT_TRUE(seq_env.ok());
  for (size_t k = 0; k < 8; ++k) {
    expected.push_back(Stable(RunEpisode(TestWorld().tasks[k], **seq_env, policy, &user, {}, 4, 1)));
    auto e = Maker()();
    ASSERT_TRUE(e.ok());
    envs.push_back(std::move(*e));
    runs.emplace_back(TestWorld().tasks[k], *envs.back(), policy, &user, EpisodeLimits{}, 4, 1);
  }
  for (bool any = true; any;) {
    any = false;
    for (auto& run : runs) {
      if (run.done()) continue;
      auto r = run.Advance(8);
      ASSERT_TRUE(r.ok());
      any = true;
    }
  }
  for (size_t k = 0; k < runs.size(); ++k) EXPECT_EQ(Stable(runs[k].Finish()), expected[k]) << k;
}

TEST(EpisodeRun, MisuseIsAnErrorAndUnfinishedRunsAreAborted) {
  TokenOracle policy;
  ScriptedUser user;
  auto env = Maker()();
  ASSERT_TRUE(env.ok());
  std::shared_ptr<const EpisodeTask> task;
  for (const auto& t : TestWorld().tasks)
    if (t->synth->actions.size() >= 2) task = t;
  ASSERT_TRUE(task);
  EpisodeRun run(task, **env, policy, &user, {}, 3);
  auto bad = run.Advance(0);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Code::kInvalidArgument);
  auto r = run.Advance(1);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(*r);
  EXPECT_EQ(run.turns(), 1);
  EXPECT_GT(run.policy_tokens(), 0);
  EXPECT_EQ(run.trajectory().turns, 1);
  const int ended_before = policy.ended;
  Trajectory t = run.Finish();
  EXPECT_EQ(t.end_reason, "aborted");
  EXPECT_NE(t.error.find("paused"), std::string::npos) << t.error;
  EXPECT_TRUE(t.Validate().ok()) << t.Validate().ToString();
  EXPECT_EQ(policy.ended, ended_before + 1);
  EXPECT_EQ(policy.live_sessions(), 0u);
  auto after = run.Advance(1);
  ASSERT_FALSE(after.ok());
  EXPECT_EQ(after.status().code(), Code::kFailedPrecondition);

  // A run dropped without Finish frees its policy session too.
  {
    EpisodeRun dropped(task, **env, policy, &user, {}, 4);
    ASSERT_TRUE(dropped.Advance(1).ok());
    EXPECT_EQ(policy.live_sessions(), 1u);
  }
  EXPECT_EQ(policy.live_sessions(), 0u);
}

TEST(EpisodeRun, BudgetsAndEndReasonsMatchRunEpisode) {
  // An episode that ends on a budget ends the same way however it is sliced.
  TokenOracle policy;
  ScriptedUser user;
  auto env = Maker()();
  ASSERT_TRUE(env.ok());
  std::shared_ptr<const EpisodeTask> task;
  for (const auto& t : TestWorld().tasks)
    if (t->synth->actions.size() >= 2) task = t;
  ASSERT_TRUE(task);
  for (EpisodeLimits lim : {EpisodeLimits{.max_turns = 2}, EpisodeLimits{.max_tool_calls = 1},
                            EpisodeLimits{.max_tokens = 40}}) {
    const Trajectory whole = RunEpisode(task, **env, policy, &user, lim, 8);
    EpisodeRun run(task, **env, policy, &user, lim, 8);
    while (true) {
      auto r = run.Advance(3);
      ASSERT_TRUE(r.ok());
      if (*r) break;
    }
    Trajectory sliced = run.Finish();
    EXPECT_NE(whole.end_reason, "user_stop");
    EXPECT_EQ(sliced.end_reason, whole.end_reason);
    EXPECT_EQ(Stable(sliced), Stable(whole));
  }
}

}  // namespace
}  // namespace k2::agents
