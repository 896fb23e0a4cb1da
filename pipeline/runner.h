// The one episode pipeline: Tasks (pipeline/task_source.h) run through the agents' episode loop — an
// environment made per episode from the task's kind and config, the task's user, its limits — and every
// trajectory is scored by the rewards module from the task's reward composition, nowhere else.
// `simulate` (filter + export), `eval` (tables + store) and `rl` (engine rollouts) are its consumers.
//
// Thread safety: Pipeline is immutable after Create apart from its reward cache (locked); Hooks() may
// be used by several threads at once when the policy, users and grader are thread-safe.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "agents/episode.h"
#include "agents/policy.h"
#include "agents/user.h"
#include "pipeline/task_source.h"
#include "rewards/reward.h"
#include "rewards/scrr.h"

namespace k2::pipeline {

// Per-episode hooks of a runner: what RunJobs (and rl's engine rollouts) need to run any task.
struct EpisodeHooks {
  std::function<Expected<std::unique_ptr<agents::Env>>(const agents::EpisodeTask&)> env;  // a fresh env
  std::function<agents::UserSimulator*(const agents::EpisodeTask&)> user;                 // null = none
  std::function<agents::EpisodeLimits(const agents::EpisodeTask&, const agents::EpisodeLimits&)> limits;
  std::function<void(agents::Trajectory&)> score;  // sets reward, components, task_success
};

struct RunJobsOptions {
  int threads = 1;                 // concurrent episodes (0: hardware threads)
  uint64_t seed = 0;
  agents::EpisodeLimits limits;    // the run's limits (hooks.limits may adjust per task)
  std::string progress_label;      // empty: no progress line
  // Called on the worker thread once an episode is scored (e.g. store it); must be thread-safe.
  std::function<void(agents::Trajectory&)> on_done;
  // As agents::RunOptions: skipped jobs and jobs not started before stop() are not run (end_reason empty).
  std::function<bool(size_t)> skip;
  std::function<bool()> stop;
};

// Runs every job (but those skipped or not started before a stop) with a fresh environment per episode
// (closed after it); trajectory i belongs to jobs[i] whatever the thread count. An environment that
// cannot be made is that episode's env_error (scored like any other episode). Deterministic given
// deterministic policy, users and environments.
std::vector<agents::Trajectory> RunJobs(const std::vector<agents::EpisodeJob>& jobs, const EpisodeHooks& hooks,
                                        agents::Policy& policy, const RunJobsOptions& options);

struct PipelineOptions {
  agents::UserSimulator* scripted_user = nullptr;  // for tasks with user "scripted" (synthetic scenarios)
  agents::UserSimulator* llm_user = nullptr;       // for tasks with user "llm"
  rewards::ChatFn judge;                           // the judge endpoint: NL assertions, judge grades
  double success_threshold = 1.0;                  // task_success = reward >= this
};

class Pipeline {
 public:
  // Checks every task's reward config (an error names the task) and environment kind.
  static Expected<std::unique_ptr<Pipeline>> Create(std::shared_ptr<const TaskSet> tasks, PipelineOptions options);

  const TaskSet& tasks() const { return *tasks_; }
  const Task* Find(const std::string& id) const;
  // Jobs over task indices, `trials` each (trial t of every task, task-major).
  std::vector<agents::EpisodeJob> Jobs(const std::vector<size_t>& indices, int trials) const;
  EpisodeHooks Hooks() const;

  // Scores one trajectory of one of these tasks with its reward: t.reward = value; components under
  // "reward/<name>"; task_success; provenance source, task_type, reward (value, explanation). A scoring
  // failure (a bad spec, a sandbox or judge failure) scores 0 and is recorded as provenance.score_error
  // and component score_error = 1; the returned status says so too.
  Status Score(agents::Trajectory& t) const;
  // The reward of a task (cached by config).
  Expected<const rewards::Reward*> RewardOf(const Task& task) const;
  // The ScoreInput of a trajectory of a task (what the reward sees).
  rewards::ScoreInput Input(const agents::Trajectory& t, const Task& task) const;

 private:
  Pipeline() = default;
  std::shared_ptr<const TaskSet> tasks_;
  PipelineOptions opt_;
  std::map<std::string, size_t> by_id_;
  mutable std::mutex mu_;
  mutable std::map<std::string, std::unique_ptr<rewards::Reward>> rewards_;  // canonical config -> reward
};

// The `gold` policy: replays a task's reference turns (Task::gold; for synthetic tasks without any,
// the oracle with no imperfections). `perturbed`: the same path broken on purpose — the last
// tool-calling turn dropped and the final reply replaced by "(no answer)" (synthetic tasks: the oracle
// executing the forbidden action on refusal tasks, "(no answer)" at once on the others) — for tests
// that a reward tells the two apart. Thread-safe.
std::unique_ptr<agents::Policy> MakeGoldPolicy(std::shared_ptr<const TaskSet> tasks, bool perturbed);

}  // namespace k2::pipeline
