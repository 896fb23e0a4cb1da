// The `synthetic` environment kind: a ToolEnv over one toolgen::synth domain and task (database from the
// task's initial_db, tools run by the synth executor, every call schema-checked), plus the world index.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "agents/env.h"
#include "core/config.h"
#include "toolgen/synth/agents.h"
#include "toolgen/synth/executor.h"
#include "toolgen/synth/model.h"
#include "toolgen/synth/tasks.h"

namespace k2 {
class Db;
class ThreadPool;
}  // namespace k2

namespace k2::sandbox {
class Sandbox;
}

namespace k2::agents {

class PythonTool;  // agents/python_tool.h

// A synthetic agent (toolgen::synth::Agent, `k2gym toolgen agents`) made runnable: its system prompt and
// its toolset (a role's share of its domain's tools, plus cross-domain and distractor tools of other
// domains) compiled once. An episode whose EpisodeTask::agent is set offers exactly these tools instead
// of the domain's full set. Foreign tools (other domains) keep their name unless it collides with an
// earlier one, then they are exposed as "<domain's last path segment>__<name>"; a call of one returns a
// tool error ("unavailable": that service holds no records for this conversation). Immutable.
struct AgentProfile {
  std::string id, domain, role;
  std::string system_prompt;
  std::shared_ptr<const ToolTable> tools;
  std::set<std::string> own;                                            // exposed names of own-domain tools
  std::map<std::string, std::pair<std::string, std::string>> foreign;   // exposed name -> {domain path, tool}
  // Whether every assistant gold action of `t` names one of the agent's own tools (an oracle can solve it).
  bool Covers(const toolgen::synth::Task& t) const;
};

// The domains tasks refer to (by path), with each domain's compiled tool table built once on first use.
// Thread safety: immutable domains; Tools() is internally locked. Share one world between all envs.
class SyntheticWorld {
 public:
  explicit SyntheticWorld(std::vector<std::shared_ptr<const toolgen::synth::Domain>> domains);
  // Rebuilds the catalog the last `k2gym toolgen synth` stored in `db` (generation is deterministic).
  // NotFound when the store has no catalog.
  static Expected<std::shared_ptr<const SyntheticWorld>> FromStore(Db* db, ThreadPool* pool);
  // Synthesizes a catalog directly (tests, benches): Synthesize(seed, min_tools).
  static std::shared_ptr<const SyntheticWorld> Generate(uint64_t seed, int64_t min_tools, ThreadPool* pool);

  std::shared_ptr<const toolgen::synth::Domain> Find(const std::string& path) const;
  const std::vector<std::shared_ptr<const toolgen::synth::Domain>>& domains() const { return domains_; }
  // The domain's tools (ToToolSpec of every op), compiled once. NotFound for an unknown domain.
  Expected<std::shared_ptr<const ToolTable>> Tools(const std::string& path, bool with_python = false) const;
  // Compiles an agent's toolset. InvalidArgument naming the agent and tool when a "<path>::<tool>" entry
  // names an unknown domain or tool (agents from another catalog).
  Expected<std::shared_ptr<const AgentProfile>> Profile(const toolgen::synth::Agent& agent) const;

 private:
  std::vector<std::shared_ptr<const toolgen::synth::Domain>> domains_;
  std::map<std::string, std::shared_ptr<const toolgen::synth::Domain>> by_path_;
  mutable std::mutex mu_;
  mutable std::map<std::string, std::shared_ptr<const ToolTable>> tables_;
};

// The world with each domain's ops cut to those some task's gold plan calls (domains without tasks keep
// all theirs): the tool declarations in every prompt shrink to what the tasks need. `rl_run.task_tools_only`
// and `simulate --task-tools-only` (SFT data and RL prompts must see the same tools).
std::shared_ptr<const SyntheticWorld> TaskToolsOnly(const SyntheticWorld& world,
                                                    const std::vector<std::shared_ptr<const EpisodeTask>>& tasks);
std::shared_ptr<const SyntheticWorld> TaskToolsOnly(const SyntheticWorld& world,
                                                    const std::vector<toolgen::synth::Task>& tasks);

// The agent's system prompt for a domain: role, today's date from the database, the policy rules.
std::string DomainSystemPrompt(const toolgen::synth::Domain& d, const json& db);

// Run-config section "synthetic_env" (registered in apps/cmd_agents.cc); also the `synthetic` kind's
// config object (plus "db": the store path whose catalog to use, or "seed"+"count" to synthesize one).
struct SyntheticEnvConfig {
  double transient_rate = 0;  // tool-simulator fault rates (the executor's own seeded stream)
  double timeout_rate = 0;
  int max_steps = 1000;       // ToolEnv step limit (the episode runner has its own budgets)
  bool python = false;        // offer the sandboxed `python` tool (needs a sandbox)
  double python_wall_s = 5;   // limits of one `python` run
  int64_t python_memory_mb = 256;
  template <class V>
  void Visit(V& v) {
    v("transient_rate", transient_rate, "probability that a tool call fails with a retryable 'transient' error",
      {.min = 0, .max = 1});
    v("timeout_rate", timeout_rate, "probability that a tool call fails with 'timeout' (nothing changed)",
      {.min = 0, .max = 1});
    v("max_steps", max_steps, "tool-call steps after which the environment truncates", {.min = 1, .max = 1000000});
    v("python", python, "offer the sandboxed `python` code-execution tool to the agent");
    v("python_wall_s", python_wall_s, "wall/CPU-time limit of one `python` tool run (s)", {.min = 0.05, .max = 600});
    v("python_memory_mb", python_memory_mb, "memory limit of one `python` tool run (MiB)", {.min = 16, .max = 65536});
  }
};

// Tasks of the domain kDualControlDomain (agents/dual_control.h) run the in-tree dual-control telecom
// domain instead of a catalog domain: the user owns tools (UserTools/StepUser) and State() covers both
// the account and the user's phone.
// Reset(seed, task): `task` is a tau2 task JSON as `k2gym toolgen tasks --out` writes it (or the
// {"tau2": {...}} wrapper). The first messages are the system prompt only: the simulated user speaks
// first. The tool-simulator faults are drawn from `seed`. State() is the current database.
// ResetTask (the episode runner's path) uses the EpisodeTask's parsed `synth` task as is (shared, not
// re-parsed; the database is copied once, into the executor) and falls back to parsing env_task when
// the task has no `synth`; both paths give the same episode (tested).
// Thread safety: as Env (one thread at a time).
class SyntheticEnv : public ToolEnv {
 public:
  // `sandbox` (not owned, may be null) runs the `python` tool when config.python is set; InvalidArgument
  // at reset when python is enabled without one.
  SyntheticEnv(std::shared_ptr<const SyntheticWorld> world, SyntheticEnvConfig config, sandbox::Sandbox* sandbox = nullptr);
  ~SyntheticEnv() override;
  json State() const override;
  // The task of the current episode (null before the first reset).
  const toolgen::synth::Task* task() const { return task_.get(); }

 protected:
  Expected<std::vector<Message>> OnReset(uint64_t seed, const json& task) override;
  Expected<std::vector<Message>> OnResetTask(uint64_t seed, const std::shared_ptr<const EpisodeTask>& task) override;
  Expected<ToolOutcome> Invoke(const std::string& tool, const json& arguments) override;
  // Dual-control tasks only (domain kDualControlDomain): the user's phone tools.
  Expected<ToolOutcome> InvokeUser(const std::string& tool, const json& arguments) override;

 private:
  std::shared_ptr<const SyntheticWorld> world_;
  SyntheticEnvConfig config_;
  // Starts the episode of a parsed task (both reset paths end here).
  Expected<std::vector<Message>> Start(uint64_t seed, std::shared_ptr<const toolgen::synth::Task> task);

  std::shared_ptr<const toolgen::synth::Task> task_;  // shared with the EpisodeTask on ResetTask
  std::unique_ptr<toolgen::synth::ToolSimulator> sim_;
  std::unique_ptr<PythonTool> python_;
  // The episode's agent toolset (EpisodeTask::agent), held while it runs; null = the domain's tools.
  std::shared_ptr<const AgentProfile> agent_hold_;
  const std::map<std::string, std::pair<std::string, std::string>>* foreign_ = nullptr;
  bool dual_ = false;        // the current task is a dual-control task (agents/dual_control.h)
  json dual_db_ = nullptr;   // its shared agent+user state
};

// Registers the `synthetic` kind. Its config: SyntheticEnvConfig keys plus either "db": STORE (rebuild
// the stored catalog) or "seed"/"count" (synthesize). Worlds are cached per source within the process;
// with "python": true a process-wide sandbox (default SandboxConfig) is started on first use.
Status RegisterSyntheticEnv(EnvRegistry& registry);

}  // namespace k2::agents
