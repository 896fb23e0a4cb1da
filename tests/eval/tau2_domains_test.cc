// τ²-bench's real files (../shared/data/tau2): every task loads with τ²'s defaults and round-trips,
// every gold trajectory scores 1.0 through the native domains and τ²'s evaluation rules, and the
// per-domain perturbations score as τ²-bench scores them.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <set>

#include "agents/tau2/env.h"
#include "agents/tau2/task.h"
#include "rewards/tool_verifier.h"

namespace k2 {
namespace {

namespace t2 = agents::tau2;
namespace rt = rewards::tau2;

std::string DataDir() { return std::string(K2GYM_SOURCE_DIR) + "/../shared/data/tau2"; }
std::string DomainDir(const std::string& d) { return DataDir() + "/" + d; }

std::vector<t2::Task> Load(const std::string& domain, const std::string& file = "tasks.json") {
  auto t = t2::LoadTasks(DomainDir(domain) + "/" + file, domain);
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  return t.ok() ? *t : std::vector<t2::Task>{};
}

std::shared_ptr<const t2::Domain> Dom(const std::string& d) {
  static std::map<std::string, std::shared_ptr<const t2::Domain>> cache;
  auto it = cache.find(d);
  if (it != cache.end()) return it->second;
  auto r = t2::LoadDomain(d, DomainDir(d));
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  cache[d] = r.ok() ? *r : nullptr;
  return cache[d];
}

// Every leaf of `raw` that is not null is present, unchanged, in `norm` (nothing dropped).
void ExpectContains(const json& raw, const json& norm, const std::string& at) {
  if (raw.is_object()) {
    ASSERT_TRUE(norm.is_object()) << at;
    for (auto& [k, v] : raw.items()) {
      ASSERT_TRUE(norm.contains(k)) << at << "/" << k << " dropped";
      ExpectContains(v, norm[k], at + "/" + k);
    }
  } else if (raw.is_array()) {
    ASSERT_TRUE(norm.is_array() && norm.size() == raw.size()) << at;
    for (size_t i = 0; i < raw.size(); ++i) ExpectContains(raw[i], norm[i], at + "/" + std::to_string(i));
  } else {
    EXPECT_EQ(raw, norm) << at;
  }
}

TEST(Tau2Tasks, EveryRealTaskFileLoadsWithTau2Counts) {
  EXPECT_EQ(Load("airline").size(), 50u);
  EXPECT_EQ(Load("retail").size(), 114u);
  EXPECT_EQ(Load("telecom").size(), 114u);
  EXPECT_EQ(Load("telecom", "tasks_small.json").size(), 20u);
  EXPECT_EQ(Load("mock").size(), 10u);
}

TEST(Tau2Tasks, RoundTripKeepsEveryFieldAndFillsTau2Defaults) {
  for (auto [d, f] : std::vector<std::pair<std::string, std::string>>{
           {"airline", "tasks.json"}, {"retail", "tasks.json"}, {"telecom", "tasks.json"}, {"telecom", "tasks_small.json"}, {"mock", "tasks.json"}}) {
    auto raw = ReadJsonFile(DomainDir(d) + "/" + f);
    ASSERT_TRUE(raw.ok());
    auto tasks = Load(d, f);
    ASSERT_EQ(tasks.size(), raw->size());
    for (size_t i = 0; i < tasks.size(); ++i) {
      ExpectContains((*raw)[i], tasks[i].data, d + "/" + f + ":/" + std::to_string(i));
      // Normalising again changes nothing (the dump is a fixed point).
      auto again = t2::NormalizeTask(tasks[i].data, "again");
      ASSERT_TRUE(again.ok());
      EXPECT_EQ(*again, tasks[i].data);
    }
  }
  // Defaults: airline's actions carry no requestor (τ²: "assistant"), its unknown `annotations` key stays.
  auto air = Load("airline");
  EXPECT_EQ(air[1].data["evaluation_criteria"]["actions"][0]["requestor"], "assistant");
  EXPECT_TRUE(air[1].data["evaluation_criteria"]["actions"][0]["compare_args"].is_null());
  EXPECT_TRUE(air[0].data.contains("annotations"));
  auto mock = Load("mock");
  EXPECT_EQ(mock[0].reward_basis(), (std::vector<std::string>{"DB", "COMMUNICATE"}));
  EXPECT_TRUE(mock[0].data["initial_state"].is_null());
  EXPECT_TRUE(mock[0].data["user_tools"].is_null());
}

TEST(Tau2Tasks, BadFieldIsAnErrorNamingThePointer) {
  json t = {{"id", "x"}, {"user_scenario", {{"instructions", 3}}}};
  auto r = t2::NormalizeTask(t, "f.json:/0");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("f.json:/0/user_scenario/instructions"), std::string::npos) << r.status().message();
  json u = {{"id", "x"}, {"user_scenario", {{"instructions", "hi"}}}, {"evaluation_criteria", {{"reward_basis", {"DB", "VIBES"}}}}};
  auto r2 = t2::NormalizeTask(u, "f");
  ASSERT_FALSE(r2.ok());
  EXPECT_NE(r2.status().message().find("VIBES"), std::string::npos);
}

TEST(Tau2Tasks, SplitsComeFromSplitFiles) {
  auto retail = Load("retail");
  auto s = t2::LoadSplits(DomainDir("retail") + "/tasks.json");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  auto test = t2::SelectSplit(retail, *s, "test");
  ASSERT_TRUE(test.ok());
  EXPECT_EQ(test->size(), 40u);
  EXPECT_EQ(t2::SelectSplit(retail, *s, "train")->size(), 74u);
  EXPECT_FALSE(t2::SelectSplit(retail, *s, "nope").ok());
  auto tel = t2::LoadSplits(DomainDir("telecom") + "/tasks.json");
  EXPECT_EQ(tel.status().code(), Code::kNotFound);
}

// The gold trajectory of a task: its message history, each gold action as a call by its requestor with
// the tool's answer, then one agent message saying every communicate_info string.
json GoldTrajectory(const std::shared_ptr<const t2::Domain>& dom, const t2::Task& task) {
  json traj = json::array();
  std::vector<std::string> log;
  auto st = t2::InitialState(dom, task, &log);
  EXPECT_TRUE(st.ok()) << st.status().ToString();
  const json& is = task.initial_state();
  if (is.is_object() && is["message_history"].is_array())
    for (auto& m : is["message_history"]) traj.push_back(m);
  const json& ec = task.evaluation_criteria();
  int n = 0;
  if (ec.is_object() && ec["actions"].is_array())
    for (auto& a : ec["actions"]) {
      std::string id = "gold_" + std::to_string(n++);
      std::string req = a["requestor"];
      json call = {{"id", id}, {"name", a["name"]}, {"arguments", a["arguments"]}, {"requestor", req}};
      traj.push_back({{"role", req}, {"content", nullptr}, {"tool_calls", json::array({call})}});
      t2::CallResult r = st->Call(req, a["name"], a["arguments"]);
      traj.push_back({{"role", "tool"}, {"id", id}, {"content", r.content}, {"requestor", req}, {"error", r.error}});
    }
  std::string say;
  if (ec.is_object() && ec["communicate_info"].is_array())
    for (auto& c : ec["communicate_info"]) say += c.get<std::string>() + ". ";
  traj.push_back({{"role", "assistant"}, {"content", say.empty() ? "Done." : say}});
  return traj;
}

// Scores with τ²'s rules; NL_ASSERTION is dropped from the basis (it needs an LLM judge).
rt::Tau2Evaluation Score(const std::shared_ptr<const t2::Domain>& dom, const t2::Task& task, const json& traj,
                         const std::string& termination = "user_stop") {
  auto env = t2::CheckEnvironment(dom, task, traj);
  EXPECT_TRUE(env.ok()) << env.status().ToString();
  rt::Tau2EnvOutcome o;
  o.db_match = env->db_match;
  o.assertions_met = env->all_assertions_met;
  o.detail = {{"gold_log", env->gold_log}, {"replay_log", env->replay_log}};
  json t = task.data;
  if (t["evaluation_criteria"].is_object()) {
    json basis = json::array();
    for (auto& b : t["evaluation_criteria"]["reward_basis"])
      if (b != "NL_ASSERTION") basis.push_back(b);
    t["evaluation_criteria"]["reward_basis"] = basis;
  }
  auto r = rt::Evaluate(t, traj, termination, o, nullptr);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : rt::Tau2Evaluation{};
}

// Tasks whose own gold trajectory cannot pass their evaluation in τ²-bench either.
const std::map<std::string, std::string> kGoldExceptions = {
    {"mock/update_task_with_history_and_env_assertions",
     "no gold actions; its ENV_ASSERTION wants task_2 completed, which only an agent action not in the gold makes"},
    {"mock/update_task_with_user_tools",
     "its ENV_ASSERTION wants the user's notification read, but no gold action (user or agent) dismisses it, and "
     "dismissing it changes the user DB away from the gold one"},
};

TEST(Tau2Gold, EveryGoldTrajectoryScoresOneOnEveryNativeDomain) {
  for (std::string d : {"airline", "retail", "mock", "telecom", "telecom/tasks_small.json"}) {
    std::string file = "tasks.json";
    if (d.find('/') != std::string::npos) {
      file = d.substr(d.find('/') + 1);
      d = d.substr(0, d.find('/'));
    }
    auto dom = Dom(d);
    ASSERT_TRUE(dom);
    int failed_gold_actions = 0;
    for (auto& task : Load(d, file)) {
      json traj = GoldTrajectory(dom, task);
      auto ev = Score(dom, task, traj);
      failed_gold_actions += static_cast<int>(ev.info["env"]["gold_log"].size());
      EXPECT_TRUE(ev.info["env"]["replay_log"].empty()) << d << " " << task.id << ": " << ev.info["env"]["replay_log"].dump();
      auto exception = kGoldExceptions.find(d + "/" + task.id);
      if (exception != kGoldExceptions.end()) {
        // τ²-bench scores these gold trajectories 0 as well (see kGoldExceptions).
        EXPECT_EQ(ev.reward, 0.0) << d << " task " << task.id;
        continue;
      }
      EXPECT_EQ(ev.reward, 1.0) << d << " task " << task.id << ": " << ev.info.dump().substr(0, 600);
    }
    // τ²-bench logs (and tolerates) gold actions that fail: none on airline's reconstructed DB, 18 in
    // 15 retail tasks, none on mock or telecom.
    if (d == "retail") EXPECT_EQ(failed_gold_actions, 18) << d;
    else EXPECT_EQ(failed_gold_actions, 0) << d;
  }
}


// Scoring with the episode's own final state (no replay) gives the replay's outcome: the gold run, and a
// run that made no call at all.
TEST(Tau2Gold, LiveFinalStateScoresAsTheReplay) {
  for (auto [d, limit] : std::vector<std::pair<std::string, size_t>>{{"telecom", 114}, {"mock", 10}, {"retail", 3}, {"airline", 3}}) {
    auto dom = Dom(d);
    auto tasks = Load(d);
    for (size_t i = 0; i < std::min(limit, tasks.size()); ++i) {
      const t2::Task& task = tasks[i];
      json traj = GoldTrajectory(dom, task);
      auto live = t2::InitialState(dom, task, nullptr);
      ASSERT_TRUE(live.ok());
      json none = json::array();
      const json& is = task.initial_state();
      if (is.is_object() && is["message_history"].is_array()) none = is["message_history"];
      auto idle = t2::InitialState(dom, task, nullptr);  // a run without calls ends where it started
      ASSERT_TRUE(idle.ok());
      for (size_t k = none.size(); k < traj.size(); ++k) {  // the history's calls are in the initial state
        const json& m = traj[k];
        if (m.contains("tool_calls") && m["tool_calls"].is_array() && m.value("role", "") != "tool")
          for (auto& c : m["tool_calls"]) live->Call(c["requestor"], c["name"], c["arguments"]);
      }
      for (auto [t, st] : std::vector<std::pair<const json*, const t2::State*>>{{&traj, &*live}, {&none, &*idle}}) {
        auto replay = t2::CheckEnvironment(dom, task, *t);
        auto fast = t2::CheckEnvironment(dom, task, *t, st);
        auto from_json = t2::CheckEnvironment(dom, task, *t, st->db, st->user_db);  // the pipeline's final state
        ASSERT_TRUE(replay.ok() && fast.ok() && from_json.ok()) << d << " " << task.id;
        for (auto* other : {&*fast, &*from_json}) {
          EXPECT_EQ(replay->db_match, other->db_match) << d << " " << task.id;
          EXPECT_EQ(replay->all_assertions_met, other->all_assertions_met) << d << " " << task.id;
          EXPECT_EQ(json(replay->assertions), json(other->assertions)) << d << " " << task.id;
        }
      }
    }
  }
}

// ---- perturbations: each gives τ²-bench's outcome ----

const t2::Task& Find(const std::vector<t2::Task>& ts, const std::string& id) {
  for (auto& t : ts)
    if (t.id == id) return t;
  ADD_FAILURE() << "no task " << id;
  return ts.front();
}

// The first gold action that writes, as an index into the trajectory's assistant/user call messages.
json DropCall(json traj, const std::function<bool(const json&)>& pick) {
  for (size_t i = 0; i < traj.size(); ++i)
    if (traj[i].contains("tool_calls") && traj[i]["tool_calls"].is_array() && pick(traj[i]["tool_calls"][0])) {
      traj.erase(traj.begin() + static_cast<long>(i), traj.begin() + static_cast<long>(i) + 2);
      return traj;
    }
  ADD_FAILURE() << "no call picked";
  return traj;
}

bool FirstWrite(const std::shared_ptr<const t2::Domain>& dom, const json& call) { return dom->FindTool(call["name"], false) && dom->FindTool(call["name"], false)->write; }

TEST(Tau2Perturb, DroppedWriteScoresZeroOnEveryDomain) {
  for (auto [d, id] : std::vector<std::pair<std::string, std::string>>{{"retail", "0"}, {"airline", "12"}, {"mock", "update_task_1"}}) {
    auto dom = Dom(d);
    auto tasks = Load(d);
    const t2::Task& task = Find(tasks, id);
    json traj = GoldTrajectory(dom, task);
    ASSERT_EQ(Score(dom, task, traj).reward, 1.0) << d;
    json dropped = DropCall(traj, [&](const json& c) { return FirstWrite(dom, c); });
    auto ev = Score(dom, task, dropped);
    EXPECT_EQ(ev.reward, 0.0) << d;
    EXPECT_EQ(ev.breakdown["DB"], 0.0) << d;
  }
}

TEST(Tau2Perturb, WrongArgumentScoresZeroOnEveryDomain) {
  for (auto [d, id] : std::vector<std::pair<std::string, std::string>>{{"retail", "0"}, {"airline", "12"}, {"mock", "update_task_1"}}) {
    auto dom = Dom(d);
    auto tasks = Load(d);
    const t2::Task& task = Find(tasks, id);
    json traj = GoldTrajectory(dom, task);
    bool changed = false;
    for (auto& m : traj) {
      if (changed || !m.contains("tool_calls") || !m["tool_calls"].is_array() || !FirstWrite(dom, m["tool_calls"][0])) continue;
      json& args = m["tool_calls"][0]["arguments"];
      // A different, still valid, value: the other cancellation reason / status / a changed passenger name.
      if (args.contains("reason")) args["reason"] = args["reason"] == "no longer needed" ? "ordered by mistake" : "no longer needed";
      else if (args.contains("status")) args["status"] = args["status"] == "completed" ? "pending" : "completed";
      else if (args.contains("payment_method_id")) args["payment_method_id"] = "paypal_0000000";
      else if (args.contains("reservation_id")) args["reservation_id"] = "XXXXXX";
      else continue;
      changed = true;
    }
    ASSERT_TRUE(changed) << d;
    EXPECT_EQ(Score(dom, task, traj).reward, 0.0) << d << ": " << traj.dump().substr(0, 400);
  }
}

// Moves every call named `name` (and its result) to the other requestor.
json ByOtherRequestor(json traj, const std::string& name) {
  std::set<std::string> ids;
  for (auto& m : traj)
    if (m.contains("tool_calls") && m["tool_calls"].is_array() && m["tool_calls"][0]["name"] == name) {
      std::string other = m["tool_calls"][0]["requestor"] == "user" ? "assistant" : "user";
      m["role"] = other;
      m["tool_calls"][0]["requestor"] = other;
      ids.insert(m["tool_calls"][0]["id"].get<std::string>());
    }
  for (auto& m : traj)
    if (m.value("role", "") == "tool" && ids.count(m.value("id", ""))) m["requestor"] = m["requestor"] == "user" ? "assistant" : "user";
  return traj;
}

TEST(Tau2Perturb, CallByTheOtherRequestorIsPooledForActionButNotForTheDb) {
  auto dom = Dom("mock");
  auto tasks = Load("mock");
  // impossible_task_1 (basis DB, ACTION; gold: a transfer): τ² matches gold actions against the calls of
  // either requestor, and a transfer changes no database, so the user's call passes.
  const t2::Task& imp = Find(tasks, "impossible_task_1");
  auto ev = Score(dom, imp, ByOtherRequestor(GoldTrajectory(dom, imp), "transfer_to_human_agents"));
  EXPECT_EQ(ev.breakdown["ACTION"], 1.0);
  EXPECT_EQ(ev.reward, 1.0);
  // update_task_1 (basis DB, COMMUNICATE): the user has no update_task_status tool, so the replayed
  // database differs from the gold one: 0, as in τ².
  const t2::Task& upd = Find(tasks, "update_task_1");
  auto ev2 = Score(dom, upd, ByOtherRequestor(GoldTrajectory(dom, upd), "update_task_status"));
  EXPECT_EQ(ev2.breakdown["DB"], 0.0);
  EXPECT_EQ(ev2.reward, 0.0);
  // Retail: an exchange made on the user's side never happens.
  auto rdom = Dom("retail");
  auto rtasks = Load("retail");
  const t2::Task& r0 = Find(rtasks, "0");
  EXPECT_EQ(Score(rdom, r0, ByOtherRequestor(GoldTrajectory(rdom, r0), "exchange_delivered_order_items")).reward, 0.0);
}

TEST(Tau2Perturb, TransferIsANormalUserStopAndMaxStepsScoresZero) {
  auto dom = Dom("mock");
  auto tasks = Load("mock");
  const t2::Task& task = Find(tasks, "impossible_task_1");  // gold: transfer_to_human_agents, basis DB, ACTION
  json traj = GoldTrajectory(dom, task);
  traj.push_back({{"role", "user"}, {"content", "###TRANSFER###"}});
  EXPECT_EQ(Score(dom, task, traj, "transfer").reward, 1.0);
  EXPECT_EQ(Score(dom, task, traj, "user_stop").reward, 1.0);
  EXPECT_EQ(Score(dom, task, traj, "max_steps").reward, 0.0);
  EXPECT_EQ(Score(dom, task, traj, "too_many_errors").reward, 0.0);
  // A retail task that needs writes, ended by a transfer without them: a normal stop, scored 0 on DB.
  auto rdom = Dom("retail");
  auto rtasks = Load("retail");
  const t2::Task& r0 = Find(rtasks, "0");
  json t = json::array({{{"role", "assistant"}, {"content", "Hi! How can I help you today?"}}});
  t.push_back({{"role", "assistant"}, {"content", nullptr}, {"tool_calls", json::array({{{"id", "x"}, {"name", "transfer_to_human_agents"}, {"arguments", {{"summary", "s"}}}, {"requestor", "assistant"}}})}});
  t.push_back({{"role", "tool"}, {"id", "x"}, {"content", "Transfer successful"}, {"requestor", "assistant"}});
  auto ev = Score(rdom, r0, t, "transfer");
  EXPECT_EQ(ev.breakdown["DB"], 0.0);
  EXPECT_TRUE(ev.info.contains("db_match"));  // scored, not cut as premature
}

TEST(Tau2Perturb, MissingCommunicationScoresZero) {
  auto dom = Dom("airline");
  auto tasks = Load("airline");
  int checked = 0;
  for (auto& task : tasks) {
    const json& ci = task.evaluation_criteria()["communicate_info"];
    if (!ci.is_array() || ci.empty()) continue;
    json traj = GoldTrajectory(dom, task);
    traj.erase(traj.end() - 1);  // the agent's message saying the information
    auto ev = Score(dom, task, traj);
    EXPECT_EQ(ev.breakdown["COMMUNICATE"], 0.0) << task.id;
    EXPECT_EQ(ev.reward, 0.0) << task.id;
    ++checked;
  }
  EXPECT_GT(checked, 0);
}

TEST(Tau2Rules, CompareArgsFollowsTau2) {
  json gold = {{"name", "f"}, {"arguments", {{"a", 1}, {"b", 2}}}, {"compare_args", nullptr}};
  // compare_args null compares the CALL's keys: a call giving fewer keys matches, one with an extra key not.
  EXPECT_TRUE(rt::ActionMatches(gold, "f", {{"a", 1}, {"b", 2}}));
  EXPECT_TRUE(rt::ActionMatches(gold, "f", {{"a", 1}}));
  EXPECT_FALSE(rt::ActionMatches(gold, "f", {{"a", 1}, {"b", 2}, {"c", 3}}));
  EXPECT_FALSE(rt::ActionMatches(gold, "f", {{"a", 2}, {"b", 2}}));
  EXPECT_FALSE(rt::ActionMatches(gold, "g", {{"a", 1}, {"b", 2}}));
  gold["compare_args"] = json::array({"a"});
  EXPECT_TRUE(rt::ActionMatches(gold, "f", {{"a", 1}, {"b", 99}, {"z", 0}}));
  gold["compare_args"] = json::array();
  EXPECT_TRUE(rt::ActionMatches(gold, "f", {{"q", 0}}));
}

TEST(Tau2Rules, CommunicateLowersUnicodeAndDropsCommas) {
  json traj = json::array({{{"role", "assistant"}, {"content", "Your refund is 1,234.50 to ÉLODIE."}}, {{"role", "user"}, {"content", "42"}}});
  EXPECT_TRUE(rt::Communicated(traj, "1234.50"));
  EXPECT_TRUE(rt::Communicated(traj, "élodie"));
  EXPECT_FALSE(rt::Communicated(traj, "42"));  // user messages do not count
}

TEST(Tau2Rules, NlAssertionNeedsAJudgeAndReadsItsJson) {
  auto tasks = Load("retail");
  const t2::Task* with_nl = nullptr;
  for (auto& t : tasks)
    if (t.evaluation_criteria()["nl_assertions"].is_array() && !t.evaluation_criteria()["nl_assertions"].empty()) {
      with_nl = &t;
      break;
    }
  ASSERT_TRUE(with_nl);
  json traj = json::array({{{"role", "assistant"}, {"content", "Done."}}});
  rt::Tau2EnvOutcome env;
  auto none = rt::Evaluate(with_nl->data, traj, "user_stop", env, nullptr);
  EXPECT_EQ(none.status().code(), Code::kFailedPrecondition);
  size_t n = with_nl->evaluation_criteria()["nl_assertions"].size();
  auto judge = [n](bool met) {
    return [n, met](const std::vector<Message>& msgs) -> Expected<std::string> {
      EXPECT_NE(msgs.back().content.find("expectedOutcomes"), std::string::npos);
      json r = json::array();
      for (size_t i = 0; i < n; ++i) r.push_back({{"expectedOutcome", "x"}, {"reasoning", "r"}, {"metExpectation", met || i > 0}});
      return "```json\n" + json{{"results", r}}.dump() + "\n```";
    };
  };
  auto yes = rt::Evaluate(with_nl->data, traj, "user_stop", env, judge(true));
  ASSERT_TRUE(yes.ok()) << yes.status().ToString();
  EXPECT_EQ(yes->breakdown["NL_ASSERTION"], 1.0);
  auto no = rt::Evaluate(with_nl->data, traj, "user_stop", env, judge(false));
  ASSERT_TRUE(no.ok());
  EXPECT_EQ(no->breakdown["NL_ASSERTION"], 0.0);
  auto bad = rt::Evaluate(with_nl->data, traj, "user_stop", env, [](const std::vector<Message>&) -> Expected<std::string> { return std::string("yes"); });
  EXPECT_FALSE(bad.ok());
}

TEST(Tau2Domains, ToolErrorsAreTau2Texts) {
  auto dom = Dom("retail");
  t2::State s(dom);
  EXPECT_EQ(s.Call("assistant", "get_order_details", {{"order_id", "#nope"}}).content, "Error: Order not found");
  EXPECT_EQ(s.Call("assistant", "calculate", {{"expression", "2 * (3 + 4.5)"}}).content, "15.0");
  EXPECT_EQ(s.Call("assistant", "calculate", {{"expression", "1/0"}}).content, "Error: division by zero");
  EXPECT_EQ(s.Call("assistant", "calculate", {{"expression", "import os"}}).content, "Error: Invalid characters in expression");
  EXPECT_EQ(s.Call("assistant", "no_such_tool", json::object()).content, "Error: Tool 'no_such_tool' not found.");
  auto air = Dom("airline");
  t2::State a(air);
  EXPECT_EQ(a.Call("assistant", "get_reservation_details", {{"reservation_id", "NOPE"}}).content, "Error: Reservation NOPE not found");
  auto cert = a.Call("assistant", "send_certificate", {{"user_id", "mia_li_3668"}, {"amount", 50}});
  EXPECT_EQ(cert.content, "Certificate certificate_3221322 added to user mia_li_3668 with amount 50.");
}

// ---- telecom: dual control on the user's phone, set-up actions, env assertions by name ----

std::vector<t2::Task> Telecom() { return Load("telecom"); }

TEST(Tau2Telecom, EveryTaskInitialisesThroughItsSetUpActions) {
  auto dom = Dom("telecom");
  ASSERT_TRUE(dom);
  for (std::string f : {"tasks.json", "tasks_small.json"}) {
    int actions = 0;
    for (auto& task : Load("telecom", f)) {
      auto st = t2::InitialState(dom, task, nullptr);
      ASSERT_TRUE(st.ok()) << task.id << ": " << st.status().ToString();
      actions += static_cast<int>(task.initial_state()["initialization_actions"].size());
      // set_user_info names the user's phone; sync then mirrors the line into the surroundings.
      EXPECT_TRUE(st->user_db["surroundings"]["phone_number"].is_string()) << task.id;
    }
    if (f == "tasks.json") {
      EXPECT_EQ(actions, 803);
    }  // τ²'s June-2025 tasks.json
  }
}

TEST(Tau2Telecom, DroppingAGoldActionOrChangingItsArgumentScoresZero) {
  auto dom = Dom("telecom");
  int dropped_zero = 0, changed_zero = 0, changed = 0;
  auto tasks = Telecom();
  for (auto& task : tasks) {
    json traj = GoldTrajectory(dom, task);
    ASSERT_EQ(Score(dom, task, traj).reward, 1.0) << task.id;
    // Every gold action is needed: dropping the first one fails the task.
    json dropped = DropCall(traj, [](const json&) { return true; });
    if (Score(dom, task, dropped).reward == 0.0) ++dropped_zero;
    else ADD_FAILURE() << task.id << ": still 1.0 without " << traj[1].dump();
    // A changed argument: another refuel amount, the slowest network mode (3G would still carry MMS and
    // pass those tasks, in τ² too).
    json c = traj;
    bool any = false;
    for (auto& m : c)
      if (m.contains("tool_calls") && m["tool_calls"].is_array()) {
        json& call = m["tool_calls"][0];
        if (call["name"] == "refuel_data") call["arguments"]["gb_amount"] = call["arguments"]["gb_amount"].get<double>() + 1.0, any = true;
        if (call["name"] == "set_network_mode_preference") call["arguments"]["mode"] = "2g_only", any = true;
      }
    if (!any) continue;
    ++changed;
    if (Score(dom, task, c).reward == 0.0) ++changed_zero;
    else ADD_FAILURE() << task.id << ": still 1.0 with a changed argument";
  }
  EXPECT_EQ(dropped_zero, static_cast<int>(tasks.size()));
  EXPECT_GT(changed, 50);
  EXPECT_EQ(changed_zero, changed);
}

TEST(Tau2Telecom, UserToolCalledByTheAgentDoesNothing) {
  auto dom = Dom("telecom");
  auto tasks = Telecom();
  const t2::Task& task = tasks[0];  // data off + usage exceeded: toggle_data (user) and refuel_data (agent)
  json traj = GoldTrajectory(dom, task);
  ASSERT_EQ(Score(dom, task, traj).reward, 1.0);
  auto ev = Score(dom, task, ByOtherRequestor(traj, "toggle_data"));
  EXPECT_EQ(ev.reward, 0.0);
}

TEST(Tau2Telecom, PhoneToolsAnswerWithTau2Texts) {
  auto dom = Dom("telecom");
  t2::State s(dom);
  ASSERT_TRUE(s.RunFunction("user", "set_user_info", {{"name", "John Smith"}, {"phone_number", "555-123-2002"}}).ok());
  EXPECT_EQ(s.Call("user", "check_status_bar", json::object()).content, "Status Bar: 📶³ Good | 5G | 📱 Data Enabled | 🔋 80%");
  EXPECT_EQ(s.Call("user", "run_speed_test", json::object()).content,
            "Speed Test Result: 220.00 Mbps (Excellent). Connection is very fast.");
  EXPECT_EQ(s.Call("user", "toggle_airplane_mode", json::object()).content,
            "Airplane Mode is now ON.\nStatus Bar: ✈️ Airplane Mode | 🔋 80%");
  EXPECT_EQ(s.Call("user", "run_speed_test", json::object()).content, "Speed test failed: No Connection.");
  EXPECT_EQ(s.Call("user", "toggle_airplane_mode", json::object()).content,
            "Airplane Mode is now OFF.\nStatus Bar: 📶⁴ Excellent | 5G | 📱 Data Enabled | 🔋 80%");
  EXPECT_EQ(s.Call("user", "check_app_permissions", {{"app_name", "messaging"}}).content,
            "App 'messaging' has permission for: sms, storage, phone.");
  EXPECT_EQ(s.Call("user", "set_network_mode_preference", {{"mode", "5g_only"}}).content.substr(0, 60),
            "Failed to set network mode: '5g_only' is not a valid option.");
  // The agent's tools over db.toml, τ²'s error texts.
  EXPECT_EQ(s.Call("assistant", "get_details_by_id", {{"id", "X1"}}).content, "Error: Unknown ID format or type: X1");
  EXPECT_EQ(s.Call("assistant", "resume_line", {{"customer_id", "C1001"}, {"line_id", "L1004"}}).content,
            "Error: Line L1004 not found for customer C1001");
  EXPECT_EQ(s.Call("assistant", "get_data_usage", {{"customer_id", "C1001"}, {"line_id", "L1002"}}).content,
            R"({"cycle_end_date":"2025-02-28","data_limit_gb":15.0,"data_refueling_gb":0.0,"data_used_gb":8.7,"line_id":"L1002"})");
  // A user tool is not the agent's.
  EXPECT_EQ(s.Call("assistant", "toggle_data", json::object()).content, "Error: Tool 'toggle_data' not found.");
}

TEST(Tau2Telecom, PaymentRequestReachesThePhoneAndPayingSettlesTheBill) {
  auto dom = Dom("telecom");
  t2::State s(dom);
  ASSERT_TRUE(s.RunFunction("user", "set_user_info", {{"name", "John Smith"}, {"phone_number", "555-123-2002"}}).ok());
  EXPECT_EQ(s.Call("user", "check_payment_request", json::object()).content, "No payment request has been made.");
  EXPECT_EQ(s.Call("assistant", "send_payment_request", {{"customer_id", "C1001"}, {"bill_id", "B1002"}}).content,
            "Payment request sent to the customer for bill B1002");
  EXPECT_TRUE(s.Call("assistant", "send_payment_request", {{"customer_id", "C1001"}, {"bill_id", "B1002"}}).error);
  std::string req = s.Call("user", "check_payment_request", json::object()).content;
  EXPECT_EQ(req.rfind("You have a payment request for bill B1002 of ", 0), 0u) << req;
  EXPECT_EQ(s.Call("user", "make_payment", json::object()).content.rfind("Payment of ", 0), 0u);
  auto bill = s.Call("assistant", "get_details_by_id", {{"id", "B1002"}});
  EXPECT_EQ(json::parse(bill.content)["status"], "Paid");
  EXPECT_TRUE(s.user_db["surroundings"]["payment_request"].is_null());
}

TEST(Tau2Telecom, BadDataFolderIsAnErrorNamingTheFile) {
  auto tmp = std::filesystem::temp_directory_path() / ("k2gym_tau2_telecom_" + std::to_string(std::random_device{}()));
  std::filesystem::create_directories(tmp);
  {
    std::ofstream(tmp / "db.toml") << "[[plans]]\nplan_id = \"P1\"\nname = = 3\n";
  }
  auto r = t2::LoadDomain("telecom", tmp.string());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("db.toml:3"), std::string::npos) << r.status().message();
  std::filesystem::remove_all(tmp);
}

}  // namespace
}  // namespace k2
