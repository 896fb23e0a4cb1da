// Pins the RL objectives: K2's loss and GRPO against central finite differences and hand-computed
// values, masks that exclude non-policy tokens, and the iteration schedules.
#include "rl/loss.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "rl/schedule.h"

namespace k2::rl {
namespace {

struct Owned {
  std::vector<float> logp, old_logp, ref_logp;
  std::vector<uint8_t> mask;
  double reward = 0;
  SampleView View() const { return {logp, old_logp, mask, reward, ref_logp}; }
};

std::vector<Owned> RandomGroup(uint64_t seed, int K, bool with_ref) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> lp(-3.0, -0.05), dr(-0.3, 0.3), rw(0.0, 1.0);
  std::vector<Owned> g(K);
  for (int i = 0; i < K; ++i) {
    int T = 3 + static_cast<int>(rng() % 6);
    for (int t = 0; t < T; ++t) {
      float o = static_cast<float>(lp(rng));
      g[i].old_logp.push_back(o);
      g[i].logp.push_back(static_cast<float>(o + dr(rng)));
      if (with_ref) g[i].ref_logp.push_back(static_cast<float>(o + dr(rng)));
      g[i].mask.push_back(rng() % 3 != 0);
    }
    g[i].reward = rw(rng);
  }
  return g;
}

std::vector<SampleView> Views(const std::vector<Owned>& g) {
  std::vector<SampleView> v;
  for (const auto& o : g) v.push_back(o.View());
  return v;
}

// Central differences on the float inputs: a step of 1e-2 keeps the float rounding error (~1e-7
// relative) small against the step, and both losses are smooth there except at clip boundaries.
template <class F>
void CheckGradient(std::vector<Owned> g, F loss_of, double tol) {
  auto base = loss_of(Views(g));
  ASSERT_TRUE(base.ok()) << base.status().ToString();
  for (size_t i = 0; i < g.size(); ++i) {
    for (size_t t = 0; t < g[i].logp.size(); ++t) {
      const float h = 1e-2f;
      const float x = g[i].logp[t];
      g[i].logp[t] = x + h;
      double lp = loss_of(Views(g))->loss;
      g[i].logp[t] = x - h;
      double lm = loss_of(Views(g))->loss;
      g[i].logp[t] = x;
      const double fd = (lp - lm) / (2.0 * h);
      EXPECT_NEAR(base->grad[i][t], fd, tol) << "sample " << i << " token " << t;
      if (!g[i].mask[t]) {
        EXPECT_EQ(base->grad[i][t], 0.0) << "masked token has a gradient";
      }
    }
  }
}

TEST(K2Loss, GradientMatchesFiniteDifferences) {
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    auto g = RandomGroup(seed, 4, false);
    CheckGradient(g, [](const std::vector<SampleView>& v) { return K2Loss(v, 0.7); }, 1e-4);
  }
}

TEST(K2Loss, HandComputedTwoSamples) {
  // r = (1, 0): rbar = .5. Sample 0 log-ratio sum (policy tokens) = 0.1 + 0.2; the masked token's
  // 5.0 difference must not count. Sample 1: -0.1.
  Owned a{{-1.0f, -2.0f, 0.0f}, {-1.1f, -2.2f, -5.0f}, {}, {1, 1, 0}, 1.0};
  Owned b{{-0.5f}, {-0.4f}, {}, {1}, 0.0};
  std::vector<Owned> g{a, b};
  const double tau = 0.5;
  auto r = K2Loss(Views(g), tau);
  ASSERT_TRUE(r.ok());
  const double e0 = 0.5 - tau * 0.3, e1 = -0.5 - tau * (-0.1);
  EXPECT_NEAR(r->loss, (e0 * e0 + e1 * e1) / 2, 1e-6);
  EXPECT_NEAR(r->grad[0][0], -2 * tau * e0 / 2, 1e-6);
  EXPECT_NEAR(r->grad[0][1], -2 * tau * e0 / 2, 1e-6);
  EXPECT_EQ(r->grad[0][2], 0.0);
  EXPECT_NEAR(r->grad[1][0], -2 * tau * e1 / 2, 1e-6);
  EXPECT_EQ(r->policy_tokens, 3);
}

TEST(K2Loss, OnPolicyGradientIsTheCenteredReward) {
  // At pi = pi_old the weights are (2 tau / K)(r_i - rbar): above-average samples are reinforced.
  Owned a{{-1.f, -1.f}, {-1.f, -1.f}, {}, {1, 1}, 1.0};
  Owned b{{-1.f}, {-1.f}, {}, {1}, 0.0};
  auto r = K2Loss(Views({a, b}), 1.0);
  ASSERT_TRUE(r.ok());
  EXPECT_NEAR(-r->grad[0][0], 2 * 1.0 * 0.5 / 2, 1e-12);
  EXPECT_NEAR(-r->grad[1][0], 2 * 1.0 * -0.5 / 2, 1e-12);
}

TEST(K2Loss, MaskedTokensNeverChangeTheLoss) {
  auto g = RandomGroup(7, 3, false);
  auto before = K2Loss(Views(g), 0.3);
  for (auto& s : g)
    for (size_t t = 0; t < s.logp.size(); ++t)
      if (!s.mask[t]) s.logp[t] -= 3.0f;
  auto after = K2Loss(Views(g), 0.3);
  ASSERT_TRUE(before.ok() && after.ok());
  EXPECT_DOUBLE_EQ(before->loss, after->loss);
}

TEST(K2Loss, RejectsMismatchedLengths) {
  Owned a{{-1.f, -1.f}, {-1.f}, {}, {1, 1}, 1.0};
  auto r = K2Loss(Views({a}), 1.0);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("sample 0: old_logp"), std::string::npos) << r.status().ToString();
  EXPECT_FALSE(K2Loss({}, 1.0).ok());
}

TEST(GrpoLoss, HandComputedCase) {
  // Two samples, rewards 1 and 0: mean .5, population std .5 => A = (+1, -1) (adv_eps 0).
  // Sample 0, tokens: ratio e^0.1 = 1.105 (within 1.2: unclipped), ratio e^0.3 = 1.35 (A>0: clipped
  // at 1.2, no gradient), a masked token. Sample 1: ratio e^-0.3 = 0.741 (A<0: min(-0.741, -0.8) =
  // -0.8 is the clipped term, no gradient), ratio 1 (unclipped).
  Owned a{{0.1f, 0.3f, 9.0f}, {0.f, 0.f, 0.f}, {}, {1, 1, 0}, 1.0};
  Owned b{{-0.3f, 0.0f}, {0.f, 0.f}, {}, {1, 1}, 0.0};
  GrpoOptions opt;
  opt.adv_eps = 0;
  auto r = GrpoLoss(Views({a, b}), opt);
  ASSERT_TRUE(r.ok());
  const double r00 = std::exp(0.1f), N = 4;
  const double expect = -(r00 * 1 + 1.2 * 1 + 0.8 * -1 + 1.0 * -1) / N;
  EXPECT_NEAR(r->loss, expect, 1e-6);
  EXPECT_NEAR(r->grad[0][0], -r00 / N, 1e-6);
  EXPECT_EQ(r->grad[0][1], 0.0);
  EXPECT_EQ(r->grad[0][2], 0.0);
  EXPECT_EQ(r->grad[1][0], 0.0);
  EXPECT_NEAR(r->grad[1][1], 1.0 / N, 1e-6);
  EXPECT_NEAR(r->clip_fraction, 2.0 / 4.0, 1e-12);
  EXPECT_EQ(r->policy_tokens, 4);
}

TEST(GrpoLoss, GradientWithKlMatchesFiniteDifferences) {
  // clip_eps large enough that no ratio (|log ratio| <= .3 + h) sits at a clip boundary.
  GrpoOptions opt;
  opt.clip_eps = 0.5;
  opt.kl_coef = 0.1;
  for (uint64_t seed = 11; seed <= 15; ++seed) {
    auto g = RandomGroup(seed, 4, true);
    CheckGradient(g, [&](const std::vector<SampleView>& v) { return GrpoLoss(v, opt); }, 1e-4);
  }
}

TEST(GrpoLoss, AdvantagesAreGroupNormalized) {
  std::vector<double> r{1, 0, 0, 1};
  auto a = GroupAdvantages(r, true, 0);
  EXPECT_NEAR(a[0], 1, 1e-12);
  EXPECT_NEAR(a[1], -1, 1e-12);
  auto d = GroupAdvantages(r, false, 0);
  EXPECT_NEAR(d[0], 0.5, 1e-12);
  // Equal rewards: zero advantages, so no update from an uninformative group.
  auto z = GroupAdvantages(std::vector<double>{0.3, 0.3}, true, 1e-6);
  EXPECT_EQ(z[0], 0.0);
}

TEST(GrpoLoss, KlNeedsAReference) {
  Owned a{{-1.f}, {-1.f}, {}, {1}, 1.0};
  GrpoOptions opt;
  opt.kl_coef = 0.1;
  auto r = GrpoLoss(Views({a}), opt);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("ref_logp"), std::string::npos);
}

TEST(Schedule, TemperatureDecayStartMiddleEnd) {
  ScheduleConfig s{"linear", 1.0, 0.5, 10};
  EXPECT_DOUBLE_EQ(ScheduleValue(s, 0), 1.0);
  EXPECT_DOUBLE_EQ(ScheduleValue(s, 5), 0.75);
  EXPECT_DOUBLE_EQ(ScheduleValue(s, 10), 0.5);
  EXPECT_DOUBLE_EQ(ScheduleValue(s, 20), 0.5);
  s.kind = "cosine";
  EXPECT_DOUBLE_EQ(ScheduleValue(s, 0), 1.0);
  EXPECT_NEAR(ScheduleValue(s, 5), 0.75, 1e-12);
  EXPECT_NEAR(ScheduleValue(s, 10), 0.5, 1e-12);
  EXPECT_LT(ScheduleValue(s, 2), ScheduleValue(ScheduleConfig{"constant", 1.0, 0.5, 10}, 2));
  EXPECT_GT(ScheduleValue(s, 2), ScheduleValue(ScheduleConfig{"linear", 1.0, 0.5, 10}, 2));  // slow start
  s.kind = "exponential";
  EXPECT_DOUBLE_EQ(ScheduleValue(s, 0), 1.0);
  EXPECT_NEAR(ScheduleValue(s, 5), std::sqrt(0.5), 1e-12);  // geometric mean of start and end
  EXPECT_NEAR(ScheduleValue(s, 10), 0.5, 1e-12);
  s.kind = "constant";
  EXPECT_DOUBLE_EQ(ScheduleValue(s, 7), 1.0);
}

TEST(Schedule, ExponentialNeedsPositiveEnds) {
  ScheduleConfig s{"exponential", 1.0, 0.0, 10};
  auto st = s.Validate("rl.temperature");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("rl.temperature"), std::string::npos);
  EXPECT_TRUE((ScheduleConfig{"linear", 1.0, 0.0, 10}).Validate("x").ok());
}

}  // namespace
}  // namespace k2::rl
