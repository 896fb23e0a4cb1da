// Judge (the "judge" reward over trajectories): oracle episodes are kept, injected violations are rejected with their reason, every check
// can fail on its own, and the optional LLM judge's reply is parsed strictly.
#include "rewards/judge.h"

#include <gtest/gtest.h>

#include "agents/scripted_policies.h"
#include "agents/scripted_user.h"
#include "tests/agents/test_world.h"

namespace k2::rewards {
namespace {

using agents::EpisodeTask;
using agents::OracleConfig;
using agents::OracleTaskPolicy;
using agents::Policy;
using agents::PolicyRequest;
using agents::PolicyTurn;
using agents::ScriptedUser;
using agents::Trajectory;
using agents::testing::Jobs;
using agents::testing::Maker;
using agents::testing::TestWorld;

std::vector<Trajectory> RunOracle(OracleConfig oc, uint64_t seed) {
  OracleTaskPolicy oracle(oc);
  ScriptedUser user;
  return agents::RunEpisodes(Jobs(), Maker(), oracle, &user, {.threads = 2, .seed = seed});
}

TEST(Judge, KeepsEveryOracleEpisodeWithDefaultImperfections) {
  auto trajs = RunOracle({}, 21);
  Judge judge;
  JudgeSummary sum;
  for (size_t i = 0; i < trajs.size(); ++i) {
    Verdict v = judge.Apply(trajs[i], *TestWorld().tasks[i]);
    EXPECT_TRUE(v.keep) << trajs[i].task_id << ": " << v.detail;
    EXPECT_EQ(trajs[i].reward, 1.0);
    EXPECT_EQ(trajs[i].reward_components.at("judge/state"), 1.0);
    sum.Add(v);
  }
  EXPECT_EQ(sum.kept, static_cast<int64_t>(trajs.size()));
  EXPECT_EQ(sum.discarded, 0);
}

TEST(Judge, RejectsInjectedViolationsWithThatReason) {
  auto trajs = RunOracle({.clarify_rate = 0, .error_rate = 0, .distractor_rate = 0, .violation_rate = 1}, 22);
  Judge judge;
  JudgeSummary sum;
  int refusal_tasks = 0;
  for (size_t i = 0; i < trajs.size(); ++i) {
    const auto& task = *TestWorld().tasks[i];
    Verdict v = judge.Evaluate(trajs[i], task);
    sum.Add(v);
    if (!task.synth->forbidden.empty()) {
      ++refusal_tasks;
      EXPECT_FALSE(v.keep) << task.id;
      // The executor refuses the violating call (policy_violation), so the state still matches:
      // forbidden_action is the one reason.
      EXPECT_EQ(v.reasons, std::vector<std::string>{"forbidden_action"}) << task.id << " " << v.detail;
    } else {
      EXPECT_TRUE(v.keep) << task.id << ": " << v.detail;
    }
  }
  ASSERT_GT(refusal_tasks, 3) << "the test world needs refusal tasks";
  EXPECT_EQ(sum.discarded, refusal_tasks);
  EXPECT_EQ(sum.by_reason["forbidden_action"], refusal_tasks);
  EXPECT_EQ(sum.ToJson()["discarded_by_reason"]["forbidden_action"], refusal_tasks);
}

TEST(Judge, InvalidCallLimitIsConfigurable) {
  auto trajs = RunOracle({.clarify_rate = 0, .error_rate = 1, .distractor_rate = 0}, 23);
  Judge strict({.max_invalid_calls = 0}), lenient({.max_invalid_calls = 1});
  for (size_t i = 0; i < trajs.size(); ++i) {
    Verdict s = strict.Evaluate(trajs[i], *TestWorld().tasks[i]);
    EXPECT_EQ(s.reasons, std::vector<std::string>{"invalid_tool_calls"}) << s.detail;
    EXPECT_TRUE(lenient.Evaluate(trajs[i], *TestWorld().tasks[i]).keep);
  }
}

TEST(Judge, EachCheckRejectsOnItsOwn) {
  auto trajs = RunOracle({.clarify_rate = 0, .error_rate = 0, .distractor_rate = 0}, 24);
  // A task with something to communicate.
  size_t k = 0;
  while (k < trajs.size() && TestWorld().tasks[k]->synth->communicate_info.empty()) ++k;
  ASSERT_LT(k, trajs.size());
  const EpisodeTask& task = *TestWorld().tasks[k];
  Judge judge;
  ASSERT_TRUE(judge.Evaluate(trajs[k], task).keep);

  Trajectory t = trajs[k];
  t.final_state = json{{"tampered", true}};  // the reward hashes the final state itself
  EXPECT_EQ(judge.Evaluate(t, task).reasons, std::vector<std::string>{"state_mismatch"});
  EXPECT_TRUE(Judge({.check_state = false}).Evaluate(t, task).keep);

  t = trajs[k];
  for (auto& m : t.messages)
    if (m.role == "assistant") m.content = "ok";
  Verdict v = judge.Evaluate(t, task);
  EXPECT_EQ(v.reasons, std::vector<std::string>{"info_not_communicated"});
  EXPECT_LT(v.components["communicate"], 1.0);

  t = trajs[k];
  t.end_reason = "max_turns";
  EXPECT_EQ(judge.Evaluate(t, task).reasons, std::vector<std::string>{"end_max_turns"});
}

// Stand-in for an LLM behind the Policy interface: replies with a fixed text.
class FixedReply : public Policy {
 public:
  explicit FixedReply(std::string text) : text_(std::move(text)) {}
  std::string name() const override { return "fixed"; }
  Expected<PolicyTurn> Act(const PolicyRequest& r) override {
    last_prompt = r.messages.back().content;
    PolicyTurn t;
    t.message = {.role = "assistant", .content = text_};
    return t;
  }
  std::string last_prompt;

 private:
  std::string text_;
};

TEST(Judge, LlmJudgeScoreIsParsedStrictly) {
  auto trajs = RunOracle({.clarify_rate = 0, .error_rate = 0, .distractor_rate = 0}, 25);
  const EpisodeTask& task = *TestWorld().tasks[0];
  FixedReply good("Sure: {\"score\": 0.9, \"reason\": \"fine\"}"), low("{\"score\": 0.1}"), bad("I think it is good"),
      out_of_range("{\"score\": 7}");
  Verdict v = Judge({}, &good).Evaluate(trajs[0], task);
  EXPECT_TRUE(v.keep) << v.detail;
  EXPECT_DOUBLE_EQ(v.components["llm"], 0.9);
  EXPECT_NE(good.last_prompt.find(task.synth->reason_for_call), std::string::npos);
  EXPECT_EQ(Judge({}, &low).Evaluate(trajs[0], task).reasons, std::vector<std::string>{"llm_judge"});
  EXPECT_EQ(Judge({}, &bad).Evaluate(trajs[0], task).reasons, std::vector<std::string>{"llm_judge_error"});
  EXPECT_EQ(Judge({}, &out_of_range).Evaluate(trajs[0], task).reasons, std::vector<std::string>{"llm_judge_error"});
}

}  // namespace
}  // namespace k2::rewards
