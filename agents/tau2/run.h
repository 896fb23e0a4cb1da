// τ²-bench's half-duplex orchestration on a native domain: the agent greets first (or the task's message
// history is the start), agent tool calls run as "assistant", the user's own tool calls (dual control)
// run as "user" and are recorded in the trajectory with their requestor, and τ²'s termination rules
// apply (user ###STOP### / ###TRANSFER### / ###OUT-OF-SCOPE###: user_stop; the agent's ###STOP###:
// agent_stop; max_steps messages; max_errors tool errors). Also the LLM user simulator (τ²'s
// simulation guidelines read from the data folder + the scenario) and the scripted offline user.
//
// Thread safety: one Run per thread; the policy objects must be thread-safe (agents::Policy is).
#pragma once

#include <memory>
#include <string>

#include "agents/policy.h"
#include "agents/user.h"
#include "agents/tau2/env.h"

namespace k2::agents::tau2 {

// One episode's simulated user.
class UserSim {
 public:
  virtual ~UserSim() = default;
  // The next user message as a τ² message {"role": "user", "content", "tool_calls"?: [{"id", "name",
  // "arguments"}]}, given the trajectory so far (τ² messages). A message with tool calls is followed by
  // their results and another call to Respond. Error: the simulator cannot answer (user_error).
  virtual Expected<json> Respond(const json& trajectory) = 0;
};

// τ²'s LLM user: system prompt = the simulation guidelines (`guidelines`, τ²'s simulation_guidelines.md
// text) followed by <scenario>ScenarioText</scenario>; it sees the agent's messages as "user" turns, its
// own as "assistant" turns, and its own tool calls and results (never the agent's). `user_tools` is the
// OpenAI tools array of the user's tools (empty array: none).
std::unique_ptr<UserSim> MakeLlmUser(Policy* llm, const Task& task, const std::string& guidelines, json user_tools,
                                     uint64_t seed);
// The system prompt MakeLlmUser uses.
std::string UserSystemPrompt(const std::string& guidelines, const Task& task);

// The offline stand-in (no language model), in this order each turn: reports the results of its own
// tool calls; answers a transfer with ###TRANSFER###; opens with the reason for the call; runs the user
// tools the agent's last message names (the tool's name, or the name with spaces; string arguments
// given as key="value", or an enum value the message mentions; a tool whose required argument it cannot
// find is not called); answers a conditional sentence of task_instructions ("If the agent asks/says X,
// Y") once when the message shares X's content words; gives the known_info sentences the message asks
// about (shared content words), says it does not know unknown_info; stops on "anything else"; says yes
// to a request for confirmation; else gives its next unrevealed fact, then ###STOP###. Word matching
// is not understanding: tasks whose outcome needs judgement (refusing an offer, insisting) fail with it.
// `user_tools`: the domain's user tools (empty: none).
std::unique_ptr<UserSim> MakeScriptedUser(const Task& task, std::vector<toolgen::ToolSpec> user_tools = {});

// The same scripted user as an agents::UserSimulator for the episode pipeline (simulate, rl): Start reads
// the τ² task from EpisodeTask::env_task; the pipeline runs a user's own calls with its message, so
// their results are said at the start of its next message.
// Thread-safe (sessions are independent).
UserSimulator& ScriptedUserSimulator();

struct RunLimits {
  int max_steps = 100;   // τ²'s default: messages (agent, user, tool) after the start
  int max_errors = 10;   // tool calls that returned an error
  std::optional<double> temperature;
  std::optional<int64_t> max_tokens;
};

struct RunResult {
  json trajectory = json::array();  // τ² messages, the task's message history first
  std::string termination;          // agent_stop, user_stop, max_steps, too_many_errors, agent_error, user_error
  std::string stop_detail;          // user_stop: "stop", "transfer" or "out_of_scope"
  std::string error;                // agent_error/user_error: why
  int steps = 0, tool_errors = 0;
  std::shared_ptr<const State> final_state;  // the world the episode ended in (scoring uses it, no replay)
};

// Runs one episode of `task` on a fresh state of `domain`. Error only when the task's initial state
// cannot be built (a broken task); agent and user failures end the episode with their reason.
Expected<RunResult> Run(const std::shared_ptr<const Domain>& domain, const Task& task, Policy& agent, UserSim& user,
                        const RunLimits& limits, uint64_t seed);

}  // namespace k2::agents::tau2
