// SCRR with scripted critics whose preferences are known: Bradley–Terry recovers the planted strengths,
// presentation order does not change scores, position bias cancels, agreement is exact on a built set.
#include "rewards/scrr.h"

#include <cmath>
#include <map>

#include <gtest/gtest.h>

#include "core/rng.h"

namespace k2::rewards {
namespace {

// Known quality per response; P(first better) = sigmoid(q_first - q_second) + position bias (clamped).
class ScriptedCritic : public Critic {
 public:
  ScriptedCritic(std::map<std::string, double> q, double bias = 0) : q_(std::move(q)), bias_(bias) {}
  Expected<double> Compare(const std::string&, const std::string& a, const std::string& b,
                           const std::vector<Rubric>& rubrics) override {
    ++calls;
    last_rubrics = rubrics.size();
    double p = 1 / (1 + std::exp(-(q_.at(a) - q_.at(b)))) + bias_;
    return std::clamp(p, 0.0, 1.0);
  }
  int calls = 0;
  size_t last_rubrics = 0;

 private:
  std::map<std::string, double> q_;
  double bias_;
};

std::vector<Rubric> AllRubrics() {
  auto r = CoreRubrics();
  for (auto& p : PrescriptiveRubrics()) r.push_back(p);
  return r;
}

TEST(Scrr, BradleyTerryRecoversPlantedStrengths) {
  std::map<std::string, double> q = {{"a", 1.5}, {"b", 0.2}, {"c", -0.7}, {"d", 0.9}};
  ScriptedCritic critic(q);
  ScrrConfig cfg;
  cfg.prior = 0;  // the exact MLE: with expected win counts it is exp(q) up to scale
  std::vector<std::string> resp = {"a", "b", "c", "d"};
  auto r = ScoreGroup(critic, "prompt", resp, AllRubrics(), cfg);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(critic.calls, 12);  // 6 pairs x 2 orders
  EXPECT_EQ(critic.last_rubrics, 5u);
  double z = 0;
  for (auto& s : resp) z += std::exp(q[s]);
  for (size_t i = 0; i < resp.size(); ++i) EXPECT_NEAR(r->strength[i], std::exp(q[resp[i]]) / z, 1e-9) << resp[i];
  // Ranking a > d > b > c by score.
  EXPECT_GT(r->scores[0], r->scores[3]);
  EXPECT_GT(r->scores[3], r->scores[1]);
  EXPECT_GT(r->scores[1], r->scores[2]);
}

// The MLE stationarity condition (observed wins = expected wins) on a random win matrix: a check of the
// MM fixed point that does not reuse the MM update.
TEST(Scrr, BradleyTerryFixedPointSatisfiesLikelihoodEquations) {
  Rng rng(5);
  size_t n = 6;
  std::vector<std::vector<double>> w(n, std::vector<double>(n, 0));
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < n; ++j)
      if (i != j) w[i][j] = static_cast<double>(rng.Below(10));
  auto p = FitBradleyTerry(w, 0.5, 100000, 1e-14);
  ASSERT_TRUE(p.ok());
  for (size_t i = 0; i < n; ++i) {
    double observed = 0, expected = 0;
    for (size_t j = 0; j < n; ++j) {
      if (i == j) continue;
      observed += w[i][j] + 0.5;
      expected += (w[i][j] + w[j][i] + 1.0) * (*p)[i] / ((*p)[i] + (*p)[j]);
    }
    EXPECT_NEAR(observed, expected, 1e-7) << i;
  }
}

TEST(Scrr, PresentationOrderDoesNotChangeScores) {
  std::map<std::string, double> q = {{"a", 0.3}, {"b", -1.0}, {"c", 2.0}};
  ScriptedCritic critic(q);
  auto r1 = ScoreGroup(critic, "p", {"a", "b", "c"}, CoreRubrics());
  auto r2 = ScoreGroup(critic, "p", {"c", "a", "b"}, CoreRubrics());
  ASSERT_TRUE(r1.ok() && r2.ok());
  EXPECT_NEAR(r1->scores[0], r2->scores[1], 1e-12);
  EXPECT_NEAR(r1->scores[1], r2->scores[2], 1e-12);
  EXPECT_NEAR(r1->scores[2], r2->scores[0], 1e-12);
  // An order-consistent critic gives the same scores with one order or both.
  ScrrConfig one;
  one.both_orders = false;
  auto r3 = ScoreGroup(critic, "p", {"a", "b", "c"}, CoreRubrics(), one);
  for (size_t i = 0; i < 3; ++i) EXPECT_NEAR(r1->scores[i], r3->scores[i], 1e-12);
}

TEST(Scrr, BothOrdersCancelAPositionBias) {
  std::map<std::string, double> q = {{"a", 0.3}, {"b", -0.2}, {"c", 0.1}};
  ScriptedCritic fair(q), biased(q, 0.15);  // prefers whatever is shown first
  auto f = ScoreGroup(fair, "p", {"a", "b", "c"}, CoreRubrics());
  auto b = ScoreGroup(biased, "p", {"a", "b", "c"}, CoreRubrics());
  for (size_t i = 0; i < 3; ++i) EXPECT_NEAR(f->scores[i], b->scores[i], 1e-12);
  ScrrConfig one;
  one.both_orders = false;
  auto b1 = ScoreGroup(biased, "p", {"a", "b", "c"}, CoreRubrics(), one);
  EXPECT_GT(std::fabs(b1->scores[0] - f->scores[0]), 1e-3);  // one order alone is biased
}

TEST(Scrr, WinRate) {
  ScriptedCritic critic({{"x", 10}, {"y", 0}, {"z", -10}});
  ScrrConfig cfg;
  cfg.method = "win_rate";
  auto r = ScoreGroup(critic, "p", {"x", "y", "z"}, {}, cfg);
  ASSERT_TRUE(r.ok());
  EXPECT_NEAR(r->scores[0], 1.0, 1e-4);
  EXPECT_NEAR(r->scores[1], 0.5, 1e-4);
  EXPECT_NEAR(r->scores[2], 0.0, 1e-4);
}

TEST(Scrr, RejectsBadInput) {
  ScriptedCritic critic({{"x", 0}});
  EXPECT_FALSE(ScoreGroup(critic, "p", {"x"}, {}).ok());
  ScrrConfig cfg;
  cfg.method = "elo";
  EXPECT_FALSE(ScoreGroup(critic, "p", {"x", "x"}, {}, cfg).ok());
  EXPECT_FALSE(FitBradleyTerry({{0, 1}, {1}}, 0, 10, 1e-9).ok());
  EXPECT_FALSE(FitBradleyTerry({{0, -1}, {1, 0}}, 0, 10, 1e-9).ok());
}

TEST(Scrr, AgreementIsExactOnAConstructedSet) {
  std::vector<VerifiedPair> pairs = {
      {"p", "a", "b", 1, 0, 0.9},   // agree
      {"p", "a", "b", 0, 1, 0.2},   // agree
      {"p", "a", "b", 1, 0, 0.4},   // disagree
      {"p", "a", "b", 1, 1, 0.9},   // not decisive: equal verifiable rewards
      {"p", "a", "b", 0, 1, 0.5},   // critic tie: counted, not agreeing
      {"p", "a", "b", 0.5, 0.25, 0.51},  // agree
      {"p", "a", "b", 0, 0, 0.1},   // not decisive
  };
  Agreement a = MeasureAgreement(pairs);
  EXPECT_EQ(a.decisive, 5);
  EXPECT_EQ(a.agree, 3);
  EXPECT_EQ(a.critic_ties, 1);
  EXPECT_DOUBLE_EQ(a.rate, 0.6);
}

TEST(Scrr, CollectsVerifiedPairsAndTrainingRecords) {
  // The critic prefers "long" answers; the verifier rewards "right" ones: they disagree on one pair.
  ScriptedCritic critic({{"right short", 0}, {"wrong long", 1}, {"right long", 2}});
  auto pairs = CollectVerifiedPairs(critic, "p", {"right short", "wrong long", "right long"}, {1, 0, 1}, CoreRubrics());
  ASSERT_TRUE(pairs.ok());
  ASSERT_EQ(pairs->size(), 2u);  // the two right answers tie on the verifier: not compared
  Agreement a = MeasureAgreement(*pairs);
  EXPECT_EQ(a.decisive, 2);
  EXPECT_EQ(a.agree, 1);
  json recs = CriticTrainingRecords((*pairs)[0], CoreRubrics());
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[0]["label"], "A");  // "right short" shown first is the verified winner
  EXPECT_EQ(recs[1]["label"], "B");
  EXPECT_EQ(recs[0]["critic_agreed"], false);
  EXPECT_EQ(recs[0]["messages"][1]["role"], "user");
  EXPECT_FALSE(CollectVerifiedPairs(critic, "p", {"right short"}, {1, 0}, {}).ok());
}

TEST(Scrr, ChatCriticParsesTheLastVerdictAndCountsFailuresAsTies) {
  int n = 0;
  ChatCritic critic([&n](const std::vector<Message>& m) -> Expected<std::string> {
    ++n;
    EXPECT_EQ(m.size(), 2u);
    EXPECT_NE(m[0].content.find("no_initial_praise"), std::string::npos);
    // First response in the prompt wins when it mentions "good"; garbage on the third call.
    if (n == 3) return std::string("I cannot decide.");
    bool a_good = m[1].content.find("## Response A\ngood") != std::string::npos;
    return std::string("Considering [[B]] at first... final: ") + (a_good ? "[[A]]" : "[[B]]");
  });
  EXPECT_DOUBLE_EQ(*ParseVerdict("x [[TIE]]"), 0.5);
  EXPECT_FALSE(ParseVerdict("no verdict").ok());
  auto r = ScoreGroup(critic, "p", {"good", "bad"}, PrescriptiveRubrics());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->comparisons, 2);
  EXPECT_GT(r->scores[0], r->scores[1]);
  auto r2 = ScoreGroup(critic, "p", {"good", "bad"}, PrescriptiveRubrics());
  EXPECT_EQ(r2->critic_failures, 1);
}

TEST(Scrr, ClosedLoopAgreementAndTrainingFile) {
  // Critic quality: it prefers x over y, and the verifiable rewards agree on prompt 1, disagree on 2.
  std::map<std::string, double> q = {{"x1", 2}, {"y1", 0}, {"z1", 1}, {"x2", 2}, {"y2", 0}};
  ScriptedCritic critic(q);
  std::vector<VerifiedGroup> groups = {
      {"p1", {"x1", "y1", "z1"}, {1, 0, 0}, {}},       // decisive pairs: (x1,y1) agree, (x1,z1) agree
      {"p2", {"x2", "y2"}, {0, 1}, {{"t", "task", "cite the rule"}}},  // (x2,y2): critic prefers x2, reward y2
  };
  std::string path = std::string(K2GYM_BINARY_DIR) + "/scrr_loop_test.jsonl";
  auto r = RunCriticLoop(critic, groups, CoreRubrics(), path);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->agreement.decisive, 3);
  EXPECT_EQ(r->agreement.agree, 2);
  EXPECT_DOUBLE_EQ(r->agreement.rate, 2.0 / 3.0);
  EXPECT_EQ(critic.calls, 6);  // 3 decisive pairs x 2 orders; the tie (y1, z1) is never asked
  EXPECT_EQ(r->records, 6);
  auto lines = ReadJsonLines(path);
  ASSERT_TRUE(lines.ok()) << lines.status().ToString();
  ASSERT_EQ(lines->size(), 6u);
  // The p2 records carry the task rubric and the label the verifiable outcome implies (y2 better).
  const json& last = (*lines)[4];
  EXPECT_EQ(last["label"], "B");  // order (x2, y2): B = y2
  EXPECT_FALSE(last["critic_agreed"].get<bool>());
  EXPECT_NE(last["messages"][0]["content"].get<std::string>().find("cite the rule"), std::string::npos);
  EXPECT_EQ((*lines)[5]["label"], "A");  // order (y2, x2)
  // Sizes that differ name the group.
  groups[1].verifiable.push_back(1);
  auto bad = RunCriticLoop(critic, groups, CoreRubrics(), "");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("group 1"), std::string::npos) << bad.status().message();
}

}  // namespace
}  // namespace k2::rewards
