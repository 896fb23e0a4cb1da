// The rewards <-> agents seam: a Trajectory as a ScoreInput, and a chat model behind the agents Policy
// interface as the SCRR critic or the NL_ASSERTION judge (ChatFn). Its own library (k2gym_rewards_agents)
// so that agents may use rewards without a dependency cycle.
//
// Thread safety: TrajectoryToScoreInput is pure. PolicyChat's function is as thread-safe as the Policy
// (Policy::Act is thread-safe by contract); it holds a reference, so the Policy must outlive it.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "agents/policy.h"
#include "agents/trajectory.h"
#include "rewards/reward.h"
#include "rewards/scrr.h"

namespace k2::rewards {

// messages, final_state, termination (= end_reason), response_tokens (= completion_tokens), seed; the
// evaluation spec and task type come from the caller (the task the episode ran).
ScoreInput TrajectoryToScoreInput(const agents::Trajectory& t, const json& task_spec, const std::string& task_type = "tool");

struct PolicyChatOptions {
  std::optional<double> temperature = 0.0;  // a critic/judge decides greedily by default
  std::optional<int64_t> max_tokens = 1024;
  uint64_t seed = 0;  // the per-call seed is seed ^ a hash of the messages: same prompt, same seed
};

// A ChatFn over a Policy: one stateless Act call (no session, no tools) per prompt; the reply is the
// assistant content. A turn with `failure` set (malformed output) or with tool calls instead of text
// is an error naming the policy, as is an Act error.
ChatFn PolicyChat(agents::Policy& policy, PolicyChatOptions options = {});

// The SCRR critic as a Policy: ChatCritic(PolicyChat(policy, options)).
std::unique_ptr<Critic> MakePolicyCritic(agents::Policy& policy, PolicyChatOptions options = {});

}  // namespace k2::rewards
