// Episode runner over the synthetic env with the oracle and scripted user: gold plans reach the
// expected state hash, budgets and errors end episodes with their reason, runs replay identically.
#include "agents/episode.h"

#include <gtest/gtest.h>

#include "agents/scripted_policies.h"
#include "agents/scripted_user.h"
#include "agents/synthetic_env.h"
#include "core/thread_pool.h"
#include "tests/agents/test_world.h"

namespace k2::agents {
namespace {

using testing::Jobs;
using testing::Maker;
using testing::TestWorld;

// The deterministic part of a trajectory (timings are wall clock).
std::string Stable(const Trajectory& t) {
  json j = t.ToJson();
  j.erase("timings");
  return CanonicalJson(j);
}

TEST(Episode, PerfectOracleReachesTheExpectedStateOnEveryTask) {
  OracleTaskPolicy oracle({.clarify_rate = 0, .error_rate = 0, .distractor_rate = 0});
  ScriptedUser user;
  RunOptions opt{.threads = 2, .seed = 3};
  auto trajs = RunEpisodes(Jobs(), Maker(), oracle, &user, opt);
  ASSERT_EQ(trajs.size(), TestWorld().tasks.size());
  for (size_t i = 0; i < trajs.size(); ++i) {
    const auto& t = trajs[i];
    const auto& task = *TestWorld().tasks[i]->synth;
    EXPECT_EQ(t.end_reason, "user_stop") << t.task_id << " " << t.error;
    EXPECT_EQ(t.final_state_hash, task.expected_hash) << t.task_id;
    EXPECT_TRUE(t.Validate().ok()) << t.Validate().ToString();
    for (const auto& c : t.tool_calls) EXPECT_TRUE(c.valid && !c.is_error) << t.task_id << " " << c.name << ": " << c.observation;
    // ask + one turn per gold action + final answer
    EXPECT_EQ(t.turns, static_cast<int>(task.actions.size()) + 2) << t.task_id;
    EXPECT_EQ(t.messages.front().role, "system");
    EXPECT_EQ(t.messages[1].role, "user");
  }
  EXPECT_EQ(oracle.live_sessions(), 0u) << "EndSession must be called for every episode";
}

TEST(Episode, ImperfectOracleStillReachesTheExpectedState) {
  // Every imperfection in every episode: the bad call is rejected by the schema check (nothing runs),
  // the distractor is read-only, the confirmation is answered "yes".
  OracleTaskPolicy oracle({.clarify_rate = 1, .error_rate = 1, .distractor_rate = 1});
  ScriptedUser user;
  auto trajs = RunEpisodes(Jobs(), Maker(), oracle, &user, {.threads = 2, .seed = 4});
  int invalid = 0;
  for (size_t i = 0; i < trajs.size(); ++i) {
    const auto& t = trajs[i];
    EXPECT_EQ(t.end_reason, "user_stop") << t.task_id << " " << t.error;
    EXPECT_EQ(t.final_state_hash, TestWorld().tasks[i]->synth->expected_hash) << t.task_id;
    int bad = 0;
    for (const auto& c : t.tool_calls) bad += !c.valid;
    EXPECT_EQ(bad, 1) << t.task_id;
    invalid += bad;
  }
  EXPECT_EQ(invalid, static_cast<int>(trajs.size()));
}

TEST(Episode, TransientToolFailuresAreRetried) {
  OracleTaskPolicy oracle({.clarify_rate = 0, .error_rate = 0, .distractor_rate = 0, .max_retries = 50});
  ScriptedUser user;
  auto trajs = RunEpisodes(Jobs(), Maker({.transient_rate = 0.3, .timeout_rate = 0.1}), oracle, &user,
                           {.threads = 2, .seed = 5, .limits = {.max_turns = 200, .max_tool_calls = 400}});
  int faults = 0;
  for (size_t i = 0; i < trajs.size(); ++i) {
    EXPECT_EQ(trajs[i].final_state_hash, TestWorld().tasks[i]->synth->expected_hash) << trajs[i].task_id;
    for (const auto& c : trajs[i].tool_calls) faults += c.is_error;
  }
  EXPECT_GT(faults, 10);  // the fault rates above make this all but certain; the seed fixes it
}

// The slow reference of the runner's reset fast path: an Env that only has the JSON Reset (the base
// ResetTask forwards env_task to it, so the synthetic env re-parses the tau2 JSON every episode).
class JsonResetOnly : public Env {
 public:
  explicit JsonResetOnly(std::unique_ptr<Env> inner) : inner_(std::move(inner)) {}
  Expected<std::vector<Message>> Reset(uint64_t seed, const json& task) override { return inner_->Reset(seed, task); }
  Expected<StepResult> Step(const Message& action) override { return inner_->Step(action); }
  std::vector<toolgen::ToolSpec> Tools() const override { return inner_->Tools(); }
  json OpenAITools() const override { return inner_->OpenAITools(); }
  json State() const override { return inner_->State(); }

 private:
  std::unique_ptr<Env> inner_;
};

TEST(Episode, ParsedTaskResetMatchesTheJsonResetPath) {
  OracleTaskPolicy oracle({.clarify_rate = 0.5, .error_rate = 0.5, .distractor_rate = 0.5, .max_retries = 50});
  ScriptedUser user;
  const SyntheticEnvConfig cfg{.transient_rate = 0.2, .timeout_rate = 0.1};
  RunOptions opt{.threads = 2, .seed = 21, .limits = {.max_turns = 200, .max_tool_calls = 400}};
  auto fast = RunEpisodes(Jobs(2), Maker(cfg), oracle, &user, opt);
  EnvMaker slow_maker = [cfg]() -> Expected<std::unique_ptr<Env>> {
    return std::unique_ptr<Env>(std::make_unique<JsonResetOnly>(std::make_unique<SyntheticEnv>(TestWorld().world, cfg)));
  };
  auto slow = RunEpisodes(Jobs(2), slow_maker, oracle, &user, opt);
  ASSERT_EQ(fast.size(), slow.size());
  int faults = 0;
  for (size_t i = 0; i < fast.size(); ++i) {
    EXPECT_EQ(Stable(fast[i]), Stable(slow[i])) << fast[i].task_id;
    for (const auto& c : fast[i].tool_calls) faults += c.is_error;
  }
  EXPECT_GT(faults, 0);  // the comparison covers faulted and retried calls too

  // Directly: both resets give the same first messages, tools and state, and the env's task is the
  // EpisodeTask's own parsed task (shared, not copied).
  for (const auto& task : TestWorld().tasks) {
    SyntheticEnv a(TestWorld().world, cfg), b(TestWorld().world, cfg);
    auto ma = a.ResetTask(9, task);
    auto mb = b.Reset(9, task->env_task);
    ASSERT_TRUE(ma.ok() && mb.ok()) << task->id;
    EXPECT_EQ(k2::ToJson(*ma), k2::ToJson(*mb));
    EXPECT_EQ(a.OpenAITools(), b.OpenAITools());
    EXPECT_EQ(a.State(), b.State());
    EXPECT_EQ(a.task(), &*task->synth);
  }
}

TEST(Episode, SameSeedReplaysIdenticallyWhateverTheThreadCount) {
  OracleTaskPolicy oracle;  // default imperfection rates: diverse episodes
  ScriptedUser user;
  auto a = RunEpisodes(Jobs(2), Maker(), oracle, &user, {.threads = 1, .seed = 9});
  auto b = RunEpisodes(Jobs(2), Maker(), oracle, &user, {.threads = 2, .seed = 9});
  auto c = RunEpisodes(Jobs(2), Maker(), oracle, &user, {.threads = 2, .seed = 10});
  ASSERT_EQ(a.size(), b.size());
  int differ = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(Stable(a[i]), Stable(b[i])) << i;
    differ += Stable(a[i]) != Stable(c[i]);
  }
  EXPECT_GT(differ, static_cast<int>(a.size()) / 4) << "another seed should change imperfections and phrasing";
  // Trials of one task are different episodes.
  EXPECT_NE(a[0].id, a[1].id);
}

TEST(Episode, BudgetsEndEpisodesWithTheirReason) {
  OracleTaskPolicy oracle({.clarify_rate = 0, .error_rate = 0, .distractor_rate = 0});
  ScriptedUser user;
  auto env = Maker()();
  ASSERT_TRUE(env.ok());
  // A task with at least two gold actions.
  std::shared_ptr<const EpisodeTask> task;
  for (const auto& t : TestWorld().tasks)
    if (t->synth->actions.size() >= 2) task = t;
  ASSERT_TRUE(task);
  auto t = RunEpisode(task, **env, oracle, &user, {.max_turns = 2}, 1);
  EXPECT_EQ(t.end_reason, "max_turns");
  EXPECT_EQ(t.turns, 2);
  t = RunEpisode(task, **env, oracle, &user, {.max_tool_calls = 1}, 1);
  EXPECT_EQ(t.end_reason, "max_tool_calls");
  EXPECT_EQ(t.tool_calls.size(), 1u);
  t = RunEpisode(task, **env, oracle, &user, {.max_wall_s = 1e-9}, 1);
  EXPECT_EQ(t.end_reason, "timeout");
  EXPECT_EQ(oracle.live_sessions(), 0u);
}

// A policy that fails on its second call, to check the error path and EndSession.
class FailingPolicy : public Policy {
 public:
  std::string name() const override { return "failing"; }
  Expected<PolicyTurn> Act(const PolicyRequest& r) override {
    if (++calls_ > 1) return Unavailable("server gone after retries");
    PolicyTurn t;
    t.message = {.role = "assistant", .content = "Could you tell me your id?"};
    t.failure = "malformed_tool_call: test";
    (void)r;
    return t;
  }
  void EndSession(const std::string& s) override { ended = s; }
  std::string ended;
 private:
  int calls_ = 0;
};

TEST(Episode, PolicyErrorsAndFailuresAreRecorded) {
  FailingPolicy p;
  ScriptedUser user;
  auto env = Maker()();
  ASSERT_TRUE(env.ok());
  auto t = RunEpisode(TestWorld().tasks[0], **env, p, &user, {}, 1);
  EXPECT_EQ(t.end_reason, "policy_error");
  EXPECT_NE(t.error.find("server gone after retries"), std::string::npos);
  ASSERT_EQ(t.failures.size(), 1u);
  EXPECT_EQ(t.failures[0], "turn 0: malformed_tool_call: test");
  EXPECT_EQ(p.ended, t.id);
}

TEST(Episode, UnknownDomainIsAnEnvError) {
  OracleTaskPolicy oracle;
  ScriptedUser user;
  auto other = SyntheticWorld::Generate(999, 40, nullptr);
  SyntheticEnv env(other, {});
  auto t = RunEpisode(TestWorld().tasks[0], env, oracle, &user, {}, 1);
  EXPECT_EQ(t.end_reason, "env_error");
  EXPECT_NE(t.error.find("is not in this synthetic world"), std::string::npos) << t.error;
}

// Engine-style policy: returns context and generated tokens with logprobs, to check the stream.
class TokenPolicy : public Policy {
 public:
  std::string name() const override { return "tokens"; }
  Expected<PolicyTurn> Act(const PolicyRequest& r) override {
    PolicyTurn t;
    int turn = static_cast<int>(r.seed % 1000);  // any per-turn value
    t.message = {.role = "assistant", .content = "Thank you, all done."};
    t.context_tokens = {100 + turn, 101, 102};
    t.tokens = {7, 8};
    t.logprobs = {-0.5f, -0.25f};
    t.policy_logprobs = {-0.75f, -0.125f};
    t.prompt_tokens = 3;
    t.completion_tokens = 2;
    return t;
  }
};

TEST(Episode, EngineTokenStreamConcatenatesTurnsWithTheMask) {
  TokenPolicy p;
  ScriptedUser user;
  auto env = Maker()();
  ASSERT_TRUE(env.ok());
  auto t = RunEpisode(TestWorld().tasks[0], **env, p, &user, {}, 1);
  ASSERT_TRUE(t.Validate().ok()) << t.Validate().ToString();
  ASSERT_EQ(t.turns, 1);  // a statement: the scripted user stops
  EXPECT_EQ(t.end_reason, "user_stop");
  ASSERT_EQ(t.tokens.size(), 5u);
  EXPECT_EQ(t.policy_mask, (std::vector<uint8_t>{0, 0, 0, 1, 1}));
  EXPECT_EQ(t.logprobs, (std::vector<float>{0, 0, 0, -0.5f, -0.25f}));
  EXPECT_EQ(t.policy_logprobs, (std::vector<float>{0, 0, 0, -0.75f, -0.125f}));
  EXPECT_EQ(t.tokens[3], 7);
  // The token budget counts the stream.
  t = RunEpisode(TestWorld().tasks[0], **env, p, &user, {.max_tokens = 4}, 1);
  EXPECT_EQ(t.end_reason, "max_tokens");
}

TEST(Episode, RandomPolicyRarelyReachesTheGoal) {
  RandomPolicy random;
  ScriptedUser user;
  auto trajs = RunEpisodes(Jobs(), Maker(), random, &user, {.threads = 2, .seed = 6});
  int reached = 0;
  for (size_t i = 0; i < trajs.size(); ++i) {
    EXPECT_TRUE(IsEndReason(trajs[i].end_reason));
    reached += trajs[i].final_state_hash == TestWorld().tasks[i]->synth->expected_hash;
  }
  // Tasks whose gold plan is read-only are solved by doing nothing; the rest need the right writes.
  int read_only = 0;
  for (const auto& t : TestWorld().tasks) read_only += t->synth->steps == 0;
  EXPECT_LE(reached, read_only + 2);
}

TEST(ScriptedUser, SpeaksInTheFirstPerson) {
  EXPECT_EQ(FirstPerson("You are Ann. Your guest id is G-1 and your email is a@b.c. You do not remember it."),
            "I am Ann. My guest id is G-1 and my email is a@b.c. I do not remember it.");
}

}  // namespace
}  // namespace k2::agents
