// Dual control: the in-tree telecom domain whose user owns the phone's tools. Gold plans restore service,
// the oracle asks the user to act and the scripted user does, trajectories record who called what, and
// the judge's state check covers the user's side (a user who does not act is rejected).
#include "agents/dual_control.h"

#include <gtest/gtest.h>

#include "agents/episode.h"
#include "rewards/judge.h"
#include "agents/scripted_policies.h"
#include "agents/scripted_user.h"
#include "agents/synthetic_env.h"
#include "tests/agents/test_world.h"
#include "toolgen/synth/database.h"

namespace k2::agents {
namespace {

std::vector<std::shared_ptr<const EpisodeTask>> DualTasks(int n = 40) {
  std::vector<std::shared_ptr<const EpisodeTask>> out;
  for (auto& t : GenerateDualControlTasks(17, n)) out.push_back(EpisodeTask::FromSynth(std::move(t)));
  return out;
}

std::vector<EpisodeJob> DualJobs(int n = 40) {
  std::vector<EpisodeJob> jobs;
  for (auto& t : DualTasks(n)) jobs.push_back({t, 0});
  return jobs;
}

// The same scenario, but the user's session is started without its tools: it cannot act on its phone.
class HandsOffUser : public UserSimulator {
 public:
  std::string name() const override { return "hands-off"; }
  Expected<std::unique_ptr<UserSession>> Start(const EpisodeTask& task, uint64_t seed,
                                               const std::vector<toolgen::ToolSpec>& user_tools) override {
    (void)user_tools;
    return inner_.Start(task, seed, {});
  }

 private:
  ScriptedUser inner_;
};

TEST(DualControl, TasksAreDeterministicAndGoldPlansRestoreService) {
  auto a = GenerateDualControlTasks(17, 60), b = GenerateDualControlTasks(17, 60), c = GenerateDualControlTasks(18, 60);
  ASSERT_EQ(a, b);
  EXPECT_NE(a, c);
  int with_user_actions = 0, refusals = 0, roaming = 0;
  for (const auto& t : a) {
    EXPECT_EQ(t.domain, kDualControlDomain);
    json db = t.initial_db;
    EXPECT_FALSE(DualControlConnected(db)) << t.id << ": a task starts without service";
    int user_actions = 0;
    for (const auto& act : t.actions) {
      ToolOutcome o = DualControlCall(db, act.requestor == "user", act.name, act.arguments);
      EXPECT_FALSE(o.is_error) << t.id << " " << act.name << ": " << o.text;
      user_actions += act.requestor == "user";
    }
    EXPECT_EQ(toolgen::synth::StateHash(db), t.expected_hash) << t.id;
    EXPECT_EQ(DualControlConnected(db), !t.refusal) << t.id;
    with_user_actions += user_actions > 0;
    refusals += t.refusal;
    for (const auto& s : t.scenarios) roaming += s == "roaming";
    // The tau2 form keeps who acts.
    auto back = toolgen::synth::TaskFromTau2(toolgen::synth::ToTau2(t), t.id);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(*back, t);
  }
  EXPECT_GT(with_user_actions, 30);
  EXPECT_GT(refusals, 5);
  EXPECT_GT(roaming, 5);
}

TEST(DualControl, TheAgentSeesOnlyItsToolsAndTheUserOnlyHers) {
  SyntheticEnv env(testing::TestWorld().world, {});
  auto task = DualTasks(1)[0];
  auto first = env.ResetTask(1, task);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  std::set<std::string> agent, user;
  for (const auto& t : env.Tools()) agent.insert(t.name);
  for (const auto& t : env.UserTools()) user.insert(t.name);
  EXPECT_TRUE(agent.count("resume_line") && !agent.count("toggle_airplane_mode"));
  EXPECT_TRUE(user.count("toggle_airplane_mode") && !user.count("resume_line"));
  // The agent cannot reach the phone: an unknown tool, recoverable.
  auto r = env.Step({.role = "assistant", .tool_calls = {{.id = "c1", .name = "toggle_airplane_mode", .arguments = "{}"}}});
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->observation.size(), 1u);
  EXPECT_NE(r->observation[0].content.find("unknown tool"), std::string::npos) << r->observation[0].content;
  const bool before = env.State()["device"]["airplane_mode"];
  auto u = env.StepUser({{.id = "u1", .name = "toggle_airplane_mode", .arguments = "{}"}});
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  EXPECT_EQ(env.State()["device"]["airplane_mode"], !before);
  // A catalog task after a dual one: no user tools any more.
  auto first2 = env.ResetTask(1, testing::TestWorld().tasks[0]);
  ASSERT_TRUE(first2.ok());
  EXPECT_TRUE(env.UserTools().empty());
  auto none = env.StepUser({{.id = "u2", .name = "toggle_airplane_mode", .arguments = "{}"}});
  EXPECT_FALSE(none.ok());
}

TEST(DualControl, OracleAndScriptedUserReachTheStateAndRecordWhoCalledWhat) {
  OracleTaskPolicy oracle;  // default imperfections
  ScriptedUser user;
  rewards::Judge judge;
  auto trajs = RunEpisodes(DualJobs(), testing::Maker(), oracle, &user, {.threads = 2, .seed = 5});
  auto again = RunEpisodes(DualJobs(), testing::Maker(), oracle, &user, {.threads = 1, .seed = 5});
  auto tasks = DualTasks();
  int user_calls = 0;
  for (size_t i = 0; i < trajs.size(); ++i) {
    const Trajectory& t = trajs[i];
    ASSERT_TRUE(t.Validate().ok()) << t.Validate().ToString();
    rewards::Verdict v = judge.Evaluate(t, *tasks[i]);
    EXPECT_TRUE(v.keep) << t.task_id << ": " << v.detail << " (end " << t.end_reason << ")";
    EXPECT_EQ(t.final_state_hash, tasks[i]->synth->expected_hash) << t.task_id;
    int expected_user = 0;
    for (const auto& a : tasks[i]->synth->actions) expected_user += a.requestor == "user";
    int got_user = 0;
    for (const auto& c : t.tool_calls) {
      if (c.requestor != "user") continue;
      ++got_user;
      EXPECT_TRUE(c.valid && !c.is_error) << c.observation;
      EXPECT_TRUE(c.name.rfind("toggle_", 0) == 0) << c.name;
    }
    EXPECT_EQ(got_user, expected_user) << t.task_id;
    user_calls += got_user;
    // The user's tool results never enter the agent's view; the agent's tools exclude the phone's.
    for (const auto& m : t.messages)
      if (m.role == "tool") {
        EXPECT_EQ(m.content.find("airplane_mode\":"), std::string::npos) << m.content;
      }
    EXPECT_EQ(t.tools.dump().find("toggle_"), std::string::npos);
    auto ta = t.ToJson(), tb = again[i].ToJson();
    ta.erase("timings");
    tb.erase("timings");
    EXPECT_EQ(ta, tb);
  }
  EXPECT_GT(user_calls, 30);
}

TEST(DualControl, TheStateCheckCoversTheUserSide) {
  OracleTaskPolicy oracle({.clarify_rate = 0, .error_rate = 0, .distractor_rate = 0});
  HandsOffUser lazy;
  rewards::Judge judge;
  auto tasks = DualTasks();
  auto trajs = RunEpisodes(DualJobs(), testing::Maker(), oracle, &lazy, {.threads = 2, .seed = 5});
  int rejected = 0, needs_user = 0;
  for (size_t i = 0; i < trajs.size(); ++i) {
    bool user_step = false;
    for (const auto& a : tasks[i]->synth->actions) user_step |= a.requestor == "user";
    rewards::Verdict v = judge.Evaluate(trajs[i], *tasks[i]);
    if (user_step) {
      ++needs_user;
      EXPECT_FALSE(v.keep) << trajs[i].task_id;
      rejected += std::find(v.reasons.begin(), v.reasons.end(), "state_mismatch") != v.reasons.end();
    }
  }
  EXPECT_GT(needs_user, 20);
  EXPECT_EQ(rejected, needs_user);
}

TEST(DualControl, ResumingALineWithABalanceOwedIsRejectedAsForbidden) {
  OracleTaskPolicy violator({.clarify_rate = 0, .error_rate = 0, .distractor_rate = 0, .violation_rate = 1});
  ScriptedUser user;
  rewards::Judge judge;
  auto tasks = DualTasks();
  auto trajs = RunEpisodes(DualJobs(), testing::Maker(), violator, &user, {.threads = 2, .seed = 5});
  int refusals = 0;
  for (size_t i = 0; i < trajs.size(); ++i) {
    if (!tasks[i]->synth->refusal) continue;
    ++refusals;
    rewards::Verdict v = judge.Evaluate(trajs[i], *tasks[i]);
    EXPECT_FALSE(v.keep);
    EXPECT_NE(std::find(v.reasons.begin(), v.reasons.end(), "forbidden_action"), v.reasons.end()) << v.detail;
  }
  EXPECT_GT(refusals, 3);
}

}  // namespace
}  // namespace k2::agents
