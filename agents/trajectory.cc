// Trajectory and PolicyTurn JSON forms: strict parsing with located errors, invariant checks.
// The JSON form is what the store keeps and what exports read, so its keys are stable.
#include "agents/trajectory.h"

#include <limits>
#include <type_traits>

#include "agents/policy.h"

namespace k2::agents {

bool IsEndReason(const std::string& s) {
  for (const char* r : kEndReasons) {
    if (s == r) return true;
  }
  return false;
}

json ToJson(const PolicyTurn& t) {
  json j = {{"message", k2::ToJson(t.message)},
            {"prompt_tokens", t.prompt_tokens},
            {"completion_tokens", t.completion_tokens},
            {"truncated", t.truncated},
            {"latency_s", t.latency_s}};
  if (t.failure) j["failure"] = *t.failure;
  if (!t.context_tokens.empty()) j["context_tokens"] = t.context_tokens;
  if (!t.tokens.empty()) j["tokens"] = t.tokens;
  if (!t.logprobs.empty()) j["logprobs"] = t.logprobs;
  if (!t.policy_logprobs.empty()) j["policy_logprobs"] = t.policy_logprobs;
  if (!t.retries.empty()) j["retries"] = t.retries;
  return j;
}

namespace {

json ToolCallRecordToJson(const ToolCallRecord& r) {
  return {{"turn", r.turn},           {"id", r.id},       {"name", r.name},
          {"arguments", r.arguments}, {"valid", r.valid}, {"is_error", r.is_error},
          {"observation", r.observation}, {"requestor", r.requestor}};
}

// Small strict field readers: each error names where.key and the expected type.
class Fields {
 public:
  Fields(const json& j, std::string where) : j_(j), where_(std::move(where)) {}

  const json* Find(const char* key, bool required, Status* st) const {
    auto it = j_.find(key);
    if (it == j_.end()) {
      if (required && st->ok()) *st = InvalidArgument(where_ + "." + key + ": missing");
      return nullptr;
    }
    return &*it;
  }
  Status Bad(const char* key, const char* expected, const json& v) const {
    return InvalidArgument(where_ + "." + key + ": expected " + expected + ", got " + JsonTypeName(v));
  }
  template <class T>
  Status Get(const char* key, T& out, bool required) const {
    Status st;
    const json* v = Find(key, required, &st);
    if (!v) return st;
    if constexpr (std::is_same_v<T, std::string>) {
      if (!v->is_string()) return Bad(key, "string", *v);
      out = v->get<std::string>();
    } else if constexpr (std::is_same_v<T, bool>) {
      if (!v->is_boolean()) return Bad(key, "boolean", *v);
      out = v->get<bool>();
    } else if constexpr (std::is_same_v<T, uint64_t>) {
      if (!v->is_number_unsigned()) return Bad(key, "unsigned integer", *v);
      out = v->get<uint64_t>();
    } else if constexpr (std::is_integral_v<T>) {
      if (!v->is_number_integer()) return Bad(key, "integer", *v);
      out = v->get<T>();
    } else if constexpr (std::is_floating_point_v<T>) {
      if (!v->is_number()) return Bad(key, "number", *v);
      out = v->get<T>();
    } else {
      static_assert(sizeof(T) == 0, "unsupported field type");
    }
    return Status::Ok();
  }
  template <class T>
  Status GetArray(const char* key, std::vector<T>& out) const {
    Status st;
    const json* v = Find(key, false, &st);
    if (!v) return st;
    if (!v->is_array()) return Bad(key, "array", *v);
    out.clear();
    out.reserve(v->size());
    for (size_t i = 0; i < v->size(); ++i) {
      const json& e = (*v)[i];
      std::string at = where_ + "." + key + "[" + std::to_string(i) + "]";
      if constexpr (std::is_floating_point_v<T>) {
        if (!e.is_number()) return InvalidArgument(at + ": expected number, got " + JsonTypeName(e));
        out.push_back(e.get<T>());
      } else if constexpr (std::is_same_v<T, std::string>) {
        if (!e.is_string()) return InvalidArgument(at + ": expected string, got " + JsonTypeName(e));
        out.push_back(e.get<std::string>());
      } else {
        if (!e.is_number_integer()) return InvalidArgument(at + ": expected integer, got " + JsonTypeName(e));
        int64_t x = e.get<int64_t>();
        if (x < static_cast<int64_t>(std::numeric_limits<T>::min()) ||
            x > static_cast<int64_t>(std::numeric_limits<T>::max())) {
          return InvalidArgument(at + ": " + std::to_string(x) + " is out of range");
        }
        out.push_back(static_cast<T>(x));
      }
    }
    return Status::Ok();
  }
  const std::string& where() const { return where_; }

 private:
  const json& j_;
  std::string where_;
};

Expected<ToolCallRecord> ToolCallRecordFromJson(const json& j, const std::string& where) {
  if (!j.is_object()) return InvalidArgument(where + ": expected an object, got " + JsonTypeName(j));
  Fields f(j, where);
  ToolCallRecord r;
  K2_RETURN_IF_ERROR(f.Get("turn", r.turn, true));
  K2_RETURN_IF_ERROR(f.Get("id", r.id, false));
  K2_RETURN_IF_ERROR(f.Get("name", r.name, true));
  K2_RETURN_IF_ERROR(f.Get("arguments", r.arguments, true));
  K2_RETURN_IF_ERROR(f.Get("valid", r.valid, false));
  K2_RETURN_IF_ERROR(f.Get("is_error", r.is_error, false));
  K2_RETURN_IF_ERROR(f.Get("observation", r.observation, false));
  K2_RETURN_IF_ERROR(f.Get("requestor", r.requestor, false));
  return r;
}

}  // namespace

json Trajectory::ToJson() const {
  json calls = json::array();
  for (const auto& c : tool_calls) calls.push_back(ToolCallRecordToJson(c));
  json rc = json::object();
  for (const auto& [k, v] : reward_components) rc[k] = v;
  json j = {{"id", id},
            {"task_id", task_id},
            {"domain", domain},
            {"policy", policy},
            {"user", user},
            {"seed", seed},
            {"trial", trial},
            {"messages", k2::ToJson(messages)},
            {"tools", tools},
            {"end_reason", end_reason},
            {"turns", turns},
            {"tool_calls", calls},
            {"final_state", final_state},
            {"final_state_hash", final_state_hash},
            {"prompt_tokens", prompt_tokens},
            {"completion_tokens", completion_tokens},
            {"reward_components", rc},
            {"reward", reward},
            {"provenance", provenance},
            {"timings", {{"total_s", timings.total_s},
                         {"policy_s", timings.policy_s},
                         {"env_s", timings.env_s},
                         {"user_s", timings.user_s},
                         {"judge_s", timings.judge_s}}}};
  if (!error.empty()) j["error"] = error;
  if (!failures.empty()) j["failures"] = failures;
  if (!tokens.empty()) {
    j["tokens"] = tokens;
    j["policy_mask"] = policy_mask;
    j["logprobs"] = logprobs;
    j["policy_logprobs"] = policy_logprobs;
  }
  return j;
}

Expected<Trajectory> Trajectory::FromJson(const json& j, const std::string& where) {
  if (!j.is_object()) return InvalidArgument(where + ": expected an object, got " + JsonTypeName(j));
  Fields f(j, where);
  Trajectory t;
  K2_RETURN_IF_ERROR(f.Get("id", t.id, true));
  K2_RETURN_IF_ERROR(f.Get("task_id", t.task_id, false));
  K2_RETURN_IF_ERROR(f.Get("domain", t.domain, false));
  K2_RETURN_IF_ERROR(f.Get("policy", t.policy, false));
  K2_RETURN_IF_ERROR(f.Get("user", t.user, false));
  K2_RETURN_IF_ERROR(f.Get("seed", t.seed, false));
  K2_RETURN_IF_ERROR(f.Get("trial", t.trial, false));
  if (!j.contains("messages")) return InvalidArgument(where + ".messages: missing");
  K2_ASSIGN_OR_RETURN(t.messages, MessagesFromJson(j["messages"], where + ".messages"));
  if (j.contains("tools")) {
    if (!j["tools"].is_array()) return f.Bad("tools", "array", j["tools"]);
    t.tools = j["tools"];
  }
  K2_RETURN_IF_ERROR(f.Get("end_reason", t.end_reason, true));
  K2_RETURN_IF_ERROR(f.Get("error", t.error, false));
  K2_RETURN_IF_ERROR(f.GetArray("failures", t.failures));
  K2_RETURN_IF_ERROR(f.Get("turns", t.turns, false));
  if (j.contains("tool_calls")) {
    const json& calls = j["tool_calls"];
    if (!calls.is_array()) return f.Bad("tool_calls", "array", calls);
    for (size_t i = 0; i < calls.size(); ++i) {
      K2_ASSIGN_OR_RETURN(auto r, ToolCallRecordFromJson(calls[i], where + ".tool_calls[" + std::to_string(i) + "]"));
      t.tool_calls.push_back(std::move(r));
    }
  }
  if (j.contains("final_state")) t.final_state = j["final_state"];
  K2_RETURN_IF_ERROR(f.Get("final_state_hash", t.final_state_hash, false));
  K2_RETURN_IF_ERROR(f.GetArray("tokens", t.tokens));
  K2_RETURN_IF_ERROR(f.GetArray("policy_mask", t.policy_mask));
  K2_RETURN_IF_ERROR(f.GetArray("logprobs", t.logprobs));
  K2_RETURN_IF_ERROR(f.GetArray("policy_logprobs", t.policy_logprobs));
  K2_RETURN_IF_ERROR(f.Get("prompt_tokens", t.prompt_tokens, false));
  K2_RETURN_IF_ERROR(f.Get("completion_tokens", t.completion_tokens, false));
  if (j.contains("reward_components")) {
    const json& rc = j["reward_components"];
    if (!rc.is_object()) return f.Bad("reward_components", "object", rc);
    for (const auto& [k, v] : rc.items()) {
      if (!v.is_number()) {
        return InvalidArgument(where + ".reward_components." + k + ": expected number, got " + JsonTypeName(v));
      }
      t.reward_components[k] = v.get<double>();
    }
  }
  K2_RETURN_IF_ERROR(f.Get("reward", t.reward, false));
  if (j.contains("provenance")) t.provenance = j["provenance"];
  if (j.contains("timings")) {
    const json& tj = j["timings"];
    if (!tj.is_object()) return f.Bad("timings", "object", tj);
    Fields tf(tj, where + ".timings");
    K2_RETURN_IF_ERROR(tf.Get("total_s", t.timings.total_s, false));
    K2_RETURN_IF_ERROR(tf.Get("policy_s", t.timings.policy_s, false));
    K2_RETURN_IF_ERROR(tf.Get("env_s", t.timings.env_s, false));
    K2_RETURN_IF_ERROR(tf.Get("user_s", t.timings.user_s, false));
    K2_RETURN_IF_ERROR(tf.Get("judge_s", t.timings.judge_s, false));
  }
  Status v = t.Validate();
  if (!v.ok()) return v.Context(where);
  return t;
}

Status Trajectory::Validate() const {
  if (!IsEndReason(end_reason)) {
    std::string all;
    for (const char* r : kEndReasons) all += std::string(all.empty() ? "" : "|") + r;
    return InvalidArgument("end_reason: expected one of " + all + ", got \"" + end_reason + "\"");
  }
  const size_t n = tokens.size();
  if (policy_mask.size() != n || logprobs.size() != n || policy_logprobs.size() != n) {
    return InvalidArgument("tokens/policy_mask/logprobs/policy_logprobs: expected equal lengths, got " +
                           std::to_string(n) + "/" + std::to_string(policy_mask.size()) + "/" +
                           std::to_string(logprobs.size()) + "/" + std::to_string(policy_logprobs.size()));
  }
  for (size_t i = 0; i < n; ++i) {
    if (policy_mask[i] > 1) {
      return InvalidArgument("policy_mask[" + std::to_string(i) + "]: expected 0 or 1, got " +
                             std::to_string(policy_mask[i]));
    }
    if (policy_mask[i] == 0 && (logprobs[i] != 0 || policy_logprobs[i] != 0)) {
      return InvalidArgument("logprobs[" + std::to_string(i) + "]: expected 0 where policy_mask is 0");
    }
  }
  for (size_t i = 0; i < tool_calls.size(); ++i) {
    if (tool_calls[i].requestor != "assistant" && tool_calls[i].requestor != "user") {
      return InvalidArgument("tool_calls[" + std::to_string(i) + "].requestor: expected assistant|user, got \"" +
                             tool_calls[i].requestor + "\"");
    }
  }
  if (!final_state_hash.empty() && final_state_hash.size() != 64) {
    return InvalidArgument("final_state_hash: expected 64 hex digits, got " + std::to_string(final_state_hash.size()) +
                           " characters");
  }
  return Status::Ok();
}

}  // namespace k2::agents
