// LlmUser: a simulated user played by any Policy (usually HttpPolicy) with a user-simulation prompt
// built from the task's scenario and persona; roles are mirrored so the LLM speaks as the user.
#pragma once

#include <string>

#include "agents/policy.h"
#include "agents/user.h"

namespace k2::agents {

// The system prompt of the user LLM: persona, reason for the call, what it knows (to reveal only when
// asked), what it does not know, the instructions, and the stop markers it must use.
std::string UserSimulationPrompt(const EpisodeTask& task);

// The conversation as the user LLM sees it: its prompt as system, the agent's messages as "user", its own
// earlier messages as "assistant"; tool traffic is invisible to the user.
std::vector<Message> MirrorForUser(const std::string& prompt, const std::vector<Message>& conversation);

// Thread-safe (the policy is). A reply with tool calls or an empty reply is a failure of that turn and
// the user says ###STOP### (so a broken user LLM ends episodes instead of looping); a policy error is
// the episode's user_error.
class LlmUser : public UserSimulator {
 public:
  LlmUser(Policy* llm, std::string name) : llm_(llm), name_(std::move(name)) {}
  std::string name() const override { return name_; }
  Expected<std::unique_ptr<UserSession>> Start(const EpisodeTask& task, uint64_t seed,
                                               const std::vector<toolgen::ToolSpec>& user_tools) override;

 private:
  Policy* llm_;
  std::string name_;
};

}  // namespace k2::agents
