// Engine-policy rollouts through the episode pipeline's hooks (rl/engine_rollouts.h).
#include "rl/engine_rollouts.h"

#include <atomic>
#include <limits>
#include <thread>

namespace k2::rl {

struct EngineRollouts::Live {
  PartialJob job;
  std::unique_ptr<agents::Env> env;   // owned by the episode until Finish
  std::unique_ptr<agents::EpisodeRun> run;
  int64_t versions = 0;               // iterations in which it generated tokens
};

EngineRollouts::~EngineRollouts() {
  live_.clear();  // each unfinished EpisodeRun ends its policy session before the generator goes
}

void EngineRollouts::Score(agents::Trajectory& t) const {
  if (hooks_.score) {
    hooks_.score(t);
    return;
  }
  auto it = by_id_.find(t.task_id);
  if (it == by_id_.end()) return;
  rewards::Judge judge(cfg_.judge);
  rewards::Verdict v = judge.Apply(t, *it->second);
  t.reward_components["task_success"] = v.keep ? 1.0 : 0.0;
  if (cfg_.reward == "judge_mean" && !v.components.empty()) {
    double s = 0;
    for (const auto& [k, c] : v.components) s += c;
    t.reward = s / static_cast<double>(v.components.size());
  }
}

Expected<PartialStep> EngineRollouts::Advance(const std::vector<PartialJob>& jobs, int64_t iteration,
                                               int64_t token_budget) {
  PartialStep out;
  out.resumed = static_cast<int64_t>(live_.size());
  for (const PartialJob& j : jobs) {
    if (!j.job.task) return InvalidArgument("rl partial rollout: a job without a task");
    auto l = std::make_unique<Live>();
    l->job = j;
    auto env = hooks_.env(*j.job.task);
    if (!env.ok()) return env.status().Context("rl partial rollout: episode " + j.job.task->id);
    l->env = std::move(*env);
    agents::EpisodeLimits limits = hooks_.limits ? hooks_.limits(*j.job.task, cfg_.episode) : cfg_.episode;
    limits.temperature = j.temperature;
    agents::UserSimulator* user = hooks_.user ? hooks_.user(*j.job.task) : nullptr;
    l->run = std::make_unique<agents::EpisodeRun>(j.job.task, *l->env, *policy_, user, limits, j.seed, j.job.trial);
    live_.push_back(std::move(l));
    ++out.started;
  }
  const int64_t n = static_cast<int64_t>(live_.size());
  const int64_t slice = token_budget > 0 ? std::max<int64_t>(1, (token_budget + n - 1) / std::max<int64_t>(1, n))
                                         : std::numeric_limits<int64_t>::max();
  // Each episode's slice is fixed before any runs, so which episodes pause does not depend on the
  // order threads finish in.
  std::vector<Status> errors(live_.size());
  std::vector<int64_t> generated(live_.size(), 0);
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i = next++; i < live_.size(); i = next++) {
      Live& l = *live_[i];
      const int64_t before = l.run->policy_tokens();
      auto r = l.run->Advance(slice);
      if (!r.ok()) errors[i] = r.status();
      generated[i] = l.run->policy_tokens() - before;
    }
  };
  const int threads = static_cast<int>(std::min<int64_t>(cfg_.episode_threads, n));
  if (threads <= 1) {
    work();
  } else {
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) pool.emplace_back(work);
    for (auto& t : pool) t.join();
  }
  for (size_t i = 0; i < errors.size(); ++i)
    if (!errors[i].ok()) return errors[i].Context("rl partial rollout: episode " + live_[i]->job.job.task->id);
  std::vector<std::unique_ptr<Live>> still;
  for (size_t i = 0; i < live_.size(); ++i) {
    auto& l = live_[i];
    out.policy_tokens += generated[i];
    if (generated[i] > 0) ++l->versions;
    if (!l->run->done()) {
      out.carried.push_back(l->job);
      still.push_back(std::move(l));
      continue;
    }
    agents::Trajectory t = l->run->Finish();
    Score(t);
    t.provenance["rl_group"] = l->job.group;
    t.provenance["rl_started_iteration"] = l->job.started_iteration;
    t.provenance["rl_staleness"] = iteration - l->job.started_iteration;
    t.provenance["rl_weight_versions"] = l->versions;
    out.groups.push_back(l->job.group);
    out.done.push_back(std::move(t));
  }
  live_ = std::move(still);
  out.paused = static_cast<int64_t>(live_.size());
  return out;
}

Expected<std::unique_ptr<EngineRollouts>> EngineRollouts::Create(
    engine::Model<float>* model, const text::Tokenizer* tok, std::shared_ptr<const agents::SyntheticWorld> world,
    const std::vector<std::shared_ptr<const agents::EpisodeTask>>& tasks, const RolloutConfig& cfg) {
  K2_ASSIGN_OR_RETURN(auto r, Base(model, tok, cfg));
  for (const auto& t : tasks) r->by_id_[t->id] = t;
  r->hooks_.env = [world](const agents::EpisodeTask&) -> Expected<std::unique_ptr<agents::Env>> {
    return std::unique_ptr<agents::Env>(std::make_unique<agents::SyntheticEnv>(world, agents::SyntheticEnvConfig{}));
  };
  EngineRollouts* self = r.get();
  r->hooks_.user = [self](const agents::EpisodeTask&) -> agents::UserSimulator* { return &self->user_; };
  return r;
}

Expected<std::unique_ptr<EngineRollouts>> EngineRollouts::Create(engine::Model<float>* model, const text::Tokenizer* tok,
                                                                 pipeline::EpisodeHooks hooks, const RolloutConfig& cfg) {
  if (!hooks.env || !hooks.score) return InvalidArgument("rl rollouts: hooks need env and score");
  K2_ASSIGN_OR_RETURN(auto r, Base(model, tok, cfg));
  r->hooks_ = std::move(hooks);
  return r;
}

Expected<std::unique_ptr<EngineRollouts>> EngineRollouts::Base(engine::Model<float>* model, const text::Tokenizer* tok,
                                                               const RolloutConfig& cfg) {
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
  return r;
}

std::vector<agents::Trajectory> EngineRollouts::Run(const std::vector<agents::EpisodeJob>& jobs, double temperature,
                                                    uint64_t seed) {
  pipeline::RunJobsOptions ro;
  ro.threads = static_cast<int>(cfg_.episode_threads);
  ro.seed = seed;
  ro.limits = cfg_.episode;
  // The RL loop sets the temperature; per-task limits may adjust the rest.
  pipeline::EpisodeHooks hooks = hooks_;
  hooks.limits = [this, temperature](const agents::EpisodeTask& t, const agents::EpisodeLimits& base) {
    agents::EpisodeLimits l = hooks_.limits ? hooks_.limits(t, base) : base;
    l.temperature = temperature;
    return l;
  };
  hooks.score = [this](agents::Trajectory& t) { Score(t); };
  auto trajs = pipeline::RunJobs(jobs, hooks, *policy_, ro);
  generator_->WaitIdle();
  // The next update changes the weights under any cached KV (paused partial rollouts keep theirs).
  if (live_.empty()) generator_->EndAllSessions();
  return trajs;
}

}  // namespace k2::rl
