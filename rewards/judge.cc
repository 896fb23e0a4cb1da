// Judge over trajectories (rewards/judge.h): the "judge" reward's checks on TrajectoryToScoreInput.
#include "rewards/judge.h"

#include <chrono>
#include <optional>

#include "rewards/policy_bridge.h"

namespace k2::rewards {

json JudgeSpec(const agents::EpisodeTask& task) {
  if (!task.synth) return json::object();
  const auto& st = *task.synth;
  json forbidden = json::array();
  for (const auto& f : st.forbidden) {
    json a = {{"name", f.name}, {"arguments", f.arguments}};
    if (!f.compare_args.empty()) a["compare_args"] = f.compare_args;
    forbidden.push_back(a);
  }
  std::string rubric = "Goal: " + st.reason_for_call + "\nRules the agent must follow:\n";
  for (const auto& p : st.relevant_policies) rubric += "- " + p + "\n";
  for (const auto& a : st.nl_assertions) rubric += "- " + a + "\n";
  return {{"expected_state_hash", st.expected_hash},
          {"evaluation_criteria", {{"communicate_info", st.communicate_info}}},
          {"forbidden_actions", forbidden},
          {"judge_rubric", rubric}};
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

Verdict Judge::Evaluate(const agents::Trajectory& t, const agents::EpisodeTask& task) const {
  ScoreInput in = TrajectoryToScoreInput(t, JudgeSpec(task));
  ChatFn grader;
  if (llm_) grader = PolicyChat(*llm_, {.temperature = 0.0, .max_tokens = std::nullopt, .seed = t.seed});
  return JudgeSample(config_, in, grader);
}

void RecordVerdict(agents::Trajectory& t, const Verdict& v) {
  for (const auto& [k, x] : v.components) t.reward_components["judge/" + k] = x;
  t.reward = v.keep ? 1 : 0;
  t.provenance["judge"] = {{"keep", v.keep}, {"reasons", v.reasons}, {"detail", v.detail}};
}

Verdict Judge::Apply(agents::Trajectory& t, const agents::EpisodeTask& task) const {
  const auto t0 = std::chrono::steady_clock::now();
  Verdict v = Evaluate(t, task);
  RecordVerdict(t, v);
  t.timings.judge_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return v;
}

}  // namespace k2::rewards
