// Function-calling suites in the BFCL and ACEBench styles: loaders for their JSON(-lines) files, the
// per-case check of a policy's response (AST match of the calls via rewards/ast_match.h; "special"
// cases where the model must flag missing parameters or an incorrect value, or decline an irrelevant
// request without calling anything), and a runner that sends every case through an agents::Policy.
//
// Loaders and ScoreFcResponse are pure; RunFcSuite calls Policy::Act from `threads` threads (the
// Policy contract makes Act thread-safe). Bad files give InvalidArgument naming file:line and the field.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "agents/policy.h"
#include "core/json.h"
#include "core/message.h"
#include "core/status.h"

namespace k2::eval {

struct FcCase {
  std::string id;
  std::string source;    // "bfcl" or "acebench"
  std::string category;  // the id without its trailing "_<n>": "simple", "parallel_multiple", "special_incomplete", ...
  // What a correct response does:
  //   "calls"          the calls match `ground_truth` (BFCL allowed-value lists; order-insensitive)
  //   "no_call"        no function is called (BFCL irrelevance, ACEBench special_irrelevant)
  //   "missing_params" no call, and the reply names every parameter in `expect` ({func: [param...]})
  //   "error_param"    no call, and the reply quotes every incorrect value in `expect` ({func: [value...]})
  std::string kind;
  std::vector<Message> messages;  // the prompt, oldest first
  json functions = json::array(); // function docs as the file gives them (BFCL/ACEBench layout)
  json ground_truth = json::array();  // kind "calls": [{"func": {"param": [allowed...]}}]
  json expect = json::object();
};

struct FcSuite {
  std::string name;
  std::vector<FcCase> cases;
  std::vector<std::pair<std::string, std::string>> skipped;  // (id, why) cases this runner cannot execute
};

// BFCL: `questions` is JSON lines {"id", "question": [[{role, content}...]] (turns), "function": [...]};
// `answers` (may be "" when every case is irrelevance) has {"id", "ground_truth": [{"func": {"p": [allowed]}}]}.
// Category from the id; "irrelevance*" and "live_irrelevance*" are no_call; multi-turn BFCL cases
// (more than one turn) need BFCL's Python backends and are listed in `skipped`.
Expected<FcSuite> LoadBfcl(const std::string& questions, const std::string& answers);

// ACEBench: `data` is JSON lines (or a JSON array) {"id", "question": "user: ...\nassistant: ...",
// "function": [...]} (a "system:" line after the first user line is the assistant side, as ACEBench
// writes dialogs); `answers` has {"id", "ground_truth": {"func": {"p": value}} | [{"func": {...}}, ...]}
// with exact values. Categories: normal_* (kind calls), special_incomplete (ground_truth {"func":
// [missing params]}), special_error_param ({"func": [wrong values]} or {"func": {"p": wrong value}}),
// special_irrelevant (no_call). agent_* cases need ACEBench's Python sandbox classes: `skipped`.
Expected<FcSuite> LoadAceBench(const std::string& data, const std::string& answers);

// OpenAI tools array from BFCL/ACEBench function docs: "dict" -> "object", "float" -> "number",
// "tuple" -> "array", "any" -> no type (recursively).
json ToOpenAiTools(const json& functions);

struct FcOutcome {
  std::string id, category, kind;
  double score = 0;       // 1 or 0
  std::string detail;     // why
  json response;          // the assistant message (OpenAI JSON)
  std::string failure;    // PolicyTurn::failure or the Act error, "" when none
};

// Checks one response. Calls are the message's tool_calls, or, when it has none, its content parsed as a
// JSON call list (prompted function calling). A turn with `failure` scores 0 with that reason.
FcOutcome ScoreFcResponse(const FcCase& c, const agents::PolicyTurn& turn);

struct FcRunOptions {
  uint64_t seed = 0;      // request seed = seed + case index
  int threads = 1;
  std::optional<double> temperature = 0.0;
  std::optional<int64_t> max_tokens = 1024;
};
// Sends each case (its messages + its functions as tools; session = the case id) to the policy and
// scores the reply. A policy error on one case scores that case 0 (failure recorded); results are in
// case order whatever the thread count.
std::vector<FcOutcome> RunFcSuite(const FcSuite& suite, agents::Policy& policy, const FcRunOptions& options);

}  // namespace k2::eval
