// The Gym-like environment API: Env (reset/step/close over chat messages), ToolEnv (the tool-call loop
// most environments share), Scorer injection, and the registry that makes environments by name.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/json.h"
#include "core/message.h"
#include "core/status.h"
#include "toolgen/tool_spec.h"

namespace k2::agents {

struct EpisodeTask;  // agents/episode.h

// What step() returns. The observation is the environment's answer to the action: one "tool" message per
// tool call (in call order); empty when the action ended the episode.
struct StepResult {
  std::vector<Message> observation;
  double reward = 0;        // the environment's own signal (+ the injected scorer's at termination)
  bool terminated = false;  // the episode ended on its own terms (final answer, goal reached)
  bool truncated = false;   // cut short: step limit, or the environment broke (info.env_error says why)
  json info = json::object();
  json ToJson() const;
};

// Task-level reward from outside agents/ (rewards/ verifiers, rubric judges): called once at termination
// with the task given to reset() and the whole transcript. agents/ never depends on rewards/; the caller
// injects this. An error is reported in info.scorer_error and scores 0.
using Scorer = std::function<Expected<double>(const json& task, const std::vector<Message>& transcript)>;

// An environment. Observations and actions are chat messages in the OpenAI format (core/message.h).
// Thread safety: one Env is driven by one thread at a time; different Envs may step concurrently.
// Failure behaviour: bad model output (unknown tool, arguments that are not JSON or fail the schema) is
// data: it yields an error tool message, never a Status. A Status error means the caller misused the API
// (step before reset, an action that is not an assistant message) or the environment cannot continue.
class Env {
 public:
  virtual ~Env() = default;
  // Starts an episode. `task` is environment-specific JSON; returns the initial messages (system, user).
  virtual Expected<std::vector<Message>> Reset(uint64_t seed, const json& task) = 0;
  // Starts an episode of an already parsed task (the episode runner's entry point; `task` is non-null
  // and outlives the episode). Must behave exactly as Reset(seed, task->env_task); the default does
  // that. Environments that can use the parsed form override it to skip re-parsing and re-copying the
  // task JSON per episode (synthetic: task->synth, shared, never copied).
  virtual Expected<std::vector<Message>> ResetTask(uint64_t seed, const std::shared_ptr<const EpisodeTask>& task);
  // Applies one assistant message: its tool calls are executed; no tool calls = the final answer.
  virtual Expected<StepResult> Step(const Message& action) = 0;
  // Releases resources (server processes, files). Idempotent; the destructor calls it too.
  virtual void Close() {}
  // The action space: the tools the assistant may call (names unique).
  virtual std::vector<toolgen::ToolSpec> Tools() const = 0;
  // The OpenAI `tools` array for a policy prompt.
  virtual json OpenAITools() const;
  // The environment's observable state after the episode (synthetic domains: the database), used for
  // the final-state hash of a trajectory; null when the environment has no comparable state.
  virtual json State() const { return nullptr; }

  // Dual control: tools the simulated USER owns (its own device/account), called by the user, not the
  // agent. Empty for most environments.
  virtual std::vector<toolgen::ToolSpec> UserTools() const { return {}; }
  // Executes calls made by the user; the result's observation holds one "tool" message per call.
  // Same validation rules as Step. FailedPrecondition when the environment has no user tools.
  virtual Expected<StepResult> StepUser(const std::vector<ToolCall>& calls) {
    (void)calls;
    return FailedPrecondition("this environment has no user-owned tools");
  }

  void set_scorer(Scorer s) { scorer_ = std::move(s); }

 protected:
  Scorer scorer_;
};

// What a tool implementation returns: the text the model sees, optional structured content, and whether
// the tool itself failed (isError in MCP terms).
struct ToolOutcome {
  std::string text;
  std::optional<json> structured;
  bool is_error = false;
};

// Compiled tools of one environment kind, shareable between many environments (a synthetic domain's
// table is compiled once and used by every episode). Immutable; thread-safe to share.
struct ToolTable {
  std::vector<toolgen::CompiledTool> tools;
  std::map<std::string, size_t> by_name;
  json openai = json::array();  // the OpenAI `tools` array, built once
  // Compiles every schema; a malformed one or a duplicate name is an error naming `where`.
  static Expected<std::shared_ptr<const ToolTable>> Compile(std::vector<toolgen::ToolSpec> tools,
                                                            const std::string& where);
};

// The tool-call loop shared by MCP servers, synthetic domains and user environments: it checks the action,
// rejects unknown tools and invalid arguments (JSON Schema) with an error tool message, calls Invoke for
// the rest, counts steps (max_steps -> truncated), keeps the transcript and runs the scorer at the end.
class ToolEnv : public Env {
 public:
  Expected<std::vector<Message>> Reset(uint64_t seed, const json& task) final;
  Expected<std::vector<Message>> ResetTask(uint64_t seed, const std::shared_ptr<const EpisodeTask>& task) final;
  Expected<StepResult> Step(const Message& action) final;
  std::vector<toolgen::ToolSpec> Tools() const final;
  json OpenAITools() const final;
  std::vector<toolgen::ToolSpec> UserTools() const final;
  Expected<StepResult> StepUser(const std::vector<ToolCall>& calls) final;

  const std::vector<Message>& transcript() const { return transcript_; }
  int steps() const { return steps_; }

 protected:
  explicit ToolEnv(int max_steps) : max_steps_(max_steps) {}
  // Installs the action space (compiles every schema; a malformed one is an error here, not at call time).
  Status SetTools(std::vector<toolgen::ToolSpec> tools);
  void SetToolTable(std::shared_ptr<const ToolTable> table) { table_ = std::move(table); }
  // Dual control: the user's own tools (empty table = none), executed by InvokeUser.
  void SetUserToolTable(std::shared_ptr<const ToolTable> table) { user_table_ = std::move(table); }

  // Restores the initial state for `task`; returns the first messages (default: TaskMessages(task)).
  virtual Expected<std::vector<Message>> OnReset(uint64_t seed, const json& task) = 0;
  // ResetTask's hook: the same episode from the parsed task. Default: OnReset(seed, task->env_task).
  virtual Expected<std::vector<Message>> OnResetTask(uint64_t seed, const std::shared_ptr<const EpisodeTask>& task);
  // Runs one validated tool call. A non-ok Status means the environment broke (server gone): the step
  // is truncated and later steps fail until reset. Tool-level failures go in ToolOutcome::is_error.
  virtual Expected<ToolOutcome> Invoke(const std::string& tool, const json& arguments) = 0;
  // The environment's own reward when the assistant gives its final answer (default 0).
  virtual double OnFinish(const Message& final_answer) { (void)final_answer; return 0; }
  // Runs one validated call on a user-owned tool (dual control). Default: NotFound.
  virtual Expected<ToolOutcome> InvokeUser(const std::string& tool, const json& arguments) {
    (void)arguments;
    return NotFound("no user tool " + tool);
  }

  // {"system"?: string, "prompt"?: string, "messages"?: [OpenAI messages]} -> messages; other keys ignored
  // (they belong to the scorer: rubric, expected state).
  static Expected<std::vector<Message>> TaskMessages(const json& task, const std::string& default_system);

 private:
  // The bookkeeping shared by Reset and ResetTask once the first messages exist.
  void Begin(const std::vector<Message>& first);
  // The task JSON handed to the scorer: the episode task's env_task (ResetTask, shared) or task_.
  const json& ScorerTask() const;

  // Validates and runs one call against `table`; appends the tool message to r and the transcript.
  void RunCall(const ToolTable& table, const ToolCall& call, bool user, StepResult& r, int& invalid,
               int& tool_errors);

  int max_steps_;
  std::shared_ptr<const ToolTable> table_ = std::make_shared<ToolTable>();
  std::shared_ptr<const ToolTable> user_table_;
  std::vector<Message> transcript_;
  json task_;                                         // Reset's task (copied: the caller's may die)
  std::shared_ptr<const EpisodeTask> episode_task_;   // ResetTask's task (shared, not copied)
  int steps_ = 0;
  bool started_ = false;
  bool done_ = false;
  std::string broken_;  // why the environment cannot continue until reset
};

// Makes an environment from its JSON config. The config is checked strictly by the factory.
using EnvFactory = std::function<Expected<std::unique_ptr<Env>>(const json& config)>;

struct EnvInfo {
  std::string name;
  std::string description;
  json example_config = json::object();
};

// Name -> factory. Global() holds the built-in kinds (`mcp`); users Register their own at startup.
// Thread-safe.
class EnvRegistry {
 public:
  static EnvRegistry& Global();
  // AlreadyExists when `name` is taken; InvalidArgument for an empty name.
  Status Register(EnvInfo info, EnvFactory factory);
  Expected<std::unique_ptr<Env>> Make(const std::string& name, const json& config) const;
  std::vector<EnvInfo> List() const;
  bool Has(const std::string& name) const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::pair<EnvInfo, EnvFactory>> envs_;
};

}  // namespace k2::agents
