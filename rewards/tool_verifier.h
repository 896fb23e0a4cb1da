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

// τ²-bench's evaluators, rule for rule, over τ²-bench trajectories (JSON message lists: {"role",
// "content", "tool_calls": [{"id", "name", "arguments": {...}, "requestor"}], ...}) and normalised τ²
// tasks (agents/tau2/task.h). The environment part (replaying the trajectory and the gold actions,
// comparing agent and user DB hashes, running env assertions) needs the domain and is done by
// agents/tau2 (CheckEnvironment); its outcome comes in as Tau2EnvOutcome. Pure given the judge.
namespace k2::rewards::tau2 {

// τ²'s Action.compare_with_tool_call: same name; the keys compared are compare_args, or — when
// compare_args is null — the CALL's argument keys; an empty key list matches any arguments; otherwise
// the call's and the gold's arguments restricted to those keys must be equal.
bool ActionMatches(const json& gold_action, const std::string& name, const json& arguments);

// Python's str.lower() for the scripts τ² data uses (ASCII, Latin-1, Latin Extended-A, Greek,
// Cyrillic); other code points are kept.
std::string Lower(const std::string& utf8);

// τ²'s CommunicateEvaluator: `info` lower-cased is a substring of some assistant message's content
// lower-cased with commas removed.
bool Communicated(const json& trajectory, const std::string& info);

// Every tool call of assistant and user messages, in order (τ² pools both requestors for ACTION).
std::vector<json> TrajectoryToolCalls(const json& trajectory);

// τ²'s NLAssertionsEvaluator: one judge call for all assertions; the reply is a JSON object
// {"results": [{"expectedOutcome", "reasoning", "metExpectation": bool}]} (a code fence around it is
// tolerated). The task is met only when every result is met and there is one per assertion.
std::vector<Message> NlJudgePrompt(const json& trajectory, const std::vector<std::string>& assertions);
// Error (the sample cannot be scored, not a 0) when the reply is not such an object.
Expected<std::vector<json>> ParseNlResults(const std::string& reply);

// τ²'s premature-termination rule: only the agent's or the user's stop is scored. The user's stop
// includes its ###TRANSFER### and ###OUT-OF-SCOPE### endings (k2gym records those as "transfer" and
// "out_of_scope"); anything else (max steps, too many errors, crashes) scores 0.
bool IsScoredTermination(const std::string& termination);

struct Tau2EnvOutcome {
  bool db_match = true;
  bool assertions_met = true;
  json detail = json::object();  // shown in the result's info.env
};

struct Tau2Evaluation {
  double reward = 0;
  json breakdown = json::object();  // reward type -> component reward (the basis only)
  json info = json::object();       // checks per component, notes
};

// τ²'s evaluate_simulation with EvaluationType.ALL: the product over the task's reward_basis of the
// ENV (DB and/or ENV_ASSERTION), ACTION, COMMUNICATE and NL_ASSERTION components. NL_ASSERTION runs
// `judge` when the basis asks for it and the task has assertions; without a judge that is an error
// (FailedPrecondition naming the task), never a silent skip.
Expected<Tau2Evaluation> Evaluate(const json& task, const json& trajectory, const std::string& termination,
                                  const Tau2EnvOutcome& env, const ChatFn& judge);

}  // namespace k2::rewards::tau2
