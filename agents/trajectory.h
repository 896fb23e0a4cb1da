// Trajectory: the record of one simulated episode (messages, tool calls, final state, engine token
// stream with loss mask and logprobs, reward components, provenance, timings) and its JSON form.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/json.h"
#include "core/message.h"
#include "core/status.h"

namespace k2::agents {

// How an episode ended (Trajectory::end_reason). The strings are the stored/exported form.
inline constexpr const char* kEndReasons[] = {
    "agent_stop",    // the assistant answered without tool calls and the user had nothing more
    "user_stop",     // the user said ###STOP###
    "transfer",      // the user said ###TRANSFER### (or the agent transferred to a human)
    "out_of_scope",  // the user said ###OUT-OF-SCOPE###
    "max_turns", "max_tool_calls", "max_tokens", "timeout",
    "policy_error",  // Policy::Act returned an error (details in Trajectory::error)
    "env_error",     // the environment broke (details in Trajectory::error)
    "user_error",    // the simulated user could not answer (details in Trajectory::error)
    "aborted",       // a paused EpisodeRun was finished before it ended (a dropped partial rollout)
};
bool IsEndReason(const std::string& s);

// One tool call the assistant made, as the environment saw it.
struct ToolCallRecord {
  int turn = 0;               // index of the assistant turn (0-based) that made the call
  std::string id;             // ToolCall::id
  std::string name;
  std::string arguments;      // raw text as the model produced it
  bool valid = true;          // known tool, arguments parse and pass the schema
  bool is_error = false;      // the observation is an error (invalid call or the tool failed)
  std::string observation;    // the tool message content the agent saw
  std::string requestor = "assistant";  // "assistant" or "user" (dual control: user-owned tools)
  bool operator==(const ToolCallRecord&) const = default;
};

// Wall time spent per actor, seconds.
struct Timings {
  double total_s = 0, policy_s = 0, env_s = 0, user_s = 0, judge_s = 0;
  bool operator==(const Timings&) const = default;
};

struct Trajectory {
  std::string id;             // unique per (task, policy, seed, trial); derived deterministically
  std::string task_id;
  std::string domain;
  std::string policy;         // Policy::name()
  std::string user;           // simulated user name ("scripted", "openai:URL", ...)
  uint64_t seed = 0;
  int trial = 0;
  std::vector<Message> messages;  // the full conversation: system, user, assistant, tool
  json tools = json::array();     // OpenAI tools array the policy saw
  std::string end_reason;         // one of kEndReasons
  std::string error;              // policy_error/env_error detail; empty otherwise
  std::vector<std::string> failures;  // PolicyTurn::failure of every turn that had one, "turn N: kind: detail"
  int turns = 0;                  // assistant turns
  std::vector<ToolCallRecord> tool_calls;
  json final_state = nullptr;     // the environment's state at the end (synthetic envs: the database)
  std::string final_state_hash;   // sha256 hex of CanonicalJson(final_state); empty when no state
  // Engine runs only; all four have the same length. tokens = concatenation over turns of
  // context_tokens + generated tokens; policy_mask = 1 on generated tokens; logprobs and
  // policy_logprobs are 0 where policy_mask == 0.
  std::vector<int32_t> tokens;
  std::vector<uint8_t> policy_mask;
  std::vector<float> logprobs, policy_logprobs;
  int64_t prompt_tokens = 0, completion_tokens = 0;
  std::map<std::string, double> reward_components;
  double reward = 0;
  json provenance = json::object();  // generator, versions, task source, config
  Timings timings;

  // The JSON form (also the store's `data` column). Keys are stable; tokens/logprobs arrays are
  // omitted when empty. FromJson is strict: errors name `where` plus the field and what was expected.
  json ToJson() const;
  static Expected<Trajectory> FromJson(const json& j, const std::string& where);
  // Checks the invariants above (aligned token arrays, zero logprobs outside the mask, known end reason).
  Status Validate() const;
};

}  // namespace k2::agents
