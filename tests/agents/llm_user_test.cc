// LlmUser: the user prompt carries the scenario, the conversation is mirrored (agent -> "user", user ->
// "assistant", tool traffic hidden), stop markers end episodes, broken user replies fail safely.
#include "agents/llm_user.h"

#include <gtest/gtest.h>

#include "agents/scripted_policies.h"
#include "tests/agents/test_world.h"

namespace k2::agents {
namespace {

// Plays the user LLM: replies from a script and records what it was asked.
class ScriptedLlm : public Policy {
 public:
  explicit ScriptedLlm(std::vector<std::string> replies) : replies_(std::move(replies)) {}
  std::string name() const override { return "scripted-llm"; }
  Expected<PolicyTurn> Act(const PolicyRequest& r) override {
    std::lock_guard<std::mutex> l(mu_);
    requests.push_back(r);
    PolicyTurn t;
    t.message = {.role = "assistant", .content = replies_[std::min(i_++, replies_.size() - 1)]};
    return t;
  }
  void EndSession(const std::string& s) override {
    std::lock_guard<std::mutex> l(mu_);
    ended.push_back(s);
  }
  std::vector<PolicyRequest> requests;
  std::vector<std::string> ended;

 private:
  std::mutex mu_;
  std::vector<std::string> replies_;
  size_t i_ = 0;
};

TEST(LlmUser, PromptCarriesTheScenarioAndStopMarkers) {
  const auto& task = *testing::TestWorld().tasks[0];
  std::string p = UserSimulationPrompt(task);
  EXPECT_NE(p.find(task.synth->persona), std::string::npos);
  EXPECT_NE(p.find(task.synth->reason_for_call), std::string::npos);
  EXPECT_NE(p.find(task.synth->known_info), std::string::npos);
  EXPECT_NE(p.find("###STOP###"), std::string::npos);
  EXPECT_NE(p.find("###TRANSFER###"), std::string::npos);
  EXPECT_NE(p.find("###OUT-OF-SCOPE###"), std::string::npos);
}

TEST(LlmUser, MirrorsRolesAndHidesToolTraffic) {
  std::vector<Message> conv = {{.role = "system", .content = "agent rules"},
                               {.role = "user", .content = "I need help"},
                               {.role = "assistant", .content = "", .tool_calls = {{.id = "a", .name = "f", .arguments = "{}"}}},
                               {.role = "tool", .content = "{}", .tool_call_id = "a"},
                               {.role = "assistant", .content = "Your id?"}};
  auto m = MirrorForUser("P", conv);
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m[0].role, "system");
  EXPECT_EQ(m[0].content, "P");
  EXPECT_EQ(m[1].role, "assistant");
  EXPECT_EQ(m[1].content, "I need help");
  EXPECT_EQ(m[2].role, "user");
  EXPECT_EQ(m[2].content, "Your id?");
  EXPECT_EQ(MirrorForUser("P", {}).size(), 2u) << "the first turn gets a cue";
}

TEST(LlmUser, DrivesAnEpisodeUntilItsStopMarker) {
  ScriptedLlm llm({"Hi, I need to change a booking.", "My id is on file.", "Thanks! ###STOP###"});
  LlmUser user(&llm, "llm");
  OracleTaskPolicy oracle({.clarify_rate = 0, .error_rate = 0, .distractor_rate = 0});
  auto env = testing::Maker()();
  ASSERT_TRUE(env.ok());
  auto t = RunEpisode(testing::TestWorld().tasks[0], **env, oracle, &user, {}, 3);
  EXPECT_EQ(t.end_reason, "user_stop");
  EXPECT_EQ(t.user, "llm");
  ASSERT_GE(llm.requests.size(), 2u);
  EXPECT_EQ(llm.requests[1].messages.back().role, "user");  // the agent's question, mirrored
  EXPECT_EQ(llm.ended.size(), 1u) << "the user session ends with the episode";
}

TEST(LlmUser, AnEmptyReplyIsAFailureThatEndsTheEpisode) {
  ScriptedLlm llm({""});
  LlmUser user(&llm, "llm");
  OracleTaskPolicy oracle;
  auto env = testing::Maker()();
  ASSERT_TRUE(env.ok());
  auto t = RunEpisode(testing::TestWorld().tasks[0], **env, oracle, &user, {}, 3);
  EXPECT_EQ(t.end_reason, "user_stop");
  ASSERT_EQ(t.failures.size(), 1u);
  EXPECT_EQ(t.failures[0].rfind("user: empty_user_message", 0), 0u) << t.failures[0];
}

}  // namespace
}  // namespace k2::agents
