// The reward API of k2gym: what a reward scores (ScoreInput), what it returns (RewardResult), the
// Reward interface, the registry that builds rewards from JSON config, and composition (sum, product, gate).
//
// Every reward is a pure function of its ScoreInput (and the seed inside it): the same input gives the
// same result bit for bit. Rewards are immutable after construction, so one instance may be shared by
// threads. Model output is data: a malformed response is a score (0, with the reason); only a malformed
// task spec or reward config is an error (Status naming the field and what was expected).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/json.h"
#include "core/message.h"
#include "core/status.h"

namespace k2::rewards {

// What a reward sees of one sample. A Trajectory (agents/) adapts to this; `reward check` builds it from
// a case line. Everything task-specific lives in `task` (the evaluation spec), so a reward reads exactly
// the keys it documents and nothing else.
struct ScoreInput {
  std::vector<Message> messages;  // the full dialog, OpenAI format; the response is the last assistant turn
  json task = json::object();     // evaluation spec: reference, tests, constraints, evaluation_criteria, ...
  json final_state;               // environment database(s) at the end of the episode (tool rewards)
  std::string termination;        // why the episode ended: "agent_stop", "user_stop", "max_steps", "error", ...
  int64_t response_tokens = 0;    // tokens the policy generated for this sample (budget control)
  std::string task_type;          // "math", "code", "if", "tool", ... (budget per task type)
  uint64_t seed = 0;              // for rewards that sample (none of the built-in verifiers do)
  int64_t tool_calls = 0;         // assistant tool calls the environment saw (judge: validity)
  int64_t invalid_tool_calls = 0; // of which unknown tool / unparsable / schema-invalid
};

// The content of the last assistant message ("" when there is none).
std::string LastAssistantText(const ScoreInput& in);

struct RewardResult {
  double value = 0;                          // the scalar the trainer uses
  std::map<std::string, double> components;  // named parts ("budget_penalty", "db", "pass_fraction", ...)
  std::string explanation;                   // one line per reason, for humans and logs
  json ToJson() const;
};

class Reward {
 public:
  virtual ~Reward() = default;
  // Scores one sample. Never throws: a JSON type error inside a verifier becomes InvalidArgument.
  Expected<RewardResult> Score(const ScoreInput& in) const;
  virtual std::string name() const = 0;

 protected:
  virtual Expected<RewardResult> DoScore(const ScoreInput& in) const = 0;
};

// Builds a reward from config. `{"type": "math", ...}`; built-in types: math, if, tool, ast, code, judge
// (rewards/judge_reward.h),
// weighted_sum {"terms": [{"weight": w, "reward": {...}}]}, product {"factors": [{...}]},
// gate {"gate": {...}, "reward": {...}, "threshold": t} (reward when gate >= t, else 0),
// budget {"reward": {...}, "budgets": {...}, ...} (see budget.h). `where` prefixes error messages.
Expected<std::unique_ptr<Reward>> MakeReward(const json& config, const std::string& where = "reward");

// Registers a reward type (a user's own verifier); returns false when the name is taken.
using RewardFactory = std::function<Expected<std::unique_ptr<Reward>>(const json& config, const std::string& where)>;
bool RegisterReward(const std::string& type, RewardFactory factory);
std::vector<std::string> RewardTypes();

// Helpers for reading spec fields with located errors (used by every verifier).
Expected<std::string> GetString(const json& obj, const std::string& key, const std::string& where);
Expected<double> GetNumber(const json& obj, const std::string& key, const std::string& where);

}  // namespace k2::rewards
