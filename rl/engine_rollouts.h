// Rollouts on synthetic tool tasks with the engine policy: one Generator + EnginePolicy over a live
// Model<float> (the one the RL loop trains), SyntheticEnv per episode, the scripted user and the judge
// as reward. Used by `k2gym rl`, `k2gym rl eval` and the RL tests.
//
// Thread safety: Run is called by one thread at a time (it runs episodes concurrently inside). The
// model must not be updated while Run is running; Run ends all generator sessions before returning.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agents/engine_policy.h"
#include "agents/episode.h"
#include "agents/judge.h"
#include "agents/scripted_user.h"
#include "agents/synthetic_env.h"
#include "core/config.h"
#include "core/thread_pool.h"
#include "engine/gen/generator.h"

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
  agents::JudgeConfig judge;
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
  // Trajectory i belongs to jobs[i]; reward per cfg.reward; "task_success" component = judge keep.
  std::vector<agents::Trajectory> Run(const std::vector<agents::EpisodeJob>& jobs, double temperature, uint64_t seed);

 private:
  EngineRollouts() = default;
  RolloutConfig cfg_;
  std::unique_ptr<gen::Generator> generator_;
  std::unique_ptr<agents::EnginePolicy> policy_;
  std::shared_ptr<const agents::SyntheticWorld> world_;
  agents::ScriptedUser user_;
  std::map<std::string, std::shared_ptr<const agents::EpisodeTask>> by_id_;
};

}  // namespace k2::rl
