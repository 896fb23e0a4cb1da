// Reward composition (weighted sum, product, gate), budget control at its exact boundary, the registry
// and the case-file driver's error messages.
#include <gtest/gtest.h>

#include "rewards/budget.h"
#include "rewards/check.h"
#include "rewards/reward.h"

namespace k2::rewards {
namespace {

ScoreInput Answer(const std::string& text, const std::string& reference) {
  ScoreInput in;
  in.messages.push_back(Message{"user", "q", {}, "", ""});
  in.messages.push_back(Message{"assistant", text, {}, "", ""});
  in.task = {{"reference", reference}, {"constraints", {{{"type", "no_commas"}}}}};
  in.task_type = "math";
  return in;
}

double Value(const json& cfg, const ScoreInput& in) {
  auto r = MakeReward(cfg);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  auto s = (*r)->Score(in);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s->value;
}

TEST(Compose, WeightedSumProductGate) {
  json sum = json::parse(R"({"type": "weighted_sum", "terms": [{"weight": 0.7, "reward": {"type": "math"}},
                                                             {"weight": 0.3, "reward": {"type": "if"}}]})");
  json prod = json::parse(R"({"type": "product", "factors": [{"type": "math"}, {"type": "if"}]})");
  json gate = json::parse(R"({"type": "gate", "gate": {"type": "if"}, "reward": {"type": "math"}})");
  ScoreInput right_clean = Answer("\\boxed{12}", "12");
  ScoreInput right_commas = Answer("so, \\boxed{12}", "12");
  ScoreInput wrong_clean = Answer("\\boxed{13}", "12");
  EXPECT_DOUBLE_EQ(Value(sum, right_clean), 1.0);
  EXPECT_DOUBLE_EQ(Value(sum, right_commas), 0.7);
  EXPECT_DOUBLE_EQ(Value(sum, wrong_clean), 0.3);
  EXPECT_DOUBLE_EQ(Value(prod, right_clean), 1.0);
  EXPECT_DOUBLE_EQ(Value(prod, right_commas), 0.0);
  EXPECT_DOUBLE_EQ(Value(gate, right_clean), 1.0);
  EXPECT_DOUBLE_EQ(Value(gate, right_commas), 0.0);
  EXPECT_DOUBLE_EQ(Value(gate, wrong_clean), 0.0);
  auto r = MakeReward(sum);
  auto s = (*r)->Score(right_commas);
  EXPECT_DOUBLE_EQ(s->components.at("0:math"), 1.0);
  EXPECT_DOUBLE_EQ(s->components.at("1:if"), 0.0);
}

TEST(Compose, DeterministicForTheSameInput) {
  json cfg = json::parse(R"({"type": "weighted_sum", "terms": [{"weight": 1, "reward": {"type": "math"}}]})");
  auto r = MakeReward(cfg);
  ScoreInput in = Answer("maybe \\boxed{0.5}", "1/2");
  auto a = (*r)->Score(in), b = (*r)->Score(in);
  EXPECT_EQ(a->ToJson(), b->ToJson());
}

TEST(Compose, ConfigErrorsNameTheField) {
  auto e1 = MakeReward(json::parse(R"({"type": "mathh"})"), "rl.reward");
  ASSERT_FALSE(e1.ok());
  EXPECT_NE(e1.status().message().find("rl.reward.type: unknown reward type \"mathh\" (did you mean \"math\"?)"),
            std::string::npos)
      << e1.status().ToString();
  auto e2 = MakeReward(json::parse(R"({"type": "weighted_sum", "terms": [{"weight": "x", "reward": {"type": "math"}}]})"));
  ASSERT_FALSE(e2.ok());
  EXPECT_NE(e2.status().message().find("reward.terms[0].weight"), std::string::npos) << e2.status().ToString();
  auto e3 = MakeReward(json::parse(R"({"type": "product", "factors": []})"));
  EXPECT_FALSE(e3.ok());
  auto e4 = MakeReward(json::parse(R"({"type": "math", "rel_tol": -1})"));
  EXPECT_FALSE(e4.ok());
  auto e5 = MakeReward(json::parse(R"({"type": "budget", "reward": {"type": "math"}, "budgets": {"math": 0}})"));
  ASSERT_FALSE(e5.ok());
  EXPECT_NE(e5.status().message().find("budgets.math"), std::string::npos) << e5.status().ToString();
}

TEST(Compose, UserRegisteredReward) {
  class Length : public Reward {
   public:
    std::string name() const override { return "length"; }

   protected:
    Expected<RewardResult> DoScore(const ScoreInput& in) const override {
      RewardResult r;
      r.value = static_cast<double>(LastAssistantText(in).size());
      return r;
    }
  };
  EXPECT_TRUE(RegisterReward("test_length", [](const json&, const std::string&) -> Expected<std::unique_ptr<Reward>> {
    return std::unique_ptr<Reward>(new Length());
  }));
  EXPECT_FALSE(RegisterReward("test_length", nullptr));
  EXPECT_DOUBLE_EQ(Value({{"type", "test_length"}}, Answer("abcd", "1")), 4.0);
}

// Pins the boundary: tokens == budget is within budget; budget + 1 is over.
TEST(Budget, PenaltyExactlyAtTheBoundary) {
  BudgetConfig cfg;
  cfg.budgets = {{"math", 100}};
  cfg.penalty = 0.25;
  for (int64_t t : {99, 100, 101}) {
    BudgetDecision d = CheckBudget(cfg, "math", t);
    EXPECT_EQ(d.over, t > 100) << t;
    EXPECT_EQ(d.kept_tokens, std::min<int64_t>(t, 100)) << t;
    EXPECT_DOUBLE_EQ(d.penalty, t > 100 ? 0.25 : 0.0) << t;
  }
  // Unlisted task type with no default: unlimited.
  EXPECT_FALSE(CheckBudget(cfg, "code", 1 << 30).over);
  cfg.default_budget = 10;
  EXPECT_TRUE(CheckBudget(cfg, "code", 11).over);
  EXPECT_FALSE(CheckBudget(cfg, "code", 10).over);
}

TEST(Budget, RewardReportsPenaltyAsItsOwnComponent) {
  json cfg = json::parse(R"({"type": "budget", "reward": {"type": "math"}, "budgets": {"math": 100}, "penalty": 0.25})");
  auto r = MakeReward(cfg);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ScoreInput in = Answer("\\boxed{12}", "12");
  for (int64_t t : {99, 100, 101}) {
    in.response_tokens = t;
    auto s = (*r)->Score(in);
    ASSERT_TRUE(s.ok());
    EXPECT_DOUBLE_EQ(s->value, t > 100 ? 0.75 : 1.0) << t;
    EXPECT_DOUBLE_EQ(s->components.at("budget_penalty"), t > 100 ? -0.25 : 0.0) << t;
    EXPECT_DOUBLE_EQ(s->components.at("over_budget"), t > 100 ? 1.0 : 0.0) << t;
  }
  cfg["over_budget"] = "zero";
  auto z = MakeReward(cfg);
  in.response_tokens = 101;
  EXPECT_DOUBLE_EQ((*z)->Score(in)->value, -0.25);
  in.response_tokens = 100;
  EXPECT_DOUBLE_EQ((*z)->Score(in)->value, 1.0);
}

TEST(CheckCases, ErrorsNameFileAndLine) {
  std::vector<json> cases = {json::parse(R"({"response": "\\boxed{1}", "reference": "1", "expected": 1})"),
                             json::parse(R"({"response": 5, "reference": "1"})")};
  auto out = CheckCases("math", cases, "mine.jsonl");
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("mine.jsonl:2: response: expected string"), std::string::npos)
      << out.status().ToString();
  auto bad_kind = CheckCases("nope", cases, "x");
  EXPECT_FALSE(bad_kind.ok());
}

TEST(CheckCases, ReportsMismatches) {
  std::vector<json> cases = {json::parse(R"({"id": "a", "response": "\\boxed{2}", "reference": "1", "expected": 1})")};
  auto out = CheckCases("math", cases, "x");
  ASSERT_TRUE(out.ok());
  EXPECT_FALSE((*out)[0].matches);
  EXPECT_NE((*out)[0].mismatch.find("value 0"), std::string::npos);
}

}  // namespace
}  // namespace k2::rewards
