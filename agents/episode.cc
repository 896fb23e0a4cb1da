// The episode loop (user turn -> agent turns with tool steps -> user ...), its budgets and records,
// and the concurrent runner with per-worker environments and order-independent seeds.
#include "agents/episode.h"

#include <chrono>
#include <cstdio>
#include <limits>
#include <mutex>

#include "agents/synthetic_env.h"
#include "core/determinism.h"
#include "core/hash.h"
#include "core/progress.h"
#include "core/rng.h"
#include "core/thread_pool.h"

namespace k2::agents {

std::string UserEndReason(const std::string& content) {
  if (content.find(kUserStop) != std::string::npos) return "user_stop";
  if (content.find(kUserTransfer) != std::string::npos) return "transfer";
  if (content.find(kUserOutOfScope) != std::string::npos) return "out_of_scope";
  return "";
}

std::shared_ptr<const EpisodeTask> EpisodeTask::FromSynth(toolgen::synth::Task t) {
  auto e = std::make_shared<EpisodeTask>();
  e->id = t.id;
  e->domain = t.domain;
  e->env_task = toolgen::synth::ToTau2(t);
  e->synth = std::move(t);
  return e;
}

uint64_t EpisodeSeed(uint64_t seed, const std::string& task_id, int trial) {
  uint64_t x = seed ^ (HashString(task_id) * 0x9E3779B97F4A7C15ULL) ^ (static_cast<uint64_t>(trial) << 32);
  return SplitMix64(x);
}

namespace {

using Clock = std::chrono::steady_clock;
double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::string Hex16(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

// The agent's own end markers (a reply without tool calls that ends the conversation).
std::string AgentEndReason(const std::string& content) {
  if (content.find(kUserStop) != std::string::npos) return "agent_stop";
  if (content.find(kUserTransfer) != std::string::npos) return "transfer";
  return "";
}

}  // namespace

// The episode as a state machine (reset -> user -> agent turns ... -> done) so it can pause after any
// policy turn and resume with nothing lost.
struct EpisodeRun::Impl {
  enum class Phase { kStart, kUser, kAgent, kDone, kFinished };

  Impl(std::shared_ptr<const EpisodeTask> task, Env& env, Policy& policy, UserSimulator* user,
       const EpisodeLimits& limits, uint64_t seed, int trial)
      : task_(std::move(task)), env_(env), policy_(policy), user_(user), limits_(limits),
        rng_(EpisodeSeed(seed, task_->id, trial)) {
    t_.task_id = task_->id;
    t_.domain = task_->domain;
    t_.policy = policy.name();
    t_.user = user ? user->name() : "none";
    t_.seed = seed;
    t_.trial = trial;
    t_.id = "traj-" + Hex16(HashString(t_.task_id + "\x1f" + t_.policy + "\x1f" + t_.user) ^
                            EpisodeSeed(seed, task_->id, trial));
  }

  ~Impl() {
    if (phase_ != Phase::kFinished && phase_ != Phase::kStart) policy_.EndSession(t_.id);
  }

  Expected<bool> Advance(int64_t budget) {
    if (phase_ == Phase::kFinished) return FailedPrecondition("EpisodeRun::Advance after Finish (" + t_.id + ")");
    if (budget < 1) return InvalidArgument("EpisodeRun::Advance: policy_token_budget must be >= 1, got " +
                                           std::to_string(budget));
    if (phase_ == Phase::kDone) return true;
    advance_start_ = Clock::now();
    const int64_t start_tokens = policy_tokens_;
    bool paused = false;
    while (phase_ != Phase::kDone && !paused) {
      switch (phase_) {
        case Phase::kStart:
          phase_ = Begin() ? (session_ ? Phase::kUser : Phase::kAgent) : Phase::kDone;
          break;
        case Phase::kUser:
          phase_ = UserTurn(*session_) ? Phase::kAgent : Phase::kDone;
          break;
        case Phase::kAgent: {
          const int turns_before = t_.turns;
          const int r = AgentTurn();
          if (r < 0) {
            phase_ = Phase::kDone;
          } else if (r == 0) {  // a reply for the user
            if (!DeterministicMode() && ActiveSeconds() > limits_.max_wall_s) {
              End("timeout");
              phase_ = Phase::kDone;
            } else {
              phase_ = Phase::kUser;
            }
          }
          // Pause only after a policy turn that left the episode running.
          if (phase_ != Phase::kDone && t_.turns > turns_before && policy_tokens_ - start_tokens >= budget) paused = true;
          break;
        }
        case Phase::kDone:
        case Phase::kFinished:
          break;
      }
    }
    active_s_ += Since(advance_start_);
    if (paused) {
      ++pauses_;
      pause_at_tokens_.push_back(static_cast<int64_t>(t_.tokens.size()));
      return false;
    }
    return true;
  }

  Trajectory Finish() {
    K2_CHECK(phase_ != Phase::kFinished) << "EpisodeRun::Finish called twice";
    if (phase_ != Phase::kDone) {
      End("aborted", phase_ == Phase::kStart ? "finished before the first Advance"
                                             : "finished while paused after " + std::to_string(pauses_) + " pause(s)");
    }
    const bool started = phase_ != Phase::kStart;
    phase_ = Phase::kFinished;
    if (started) {
      policy_.EndSession(t_.id);
      t_.final_state = env_.State();
      if (!t_.final_state.is_null()) t_.final_state_hash = Sha256Hex(CanonicalJson(t_.final_state));
    }
    t_.timings.total_s = active_s_;
    t_.provenance = {{"runner", "k2gym agents/episode"},
                     {"episode_seed", EpisodeSeed(t_.seed, t_.task_id, t_.trial)},
                     {"limits", {{"max_turns", limits_.max_turns}, {"max_tool_calls", limits_.max_tool_calls},
                                 {"max_tokens", limits_.max_tokens}, {"max_wall_s", limits_.max_wall_s}}},
                     {"pauses", pauses_},
                     {"pause_at_tokens", pause_at_tokens_}};
    if (task_->agent) t_.provenance["agent"] = {{"id", task_->agent->id}, {"role", task_->agent->role}};
    return std::move(t_);
  }

  double ActiveSeconds() const { return active_s_ + Since(advance_start_); }

  void End(const std::string& reason, std::string error = "") {
    t_.end_reason = reason;
    t_.error = std::move(error);
  }

  int64_t EpisodeTokens() const {
    if (!t_.tokens.empty()) return static_cast<int64_t>(t_.tokens.size());
    return last_prompt_tokens_ + last_completion_tokens_;
  }

  // Env reset and user start. Returns false when the episode ended.
  bool Begin() {
    auto t1 = Clock::now();
    auto first = env_.ResetTask(rng_.Fork("env").Next(), task_);
    t_.timings.env_s += Since(t1);
    if (!first.ok()) return End("env_error", first.status().ToString()), false;
    t_.messages = std::move(*first);
    t_.tools = env_.OpenAITools();
    if (user_) {
      auto t2 = Clock::now();
      auto s = user_->Start(*task_, rng_.Fork("user").Next(), env_.UserTools());
      t_.timings.user_s += Since(t2);
      if (!s.ok()) return End("user_error", s.status().ToString()), false;
      session_ = std::move(*s);
    }
    return true;
  }

  // Returns false when the episode ended.
  bool UserTurn(UserSession& session) {
    auto t1 = Clock::now();
    auto ut = session.Respond(t_.messages);
    t_.timings.user_s += Since(t1);
    if (!ut.ok()) {
      End("user_error", ut.status().ToString());
      return false;
    }
    if (ut->failure) t_.failures.push_back("user: " + *ut->failure);
    if (!ut->tool_calls.empty()) {  // dual control: the user's own tools run first
      auto t2 = Clock::now();
      auto sr = env_.StepUser(ut->tool_calls);
      t_.timings.env_s += Since(t2);
      if (!sr.ok()) {
        End("env_error", sr.status().ToString());
        return false;
      }
      Record(ut->tool_calls, *sr, "user");
      session.ObserveOwnTools(sr->observation);
      if (sr->truncated && sr->info.contains("env_error")) {
        End("env_error", sr->info["env_error"].get<std::string>());
        return false;
      }
    }
    ut->message.role = "user";
    std::string reason = UserEndReason(ut->message.content);
    t_.messages.push_back(std::move(ut->message));
    if (!reason.empty()) {
      End(reason);
      return false;
    }
    return true;
  }

  void Record(const std::vector<ToolCall>& calls, const StepResult& sr, const char* requestor) {
    const json& status = sr.info.contains("calls") ? sr.info["calls"] : json::array();
    for (size_t i = 0; i < calls.size(); ++i) {
      ToolCallRecord r{.turn = t_.turns - 1, .id = calls[i].id, .name = calls[i].name, .arguments = calls[i].arguments};
      if (i < status.size()) {
        r.valid = status[i].value("valid", true);
        r.is_error = status[i].value("is_error", false);
      }
      if (i < sr.observation.size()) r.observation = sr.observation[i].content;
      r.requestor = requestor;
      t_.tool_calls.push_back(std::move(r));
    }
  }

  // One assistant turn. Returns: 1 = tool calls were stepped (the agent goes on), 0 = a reply for the
  // user, -1 = the episode ended.
  int AgentTurn() {
    if (t_.turns >= limits_.max_turns) return End("max_turns"), -1;
    // Deterministic mode: no wall-clock cut (how far an episode gets must not depend on machine speed).
    if (!DeterministicMode() && ActiveSeconds() > limits_.max_wall_s) return End("timeout"), -1;
    if (limits_.max_tokens > 0 && EpisodeTokens() >= limits_.max_tokens) return End("max_tokens"), -1;
    // The conversation and tools are lent to the request (moved in, moved back after Act): Act takes
    // the request by const reference, so they come back unchanged, and no turn copies the history.
    PolicyRequest req{.messages = std::move(t_.messages),
                      .tools = std::move(t_.tools),
                      .temperature = limits_.temperature,
                      .top_p = limits_.top_p,
                      .top_k = limits_.top_k,
                      .max_tokens = limits_.max_tokens_per_turn,
                      .seed = rng_.Next(),
                      .session = t_.id,
                      .task = task_};
    auto t1 = Clock::now();
    auto pt = policy_.Act(req);
    t_.timings.policy_s += Since(t1);
    t_.messages = std::move(req.messages);
    t_.tools = std::move(req.tools);
    if (!pt.ok()) return End("policy_error", pt.status().ToString()), -1;
    ++t_.turns;
    for (const auto& r : pt->retries) t_.failures.push_back("turn " + std::to_string(t_.turns - 1) + ": retried: " + r);
    if (pt->failure) t_.failures.push_back("turn " + std::to_string(t_.turns - 1) + ": " + *pt->failure);
    if (!pt->tokens.empty() || !pt->context_tokens.empty()) {
      const size_t n = pt->tokens.size();
      if (pt->logprobs.size() != n || pt->policy_logprobs.size() != n) {
        return End("policy_error", "policy " + t_.policy + " returned " + std::to_string(n) + " tokens but " +
                                       std::to_string(pt->logprobs.size()) + "/" +
                                       std::to_string(pt->policy_logprobs.size()) + " logprobs"),
               -1;
      }
      for (int32_t id : pt->context_tokens) {
        t_.tokens.push_back(id);
        t_.policy_mask.push_back(0);
        t_.logprobs.push_back(0);
        t_.policy_logprobs.push_back(0);
      }
      t_.tokens.insert(t_.tokens.end(), pt->tokens.begin(), pt->tokens.end());
      t_.policy_mask.insert(t_.policy_mask.end(), n, 1);
      t_.logprobs.insert(t_.logprobs.end(), pt->logprobs.begin(), pt->logprobs.end());
      t_.policy_logprobs.insert(t_.policy_logprobs.end(), pt->policy_logprobs.begin(), pt->policy_logprobs.end());
    }
    policy_tokens_ += !pt->tokens.empty() ? static_cast<int64_t>(pt->tokens.size()) : pt->completion_tokens;
    t_.prompt_tokens += pt->prompt_tokens;
    t_.completion_tokens += pt->completion_tokens;
    last_prompt_tokens_ = pt->prompt_tokens;
    last_completion_tokens_ = pt->completion_tokens;
    t_.messages.push_back(std::move(pt->message));
    // Valid until the observations are appended below (they may reallocate t_.messages).
    const Message& msg = t_.messages.back();
    t_.messages.back().role = "assistant";
    if (limits_.max_tokens > 0 && EpisodeTokens() > limits_.max_tokens) return End("max_tokens"), -1;
    if (msg.tool_calls.empty()) {
      if (std::string r = AgentEndReason(msg.content); !r.empty()) return End(r), -1;
      if (!user_) {  // single-turn environments: the reply is the final answer; the env scores it
        auto t2 = Clock::now();
        auto sr = env_.Step(msg);
        t_.timings.env_s += Since(t2);
        if (!sr.ok()) return End("env_error", sr.status().ToString()), -1;
        t_.reward = sr->reward;
        t_.reward_components["env"] = sr->reward;
        return End("agent_stop"), -1;
      }
      return 0;
    }
    const int calls = static_cast<int>(msg.tool_calls.size());
    if (tool_calls_ + calls > limits_.max_tool_calls) return End("max_tool_calls"), -1;
    tool_calls_ += calls;
    auto t2 = Clock::now();
    auto sr = env_.Step(msg);
    t_.timings.env_s += Since(t2);
    if (!sr.ok()) return End("env_error", sr.status().ToString()), -1;
    Record(msg.tool_calls, *sr, "assistant");
    for (auto& m : sr->observation) t_.messages.push_back(std::move(m));
    if (sr->info.contains("env_error")) return End("env_error", sr->info["env_error"].get<std::string>()), -1;
    if (sr->truncated) return End("max_tool_calls", "the environment's step limit"), -1;
    return 1;
  }

  std::shared_ptr<const EpisodeTask> task_;
  Env& env_;
  Policy& policy_;
  UserSimulator* user_;
  EpisodeLimits limits_;  // copied: the run may outlive the caller's limits
  Rng rng_;
  Trajectory t_;
  std::unique_ptr<UserSession> session_;
  Phase phase_ = Phase::kStart;
  int tool_calls_ = 0;
  int64_t last_prompt_tokens_ = 0, last_completion_tokens_ = 0;
  int64_t policy_tokens_ = 0;
  int pauses_ = 0;
  std::vector<int64_t> pause_at_tokens_;  // t_.tokens.size() at each pause
  double active_s_ = 0;
  Clock::time_point advance_start_ = Clock::now();
};

EpisodeRun::EpisodeRun(std::shared_ptr<const EpisodeTask> task, Env& env, Policy& policy, UserSimulator* user,
                       const EpisodeLimits& limits, uint64_t seed, int trial) {
  K2_CHECK(task != nullptr) << "EpisodeRun: null task";
  impl_ = std::make_unique<Impl>(std::move(task), env, policy, user, limits, seed, trial);
}
EpisodeRun::~EpisodeRun() = default;
EpisodeRun::EpisodeRun(EpisodeRun&&) noexcept = default;
EpisodeRun& EpisodeRun::operator=(EpisodeRun&&) noexcept = default;

Expected<bool> EpisodeRun::Advance(int64_t policy_token_budget) {
  if (!impl_) return FailedPrecondition("EpisodeRun::Advance on a moved-from run");
  return impl_->Advance(policy_token_budget);
}
bool EpisodeRun::done() const {
  return impl_ && (impl_->phase_ == Impl::Phase::kDone || impl_->phase_ == Impl::Phase::kFinished);
}
int EpisodeRun::pauses() const { return impl_ ? impl_->pauses_ : 0; }
int64_t EpisodeRun::policy_tokens() const { return impl_ ? impl_->policy_tokens_ : 0; }
int EpisodeRun::turns() const { return impl_ ? impl_->t_.turns : 0; }
const Trajectory& EpisodeRun::trajectory() const {
  K2_CHECK(impl_ != nullptr) << "EpisodeRun::trajectory on a moved-from run";
  return impl_->t_;
}
Trajectory EpisodeRun::Finish() {
  K2_CHECK(impl_ != nullptr) << "EpisodeRun::Finish on a moved-from run";
  return impl_->Finish();
}

Trajectory RunEpisode(const std::shared_ptr<const EpisodeTask>& task, Env& env, Policy& policy, UserSimulator* user,
                      const EpisodeLimits& limits, uint64_t seed, int trial) {
  K2_CHECK(task != nullptr) << "RunEpisode: null task";
  EpisodeRun run(task, env, policy, user, limits, seed, trial);
  auto r = run.Advance(std::numeric_limits<int64_t>::max());
  K2_CHECK(r.ok() && *r) << "RunEpisode: an unlimited Advance must finish the episode";
  return run.Finish();
}

std::vector<Trajectory> RunEpisodes(const std::vector<EpisodeJob>& jobs, const EnvMaker& make_env, Policy& policy,
                                    UserSimulator* user, const RunOptions& options) {
  std::vector<Trajectory> out(jobs.size());
  std::mutex mu;
  std::vector<std::unique_ptr<Env>> free_envs;  // reused between episodes: Reset restores them
  std::unique_ptr<Progress> progress;
  int64_t to_run = 0;
  for (size_t i = 0; i < jobs.size(); ++i) to_run += options.skip && options.skip(i) ? 0 : 1;
  if (!options.progress_label.empty()) progress = std::make_unique<Progress>(options.progress_label, to_run);
  ThreadPool pool(options.threads);
  pool.ParallelFor(static_cast<int64_t>(jobs.size()), [&](int64_t i) {
    if (options.skip && options.skip(static_cast<size_t>(i))) return;
    if (options.stop && options.stop()) return;
    const EpisodeJob& job = jobs[i];
    std::unique_ptr<Env> env;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (!free_envs.empty()) {
        env = std::move(free_envs.back());
        free_envs.pop_back();
      }
    }
    if (!env) {
      auto e = make_env();
      if (!e.ok()) {
        Trajectory t;
        t.id = "traj-failed-" + std::to_string(i);
        t.task_id = job.task->id;
        t.domain = job.task->domain;
        t.policy = policy.name();
        t.user = user ? user->name() : "none";
        t.seed = options.seed;
        t.trial = job.trial;
        t.end_reason = "env_error";
        t.error = e.status().ToString();
        out[i] = std::move(t);
        if (options.on_done) options.on_done(out[i]);
        if (progress) progress->Add(1);
        return;
      }
      env = std::move(*e);
    }
    out[i] = RunEpisode(job.task, *env, policy, user, options.limits, options.seed, job.trial);
    if (options.on_done) options.on_done(out[i]);
    if (progress) progress->Add(1);
    std::lock_guard<std::mutex> lock(mu);
    free_envs.push_back(std::move(env));
  });
  if (progress) progress->Finish();
  return out;
}

}  // namespace k2::agents
