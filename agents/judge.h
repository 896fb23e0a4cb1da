// The judge: rubric filtering of trajectories (final state hash, required information communicated, no
// forbidden action, tool-call validity, clean end) plus an optional LLM judge through any Policy.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "agents/episode.h"
#include "agents/policy.h"
#include "agents/trajectory.h"
#include "core/config.h"

namespace k2::agents {

// Run-config section "judge" (registered in apps/cmd_agents.cc).
struct JudgeConfig {
  bool check_state = true;        // final_state_hash must equal the task's expected hash
  bool check_communicate = true;  // every communicate_info string appears in an assistant message
  bool check_forbidden = true;    // no tool call matches a forbidden action (name + compare_args)
  int max_invalid_calls = 2;      // more schema-invalid/unknown-tool calls than this: rejected
  bool require_clean_end = true;  // end_reason must be user_stop or agent_stop
  double llm_min_score = 0.5;     // with an LLM judge: its score in [0,1] must reach this
  template <class V>
  void Visit(V& v) {
    v("check_state", check_state, "reject when the final state hash differs from the task's expected hash");
    v("check_communicate", check_communicate, "reject when required information was never said to the user");
    v("check_forbidden", check_forbidden, "reject when a tool call matches a forbidden (policy-violating) action");
    v("max_invalid_calls", max_invalid_calls, "invalid tool calls tolerated before rejection", {.min = 0, .max = 1000000});
    v("require_clean_end", require_clean_end, "reject episodes that did not end with user_stop/agent_stop");
    v("llm_min_score", llm_min_score, "minimum LLM-judge score to keep (when an LLM judge is configured)", {.min = 0, .max = 1});
  }
};

struct Verdict {
  bool keep = true;
  std::vector<std::string> reasons;  // why rejected: state_mismatch, info_not_communicated, forbidden_action,
                                     // invalid_tool_calls, end_<end_reason>, llm_judge, llm_judge_error
  std::map<std::string, double> components;  // state, communicate, no_forbidden, validity, clean_end, llm
  std::string detail;                // first failing check, human-readable
};

// Kept/discarded counts by reason (a trajectory may count under several reasons).
struct JudgeSummary {
  int64_t kept = 0, discarded = 0;
  std::map<std::string, int64_t> by_reason;
  void Add(const Verdict& v);
  json ToJson() const;
};

// Thread safety: Evaluate is const and may run concurrently (the LLM policy must be thread-safe, as
// every Policy is). Trajectories of non-synthetic tasks only get the task-independent checks.
class Judge {
 public:
  explicit Judge(JudgeConfig config = {}, Policy* llm = nullptr) : config_(config), llm_(llm) {}
  Verdict Evaluate(const Trajectory& t, const EpisodeTask& task) const;
  // Evaluate, then store the components in t.reward_components ("judge/<name>"), t.reward = keep ? 1 : 0,
  // and the verdict in t.provenance["judge"].
  Verdict Apply(Trajectory& t, const EpisodeTask& task) const;

 private:
  JudgeConfig config_;
  Policy* llm_;
};

// Whether a call (name + raw arguments) is the action: same tool, equal values on compare_args (all of
// the action's arguments when compare_args is empty).
bool CallMatchesAction(const std::string& name, const std::string& arguments, const toolgen::synth::Action& a);

}  // namespace k2::agents
