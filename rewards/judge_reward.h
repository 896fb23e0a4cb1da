// The judge as a reward: the rubric filter of simulated trajectories (clean end, tool-call validity,
// final state hash, required information communicated, no forbidden action; optionally an LLM grade).
// Its τ² checks are rewards/tool_verifier's functions (StateHash, InformationCommunicated,
// ActionMatches), so training, simulation and evaluation score an episode by one rule.
//
// Reward "judge", task spec (the tool verifier's shape): {"expected_state_hash" | "expected_state",
// "evaluation_criteria": {"communicate_info": [...]}, "forbidden_actions": [{"name", "arguments"?,
// "compare_args"?}], "judge_rubric"?: text for the LLM grade}. Every check is optional: a spec without
// an expected state skips the state check. Config keys: JudgeConfig's, plus "mode": "keep" (value 1 when
// every enabled check passes, else 0) or "mean" (the mean of the components). Components: clean_end,
// validity, state, communicate, no_forbidden, llm (with a grader), keep. The explanation lists each
// rejection as "reject <reason>: <detail>" (reasons: end_<termination>, invalid_tool_calls,
// state_mismatch, info_not_communicated, forbidden_action, llm_judge, llm_judge_error).
// Pure given the grader; thread-safe when it is.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/config.h"
#include "rewards/reward.h"
#include "rewards/scrr.h"

namespace k2::rewards {

// Run-config section "judge" (registered in apps/cmd_agents.cc).
struct JudgeConfig {
  bool check_state = true;        // the final state hash must equal the task's expected hash
  bool check_communicate = true;  // every communicate_info string appears in an assistant message
  bool check_forbidden = true;    // no tool call matches a forbidden action (name + compare_args)
  int max_invalid_calls = 2;      // more schema-invalid/unknown-tool calls than this: rejected
  bool require_clean_end = true;  // termination must be user_stop or agent_stop
  double llm_min_score = 0.5;     // with an LLM grader: its score in [0,1] must reach this
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
  std::vector<std::string> reasons;          // why rejected (see above)
  std::map<std::string, double> components;  // clean_end, validity, state, communicate, no_forbidden, llm
  std::string detail;                        // first failing check, human-readable
};

// The checks on one sample. `grader` (may be empty) grades the dialog: it gets a system + user prompt
// and must reply with a JSON object {"score": number in [0,1], ...}.
Verdict JudgeSample(const JudgeConfig& cfg, const ScoreInput& in, const ChatFn& grader);

// "judge" from config (no grader: the LLM grade is code-only, since it is a live model).
Expected<std::unique_ptr<Reward>> MakeJudgeReward(const json& config, const std::string& where);
Expected<std::unique_ptr<Reward>> MakeJudgeReward(JudgeConfig cfg, std::string mode, ChatFn grader);
// The config's options plus a grader.
Expected<std::unique_ptr<Reward>> MakeJudgeRewardWithGrader(const json& config, ChatFn grader, const std::string& where);

}  // namespace k2::rewards
