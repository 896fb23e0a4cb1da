// The simulated-user interface of an episode: a UserSimulator starts one UserSession per episode
// (scripted from the task's scenario, or LLM-backed); dual control lets a user call tools of its own.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/message.h"
#include "core/status.h"
#include "toolgen/tool_spec.h"

namespace k2::agents {

struct EpisodeTask;  // agents/episode.h

// τ²-bench's stop markers: a user message containing one ends the episode.
inline constexpr const char* kUserStop = "###STOP###";
inline constexpr const char* kUserTransfer = "###TRANSFER###";
inline constexpr const char* kUserOutOfScope = "###OUT-OF-SCOPE###";

struct UserTurn {
  Message message;                  // role "user"
  // Dual control: calls on the user's own tools (Env::UserTools), executed by the environment before
  // the message is delivered to the agent. Their results go back to the user, not into the agent's view.
  std::vector<ToolCall> tool_calls;
  std::optional<std::string> failure;  // malformed simulator output ("kind: detail"), recorded
};

// One episode's user. Thread safety: used by one thread at a time.
class UserSession {
 public:
  virtual ~UserSession() = default;
  // The next user message given the conversation as the agent sees it (system, user, assistant, tool;
  // empty of user turns on the first call). Error: the simulator cannot answer (episode: user_error).
  virtual Expected<UserTurn> Respond(const std::vector<Message>& conversation) = 0;
  // Results of the user's own tool calls of its last turn (dual control), one "tool" message per call.
  virtual void ObserveOwnTools(const std::vector<Message>& results) { (void)results; }
};

// Thread safety: Start may be called concurrently (sessions are independent).
class UserSimulator {
 public:
  virtual ~UserSimulator() = default;
  virtual std::string name() const = 0;
  // `user_tools`: the environment's user-owned tools (dual control), usually empty.
  virtual Expected<std::unique_ptr<UserSession>> Start(const EpisodeTask& task, uint64_t seed,
                                                       const std::vector<toolgen::ToolSpec>& user_tools) = 0;
};

// Which stop marker `content` holds: "user_stop", "transfer", "out_of_scope" or "" (none).
std::string UserEndReason(const std::string& content);

}  // namespace k2::agents
