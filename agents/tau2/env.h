// τ²-bench domains as k2gym environments (agents::Env over a tau2::State), the τ² task's initial state
// applied at reset (initialization data, initialization actions, message history), trajectory replay,
// and τ²'s environment check (predicted vs gold agent+user DB hashes, env assertions by name).
//
// Trajectories here are τ²-bench's message lists (JSON): {"role": "assistant"|"user"|"tool"|"system",
// "content", "tool_calls": [{"id", "name", "arguments": {...}, "requestor"}], "id" (tool messages: the
// call answered), "requestor", "error"}; τ²-bench's saved simulation messages have this form.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "agents/env.h"
#include "agents/tau2/domain.h"
#include "agents/tau2/task.h"

namespace k2::agents::tau2 {

// τ²'s Environment.set_state for `task` on a fresh state: initialization_data merged into the agent/user
// databases, initialization_actions run (an action that fails is an error: the task is broken), then the
// write tool calls of message_history replayed. `log` receives replay mismatches (non-strict replay).
Expected<State> InitialState(const std::shared_ptr<const Domain>& domain, const Task& task, std::vector<std::string>* log);

// Replays the write tool calls of `trajectory` (τ² messages) on `state`: unknown tools are skipped (a
// hallucinated call changed nothing live); a result that differs from the recorded tool message is
// logged, not fatal (τ²'s strict=False).
void ReplayTrajectory(State& state, const json& trajectory, std::vector<std::string>* log);

// The agent's system prompt: τ²'s agent instructions followed by the domain policy.
std::string AgentSystemPrompt(const Domain& domain);
// τ²'s default first agent message when the task has no message history.
inline constexpr const char* kAgentGreeting = "Hi! How can I help you today?";

// τ²'s EnvironmentEvaluator outcome.
struct EnvCheck {
  bool db_match = true;
  std::string note;                   // e.g. "No expected actions or env assertions"
  std::vector<json> assertions;       // per env assertion: {"func_name", "arguments", "met", "error"?}
  bool all_assertions_met = true;
  std::vector<std::string> gold_log;  // gold actions that failed to replay (logged, as τ² does)
  std::vector<std::string> replay_log;
};
// Replays `trajectory` (which must include the task's message history, as τ²'s full trajectory does) on
// a fresh state and the gold actions on another; compares agent and user DB hashes and runs the env
// assertions on the predicted state. Error only when the task's own initial state cannot be built.
// `live`: the state the episode itself ended in (its calls made live, from the task's initial state):
// it stands for the replay, which would rebuild the same state (the tools are deterministic), saving a
// copy of the database and the replay; env assertions then run on a copy of it (they may sync).
Expected<EnvCheck> CheckEnvironment(const std::shared_ptr<const Domain>& domain, const Task& task, const json& trajectory,
                                    const State* live = nullptr);
// The same with the final databases given as JSON (Tau2Env::State()'s "db" and "user_db").
Expected<EnvCheck> CheckEnvironment(const std::shared_ptr<const Domain>& domain, const Task& task, const json& trajectory,
                                    const json& live_db, const json& live_user_db);

// The task's message history converted to chat messages (what the agent sees at reset).
std::vector<Message> HistoryMessages(const Task& task);
// τ² message <-> chat message. ToolCall ids are kept; arguments are the compact JSON of the object.
Message ToChat(const json& tau2_message);

// The environment: reset takes a normalised τ² task JSON (Task::data); the first messages are the agent
// system prompt plus the message history, or the agent's greeting when there is none (the agent greets
// first in τ²). Agent calls run as "assistant", user calls (StepUser) as "user". State() is
// {"db": agent database, "user_db": user database or null, "calls": every call of the episode in order,
// [{"requestor", "name", "arguments", "content", "error"}]} (τ² scoring replays them; the agent's
// transcript does not show the user's calls).
class Tau2Env : public ToolEnv {
 public:
  Tau2Env(std::shared_ptr<const Domain> domain, int max_steps);
  const tau2::State& world() const { return *state_; }
  json State() const override;

 protected:
  Expected<std::vector<Message>> OnReset(uint64_t seed, const json& task) override;
  Expected<ToolOutcome> Invoke(const std::string& tool, const json& arguments) override;
  Expected<ToolOutcome> InvokeUser(const std::string& tool, const json& arguments) override;

 private:
  std::shared_ptr<const Domain> domain_;
  std::unique_ptr<tau2::State> state_;
  json calls_ = json::array();
};

// The domain loaded from `data_dir`, once per process per (name, folder), shared by every caller.
Expected<std::shared_ptr<const Domain>> SharedDomain(const std::string& name, const std::string& data_dir);

// Factory for an env-kind registry: the domain loaded from `data_dir` (<checkout>/data/tau2/domains/<d>).
Expected<std::unique_ptr<Env>> MakeTau2Env(const std::string& domain, const std::string& data_dir, int max_steps = 200);

// The environment kind `tau2` in `registry`: config {"domain": "airline" | "retail" | "telecom" | "mock", "data_dir":
// τ²'s folder of that domain (db.json, policy.md, tasks.json), "max_steps"?: 200}; reset takes a τ² task.
// A domain is loaded once per (name, folder) and shared by every environment made from it.
Status RegisterTau2Env(EnvRegistry& registry);

}  // namespace k2::agents::tau2
