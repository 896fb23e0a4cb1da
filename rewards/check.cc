// Case-file scoring for `k2gym reward check` and the verifier tables: case -> ScoreInput -> reward,
// compared with the case's stated expectations.
#include "rewards/check.h"

#include <cmath>

namespace k2::rewards {

namespace {
// Keys of a case line that are not part of the task spec.
const char* kCaseKeys[] = {"id", "response", "messages", "prompt", "expected", "expected_components", "config",
                           "final_state", "termination", "response_tokens", "task_type", "seed", "task"};
}  // namespace

Expected<ScoreInput> CaseToInput(const json& c, const std::string& where) {
  if (!c.is_object()) return InvalidArgument(where + ": expected a JSON object per line");
  ScoreInput in;
  if (auto m = c.find("messages"); m != c.end()) {
    K2_ASSIGN_OR_RETURN(in.messages, MessagesFromJson(*m, where + ": messages"));
  } else if (auto r = c.find("response"); r != c.end()) {
    if (!r->is_string()) return InvalidArgument(where + ": response: expected string");
    if (auto p = c.find("prompt"); p != c.end()) {
      if (!p->is_string()) return InvalidArgument(where + ": prompt: expected string");
      in.messages.push_back(Message{"user", p->get<std::string>(), {}, "", ""});
    }
    in.messages.push_back(Message{"assistant", r->get<std::string>(), {}, "", ""});
  } else {
    return InvalidArgument(where + ": expected \"response\" (string) or \"messages\" (OpenAI chat array)");
  }
  if (auto t = c.find("task"); t != c.end()) {
    if (!t->is_object()) return InvalidArgument(where + ": task: expected object");
    in.task = *t;
  } else {
    in.task = c;
    for (const char* k : kCaseKeys) in.task.erase(k);
  }
  if (auto s = c.find("final_state"); s != c.end()) in.final_state = *s;
  if (auto s = c.find("termination"); s != c.end()) {
    if (!s->is_string()) return InvalidArgument(where + ": termination: expected string");
    in.termination = s->get<std::string>();
  }
  if (auto s = c.find("response_tokens"); s != c.end()) {
    if (!s->is_number_integer() || s->get<int64_t>() < 0)
      return InvalidArgument(where + ": response_tokens: expected integer >= 0");
    in.response_tokens = s->get<int64_t>();
  }
  if (auto s = c.find("task_type"); s != c.end()) {
    if (!s->is_string()) return InvalidArgument(where + ": task_type: expected string");
    in.task_type = s->get<std::string>();
  }
  if (auto s = c.find("seed"); s != c.end()) {
    if (!s->is_number_unsigned()) return InvalidArgument(where + ": seed: expected integer >= 0");
    in.seed = s->get<uint64_t>();
  }
  return in;
}

Expected<std::vector<CaseOutcome>> CheckCases(const std::string& kind, const std::vector<json>& cases,
                                              const std::string& source) {
  std::vector<CaseOutcome> out;
  K2_ASSIGN_OR_RETURN(auto default_reward, MakeReward(json{{"type", kind}}, "--kind"));
  for (size_t i = 0; i < cases.size(); ++i) {
    std::string where = source + ":" + std::to_string(i + 1);
    const json& c = cases[i];
    K2_ASSIGN_OR_RETURN(ScoreInput in, CaseToInput(c, where));
    std::unique_ptr<Reward> own;
    const Reward* reward = default_reward.get();
    if (auto cfg = c.find("config"); cfg != c.end()) {
      K2_ASSIGN_OR_RETURN(own, MakeReward(*cfg, where + ": config"));
      reward = own.get();
    }
    auto r = reward->Score(in);
    if (!r.ok()) return r.status().Context(where);
    CaseOutcome o;
    o.id = c.contains("id") && c["id"].is_string() ? c["id"].get<std::string>() : std::to_string(i + 1);
    o.result = std::move(*r);
    if (auto e = c.find("expected"); e != c.end()) {
      if (!e->is_number()) return InvalidArgument(where + ": expected: expected a number");
      o.has_expected = true;
      if (std::fabs(e->get<double>() - o.result.value) > 1e-9) {
        o.matches = false;
        o.mismatch = "value " + std::to_string(o.result.value) + " != expected " + std::to_string(e->get<double>());
      }
    }
    if (auto e = c.find("expected_components"); e != c.end()) {
      if (!e->is_object()) return InvalidArgument(where + ": expected_components: expected object name -> number");
      o.has_expected = true;
      for (auto& [k, v] : e->items()) {
        auto it = o.result.components.find(k);
        if (!v.is_number()) return InvalidArgument(where + ": expected_components." + k + ": expected number");
        if (it == o.result.components.end() || std::fabs(it->second - v.get<double>()) > 1e-9) {
          o.matches = false;
          o.mismatch += (o.mismatch.empty() ? "" : "; ") + std::string("component ") + k + " = " +
                        (it == o.result.components.end() ? "absent" : std::to_string(it->second)) +
                        " != expected " + std::to_string(v.get<double>());
        }
      }
    }
    out.push_back(std::move(o));
  }
  return out;
}

}  // namespace k2::rewards
