// τ²-style tool-use reward: DB hash, COMMUNICATE, ACTION, forbidden actions, termination rule.
// ENV_ASSERTION and NL_ASSERTION need a live environment / an LLM judge and are refused with an error.
#include "rewards/tool_verifier.h"

#include <algorithm>

#include "core/hash.h"
#include "rewards/text_util.h"

namespace k2::rewards {

std::string StateHash(const json& state) { return Sha256Hex(CanonicalJson(state)); }

bool ActionMatches(const ToolCall& call, const json& gold) {
  if (!gold.is_object() || !gold.contains("name") || !gold["name"].is_string()) return false;
  if (call.name != gold["name"].get<std::string>()) return false;
  json gargs = gold.value("arguments", json::object());
  if (!gargs.is_object()) return false;
  std::vector<std::string> keys;
  auto ca = gold.find("compare_args");
  if (ca != gold.end() && ca->is_array()) {
    for (auto& k : *ca)
      if (k.is_string()) keys.push_back(k.get<std::string>());
  } else {
    for (auto& [k, v] : gargs.items()) keys.push_back(k);
  }
  if (keys.empty()) return true;
  auto args = call.ParsedArguments();
  if (!args) return false;
  for (auto& k : keys) {
    bool in_call = args->contains(k), in_gold = gargs.contains(k);
    if (in_call != in_gold) return false;
    if (in_call && (*args)[k] != gargs[k]) return false;
  }
  return true;
}

bool InformationCommunicated(const std::vector<Message>& messages, const std::string& info) {
  std::string want = AsciiLower(info);
  for (auto& m : messages) {
    if (m.role != "assistant") continue;
    std::string c = AsciiLower(m.content);
    c.erase(std::remove(c.begin(), c.end(), ','), c.end());
    if (c.find(want) != std::string::npos) return true;
  }
  return false;
}

namespace {

// A forbidden action matches a call with the same name whose arguments include every given argument.
bool ForbiddenMatches(const ToolCall& call, const json& f) {
  if (call.name != f["name"].get<std::string>()) return false;
  auto it = f.find("arguments");
  if (it == f.end() || it->empty()) return true;
  auto args = call.ParsedArguments();
  if (!args) return false;
  for (auto& [k, v] : it->items())
    if (!args->contains(k) || (*args)[k] != v) return false;
  return true;
}

class ToolReward : public Reward {
 public:
  explicit ToolReward(std::vector<std::string> stops) : stops_(std::move(stops)) {}
  std::string name() const override { return "tool"; }

 protected:
  Expected<RewardResult> DoScore(const ScoreInput& in) const override {
    const json& t = in.task;
    if (!t.is_object()) return InvalidArgument("tool: task: expected object");
    json crit = t.value("evaluation_criteria", json::object());
    if (!crit.is_object()) return InvalidArgument("tool: task.evaluation_criteria: expected object");
    std::vector<std::string> basis = {"DB", "COMMUNICATE"};  // τ²'s default
    if (auto it = crit.find("reward_basis"); it != crit.end() && !it->is_null()) {
      if (!it->is_array()) return InvalidArgument("tool: task.evaluation_criteria.reward_basis: expected array");
      basis.clear();
      for (auto& b : *it) {
        if (!b.is_string()) return InvalidArgument("tool: task.evaluation_criteria.reward_basis: expected strings");
        std::string s = b.get<std::string>();
        if (s == "ENV_ASSERTION" || s == "NL_ASSERTION")
          return InvalidArgument("tool: task.evaluation_criteria.reward_basis: " + s +
                                 " needs a live environment or an LLM judge; the tool verifier supports DB, "
                                 "COMMUNICATE, ACTION");
        if (s != "DB" && s != "COMMUNICATE" && s != "ACTION")
          return InvalidArgument("tool: task.evaluation_criteria.reward_basis: unknown \"" + s +
                                 "\" (expected DB, COMMUNICATE, ACTION)");
        basis.push_back(s);
      }
    }
    RewardResult r;
    std::string& ex = r.explanation;
    auto note = [&](const std::string& s) { ex += (ex.empty() ? "" : "\n") + s; };

    bool stopped = std::find(stops_.begin(), stops_.end(), in.termination) != stops_.end();
    r.components["terminated_ok"] = stopped ? 1 : 0;
    if (!stopped) note("episode ended by \"" + in.termination + "\", not by the agent or user stopping: score 0");

    double value = stopped ? 1 : 0;
    for (auto& b : basis) {
      double c = 1;
      if (b == "DB") {
        std::string want;
        if (auto h = t.find("expected_state_hash"); h != t.end() && h->is_string()) want = h->get<std::string>();
        else if (auto s = t.find("expected_state"); s != t.end()) want = StateHash(*s);
        else return InvalidArgument("tool: task: reward_basis has DB but neither expected_state_hash nor expected_state is given");
        std::string got = StateHash(in.final_state);
        c = got == want ? 1 : 0;
        note(std::string(c ? "ok   " : "FAIL ") + "DB: final state hash " + got.substr(0, 12) + (c ? " == " : " != ") +
             "expected " + want.substr(0, 12));
      } else if (b == "COMMUNICATE") {
        json infos = crit.value("communicate_info", json::array());
        if (!infos.is_array()) return InvalidArgument("tool: task.evaluation_criteria.communicate_info: expected array of strings");
        for (auto& i : infos) {
          if (!i.is_string()) return InvalidArgument("tool: task.evaluation_criteria.communicate_info: expected array of strings");
          if (!InformationCommunicated(in.messages, i.get<std::string>())) {
            c = 0;
            note("FAIL COMMUNICATE: \"" + i.get<std::string>() + "\" never told to the user");
          }
        }
        if (c) note("ok   COMMUNICATE: " + std::to_string(infos.size()) + " item(s)");
      } else {  // ACTION
        json actions = crit.value("actions", json::array());
        if (!actions.is_array()) return InvalidArgument("tool: task.evaluation_criteria.actions: expected array");
        for (size_t k = 0; k < actions.size(); ++k) {
          const json& a = actions[k];
          if (!a.is_object() || !a.contains("name") || !a["name"].is_string())
            return InvalidArgument("tool: task.evaluation_criteria.actions[" + std::to_string(k) + "].name: expected string");
          std::string requestor = a.value("requestor", std::string("assistant"));
          bool found = false;
          for (auto& m : in.messages) {
            if (m.role != requestor) continue;
            for (auto& call : m.tool_calls) found |= ActionMatches(call, a);
          }
          if (!found) {
            c = 0;
            note("FAIL ACTION: gold action " + a["name"].get<std::string>() + " " + a.value("arguments", json::object()).dump() + " not performed");
          }
        }
        if (c) note("ok   ACTION: " + std::to_string(actions.size()) + " gold action(s) matched");
      }
      r.components[AsciiLower(b)] = c;
      value *= c;
    }
    json forbidden = t.value("forbidden_actions", json::array());
    if (!forbidden.is_array()) return InvalidArgument("tool: task.forbidden_actions: expected array");
    double fok = 1;
    for (size_t k = 0; k < forbidden.size(); ++k) {
      if (!forbidden[k].is_object() || !forbidden[k].contains("name") || !forbidden[k]["name"].is_string())
        return InvalidArgument("tool: task.forbidden_actions[" + std::to_string(k) + "].name: expected string");
      for (auto& m : in.messages)
        for (auto& call : m.tool_calls)
          if (ForbiddenMatches(call, forbidden[k])) {
            if (fok) note("FAIL forbidden action " + call.name + " " + call.arguments + " was called");
            fok = 0;
          }
    }
    r.components["forbidden_ok"] = fok;
    r.value = value * fok;
    return r;
  }

 private:
  std::vector<std::string> stops_;
};

}  // namespace

Expected<std::unique_ptr<Reward>> MakeToolReward(const json& config, const std::string& where) {
  std::vector<std::string> stops = {"agent_stop", "user_stop"};
  for (auto& [k, v] : config.items()) {
    if (k == "type") continue;
    if (k == "accepted_terminations" && v.is_array() && !v.empty()) {
      stops.clear();
      for (auto& s : v) {
        if (!s.is_string()) return InvalidArgument(where + ".accepted_terminations: expected array of strings");
        stops.push_back(s.get<std::string>());
      }
    } else {
      return InvalidArgument(where + "." + k + ": unknown key or wrong type (expected accepted_terminations: array of strings)");
    }
  }
  return std::unique_ptr<Reward>(new ToolReward(std::move(stops)));
}

}  // namespace k2::rewards
