// τ² episodes on native domains through eval::RunNativeTau2: the agent greets first, tool calls of both
// requestors land in the trajectory, τ²'s endings, and the scores of a policy that plays the gold plan.
#include <gtest/gtest.h>

#include <mutex>

#include "eval/tau2_suite.h"

namespace k2 {
namespace {

namespace t2 = agents::tau2;

std::string DomainDir(const std::string& d) { return std::string(K2GYM_SOURCE_DIR) + "/../shared/data/tau2/" + d; }

// Plays each task's gold actions in order, one per turn: its own as tool calls, the user's (dual control)
// as a message asking the user to run the tool ("Please run NAME(key=\"value\") on your phone."); then
// says the communicate_info strings and stops with τ²'s ###STOP###. The task is found from the session
// id ("tau2:<task id>:<seed>").
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
    std::vector<json> gold;
    if (ec.is_object() && ec["actions"].is_array())
      for (auto& a : ec["actions"]) gold.push_back(a);
    if (next < gold.size()) {
      const json& a = gold[next];
      if (a["requestor"] == "user") {
        std::string args;
        for (auto& [k, v] : a["arguments"].items()) args += (args.empty() ? "" : ", ") + k + "=" + v.dump();
        turn.message.content = "Please run " + a["name"].get<std::string>() + "(" + args + ") on your phone.";
      } else {
        turn.message.tool_calls.push_back(ToolCall{"call_" + std::to_string(next), a["name"], a["arguments"].dump()});
      }
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

TEST(Tau2Run, TelecomGoldPlanWithTheScriptedUserRunningThePhoneScoresOneOnEveryTask) {
  eval::NativeTau2Options o;
  o.domain = "telecom";
  o.data_dir = DomainDir("telecom");
  o.trials = 1;
  o.threads = 2;
  auto tasks = eval::SelectNativeTau2Tasks(o);
  ASSERT_TRUE(tasks.ok()) << tasks.status().ToString();
  ASSERT_EQ(tasks->size(), 114u);
  GoldPlanPolicy policy(*tasks);
  auto recs = eval::RunNativeTau2(o, policy, nullptr);
  ASSERT_TRUE(recs.ok()) << recs.status().ToString();
  ASSERT_EQ(recs->size(), 114u);
  int user_calls = 0;
  for (auto& r : *recs) {
    EXPECT_EQ(r.end_reason, "agent_stop") << r.case_id;
    EXPECT_EQ(r.reward, 1.0) << r.case_id << ": " << r.detail;
    for (auto& m : r.trajectory)
      if (m.value("role", "") == "tool" && m.value("requestor", "") == "user") ++user_calls;
  }
  EXPECT_EQ(user_calls, 393);  // every user-side gold action of tasks.json, run by the scripted user
}

// The scripted user on real tasks: facts when asked, unknown facts refused, conditional instructions,
// phone actions by name.
TEST(Tau2ScriptedUser, FollowsTheScenarioOfRealTasks) {
  auto airline = t2::LoadTasks(DomainDir("airline") + "/tasks.json", "airline");
  ASSERT_TRUE(airline.ok());
  auto by_id = [&](const std::vector<t2::Task>& ts, const std::string& id) -> const t2::Task& {
    for (auto& t : ts)
      if (t.id == id) return t;
    ADD_FAILURE() << id;
    return ts.front();
  };
  auto agent = [](json& traj, const std::string& say) { traj.push_back({{"role", "assistant"}, {"content", say}}); };
  auto reply = [](t2::UserSim& u, json& traj) {
    auto m = u.Respond(traj);
    EXPECT_TRUE(m.ok());
    traj.push_back(*m);
    return m->value("content", std::string());
  };
  // Airline 2: a conditional answer about the reservation number, the user id when asked.
  const t2::Task& noah = by_id(*airline, "2");
  auto u = t2::MakeScriptedUser(noah);
  json traj = json::array();
  agent(traj, t2::kAgentGreeting);
  EXPECT_EQ(reply(*u, traj), noah.user_scenario()["instructions"]["reason_for_call"]);
  agent(traj, "Sure. What is your user id?");
  EXPECT_EQ(reply(*u, traj), "My user id is noah_muller_9847.");
  agent(traj, "Thanks. What is the reservation number of the delayed flight?");
  EXPECT_EQ(reply(*u, traj), "It is the last reservation I made but don't remember what it was.");
  agent(traj, "Can I help with anything else?");
  EXPECT_EQ(reply(*u, traj), "###STOP###");
  // Airline 3: the cabin is unknown_info.
  const t2::Task& anya = by_id(*airline, "3");
  auto u3 = t2::MakeScriptedUser(anya);
  json t3 = json::array();
  agent(t3, t2::kAgentGreeting);
  reply(*u3, t3);
  agent(t3, "Which cabin is your upcoming flight in?");
  EXPECT_EQ(reply(*u3, t3), "Sorry, I don't know that.");
  agent(t3, "Shall I proceed with the change?");
  EXPECT_EQ(reply(*u3, t3), "Yes, please go ahead.");
  // Telecom: phone actions the agent names, then their results reported.
  auto telecom = t2::LoadTasks(DomainDir("telecom") + "/tasks.json", "telecom");
  ASSERT_TRUE(telecom.ok());
  auto dom = t2::LoadDomain("telecom", DomainDir("telecom"));
  ASSERT_TRUE(dom.ok());
  auto ut = t2::MakeScriptedUser((*telecom)[0], (*dom)->ToolSpecs(true));
  json tt = json::array();
  agent(tt, t2::kAgentGreeting);
  reply(*ut, tt);
  agent(tt, "Could you check your status bar and then toggle your mobile data setting? Use toggle data, not the data saver.");
  auto m = ut->Respond(tt);
  ASSERT_TRUE(m.ok());
  ASSERT_EQ((*m)["tool_calls"].size(), 2u) << m->dump();
  EXPECT_EQ((*m)["tool_calls"][0]["name"], "check_status_bar");
  EXPECT_EQ((*m)["tool_calls"][1]["name"], "toggle_data");
  agent(tt, "Please set_network_mode_preference(mode=\"4g_only\").");
  m = ut->Respond(tt);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ((*m)["tool_calls"][0]["arguments"], json({{"mode", "4g_only"}}));
  tt.push_back(*m);
  tt.push_back({{"role", "tool"}, {"id", (*m)["tool_calls"][0]["id"]}, {"content", "Preferred Network Mode set to: 4g_only"}, {"requestor", "user"}});
  EXPECT_EQ(reply(*ut, tt), "I did that. My phone shows:\nPreferred Network Mode set to: 4g_only");
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
