// Trajectory -> ScoreInput and Policy -> ChatFn adapters (see policy_bridge.h).
#include "rewards/policy_bridge.h"

#include "core/hash.h"

namespace k2::rewards {

ScoreInput TrajectoryToScoreInput(const agents::Trajectory& t, const json& task_spec, const std::string& task_type) {
  ScoreInput in;
  in.messages = t.messages;
  in.task = task_spec;
  in.final_state = t.final_state;
  in.termination = t.end_reason;
  in.response_tokens = t.completion_tokens;
  in.task_type = task_type;
  in.seed = t.seed;
  for (const auto& c : t.tool_calls) {
    if (c.requestor != "assistant") continue;
    ++in.tool_calls;
    in.invalid_tool_calls += c.valid ? 0 : 1;
  }
  return in;
}

ChatFn PolicyChat(agents::Policy& policy, PolicyChatOptions options) {
  agents::Policy* p = &policy;
  return [p, options](const std::vector<Message>& messages) -> Expected<std::string> {
    agents::PolicyRequest req;
    req.messages = messages;
    req.temperature = options.temperature;
    req.max_tokens = options.max_tokens;
    // Seed from the prompt, not a call counter: the verdict on a prompt never depends on call order.
    std::string h = Sha256Hex(CanonicalJson(ToJson(messages)));
    req.seed = options.seed ^ std::stoull(h.substr(0, 15), nullptr, 16);
    auto turn = p->Act(req);
    if (!turn.ok()) return turn.status().Context("critic/judge policy " + p->name());
    if (turn->failure) return InvalidArgument("critic/judge policy " + p->name() + ": malformed reply: " + *turn->failure);
    if (!turn->message.tool_calls.empty())
      return InvalidArgument("critic/judge policy " + p->name() + ": replied with tool call " +
                             turn->message.tool_calls[0].name + " instead of a verdict");
    return turn->message.content;
  };
}

std::unique_ptr<Critic> MakePolicyCritic(agents::Policy& policy, PolicyChatOptions options) {
  return std::make_unique<ChatCritic>(PolicyChat(policy, options));
}

}  // namespace k2::rewards
