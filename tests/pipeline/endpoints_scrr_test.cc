// Roles on their own endpoints and SCRR as the reward of open-ended tasks inside RL: agent, simulated
// user, judge and critic each reach only their own loopback server, with their own model name and key;
// `rl --critic` scores open-ended tasks (reward scrr) by pairwise comparisons within each group, mixed
// in one job with verifiable sources, and logs that source's reward and critic_agreement.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>

#include <gtest/gtest.h>

#include "core/http/server.h"
#include "core/json.h"
#include "engine/engine.h"
#include "engine/text/tokenizer.h"
#include "tests/cli_util.h"
#include "tests/tiny_model.h"

namespace k2 {
namespace {

namespace fs = std::filesystem;
const std::string kData = std::string(K2GYM_SOURCE_DIR) + "/tests/pipeline/data/";

json JsonOut(const test::ShellResult& r) {
  auto p = r.out.find('{');
  if (p == std::string::npos) return nullptr;
  auto j = ParseJson(r.out.substr(p), "output");
  return j.ok() ? *j : json(nullptr);
}

// An OpenAI-compatible server for one role that records every request (model, Authorization header,
// messages). Replies follow the role: the agent answers, the simulated user greets once and then stops,
// the judge grades, the critic prefers the shorter response (so SCRR scores differ within a group).
class RoleServer {
 public:
  explicit RoleServer(std::string role) : role_(std::move(role)) {
    auto s = http::Server::Start({.port = 0, .max_concurrent = 4}, [this](const http::Request& r) { return Handle(r); });
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    if (s.ok()) server_ = std::move(*s);
  }
  std::string url() const { return server_ ? "http://" + server_->address() + "/v1" : "http://127.0.0.1:9/v1"; }
  struct Seen {
    std::string model, auth, first_system;
  };
  std::vector<Seen> seen() const {
    std::lock_guard<std::mutex> l(mu_);
    return seen_;
  }

 private:
  http::Response Handle(const http::Request& r) {
    auto body = ParseJson(r.body, "request");
    if (!body.ok() || !body->contains("messages") || !(*body)["messages"].is_array() || (*body)["messages"].empty())
      return http::Response::Json(400, "{\"error\":{\"message\":\"bad body\"}}");
    const json& msgs = (*body)["messages"];
    {
      std::lock_guard<std::mutex> l(mu_);
      seen_.push_back({body->value("model", ""), r.Header("authorization"), msgs[0].value("content", "")});
    }
    std::string say;
    if (role_ == "agent") {
      say = "I have updated it for you.";
    } else if (role_ == "user") {
      std::string last;
      for (const auto& m : msgs)
        if (m.value("role", "") == "user") last = m.value("content", "");
      say = last.rfind("(The agent is waiting", 0) == 0 ? "Hello, please update my email address." : "Thanks. ###STOP###";
    } else if (role_ == "judge") {
      say = json{{"score", 0.9}, {"reason", "resolved"}}.dump();
    } else {  // critic: "## Response A\n...\n\n## Response B\n..."
      const std::string u = msgs.back().value("content", "");
      const size_t a = u.find("## Response A\n"), b = u.find("\n\n## Response B\n");
      const size_t la = b - (a + 14), lb = u.size() - (b + 17);
      say = a == std::string::npos || b == std::string::npos ? "[[TIE]]" : la < lb ? "[[A]]" : lb < la ? "[[B]]" : "[[TIE]]";
    }
    json reply = {{"id", "r"}, {"object", "chat.completion"}, {"model", body->value("model", "")},
                  {"choices", {{{"index", 0}, {"message", {{"role", "assistant"}, {"content", say}}}, {"finish_reason", "stop"}}}},
                  {"usage", {{"prompt_tokens", 10}, {"completion_tokens", 5}}}};
    return http::Response::Json(200, reply.dump());
  }

  std::string role_;
  mutable std::mutex mu_;
  std::vector<Seen> seen_;
  std::unique_ptr<http::Server> server_;
};

class EndpointsAndScrr : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(test::K2gymBin())) << "k2gym not built";
    dir_ = fs::temp_directory_path() /
           ("k2gym_roles_" + std::to_string(getpid()) + "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(dir_);
  }
  std::string P(const std::string& n) const { return (dir_ / n).string(); }
  std::string G() const { return "--db " + P("k.db") + " --seed 3 "; }
  void Write(const std::string& name, const json& j) { std::ofstream(P(name)) << j.dump(2); }
  // k2gym with the four roles' keys in its environment; stderr kept for failures.
  test::ShellResult Run(const std::string& args) {
    return test::RunShell("K2_AGENT_KEY=agent-secret K2_USER_KEY=user-secret K2_JUDGE_KEY=judge-secret "
                          "K2_CRITIC_KEY=critic-secret OPENAI_API_KEY=shared-secret " + test::K2gymBin() + " " + args + " 2>&1");
  }
  // A tokenizer over the gold dialogs of `source` and a fresh tiny model in P("init").
  void TinyPolicy(const std::string& source) {
    ASSERT_EQ(Run(G() + "--quiet simulate --source " + source + " --policy gold --no-store --keep-all --out " + P("gold.jsonl")).rc, 0);
    ASSERT_EQ(Run("--quiet tokenizer train --corpus " + P("gold.jsonl") + " --dialogs --vocab-size 512 --threads 1 --out " + P("tok")).rc, 0);
    auto tok = text::Tokenizer::Load(P("tok"));
    ASSERT_TRUE(tok.ok()) << tok.status().ToString();
    auto model = engine::Model<float>::Create(test::TinyModelConfig(tok->vocab_size(), 2048), 13);
    ASSERT_TRUE(model.ok());
    fs::create_directories(P("init"));
    ASSERT_TRUE((*model)->SaveSafetensors(P("init") + "/model.safetensors").ok());
  }
  json RlConfig(int iterations, int tasks, int rollouts) const {
    return {{"rl",
             {{"iterations", iterations},
              {"tasks_per_iteration", tasks},
              {"rollouts_per_task", rollouts},
              {"temperature", {{"kind", "constant"}, {"start", 1.0}, {"end", 1.0}, {"steps", 1}}},
              {"update", {{"seq_len", 2048}, {"micro_batch", 1}}},
              {"threads", 1},
              {"checkpoint_every", 1}}},
            {"rl_run",
             {{"init", P("init")},
              {"tokenizer", P("tok")},
              {"rollout", {{"episode_threads", 2}, {"episode", {{"max_turns", 1}, {"max_tokens_per_turn", 8}, {"max_tokens", 0}}}}}}}};
  }
  json OpenSource() const {
    return {{"kind", "jsonl"}, {"name", "open"}, {"path", kData + "open.jsonl"}, {"task_type", "open"},
            {"env", {{"kind", "answer"}}}, {"reward", {{"type", "scrr"}, {"rubrics", {"Answers what was asked, briefly."}}}}};
  }
  fs::path dir_;
};

// Each server saw requests, every one with its own role's model name and key, none of another role's.
void ExpectOnly(const RoleServer& s, const std::string& role) {
  const auto seen = s.seen();
  EXPECT_FALSE(seen.empty()) << role << " got no request";
  for (const auto& x : seen) {
    EXPECT_EQ(x.model, role + "-model") << role;
    EXPECT_EQ(x.auth, "Bearer " + role + "-secret") << role;
  }
}

TEST_F(EndpointsAndScrr, AgentUserJudgeAndCriticEachReachOnlyTheirOwnEndpoint) {
  RoleServer agent("agent"), user("user"), judge("judge"), critic("critic");
  std::string roles;
  for (const char* r : {"agent", "user", "judge", "critic"})
    roles += std::string(" --set ") + r + "_llm.model=" + r + "-model --set " + r + "_llm.api_key_env=K2_" +
             std::string(r == std::string("agent") ? "AGENT" : r == std::string("user") ? "USER" : r == std::string("judge") ? "JUDGE" : "CRITIC") +
             "_KEY";
  // Synthetic tasks with an LLM user, graded by the LLM judge.
  ASSERT_EQ(Run(G() + "--quiet toolgen synth --count 20").rc, 0);
  ASSERT_EQ(Run(G() + "--quiet toolgen tasks --count 2 --out " + P("tasks.json")).rc, 0);
  Write("llm.json", {{"kind", "synthetic"}, {"tasks", P("tasks.json")}, {"user", "llm"},
                     {"reward", {{"type", "judge"}, {"grade", true}, {"check_state", false}, {"check_communicate", false}}}});
  auto e = Run(G() + "--json eval --source " + P("llm.json") + " --trials 1 --threads 2 --policy openai:" + agent.url() +
               " --user openai:" + user.url() + " --judge openai:" + judge.url() + roles);
  ASSERT_EQ(e.rc, 0) << e.out;
  json j = JsonOut(e);
  ASSERT_EQ(j["trials_detail"].size(), 2u) << e.out;
  for (const auto& t : j["trials_detail"]) EXPECT_EQ(t["end_reason"], "user_stop") << t.dump();
  ExpectOnly(agent, "agent");
  ExpectOnly(user, "user");
  ExpectOnly(judge, "judge");
  for (const auto& x : judge.seen()) EXPECT_EQ(x.first_system.rfind("You grade", 0), 0u) << x.first_system.substr(0, 80);
  EXPECT_TRUE(critic.seen().empty());

  // The critic of rl: SCRR comparisons of an open-ended source go to the critic endpoint only.
  Write("open.json", OpenSource());
  TinyPolicy(P("open.json"));
  Write("rl.json", RlConfig(1, 1, 2));
  const size_t before = agent.seen().size() + user.seen().size() + judge.seen().size();
  auto r = Run(G() + "--json rl --config " + P("rl.json") + " --source " + P("open.json") + " --critic openai:" +
               critic.url() + " --out " + P("rl") + roles);
  ASSERT_EQ(r.rc, 0) << r.out;
  ExpectOnly(critic, "critic");
  EXPECT_EQ(critic.seen().size(), 2u) << "one pair, both orders";
  EXPECT_EQ(agent.seen().size() + user.seen().size() + judge.seen().size(), before);
}

TEST_F(EndpointsAndScrr, OpenEndedSourceIsScoredBySelfCritiqueInsideRlBesideVerifiableSources) {
  RoleServer critic("critic");
  Write("open.json", OpenSource());
  Write("mix.json", {{"kind", "mixture"},
                     {"sources", {{{"weight", 1}, {"source", "math:" + kData + "math.jsonl"}},
                                  {{"weight", 1}, {"source", "if:" + kData + "if.jsonl"}},
                                  {{"weight", 2}, {"source", P("open.json")}}}}});
  TinyPolicy(P("mix.json"));
  // Without a critic an open-ended task cannot be scored: a clear error before any rollout.
  Write("rl.json", RlConfig(2, 3, 2));
  auto no = Run(G() + "rl --config " + P("rl.json") + " --source " + P("mix.json") + " --out " + P("rl0"));
  EXPECT_EQ(no.rc, 2) << no.out;
  EXPECT_NE(no.out.find("has reward scrr"), std::string::npos) << no.out;
  // The policy being trained as its own critic (K2's closed loop), 2 iterations.
  auto r = Run(G() + "--json rl --config " + P("rl.json") + " --source " + P("mix.json") + " --critic policy --out " + P("rl"));
  ASSERT_EQ(r.rc, 0) << r.out;
  json j = JsonOut(r);
  ASSERT_EQ(j["history"].size(), 2u) << r.out;
  double open_episodes = 0, groups = 0;
  for (const auto& h : j["history"]) {
    EXPECT_TRUE(h.contains("critic_agreement")) << h.dump();
    if (h.contains("source.open.episodes")) {
      open_episodes += h["source.open.episodes"].get<double>();
      EXPECT_TRUE(h.contains("source.open.reward_mean")) << h.dump();
    }
    groups += h.value("scrr_groups", 0.0);
    EXPECT_EQ(h.value("scrr_comparisons", 0.0), 2 * h.value("scrr_groups", 0.0)) << "one pair per group, both orders";
  }
  EXPECT_GT(open_episodes, 0) << r.out;
  EXPECT_EQ(open_episodes, 2 * groups);
  std::ifstream csv(P("rl") + "/metrics.csv");
  const std::string text((std::istreambuf_iterator<char>(csv)), {});
  EXPECT_NE(text.find("source.open.reward_mean"), std::string::npos);
  EXPECT_NE(text.find("critic_agreement"), std::string::npos);
  // Every open-ended rollout carries its SCRR reward; the verifiable ones keep their verifier's.
  int open_rollouts = 0;
  for (int it = 0; it < 2; ++it) {
    std::ifstream in(P("rl") + "/trajectories/iter_" + std::to_string(it) + ".jsonl");
    std::string line;
    while (std::getline(in, line)) {
      auto t = ParseJson(line, "iter");
      ASSERT_TRUE(t.ok());
      if ((*t)["task_id"].get<std::string>().rfind("open/", 0) != 0) continue;
      ++open_rollouts;
      EXPECT_TRUE((*t)["reward_components"].contains("reward/scrr")) << line.substr(0, 300);
      EXPECT_FALSE((*t)["reward_components"].contains("score_error")) << line.substr(0, 300);
      EXPECT_EQ((*t)["reward"], (*t)["reward_components"]["reward/scrr"]);
    }
  }
  EXPECT_EQ(open_rollouts, open_episodes);
  // With a critic whose preferences are known (the shorter response), a group's two responses of
  // different lengths get different SCRR rewards.
  Write("open_only.json", {{"kind", "mixture"}, {"sources", {{{"weight", 1}, {"source", P("open.json")}}}}});
  Write("rl1.json", RlConfig(1, 2, 2));
  auto c = Run(G() + "--json rl --config " + P("rl1.json") + " --source " + P("open_only.json") + " --critic openai:" +
               critic.url() + " --out " + P("rl_c"));
  ASSERT_EQ(c.rc, 0) << c.out;
  std::ifstream in(P("rl_c") + "/trajectories/iter_0.jsonl");
  std::vector<json> ts;
  for (std::string line; std::getline(in, line);) ts.push_back(*ParseJson(line, "iter"));
  ASSERT_EQ(ts.size(), 4u);
  for (size_t g = 0; g < 2; ++g) {
    const json &a = ts[2 * g], &b = ts[2 * g + 1];
    const std::string ca = a["messages"].back()["content"], cb = b["messages"].back()["content"];
    const double ra = a["reward"], rb = b["reward"];
    if (ca.size() < cb.size()) {
      EXPECT_GT(ra, rb) << ca << " | " << cb;
    } else if (cb.size() < ca.size()) {
      EXPECT_GT(rb, ra) << ca << " | " << cb;
    } else {
      EXPECT_EQ(ra, rb);
    }
    EXPECT_NEAR(ra + rb, 1.0, 1e-9) << "Bradley–Terry expected win rates of a pair";
  }
}

}  // namespace
}  // namespace k2
