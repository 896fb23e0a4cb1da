// The RL loop: each iteration samples tasks, collects K rollouts per task (episodes through the
// engine policy on the same in-memory model that is trained), scores them (the environment's task
// reward plus the budget penalty), takes one policy update (K2 or GRPO, PTX mixed in with lambda), logs
// the iteration's metrics and checkpoints. Resume continues at the first iteration not checkpointed.
//
// Crash consistency (engine/checkpoint.h, shared with pretrain and SFT): an iteration's metric rows are
// committed (metrics.csv fsynced, store transaction) before its checkpoint is published; a resume
// recovers an interrupted save and cuts both back to what the checkpoint committed, so a run killed at
// any point (kill -9) and resumed logs each iteration exactly once, in the same store run. With deterministic rollouts (one episode at a time, seeded sampling) the resumed metric
// sequence is identical to an uninterrupted run's.
// One caller thread drives the loop; `collect` may run episodes concurrently. Failures are Status.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agents/episode.h"
#include "agents/trajectory.h"
#include "core/config.h"
#include "core/json.h"
#include "core/rng.h"
#include "core/status.h"
#include "core/store.h"
#include "engine/dist/comm.h"
#include "engine/engine.h"
#include "rewards/budget.h"
#include "rl/schedule.h"
#include "rl/update.h"
#include "sft/sft.h"

namespace k2::rl {

struct PtxConfig {
  std::string data;                  // dialog JSON Lines (sft::LoadDialogs); "" = no PTX
  ScheduleConfig coef{"constant", 0.0, 0.0, 1};  // lambda per iteration
  int64_t rows = 4;                  // packed rows mixed into each update (cycled through the data)
  template <class V> void Visit(V& v) {
    v("data", data, "PTX dialogs (JSON Lines, as for sft); empty = no PTX");
    v("coef", coef, "PTX coefficient lambda over iterations");
    v("rows", rows, "packed PTX rows per update", {.min = 1});
  }
};

// Partial rollout (Kimi K1.5/K2): an iteration generates at most about `token_budget` policy tokens
// over all its episodes; an episode still running when its share is spent is paused (its generator
// session and KV pages, environment and user stay in memory) and resumed in the next iteration. A
// group (the K rollouts of one prompt) enters an update once all K have ended; each trajectory records
// its staleness. Resumed episodes keep the temperature they started with and their cached KV from
// the weights it was computed with (that is what partial rollout trades for throughput).
struct PartialRolloutConfig {
  int64_t token_budget = 0;  // policy tokens per iteration, all episodes together; 0 = off
  int64_t max_carried = 0;   // no new groups start while more episodes than this are paused
                             // (0 = tasks_per_iteration * rollouts_per_task)
  template <class V> void Visit(V& v) {
    v("token_budget", token_budget, "policy tokens generated per iteration before episodes pause (0 = off)", {.min = 0});
    v("max_carried", max_carried, "no new groups while more episodes than this are paused (0 = one iteration's worth)",
      {.min = 0});
  }
};

struct RlConfig {
  int64_t iterations = 20;
  int64_t tasks_per_iteration = 4;   // prompts (groups) per iteration
  int64_t rollouts_per_task = 4;     // K
  double success_threshold = 1.0;    // a rollout succeeds when its task reward >= this
  std::string task_type = "tool";    // the budget's task type
  ScheduleConfig temperature{"linear", 1.0, 0.7, 20};
  PtxConfig ptx;
  PartialRolloutConfig partial_rollout;
  rewards::BudgetConfig budget;
  UpdateConfig update;
  engine::OptimizerConfig optimizer = [] {
    engine::OptimizerConfig o;
    o.lr = 5e-4;
    o.schedule = "constant";
    o.weight_decay = 0.0;
    return o;
  }();
  int64_t checkpoint_every = 1;      // iterations
  int64_t threads = 0;               // compute threads (0 = default)
  engine::dist::DistConfig dist;     // data parallelism (WORLD_SIZE > 1)
  template <class V> void Visit(V& v) {
    v("iterations", iterations, "RL iterations", {.min = 1});
    v("tasks_per_iteration", tasks_per_iteration, "tasks (groups) sampled per iteration", {.min = 1});
    v("rollouts_per_task", rollouts_per_task, "K rollouts per task", {.min = 1});
    v("success_threshold", success_threshold, "task reward counted as success");
    v("task_type", task_type, "task type looked up in the budget");
    v("temperature", temperature, "sampling temperature schedule (K2: decay over training)");
    v("ptx", ptx, "PTX loss: supervised rows mixed into every update");
    v("partial_rollout", partial_rollout, "pause episodes past an iteration's token budget, resume them next iteration");
    v("budget", budget, "per-sample token budget and its penalty");
    v("update", update, "policy objective");
    v("optimizer", optimizer, "MuonClip settings of the RL updates");
    v("checkpoint_every", checkpoint_every, "checkpoint period in iterations", {.min = 1});
    v("threads", threads, "compute threads (0 = default)", {.min = 0});
    v("dist", dist, "data parallelism (active when WORLD_SIZE > 1; docs/distributed.md)");
  }
  Status Validate() const;
};

// Runs the episodes of `jobs` with sampling temperature `temperature` and episode seed base `seed`;
// trajectory i belongs to jobs[i] and must carry tokens/policy_mask/policy_logprobs (engine policy).
using CollectFn = std::function<Expected<std::vector<agents::Trajectory>>(
    const std::vector<agents::EpisodeJob>& jobs, double temperature, uint64_t seed)>;

// One episode of a partial-rollout iteration: a new one, or (after a resume) one that was paused at
// the checkpoint and restarts from its beginning with its original seed and temperature.
struct PartialJob {
  agents::EpisodeJob job;
  int64_t group = 0;              // unique over the run: iteration * tasks_per_iteration + g
  int64_t started_iteration = 0;
  uint64_t seed = 0;              // episode seed base (the iteration's)
  double temperature = 1.0;
  json ToJson() const;
  static Expected<PartialJob> FromJson(const json& j, const std::vector<std::shared_ptr<const agents::EpisodeTask>>& tasks,
                                       const std::string& where);
};

struct PartialStep {
  std::vector<agents::Trajectory> done;  // episodes that ended in this call (provenance: rl_group,
                                         // rl_started_iteration, rl_staleness, rl_weight_versions)
  std::vector<int64_t> groups;           // done[i]'s group
  std::vector<PartialJob> carried;       // episodes still paused after this call, in start order
  int64_t started = 0, resumed = 0, paused = 0, policy_tokens = 0;
};

// Starts `jobs`, advances them and every episode paused earlier by an equal share of `token_budget`
// (policy tokens) at iteration `iteration`; returns the ended ones. The collector owns paused episodes.
using PartialCollectFn = std::function<Expected<PartialStep>(const std::vector<PartialJob>& jobs, int64_t iteration,
                                                             int64_t token_budget)>;

struct RlRun {
  std::string out_dir;               // checkpoint/, metrics.csv, trajectories/iter_N.jsonl
  bool resume = false;
  bool overwrite = false;            // a fresh run may replace another run's files in out_dir
  uint64_t seed = 0;
  Db* db = nullptr;                  // metrics rows (may be null: CSV only)
  std::string run_config;            // JSON stored with the run row
  int64_t stop_after = 0;            // leave after this many iterations of this call (tests); 0 = all
  std::function<void(int64_t iteration, const std::map<std::string, double>& metrics)> on_iteration;
  // Required when cfg.partial_rollout.token_budget > 0 (then `collect` is not used). A checkpoint keeps
  // the paused episodes' jobs and the ended members of unfinished groups; a resume restarts the paused
  // ones from their beginning (deterministic, but not the continuation the killed run would have made).
  PartialCollectFn partial_collect;
  // Task sampling (a weighted mixture of sources): the index into `tasks` of one group's task, drawn
  // from the iteration's stream. Unset: uniform.
  std::function<size_t(Rng& rng)> sample_task;
  // Called once per iteration after the rollouts are collected and scored, before they become update
  // rows (the weights are still those that generated them): may rescore them (SCRR with the policy as its
  // own critic) and returns extra metrics for the iteration. groups[i] is trajs[i]'s group.
  std::function<Expected<std::map<std::string, double>>(int64_t iteration, std::vector<agents::Trajectory>& trajs,
                                                        const std::vector<int64_t>& groups)>
      after_collect;
  // Data parallelism: null = from the launcher's environment (a world of 1 is plain RL). Each rank rolls
  // out its contiguous share of the iteration's groups; the trajectories are gathered on every rank in
  // group order; the update's micro-batches are split over the ranks and its gradients all-reduced
  // (PolicyUpdate); rank 0 alone runs after_collect (its result is broadcast), calls on_iteration and
  // writes metrics, store rows, trajectory files and checkpoints. Partial rollouts: each rank advances
  // its own paused episodes with token_budget / W; ended ones are gathered (docs/distributed.md).
  engine::dist::Communicator* comm = nullptr;
};

struct RlResult {
  int64_t run = 0;                   // store run id (0 without a db)
  int64_t iterations_done = 0;       // in total, including earlier calls
  bool interrupted = false;          // SIGINT/SIGTERM (core/interrupt.h): stopped after an iteration, saved
  std::vector<std::map<std::string, double>> history;  // per iteration
};

// The tasks the loop samples from (uniformly with replacement, seeded per iteration, unless
// run.sample_task draws). Trajectories with provenance.source also log per-source metrics
// "source.<name>.reward_mean", ".success_rate", ".response_length", ".episodes".
Expected<RlResult> RunRl(engine::Model<float>* model, const text::Tokenizer& tok, const RlConfig& cfg,
                         const std::vector<std::shared_ptr<const agents::EpisodeTask>>& tasks,
                         const CollectFn& collect, const RlRun& run);

// Trajectory -> Rollout: the engine token stream, the policy mask cut at the budget (kept_tokens of
// generated tokens) and the reward with the budget penalty. Fills `decision`.
Expected<Rollout> TrajectoryToRollout(const agents::Trajectory& t, const rewards::BudgetConfig& budget,
                                      const std::string& task_type, int64_t group,
                                      rewards::BudgetDecision* decision);

}  // namespace k2::rl
