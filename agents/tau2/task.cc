// τ²-bench Task model: validation with τ²'s defaults (pydantic's Optional[...] = None and default
// factories), unknown keys kept, split files.
#include "agents/tau2/task.h"

#include <filesystem>
#include <set>

namespace k2::agents::tau2 {

namespace {

// Field checks over one object: each Want* fills the default when the key is absent and checks the
// type otherwise; the first error wins.
class Obj {
 public:
  Obj(json& j, std::string where) : j_(j), where_(std::move(where)) {}
  const std::string& where() const { return where_; }
  std::string At(const std::string& key) const { return where_ + "/" + key; }
  Status Required(const std::string& key, const char* what, bool (*ok)(const json&)) {
    if (!j_.contains(key)) return InvalidArgument(At(key) + ": missing (expected " + what + ")");
    if (!ok(j_[key])) return InvalidArgument(At(key) + ": expected " + what + ", got " + j_[key].type_name());
    return Status::Ok();
  }
  // Optional[X] = default: absent -> default; present null allowed when `nullable`.
  Status Optional(const std::string& key, const char* what, bool (*ok)(const json&), json def = nullptr,
                  bool nullable = true) {
    if (!j_.contains(key)) {
      j_[key] = std::move(def);
      return Status::Ok();
    }
    if (j_[key].is_null() && nullable) return Status::Ok();
    if (!ok(j_[key])) return InvalidArgument(At(key) + ": expected " + what + ", got " + j_[key].type_name());
    return Status::Ok();
  }
  json& operator[](const std::string& key) { return j_[key]; }

 private:
  json& j_;
  std::string where_;
};

bool IsStr(const json& j) { return j.is_string(); }
bool IsObj(const json& j) { return j.is_object(); }
bool IsArr(const json& j) { return j.is_array(); }
bool IsBool(const json& j) { return j.is_boolean(); }
bool IsStrList(const json& j) {
  if (!j.is_array()) return false;
  for (auto& e : j)
    if (!e.is_string()) return false;
  return true;
}

Status CheckRequestor(const json& v, const std::string& where) {
  if (!v.is_string() || (v != "assistant" && v != "user"))
    return InvalidArgument(where + ": expected \"assistant\" or \"user\"");
  return Status::Ok();
}

Status NormalizeAction(json& a, const std::string& w) {
  if (!a.is_object()) return InvalidArgument(w + ": expected an Action object");
  Obj o(a, w);
  K2_RETURN_IF_ERROR(o.Required("action_id", "a string", IsStr));
  K2_RETURN_IF_ERROR(o.Optional("requestor", "\"assistant\" or \"user\"", IsStr, "assistant", false));
  K2_RETURN_IF_ERROR(CheckRequestor(a["requestor"], o.At("requestor")));
  K2_RETURN_IF_ERROR(o.Required("name", "a string", IsStr));
  K2_RETURN_IF_ERROR(o.Required("arguments", "an object", IsObj));
  K2_RETURN_IF_ERROR(o.Optional("info", "a string or null", IsStr));
  K2_RETURN_IF_ERROR(o.Optional("compare_args", "a list of strings or null", IsStrList));
  return Status::Ok();
}

Status NormalizeEnvCall(json& c, const std::string& w, bool assertion) {
  if (!c.is_object()) return InvalidArgument(w + ": expected an object");
  Obj o(c, w);
  K2_RETURN_IF_ERROR(o.Required("env_type", "\"assistant\" or \"user\"", IsStr));
  K2_RETURN_IF_ERROR(CheckRequestor(c["env_type"], o.At("env_type")));
  K2_RETURN_IF_ERROR(o.Required("func_name", "a string", IsStr));
  K2_RETURN_IF_ERROR(o.Required("arguments", "an object", IsObj));
  if (assertion) {
    K2_RETURN_IF_ERROR(o.Optional("assert_value", "true or false", IsBool, true, false));
    K2_RETURN_IF_ERROR(o.Optional("message", "a string or null", IsStr));
  }
  return Status::Ok();
}

Status NormalizeMessage(json& m, const std::string& w) {
  if (!m.is_object()) return InvalidArgument(w + ": expected a message object");
  Obj o(m, w);
  K2_RETURN_IF_ERROR(o.Required("role", "a string", IsStr));
  const std::string role = m["role"];
  if (role != "system" && role != "user" && role != "assistant" && role != "tool")
    return InvalidArgument(o.At("role") + ": expected system, user, assistant or tool, got \"" + role + "\"");
  K2_RETURN_IF_ERROR(o.Optional("content", "a string or null", IsStr));
  if (role == "tool") {
    K2_RETURN_IF_ERROR(o.Required("id", "the id of the tool call answered", IsStr));
    K2_RETURN_IF_ERROR(o.Optional("requestor", "\"assistant\" or \"user\"", IsStr, "assistant", false));
    K2_RETURN_IF_ERROR(CheckRequestor(m["requestor"], o.At("requestor")));
    K2_RETURN_IF_ERROR(o.Optional("error", "true or false", IsBool, false, false));
  }
  if (role == "user" || role == "assistant") {
    K2_RETURN_IF_ERROR(o.Optional("tool_calls", "a list of tool calls or null", IsArr));
    if (m["tool_calls"].is_array()) {
      for (size_t i = 0; i < m["tool_calls"].size(); ++i) {
        json& tc = m["tool_calls"][i];
        std::string tw = o.At("tool_calls") + "/" + std::to_string(i);
        if (!tc.is_object()) return InvalidArgument(tw + ": expected a tool call object");
        Obj t(tc, tw);
        K2_RETURN_IF_ERROR(t.Optional("id", "a string", IsStr, "", false));
        K2_RETURN_IF_ERROR(t.Required("name", "a string", IsStr));
        K2_RETURN_IF_ERROR(t.Required("arguments", "an object", IsObj));
        // τ²'s ToolCall.requestor defaults to "assistant" whatever the message role.
        K2_RETURN_IF_ERROR(t.Optional("requestor", "\"assistant\" or \"user\"", IsStr, "assistant", false));
        K2_RETURN_IF_ERROR(CheckRequestor(tc["requestor"], t.At("requestor")));
      }
    }
  }
  return Status::Ok();
}

Status NormalizeStrList(Obj& o, const std::string& key) {
  return o.Optional(key, "a list of strings or null", IsStrList);
}

}  // namespace

std::vector<std::string> Task::reward_basis() const {
  std::vector<std::string> out;
  const json& ec = evaluation_criteria();
  if (ec.is_object())
    for (auto& b : ec["reward_basis"]) out.push_back(b.get<std::string>());
  return out;
}

Expected<json> NormalizeTask(const json& task, const std::string& where) {
  if (!task.is_object()) return InvalidArgument(where + ": expected a task object, got " + std::string(task.type_name()));
  json t = task;
  Obj o(t, where);
  K2_RETURN_IF_ERROR(o.Required("id", "a string", IsStr));

  K2_RETURN_IF_ERROR(o.Optional("description", "an object or null", IsObj));
  if (t["description"].is_object()) {
    Obj d(t["description"], o.At("description"));
    for (const char* k : {"purpose", "relevant_policies", "notes"}) K2_RETURN_IF_ERROR(d.Optional(k, "a string or null", IsStr));
  }

  K2_RETURN_IF_ERROR(o.Required("user_scenario", "an object", IsObj));
  {
    Obj u(t["user_scenario"], o.At("user_scenario"));
    K2_RETURN_IF_ERROR(u.Optional("persona", "a string or null", IsStr));
    json& ins = t["user_scenario"]["instructions"];
    if (!t["user_scenario"].contains("instructions"))
      return InvalidArgument(u.At("instructions") + ": missing (expected a string or structured instructions)");
    if (ins.is_object()) {
      Obj i(ins, u.At("instructions"));
      K2_RETURN_IF_ERROR(i.Required("domain", "a string", IsStr));
      K2_RETURN_IF_ERROR(i.Required("reason_for_call", "a string", IsStr));
      K2_RETURN_IF_ERROR(i.Optional("known_info", "a string or null", IsStr));
      K2_RETURN_IF_ERROR(i.Optional("unknown_info", "a string or null", IsStr));
      K2_RETURN_IF_ERROR(i.Required("task_instructions", "a string", IsStr));
    } else if (!ins.is_string()) {
      return InvalidArgument(u.At("instructions") + ": expected a string or an object, got " + ins.type_name());
    }
  }

  K2_RETURN_IF_ERROR(o.Optional("ticket", "a string or null", IsStr));

  K2_RETURN_IF_ERROR(o.Optional("initial_state", "an object or null", IsObj));
  if (t["initial_state"].is_object()) {
    Obj s(t["initial_state"], o.At("initial_state"));
    K2_RETURN_IF_ERROR(s.Optional("initialization_data", "an object or null", IsObj));
    if (t["initial_state"]["initialization_data"].is_object()) {
      Obj d(t["initial_state"]["initialization_data"], s.At("initialization_data"));
      K2_RETURN_IF_ERROR(d.Optional("agent_data", "an object or null", IsObj));
      K2_RETURN_IF_ERROR(d.Optional("user_data", "an object or null", IsObj));
    }
    K2_RETURN_IF_ERROR(s.Optional("initialization_actions", "a list or null", IsArr));
    json& acts = t["initial_state"]["initialization_actions"];
    for (size_t i = 0; acts.is_array() && i < acts.size(); ++i)
      K2_RETURN_IF_ERROR(NormalizeEnvCall(acts[i], s.At("initialization_actions") + "/" + std::to_string(i), false));
    K2_RETURN_IF_ERROR(s.Optional("message_history", "a list of messages or null", IsArr));
    json& hist = t["initial_state"]["message_history"];
    for (size_t i = 0; hist.is_array() && i < hist.size(); ++i)
      K2_RETURN_IF_ERROR(NormalizeMessage(hist[i], s.At("message_history") + "/" + std::to_string(i)));
  }

  K2_RETURN_IF_ERROR(o.Optional("evaluation_criteria", "an object or null", IsObj));
  if (t["evaluation_criteria"].is_object()) {
    json& ec = t["evaluation_criteria"];
    Obj e(ec, o.At("evaluation_criteria"));
    K2_RETURN_IF_ERROR(e.Optional("actions", "a list of actions or null", IsArr));
    for (size_t i = 0; ec["actions"].is_array() && i < ec["actions"].size(); ++i)
      K2_RETURN_IF_ERROR(NormalizeAction(ec["actions"][i], e.At("actions") + "/" + std::to_string(i)));
    K2_RETURN_IF_ERROR(e.Optional("env_assertions", "a list of env assertions or null", IsArr));
    for (size_t i = 0; ec["env_assertions"].is_array() && i < ec["env_assertions"].size(); ++i)
      K2_RETURN_IF_ERROR(NormalizeEnvCall(ec["env_assertions"][i], e.At("env_assertions") + "/" + std::to_string(i), true));
    K2_RETURN_IF_ERROR(NormalizeStrList(e, "communicate_info"));
    K2_RETURN_IF_ERROR(NormalizeStrList(e, "nl_assertions"));
    // reward_basis is a list with a default factory, not Optional: null is rejected as τ² rejects it.
    K2_RETURN_IF_ERROR(e.Optional("reward_basis", "a list of reward types", IsStrList, json::array({"DB", "COMMUNICATE"}), false));
    static const std::set<std::string> kTypes = {"DB", "ENV_ASSERTION", "NL_ASSERTION", "ACTION", "COMMUNICATE"};
    for (auto& b : ec["reward_basis"])
      if (!kTypes.count(b.get<std::string>()))
        return InvalidArgument(e.At("reward_basis") + ": unknown reward type \"" + b.get<std::string>() +
                               "\" (expected DB, ENV_ASSERTION, NL_ASSERTION, ACTION or COMMUNICATE)");
  }

  K2_RETURN_IF_ERROR(o.Optional("issues", "a list or null", IsArr));
  K2_RETURN_IF_ERROR(NormalizeStrList(o, "required_documents"));
  K2_RETURN_IF_ERROR(NormalizeStrList(o, "user_tools"));
  return t;
}

Expected<std::vector<Task>> LoadTasks(const std::string& path, const std::string& domain) {
  K2_ASSIGN_OR_RETURN(json arr, ReadJsonFile(path));
  if (!arr.is_array()) return InvalidArgument(path + ": expected a JSON array of τ² tasks");
  std::vector<Task> out;
  std::set<std::string> seen;
  for (size_t i = 0; i < arr.size(); ++i) {
    K2_ASSIGN_OR_RETURN(json t, NormalizeTask(arr[i], path + ":/" + std::to_string(i)));
    Task task;
    task.id = t["id"].get<std::string>();
    if (!seen.insert(task.id).second) return InvalidArgument(path + ":/" + std::to_string(i) + "/id: duplicate task id \"" + task.id + "\"");
    task.domain = domain;
    task.data = std::move(t);
    out.push_back(std::move(task));
  }
  return out;
}

Expected<std::map<std::string, std::vector<std::string>>> LoadSplits(const std::string& tasks_path) {
  namespace fs = std::filesystem;
  fs::path p(tasks_path);
  fs::path split = p.parent_path() / ("split_" + p.stem().string() + ".json");
  std::error_code ec;
  if (!fs::exists(split, ec)) return NotFound(split.string() + ": no split file for " + tasks_path);
  K2_ASSIGN_OR_RETURN(json j, ReadJsonFile(split.string()));
  if (!j.is_object()) return InvalidArgument(split.string() + ": expected {\"split name\": [task ids]}");
  std::map<std::string, std::vector<std::string>> out;
  for (auto& [k, v] : j.items()) {
    if (!IsStrList(v)) return InvalidArgument(split.string() + ":/" + k + ": expected a list of task ids");
    out[k] = v.get<std::vector<std::string>>();
  }
  return out;
}

Expected<std::vector<Task>> SelectSplit(const std::vector<Task>& tasks,
                                        const std::map<std::string, std::vector<std::string>>& splits,
                                        const std::string& split) {
  auto it = splits.find(split);
  if (it == splits.end()) {
    std::string names;
    for (auto& [k, v] : splits) names += (names.empty() ? "" : ", ") + k;
    return InvalidArgument("unknown split \"" + split + "\" (the split file has: " + names + ")");
  }
  std::set<std::string> want(it->second.begin(), it->second.end());
  std::set<std::string> have;
  std::vector<Task> out;
  for (auto& t : tasks)
    if (want.count(t.id)) {
      out.push_back(t);
      have.insert(t.id);
    }
  for (auto& id : want)
    if (!have.count(id)) return InvalidArgument("split \"" + split + "\" names task \"" + id + "\" that the task file lacks");
  return out;
}

namespace {
std::string Indent(const std::string& s, const std::string& tab) {
  // textwrap.indent: prefixes every line that is not whitespace-only.
  std::string out, line;
  size_t i = 0;
  while (i <= s.size()) {
    size_t nl = s.find('\n', i);
    std::string l = s.substr(i, nl == std::string::npos ? std::string::npos : nl - i + 1);
    if (l.find_first_not_of(" \t\r\n") != std::string::npos) out += tab;
    out += l;
    if (nl == std::string::npos) break;
    i = nl + 1;
  }
  return out;
}
}  // namespace

std::string ScenarioText(const Task& task) {
  const json& us = task.user_scenario();
  std::string out;
  if (us["persona"].is_string()) out += "Persona:\n" + Indent(us["persona"].get<std::string>(), "\t") + "\n";
  out += "Instructions:\n";
  const json& ins = us["instructions"];
  std::string body;
  if (ins.is_string()) {
    body = ins.get<std::string>();
  } else {
    body = "Domain: " + ins["domain"].get<std::string>() + "\n";
    body += "Reason for call:\n" + Indent(ins["reason_for_call"].get<std::string>(), "\t") + "\n";
    if (ins["known_info"].is_string()) body += "Known info:\n" + Indent(ins["known_info"].get<std::string>(), "\t") + "\n";
    if (ins["unknown_info"].is_string()) body += "Unknown info:\n" + Indent(ins["unknown_info"].get<std::string>(), "\t") + "\n";
    body += "Task instructions:\n" + Indent(ins["task_instructions"].get<std::string>(), "\t");
  }
  out += Indent(body, "\t");
  return out;
}

std::vector<Message> GoldAgentTurns(const Task& task) {
  std::vector<Message> out;
  size_t opening = 1;  // the greeting
  const json& is = task.initial_state();
  if (is.is_object() && is["message_history"].is_array() && !is["message_history"].empty()) {
    opening = 0;
    for (auto& m : is["message_history"]) opening += m.value("role", "") == "assistant";
  }
  for (size_t i = 0; i < opening; ++i) out.push_back({.role = "assistant", .content = "Hi! How can I help you today?"});
  const json& ec = task.evaluation_criteria();
  if (ec.is_object() && ec["actions"].is_array())
    for (auto& a : ec["actions"]) {
      if (a["requestor"] == "user") {
        std::string args;
        for (auto& [k, v] : a["arguments"].items()) args += (args.empty() ? "" : ", ") + k + "=" + v.dump();
        out.push_back({.role = "assistant", .content = "Please run " + a["name"].get<std::string>() + "(" + args + ") on your phone."});
      } else {
        out.push_back({.role = "assistant", .tool_calls = {ToolCall{"", a["name"], a["arguments"].dump()}}});
      }
    }
  std::string say;
  if (ec.is_object() && ec["communicate_info"].is_array())
    for (auto& c : ec["communicate_info"]) say += c.get<std::string>() + ". ";
  out.push_back({.role = "assistant", .content = say + "Is there anything else I can help you with?"});
  return out;
}

}  // namespace k2::agents::tau2
