// The rewards <-> agents seam: a Trajectory scores through the tool verifier (incl. ENV_ASSERTION and
// the termination rule), and a Policy serves as SCRR critic (closed loop) and NL_ASSERTION judge.
#include "rewards/policy_bridge.h"

#include <atomic>

#include <gtest/gtest.h>

#include "rewards/tool_verifier.h"

namespace k2::rewards {
namespace {

// A chat policy whose judgement is known: as critic it prefers the response with more words (a
// length-biased critic); as judge it says yes when the transcript contains the assertion's last word.
class ScriptedChatPolicy : public agents::Policy {
 public:
  std::string name() const override { return "scripted-chat"; }
  Expected<agents::PolicyTurn> Act(const agents::PolicyRequest& r) override {
    ++calls;
    seeds.push_back(r.seed);
    EXPECT_TRUE(r.tools.empty());
    EXPECT_EQ(r.temperature, 0.0);
    agents::PolicyTurn t;
    t.message.role = "assistant";
    const std::string& u = r.messages.back().content;
    if (u.find("## Response A") != std::string::npos) {
      size_t a = u.find("## Response A\n") + 14, b = u.find("\n\n## Response B\n");
      std::string ra = u.substr(a, b - a), rb = u.substr(b + 16);
      auto words = [](const std::string& s) { return std::count(s.begin(), s.end(), ' '); };
      t.message.content = words(ra) > words(rb) ? "A is longer. [[A]]" : words(ra) < words(rb) ? "[[B]]" : "[[TIE]]";
    } else {
      size_t as = u.find("## Assertion\n");
      std::string assertion = u.substr(as + 13);
      std::string last = assertion.substr(assertion.rfind(' ') + 1);
      t.message.content = u.substr(0, as).find(last) != std::string::npos ? "[[YES]]" : "[[NO]]";
    }
    if (malformed) t.failure = "malformed_output: no closing tag";
    return t;
  }
  std::atomic<int> calls{0};
  std::vector<uint64_t> seeds;
  bool malformed = false;
};

agents::Trajectory MakeTrajectory() {
  agents::Trajectory t;
  t.id = "t0";
  t.task_id = "task0";
  t.seed = 11;
  t.end_reason = "agent_stop";
  t.completion_tokens = 42;
  Message u{"user", "please ship order O1"};
  Message a{"assistant", ""};
  a.tool_calls.push_back({"c0", "ship_order", R"({"order_id": "O1"})"});
  Message tool{"tool", "{\"status\": \"shipped\"}"};
  tool.tool_call_id = "c0";
  Message fin{"assistant", "Order O1 is shipped."};
  t.messages = {u, a, tool, fin};
  t.final_state = {{"orders", {{"O1", {{"status", "shipped"}}}}}};
  return t;
}

json TaskSpec() {
  return {{"evaluation_criteria",
           {{"reward_basis", {"DB", "ENV_ASSERTION", "ACTION", "NL_ASSERTION"}},
            {"actions", {{{"name", "ship_order"}, {"arguments", {{"order_id", "O1"}}}}}},
            {"env_assertions",
             {{{"func_name", "field_equals"},
               {"arguments", {{"collection", "orders"}, {"id", "O1"}, {"field", "status"}, {"value", "shipped"}}}}}},
            {"nl_assertions", {"The agent says the order is shipped."}}}},
          {"expected_state", {{"orders", {{"O1", {{"status", "shipped"}}}}}}}};
}

TEST(PolicyBridge, TrajectoryScoresThroughTheToolVerifierWithAPolicyJudge) {
  agents::Trajectory t = MakeTrajectory();
  ScoreInput in = TrajectoryToScoreInput(t, TaskSpec());
  EXPECT_EQ(in.termination, "agent_stop");
  EXPECT_EQ(in.response_tokens, 42);
  EXPECT_EQ(in.seed, 11u);
  EXPECT_EQ(in.task_type, "tool");
  ScriptedChatPolicy judge;
  auto r = MakeToolRewardWithJudge({{"type", "tool"}}, PolicyChat(judge), "tool");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto s = (*r)->Score(in);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->value, 1) << s->explanation;
  EXPECT_EQ(s->components.at("db"), 1);
  EXPECT_EQ(s->components.at("env_assertion"), 1);
  EXPECT_EQ(s->components.at("action"), 1);
  EXPECT_EQ(s->components.at("nl_assertion"), 1);
  EXPECT_EQ(judge.calls, 1);

  // The judge says no: the product is 0. A trajectory that ran out of turns scores 0 whatever it did.
  json spec = TaskSpec();
  spec["evaluation_criteria"]["nl_assertions"] = {"The agent offers a refund."};
  auto s2 = (*r)->Score(TrajectoryToScoreInput(t, spec));
  ASSERT_TRUE(s2.ok());
  EXPECT_EQ(s2->value, 0);
  t.end_reason = "max_turns";
  auto s3 = (*r)->Score(TrajectoryToScoreInput(t, TaskSpec()));
  ASSERT_TRUE(s3.ok());
  EXPECT_EQ(s3->value, 0);
  EXPECT_EQ(s3->components.at("terminated_ok"), 0);

  // The final state changed behind the agent's back: DB and ENV_ASSERTION both fail.
  t = MakeTrajectory();
  t.final_state["orders"]["O1"]["status"] = "open";
  auto s4 = (*r)->Score(TrajectoryToScoreInput(t, TaskSpec()));
  ASSERT_TRUE(s4.ok());
  EXPECT_EQ(s4->components.at("db"), 0);
  EXPECT_EQ(s4->components.at("env_assertion"), 0);
}

TEST(PolicyBridge, PolicyCriticClosedLoop) {
  ScriptedChatPolicy policy;
  auto critic = MakePolicyCritic(policy);
  // Verifiable rewards agree with "longer is better" on p1 and disagree on p2.
  std::vector<VerifiedGroup> groups = {
      {"p1", {"a b c d", "a", "a b"}, {1, 0, 0}, {}},
      {"p2", {"x y z", "x"}, {0, 1}, {}},
  };
  std::string path = std::string(K2GYM_BINARY_DIR) + "/policy_critic_loop.jsonl";
  auto r = RunCriticLoop(*critic, groups, CoreRubrics(), path);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->agreement.decisive, 3);
  EXPECT_EQ(r->agreement.agree, 2);
  EXPECT_EQ(policy.calls, 6);
  auto lines = ReadJsonLines(path);
  ASSERT_TRUE(lines.ok());
  EXPECT_EQ(lines->size(), 6u);
  // Bradley–Terry through the policy ranks by length; both orders agree (the critic is order-consistent).
  auto g = ScoreGroup(*critic, "p", {"a", "a b c", "a b"}, CoreRubrics());
  ASSERT_TRUE(g.ok());
  EXPECT_GT(g->scores[1], g->scores[2]);
  EXPECT_GT(g->scores[2], g->scores[0]);
  EXPECT_EQ(g->critic_failures, 0);
  // Same prompt -> same seed, whatever the call order.
  policy.seeds.clear();
  auto chat = PolicyChat(policy, {.seed = 5});
  std::vector<Message> m1 = {Message{"user", "## Response A\nx\n\n## Response B\ny"}};
  std::vector<Message> m2 = {Message{"user", "## Response A\ny\n\n## Response B\nx"}};
  ASSERT_TRUE(chat(m1).ok());
  ASSERT_TRUE(chat(m2).ok());
  ASSERT_TRUE(chat(m1).ok());
  EXPECT_EQ(policy.seeds[0], policy.seeds[2]);
  EXPECT_NE(policy.seeds[0], policy.seeds[1]);
  // Malformed critic output is an error (ScoreGroup counts it as a failure, i.e. a tie).
  policy.malformed = true;
  auto bad = chat(m1);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("scripted-chat"), std::string::npos);
  auto g2 = ScoreGroup(*critic, "p", {"a", "a b"}, CoreRubrics());
  ASSERT_TRUE(g2.ok());
  EXPECT_EQ(g2->critic_failures, 2);
}

}  // namespace
}  // namespace k2::rewards
