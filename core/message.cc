// OpenAI-format messages <-> JSON.
#include "core/message.h"

namespace k2 {

std::optional<json> ToolCall::ParsedArguments() const {
  auto j = ParseJson(arguments, "arguments");
  if (!j.ok() || !j->is_object()) return std::nullopt;
  return std::move(*j);
}

json ToJson(const Message& m) {
  json j = {{"role", m.role}, {"content", m.content}};
  if (!m.tool_calls.empty()) {
    json calls = json::array();
    for (auto& c : m.tool_calls)
      calls.push_back({{"id", c.id}, {"type", "function"}, {"function", {{"name", c.name}, {"arguments", c.arguments}}}});
    j["tool_calls"] = std::move(calls);
  }
  if (!m.tool_call_id.empty()) j["tool_call_id"] = m.tool_call_id;
  if (!m.name.empty()) j["name"] = m.name;
  return j;
}

json ToJson(const std::vector<Message>& ms) {
  json a = json::array();
  for (auto& m : ms) a.push_back(ToJson(m));
  return a;
}

namespace {
Status Expect(const json& j, const std::string& where, const char* key, json::value_t t, const char* tname) {
  auto it = j.find(key);
  if (it == j.end()) return InvalidArgument(where + "." + key + ": missing (expected " + tname + ")");
  if (it->type() != t) return InvalidArgument(where + "." + key + ": expected " + tname + ", got " + JsonTypeName(*it));
  return Status::Ok();
}
}  // namespace

Expected<Message> MessageFromJson(const json& j, const std::string& where) {
  if (!j.is_object()) return InvalidArgument(where + ": expected object, got " + JsonTypeName(j));
  Message m;
  K2_RETURN_IF_ERROR(Expect(j, where, "role", json::value_t::string, "string"));
  m.role = j["role"];
  if (m.role != "system" && m.role != "user" && m.role != "assistant" && m.role != "tool")
    return InvalidArgument(where + ".role: expected one of \"system\", \"user\", \"assistant\", \"tool\", got \"" + m.role + "\"");
  if (auto it = j.find("content"); it != j.end() && !it->is_null()) {
    if (it->is_string()) {
      m.content = *it;
    } else if (it->is_array()) {
      // Content parts: concatenate the text parts (images etc. are not part of k2gym's policies).
      for (size_t i = 0; i < it->size(); ++i) {
        const json& p = (*it)[i];
        if (p.is_object() && p.value("type", "") == "text" && p.contains("text") && p["text"].is_string())
          m.content += p["text"].get<std::string>();
        else
          return InvalidArgument(where + ".content[" + std::to_string(i) + "]: expected {\"type\": \"text\", \"text\": string}");
      }
    } else {
      return InvalidArgument(where + ".content: expected string, array of text parts or null, got " + JsonTypeName(*it));
    }
  }
  if (auto it = j.find("tool_calls"); it != j.end() && !it->is_null()) {
    if (!it->is_array()) return InvalidArgument(where + ".tool_calls: expected array, got " + JsonTypeName(*it));
    for (size_t i = 0; i < it->size(); ++i) {
      std::string w = where + ".tool_calls[" + std::to_string(i) + "]";
      const json& c = (*it)[i];
      if (!c.is_object()) return InvalidArgument(w + ": expected object, got " + JsonTypeName(c));
      K2_RETURN_IF_ERROR(Expect(c, w, "function", json::value_t::object, "object"));
      ToolCall tc;
      if (c.contains("id")) {
        if (!c["id"].is_string()) return InvalidArgument(w + ".id: expected string, got " + JsonTypeName(c["id"]));
        tc.id = c["id"];
      }
      const json& f = c["function"];
      K2_RETURN_IF_ERROR(Expect(f, w + ".function", "name", json::value_t::string, "string"));
      tc.name = f["name"];
      if (auto a = f.find("arguments"); a != f.end()) {
        if (a->is_string()) tc.arguments = *a;
        else if (a->is_object()) tc.arguments = a->dump();  // some servers send an object
        else return InvalidArgument(w + ".function.arguments: expected string, got " + JsonTypeName(*a));
      } else {
        tc.arguments = "{}";
      }
      m.tool_calls.push_back(std::move(tc));
    }
  }
  if (auto it = j.find("tool_call_id"); it != j.end() && !it->is_null()) {
    if (!it->is_string()) return InvalidArgument(where + ".tool_call_id: expected string, got " + JsonTypeName(*it));
    m.tool_call_id = *it;
  }
  if (auto it = j.find("name"); it != j.end() && !it->is_null()) {
    if (!it->is_string()) return InvalidArgument(where + ".name: expected string, got " + JsonTypeName(*it));
    m.name = *it;
  }
  return m;
}

Expected<std::vector<Message>> MessagesFromJson(const json& j, const std::string& where) {
  if (!j.is_array()) return InvalidArgument(where + ": expected array, got " + JsonTypeName(j));
  std::vector<Message> out;
  for (size_t i = 0; i < j.size(); ++i) {
    K2_ASSIGN_OR_RETURN(Message m, MessageFromJson(j[i], where + "[" + std::to_string(i) + "]"));
    out.push_back(std::move(m));
  }
  return out;
}

}  // namespace k2
