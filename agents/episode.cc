// The episode loop (user turn -> agent turns with tool steps -> user ...), its budgets and records,
// and the concurrent runner with per-worker environments and order-independent seeds.
#include "agents/episode.h"

#include <chrono>
#include <cstdio>
#include <mutex>

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

class EpisodeLoop {
 public:
  EpisodeLoop(const std::shared_ptr<const EpisodeTask>& task, Env& env, Policy& policy, UserSimulator* user,
              const EpisodeLimits& limits, uint64_t seed, int trial)
      : task_(task), env_(env), policy_(policy), user_(user), limits_(limits), rng_(EpisodeSeed(seed, task->id, trial)) {
    t_.task_id = task->id;
    t_.domain = task->domain;
    t_.policy = policy.name();
    t_.user = user ? user->name() : "none";
    t_.seed = seed;
    t_.trial = trial;
    t_.id = "traj-" + Hex16(HashString(t_.task_id + "\x1f" + t_.policy + "\x1f" + t_.user) ^
                            EpisodeSeed(seed, task->id, trial));
  }

  Trajectory Run() {
    const auto t0 = Clock::now();
    Loop(t0);
    policy_.EndSession(t_.id);
    t_.final_state = env_.State();
    if (!t_.final_state.is_null()) t_.final_state_hash = Sha256Hex(CanonicalJson(t_.final_state));
    t_.timings.total_s = Since(t0);
    t_.provenance = {{"runner", "k2gym agents/episode"},
                     {"episode_seed", EpisodeSeed(t_.seed, t_.task_id, t_.trial)},
                     {"limits", {{"max_turns", limits_.max_turns}, {"max_tool_calls", limits_.max_tool_calls},
                                 {"max_tokens", limits_.max_tokens}, {"max_wall_s", limits_.max_wall_s}}}};
    return std::move(t_);
  }

 private:
  void End(const std::string& reason, std::string error = "") {
    t_.end_reason = reason;
    t_.error = std::move(error);
  }

  int64_t EpisodeTokens() const {
    if (!t_.tokens.empty()) return static_cast<int64_t>(t_.tokens.size());
    return last_prompt_tokens_ + last_completion_tokens_;
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
  int AgentTurn(Clock::time_point t0) {
    if (t_.turns >= limits_.max_turns) return End("max_turns"), -1;
    if (Since(t0) > limits_.max_wall_s) return End("timeout"), -1;
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

  void Loop(Clock::time_point t0) {
    auto t1 = Clock::now();
    auto first = env_.ResetTask(rng_.Fork("env").Next(), task_);
    t_.timings.env_s += Since(t1);
    if (!first.ok()) return End("env_error", first.status().ToString());
    t_.messages = std::move(*first);
    t_.tools = env_.OpenAITools();
    std::unique_ptr<UserSession> session;
    if (user_) {
      auto t2 = Clock::now();
      auto s = user_->Start(*task_, rng_.Fork("user").Next(), env_.UserTools());
      t_.timings.user_s += Since(t2);
      if (!s.ok()) return End("user_error", s.status().ToString());
      session = std::move(*s);
    }
    while (true) {
      if (session && !UserTurn(*session)) return;
      int r;
      while ((r = AgentTurn(t0)) == 1) {
      }
      if (r < 0) return;
      if (Since(t0) > limits_.max_wall_s) return End("timeout");
    }
  }

  std::shared_ptr<const EpisodeTask> task_;
  Env& env_;
  Policy& policy_;
  UserSimulator* user_;
  const EpisodeLimits& limits_;
  Rng rng_;
  Trajectory t_;
  int tool_calls_ = 0;
  int64_t last_prompt_tokens_ = 0, last_completion_tokens_ = 0;
};

}  // namespace

Trajectory RunEpisode(const std::shared_ptr<const EpisodeTask>& task, Env& env, Policy& policy, UserSimulator* user,
                      const EpisodeLimits& limits, uint64_t seed, int trial) {
  K2_CHECK(task != nullptr) << "RunEpisode: null task";
  return EpisodeLoop(task, env, policy, user, limits, seed, trial).Run();
}

std::vector<Trajectory> RunEpisodes(const std::vector<EpisodeJob>& jobs, const EnvMaker& make_env, Policy& policy,
                                    UserSimulator* user, const RunOptions& options) {
  std::vector<Trajectory> out(jobs.size());
  std::mutex mu;
  std::vector<std::unique_ptr<Env>> free_envs;  // reused between episodes: Reset restores them
  std::unique_ptr<Progress> progress;
  if (!options.progress_label.empty())
    progress = std::make_unique<Progress>(options.progress_label, static_cast<int64_t>(jobs.size()));
  ThreadPool pool(options.threads);
  pool.ParallelFor(static_cast<int64_t>(jobs.size()), [&](int64_t i) {
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
