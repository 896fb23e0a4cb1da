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

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agents/episode.h"
#include "agents/synthetic_env.h"
#include "core/json.h"
#include "rewards/scrr.h"
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
// them. Results are ordered by task, then trial, whatever the thread count. A task spec that cannot be
// built (a broken gold plan) or a judge failure is an error for the whole run.
Expected<std::vector<TrialResult>> RunTau2Suite(const Tau2Suite& suite, agents::Policy& policy,
                                                agents::UserSimulator& user, const Tau2Options& options);

}  // namespace k2::eval
