// ScriptedUser: a deterministic simulated user driven by a synthetic task's scenario (persona, reason
// for the call, info revealed only when asked, confirmations/refusals, ###STOP### when done).
#pragma once

#include <memory>
#include <string>

#include "agents/user.h"
#include "core/config.h"

namespace k2::agents {

// Run-config section "scripted_user" (registered in apps/cmd_agents.cc).
struct ScriptedUserConfig {
  int max_user_turns = 12;  // the user gives up (###STOP###) after this many messages
  template <class V>
  void Visit(V& v) {
    v("max_user_turns", max_user_turns, "messages after which the scripted user ends with ###STOP###", {.min = 1, .max = 10000});
  }
};

// Rules, applied to the agent's last message (content, lower-cased):
//  - first turn: the reason for the call, in the persona's words;
//  - dual control (the env gave user tools): a message naming some of the user's own tools makes the user
//    call each of them once (arguments from the task's user actions of that name, else {}) and say so;
//  - a question asking who the user is / for details (id, email, name, details, which, provide):
//    the known info, once; asked again, the unknown info ("I do not remember ...") or "I gave you all I know";
//  - a request to confirm (confirm, proceed, shall i, should i, go ahead): "yes" when the message names a
//    gold action's tool or no tool at all, else a refusal ("No, I did not ask for that.");
//  - "transfer" to a human: ###TRANSFER###; anything else (a statement): thanks + ###STOP###.
// Synthetic tasks only (Start fails with InvalidArgument otherwise). Thread-safe; deterministic per seed
// (the seed picks among equivalent phrasings).
class ScriptedUser : public UserSimulator {
 public:
  explicit ScriptedUser(ScriptedUserConfig config = {}) : config_(config) {}
  std::string name() const override { return "scripted"; }
  Expected<std::unique_ptr<UserSession>> Start(const EpisodeTask& task, uint64_t seed,
                                               const std::vector<toolgen::ToolSpec>& user_tools) override;

 private:
  ScriptedUserConfig config_;
};

// "You are X. Your id is ..." -> "I am X. My id is ..." (scenario text is written to the user).
std::string FirstPerson(const std::string& second_person);

}  // namespace k2::agents
