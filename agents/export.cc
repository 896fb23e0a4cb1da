// Store rows and file exports of trajectories. Exports are canonical JSON so that the same episodes give
// the same bytes; the OpenAI validator is independent of core/message.h's writer (it reads raw JSON).
#include "agents/export.h"

#include <set>

#include "core/store.h"
#include "engine/text/chat_template.h"
#include "engine/text/tokenizer.h"

namespace k2::agents {

const Migrations& AgentMigrations() {
  static const Migrations m{
      "agents",
      {"CREATE TABLE agent_trajectories (id TEXT PRIMARY KEY, run INTEGER, task_id TEXT NOT NULL, domain TEXT, "
       "policy TEXT, user_sim TEXT, seed INTEGER, trial INTEGER, end_reason TEXT NOT NULL, kept INTEGER, reward REAL, "
       "turns INTEGER, n_tokens INTEGER, data TEXT NOT NULL);"
       "CREATE INDEX agent_trajectories_task ON agent_trajectories(task_id);"}};
  return m;
}

Status SaveTrajectories(Db* db, int64_t run, const std::vector<Trajectory>& trajectories) {
  K2_RETURN_IF_ERROR(db->Migrate(AgentMigrations()));
  K2_ASSIGN_OR_RETURN(auto tx, Transaction::Begin(db));
  K2_ASSIGN_OR_RETURN(auto st, db->Prepare(
      "INSERT OR REPLACE INTO agent_trajectories (id, run, task_id, domain, policy, user_sim, seed, trial, end_reason, "
      "kept, reward, turns, n_tokens, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"));
  for (const auto& t : trajectories) {
    st.Bind(1, t.id).Bind(2, run).Bind(3, t.task_id).Bind(4, t.domain).Bind(5, t.policy).Bind(6, t.user);
    st.Bind(7, static_cast<int64_t>(t.seed)).Bind(8, t.trial).Bind(9, t.end_reason);
    if (t.provenance.is_object() && t.provenance.contains("judge") && t.provenance["judge"].contains("keep"))
      st.Bind(10, t.provenance["judge"]["keep"].get<bool>() ? 1 : 0);
    else
      st.BindNull(10);
    st.Bind(11, t.reward).Bind(12, t.turns).Bind(13, static_cast<int64_t>(t.tokens.size()));
    st.Bind(14, CanonicalJson(t.ToJson()));
    K2_RETURN_IF_ERROR(st.Run());
    st.Reset();
  }
  return tx.Commit();
}

namespace {

Expected<std::vector<Trajectory>> ReadTrajectories(Stmt& st) {
  std::vector<Trajectory> out;
  while (st.Step()) {
    std::string id = st.Text(0);
    K2_ASSIGN_OR_RETURN(json j, ParseJson(st.Text(1), "agent_trajectories[" + id + "].data"));
    K2_ASSIGN_OR_RETURN(auto t, Trajectory::FromJson(j, "agent_trajectories[" + id + "]"));
    out.push_back(std::move(t));
  }
  K2_RETURN_IF_ERROR(st.status());
  return out;
}

}  // namespace

Expected<std::vector<Trajectory>> LoadTrajectories(Db* db, bool kept_only) {
  K2_RETURN_IF_ERROR(db->Migrate(AgentMigrations()));
  K2_ASSIGN_OR_RETURN(auto st, db->Prepare(std::string("SELECT id, data FROM agent_trajectories") +
                                           (kept_only ? " WHERE kept IS NOT 0" : "") + " ORDER BY id"));
  return ReadTrajectories(st);
}

Expected<std::vector<Trajectory>> LoadRunTrajectories(Db* db, int64_t run) {
  K2_RETURN_IF_ERROR(db->Migrate(AgentMigrations()));
  K2_ASSIGN_OR_RETURN(auto st, db->Prepare("SELECT id, data FROM agent_trajectories WHERE run = ?1 ORDER BY id"));
  st.Bind(1, run);
  return ReadTrajectories(st);
}

json OpenAIChatLine(const Trajectory& t) {
  json line = {{"messages", k2::ToJson(t.messages)}};
  if (t.tools.is_array() && !t.tools.empty()) line["tools"] = t.tools;
  return line;
}

namespace {

Status Bad(const std::string& ptr, const std::string& what) { return InvalidArgument(ptr + ": " + what); }

}  // namespace

Status ValidateOpenAIChatLine(const json& line) {
  if (!line.is_object()) return Bad("", std::string("expected an object, got ") + JsonTypeName(line));
  for (const auto& [k, v] : line.items())
    if (k != "messages" && k != "tools" && k != "parallel_tool_calls") return Bad("/" + k, "unknown key");
  std::set<std::string> declared;
  if (line.contains("tools")) {
    const json& tools = line["tools"];
    if (!tools.is_array()) return Bad("/tools", "expected an array");
    for (size_t i = 0; i < tools.size(); ++i) {
      const std::string p = "/tools/" + std::to_string(i);
      const json& t = tools[i];
      if (!t.is_object() || t.value("type", "") != "function") return Bad(p + "/type", "expected \"function\"");
      if (!t.contains("function") || !t["function"].is_object()) return Bad(p + "/function", "expected an object");
      const json& f = t["function"];
      if (!f.contains("name") || !f["name"].is_string() || f["name"].get<std::string>().empty())
        return Bad(p + "/function/name", "expected a non-empty string");
      if (f.contains("description") && !f["description"].is_string()) return Bad(p + "/function/description", "expected a string");
      if (f.contains("parameters") && !f["parameters"].is_object()) return Bad(p + "/function/parameters", "expected an object (JSON Schema)");
      if (!declared.insert(f["name"].get<std::string>()).second) return Bad(p + "/function/name", "duplicate tool name");
    }
  }
  if (!line.contains("messages") || !line["messages"].is_array() || line["messages"].empty())
    return Bad("/messages", "expected a non-empty array");
  std::set<std::string> open_calls;
  bool any_assistant = false;
  const json& ms = line["messages"];
  for (size_t i = 0; i < ms.size(); ++i) {
    const std::string p = "/messages/" + std::to_string(i);
    const json& m = ms[i];
    if (!m.is_object()) return Bad(p, "expected an object");
    if (!m.contains("role") || !m["role"].is_string()) return Bad(p + "/role", "expected a string");
    const std::string role = m["role"];
    if (role != "system" && role != "user" && role != "assistant" && role != "tool")
      return Bad(p + "/role", "expected system|user|assistant|tool, got " + json(role).dump());
    const bool has_calls = m.contains("tool_calls");
    if (m.contains("content") && !m["content"].is_string() && !(m["content"].is_null() && has_calls))
      return Bad(p + "/content", "expected a string");
    if (!m.contains("content") && !(role == "assistant" && has_calls)) return Bad(p + "/content", "missing");
    for (const auto& [k, v] : m.items()) {
      static const std::set<std::string> kKeys = {"role", "content", "tool_calls", "tool_call_id", "name", "weight"};
      if (!kKeys.count(k)) return Bad(p + "/" + k, "unknown key");
    }
    if (role == "assistant") any_assistant = true;
    if (has_calls) {
      if (role != "assistant") return Bad(p + "/tool_calls", "only assistant messages carry tool_calls");
      const json& calls = m["tool_calls"];
      if (!calls.is_array() || calls.empty()) return Bad(p + "/tool_calls", "expected a non-empty array");
      for (size_t c = 0; c < calls.size(); ++c) {
        const std::string q = p + "/tool_calls/" + std::to_string(c);
        const json& call = calls[c];
        if (!call.is_object() || !call.contains("id") || !call["id"].is_string() || call["id"].get<std::string>().empty())
          return Bad(q + "/id", "expected a non-empty string");
        if (call.value("type", "") != "function") return Bad(q + "/type", "expected \"function\"");
        if (!call.contains("function") || !call["function"].is_object()) return Bad(q + "/function", "expected an object");
        const json& f = call["function"];
        if (!f.contains("name") || !f["name"].is_string()) return Bad(q + "/function/name", "expected a string");
        if (!f.contains("arguments") || !f["arguments"].is_string())
          return Bad(q + "/function/arguments", "expected a string (JSON text)");
        if (!declared.empty() && !declared.count(f["name"].get<std::string>()))
          return Bad(q + "/function/name", "calls undeclared tool " + f["name"].dump());
        open_calls.insert(call["id"].get<std::string>());
      }
    }
    if (role == "tool") {
      if (!m.contains("tool_call_id") || !m["tool_call_id"].is_string()) return Bad(p + "/tool_call_id", "expected a string");
      if (!open_calls.count(m["tool_call_id"].get<std::string>()))
        return Bad(p + "/tool_call_id", "answers no earlier tool call: " + m["tool_call_id"].dump());
    } else if (m.contains("tool_call_id")) {
      return Bad(p + "/tool_call_id", "only tool messages carry tool_call_id");
    }
  }
  if (!any_assistant) return Bad("/messages", "no assistant message to train on");
  return Status::Ok();
}

Expected<json> KimiTokensLine(const Trajectory& t, const text::Tokenizer& tokenizer) {
  auto r = text::RenderChat(t.messages, t.tools, &tokenizer);
  if (!r.ok()) return r.status().Context("trajectory " + t.id);
  return json{{"id", t.id}, {"tokens", r->tokens}, {"loss_mask", r->loss_mask}};
}

Status WriteOpenAIJsonl(const std::string& path, const std::vector<Trajectory>& trajectories) {
  std::string out;
  for (const auto& t : trajectories) out += CanonicalJson(OpenAIChatLine(t)) + "\n";
  return WriteFileAtomic(path, out);
}

Status WriteKimiTokensJsonl(const std::string& path, const std::vector<Trajectory>& trajectories,
                            const text::Tokenizer& tokenizer) {
  std::string out;
  for (const auto& t : trajectories) {
    K2_ASSIGN_OR_RETURN(json line, KimiTokensLine(t, tokenizer));
    out += CanonicalJson(line) + "\n";
  }
  return WriteFileAtomic(path, out);
}

}  // namespace k2::agents
