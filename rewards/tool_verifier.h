// Tool-use verifier in the τ²-bench way: final database state equals the expected one (SHA-256 of the
// canonical JSON), env assertions hold on the final state, required information communicated, gold
// actions matched (with compare_args), NL assertions confirmed by an LLM judge, forbidden actions absent;
// final reward = product over the task's reward_basis, times the forbidden gate. Episodes that end other
// than by the agent or the user stopping score 0. Pure given the judge; thread-safe when the judge is.
//
// Reward "tool", task spec:
//   {"evaluation_criteria": {"actions": [{"name", "arguments", "compare_args"?, "requestor"?}],
//                            "communicate_info": ["..."], "env_assertions": [{"func_name": "field_equals",
//                            "arguments": {collection, id, field, value}, "assert_value"?}],
//                            "nl_assertions": ["..."],
//                            "reward_basis": ["DB", "ENV_ASSERTION", "COMMUNICATE", "ACTION", "NL_ASSERTION"]},
//    "expected_state_hash": "<sha256 hex>" | "expected_state": {...},
//    "forbidden_actions": [{"name", "arguments"?}]}
// ScoreInput.final_state holds the environment database(s); ScoreInput.termination the stop reason.
#pragma once

#include <string>
#include <vector>

#include "rewards/reward.h"
#include "rewards/scrr.h"

namespace k2::rewards {

// SHA-256 hex of CanonicalJson(state): the τ² DB hash.
std::string StateHash(const json& state);

// τ² action match: same name, and for each key of compare_args (default: every gold argument key) the
// call's value equals the gold value (keys absent on both sides are equal). Unparseable call arguments
// match only an action compared on no argument.
bool ActionMatches(const ToolCall& call, const json& gold_action);

// Each string is a case-insensitive substring of some assistant message (commas removed, as τ² does).
bool InformationCommunicated(const std::vector<Message>& messages, const std::string& info);

// NL_ASSERTION judge: one chat call per assertion with the transcript; the reply ends with [[YES]] or
// [[NO]] (the last one counts). A judge reply without a verdict, or a failed call, is an error (the
// sample cannot be scored), not a 0.
std::vector<Message> NlJudgePrompt(const std::vector<Message>& dialog, const std::string& assertion);
// 1 for [[YES]], 0 for [[NO]]; InvalidArgument when the reply has neither.
Expected<double> ParseJudgeVerdict(const std::string& reply);

struct ToolRewardOptions {
  std::vector<std::string> accepted_terminations = {"agent_stop", "user_stop"};
  // Called for NL_ASSERTION (must be thread-safe when the reward is shared by threads). Empty: no judge.
  ChatFn judge;
  // What NL_ASSERTION does without a judge: "error" (the score fails with FailedPrecondition "needs a
  // judge") or "skip" (the basis is left out of the product; component "nl_assertion_unjudged" = 1).
  std::string on_missing_judge = "error";
};

// Config keys: accepted_terminations (array of strings), on_missing_judge ("error"|"skip"). A judge can
// only be given in code (MakeToolRewardWithJudge) since it is a live model.
Expected<std::unique_ptr<Reward>> MakeToolReward(const json& config, const std::string& where);
Expected<std::unique_ptr<Reward>> MakeToolReward(ToolRewardOptions options);
// The config's options plus a judge.
Expected<std::unique_ptr<Reward>> MakeToolRewardWithJudge(const json& config, ChatFn judge, const std::string& where);

}  // namespace k2::rewards
