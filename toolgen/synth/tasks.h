// Tasks with rubrics over synthetic domains: an initial database, a user scenario (persona, reason,
// known info, info revealed only when asked), the gold action sequence, the expected final-state hash,
// information to communicate, forbidden (policy-violating) actions and a difficulty; exported to and
// imported from the tau2-bench task JSON layout without loss.
//
// Generation executes every gold action (executor.h) and checks it against the independent policy
// reference: a plan with a policy violation is never emitted. Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/json.h"
#include "core/status.h"
#include "toolgen/synth/model.h"

namespace k2 {
class ThreadPool;
}

namespace k2::toolgen::synth {

struct Action {
  std::string action_id;
  std::string requestor = "assistant";
  std::string name;
  json arguments = json::object();
  std::vector<std::string> compare_args;
  // Forbidden actions only: how many gold actions precede the moment the user asks for it (the
  // state on which it violates a policy). -1 for gold actions.
  int after_actions = -1;
  bool operator==(const Action&) const = default;
};

struct Task {
  std::string id;
  std::string domain;  // domain path
  std::string purpose;
  std::vector<std::string> relevant_policies;
  std::string persona, reason_for_call, known_info, unknown_info, task_instructions;
  json initial_db;
  std::vector<Action> actions;    // gold, in order
  std::vector<Action> forbidden;  // each violates a policy on the state where the user asks for it
  json env_assertions = json::array();
  std::vector<std::string> communicate_info;
  std::vector<std::string> nl_assertions;
  std::vector<std::string> reward_basis = {"DB", "COMMUNICATE"};
  std::string expected_hash;  // StateHash of the database after the gold actions
  std::vector<std::string> scenarios;  // sub-goal kinds: "book", "cancel", "refuse_refund", ...
  int steps = 0;       // state-changing gold actions
  int difficulty = 0;  // 1 (one read-only or write step) .. ~10
  bool clarification = false;  // the user withholds an id the agent must look up
  bool refusal = false;        // part of the request must be refused
  bool operator==(const Task&) const = default;
};

// The held-out split, shared by every training-data generator and by eval: a domain path is held out
// iff the first 8 hex digits of SHA-256("k2gym/heldout/" + path), read as an integer, are divisible by 8
// (about 1 domain in 8, the same whatever the catalog seed or size). Training data (`toolgen tasks`,
// simulate, SFT/RL task lists) skips these domains by default; eval's built-in suites use only them.
bool IsHeldOutDomain(const std::string& path);

// `domains` without the held-out ones; `excluded` (optional) receives how many were dropped.
std::vector<Domain> TrainingDomains(const std::vector<Domain>& domains, int64_t* excluded = nullptr);

// `tasks` without those on held-out domains; `excluded` (optional) receives how many were dropped.
std::vector<Task> TrainingTasks(std::vector<Task> tasks, int64_t* excluded = nullptr);

// What tasks may ask for. Small settings (one goal of a few kinds) make the easy tasks a tiny policy
// can learn in minutes (the quickstart); the defaults draw from every kind, up to three goals.
struct TaskOptions {
  int max_goals = 3;                // goals per task: 1 + Below(max_goals)
  std::vector<std::string> kinds;   // allowed sub-goal kinds (empty = all of TaskKinds())
};
const std::vector<std::string>& TaskKinds();

// One task from the domain; `seed` picks database, actor and sub-goals. NotFound when no sub-goal is
// feasible on the sampled database (callers retry with another seed).
Expected<Task> GenerateTask(const Domain& d, uint64_t seed, const std::string& id, const TaskOptions& opt = {});

// `count` tasks spread round-robin over `domains`, in parallel when a pool is given; deterministic
// for a seed whatever the pool size.
std::vector<Task> GenerateTasks(const std::vector<Domain>& domains, uint64_t seed, int64_t count, ThreadPool* pool,
                                const TaskOptions& opt = {});

// Applies the gold actions to a copy of the initial database; every one must succeed. Returns the
// final state hash, or FailedPrecondition naming the first failing action.
Expected<std::string> ReplayHash(const Domain& d, const Task& t);

// Full rubric check: replay hash == expected, no gold action violates a policy (reference check),
// every forbidden action does, env assertions hold, invariants hold before and after.
Status VerifyTask(const Domain& d, const Task& t);

// Evaluates one env assertion {"func_name":"field_equals","arguments":{collection,id,field,value},
// "assert_value":bool} on `db`.
Expected<bool> CheckEnvAssertion(const json& db, const json& assertion);

// tau2-bench layout: {id, description{purpose, relevant_policies, notes}, user_scenario{persona,
// instructions{domain, reason_for_call, known_info, unknown_info, task_instructions}}, initial_state{
// initialization_data{agent_data, user_data}, initialization_actions, message_history},
// evaluation_criteria{actions, env_assertions, communicate_info, nl_assertions, reward_basis}}.
// Fields tau2 has no slot for (domain path, forbidden actions, hash, difficulty) travel as JSON in
// description.notes after the marker "k2gym:".
json ToTau2(const Task& t);
Expected<Task> TaskFromTau2(const json& j, const std::string& where);

}  // namespace k2::toolgen::synth
