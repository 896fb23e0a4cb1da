// The episode runner: policy <-> environment <-> simulated user until someone ends it or a budget runs
// out, recorded as a Trajectory; RunEpisodes runs many concurrently on a thread pool, deterministically.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agents/env.h"
#include "agents/policy.h"
#include "agents/trajectory.h"
#include "agents/user.h"
#include "core/config.h"
#include "toolgen/synth/tasks.h"

namespace k2::agents {

// What an episode is about. `env_task` goes to Env::Reset; `synth` (synthetic tasks) carries the user
// scenario, gold plan and rubric that scripted users, the oracle and the judge read.
struct AgentProfile;  // agents/synthetic_env.h

struct EpisodeTask {
  std::string id;
  std::string domain;
  json env_task = json::object();
  std::optional<toolgen::synth::Task> synth;
  // Optional synthetic agent (agents/synthetic_env.h): its system prompt and toolset replace the domain's
  // defaults for this episode (`simulate --agents`); recorded in provenance.agent.
  std::shared_ptr<const AgentProfile> agent;
  // A synthetic task: env_task = ToTau2(t).
  static std::shared_ptr<const EpisodeTask> FromSynth(toolgen::synth::Task t);
};

// Run-config section "episode" (registered in apps/cmd_agents.cc). 0 = no limit where stated.
struct EpisodeLimits {
  int max_turns = 30;          // assistant turns
  int max_tool_calls = 60;     // tool calls of the assistant
  int64_t max_tokens = 0;      // tokens of the episode (engine: the token stream; HTTP: last prompt +
                               // completion); 0 = no limit
  double max_wall_s = 600;     // wall time of one episode, checked between turns
  // Sampling for every policy turn; unset = the policy's default.
  std::optional<double> temperature;
  std::optional<double> top_p;
  std::optional<int64_t> top_k;
  std::optional<int64_t> max_tokens_per_turn;
  template <class V>
  void Visit(V& v) {
    v("max_turns", max_turns, "assistant turns before the episode ends with max_turns", {.min = 1, .max = 100000});
    v("max_tool_calls", max_tool_calls, "assistant tool calls before the episode ends with max_tool_calls",
      {.min = 0, .max = 1000000});
    v("max_tokens", max_tokens, "tokens per episode before it ends with max_tokens (0 = no limit)", {.min = 0, .max = 1e12});
    v("max_wall_s", max_wall_s, "wall seconds per episode, checked between turns", {.min = 0.001, .max = 1e6});
    v("temperature", temperature, "sampling temperature of policy turns (unset: the policy's default)", {.min = 0, .max = 100});
    v("top_p", top_p, "nucleus sampling mass (unset: the policy's default)", {.min = 0, .max = 1});
    v("top_k", top_k, "top-k sampling (unset: the policy's default)", {.min = 1, .max = 1e9});
    v("max_tokens_per_turn", max_tokens_per_turn, "generated tokens per assistant turn (unset: the policy's default)",
      {.min = 1, .max = 1e9});
  }
};

// The seed of episode (task, trial) in a run seeded `seed`: independent of the order episodes run in.
uint64_t EpisodeSeed(uint64_t seed, const std::string& task_id, int trial);

// Runs one episode. The conversation starts with Env::Reset's messages; the user speaks first (when
// `user` is null, Reset must have given the user prompt and a reply without tool calls ends the episode
// as agent_stop, stepping the env so its scorer runs). An assistant message with tool calls is stepped
// in the environment; one without goes to the user. Ends: the user's stop markers, the agent's own
// ###STOP###/###TRANSFER###, a budget (max_turns/max_tool_calls/max_tokens/timeout), or an error of the
// policy/env/user (recorded in end_reason + error, never thrown). Calls policy.EndSession at the end.
// Deterministic given (seed, task, policy, user) when they are. `env` is reset, not closed.
Trajectory RunEpisode(const std::shared_ptr<const EpisodeTask>& task, Env& env, Policy& policy, UserSimulator* user,
                      const EpisodeLimits& limits, uint64_t seed, int trial = 0);

// A resumable episode: the same loop as RunEpisode, advanced in slices so a rollout can pause it after a
// policy-token budget and resume it later (K1.5/K2 partial rollout: long episodes carry over to the next
// iteration instead of stalling the batch). RunEpisode is EpisodeRun(...).Advance(INT64_MAX) + Finish.
//
// Determinism: the trajectory does not depend on how the episode was sliced — every RNG draw, policy
// request and env step happens in the same order; advancing in slices of 1..N tokens gives the same
// messages, tool calls, token stream, logprobs and end reason as one uninterrupted Advance (only
// `timings` and `provenance.pauses`/`provenance.pause_at_tokens` differ).
// Policy tokens of a turn: PolicyTurn::tokens.size() when the policy reports token ids (engine), else its
// completion_tokens (HTTP), else 0 (scripted policies: such episodes never pause, they just run on).
// Lifetime: `env`, `policy` and `user` are borrowed and must outlive the run; `env` belongs to this
// episode until Finish (no other Reset in between). The policy's session (Trajectory::id; e.g. the
// engine's KV cache) stays open across pauses; if the caller drops it (policy.EndSession, e.g. after a
// weight update), the engine policy re-renders the dialog on the next turn (context_tokens = the whole
// dialog, see agents/engine_policy.h). Wall time (limits.max_wall_s, timings.total_s) counts only time
// spent inside Advance. Thread safety: one thread at a time; may move between threads between calls.
class EpisodeRun {
 public:
  // Nothing runs until the first Advance (which resets `env`). `task` must be non-null (K2_CHECK).
  EpisodeRun(std::shared_ptr<const EpisodeTask> task, Env& env, Policy& policy, UserSimulator* user,
             const EpisodeLimits& limits, uint64_t seed, int trial = 0);
  ~EpisodeRun();  // an unfinished run ends its policy session (frees KV pages)
  EpisodeRun(EpisodeRun&&) noexcept;
  EpisodeRun& operator=(EpisodeRun&&) noexcept;
  EpisodeRun(const EpisodeRun&) = delete;
  EpisodeRun& operator=(const EpisodeRun&) = delete;

  // Runs until the episode ends (returns true) or at least `policy_token_budget` policy tokens were
  // generated by this call (checked after each policy turn; returns false = paused, state kept). At
  // least one policy turn runs per call unless the episode ends first. Episode failures (policy, env,
  // user errors, budgets) end the episode with their reason, as in RunEpisode; the Status error is only
  // for misuse: budget < 1 (InvalidArgument) or Advance after Finish (FailedPrecondition).
  Expected<bool> Advance(int64_t policy_token_budget);
  bool done() const;
  int pauses() const;              // Advance calls that returned false
  int64_t policy_tokens() const;   // policy tokens generated so far (see above)
  int turns() const;               // assistant turns so far
  // The trajectory so far (messages, tokens, ...; final_state/timings/provenance are set by Finish).
  const Trajectory& trajectory() const;
  // Completes the record (final state + hash, provenance with pauses, timings), ends the policy session
  // and returns it. An unfinished run is cut: end_reason "aborted" (the caller dropped a paused partial
  // rollout). Call once; afterwards the run is empty.
  Trajectory Finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct EpisodeJob {
  std::shared_ptr<const EpisodeTask> task;
  int trial = 0;
};

using EnvMaker = std::function<Expected<std::unique_ptr<Env>>()>;

struct RunOptions {
  int threads = 0;                 // concurrent episodes (0: hardware threads); HTTP policies want more
  uint64_t seed = 0;
  EpisodeLimits limits;
  std::string progress_label;      // empty: no progress line
  // Called on the worker thread when an episode ends (e.g. judge it, then store it); must be thread-safe.
  std::function<void(Trajectory&)> on_done;
  // Jobs for which skip(i) is true are not run (a resumed run's finished episodes); once stop() is true
  // no further job starts (interrupt). A job not run leaves its trajectory default (end_reason empty).
  std::function<bool(size_t)> skip;
  std::function<bool()> stop;
};

// Runs every job (but those skipped or not started before a stop); trajectory i belongs to jobs[i]
// whatever the thread count or completion order.
// Environments are made with `make_env` (one per concurrently running episode, reused by Reset); a
// failure to make one is that episode's env_error.
std::vector<Trajectory> RunEpisodes(const std::vector<EpisodeJob>& jobs, const EnvMaker& make_env, Policy& policy,
                                    UserSimulator* user, const RunOptions& options);

}  // namespace k2::agents
