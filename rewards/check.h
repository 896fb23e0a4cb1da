// Case files for verifiers: one JSON object a line (a response or messages, plus the task spec), scored
// by one reward kind. Used by `k2gym reward check` and by the table-driven tests (tests/rewards/data).
//
// Case line: {"id", "response" | "messages", <task spec keys> | "task": {...}, "final_state"?,
// "termination"?, "response_tokens"?, "task_type"?, "config"? (reward config; default {"type": kind}),
// "expected"? (value), "expected_components"? ({name: value})}. Pure; thread-safe.
#pragma once

#include <string>
#include <vector>

#include "rewards/reward.h"

namespace k2::rewards {

// Builds the ScoreInput of a case; errors name `where` (e.g. "cases.jsonl:3") and the field.
Expected<ScoreInput> CaseToInput(const json& c, const std::string& where);

struct CaseOutcome {
  std::string id;
  RewardResult result;
  bool has_expected = false;  // the case states "expected" / "expected_components"
  bool matches = true;        // all stated expectations hold (|diff| <= 1e-9)
  std::string mismatch;       // what differs, when !matches
};

// Scores every case with the reward `kind` (math, code, if, tool, ast or any registered type).
// `source` names the file in errors. Stops at the first malformed case or spec.
Expected<std::vector<CaseOutcome>> CheckCases(const std::string& kind, const std::vector<json>& cases,
                                              const std::string& source);

}  // namespace k2::rewards
