// τ²-bench tasks as τ²-bench's own Task model defines them: loading tasks.json files, filling every
// optional field with τ²'s default, keeping unknown fields, and split files (split_<tasks>.json).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/json.h"
#include "core/message.h"
#include "core/status.h"

namespace k2::agents::tau2 {

// One task. `data` is the task object normalised to τ²'s Task model: every field the model knows is
// present (absent optional fields get τ²'s default: null, "assistant" for Action.requestor, true for
// EnvAssertion.assert_value, ["DB", "COMMUNICATE"] for reward_basis), and every key the model does not
// know is kept unchanged (so a file round-trips without losing anything).
struct Task {
  std::string id;
  std::string domain;  // the domain folder the file came from ("" when loaded from a bare file)
  json data;

  // Shorthands over `data` (null-safe).
  const json& evaluation_criteria() const { return data["evaluation_criteria"]; }
  const json& initial_state() const { return data["initial_state"]; }
  const json& user_scenario() const { return data["user_scenario"]; }
  std::vector<std::string> reward_basis() const;  // empty when evaluation_criteria is null
};

// Validates one task object against τ²'s Task model and fills the defaults (see Task::data). Errors name
// `where` and the JSON pointer of the field and what was expected.
Expected<json> NormalizeTask(const json& task, const std::string& where);

// Reads a τ² task file (a JSON array of tasks). `domain` is recorded on each task. Duplicate ids are an
// error.
Expected<std::vector<Task>> LoadTasks(const std::string& path, const std::string& domain);

// τ²'s split file for a task file: <dir>/split_<stem>.json ({"train": [ids], "test": [ids], ...}).
// NotFound when the file does not exist (telecom's June-2025 release has none).
Expected<std::map<std::string, std::vector<std::string>>> LoadSplits(const std::string& tasks_path);

// The tasks of `split` in file order; an unknown split name or an id the file lacks is an error.
Expected<std::vector<Task>> SelectSplit(const std::vector<Task>& tasks,
                                        const std::map<std::string, std::vector<std::string>>& splits,
                                        const std::string& split);

// A reference agent for pipeline sources (the `gold` policy): the task's gold actions in order, the
// agent's own as tool-call turns, the user's as a request naming the tool ("Please run NAME(k=v) on your
// phone.", which the scripted user carries out), then a message with the communicate_info strings
// asking whether there is anything else. It starts with one placeholder turn per assistant message the
// episode opens with (the greeting, or the history's), as the gold policy indexes turns by count.
std::vector<Message> GoldAgentTurns(const Task& task);

// τ²'s rendering of the user scenario for the user simulator (persona, then the instructions; a
// structured instruction lists domain, reason for call, known info, unknown info, task instructions).
std::string ScenarioText(const Task& task);

}  // namespace k2::agents::tau2
