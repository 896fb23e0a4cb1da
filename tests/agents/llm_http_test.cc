// LlmUser and the LLM judge over real HTTP: HttpPolicy (libcurl) against an OpenAI-compatible server of
// ours on loopback whose "model" is a deterministic rule set reading the prompts it is sent. Episodes run
// end to end (oracle agent <-> env <-> LLM user), including dual control (the user LLM calls its own
// phone tools through the API), and the LLM judge's score reaches the verdict.
#include <gtest/gtest.h>

#include <atomic>

#include "agents/dual_control.h"
#include "agents/http_policy.h"
#include "rewards/judge.h"
#include "agents/llm_user.h"
#include "agents/scripted_policies.h"
#include "core/http/server.h"
#include "tests/agents/test_world.h"

namespace k2::agents {
namespace {

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The text after `label` up to the end of its line in `prompt` ("" when absent).
std::string Field(const std::string& prompt, const std::string& label) {
  size_t a = prompt.find(label);
  if (a == std::string::npos) return "";
  a += label.size();
  return prompt.substr(a, prompt.find('\n', a) - a);
}

// An OpenAI-compatible chat server whose replies follow from the request: a user simulator for
// requests whose system prompt is LlmUser's, a grader for the judge's. Records every request body.
class RuleModelServer {
 public:
  explicit RuleModelServer(std::string judge_reply = "") : judge_reply_(std::move(judge_reply)) {
    auto s = http::Server::Start({.port = 0, .max_concurrent = 8}, [this](const http::Request& r) { return Handle(r); });
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    server_ = std::move(*s);
  }
  std::string url() const { return "http://" + server_->address() + "/v1"; }
  std::vector<json> bodies() const {
    std::lock_guard<std::mutex> l(mu_);
    return bodies_;
  }

 private:
  static std::string Reply(const json& message) {
    return json{{"id", "r"}, {"object", "chat.completion"},
                {"choices", {{{"index", 0}, {"message", message}, {"finish_reason", "stop"}}}},
                {"usage", {{"prompt_tokens", 20}, {"completion_tokens", 5}}}}
        .dump();
  }

  http::Response Handle(const http::Request& r) {
    auto body = ParseJson(r.body, "request");
    if (!body.ok() || !body->contains("messages")) return http::Response::Json(400, "{\"error\":\"bad body\"}");
    {
      std::lock_guard<std::mutex> l(mu_);
      bodies_.push_back(*body);
    }
    const json& msgs = (*body)["messages"];
    const std::string system = msgs[0].value("content", "");
    if (system.rfind("You grade", 0) == 0) {
      std::string text = judge_reply_;
      if (text.empty()) {
        const std::string conv = msgs.back().value("content", "");
        const bool handled = conv.find("Everything you asked for is handled") != std::string::npos;
        text = json{{"score", handled ? 0.9 : 0.1}, {"reason", handled ? "resolved" : "unresolved"}}.dump();
      }
      return http::Response::Json(200, Reply({{"role", "assistant"}, {"content", text}}));
    }
    // The user simulator: the agent's last message arrives as role "user" (mirrored).
    // Results of the user's own tool calls travel as a "user" note after the agent's message: context only.
    std::string agent;
    for (const auto& m : msgs)
      if (m.value("role", "") == "user" && m.value("content", "").rfind("(Results of your own tool calls)", 0) != 0)
        agent = m.value("content", "");
    const std::string low = Lower(agent);
    std::string say;
    json calls = json::array();
    if (agent.rfind("(The agent is waiting", 0) == 0) {
      say = "Hello. " + Field(system, "Why you are calling: ");
    } else if (low.find("anything else") != std::string::npos) {
      say = "No, that is all. Thank you! ###STOP###";
    } else {
      if (body->contains("tools"))
        for (const auto& t : (*body)["tools"]) {
          const std::string name = t["function"].value("name", "");
          if (low.find(name) != std::string::npos)
            calls.push_back({{"id", "u" + std::to_string(calls.size())}, {"type", "function"},
                             {"function", {{"name", name}, {"arguments", "{}"}}}});
        }
      if (!calls.empty()) say = "Okay, doing that now.";
      else if (low.find("confirm") != std::string::npos) say = "Yes, please go ahead.";
      else if (agent.find('?') != std::string::npos) say = "Sure. " + Field(system, "share a piece only when the agent asks for it): ");
      else say = "Thanks. ###STOP###";
    }
    json message = {{"role", "assistant"}, {"content", say}};
    if (!calls.empty()) message["tool_calls"] = calls;
    return http::Response::Json(200, Reply(message));
  }

  std::string judge_reply_;
  mutable std::mutex mu_;
  std::vector<json> bodies_;
  std::unique_ptr<http::Server> server_;
};

std::unique_ptr<HttpPolicy> Client(const RuleModelServer& s) {
  auto p = HttpPolicy::Create({.base_url = s.url(), .model = "rules", .api_key_env = "", .timeout_s = 10});
  EXPECT_TRUE(p.ok()) << p.status().ToString();
  return std::move(*p);
}

TEST(LlmOverHttp, LlmUserAndLlmJudgeDriveSyntheticEpisodesEndToEnd) {
  RuleModelServer server;
  auto user_llm = Client(server);
  auto judge_llm = Client(server);
  LlmUser user(user_llm.get(), "openai:rules");
  OracleTaskPolicy oracle({.clarify_rate = 0.5, .error_rate = 0, .distractor_rate = 0});
  rewards::Judge judge({}, judge_llm.get());
  std::vector<EpisodeJob> jobs;
  for (size_t i = 0; i < 8; ++i) jobs.push_back({testing::TestWorld().tasks[i], 0});
  auto trajs = RunEpisodes(jobs, testing::Maker(), oracle, &user, {.threads = 2, .seed = 12});
  int kept = 0;
  for (size_t i = 0; i < trajs.size(); ++i) {
    auto& t = trajs[i];
    EXPECT_EQ(t.end_reason, "user_stop") << t.error;
    EXPECT_EQ(t.user, "openai:rules");
    rewards::Verdict v = judge.Apply(t, *jobs[i].task);
    ASSERT_TRUE(v.components.count("llm")) << v.detail;
    EXPECT_DOUBLE_EQ(v.components["llm"], 0.9);
    kept += v.keep;
    // The user revealed what it knows because the agent asked: its words came over HTTP.
    bool revealed = false;
    for (const auto& m : t.messages)
      revealed |= m.role == "user" && m.content.find(jobs[i].task->synth->known_info.substr(0, 12)) != std::string::npos;
    EXPECT_TRUE(revealed) << t.task_id;
  }
  EXPECT_GE(kept, 6);
  // rewards::Judge requests are greedy and carry the rubric; user requests carry no tools (no dual control here).
  int judge_requests = 0;
  for (const auto& b : server.bodies()) {
    if (b["messages"][0].value("content", "").rfind("You grade", 0) == 0) {
      ++judge_requests;
      EXPECT_EQ(b.value("temperature", -1.0), 0.0);
      EXPECT_NE(b["messages"][1].value("content", "").find("Goal: "), std::string::npos);
    } else {
      EXPECT_TRUE(!b.contains("tools") || b["tools"].empty());
    }
  }
  EXPECT_EQ(judge_requests, 8);
}

TEST(LlmOverHttp, TheUserLlmCallsItsOwnToolsInDualControlEpisodes) {
  RuleModelServer server;
  auto user_llm = Client(server);
  LlmUser user(user_llm.get(), "openai:rules");
  OracleTaskPolicy oracle({.clarify_rate = 0, .error_rate = 0, .distractor_rate = 0});
  rewards::Judge judge;
  std::vector<EpisodeJob> jobs;
  for (auto& t : GenerateDualControlTasks(3, 16)) jobs.push_back({EpisodeTask::FromSynth(std::move(t)), 0});
  auto trajs = RunEpisodes(jobs, testing::Maker(), oracle, &user, {.threads = 2, .seed = 1});
  int user_calls = 0;
  for (size_t i = 0; i < trajs.size(); ++i) {
    rewards::Verdict v = judge.Evaluate(trajs[i], *jobs[i].task);
    EXPECT_TRUE(v.keep) << trajs[i].task_id << ": " << v.detail;
    for (const auto& c : trajs[i].tool_calls) user_calls += c.requestor == "user" && c.valid && !c.is_error;
  }
  EXPECT_GT(user_calls, 8);
  // The user LLM was offered exactly the phone's tools; the agent never saw them.
  bool offered = false;
  for (const auto& b : server.bodies())
    if (b.contains("tools"))
      for (const auto& t : b["tools"]) {
        const std::string n = t["function"].value("name", "");
        offered |= n == "toggle_airplane_mode";
        EXPECT_NE(n, "resume_line");
      }
  EXPECT_TRUE(offered);
}

TEST(LlmOverHttp, AJudgeReplyWithoutAScoreRejectsWithItsReason) {
  RuleModelServer server("I think it went fine.");
  auto judge_llm = Client(server);
  rewards::Judge judge({}, judge_llm.get());
  OracleTaskPolicy oracle({.clarify_rate = 0, .error_rate = 0, .distractor_rate = 0});
  auto user_llm = Client(server);
  LlmUser user(user_llm.get(), "openai:rules");
  auto env = testing::Maker()();
  ASSERT_TRUE(env.ok());
  auto t = RunEpisode(testing::TestWorld().tasks[0], **env, oracle, &user, {}, 2);
  rewards::Verdict v = judge.Evaluate(t, *testing::TestWorld().tasks[0]);
  EXPECT_FALSE(v.keep);
  EXPECT_NE(std::find(v.reasons.begin(), v.reasons.end(), "llm_judge_error"), v.reasons.end());
  EXPECT_NE(v.detail.find("no JSON object"), std::string::npos) << v.detail;
}

}  // namespace
}  // namespace k2::agents
