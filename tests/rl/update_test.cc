// Pins the packed policy update: trainer log-probs equal an unpacked reference, one step moves
// probability toward the rewarded rollout (K2 and GRPO), non-policy tokens never matter, PTX lowers
// the supervised loss.
#include "rl/update.h"

#include <gtest/gtest.h>

#include <cmath>
#include <tuple>

#include "core/rng.h"
#include "tests/tiny_model.h"

namespace k2::rl {
namespace {

engine::ModelConfig Tiny() { return test::TinyModelConfig(40, 256); }

std::unique_ptr<engine::Model<float>> NewModel(uint64_t seed) {
  auto m = engine::Model<float>::Create(Tiny(), seed);
  K2_CHECK(m.ok()) << m.status().ToString();
  return std::move(m).value();
}

// A prompt of 6 tokens, then a "tool result" of 3 (not policy), then generated tokens.
Rollout Make(const std::vector<int32_t>& completion, double reward, int64_t group) {
  Rollout r;
  r.tokens = {1, 2, 3, 4, 5, 6};
  r.mask.assign(6, 0);
  r.tokens.insert(r.tokens.end(), completion.begin(), completion.begin() + 2);
  r.mask.insert(r.mask.end(), {1, 1});
  r.tokens.insert(r.tokens.end(), {30, 31, 32});  // tool result
  r.mask.insert(r.mask.end(), {0, 0, 0});
  r.tokens.insert(r.tokens.end(), completion.begin() + 2, completion.end());
  r.mask.insert(r.mask.end(), completion.size() - 2, 1);
  r.old_logp.assign(r.tokens.size(), 0.0f);
  r.reward = reward;
  r.group = group;
  return r;
}

void FillOld(engine::Model<float>* m, std::vector<Rollout>* rs, const UpdateConfig& cfg) {
  auto lp = RolloutLogprobs(m, *rs, cfg);
  K2_CHECK(lp.ok()) << lp.status().ToString();
  for (size_t i = 0; i < rs->size(); ++i)
    for (size_t j = 0; j < (*rs)[i].tokens.size(); ++j) (*rs)[i].old_logp[j] = (*rs)[i].mask[j] ? (*lp)[i][j] : 0.0f;
}

double PolicyLogp(engine::Model<float>* m, const Rollout& r, const UpdateConfig& cfg) {
  auto lp = RolloutLogprobs(m, {r}, cfg);
  double s = 0;
  for (size_t j = 0; j < r.tokens.size(); ++j)
    if (r.mask[j]) s += (*lp)[0][j];
  return s;
}

TEST(RolloutLogprobs, PackedEqualsEachRolloutAlone) {
  auto m = NewModel(1);
  std::vector<Rollout> rs{Make({7, 8, 9, 10}, 1, 0), Make({11, 12, 13}, 0, 0), Make({14, 15, 16, 17, 18}, 0, 1)};
  UpdateConfig cfg;
  cfg.seq_len = 64;  // all three share one row
  auto packed = RolloutLogprobs(m.get(), rs, cfg);
  ASSERT_TRUE(packed.ok()) << packed.status().ToString();
  for (size_t i = 0; i < rs.size(); ++i) {
    // Reference: the rollout alone as a plain row (no positions/segments), through Forward directly.
    engine::Batch b;
    b.B = 1;
    b.T = static_cast<int64_t>(rs[i].tokens.size()) - 1;
    b.tokens.assign(rs[i].tokens.begin(), rs[i].tokens.end() - 1);
    b.targets.assign(rs[i].tokens.begin() + 1, rs[i].tokens.end());
    b.weights.assign(b.T, 1.0f);
    ASSERT_TRUE(m->Forward(b).ok());
    for (int64_t j = 0; j < b.T; ++j) EXPECT_NEAR((*packed)[i][j + 1], m->token_logprobs()[j], 2e-5) << i << "," << j;
  }
}

void CheckMovesTowardTheRewardedRollout(const std::string& objective) {
  auto m = NewModel(2);
  engine::OptimizerConfig oc;
  oc.lr = 1e-2;
  oc.weight_decay = 0;
  engine::Optimizer<float> opt(m.get(), oc);
  UpdateConfig cfg;
  cfg.objective = objective;
  cfg.seq_len = 64;
  std::vector<Rollout> rs{Make({7, 8, 9, 10}, 1.0, 0), Make({11, 12, 13, 14}, 0.0, 0)};
  FillOld(m.get(), &rs, cfg);
  const double good0 = PolicyLogp(m.get(), rs[0], cfg), bad0 = PolicyLogp(m.get(), rs[1], cfg);
  auto st = PolicyUpdate(m.get(), &opt, 0, rs, nullptr, 0.0, cfg);
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_EQ(st->policy_tokens, 8);
  EXPECT_LT(st->logp_mismatch, 1e-5);  // on-policy: the sampler's log-probs are the trainer's
  EXPECT_GT(st->entropy, 0);
  const double good1 = PolicyLogp(m.get(), rs[0], cfg), bad1 = PolicyLogp(m.get(), rs[1], cfg);
  EXPECT_GT(good1, good0 + 0.05) << objective;
  EXPECT_LT(bad1, bad0 - 0.05) << objective;
}

TEST(PolicyUpdate, K2StepMovesTowardTheRewardedRollout) { CheckMovesTowardTheRewardedRollout("k2"); }
TEST(PolicyUpdate, GrpoStepMovesTowardTheRewardedRollout) { CheckMovesTowardTheRewardedRollout("grpo"); }

TEST(PolicyUpdate, NonPolicyTokensNeverChangeTheUpdate) {
  // Same rollouts except the old log-probs and the identity of a masked (tool result) token's
  // log-prob bookkeeping: the parameters after the step must be bit-identical.
  UpdateConfig cfg;
  cfg.seq_len = 64;
  std::vector<std::vector<float>> after[2];
  for (int v = 0; v < 2; ++v) {
    auto m = NewModel(3);
    engine::Optimizer<float> opt(m.get(), engine::OptimizerConfig{});
    std::vector<Rollout> rs{Make({7, 8, 9, 10}, 1.0, 0), Make({11, 12, 13, 14}, 0.0, 0)};
    FillOld(m.get(), &rs, cfg);
    if (v == 1)
      for (auto& r : rs)
        for (size_t j = 0; j < r.tokens.size(); ++j)
          if (!r.mask[j]) r.old_logp[j] = -7.0f;  // junk where the policy did not act
    ASSERT_TRUE(PolicyUpdate(m.get(), &opt, 0, rs, nullptr, 0.0, cfg).ok());
    for (const auto& p : m->params()) after[v].push_back(p.w);
  }
  EXPECT_EQ(after[0], after[1]);
}

TEST(PolicyUpdate, EqualRewardsAndNoPtxLeaveTheModelUnchanged) {
  auto m = NewModel(4);
  engine::Optimizer<float> opt(m.get(), engine::OptimizerConfig{});
  UpdateConfig cfg;
  cfg.seq_len = 64;
  std::vector<Rollout> rs{Make({7, 8, 9, 10}, 0.5, 0), Make({11, 12, 13, 14}, 0.5, 0)};
  FillOld(m.get(), &rs, cfg);
  std::vector<std::vector<float>> before;
  for (const auto& p : m->params()) before.push_back(p.w);
  ASSERT_TRUE(PolicyUpdate(m.get(), &opt, 0, rs, nullptr, 0.0, cfg).ok());
  for (size_t i = 0; i < before.size(); ++i) EXPECT_EQ(before[i], m->params()[i].w) << m->params()[i].name;
}

TEST(PolicyUpdate, SamplerFloatNoiseIsNotAPolicyChange) {
  // Equal rewards, old log-probs off by ~1e-7 (another kernel's rounding): with the floor the K2
  // residual is exactly 0 and nothing moves; without it Muon turns the noise into a full step.
  for (double floor : {1e-4, 0.0}) {
    auto m = NewModel(4);
    engine::Optimizer<float> opt(m.get(), engine::OptimizerConfig{});
    UpdateConfig cfg;
    cfg.seq_len = 64;
    cfg.logratio_floor = floor;
    std::vector<Rollout> rs{Make({7, 8, 9, 10}, 0.5, 0), Make({11, 12, 13, 14}, 0.5, 0)};
    FillOld(m.get(), &rs, cfg);
    for (auto& r : rs)
      for (size_t j = 0; j < r.tokens.size(); ++j)
        if (r.mask[j]) r.old_logp[j] = std::nextafter(std::nextafter(r.old_logp[j], 0.0f), 0.0f);
    std::vector<std::vector<float>> before;
    for (const auto& p : m->params()) before.push_back(p.w);
    auto st = PolicyUpdate(m.get(), &opt, 0, rs, nullptr, 0.0, cfg);
    ASSERT_TRUE(st.ok()) << st.status().ToString();
    EXPECT_GT(st->logp_mismatch, 0);
    bool changed = false;
    for (size_t i = 0; i < before.size(); ++i) changed = changed || before[i] != m->params()[i].w;
    EXPECT_EQ(changed, floor == 0.0) << "floor " << floor;
  }
}

TEST(PolicyUpdate, PtxLowersTheSupervisedLoss) {
  auto m = NewModel(5);
  engine::OptimizerConfig oc;
  oc.lr = 1e-2;
  engine::Optimizer<float> opt(m.get(), oc);
  UpdateConfig cfg;
  cfg.seq_len = 32;
  std::vector<sft::Example> ex{{"p", {1, 20, 21, 22, 23, 24, 25}, {0, 1, 1, 1, 1, 1, 1}}};
  auto ptx = sft::PackExamples(ex, 32, true, nullptr);
  std::vector<Rollout> rs{Make({7, 8, 9, 10}, 0.5, 0), Make({11, 12, 13, 14}, 0.5, 0)};
  FillOld(m.get(), &rs, cfg);
  double first = 0, last = 0;
  for (int s = 0; s < 5; ++s) {
    auto st = PolicyUpdate(m.get(), &opt, s, rs, &ptx, 0.3, cfg);
    ASSERT_TRUE(st.ok()) << st.status().ToString();
    EXPECT_EQ(st->ptx_tokens, 6);
    EXPECT_DOUBLE_EQ(st->ptx_coef, 0.3);
    if (s == 0) first = st->ptx_loss;
    last = st->ptx_loss;
  }
  EXPECT_LT(last, first - 0.2);
}

// log p of every rollout token under `m`, one plain row per rollout (no packing): the hand case's
// independent source of log-probs.
std::vector<float> PlainLogprobs(engine::Model<float>* m, const Rollout& r) {
  engine::Batch b;
  b.B = 1;
  b.T = static_cast<int64_t>(r.tokens.size()) - 1;
  b.tokens.assign(r.tokens.begin(), r.tokens.end() - 1);
  b.targets.assign(r.tokens.begin() + 1, r.tokens.end());
  b.weights.assign(b.T, 1.0f);
  K2_CHECK(m->Forward(b).ok());
  std::vector<float> out{0.0f};
  for (int64_t j = 0; j < b.T; ++j) out.push_back(m->token_logprobs()[j]);
  return out;
}

// The one-pass update (weights from each micro-batch's own forward) accumulates the gradient of the
// objective whatever the packing: off-policy K2 (every log ratio non-zero) with groups spread over
// one row, or over one row per rollout with a micro-batch per row, equals the hand gradient: K2Loss on
// plain log-probs, then one weighted Forward/Backward per rollout.
TEST(PolicyUpdate, OffPolicyGradientIsTheObjectivesWhateverTheRowsAndMicroBatches) {
  std::vector<Rollout> rs{Make({7, 8, 9, 10}, 1.0, 0), Make({11, 12, 13}, 0.0, 0), Make({14, 15, 16, 17}, 0.5, 0),
                          Make({18, 19, 20}, 0.0, 1), Make({21, 22, 23, 24}, 1.0, 1)};
  auto base = NewModel(3);
  UpdateConfig cfg;
  cfg.seq_len = 64;
  FillOld(base.get(), &rs, cfg);
  for (auto& r : rs)  // the sampler was another policy: log ratios 0.05 .. 0.15 on every policy token
    for (size_t j = 0; j < r.tokens.size(); ++j)
      if (r.mask[j]) r.old_logp[j] -= 0.05f * static_cast<float>(1 + j % 3);

  // Hand: per group K2Loss on plain log-probs; w = -grad / G; one weighted row per rollout.
  auto h = NewModel(3);
  std::vector<std::vector<float>> lp(rs.size()), old(rs.size());
  std::vector<std::vector<uint8_t>> mask(rs.size());
  for (size_t i = 0; i < rs.size(); ++i) {
    std::vector<float> full = PlainLogprobs(h.get(), rs[i]);
    lp[i].assign(full.begin() + 1, full.end());
    old[i].assign(rs[i].old_logp.begin() + 1, rs[i].old_logp.end());
    mask[i].assign(rs[i].mask.begin() + 1, rs[i].mask.end());
  }
  h->ZeroGrad();
  const double tau = cfg.tau, G = 2;
  for (int64_t g = 0; g < 2; ++g) {
    std::vector<size_t> members;
    std::vector<SampleView> views;
    for (size_t i = 0; i < rs.size(); ++i)
      if (rs[i].group == g) {
        members.push_back(i);
        views.push_back({lp[i], old[i], mask[i], rs[i].reward, {}});
      }
    auto loss = K2Loss(views, tau);
    ASSERT_TRUE(loss.ok());
    for (size_t k = 0; k < members.size(); ++k) {
      const Rollout& r = rs[members[k]];
      engine::Batch b;
      b.B = 1;
      b.T = static_cast<int64_t>(r.tokens.size()) - 1;
      b.tokens.assign(r.tokens.begin(), r.tokens.end() - 1);
      b.targets.assign(r.tokens.begin() + 1, r.tokens.end());
      for (int64_t j = 0; j < b.T; ++j) b.weights.push_back(static_cast<float>(-loss->grad[k][j] / G));
      engine::ForwardOptions fo;
      fo.loss_normalizer = 1.0;
      ASSERT_TRUE(h->Forward(b, fo).ok());
      h->Backward();
    }
  }
  double scale = 0;
  for (const auto& p : h->params())
    for (float v : p.g) scale = std::max(scale, std::fabs(static_cast<double>(v)));
  ASSERT_GT(scale, 1e-4);

  // 64: all in one row; 16: each rollout alone in its row (with its own copy of the shared prompt),
  // each group over several micro-batches; with and without the shared prompt laid once per row.
  int64_t unshared_positions = 0;
  for (auto [seq_len, micro, share] : {std::tuple<int64_t, int64_t, bool>{64, 8, false}, {64, 8, true}, {16, 1, true}}) {
    auto m = NewModel(3);
    engine::OptimizerConfig oc;
    oc.lr = 1e-2;
    engine::Optimizer<float> opt(m.get(), oc);
    UpdateConfig c = cfg;
    c.seq_len = seq_len;
    c.micro_batch = micro;
    c.share_prefix = share;
    auto st = PolicyUpdate(m.get(), &opt, 0, rs, nullptr, 0.0, c);
    ASSERT_TRUE(st.ok()) << st.status().ToString();
    EXPECT_EQ(st->policy_tokens, 4 + 3 + 4 + 3 + 4);
    if (!share) {
      unshared_positions = st->packed_positions;
      EXPECT_EQ(st->shared_positions, 0);
    } else if (seq_len == 64) {
      // The 6-token prompt's first 5 positions once per group instead of once per rollout: 3 + 2 - 2 copies.
      EXPECT_EQ(st->shared_positions, 5 * 3);
      EXPECT_EQ(st->packed_positions + st->shared_positions, unshared_positions);
    }
    double diff = 0;
    for (size_t i = 0; i < m->params().size(); ++i)
      for (size_t j = 0; j < m->params()[i].g.size(); ++j)
        diff = std::max(diff, std::fabs(static_cast<double>(m->params()[i].g[j]) - h->params()[i].g[j]));
    EXPECT_LT(diff, 1e-4 * scale) << "seq_len " << seq_len << " micro_batch " << micro << " share " << share;
  }
}

TEST(PolicyUpdate, GrpoKlToTheReferenceMatchesAHandComputedCase) {
  auto m = NewModel(7);
  auto ref = NewModel(8);  // different weights: a non-zero KL on every policy token
  engine::OptimizerConfig oc;
  oc.lr = 1e-2;
  oc.weight_decay = 0;
  engine::Optimizer<float> opt(m.get(), oc);
  UpdateConfig cfg;
  cfg.objective = "grpo";
  cfg.kl_coef = 0.3;
  cfg.seq_len = 64;
  std::vector<Rollout> rs{Make({7, 8, 9, 10}, 1.0, 0), Make({11, 12, 13}, 0.0, 0)};
  FillOld(m.get(), &rs, cfg);  // on-policy: rho = 1, nothing clipped
  // Hand: A = (r - 0.5) / (0.5 + 1e-6) = +-1/(1+2e-6); N = 7 policy tokens;
  // L = (1/N) sum_t [-A_i + beta (e^(ref-lp) - (ref-lp) - 1)].
  double hand_loss = 0, hand_kl = 0;
  const double N = 7;
  for (size_t i = 0; i < rs.size(); ++i) {
    const double A = (rs[i].reward - 0.5) / (0.5 + 1e-6);
    std::vector<float> lp = PlainLogprobs(m.get(), rs[i]), rl = PlainLogprobs(ref.get(), rs[i]);
    for (size_t t = 0; t < rs[i].tokens.size(); ++t) {
      if (!rs[i].mask[t]) continue;
      const double d = static_cast<double>(rl[t]) - lp[t];
      const double kl = std::exp(d) - d - 1;
      hand_kl += kl / N;
      hand_loss += (-A + 0.3 * kl) / N;
    }
  }
  ASSERT_GT(hand_kl, 1e-4);
  auto st = PolicyUpdate(m.get(), &opt, 0, rs, nullptr, 0.0, cfg, ref.get());
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  EXPECT_NEAR(st->kl, hand_kl, 1e-5);
  EXPECT_NEAR(st->policy_loss, hand_loss, 1e-5);
  EXPECT_EQ(st->clip_fraction, 0);

  // Without a reward signal (equal rewards) the only gradient is the KL's: a step pulls the policy
  // toward the reference.
  auto m2 = NewModel(7);
  engine::Optimizer<float> opt2(m2.get(), oc);
  cfg.kl_coef = 1.0;
  for (auto& r : rs) r.reward = 0.5;
  FillOld(m2.get(), &rs, cfg);
  std::vector<double> kls;
  for (int step = 0; step < 5; ++step) {  // (Muon momentum overshoots after ~5 steps at this lr)
    FillOld(m2.get(), &rs, cfg);
    auto a = PolicyUpdate(m2.get(), &opt2, step, rs, nullptr, 0.0, cfg, ref.get());
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    kls.push_back(a->kl);  // measured before this step's update
  }
  for (size_t i = 1; i < kls.size(); ++i) EXPECT_LT(kls[i], kls[i - 1]) << "KL-only step " << i;
  EXPECT_LT(kls.back(), 0.8 * kls.front());

  // A reference equal to the policy: KL 0 and the same loss as kl_coef 0.
  auto same = NewModel(7);
  auto m3 = NewModel(7);
  engine::Optimizer<float> opt3(m3.get(), oc);
  for (size_t i = 0; i < rs.size(); ++i) rs[i].reward = i == 0 ? 1.0 : 0.0;
  FillOld(m3.get(), &rs, cfg);
  auto c = PolicyUpdate(m3.get(), &opt3, 0, rs, nullptr, 0.0, cfg, same.get());
  ASSERT_TRUE(c.ok());
  EXPECT_NEAR(c->kl, 0.0, 1e-9);
  // On-policy with no KL: L = (1/7)(4 * -A + 3 * A) = -A/7.
  EXPECT_NEAR(c->policy_loss, -(1.0 / (1.0 + 2e-6)) / 7.0, 1e-6);
}

TEST(PolicyUpdate, KlNeedsASeparateReference) {
  auto m = NewModel(9);
  engine::Optimizer<float> opt(m.get(), engine::OptimizerConfig{});
  UpdateConfig cfg;
  cfg.objective = "grpo";
  cfg.kl_coef = 0.1;
  cfg.seq_len = 64;
  std::vector<Rollout> rs{Make({7, 8, 9, 10}, 1.0, 0), Make({11, 12, 13, 14}, 0.0, 0)};
  auto st = PolicyUpdate(m.get(), &opt, 0, rs, nullptr, 0.0, cfg);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.status().message().find("kl_coef"), std::string::npos) << st.status().ToString();
  EXPECT_FALSE(PolicyUpdate(m.get(), &opt, 0, rs, nullptr, 0.0, cfg, m.get()).ok());
}

TEST(PolicyUpdate, RejectsMisalignedRollouts) {
  auto m = NewModel(6);
  engine::Optimizer<float> opt(m.get(), engine::OptimizerConfig{});
  Rollout r = Make({7, 8, 9}, 1, 0);
  r.old_logp.pop_back();
  auto st = PolicyUpdate(m.get(), &opt, 0, std::vector<Rollout>{r}, nullptr, 0, UpdateConfig{});
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.status().message().find("rollout 0"), std::string::npos);
}

}  // namespace
}  // namespace k2::rl
