// Function-call AST match in the BFCL / ACEBench way: function name, no required parameter missing, no
// unexpected parameter, types as the function doc declares them, each value in the allowed list (strings
// normalized; an allowed "" means the optional parameter may be omitted), parallel calls in any order.
// Pure; thread-safe.
//
// Reward "ast", task spec: {"functions": [{"name", "parameters": {"type", "properties", "required"}}],
//   "ground_truth": [{"func_name": {"param": [allowed values...]}}], "format": "bfcl" | "exact"}
// ("exact": ground-truth values are single values, as ACEBench writes them). The calls scored are the
// tool_calls of the last assistant message, or, when it has none, its content parsed as a JSON array of
// {"name", "arguments"} (or one such object). An empty ground truth means "no call must be made".
#pragma once

#include <string>
#include <vector>

#include "rewards/reward.h"

namespace k2::rewards {

struct FunctionCall {
  std::string name;
  json arguments;  // object; anything else is a failed call
};

struct AstResult {
  bool ok = false;
  std::string detail;
};

// BFCL's string standardization: drop " ,./-_*^", lower-case, ' -> ".
std::string StandardizeString(const std::string& s);

// One call against one ground-truth entry {"name": {param: [allowed...]}} and the function docs.
AstResult MatchCall(const FunctionCall& call, const json& functions, const json& ground_truth_entry);

// All calls against all ground-truth entries, order-insensitive (a perfect matching is searched, not a
// greedy one, so which call matches which entry never depends on order).
AstResult MatchCalls(const std::vector<FunctionCall>& calls, const json& functions, const json& ground_truth);

// Converts ACEBench-style ground truth ({"f": {"p": value}}) to allowed lists ({"f": {"p": [value]}}).
json ExactToAllowedLists(const json& ground_truth);

Expected<std::unique_ptr<Reward>> MakeAstReward(const json& config, const std::string& where);

}  // namespace k2::rewards
