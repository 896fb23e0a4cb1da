// The episode pipeline (pipeline/runner.h): per-task environments, users and limits, the rewards
// module as the one scorer, and the gold/perturbed reference policies.
#include "pipeline/runner.h"

#include <atomic>
#include <thread>

#include "agents/scripted_policies.h"
#include "agents/synthetic_env.h"
#include "agents/tau2/run.h"
#include "core/config.h"
#include "core/progress.h"
#include "rewards/judge_reward.h"
#include "rewards/policy_bridge.h"
#include "rewards/tool_verifier.h"

namespace k2::pipeline {

std::vector<agents::Trajectory> RunJobs(const std::vector<agents::EpisodeJob>& jobs, const EpisodeHooks& hooks,
                                        agents::Policy& policy, const RunJobsOptions& o) {
  std::vector<agents::Trajectory> out(jobs.size());
  std::unique_ptr<Progress> progress;
  int64_t to_run = 0;
  for (size_t i = 0; i < jobs.size(); ++i) to_run += o.skip && o.skip(i) ? 0 : 1;
  if (!o.progress_label.empty()) progress = std::make_unique<Progress>(o.progress_label, to_run);
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i = next++; i < jobs.size(); i = next++) {
      if (o.skip && o.skip(i)) continue;
      if (o.stop && o.stop()) break;
      const agents::EpisodeJob& job = jobs[i];
      agents::UserSimulator* user = hooks.user ? hooks.user(*job.task) : nullptr;
      agents::EpisodeLimits limits = hooks.limits ? hooks.limits(*job.task, o.limits) : o.limits;
      auto env = hooks.env(*job.task);
      if (!env.ok()) {
        agents::Trajectory t;
        t.id = "traj-failed-" + job.task->id + "-" + std::to_string(job.trial);
        t.task_id = job.task->id;
        t.domain = job.task->domain;
        t.policy = policy.name();
        t.user = user ? user->name() : "none";
        t.seed = o.seed;
        t.trial = job.trial;
        t.end_reason = "env_error";
        t.error = env.status().ToString();
        out[i] = std::move(t);
      } else {
        out[i] = agents::RunEpisode(job.task, **env, policy, user, limits, o.seed, job.trial);
        (*env)->Close();
      }
      if (hooks.score) hooks.score(out[i]);
      if (o.on_done) o.on_done(out[i]);
      if (progress) progress->Add(1);
    }
  };
  const int hw = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int threads = std::max(1, std::min<int>(o.threads > 0 ? o.threads : hw, static_cast<int>(jobs.size())));
  if (threads <= 1) {
    work();
  } else {
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) pool.emplace_back(work);
    for (auto& t : pool) t.join();
  }
  if (progress) progress->Finish();
  return out;
}

Expected<std::unique_ptr<Pipeline>> Pipeline::Create(std::shared_ptr<const TaskSet> tasks, PipelineOptions options) {
  std::unique_ptr<Pipeline> p(new Pipeline());
  p->tasks_ = std::move(tasks);
  p->opt_ = std::move(options);
  for (size_t i = 0; i < p->tasks_->tasks.size(); ++i) {
    const Task& t = p->tasks_->tasks[i];
    if (!p->by_id_.emplace(t.id, i).second) return InvalidArgument("pipeline: duplicate task id " + json(t.id).dump());
    if (!t.world && !agents::EnvRegistry::Global().Has(t.env_kind))
      return NotFound("task " + t.id + ": env kind " + json(t.env_kind).dump() +
                      " is not registered (see `k2gym env list`; plugins: --plugin LIB.so)");
    if (t.user == "scripted" && t.env_kind != "tau2" && !p->opt_.scripted_user) return InvalidArgument("task " + t.id + ": user scripted: none given");
    if (t.user == "llm" && !p->opt_.llm_user)
      return InvalidArgument("task " + t.id + ": user llm needs a user endpoint (--user openai:URL)");
    auto r = p->RewardOf(t);
    if (!r.ok()) return r.status().Context("task " + t.id);
  }
  return p;
}

const Task* Pipeline::Find(const std::string& id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &tasks_->tasks[it->second];
}

std::vector<agents::EpisodeJob> Pipeline::Jobs(const std::vector<size_t>& indices, int trials) const {
  std::vector<agents::EpisodeJob> jobs;
  for (size_t i : indices)
    for (int k = 0; k < trials; ++k) jobs.push_back({tasks_->tasks[i].episode, k});
  return jobs;
}

namespace {

// A reward type that needs a live model gets it here: "tool" (NL assertions) and "judge" (the grade).
Expected<std::unique_ptr<rewards::Reward>> BuildReward(const json& cfg, const rewards::ChatFn& judge,
                                                       const std::string& where) {
  if (!cfg.is_object()) return InvalidArgument(where + ": expected a reward config object");
  if (cfg.contains("type") && !cfg["type"].is_string()) return InvalidArgument(where + ".type: expected a string");
  if (judge && cfg.value("type", "") == "tool")
    return rewards::MakeToolRewardWithJudge(cfg, judge, where);
  const bool grade = cfg.is_object() && cfg.contains("grade") && cfg["grade"].is_boolean() && cfg["grade"].get<bool>();
  if (judge && cfg.is_object() && cfg.value("type", "") == "judge" && grade) {
    json rest = cfg;
    rest.erase("grade");
    return rewards::MakeJudgeRewardWithGrader(rest, judge, where);
  }
  // A grade asked for with no judge model would leave the rubric's text unscored: refused, not a free pass.
  if (grade && cfg.value("type", "") == "judge")
    return InvalidArgument(where + ".grade: true needs a judge model (--judge openai:URL); without one the rubric's "
                           "text would not be scored");
  if (cfg.is_object() && cfg.contains("grade")) {
    json rest = cfg;
    rest.erase("grade");
    return rewards::MakeReward(rest, where);
  }
  return rewards::MakeReward(cfg, where);
}

}  // namespace

Expected<const rewards::Reward*> Pipeline::RewardOf(const Task& task) const {
  const std::string key = CanonicalJson(task.reward);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = rewards_.find(key);
  if (it != rewards_.end()) return it->second.get();
  K2_ASSIGN_OR_RETURN(auto r, BuildReward(task.reward, opt_.judge, "reward"));
  const rewards::Reward* raw = r.get();
  rewards_.emplace(key, std::move(r));
  return raw;
}

rewards::ScoreInput Pipeline::Input(const agents::Trajectory& t, const Task& task) const {
  return rewards::TrajectoryToScoreInput(t, task.spec, task.task_type);
}

Status Pipeline::Score(agents::Trajectory& t) const {
  const Task* task = Find(t.task_id);
  if (!task) return NotFound("pipeline: trajectory of unknown task " + json(t.task_id).dump());
  t.provenance["source"] = task->source;
  t.provenance["task_type"] = task->task_type;
  t.provenance["split"] = task->split;
  auto reward = RewardOf(*task);
  Expected<rewards::RewardResult> r = reward.ok() ? (*reward)->Score(Input(t, *task)) : reward.status();
  if (!r.ok()) {
    t.reward = 0;
    t.reward_components["score_error"] = 1;
    t.reward_components["task_success"] = 0;
    t.provenance["score_error"] = r.status().ToString();
    return r.status().Context("scoring " + t.task_id);
  }
  t.reward = r->value;
  for (const auto& [k, v] : r->components) t.reward_components["reward/" + k] = v;
  t.reward_components["task_success"] = r->value >= opt_.success_threshold ? 1 : 0;
  t.provenance["reward"] = {{"value", r->value}, {"explanation", r->explanation}, {"config", task->reward}};
  return Status::Ok();
}

EpisodeHooks Pipeline::Hooks() const {
  EpisodeHooks h;
  h.env = [this](const agents::EpisodeTask& e) -> Expected<std::unique_ptr<agents::Env>> {
    const Task* t = Find(e.id);
    if (!t) return NotFound("pipeline: unknown task " + e.id);
    if (t->world) return std::unique_ptr<agents::Env>(std::make_unique<agents::SyntheticEnv>(t->world, agents::SyntheticEnvConfig{}));
    return agents::EnvRegistry::Global().Make(t->env_kind, t->env_config);
  };
  h.user = [this](const agents::EpisodeTask& e) -> agents::UserSimulator* {
    const Task* t = Find(e.id);
    if (!t) return nullptr;
    // τ²-bench's native domains have their own scripted user (it follows τ² user scenarios).
    if (t->user == "scripted") return t->env_kind == "tau2" ? &agents::tau2::ScriptedUserSimulator() : opt_.scripted_user;
    if (t->user == "llm") return opt_.llm_user;
    return nullptr;
  };
  h.limits = [this](const agents::EpisodeTask& e, const agents::EpisodeLimits& base) {
    const Task* t = Find(e.id);
    if (!t || t->limits.empty()) return base;
    json j = config::ToJson(base);
    j.merge_patch(t->limits);
    agents::EpisodeLimits out = base;
    // A bad override was caught at load time in strict runs; here it falls back to the run's limits.
    if (!config::Reader::Read(j, out, "limits", "task " + t->id).ok()) return base;
    return out;
  };
  h.score = [this](agents::Trajectory& t) { (void)Score(t); };
  return h;
}

namespace {

class GoldPolicy : public agents::Policy {
 public:
  GoldPolicy(std::shared_ptr<const TaskSet> tasks, bool perturbed) : tasks_(std::move(tasks)), perturbed_(perturbed) {
    for (const auto& t : tasks_->tasks) by_id_[t.id] = &t;
    agents::OracleConfig oc;
    oc.clarify_rate = oc.error_rate = oc.distractor_rate = oc.violation_rate = 0;
    oracle_ = std::make_unique<agents::OracleTaskPolicy>(oc);
    oc.violation_rate = 1;
    violator_ = std::make_unique<agents::OracleTaskPolicy>(oc);
  }
  std::string name() const override { return perturbed_ ? "perturbed" : "gold"; }
  void EndSession(const std::string& s) override {
    oracle_->EndSession(s);
    violator_->EndSession(s);
  }

  Expected<agents::PolicyTurn> Act(const agents::PolicyRequest& r) override {
    if (!r.task) return InvalidArgument("gold policy: the request carries no task");
    auto it = by_id_.find(r.task->id);
    const Task* t = it == by_id_.end() ? nullptr : it->second;
    agents::PolicyTurn turn;
    turn.message.role = "assistant";
    if (t && t->gold.empty() && r.task->synth) {
      if (!perturbed_) return oracle_->Act(r);
      // A refusal task is broken by doing what must be refused; any other by answering nothing.
      if (!r.task->synth->forbidden.empty()) return violator_->Act(r);
      turn.message.content = "(no answer)";
      return turn;
    }
    if (!t || t->gold.empty()) return NotFound("gold policy: task " + r.task->id + " has no gold turns");
    std::vector<Message> gold = t->gold;
    if (perturbed_) {
      for (size_t k = gold.size(); k-- > 0;)
        if (!gold[k].tool_calls.empty()) {
          gold.erase(gold.begin() + static_cast<std::ptrdiff_t>(k));
          break;
        }
      if (gold.empty() || !gold.back().tool_calls.empty()) gold.push_back({.role = "assistant"});
      gold.back().content = "(no answer)";
    }
    size_t n = 0;
    for (const auto& m : r.messages) n += m.role == "assistant";
    if (n < gold.size()) {
      turn.message = gold[n];
      // Call ids unique per dialog, as a model's are.
      for (size_t c = 0; c < turn.message.tool_calls.size(); ++c)
        if (turn.message.tool_calls[c].id.empty()) turn.message.tool_calls[c].id = "call_" + std::to_string(n) + "_" + std::to_string(c);
    } else {
      turn.message.content = perturbed_ ? "(no answer)" : gold.back().content;
    }
    return turn;
  }

 private:
  std::shared_ptr<const TaskSet> tasks_;
  bool perturbed_;
  std::map<std::string, const Task*> by_id_;
  std::unique_ptr<agents::OracleTaskPolicy> oracle_, violator_;
};

}  // namespace

std::unique_ptr<agents::Policy> MakeGoldPolicy(std::shared_ptr<const TaskSet> tasks, bool perturbed) {
  return std::make_unique<GoldPolicy>(std::move(tasks), perturbed);
}

}  // namespace k2::pipeline
