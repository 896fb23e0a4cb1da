// The Policy interface every actor in an episode speaks: engine (agents/engine_policy.h), HTTP
// (OpenAI-compatible servers), scripted oracle and random policies, and LLM-backed simulated users.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/json.h"
#include "core/message.h"
#include "core/status.h"

namespace k2::agents {

struct EpisodeTask;  // agents/episode.h

// One request: the whole conversation so far plus the action space. Sampling fields left empty mean
// "the policy's own default" (an HTTP policy omits them from the request body).
struct PolicyRequest {
  std::vector<Message> messages;            // system/user/assistant/tool, oldest first
  json tools = json::array();               // OpenAI `tools` array ([{type:function, function:{...}}])
  std::optional<double> temperature;        // >= 0; 0 = greedy
  std::optional<double> top_p;              // (0, 1]
  std::optional<int64_t> top_k;             // >= 1
  std::optional<int64_t> max_tokens;        // generated tokens for this turn, >= 1
  uint64_t seed = 0;                        // per-turn seed (the episode runner derives it)
  // Episode id. A stateful policy (the engine policy) keeps this episode's state (KV cache) between
  // calls with the same session and appends only the new messages; empty = stateless call.
  std::string session;
  // The episode's task (set by the episode runner). Only scripted policies (the oracle) may read it:
  // a model policy must never see the gold plan. Null outside episodes.
  std::shared_ptr<const EpisodeTask> task;
};

// One assistant turn. Malformed model output is data: `failure` holds "kind: detail" (e.g.
// "malformed_tool_call: arguments of call 0 are not a JSON object", "http_500: ...") and the turn is
// still returned, so the episode can score it; only a policy that cannot run at all returns a Status.
struct PolicyTurn {
  Message message;                          // role "assistant": content + tool_calls
  std::optional<std::string> failure;       // "kind: detail"; nullopt when the output was well-formed
  // Engine policy only (empty otherwise). context_tokens: the ids appended to the session before
  // generation (rendered new messages + the assistant header); tokens: the generated ids.
  std::vector<int32_t> context_tokens;
  std::vector<int32_t> tokens;
  std::vector<float> logprobs;              // [tokens.size()] natural log, under the sampling distribution
  std::vector<float> policy_logprobs;       // [tokens.size()] under the unmodified policy (T=1, no top-p/k)
  int64_t prompt_tokens = 0;                // as reported by the policy (0 when unknown)
  int64_t completion_tokens = 0;
  bool truncated = false;                   // generation hit max_tokens
  double latency_s = 0;                     // wall time of this Act call, seconds
  // Transport failures retried before this turn succeeded ("http_500: ...", HTTP policies); the episode
  // runner records them in Trajectory::failures.
  std::vector<std::string> retries;
};

json ToJson(const PolicyTurn& t);

// Thread safety: Act and EndSession may be called concurrently from many threads (different sessions;
// calls for one session are serialized by the caller). Act may block (network, batching).
// Failure behaviour: Expected error only when the policy cannot produce a turn at all (server
// unreachable after all retries, misconfiguration); the episode runner records it as "policy_error".
class Policy {
 public:
  virtual ~Policy() = default;
  virtual std::string name() const = 0;
  virtual Expected<PolicyTurn> Act(const PolicyRequest& request) = 0;
  // Frees per-episode state (KV pages). Unknown sessions are ignored.
  virtual void EndSession(const std::string& session) { (void)session; }
};

}  // namespace k2::agents
