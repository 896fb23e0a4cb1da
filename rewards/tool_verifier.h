// Tool-use verifier in the τ²-bench way: final database state equals the expected one (SHA-256 of the
// canonical JSON), required information communicated, gold actions matched (with compare_args),
// forbidden actions absent; final reward = product over the task's reward_basis, times the forbidden gate.
// Episodes that end other than by the agent or the user stopping score 0. Pure; thread-safe.
//
// Reward "tool", task spec:
//   {"evaluation_criteria": {"actions": [{"name", "arguments", "compare_args"?, "requestor"?}],
//                            "communicate_info": ["..."], "reward_basis": ["DB", "COMMUNICATE", "ACTION"]},
//    "expected_state_hash": "<sha256 hex>" | "expected_state": {...},
//    "forbidden_actions": [{"name", "arguments"?}]}
// ScoreInput.final_state holds the environment database(s); ScoreInput.termination the stop reason.
#pragma once

#include <string>
#include <vector>

#include "rewards/reward.h"

namespace k2::rewards {

// SHA-256 hex of CanonicalJson(state): the τ² DB hash.
std::string StateHash(const json& state);

// τ² action match: same name, and for each key of compare_args (default: every gold argument key) the
// call's value equals the gold value (keys absent on both sides are equal). Unparseable call arguments
// match only an action compared on no argument.
bool ActionMatches(const ToolCall& call, const json& gold_action);

// Each string is a case-insensitive substring of some assistant message (commas removed, as τ² does).
bool InformationCommunicated(const std::vector<Message>& messages, const std::string& info);

Expected<std::unique_ptr<Reward>> MakeToolReward(const json& config, const std::string& where);

}  // namespace k2::rewards
