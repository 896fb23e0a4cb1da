// τ² initial state, trajectory replay, the environment check and the Tau2Env environment.
#include "agents/tau2/env.h"

#include <map>
#include <mutex>
#include <optional>

namespace k2::agents::tau2 {

namespace {

std::string Requestor(const json& call, const json& message) {
  if (call.contains("requestor") && call["requestor"].is_string()) return call["requestor"];
  return message.value("role", "assistant") == "user" ? "user" : "assistant";
}

json ParsedOrText(const std::string& s) {
  json j = json::parse(s, nullptr, false);
  return j.is_discarded() ? json(s) : j;
}

}  // namespace

void ReplayTrajectory(State& state, const json& trajectory, std::vector<std::string>* log) {
  if (!trajectory.is_array()) return;
  for (size_t i = 0; i < trajectory.size(); ++i) {
    const json& m = trajectory[i];
    if (!m.is_object() || !m.contains("tool_calls") || !m["tool_calls"].is_array()) continue;
    const std::string role = m.value("role", "");
    if (role != "assistant" && role != "user") continue;
    for (auto& tc : m["tool_calls"]) {
      if (!tc.is_object() || !tc.contains("name") || !tc["name"].is_string()) continue;
      std::string req = Requestor(tc, m);
      std::string name = tc["name"];
      if (!state.IsWrite(name, req)) continue;  // unknown or read-only: no state change to redo
      json args = tc.contains("arguments") && tc["arguments"].is_object() ? tc["arguments"] : json::object();
      CallResult r = state.Call(req, name, args);
      if (!log) continue;
      // The recorded answer is the tool message with this call's id after this message.
      std::string id = tc.value("id", "");
      for (size_t k = i + 1; k < trajectory.size(); ++k) {
        const json& t = trajectory[k];
        if (t.value("role", "") != "tool") break;
        if (t.value("id", "") != id) continue;
        std::string recorded = t["content"].is_string() ? t["content"].get<std::string>() : "";
        if (ParsedOrText(recorded) != ParsedOrText(r.content))
          log->push_back("replayed " + name + " (call " + id + ") returned " + r.content.substr(0, 200) + " but the trajectory recorded " +
                         recorded.substr(0, 200));
        break;
      }
    }
  }
  // τ²'s set_state ends with a sync; a sync that fails here failed after some call already (logged).
  Status synced = state.Sync();
  if (!synced.ok() && log) log->push_back(synced.message());
}

Expected<State> InitialState(const std::shared_ptr<const Domain>& domain, const Task& task, std::vector<std::string>* log) {
  State s(domain);
  const json& is = task.initial_state();
  if (!is.is_object()) return s;
  const json& data = is["initialization_data"];
  if (data.is_object()) {
    if (data["agent_data"].is_object()) s.UpdateDb(data["agent_data"], false);
    if (data["user_data"].is_object()) {
      if (s.user_db.is_null()) return InvalidArgument("task " + task.id + ": initialization_data.user_data given but domain " + domain->name + " has no user database");
      s.UpdateDb(data["user_data"], true);
    }
  }
  const json& acts = is["initialization_actions"];
  for (size_t i = 0; acts.is_array() && i < acts.size(); ++i) {
    auto r = s.RunFunction(acts[i]["env_type"], acts[i]["func_name"], acts[i]["arguments"]);
    if (!r.ok()) return r.status().Context("task " + task.id + ": initial_state/initialization_actions/" + std::to_string(i));
  }
  ReplayTrajectory(s, is["message_history"], log);
  K2_RETURN_IF_ERROR(s.Sync().Context("task " + task.id + ": initial state"));
  return s;
}

std::string AgentSystemPrompt(const Domain& domain) {
  return "<instructions>\n"
         "You are a customer service agent. Help the user following the <policy> below.\n"
         "Each turn, either send a message to the user or make tool calls, not both.\n"
         "Be helpful, follow the policy strictly, and give tool arguments as valid JSON.\n"
         "</instructions>\n<policy>\n" +
         domain.policy + "\n</policy>";
}

Message ToChat(const json& m) {
  Message out;
  out.role = m.value("role", "");
  if (m.contains("content") && m["content"].is_string()) out.content = m["content"];
  if (out.role == "tool") {
    out.tool_call_id = m.value("id", "");
    return out;
  }
  if (m.contains("tool_calls") && m["tool_calls"].is_array())
    for (auto& tc : m["tool_calls"]) {
      ToolCall c;
      c.id = tc.value("id", "");
      c.name = tc.value("name", "");
      c.arguments = tc.contains("arguments") ? tc["arguments"].dump() : "{}";
      out.tool_calls.push_back(std::move(c));
    }
  return out;
}

std::vector<Message> HistoryMessages(const Task& task) {
  std::vector<Message> out;
  const json& is = task.initial_state();
  if (!is.is_object() || !is["message_history"].is_array()) return out;
  for (auto& m : is["message_history"]) out.push_back(ToChat(m));
  return out;
}

namespace {

// CheckEnvironment's body: `live_db`/`live_user_db` null = replay the trajectory.
Expected<EnvCheck> Check(const std::shared_ptr<const Domain>& domain, const Task& task, const json& trajectory,
                         const json* live_db, const json* live_user_db) {
  EnvCheck c;
  const json& ec = task.evaluation_criteria();
  if (!ec.is_object()) {
    c.note = "No evaluation criteria";
    return c;
  }
  if (ec["actions"].is_null() && ec["env_assertions"].is_null()) {
    c.note = "No expected actions or env assertions";
    return c;
  }
  // Predicted: initial data and actions, then the whole trajectory (history included) replayed — or the
  // episode's own final state.
  std::optional<State> replayed;
  if (!live_db) {
    Task bare = task;
    if (bare.data["initial_state"].is_object()) bare.data["initial_state"]["message_history"] = nullptr;
    K2_ASSIGN_OR_RETURN(State pred, InitialState(domain, bare, nullptr));
    ReplayTrajectory(pred, trajectory, &c.replay_log);
    replayed.emplace(std::move(pred));
  }
  const json& pred_db = live_db ? *live_db : replayed->db;
  const json& pred_user_db = live_db ? *live_user_db : replayed->user_db;
  K2_ASSIGN_OR_RETURN(State gold, InitialState(domain, task, nullptr));
  if (ec["actions"].is_array())
    for (auto& a : ec["actions"]) {
      // τ²'s evaluator replays gold actions with make_tool_call: no sync between them.
      CallResult r = gold.Call(a["requestor"], a["name"], a["arguments"], /*sync=*/false);
      if (r.error) c.gold_log.push_back("gold action " + a["action_id"].get<std::string>() + " " + a["name"].get<std::string>() + ": " + r.content);
    }
  // τ² compares the hashes of the two databases; comparing the trees is the same test without
  // serialising two copies of a 3 MB database (numbers compare by value, as τ²'s typed models make
  // 50 and 50.0 the same field value).
  c.db_match = gold.db == pred_db && gold.user_db == pred_user_db;
  // Assertions may sync (change) the state they run on: a copy of the live one.
  if (ec["env_assertions"].is_array() && !ec["env_assertions"].empty() && !replayed) replayed.emplace(domain, *live_db, *live_user_db);
  if (ec["env_assertions"].is_array())
    for (auto& as : ec["env_assertions"]) {
      json rec = {{"func_name", as["func_name"]}, {"env_type", as["env_type"]}, {"arguments", as["arguments"]}};
      auto r = replayed->RunFunction(as["env_type"], as["func_name"], as["arguments"]);
      bool met = false;
      if (!r.ok()) {
        rec["error"] = r.status().message();
      } else if (!r->is_boolean()) {
        rec["error"] = "function " + as["func_name"].get<std::string>() + " returned " + r->type_name() + " instead of bool";
      } else {
        met = r->get<bool>() == as["assert_value"].get<bool>();
      }
      rec["met"] = met;
      c.all_assertions_met = c.all_assertions_met && met;
      c.assertions.push_back(std::move(rec));
    }
  return c;
}

}  // namespace

Expected<EnvCheck> CheckEnvironment(const std::shared_ptr<const Domain>& domain, const Task& task, const json& trajectory,
                                    const State* live) {
  return live ? Check(domain, task, trajectory, &live->db, &live->user_db) : Check(domain, task, trajectory, nullptr, nullptr);
}

Expected<EnvCheck> CheckEnvironment(const std::shared_ptr<const Domain>& domain, const Task& task, const json& trajectory,
                                    const json& live_db, const json& live_user_db) {
  return Check(domain, task, trajectory, &live_db, &live_user_db);
}

Tau2Env::Tau2Env(std::shared_ptr<const Domain> domain, int max_steps) : ToolEnv(max_steps), domain_(std::move(domain)) {
  auto t = ToolTable::Compile(domain_->ToolSpecs(false), "tau2 " + domain_->name + " tools");
  K2_CHECK(t.ok()) << t.status().ToString();
  SetToolTable(*t);
  if (!domain_->user_tools.empty()) {
    auto u = ToolTable::Compile(domain_->ToolSpecs(true), "tau2 " + domain_->name + " user tools");
    K2_CHECK(u.ok()) << u.status().ToString();
    SetUserToolTable(*u);
  }
}

json Tau2Env::State() const {
  if (!state_) return nullptr;
  return json{{"db", state_->db}, {"user_db", state_->user_db}, {"calls", calls_}};
}

Expected<std::vector<Message>> Tau2Env::OnReset(uint64_t, const json& task_json) {
  K2_ASSIGN_OR_RETURN(json norm, NormalizeTask(task_json, "tau2 task"));
  Task task;
  task.id = norm["id"];
  task.domain = domain_->name;
  task.data = std::move(norm);
  K2_ASSIGN_OR_RETURN(tau2::State s, InitialState(domain_, task, nullptr));
  state_ = std::make_unique<tau2::State>(std::move(s));
  calls_ = json::array();
  std::vector<Message> first;
  first.push_back(Message{"system", AgentSystemPrompt(*domain_), {}, "", ""});
  std::vector<Message> hist = HistoryMessages(task);
  if (hist.empty()) first.push_back(Message{"assistant", kAgentGreeting, {}, "", ""});
  for (auto& m : hist) first.push_back(std::move(m));
  return first;
}

Expected<ToolOutcome> Tau2Env::Invoke(const std::string& tool, const json& arguments) {
  if (!state_) return FailedPrecondition("tau2 env: call before reset");
  CallResult r = state_->Call("assistant", tool, arguments);
  calls_.push_back({{"requestor", "assistant"}, {"name", tool}, {"arguments", arguments}, {"content", r.content}, {"error", r.error}});
  return ToolOutcome{r.content, std::nullopt, r.error};
}

Expected<ToolOutcome> Tau2Env::InvokeUser(const std::string& tool, const json& arguments) {
  if (!state_) return FailedPrecondition("tau2 env: call before reset");
  CallResult r = state_->Call("user", tool, arguments);
  calls_.push_back({{"requestor", "user"}, {"name", tool}, {"arguments", arguments}, {"content", r.content}, {"error", r.error}});
  return ToolOutcome{r.content, std::nullopt, r.error};
}

Expected<std::unique_ptr<Env>> MakeTau2Env(const std::string& domain, const std::string& data_dir, int max_steps) {
  K2_ASSIGN_OR_RETURN(auto d, LoadDomain(domain, data_dir));
  return std::unique_ptr<Env>(new Tau2Env(d, max_steps));
}

Expected<std::shared_ptr<const Domain>> SharedDomain(const std::string& name, const std::string& dir) {
  // Loading a domain parses its database (megabytes for retail): once per process per folder.
  static std::mutex mu;
  static std::map<std::pair<std::string, std::string>, std::shared_ptr<const Domain>> cache;
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = cache.find({name, dir});
    if (it != cache.end()) return it->second;
  }
  K2_ASSIGN_OR_RETURN(auto loaded, LoadDomain(name, dir));
  std::lock_guard<std::mutex> lock(mu);
  return cache.emplace(std::make_pair(name, dir), loaded).first->second;
}

Status RegisterTau2Env(EnvRegistry& registry) {
  EnvInfo info{.name = "tau2",
               .description = "a τ²-bench domain run natively (airline, retail, telecom, mock): its database, policy and "
                              "tools; reset takes a τ² task (config: domain, data_dir = τ²'s folder of the domain, "
                              "max_steps)",
               .example_config = {{"domain", "airline"}, {"data_dir", "tau2/domains/airline"}, {"max_steps", 200}}};
  return registry.Register(info, [](const json& config) -> Expected<std::unique_ptr<Env>> {
    if (!config.is_object()) return InvalidArgument(std::string("tau2: config: expected an object, got ") + JsonTypeName(config));
    for (const auto& [k, v] : config.items())
      if (k != "domain" && k != "data_dir" && k != "max_steps")
        return InvalidArgument("tau2: config: unknown key " + json(k).dump() + " (expected domain, data_dir, max_steps)");
    if (!config.contains("domain") || !config["domain"].is_string())
      return InvalidArgument("tau2: config.domain: expected a string (airline, retail, telecom or mock)");
    if (!config.contains("data_dir") || !config["data_dir"].is_string())
      return InvalidArgument("tau2: config.data_dir: expected a string (τ²'s folder of the domain: db.json or db.toml, policy)");
    int max_steps = 200;
    if (config.contains("max_steps")) {
      const json& m = config["max_steps"];
      if (!m.is_number_integer() || m.get<int64_t>() < 1 || m.get<int64_t>() > 100000)
        return InvalidArgument("tau2: config.max_steps: expected an integer in [1, 100000], got " + m.dump());
      max_steps = m.get<int>();
    }
    const std::string name = config["domain"], dir = config["data_dir"];
    auto d = SharedDomain(name, dir);
    if (!d.ok()) return d.status().Context("tau2: config");
    return std::unique_ptr<Env>(new Tau2Env(*d, max_steps));
  });
}

}  // namespace k2::agents::tau2
