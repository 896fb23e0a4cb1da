// Function-call AST match with the official rules of BFCL (ast_checker: per-language type conversion and
// type acceptance, allowed-value lists, standardized strings) and of ACEBench (its checker: `name_N` keys,
// substring string match, dict key counts), plus the parallel-call matching both use. Pure; thread-safe.
//
// Reward "ast", task spec: {"functions": [{"name", "parameters": {"type", "properties", "required"}}],
//   "ground_truth": [{"func_name": {"param": [allowed values...]}}], "format": "bfcl" | "exact",
//   optional "language": "python" | "java" | "javascript"}
// ("exact": ground-truth values are single values, as ACEBench writes them, checked by ACEBench's rules).
// The calls scored are the tool_calls of the last assistant message, or, when it has none, its content
// parsed as a JSON array of {"name", "arguments"} (or one such object). An empty ground truth means "no
// call must be made".
#pragma once

#include <string>
#include <string_view>
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

// The language of a BFCL function doc: Java and JavaScript argument values are strings of source code
// ("true", "42L", "new int[]{1, 2}") that the checker converts by the declared type before comparing.
enum class CallLanguage { kPython, kJava, kJavaScript };

struct AstRules {
  bool acebench = false;                       // ACEBench's checker instead of BFCL's
  CallLanguage language = CallLanguage::kPython;  // BFCL only
  bool exact_strings = false;                  // ACEBench agent categories: whole-string equality
};

// Unicode lower-casing of UTF-8 text (Latin-1, Latin Extended-A/B and Additional, Greek, Cyrillic,
// Armenian, fullwidth Latin), as Python's str.lower() does for those scripts. Invalid bytes are kept.
std::string UnicodeLower(std::string_view s);

// The benchmarks' string standardization: drop " ,./-_*^", lower-case (Unicode), ' -> ".
std::string StandardizeString(const std::string& s);

// One call against one ground-truth entry {"name": {param: [allowed...]}} (BFCL) or {"name": {param:
// value}} (ACEBench) and the function docs.
AstResult MatchCall(const FunctionCall& call, const json& functions, const json& ground_truth_entry, const AstRules& rules = {});

// All calls against all ground-truth entries, order-insensitive (a perfect matching is searched, not a
// greedy one, so which call matches which entry never depends on order). ACEBench entry names lose a
// trailing "_<n>" (its way of writing one function called twice) unless a function has that exact name.
AstResult MatchCalls(const std::vector<FunctionCall>& calls, const json& functions, const json& ground_truth, const AstRules& rules = {});

// ACEBench ground-truth name: "f_2" -> "f" (when no function is named "f_2").
std::string AceBaseName(const std::string& name, const json& functions);

// Java / JavaScript source text -> value, as BFCL's type converters read it (a text they cannot read
// stays a string). `type` and `item_type` are the doc's declared types. Unsupported declared types
// (Set, Hashtable, Queue, Stack) give nullopt.
std::optional<json> ConvertSourceValue(const std::string& text, const std::string& type, const std::string& item_type,
                                       CallLanguage language);
// The inverse, for reference answers: the source text BFCL's converters read back as `value` (nullopt
// when none does, e.g. a non-string value for a parameter of type any).
std::optional<std::string> RenderSourceValue(const json& value, const json& schema, CallLanguage language);

// Converts ACEBench-style ground truth ({"f": {"p": value}}) to allowed lists ({"f": {"p": [value]}}).
json ExactToAllowedLists(const json& ground_truth);

Expected<std::unique_ptr<Reward>> MakeAstReward(const json& config, const std::string& where);

}  // namespace k2::rewards
