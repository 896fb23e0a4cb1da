// Table-driven verifier tests: every line of tests/rewards/data/<kind>.jsonl is scored and compared with
// its "expected" value (the same files `k2gym reward check` runs), plus unit tests of the pieces.
#include <algorithm>
#include <numeric>

#include <gtest/gtest.h>

#include "core/rng.h"
#include "rewards/ast_match.h"
#include "rewards/check.h"
#include "rewards/instruction.h"
#include "rewards/math_verifier.h"
#include "rewards/tool_verifier.h"

namespace k2::rewards {
namespace {

std::string DataPath(const std::string& name) { return std::string(K2GYM_SOURCE_DIR) + "/tests/rewards/data/" + name; }

void RunTable(const std::string& kind, size_t min_cases) {
  auto cases = ReadJsonLines(DataPath(kind + ".jsonl"));
  ASSERT_TRUE(cases.ok()) << cases.status().ToString();
  ASSERT_GE(cases->size(), min_cases) << "the acceptance bar is >= " << min_cases << " cases per verifier";
  auto out = CheckCases(kind, *cases, kind + ".jsonl");
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  int failed = 0;
  for (auto& o : *out) {
    EXPECT_TRUE(o.has_expected) << o.id;
    if (!o.matches) {
      ++failed;
      ADD_FAILURE() << kind << " case " << o.id << ": " << o.mismatch << "\n  " << o.result.explanation;
    }
  }
  EXPECT_EQ(failed, 0);
}

TEST(VerifierTables, Math) { RunTable("math", 50); }
TEST(VerifierTables, InstructionFollowing) { RunTable("if", 50); }
TEST(VerifierTables, ToolUse) { RunTable("tool", 50); }
TEST(VerifierTables, FunctionCallAst) { RunTable("ast", 50); }

TEST(MathExtract, PrefersLastBoxedThenPhraseThenNumber) {
  EXPECT_EQ(ExtractAnswer("a \\boxed{1} b \\boxed{1}").method, "boxed");
  EXPECT_EQ(ExtractAnswer("x=3 so the answer is 7").text, "7");
  EXPECT_EQ(ExtractAnswer("we get 3, then 4.5").text, "4.5");
  EXPECT_EQ(ExtractAnswer("\\boxed{2} or \\boxed{3}").method, "hedged");
  EXPECT_EQ(ExtractAnswer("\\boxed{\\frac{1}{\\sqrt{2}}}").text, "\\frac{1}{\\sqrt{2}}");
  EXPECT_EQ(ExtractAnswer("\\boxed{unclosed").method, "none");
}

TEST(MathNormalize, PercentHasTwoReadings) {
  NormalizedAnswer a = NormalizeAnswer("12.5\\%");
  ASSERT_EQ(a.values.size(), 2u);
  EXPECT_TRUE(a.values[0] == *Rational::Parse("12.5"));
  EXPECT_TRUE(a.values[1] == *Rational::Parse("1/8"));
}

TEST(MathReward, BadReferenceIsAnError) {
  auto r = MakeReward({{"type", "math"}});
  ASSERT_TRUE(r.ok());
  ScoreInput in;
  in.messages.push_back(Message{"assistant", "\\boxed{1}", {}, "", ""});
  auto s = (*r)->Score(in);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("task.reference"), std::string::npos) << s.status().ToString();
}

TEST(Instruction, Counting) {
  EXPECT_EQ(CountWords("Hello, world! It's 2024."), 5);  // It, s (like \w+)
  EXPECT_EQ(CountWords(""), 0);
  EXPECT_EQ(CountSentences("Dr. Who? Yes. No"), 4);
  EXPECT_EQ(CountSentences("他来了。她也来了。"), 2);
  EXPECT_EQ(CountParagraphs("\n\na\nb\n\n  \nc\n"), 2);
}

TEST(Instruction, MalformedConstraintNamesTheField) {
  auto r = CheckConstraint("x", {{"type", "word_count"}, {"relation", "about"}, {"num", 3}}, "task.constraints[0]");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("task.constraints[0].relation"), std::string::npos);
  auto u = CheckConstraint("x", {{"type", "word_cont"}}, "c");
  ASSERT_FALSE(u.ok());
  EXPECT_NE(u.status().message().find("did you mean \"word_count\""), std::string::npos) << u.status().ToString();
  auto n = CheckConstraint("x", {{"type", "placeholders"}, {"num", -1}}, "c");
  EXPECT_FALSE(n.ok());
}

TEST(Instruction, AtLeastFifteenConstraintTypes) { EXPECT_GE(ConstraintTypes().size(), 15u); }

TEST(Instruction, ClaimDetector) {
  EXPECT_TRUE(ClaimsCompliance("I have followed all the instructions."));
  EXPECT_TRUE(ClaimsCompliance("Word count: 300"));
  EXPECT_FALSE(ClaimsCompliance("Here is the poem you asked for."));
}

TEST(ToolVerifier, StateHashIgnoresKeyOrder) {
  json a = json::parse(R"({"b": 1, "a": {"y": [1, 2], "x": null}})");
  json b = json::parse(R"({"a": {"x": null, "y": [1, 2]}, "b": 1})");
  EXPECT_EQ(StateHash(a), StateHash(b));
  EXPECT_NE(StateHash(a), StateHash(json::parse(R"({"a": {"x": null, "y": [2, 1]}, "b": 1})")));
}

TEST(ToolVerifier, NlAssertionWithoutJudgeIsAClearError) {
  auto r = MakeReward({{"type", "tool"}});
  ASSERT_TRUE(r.ok());
  ScoreInput in;
  in.termination = "agent_stop";
  in.task = {{"evaluation_criteria", {{"reward_basis", {"DB", "NL_ASSERTION"}}, {"nl_assertions", {"The agent refuses."}}}},
             {"expected_state", json::object()}};
  auto s = (*r)->Score(in);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(s.status().message().find("needs a judge"), std::string::npos) << s.status().message();
  auto bad = MakeReward({{"type", "tool"}, {"reward_basis", "x"}});
  ASSERT_FALSE(bad.ok());
  auto unknown = MakeReward({{"type", "tool"}});
  in.task["evaluation_criteria"]["reward_basis"] = {"DB", "VIBES"};
  auto u = (*unknown)->Score(in);
  ASSERT_FALSE(u.ok());
  EXPECT_NE(u.status().message().find("VIBES"), std::string::npos);
}

TEST(ToolVerifier, NlAssertionsAskTheJudgeOncePerAssertion) {
  // A judge whose answers are known: yes unless the assertion mentions "refund".
  std::vector<std::string> asked;
  ChatFn judge = [&](const std::vector<Message>& m) -> Expected<std::string> {
    EXPECT_EQ(m.size(), 2u);
    EXPECT_NE(m[1].content.find("I cannot cancel"), std::string::npos);  // the transcript is shown
    asked.push_back(m[1].content.substr(m[1].content.find("## Assertion")));
    bool no = m[1].content.find("refund", m[1].content.find("## Assertion")) != std::string::npos;
    return std::string(no ? "It did not. [[NO]]" : "Mentioned [[NO]] earlier, but finally [[YES]]");
  };
  auto r = MakeToolRewardWithJudge({{"type", "tool"}}, judge, "tool");
  ASSERT_TRUE(r.ok());
  ScoreInput in;
  in.termination = "user_stop";
  Message u{"user", "Cancel R1 please"}, a{"assistant", "I cannot cancel R1: the notice period has passed."};
  in.messages = {u, a};
  in.task = {{"evaluation_criteria",
              {{"reward_basis", {"NL_ASSERTION"}},
               {"nl_assertions", {"The agent declines to cancel R1.", "The agent cites the notice rule."}}}}};
  auto s = (*r)->Score(in);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->value, 1);
  EXPECT_EQ(s->components.at("nl_assertion"), 1);
  EXPECT_EQ(asked.size(), 2u);
  in.task["evaluation_criteria"]["nl_assertions"].push_back("The agent offers a refund.");
  s = (*r)->Score(in);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->value, 0);
  EXPECT_NE(s->explanation.find("judge says no"), std::string::npos);
  // A judge reply without a verdict cannot be scored: an error, not a silent 0.
  auto mute = MakeToolRewardWithJudge({{"type", "tool"}}, [](const std::vector<Message>&) -> Expected<std::string> {
    return std::string("hmm");
  }, "tool");
  auto e = (*mute)->Score(in);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("no verdict"), std::string::npos) << e.status().message();
}

TEST(ToolVerifier, JudgeVerdictParsing) {
  EXPECT_EQ(*ParseJudgeVerdict("[[YES]]"), 1);
  EXPECT_EQ(*ParseJudgeVerdict("[[YES]] ... on reflection [[NO]]"), 0);
  EXPECT_EQ(*ParseJudgeVerdict("[[NO]] ... no wait [[YES]]"), 1);
  EXPECT_FALSE(ParseJudgeVerdict("yes").ok());
}

// Reference for the order-insensitive matcher: try every permutation of the calls.
bool BruteForceMatch(const std::vector<FunctionCall>& calls, const json& functions, const json& gt) {
  if (calls.size() != gt.size()) return false;
  std::vector<size_t> perm(calls.size());
  std::iota(perm.begin(), perm.end(), 0);
  do {
    bool all = true;
    for (size_t i = 0; i < perm.size() && all; ++i) all = MatchCall(calls[perm[i]], functions, gt[i]).ok;
    if (all) return true;
  } while (std::next_permutation(perm.begin(), perm.end()));
  return false;
}

TEST(AstMatch, MatchingEqualsBruteForceOverPermutations) {
  json functions = json::parse(R"([{"name": "f", "parameters": {"type": "dict", "properties":
      {"x": {"type": "integer"}}, "required": ["x"]}}])");
  Rng rng(77);
  int positives = 0;
  for (int it = 0; it < 400; ++it) {
    size_t n = 1 + rng.Below(5);
    json gt = json::array();
    std::vector<FunctionCall> calls;
    for (size_t i = 0; i < n; ++i) {
      json allowed = json::array();
      for (uint64_t k = 0, m = 1 + rng.Below(3); k < m; ++k) allowed.push_back(static_cast<int>(rng.Below(4)));
      gt.push_back({{"f", {{"x", allowed}}}});
      calls.push_back({"f", {{"x", static_cast<int>(rng.Below(4))}}});
    }
    bool want = BruteForceMatch(calls, functions, gt);
    positives += want;
    EXPECT_EQ(MatchCalls(calls, functions, gt).ok, want) << gt.dump() << " " << it;
  }
  EXPECT_GT(positives, 20);  // the random instances exercise both outcomes
}

TEST(AstMatch, StandardizeString) { EXPECT_EQ(StandardizeString("San Francisco, CA"), "sanfranciscoca"); }

}  // namespace
}  // namespace k2::rewards
