// The "judge" reward (rewards/judge_reward.h): independent checks, so a rejection lists every reason.
#include "rewards/judge_reward.h"

#include <optional>

#include "rewards/tool_verifier.h"

namespace k2::rewards {
namespace {

void Reject(Verdict& v, const std::string& reason, const std::string& detail) {
  v.keep = false;
  v.reasons.push_back(reason);
  if (v.detail.empty()) v.detail = reason + ": " + detail;
}

std::string Transcript(const std::vector<Message>& messages) {
  std::string s;
  for (const auto& m : messages) {
    if (m.role == "system") continue;
    s += m.role + ": " + m.content;
    for (const auto& c : m.tool_calls) s += " [call " + c.name + " " + c.arguments + "]";
    s += "\n";
  }
  return s;
}

class JudgeReward : public Reward {
 public:
  JudgeReward(JudgeConfig cfg, std::string mode, ChatFn grader)
      : cfg_(cfg), mode_(std::move(mode)), grader_(std::move(grader)) {}
  std::string name() const override { return "judge"; }

 protected:
  Expected<RewardResult> DoScore(const ScoreInput& in) const override {
    if (!in.task.is_object()) return InvalidArgument("judge: task: expected an object");
    if (auto f = in.task.find("forbidden_actions"); f != in.task.end()) {
      if (!f->is_array()) return InvalidArgument("judge: task.forbidden_actions: expected an array");
      for (size_t k = 0; k < f->size(); ++k)
        if (!(*f)[k].is_object() || !(*f)[k].contains("name") || !(*f)[k]["name"].is_string())
          return InvalidArgument("judge: task.forbidden_actions[" + std::to_string(k) + "].name: expected a string");
    }
    Verdict v = JudgeSample(cfg_, in, grader_);
    RewardResult r;
    r.components = v.components;
    r.components["keep"] = v.keep ? 1 : 0;
    if (mode_ == "mean") {
      double s = 0;
      for (const auto& [k, c] : v.components) s += c;
      r.value = v.components.empty() ? 0 : s / static_cast<double>(v.components.size());
    } else {
      r.value = v.keep ? 1 : 0;
    }
    for (size_t i = 0; i < v.reasons.size(); ++i)
      r.explanation += (i ? "\n" : "") + std::string("reject ") + v.reasons[i];
    if (!v.detail.empty()) r.explanation += "\nfirst: " + v.detail;
    return r;
  }

 private:
  JudgeConfig cfg_;
  std::string mode_;
  ChatFn grader_;
};

}  // namespace

Verdict JudgeSample(const JudgeConfig& cfg, const ScoreInput& in, const ChatFn& grader) {
  Verdict v;
  const json& t = in.task.is_object() ? in.task : json::object();
  const bool clean = in.termination == "user_stop" || in.termination == "agent_stop";
  v.components["clean_end"] = clean ? 1 : 0;
  if (cfg.require_clean_end && !clean) Reject(v, "end_" + in.termination, in.termination);

  v.components["validity"] = in.tool_calls ? 1.0 - static_cast<double>(in.invalid_tool_calls) / in.tool_calls : 1.0;
  if (in.invalid_tool_calls > cfg.max_invalid_calls)
    Reject(v, "invalid_tool_calls", std::to_string(in.invalid_tool_calls) + " invalid calls > " +
                                        std::to_string(cfg.max_invalid_calls));

  std::string want;
  if (auto h = t.find("expected_state_hash"); h != t.end() && h->is_string()) want = h->get<std::string>();
  else if (auto s = t.find("expected_state"); s != t.end()) want = StateHash(*s);
  if (!want.empty()) {
    const std::string got = in.final_state.is_null() ? std::string() : StateHash(in.final_state);
    const bool ok = got == want;
    v.components["state"] = ok ? 1 : 0;
    if (cfg.check_state && !ok)
      Reject(v, "state_mismatch", "final state " + got.substr(0, 12) + " != expected " + want.substr(0, 12));
  }

  json crit = t.value("evaluation_criteria", json::object());
  json infos = crit.is_object() ? crit.value("communicate_info", json::array()) : json::array();
  if (infos.is_array() && !infos.empty()) {
    int said = 0, n = 0;
    std::string missing;
    for (const auto& i : infos) {
      if (!i.is_string()) continue;
      ++n;
      if (InformationCommunicated(in.messages, i.get<std::string>())) ++said;
      else if (missing.empty()) missing = i.get<std::string>();
    }
    v.components["communicate"] = n ? static_cast<double>(said) / n : 1.0;
    if (cfg.check_communicate && said < n) Reject(v, "info_not_communicated", "never said " + json(missing).dump());
  }

  if (auto f = t.find("forbidden_actions"); f != t.end() && f->is_array()) {
    std::string violated;
    for (const auto& m : in.messages) {
      if (m.role != "assistant") continue;
      for (const auto& call : m.tool_calls)
        for (const auto& fa : *f)
          if (violated.empty() && ActionMatches(call, fa)) violated = call.name + " " + call.arguments;
    }
    v.components["no_forbidden"] = violated.empty() ? 1 : 0;
    if (cfg.check_forbidden && !violated.empty()) Reject(v, "forbidden_action", "called " + violated);
  }

  if (grader) {
    std::string rubric = t.value("judge_rubric", std::string());
    std::vector<Message> prompt = {
        {.role = "system",
         .content = "You grade customer-service conversations. Answer with one JSON object "
                    "{\"score\": number in [0,1], \"reason\": string} and nothing else."},
        {.role = "user", .content = rubric + "\nConversation:\n" + Transcript(in.messages)}};
    auto r = grader(prompt);
    std::optional<double> score;
    std::string why;
    if (!r.ok()) {
      why = r.status().ToString();
    } else {
      const std::string& text = *r;
      size_t a = text.find('{'), b = text.rfind('}');
      auto j = a != std::string::npos && b != std::string::npos && b > a
                   ? ParseJson(text.substr(a, b - a + 1), "llm judge")
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
      if (*score < cfg.llm_min_score) Reject(v, "llm_judge", "score " + std::to_string(*score));
    }
  }
  return v;
}

Expected<std::unique_ptr<Reward>> MakeJudgeReward(JudgeConfig cfg, std::string mode, ChatFn grader) {
  if (mode != "keep" && mode != "mean") return InvalidArgument("judge.mode: expected \"keep\" or \"mean\", got " + json(mode).dump());
  return std::unique_ptr<Reward>(new JudgeReward(cfg, std::move(mode), std::move(grader)));
}

Expected<std::unique_ptr<Reward>> MakeJudgeRewardWithGrader(const json& config, ChatFn grader, const std::string& where) {
  if (!config.is_object()) return InvalidArgument(where + ": expected an object");
  json rest = config;
  rest.erase("type");
  std::string mode = "keep";
  if (rest.contains("mode")) {
    if (!rest["mode"].is_string()) return InvalidArgument(where + ".mode: expected \"keep\" or \"mean\"");
    mode = rest["mode"];
    rest.erase("mode");
  }
  JudgeConfig cfg;
  K2_RETURN_IF_ERROR(config::Reader::Read(rest, cfg, where, "reward config"));
  auto r = MakeJudgeReward(cfg, mode, std::move(grader));
  if (!r.ok()) return r.status().Context(where);
  return r;
}

Expected<std::unique_ptr<Reward>> MakeJudgeReward(const json& config, const std::string& where) {
  return MakeJudgeRewardWithGrader(config, nullptr, where);
}

}  // namespace k2::rewards
