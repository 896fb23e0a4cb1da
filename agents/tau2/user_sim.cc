// The scripted τ² user as an agents::UserSimulator, so the episode pipeline (simulate, rl) runs native τ²
// tasks with it: the agent's view of the conversation becomes τ² messages for the scripted user.
#include "agents/episode.h"
#include "agents/tau2/run.h"

namespace k2::agents::tau2 {

namespace {

json ToTau2(const Message& m) {
  if (m.role == "tool") return {{"role", "tool"}, {"id", m.tool_call_id}, {"content", m.content}, {"requestor", "assistant"}};
  json out = {{"role", m.role}, {"content", m.content}};
  if (!m.tool_calls.empty()) {
    json calls = json::array();
    for (auto& c : m.tool_calls) {
      auto args = c.ParsedArguments();
      calls.push_back({{"id", c.id}, {"name", c.name}, {"arguments", args ? *args : json::object()}, {"requestor", "assistant"}});
    }
    out["tool_calls"] = calls;
  }
  return out;
}

class Session : public UserSession {
 public:
  explicit Session(std::unique_ptr<UserSim> sim) : sim_(std::move(sim)) {}

  Expected<UserTurn> Respond(const std::vector<Message>& conversation) override {
    json traj = json::array();
    size_t user_turns = 0;
    std::string report;
    for (auto& m : conversation) {
      if (m.role == "system") continue;
      traj.push_back(ToTau2(m));
      // The user's own calls ran with its last message: they and their results go right after it.
      if (m.role == "user" && ++user_turns == calls_at_ && !own_calls_.is_null()) {
        traj.back()["tool_calls"] = own_calls_["tool_calls"];
        for (auto& r : own_results_) {
          traj.push_back(r);
          report += (report.empty() ? "" : "\n") + r["content"].get<std::string>();
        }
      }
    }
    own_calls_ = nullptr;
    own_results_.clear();
    K2_ASSIGN_OR_RETURN(json m, sim_->Respond(traj));
    UserTurn t;
    t.message.role = "user";
    t.message.content = m.value("content", std::string());
    // What the phone showed is said now, ahead of the answer to the agent's latest message.
    if (!report.empty()) t.message.content = "I did that. My phone shows:\n" + report + (t.message.content.empty() ? "" : "\n") + t.message.content;
    if (m.contains("tool_calls") && m["tool_calls"].is_array() && !m["tool_calls"].empty()) {
      for (auto& c : m["tool_calls"]) t.tool_calls.push_back(ToolCall{c["id"], c["name"], c["arguments"].dump()});
      own_calls_ = m;
      calls_at_ = user_turns + 1;
      if (t.message.content.empty()) t.message.content = "One moment, I am doing that on my phone.";
    }
    return t;
  }

  void ObserveOwnTools(const std::vector<Message>& results) override {
    for (auto& r : results) own_results_.push_back({{"role", "tool"}, {"id", r.tool_call_id}, {"content", r.content}, {"requestor", "user"}});
  }

 private:
  std::unique_ptr<UserSim> sim_;
  json own_calls_;
  std::vector<json> own_results_;
  size_t calls_at_ = 0;  // which user message (1-based) carried own_calls_
};

class Simulator : public UserSimulator {
 public:
  std::string name() const override { return "tau2-scripted"; }
  Expected<std::unique_ptr<UserSession>> Start(const EpisodeTask& task, uint64_t,
                                               const std::vector<toolgen::ToolSpec>& user_tools) override {
    K2_ASSIGN_OR_RETURN(json norm, NormalizeTask(task.env_task, "task " + task.id));
    Task t;
    t.id = norm["id"];
    t.data = std::move(norm);
    if (!t.user_scenario().is_object() || t.user_scenario()["instructions"].is_null())
      return InvalidArgument("τ² scripted user: task " + task.id + " has no user_scenario.instructions");
    return std::unique_ptr<UserSession>(std::make_unique<Session>(MakeScriptedUser(t, user_tools)));
  }
};

}  // namespace

UserSimulator& ScriptedUserSimulator() {
  static Simulator s;
  return s;
}

}  // namespace k2::agents::tau2
