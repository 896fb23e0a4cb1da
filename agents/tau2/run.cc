// τ² episode orchestration on a native domain and the LLM user simulator (the scripted user: scripted_user.cc).
#include "agents/tau2/run.h"

#include "agents/user.h"

namespace k2::agents::tau2 {

namespace {

std::string Content(const json& m) {
  return m.contains("content") && m["content"].is_string() ? m["content"].get<std::string>() : "";
}
bool HasCalls(const json& m) { return m.contains("tool_calls") && m["tool_calls"].is_array() && !m["tool_calls"].empty(); }

// The conversation as the agent sees it: its system prompt, every text message, its own tool calls and
// their results; the user's tool traffic stays on the user's side.
std::vector<Message> AgentView(const std::string& system, const json& traj) {
  std::vector<Message> out{Message{"system", system, {}, "", ""}};
  for (auto& m : traj) {
    std::string role = m.value("role", "");
    if (role == "assistant") {
      out.push_back(ToChat(m));
    } else if (role == "user") {
      if (!Content(m).empty()) out.push_back(Message{"user", Content(m), {}, "", ""});
    } else if (role == "tool" && m.value("requestor", "assistant") == "assistant") {
      out.push_back(ToChat(m));
    }
  }
  return out;
}

// The user LLM's view: roles mirrored, its own tool traffic kept.
std::vector<Message> UserView(const std::string& system, const json& traj) {
  std::vector<Message> out{Message{"system", system, {}, "", ""}};
  for (auto& m : traj) {
    std::string role = m.value("role", "");
    if (role == "assistant") {
      if (!Content(m).empty()) out.push_back(Message{"user", Content(m), {}, "", ""});
    } else if (role == "user") {
      Message c = ToChat(m);
      c.role = "assistant";
      out.push_back(std::move(c));
    } else if (role == "tool" && m.value("requestor", "assistant") == "user") {
      out.push_back(ToChat(m));
    }
  }
  return out;
}

json CallsToTau2(const std::vector<ToolCall>& calls, const std::string& requestor, int& counter) {
  json out = json::array();
  for (auto& c : calls) {
    auto args = c.ParsedArguments();
    json tc = {{"id", c.id.empty() ? requestor + "_call_" + std::to_string(counter) : c.id},
               {"name", c.name},
               {"arguments", args ? *args : json::object()},
               {"requestor", requestor}};
    if (!args) tc["arguments_text"] = c.arguments;  // kept for the record: not a JSON object
    ++counter;
    out.push_back(std::move(tc));
  }
  return out;
}

class LlmUser : public UserSim {
 public:
  LlmUser(Policy* llm, std::string system, json tools, uint64_t seed)
      : llm_(llm), system_(std::move(system)), tools_(std::move(tools)), seed_(seed) {}
  Expected<json> Respond(const json& traj) override {
    PolicyRequest req;
    req.messages = UserView(system_, traj);
    req.tools = tools_;
    req.seed = seed_ + static_cast<uint64_t>(turn_++);
    K2_ASSIGN_OR_RETURN(PolicyTurn t, llm_->Act(req));
    // A malformed user turn (t.failure: a stray special token, a bad call) is what an OpenAI client
    // would see of it: its text, which τ²-bench's user simulator passes on as the user's message. Only
    // an empty turn is an error.
    json m = {{"role", "user"}, {"content", t.message.content}};
    if (!t.message.tool_calls.empty()) m["tool_calls"] = CallsToTau2(t.message.tool_calls, "user", calls_);
    if (t.message.content.empty() && t.message.tool_calls.empty()) return Internal("user LLM gave an empty message");
    return m;
  }

 private:
  Policy* llm_;
  std::string system_;
  json tools_;
  uint64_t seed_;
  int turn_ = 0, calls_ = 0;
};

}  // namespace

std::string UserSystemPrompt(const std::string& guidelines, const Task& task) {
  std::string g = guidelines;
  // τ²'s guidelines file marks where its runtime persona settings go; k2gym's user has none, so the mark
  // is removed.
  for (size_t p; (p = g.find("<PERSONA_GUIDELINES>")) != std::string::npos;) g.erase(p, 20);
  return g + "\n\n<scenario>\n" + ScenarioText(task) + "\n</scenario>";
}

std::unique_ptr<UserSim> MakeLlmUser(Policy* llm, const Task& task, const std::string& guidelines, json user_tools, uint64_t seed) {
  return std::make_unique<LlmUser>(llm, UserSystemPrompt(guidelines, task), std::move(user_tools), seed);
}

Expected<RunResult> Run(const std::shared_ptr<const Domain>& domain, const Task& task, Policy& agent, UserSim& user,
                        const RunLimits& limits, uint64_t seed) {
  K2_ASSIGN_OR_RETURN(State state, InitialState(domain, task, nullptr));
  RunResult r;
  const json& is = task.initial_state();
  bool agent_turn = false;
  if (is.is_object() && is["message_history"].is_array() && !is["message_history"].empty()) {
    r.trajectory = is["message_history"];
    // The side that did not speak last speaks next (tool results continue the caller's turn).
    for (auto it = r.trajectory.rbegin(); it != r.trajectory.rend(); ++it) {
      std::string role = (*it).value("role", "");
      if (role == "user") { agent_turn = !HasCalls(*it); break; }
      if (role == "assistant") { agent_turn = HasCalls(*it); break; }
    }
  } else {
    r.trajectory.push_back({{"role", "assistant"}, {"content", kAgentGreeting}});
  }
  const std::string system = AgentSystemPrompt(*domain);
  json agent_tools = json::array();
  for (auto& s : domain->ToolSpecs(false)) agent_tools.push_back(toolgen::ToOpenAITool(s));
  const std::string session = "tau2:" + task.id + ":" + std::to_string(seed);
  int calls = 0, turn = 0;

  auto run_calls = [&](json& msg, const std::string& req) {
    for (auto& tc : msg["tool_calls"]) {
      CallResult c = tc.contains("arguments_text")
                         ? CallResult{"Error: the arguments are not a JSON object", true}
                         : state.Call(req, tc["name"], tc["arguments"]);
      r.trajectory.push_back({{"role", "tool"}, {"id", tc["id"]}, {"content", c.content}, {"requestor", req}, {"error", c.error}});
      ++r.steps;
      if (c.error) ++r.tool_errors;
    }
  };
  auto over_limits = [&]() {
    if (r.steps >= limits.max_steps) r.termination = "max_steps";
    else if (r.tool_errors >= limits.max_errors) r.termination = "too_many_errors";
    return !r.termination.empty();
  };

  while (r.termination.empty()) {
    if (agent_turn) {
      PolicyRequest req;
      req.messages = AgentView(system, r.trajectory);
      req.tools = agent_tools;
      req.temperature = limits.temperature;
      req.max_tokens = limits.max_tokens;
      req.seed = seed * 1000003ULL + static_cast<uint64_t>(turn++);
      req.session = session;
      auto t = agent.Act(req);
      if (!t.ok()) {
        r.termination = "agent_error";
        r.error = t.status().ToString();
        break;
      }
      if (t->failure && t->message.tool_calls.empty() && t->message.content.empty()) {
        r.termination = "agent_error";
        r.error = *t->failure;
        break;
      }
      json msg = {{"role", "assistant"}, {"content", t->message.content}};
      if (!t->message.tool_calls.empty()) msg["tool_calls"] = CallsToTau2(t->message.tool_calls, "assistant", calls);
      r.trajectory.push_back(msg);
      ++r.steps;
      if (HasCalls(msg)) {
        run_calls(r.trajectory.back(), "assistant");
      } else if (t->message.content.find(kUserStop) != std::string::npos) {
        r.termination = "agent_stop";
        break;
      } else {
        agent_turn = false;
      }
    } else {
      auto m = user.Respond(r.trajectory);
      if (!m.ok()) {
        r.termination = "user_error";
        r.error = m.status().ToString();
        break;
      }
      r.trajectory.push_back(*m);
      ++r.steps;
      if (HasCalls(*m)) {
        run_calls(r.trajectory.back(), "user");
      } else {
        std::string why = UserEndReason(Content(*m));
        if (!why.empty()) {
          r.termination = "user_stop";
          r.stop_detail = why == "user_stop" ? "stop" : why;
          break;
        }
        agent_turn = true;
      }
    }
    over_limits();
  }
  agent.EndSession(session);
  r.final_state = std::make_shared<const State>(std::move(state));
  return r;
}

}  // namespace k2::agents::tau2
