// τ² episodes on native domains through eval::RunNativeTau2: the agent greets first, tool calls of both
// requestors land in the trajectory, τ²'s endings, and the scores of a policy that plays the gold plan.
#include <gtest/gtest.h>

#include <mutex>

#include "eval/tau2_suite.h"

namespace k2 {
namespace {

namespace t2 = agents::tau2;

std::string DomainDir(const std::string& d) { return std::string(K2GYM_SOURCE_DIR) + "/../shared/data/tau2/" + d; }

// Plays each task's gold actions one call per turn, then says the communicate_info strings and stops
// with τ²'s ###STOP###. The task is found from the session id ("tau2:<task id>:<seed>").
class GoldPlanPolicy : public agents::Policy {
 public:
  explicit GoldPlanPolicy(std::vector<t2::Task> tasks) : tasks_(std::move(tasks)) {}
  std::string name() const override { return "gold-plan"; }
  Expected<agents::PolicyTurn> Act(const agents::PolicyRequest& r) override {
    std::string id = r.session.substr(5, r.session.rfind(':') - 5);
    const t2::Task* task = nullptr;
    for (auto& t : tasks_)
      if (t.id == id) task = &t;
    if (!task) return NotFound("no task " + id);
    std::lock_guard<std::mutex> lock(mu_);
    size_t& next = next_[r.session];
    agents::PolicyTurn turn;
    turn.message.role = "assistant";
    const json& ec = task->evaluation_criteria();
    std::vector<json> mine;
    if (ec.is_object() && ec["actions"].is_array())
      for (auto& a : ec["actions"])
        if (a["requestor"] == "assistant") mine.push_back(a);
    if (next < mine.size()) {
      turn.message.tool_calls.push_back(ToolCall{"call_" + std::to_string(next), mine[next]["name"], mine[next]["arguments"].dump()});
      ++next;
      return turn;
    }
    std::string say;
    if (ec.is_object() && ec["communicate_info"].is_array())
      for (auto& c : ec["communicate_info"]) say += c.get<std::string>() + ". ";
    turn.message.content = say + "###STOP###";
    return turn;
  }

 private:
  std::vector<t2::Task> tasks_;
  std::mutex mu_;
  std::map<std::string, size_t> next_;
};

TEST(Tau2Run, AgentGreetsFirstAndGoldPlanScoresOne) {
  eval::NativeTau2Options o;
  o.domain = "airline";
  o.data_dir = DomainDir("airline");
  o.split = "test";
  o.max_tasks = 4;
  o.trials = 2;
  o.threads = 2;
  auto tasks = eval::SelectNativeTau2Tasks(o);
  ASSERT_TRUE(tasks.ok()) << tasks.status().ToString();
  GoldPlanPolicy policy(*tasks);
  auto recs = eval::RunNativeTau2(o, policy, nullptr);
  ASSERT_TRUE(recs.ok()) << recs.status().ToString();
  ASSERT_EQ(recs->size(), 8u);
  for (auto& r : *recs) {
    EXPECT_EQ(r.end_reason, "agent_stop") << r.detail;
    EXPECT_EQ(r.reward, 1.0) << r.case_id << ": " << r.detail;
    ASSERT_TRUE(r.trajectory.is_array());
    EXPECT_EQ(r.trajectory[0]["role"], "assistant");
    EXPECT_EQ(r.trajectory[0]["content"], t2::kAgentGreeting);
    EXPECT_EQ(r.trajectory[1]["role"], "user");  // the scripted user's opening
  }
}

TEST(Tau2Run, HistoryStartsTheEpisodeAndUserStopEndsIt) {
  eval::NativeTau2Options o;
  o.domain = "mock";
  o.data_dir = DomainDir("mock");
  o.trials = 1;
  o.threads = 1;
  auto all = eval::SelectNativeTau2Tasks(o);
  ASSERT_TRUE(all.ok());
  t2::Task task;
  for (auto& t : *all)
    if (t.id == "update_task_with_message_history") task = t;
  ASSERT_EQ(task.id, "update_task_with_message_history");
  auto dom = t2::LoadDomain("mock", DomainDir("mock"));
  ASSERT_TRUE(dom.ok());
  GoldPlanPolicy policy({task});
  auto user = t2::MakeScriptedUser(task);
  auto r = t2::Run(*dom, task, policy, *user, {}, 7);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const json& hist = task.initial_state()["message_history"];
  for (size_t i = 0; i < hist.size(); ++i) EXPECT_EQ(r->trajectory[i], hist[i]);
  EXPECT_EQ(r->termination, "agent_stop");
  // The history's create_task made task_2 in the replayed state; the gold update then completes it.
  auto ev = eval::ScoreTau2Episode(*dom, task, r->trajectory, r->termination, nullptr);
  ASSERT_TRUE(ev.ok()) << ev.status().ToString();
  EXPECT_EQ(ev->breakdown["DB"], 1.0);
}

TEST(Tau2Run, NlAssertionWithoutJudgeFailsBeforeAnyEpisode) {
  eval::NativeTau2Options o;
  o.domain = "retail";
  o.data_dir = DomainDir("retail");
  o.split = "test";
  o.trials = 1;
  GoldPlanPolicy policy({});
  auto recs = eval::RunNativeTau2(o, policy, nullptr);
  ASSERT_FALSE(recs.ok());
  EXPECT_EQ(recs.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(recs.status().message().find("NL_ASSERTION"), std::string::npos);
}

TEST(Tau2Run, LlmUserPromptCarriesGuidelinesAndScenario) {
  auto tasks = t2::LoadTasks(DomainDir("airline") + "/tasks.json", "airline");
  ASSERT_TRUE(tasks.ok());
  auto g = eval::ReadSimulationGuidelines(std::string(K2GYM_SOURCE_DIR) + "/../shared/data/tau2");
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  std::string p = t2::UserSystemPrompt(*g, (*tasks)[0]);
  EXPECT_EQ(p.find("# User Simulation Guidelines"), 0u);
  EXPECT_NE(p.find("<scenario>\nInstructions:\n\tDomain: airline"), std::string::npos) << p.substr(0, 2000);
  EXPECT_NE(p.find("###TRANSFER###"), std::string::npos);
}

}  // namespace
}  // namespace k2
