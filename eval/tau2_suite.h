// τ²-style suites: synthetic domains (policy document, database, tools executed by toolgen's executor)
// plus tasks in τ²-bench's task JSON; each task runs T trials with a simulated user through the agents
// episode runner, and each trial is scored by rewards' tool verifier: the product of the task's
// reward_basis components (DB: the state hash after replaying the gold actions on a fresh copy of the
// initial database vs the agent's final state; ENV_ASSERTION; COMMUNICATE; ACTION; NL_ASSERTION by a
// judge when one is configured), times "no forbidden action attempted"; an episode ending other than by
// the agent or the user stopping scores 0.
//
// Built-in held-out suites come from domains that training data never uses: IsHeldOutDomain (a hash of
// the domain path) splits every catalog the same way whatever its seed.
//
// Thread safety: loaders are pure; RunTau2Suite runs episodes on its own pool and calls the policy,
// user and judge from several threads (their contracts make them thread-safe).
#pragma once

#include <functional>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agents/episode.h"
#include "agents/synthetic_env.h"
#include "agents/tau2/run.h"
#include "eval/results.h"
#include "core/json.h"
#include "rewards/scrr.h"
#include "rewards/tool_verifier.h"
#include "toolgen/synth/tasks.h"

namespace k2 {
class ThreadPool;
}

namespace k2::eval {

// The split rule (toolgen::synth::IsHeldOutDomain, where the training-data generators can reach it): a
// domain path is held out iff the first 8 hex digits of SHA-256("k2gym/heldout/" + path), read as an
// integer, are divisible by 8 (about 1 domain in 8). `toolgen tasks` skips these domains unless given
// --include-heldout; eval's builtin suites use only them.
bool IsHeldOutDomain(const std::string& path);

struct Tau2Suite {
  std::string name;
  std::shared_ptr<const agents::SyntheticWorld> world;
  std::vector<toolgen::synth::Task> tasks;
  json source = json::object();  // how it was made (file, world source, builtin parameters), for the store
};

// A suite file (JSON): {"name", "kind": "tau2", "tasks": "tasks.json" (a τ²-bench task array, relative
// paths resolve against the suite file's folder), "world": {"db": STORE} | {"seed": S, "count": N},
// optional "task_tools_only": true (each domain offers only the tools the suite's gold plans call, as
// rl_run.task_tools_only)}. Every task's domain must be in the world. Errors name the file and key.
Expected<Tau2Suite> LoadTau2Suite(const json& spec, const std::string& suite_path, ThreadPool* pool);

// Built-in held-out suites: "heldout-small" (catalog seed 2027, >= 1,500 tools, 16 tasks) and "heldout"
// (seed 2027, >= 6,000 tools, 80 tasks): tasks generated round-robin over the held-out domains only.
std::vector<std::string> BuiltinSuiteNames();
Expected<Tau2Suite> BuiltinTau2Suite(const std::string& name, ThreadPool* pool);

// The evaluation spec the tool verifier reads for a task: the τ² evaluation_criteria,
// expected_state_hash = hash after replaying the gold actions on the task's initial database (an error
// when a gold action fails: the task is broken, not the agent), forbidden_actions.
Expected<json> TaskSpec(const toolgen::synth::Domain& d, const toolgen::synth::Task& t);

struct Tau2Options {
  int trials = 4;
  uint64_t seed = 0;
  int threads = 0;  // concurrent episodes (0: hardware threads)
  agents::EpisodeLimits limits;
  agents::SyntheticEnvConfig env;
  rewards::ChatFn judge;                   // NL_ASSERTION judge; empty: none
  std::string on_missing_judge = "skip";   // NL_ASSERTION without a judge: "skip" (counted) or "error"
  std::string progress_label;              // empty: no progress line
  // Streaming (eval stores each trial as it ends and resumes): on_trial gets each trial once scored (on
  // the worker thread); trials for which skip(task, trial) is true are not run, nor any after stop().
  std::function<void(const struct TrialResult&)> on_trial;
  std::function<bool(const std::string& task_id, int trial)> skip;
  std::function<bool()> stop;
};

struct TrialResult {
  std::string task_id, domain;
  int trial = 0;
  double reward = 0;
  bool success = false;  // reward == 1 (τ²'s success)
  std::string end_reason;
  std::map<std::string, double> components;
  std::string explanation;
  int turns = 0, tool_calls = 0;
  agents::Trajectory trajectory;
};

// Runs tasks x trials episodes (trial t of task i has seed EpisodeSeed(seed, task id, t)) and scores
// each as it ends. Results (the trials run: not skipped, not left by a stop) are ordered by task, then
// trial, whatever the thread count. A task spec that cannot be
// built (a broken gold plan) or a judge failure is an error for the whole run.
Expected<std::vector<TrialResult>> RunTau2Suite(const Tau2Suite& suite, agents::Policy& policy,
                                                agents::UserSimulator& user, const Tau2Options& options);


// ---- τ²-bench's own domains, run natively (agents/tau2) and scored by τ²'s rules (rewards::tau2) ----

// Scores one finished episode as τ²-bench does: replays `trajectory` (τ² messages, history included) and
// the gold actions on fresh states of `domain`, compares agent and user DB hashes, runs env assertions
// by name, then ACTION / COMMUNICATE / NL_ASSERTION (judge) over the basis. `judge` may be empty unless
// the task's basis has NL_ASSERTION with assertions (then FailedPrecondition). Gold actions that fail to
// replay are logged in info.env.gold_log, never fatal. `live` (or `live_db` + `live_user_db`): the
// episode's own final state, used instead of replaying the trajectory (agents::tau2::CheckEnvironment).
// Thread-safe when the judge is.
Expected<rewards::tau2::Tau2Evaluation> ScoreTau2Episode(const std::shared_ptr<const agents::tau2::Domain>& domain,
                                                         const agents::tau2::Task& task, const json& trajectory,
                                                         const std::string& termination, const rewards::ChatFn& judge,
                                                         const agents::tau2::State* live = nullptr,
                                                         const json* live_db = nullptr, const json* live_user_db = nullptr);

struct NativeTau2Options {
  std::string domain;      // airline | retail | mock
  std::string data_dir;    // τ²'s data/tau2/domains/<domain> folder
  std::string tasks_file = "tasks.json";
  std::string split;       // "" = every task; else a split of split_<tasks>.json (e.g. test, train)
  int max_tasks = 0;       // 0 = all (first N of the selection, for smoke runs)
  int trials = 4;
  int threads = 0;         // concurrent episodes (0: hardware threads)
  uint64_t seed = 0;
  agents::tau2::RunLimits limits;
  rewards::ChatFn judge;   // NL_ASSERTION judge (required when a selected task's basis needs it)
  std::string guidelines;  // the LLM user's simulation guidelines (τ²'s simulation_guidelines.md text)
  bool keep_trajectories = true;
  // Streaming (apps' eval --resume): trials `skip` names are not run (an earlier run holds them) and not
  // returned; `stop` is checked before each episode (interrupt: no new episodes); `on_trial` gets each
  // trial as it ends, on the worker that ran it.
  std::function<bool(const std::string& task_id, int trial)> skip;
  std::function<bool()> stop;
  std::function<void(const TrialRecord&)> on_trial;
};

// The tasks a NativeTau2Options selects (file, split, max_tasks), in file order.
Expected<std::vector<agents::tau2::Task>> SelectNativeTau2Tasks(const NativeTau2Options& o);

// Runs tasks x trials episodes of a native τ² domain: `agent` acts; `user_llm` plays the user (τ²'s LLM
// user) or, when null, the scripted offline user does. Records are ordered by task then trial; group =
// domain; components = τ²'s reward breakdown; trajectory = τ² messages. A broken task or a judge
// failure is an error for the whole run (before or after episodes, never a silent 0). Skipped trials
// and those never started after `stop` are absent from the result.
Expected<std::vector<TrialRecord>> RunNativeTau2(const NativeTau2Options& o, agents::Policy& agent, agents::Policy* user_llm);


// Registers the reward type "tau2" (idempotent): τ²-bench's evaluation of a pipeline episode on a native
// domain (the task source `tau2:DIR` gives it to every task). Spec: {"tau2": {"domain", "data_dir"},
// "tau2_task": the τ² task}; the final state's databases (Tau2Env::State "db", "user_db") are the
// predicted state (replayed from its call log "calls" when absent), the call log the trajectory. Config {"type": "tau2", "on_missing_judge": "skip" (default: NL_ASSERTION is left out of
// the basis and counted in component nl_assertion_skipped) | "error"}; no judge is wired in the
// pipeline yet. Components: the basis parts, lower-cased (db, env_assertion, action, communicate).
void RegisterTau2Reward();

// The folder of `domain` under a τ²-bench data folder: DIR/<domain> (DIR = a checkout's
// data/tau2/domains). InvalidArgument naming the flag when DIR is empty or the folder is missing.
Expected<std::string> Tau2DomainDir(const std::string& tau2_data, const std::string& domain);
// τ²'s user-simulation guidelines, read at run time: DIR/simulation_guidelines.md, else
// DIR/../user_simulator/simulation_guidelines.md (a τ²-bench checkout's layout).
Expected<std::string> ReadSimulationGuidelines(const std::string& tau2_data);

}  // namespace k2::eval
