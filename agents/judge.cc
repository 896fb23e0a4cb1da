// Judge checks over a Trajectory and its synthetic task, the LLM-judge prompt/parse, and the summary.
// Each check is independent, so a rejected trajectory lists every reason, not just the first.
#include "agents/judge.h"

#include <algorithm>
#include <cctype>
#include <chrono>

namespace k2::agents {

bool CallMatchesAction(const std::string& name, const std::string& arguments, const toolgen::synth::Action& a) {
  if (name != a.name) return false;
  auto args = ParseJson(arguments, "call");
  if (!args.ok() || !args->is_object()) return false;
  std::vector<std::string> keys = a.compare_args;
  if (keys.empty())
    for (const auto& [k, v] : a.arguments.items()) keys.push_back(k);
  for (const auto& k : keys) {
    if (!a.arguments.contains(k)) continue;
    if (!args->contains(k) || (*args)[k] != a.arguments[k]) return false;
  }
  return true;
}

void JudgeSummary::Add(const Verdict& v) {
  (v.keep ? kept : discarded)++;
  for (const auto& r : v.reasons) by_reason[r]++;
}

json JudgeSummary::ToJson() const {
  json r = json::object();
  for (const auto& [k, n] : by_reason) r[k] = n;
  return {{"kept", kept}, {"discarded", discarded}, {"discarded_by_reason", r}};
}

namespace {

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

void Reject(Verdict& v, const std::string& reason, const std::string& detail) {
  v.keep = false;
  v.reasons.push_back(reason);
  if (v.detail.empty()) v.detail = reason + ": " + detail;
}

std::string Transcript(const Trajectory& t) {
  std::string s;
  for (const auto& m : t.messages) {
    if (m.role == "system") continue;
    s += m.role + ": " + m.content;
    for (const auto& c : m.tool_calls) s += " [call " + c.name + " " + c.arguments + "]";
    s += "\n";
  }
  return s;
}

}  // namespace

Verdict Judge::Evaluate(const Trajectory& t, const EpisodeTask& task) const {
  Verdict v;
  const toolgen::synth::Task* st = task.synth ? &*task.synth : nullptr;

  const bool clean = t.end_reason == "user_stop" || t.end_reason == "agent_stop";
  v.components["clean_end"] = clean ? 1 : 0;
  if (config_.require_clean_end && !clean) Reject(v, "end_" + t.end_reason, t.error.empty() ? t.end_reason : t.error);

  int invalid = 0, assistant_calls = 0;
  for (const auto& c : t.tool_calls) {
    if (c.requestor != "assistant") continue;
    ++assistant_calls;
    invalid += !c.valid;
  }
  v.components["validity"] = assistant_calls ? 1.0 - static_cast<double>(invalid) / assistant_calls : 1.0;
  if (invalid > config_.max_invalid_calls)
    Reject(v, "invalid_tool_calls", std::to_string(invalid) + " invalid calls > " + std::to_string(config_.max_invalid_calls));

  if (st) {
    const bool state_ok = t.final_state_hash == st->expected_hash;
    v.components["state"] = state_ok ? 1 : 0;
    if (config_.check_state && !state_ok)
      Reject(v, "state_mismatch", "final state " + t.final_state_hash.substr(0, 12) + " != expected " + st->expected_hash.substr(0, 12));

    int said = 0;
    std::string missing;
    std::string assistant_text;
    for (const auto& m : t.messages)
      if (m.role == "assistant") assistant_text += Lower(m.content) + "\n";
    for (const auto& info : st->communicate_info) {
      if (assistant_text.find(Lower(info)) != std::string::npos) ++said;
      else if (missing.empty()) missing = info;
    }
    v.components["communicate"] = st->communicate_info.empty() ? 1.0 : static_cast<double>(said) / st->communicate_info.size();
    if (config_.check_communicate && said < static_cast<int>(st->communicate_info.size()))
      Reject(v, "info_not_communicated", "never said " + json(missing).dump());

    std::string violated;
    for (const auto& c : t.tool_calls) {
      if (c.requestor != "assistant" || !c.valid) continue;
      for (const auto& f : st->forbidden)
        if (CallMatchesAction(c.name, c.arguments, f) && violated.empty()) violated = f.name + " " + c.arguments;
    }
    v.components["no_forbidden"] = violated.empty() ? 1 : 0;
    if (config_.check_forbidden && !violated.empty()) Reject(v, "forbidden_action", "called " + violated);
  }

  if (llm_) {
    std::string rubric;
    if (st) {
      rubric = "Goal: " + st->reason_for_call + "\nRules the agent must follow:\n";
      for (const auto& p : st->relevant_policies) rubric += "- " + p + "\n";
      for (const auto& a : st->nl_assertions) rubric += "- " + a + "\n";
    }
    PolicyRequest req;
    req.messages = {{.role = "system",
                     .content = "You grade customer-service conversations. Answer with one JSON object "
                                "{\"score\": number in [0,1], \"reason\": string} and nothing else."},
                    {.role = "user", .content = rubric + "\nConversation:\n" + Transcript(t)}};
    req.temperature = 0.0;
    req.seed = t.seed;
    auto r = llm_->Act(req);
    std::optional<double> score;
    std::string why;
    if (!r.ok()) {
      why = r.status().ToString();
    } else {
      std::string text = r->message.content;
      size_t a = text.find('{'), b = text.rfind('}');
      auto j = a != std::string::npos && b != std::string::npos && b > a ? ParseJson(text.substr(a, b - a + 1), "llm judge")
                                                                         : Expected<json>(InvalidArgument("no JSON object in the judge's reply"));
      if (j.ok() && j->is_object() && j->contains("score") && (*j)["score"].is_number() && (*j)["score"] >= 0 &&
          (*j)["score"] <= 1)
        score = (*j)["score"].get<double>();
      else
        why = j.ok() ? "reply lacks a score in [0,1]: " + text.substr(0, 200) : j.status().message();
    }
    if (!score) {
      Reject(v, "llm_judge_error", why);
    } else {
      v.components["llm"] = *score;
      if (*score < config_.llm_min_score) Reject(v, "llm_judge", "score " + std::to_string(*score));
    }
  }
  return v;
}

Verdict Judge::Apply(Trajectory& t, const EpisodeTask& task) const {
  const auto t0 = std::chrono::steady_clock::now();
  Verdict v = Evaluate(t, task);
  for (const auto& [k, x] : v.components) t.reward_components["judge/" + k] = x;
  t.reward = v.keep ? 1 : 0;
  t.provenance["judge"] = {{"keep", v.keep}, {"reasons", v.reasons}, {"detail", v.detail}};
  t.timings.judge_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return v;
}

}  // namespace k2::agents
