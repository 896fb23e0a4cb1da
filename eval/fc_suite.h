// Function-calling suites in the BFCL and ACEBench styles: loaders for their JSON(-lines) files, the
// per-case check of a policy's response (AST match of the calls via rewards/ast_match.h; "special"
// cases where the model must flag missing parameters or an incorrect value, or decline an irrelevant
// request without calling anything), multi-turn cases with STATE-based checks (BFCL multi_turn_*,
// ACEBench agent_*: the policy's calls run against the in-tree stateful classes of fc_backend.h over
// several user turns and the resulting state is compared with the ground truth's), the oracle policy of
// these suites, and a runner that sends every case through an agents::Policy.
//
// Loaders and ScoreFcResponse are pure; RunFcSuite calls Policy::Act from `threads` threads (the
// Policy contract makes Act thread-safe). An unreadable file is an error; a bad case (or one whose
// category the tree cannot evaluate) is recorded in FcSuite::errors with its id and the reason, and the
// rest of the file loads.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "agents/policy.h"
#include "rewards/ast_match.h"
#include "core/json.h"
#include "core/message.h"
#include "core/status.h"

namespace k2::eval {

struct FcCase {
  std::string id;
  std::string source;    // "bfcl" or "acebench"
  // The benchmark's category: the id up to its first "_<digit>" ("live_simple_0-0-0" -> "live_simple",
  // "normal_multi_turn_user_adjust_3_1" -> "normal_multi_turn_user_adjust").
  std::string category;
  rewards::CallLanguage language = rewards::CallLanguage::kPython;  // BFCL java / javascript categories
  // What a correct response does:
  //   "calls"          the calls match `ground_truth` (BFCL allowed-value lists; order-insensitive)
  //   "no_call"        no function is called (BFCL irrelevance; ACEBench special_irrelevant, whose reply
  //                    must also say "the limitations of the function")
  //   "some_call"      at least one call, values not checked (BFCL live_relevance)
  //   "missing_params" no call, and the reply names every parameter in `expect` ({func: [param...]})
  //   "error_param"    no call, and the reply quotes every incorrect value in `expect` ({func: [value...]})
  //   "state"          multi-turn against an FcBackend: BFCL compares the state after every turn with
  //                    the state after that turn's ground-truth calls (and a turn whose ground truth is
  //                    empty must make no call); ACEBench compares the final state with `expected_state`
  std::string kind;
  std::vector<Message> messages;  // single-turn kinds: the prompt, oldest first
  json functions = json::array(); // function docs as the file gives them (BFCL/ACEBench layout)
  // Kind "calls": BFCL [{"func": {"param": [allowed...]}}]; ACEBench [[{"func": {"param": value}}...]...]
  // (alternatives, each a set of calls; "func_2"-style names as the file writes them).
  json ground_truth = json::array();
  json expect = json::object();
  // Kind "state" only.
  std::vector<std::vector<Message>> turns;                   // messages that open each user turn
  std::vector<std::string> classes;                          // involved_classes
  json initial_config = json::object();                      // {class: config}
  std::vector<std::vector<rewards::FunctionCall>> gt_turns;  // BFCL: ground-truth calls of each turn
  // ACEBench: the ground truth's entries as the file lists them, [{class: {attribute: value}}, ...]
  // (class names as written: an entry naming no involved class is not compared, as ACEBench's checker
  // finds no match for it).
  json expected_state;
  // ACEBench mile_stone: alternatives (one unless the file nests lists) of the reference path, each a list
  // of agent messages, each message the calls it makes ("[login_device(), view_messages(...)]").
  std::vector<std::vector<std::vector<rewards::FunctionCall>>> milestones;
  std::map<int, std::vector<std::string>> missed;            // BFCL missed_function: hidden before turn
};

struct FcLoadError {
  std::string id;        // the case id ("" when the line has none)
  std::string category;  // from the id, or the file's category
  std::string where;     // file:line
  std::string reason;
};

struct FcSuite {
  std::string name;
  std::vector<FcCase> cases;
  std::vector<FcLoadError> errors;  // cases in the file that did not load
  int in_file = 0;                  // cases (records) in the file
};

// BFCL: `questions` is JSON lines {"id", "question": [[{role, content}...]] (turns), "function": [...]};
// `answers` (may be "" when every case is irrelevance) has {"id", "ground_truth": [{"func": {"p": [allowed]}}]}.
// Category from the id; "irrelevance*" and "live_irrelevance*" are no_call.
// Multi-turn cases ("multi_turn" in the id, or more than one turn): {"id", "question": [[turn 1 messages],
// [turn 2 messages], ...], "initial_config": {class: config}, "involved_classes": [...], optional
// "missed_function": {"TURN": [names]} (hidden from the tools before that turn), optional "function"
// (default: the in-tree classes' docs)}; the answer's "ground_truth" is one list of Python call strings
// per turn (["cd(folder='docs')", ...]). The loader replays the ground truth on a fresh backend: a call
// that fails there is a broken case (InvalidArgument naming the answer line and the call).
Expected<FcSuite> LoadBfcl(const std::string& questions, const std::string& answers);

// ACEBench: `data` is JSON lines (or a JSON array) {"id", "question": "user: ...\nassistant: ...",
// "function": [...]} (a "system:" line after the first user line is the assistant side, as ACEBench
// writes dialogs); `answers` has {"id", "ground_truth": {"func": {"p": value}} | [{"func": {...}}, ...]}
// with exact values. Categories: normal_* (kind calls), special_incomplete (ground_truth {"func":
// [missing params]}), special_error_param ({"func": [wrong values]} or {"func": {"p": wrong value}}),
// special_irrelevant (no_call).
// agent_multi_step_* / agent_multi_turn_* (kind state): the data line adds "initial_config" and
// "involved_classes"; each "user:" line of the question opens one user turn (a bare question is one turn:
// ACEBench's agent_multi_turn questions instruct its LLM user, which the tree does not simulate, so the
// policy reads that instruction as the user's message); the answer is {"id", "ground_truth":
// [{class: {attr: value}}...] (or one object), "mile_stone": [message strings] or [[...], [...]]
// (alternatives)}. A message string is one agent message of calls, "[f(a='x'), g()]" (brackets and
// surrounding blanks optional); one that Python cannot parse because an apostrophe was left unescaped
// inside a quoted value ('Domino's') is read with the apostrophe as text.
Expected<FcSuite> LoadAceBench(const std::string& data, const std::string& answers);

// Loads every BFCL_v*_<category>.json of `dir` with its possible_answer/ file, or every data_<category>.json
// of an ACEBench folder with its possible_answer/ file, into one suite (cases in file order, files in
// name order; errors and in_file summed).
Expected<FcSuite> LoadBfclDir(const std::string& dir);
Expected<FcSuite> LoadAceBenchDir(const std::string& dir);

// OpenAI tools array from BFCL/ACEBench function docs, valid JSON Schema for every language: Python and
// ACEBench types map as BFCL maps them to OpenAPI ("dict" -> "object", "float" -> "number", "tuple" ->
// "array", "any" -> "string", "list(string)" -> array of string, "enum" -> "string", ...); Java and
// JavaScript parameters become strings carrying source code, their declared type said in the
// description (BFCL's convention). Names outside [A-Za-z0-9_-]{1,64} ("Class.method") are rewritten
// ("Class_method"; collisions get a numeric suffix); `names`, when given, receives offered -> original.
json ToOpenAiTools(const json& functions, rewards::CallLanguage language = rewards::CallLanguage::kPython,
                   std::map<std::string, std::string>* names = nullptr);

// The case's tools as offered to a policy (ToOpenAiTools of its functions and language).
json CaseTools(const FcCase& c);


struct FcOutcome {
  std::string id, category, kind;
  std::string source;     // "bfcl" or "acebench"
  double score = 0;       // 1 or 0
  std::string detail;     // why
  json response;          // the assistant message (OpenAI JSON); kind state: the whole dialog
  std::string failure;    // PolicyTurn::failure or the Act error, "" when none
  json components = json::object();  // kind state: {"turns_passed", "turns", "calls", "process"}
};

// Leaderboard aggregates over outcomes, as each benchmark computes them: per category accuracy (ACEBench
// normal_multi_turn_*: per dialog, all its turns right; agent_*: also "process_accuracy", the mean of the
// cases' process components), then BFCL's overall (unweighted mean of its
// groups) and ACEBench's summary (0.2676 special + 0.578 normal + 0.1545 agent; each an unweighted mean
// of its categories). Categories absent from `outcomes` are left out of the means. See docs/eval.md.
json FcLeaderboard(const std::vector<FcOutcome>& outcomes);

// Checks one response. Calls are the message's tool_calls, or, when it has none, its content parsed as a
// JSON call list (prompted function calling). A turn with `failure` scores 0 with that reason.
FcOutcome ScoreFcResponse(const FcCase& c, const agents::PolicyTurn& turn);

struct FcRunOptions {
  uint64_t seed = 0;      // request seed = seed + case index (state cases: + 1000 * step)
  int threads = 1;
  std::optional<double> temperature = 0.0;
  std::optional<int64_t> max_tokens = 1024;
  int max_steps_per_turn = 20;  // state cases: assistant messages with calls allowed in one user turn
  // Streaming (apps' eval --resume): cases `skip` names (by index) are not run and keep a default outcome
  // (empty id); so do all cases not started once `stop` is true; `on_case` gets each outcome as it is
  // scored, on the worker that ran it.
  std::function<bool(int64_t case_index)> skip;
  std::function<bool()> stop;
  std::function<void(int64_t case_index, const FcOutcome&)> on_case;
};
// Sends each case (its messages + its functions as tools; session = the case id) to the policy and
// scores the reply. State cases run turn by turn: the policy acts until it answers without a call; each
// call runs on the case's backend and its result goes back as a tool message. A policy error on one case
// scores that case 0 (failure recorded); results are in case order whatever the thread count.
std::vector<FcOutcome> RunFcSuite(const FcSuite& suite, agents::Policy& policy, const FcRunOptions& options);

// The reference answer of a kind "calls" case: BFCL's first allowed value of each parameter (left out
// when that is "", the optional marker; a required parameter takes its first value other than ""), in Java / JavaScript source form for those languages; ACEBench's
// first alternative. Names are the docs' names.
std::vector<rewards::FunctionCall> ReferenceCalls(const FcCase& c);

// The reference policy of an FC suite (what `--policy oracle` means for kind bfcl/acebench): kind calls
// -> the ground-truth calls (first allowed value of each parameter; "" = omitted); no_call -> a refusal;
// missing_params / error_param -> a reply naming the parameters / quoting the values; state -> the
// current turn's ground-truth calls (BFCL, one call per assistant message) or the first mile-stone path
// (ACEBench, one mile-stone message per assistant message), then a short text reply. `skip_step` >= 0
// leaves out that (0-based) BFCL call / ACEBench mile-stone message of every state case's plan —
// a policy that skips one step. Sessions are case ids (RunFcSuite's); an unknown session is NotFound.
// Thread-safe (stateless: the position in the plan is read from the request's messages).
class FcOraclePolicy : public agents::Policy {
 public:
  FcOraclePolicy(const FcSuite& suite, int skip_step = -1);
  std::string name() const override { return skip_step_ < 0 ? "fc-oracle" : "fc-oracle-skip" + std::to_string(skip_step_); }
  Expected<agents::PolicyTurn> Act(const agents::PolicyRequest& request) override;

 private:
  std::map<std::string, const FcCase*> cases_;
  int skip_step_;
};

}  // namespace k2::eval
