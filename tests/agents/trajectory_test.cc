// Trajectory JSON: a full round trip is lossless (floats included), strict parsing names the field,
// and Validate enforces the token-stream invariants the RL and SFT consumers rely on.
#include "agents/trajectory.h"

#include <gtest/gtest.h>

#include "agents/policy.h"
#include "core/rng.h"

namespace k2::agents {
namespace {

Trajectory Sample(uint64_t seed) {
  Rng rng(seed);
  Trajectory t;
  t.id = "traj-" + std::to_string(seed);
  t.task_id = "retail_001";
  t.domain = "retail";
  t.policy = "oracle";
  t.user = "scripted";
  t.seed = seed;
  t.trial = 2;
  t.messages = {{.role = "system", .content = "You are an agent."},
                {.role = "user", .content = "Cancel order #12"},
                {.role = "assistant",
                 .content = "",
                 .tool_calls = {{.id = "functions.cancel:0", .name = "cancel", .arguments = R"({"order":12})"}}},
                {.role = "tool", .content = "ok", .tool_call_id = "functions.cancel:0", .name = "cancel"},
                {.role = "assistant", .content = "Done. ###STOP### é"}};
  t.tools = json::array({{{"type", "function"}, {"function", {{"name", "cancel"}, {"parameters", {{"type", "object"}}}}}}});
  t.end_reason = "user_stop";
  t.failures = {"turn 1: malformed_tool_call: x"};
  t.turns = 2;
  t.tool_calls = {{.turn = 0, .id = "functions.cancel:0", .name = "cancel", .arguments = R"({"order":12})",
                   .valid = true, .is_error = false, .observation = "ok"},
                  {.turn = 1, .id = "c1", .name = "nope", .arguments = "{bad", .valid = false, .is_error = true,
                   .observation = "error", .requestor = "user"}};
  t.final_state = {{"orders", {{"12", {{"status", "cancelled"}}}}}};
  t.final_state_hash = std::string(64, 'a');
  for (int i = 0; i < 50; ++i) {
    t.tokens.push_back(static_cast<int32_t>(rng.Next() % 160000));
    bool gen = i % 3 != 0;
    t.policy_mask.push_back(gen ? 1 : 0);
    // Arbitrary float bit patterns: the round trip must be exact, not merely close.
    float a = gen ? -static_cast<float>(rng.Next() % 100000) / 7919.0f : 0.0f;
    float b = gen ? -static_cast<float>(rng.Next() % 100000) / 104729.0f : 0.0f;
    t.logprobs.push_back(a);
    t.policy_logprobs.push_back(b);
  }
  t.prompt_tokens = 17;
  t.completion_tokens = 33;
  t.reward_components = {{"state", 1.0}, {"communicate", 0.5}};
  t.reward = 0.75;
  t.provenance = {{"generator", "k2gym"}, {"task_source", "tasks.json"}};
  t.timings = {.total_s = 0.5, .policy_s = 0.1, .env_s = 0.2, .user_s = 0.05, .judge_s = 0.01};
  return t;
}

TEST(Trajectory, JsonRoundTripIsLossless) {
  for (uint64_t seed : {1u, 2u, 3u}) {
    Trajectory t = Sample(seed);
    ASSERT_TRUE(t.Validate().ok()) << t.Validate().ToString();
    json j = t.ToJson();
    // Through text as the store and exports see it.
    auto parsed = ParseJson(j.dump(), "test");
    ASSERT_TRUE(parsed.ok());
    auto back = Trajectory::FromJson(*parsed, "traj");
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(back->messages, t.messages);
    EXPECT_EQ(back->tool_calls, t.tool_calls);
    EXPECT_EQ(back->tokens, t.tokens);
    EXPECT_EQ(back->policy_mask, t.policy_mask);
    EXPECT_EQ(back->logprobs, t.logprobs);  // bitwise-equal floats
    EXPECT_EQ(back->policy_logprobs, t.policy_logprobs);
    EXPECT_EQ(back->reward_components, t.reward_components);
    EXPECT_EQ(back->timings, t.timings);
    EXPECT_EQ(back->seed, t.seed);
    EXPECT_EQ(back->final_state, t.final_state);
    EXPECT_EQ(CanonicalJson(back->ToJson()), CanonicalJson(j));
  }
}

TEST(Trajectory, TokenArraysAreOmittedWhenEmpty) {
  Trajectory t = Sample(4);
  t.tokens.clear();
  t.policy_mask.clear();
  t.logprobs.clear();
  t.policy_logprobs.clear();
  json j = t.ToJson();
  EXPECT_FALSE(j.contains("tokens"));
  EXPECT_FALSE(j.contains("policy_mask"));
  auto back = Trajectory::FromJson(j, "t");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_TRUE(back->tokens.empty());
}

TEST(Trajectory, StrictParsingNamesTheField) {
  json j = Sample(5).ToJson();
  json bad = j;
  bad["turns"] = "two";
  auto r = Trajectory::FromJson(bad, "line 3");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("line 3.turns: expected integer, got string"), std::string::npos)
      << r.status().ToString();

  bad = j;
  bad["tokens"][7] = 1.5;
  r = Trajectory::FromJson(bad, "t");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("t.tokens[7]: expected integer"), std::string::npos) << r.status().ToString();

  bad = j;
  bad["policy_mask"][0] = 300;
  r = Trajectory::FromJson(bad, "t");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("t.policy_mask[0]: 300 is out of range"), std::string::npos)
      << r.status().ToString();

  bad = j;
  bad.erase("end_reason");
  r = Trajectory::FromJson(bad, "t");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("t.end_reason: missing"), std::string::npos);

  bad = j;
  bad["tool_calls"][1]["arguments"] = json::object();
  r = Trajectory::FromJson(bad, "t");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("t.tool_calls[1].arguments: expected string, got object"), std::string::npos)
      << r.status().ToString();
}

TEST(Trajectory, ValidateEnforcesTokenInvariants) {
  Trajectory t = Sample(6);
  t.end_reason = "bored";
  EXPECT_NE(t.Validate().message().find("end_reason: expected one of agent_stop|"), std::string::npos);

  t = Sample(6);
  t.logprobs.pop_back();
  EXPECT_NE(t.Validate().message().find("expected equal lengths, got 50/50/49/50"), std::string::npos)
      << t.Validate().ToString();

  t = Sample(6);
  ASSERT_EQ(t.policy_mask[0], 0);
  t.logprobs[0] = -1.0f;  // a logprob on a context (non-generated) token
  EXPECT_NE(t.Validate().message().find("logprobs[0]: expected 0 where policy_mask is 0"), std::string::npos);

  t = Sample(6);
  t.final_state_hash = "abc";
  EXPECT_FALSE(t.Validate().ok());

  // FromJson runs Validate, so a stored row with broken invariants is refused on load.
  t = Sample(6);
  json j = t.ToJson();
  j["policy_logprobs"][0] = -2.0;
  auto r = Trajectory::FromJson(j, "row 9");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("row 9"), std::string::npos) << r.status().ToString();
}

TEST(PolicyTurn, JsonCarriesFailureAndTokensOnlyWhenPresent) {
  PolicyTurn t;
  t.message = {.role = "assistant", .content = "hi"};
  json j = ToJson(t);
  EXPECT_FALSE(j.contains("failure"));
  EXPECT_FALSE(j.contains("tokens"));
  t.failure = "http_500: internal error";
  t.tokens = {1, 2};
  t.logprobs = {-0.5f, -0.25f};
  j = ToJson(t);
  EXPECT_EQ(j["failure"], "http_500: internal error");
  EXPECT_EQ(j["tokens"], json::array({1, 2}));
  EXPECT_EQ(j["logprobs"][1].get<float>(), -0.25f);
}

}  // namespace
}  // namespace k2::agents
