// Rollouts with the engine policy: one Generator + EnginePolicy over a live Model<float> (the one the RL
// loop trains), episodes run by the one episode pipeline (pipeline/runner.h: an environment per episode,
// the task's user, the rewards module as scorer). Synthetic tool tasks (the overload with a world) use
// SyntheticEnv, the scripted user and the "judge" reward. Used by `k2gym rl` and the RL tests.
//
// Partial rollout (Advance): paused episodes (EpisodeRun + their SyntheticEnv + generator session with
// its KV pages) live here between calls; the model IS updated between calls and a resumed episode
// continues on KV computed with the weights of the iterations it ran in (its staleness is recorded).
//
// Thread safety: Run/Advance are called by one thread at a time (episodes run concurrently inside).
// The model must not be updated while they run. Run ends all generator sessions before returning
// unless episodes are paused.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agents/engine_policy.h"
#include "agents/episode.h"
#include "agents/scripted_user.h"
#include "agents/synthetic_env.h"
#include "core/config.h"
#include "core/thread_pool.h"
#include "engine/gen/generator.h"
#include "pipeline/runner.h"
#include "rewards/judge.h"
#include "rl/loop.h"

namespace k2::rl {

struct RolloutConfig {
  int64_t episode_threads = 1;       // concurrent episodes (1 = deterministic rollouts)
  int64_t max_batch_sequences = 16;  // generator decode rows per step
  std::string reward = "judge";      // judge: keep 1 / reject 0; judge_mean: mean of the judge's components
  agents::EpisodeLimits episode = [] {
    agents::EpisodeLimits l;
    l.max_turns = 12;
    l.max_tokens = 1536;
    l.max_tokens_per_turn = 160;
    return l;
  }();
  rewards::JudgeConfig judge;
  template <class V> void Visit(V& v) {
    v("episode_threads", episode_threads, "concurrent episodes (1 = deterministic)", {.min = 1});
    v("max_batch_sequences", max_batch_sequences, "generator sequences decoded per step", {.min = 1});
    v("reward", reward, "judge: 1 when the judge keeps the episode, else 0; judge_mean: mean of its components",
      {.choices = {"judge", "judge_mean"}});
    v("episode", episode, "episode limits (the RL loop sets the temperature)");
    v("judge", judge, "judge checks behind the reward");
  }
};

class EngineRollouts {
 public:
  // `model` and `tok` are not owned and must outlive this object.
  static Expected<std::unique_ptr<EngineRollouts>> Create(engine::Model<float>* model, const text::Tokenizer* tok,
                                                          std::shared_ptr<const agents::SyntheticWorld> world,
                                                          const std::vector<std::shared_ptr<const agents::EpisodeTask>>& tasks,
                                                          const RolloutConfig& cfg);
  // Any tasks: environments, users, per-task limits and the scorer come from `hooks` (a Pipeline's).
  // The scorer must set t.reward and reward_components["task_success"].
  static Expected<std::unique_ptr<EngineRollouts>> Create(engine::Model<float>* model, const text::Tokenizer* tok,
                                                          pipeline::EpisodeHooks hooks, const RolloutConfig& cfg);
  // The policy being trained, e.g. as its own SCRR critic between updates (not while Run/Advance run).
  agents::Policy& policy() { return *policy_; }
  // Trajectory i belongs to jobs[i]; reward per cfg.reward; "task_success" component = judge keep.
  std::vector<agents::Trajectory> Run(const std::vector<agents::EpisodeJob>& jobs, double temperature, uint64_t seed);

  // Partial rollout (rl::PartialCollectFn): starts `jobs` (each with its seed and temperature), then
  // advances every live episode (paused ones first, in start order) by ceil(token_budget / live)
  // policy tokens (checked after each policy turn, so a turn may overshoot); token_budget <= 0 runs
  // each to its end. Ended episodes are judged like Run's and carry provenance rl_group,
  // rl_started_iteration, rl_staleness (iteration - started) and rl_weight_versions (iterations it
  // generated in). Given the same calls, the result does not depend on episode_threads.
  Expected<PartialStep> Advance(const std::vector<PartialJob>& jobs, int64_t iteration, int64_t token_budget);
  // Paused episodes right now.
  size_t paused() const { return live_.size(); }
  ~EngineRollouts();

 private:
  struct Live;
  void Score(agents::Trajectory& t) const;
  static Expected<std::unique_ptr<EngineRollouts>> Base(engine::Model<float>* model, const text::Tokenizer* tok,
                                                        const RolloutConfig& cfg);
  EngineRollouts() = default;
  std::vector<std::unique_ptr<Live>> live_;
  RolloutConfig cfg_;
  std::unique_ptr<gen::Generator> generator_;
  std::unique_ptr<agents::EnginePolicy> policy_;
  pipeline::EpisodeHooks hooks_;
  agents::ScriptedUser user_;
  std::map<std::string, std::shared_ptr<const agents::EpisodeTask>> by_id_;
};

}  // namespace k2::rl
