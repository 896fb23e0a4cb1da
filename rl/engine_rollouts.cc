// Engine-policy rollouts on synthetic tasks with the judge as reward (rl/engine_rollouts.h).
#include "rl/engine_rollouts.h"

namespace k2::rl {

Expected<std::unique_ptr<EngineRollouts>> EngineRollouts::Create(
    engine::Model<float>* model, const text::Tokenizer* tok, std::shared_ptr<const agents::SyntheticWorld> world,
    const std::vector<std::shared_ptr<const agents::EpisodeTask>>& tasks, const RolloutConfig& cfg) {
  std::unique_ptr<EngineRollouts> r(new EngineRollouts());
  r->cfg_ = cfg;
  gen::GeneratorOptions go;
  go.max_batch_sequences = cfg.max_batch_sequences;
  go.max_sequences = std::max<int64_t>(64, 2 * cfg.max_batch_sequences);
  go.tokenizer = tok;
  K2_ASSIGN_OR_RETURN(r->generator_, gen::Generator::Create(model, go));
  agents::EnginePolicyOptions po;
  po.max_tokens = cfg.episode.max_tokens_per_turn.value_or(256);
  K2_ASSIGN_OR_RETURN(r->policy_, agents::EnginePolicy::Create(r->generator_.get(), tok, po));
  r->world_ = std::move(world);
  for (const auto& t : tasks) r->by_id_[t->id] = t;
  return r;
}

std::vector<agents::Trajectory> EngineRollouts::Run(const std::vector<agents::EpisodeJob>& jobs, double temperature,
                                                    uint64_t seed) {
  agents::RunOptions ro;
  ro.threads = static_cast<int>(cfg_.episode_threads);
  ro.seed = seed;
  ro.limits = cfg_.episode;
  ro.limits.temperature = temperature;
  agents::Judge judge(cfg_.judge);
  ro.on_done = [&](agents::Trajectory& t) {
    auto it = by_id_.find(t.task_id);
    if (it == by_id_.end()) return;
    agents::Verdict v = judge.Apply(t, *it->second);
    t.reward_components["task_success"] = v.keep ? 1.0 : 0.0;
    if (cfg_.reward == "judge_mean" && !v.components.empty()) {
      double s = 0;
      for (const auto& [k, c] : v.components) s += c;
      t.reward = s / static_cast<double>(v.components.size());
    }
  };
  auto world = world_;
  agents::EnvMaker make_env = [world]() -> Expected<std::unique_ptr<agents::Env>> {
    return std::unique_ptr<agents::Env>(std::make_unique<agents::SyntheticEnv>(world, agents::SyntheticEnvConfig{}));
  };
  auto trajs = agents::RunEpisodes(jobs, make_env, *policy_, &user_, ro);
  generator_->WaitIdle();
  generator_->EndAllSessions();  // the next update changes the weights under any cached KV
  return trajs;
}

}  // namespace k2::rl
