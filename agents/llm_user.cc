// LlmUser: scenario prompt, role mirroring, and the per-episode session over a shared Policy.
// Dual control: the user's own tools are offered to the LLM; its calls are executed by the environment.
#include "agents/llm_user.h"

#include "agents/episode.h"
#include "core/rng.h"

namespace k2::agents {

std::string UserSimulationPrompt(const EpisodeTask& task) {
  std::string p =
      "You are playing a USER who contacts a customer service agent. Stay in character; write only the user's "
      "next message, short and natural. Never invent ids, amounts or facts you were not given.\n";
  if (task.synth) {
    const auto& t = *task.synth;
    p += "\nPersona: " + t.persona + "\nWhy you are calling: " + t.reason_for_call +
         "\nWhat you know (share a piece only when the agent asks for it): " + t.known_info;
    if (!t.unknown_info.empty()) p += "\nWhat you do not know (say so if asked): " + t.unknown_info;
    p += "\nInstructions: " + t.task_instructions;
  } else {
    p += "\nTask: " + task.env_task.dump();
  }
  p += std::string("\n\nWhen your request is fully handled (or cannot be), end your message with ") + kUserStop +
       ". If the agent transfers you to a human, answer " + kUserTransfer + ". If the agent cannot help with this "
       "kind of request at all, answer " + kUserOutOfScope + ".";
  return p;
}

std::vector<Message> MirrorForUser(const std::string& prompt, const std::vector<Message>& conversation) {
  std::vector<Message> out = {{.role = "system", .content = prompt}};
  for (const auto& m : conversation) {
    if (m.role == "assistant" && !m.content.empty()) out.push_back({.role = "user", .content = m.content});
    else if (m.role == "user") out.push_back({.role = "assistant", .content = m.content});
  }
  // The LLM opens the conversation: give it a cue so the request is well-formed for every server.
  if (out.size() == 1) out.push_back({.role = "user", .content = "(The agent is waiting. Write your first message.)"});
  return out;
}

namespace {

class LlmSession : public UserSession {
 public:
  LlmSession(Policy* llm, std::string prompt, uint64_t seed, json tools)
      : llm_(llm), prompt_(std::move(prompt)), rng_(seed), tools_(std::move(tools)),
        session_("user-" + std::to_string(seed)) {}
  ~LlmSession() override { llm_->EndSession(session_); }

  Expected<UserTurn> Respond(const std::vector<Message>& conversation) override {
    PolicyRequest req{.messages = MirrorForUser(prompt_, conversation), .tools = tools_, .seed = rng_.Next(), .session = session_};
    // The user's own tool results (dual control) as context: it has no assistant tool_calls turn in
    // this mirrored view, so they travel as text.
    if (!own_results_.empty()) {
      std::string text = "(Results of your own tool calls)";
      for (const auto& r : own_results_) text += "\n" + r.name + ": " + r.content;
      req.messages.push_back({.role = "user", .content = text});
      own_results_.clear();
    }
    auto t = llm_->Act(req);
    if (!t.ok()) return t.status().Context("user LLM");
    UserTurn out;
    out.message = {.role = "user", .content = t->message.content};
    out.tool_calls = t->message.tool_calls;
    if (t->failure) out.failure = *t->failure;
    if (!out.tool_calls.empty() && tools_.empty()) {
      out.failure = "user_tool_call: the user LLM called tools but owns none";
      out.tool_calls.clear();
    }
    if (out.message.content.empty() && out.tool_calls.empty()) {
      if (!out.failure) out.failure = "empty_user_message: the user LLM said nothing";
      out.message.content = kUserStop;
    }
    return out;
  }
  void ObserveOwnTools(const std::vector<Message>& results) override { own_results_ = results; }

 private:
  Policy* llm_;
  std::string prompt_;
  Rng rng_;
  json tools_;
  std::string session_;
  std::vector<Message> own_results_;
};

}  // namespace

Expected<std::unique_ptr<UserSession>> LlmUser::Start(const EpisodeTask& task, uint64_t seed,
                                                     const std::vector<toolgen::ToolSpec>& user_tools) {
  json tools = json::array();
  for (const auto& t : user_tools) tools.push_back(toolgen::ToOpenAITool(t));
  return std::unique_ptr<UserSession>(std::make_unique<LlmSession>(llm_, UserSimulationPrompt(task), seed, tools));
}

}  // namespace k2::agents
