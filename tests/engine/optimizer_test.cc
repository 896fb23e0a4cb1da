// MuonClip: Newton–Schulz against a loop reference, Muon/AdamW updates against hand-written formulas,
// schedules, gradient clipping, QK-Clip bounding the max logit, aux-loss-free balancing of a skewed router.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "engine/engine.h"
#include "tests/engine/test_util.h"

namespace k2::engine {
namespace {

using testing::AllClose;
using testing::RandVec;
using testing::RandomBatch;
using testing::TinyConfig;

// Plain loops, no transposition trick: X = G/|G|; repeat A = X X^T, B = bA + cA^2, X = aX + BX.
std::vector<double> NsReference(const std::vector<double>& G, int64_t r, int64_t c, int steps) {
  double n = 0;
  for (double v : G) n += v * v;
  std::vector<double> X(G.size());
  for (size_t i = 0; i < G.size(); ++i) X[i] = G[i] / (std::sqrt(n) + 1e-7);
  for (int s = 0; s < steps; ++s) {
    std::vector<double> A(r * r, 0), Bm(r * r, 0), Y(r * c, 0);
    for (int64_t i = 0; i < r; ++i)
      for (int64_t j = 0; j < r; ++j)
        for (int64_t k = 0; k < c; ++k) A[i * r + j] += X[i * c + k] * X[j * c + k];
    for (int64_t i = 0; i < r; ++i)
      for (int64_t j = 0; j < r; ++j) {
        double aa = 0;
        for (int64_t k = 0; k < r; ++k) aa += A[i * r + k] * A[k * r + j];
        Bm[i * r + j] = -4.7750 * A[i * r + j] + 2.0315 * aa;
      }
    for (int64_t i = 0; i < r; ++i)
      for (int64_t j = 0; j < c; ++j) {
        double bx = 0;
        for (int64_t k = 0; k < r; ++k) bx += Bm[i * r + k] * X[k * c + j];
        Y[i * c + j] = 3.4445 * X[i * c + j] + bx;
      }
    X = Y;
  }
  return X;
}

TEST(NewtonSchulz, MatchesLoopReferenceWideAndTall) {
  Rng rng(1);
  for (auto [r, c] : std::vector<std::pair<int64_t, int64_t>>{{5, 9}, {9, 5}, {6, 6}}) {
    auto G = RandVec<double>(rng, r * c);
    std::vector<double> out(r * c);
    NewtonSchulz(G.data(), r, c, 5, out.data());
    // Tall matrices are orthogonalized through their transpose: NS(G) = NS(G^T)^T, same polynomial.
    std::vector<double> ref;
    if (r > c) {
      std::vector<double> Gt(r * c);
      for (int64_t i = 0; i < r; ++i)
        for (int64_t j = 0; j < c; ++j) Gt[j * r + i] = G[i * c + j];
      auto o = NsReference(Gt, c, r, 5);
      ref.resize(r * c);
      for (int64_t i = 0; i < r; ++i)
        for (int64_t j = 0; j < c; ++j) ref[i * c + j] = o[j * r + i];
    } else {
      ref = NsReference(G, r, c, 5);
    }
    EXPECT_TRUE(AllClose(out, ref, 1e-12, 1e-10, "NS " + std::to_string(r) + "x" + std::to_string(c)));
    // Near-orthogonal: the diagonal of O O^T (small side) lies in the quintic's band of about [0.5, 1.5].
    const int64_t s = std::min(r, c);
    for (int64_t i = 0; i < s; ++i) {
      double d = 0;
      for (int64_t k = 0; k < std::max(r, c); ++k) {
        double v = r <= c ? out[i * c + k] : out[k * c + i];
        d += v * v;
      }
      EXPECT_GT(d, 0.3);
      EXPECT_LT(d, 1.6);
    }
  }
}

TEST(LearningRate, WarmupThenCosineLinearConstant) {
  OptimizerConfig c;
  c.lr = 1.0;
  c.warmup_steps = 10;
  c.total_steps = 110;
  c.min_lr_ratio = 0.1;
  EXPECT_NEAR(LearningRate(c, 0), 0.1, 1e-12);
  EXPECT_NEAR(LearningRate(c, 9), 1.0, 1e-12);
  EXPECT_NEAR(LearningRate(c, 10), 1.0, 1e-12);
  EXPECT_NEAR(LearningRate(c, 60), 0.55, 1e-12);
  EXPECT_NEAR(LearningRate(c, 110), 0.1, 1e-12);
  c.schedule = "linear";
  EXPECT_NEAR(LearningRate(c, 60), 0.55, 1e-12);
  EXPECT_NEAR(LearningRate(c, 35), 1.0 - 0.9 * 0.25, 1e-12);
  c.schedule = "constant";
  EXPECT_NEAR(LearningRate(c, 100), 1.0, 1e-12);
}

// The tiny fp64 model (seed 3) with the gradient of one random batch, and a plain first-step config:
// constant lr 0.01, weight decay 0.1, no clipping, no QK-Clip, no bias update.
std::unique_ptr<Model<double>> ModelWithGradient() {
  ModelConfig cfg = TinyConfig();
  auto mm = Model<double>::Create(cfg, 3);
  K2_CHECK(mm.ok()) << mm.status().ToString();
  Rng rng(4);
  K2_CHECK((*mm)->Forward(RandomBatch(rng, 1, 6, cfg.vocab_size)).ok());
  (*mm)->ZeroGrad();
  (*mm)->Backward();
  return std::move(mm).value();
}

OptimizerConfig FirstStepConfig() {
  OptimizerConfig oc;
  oc.lr = 0.01;
  oc.weight_decay = 0.1;
  oc.grad_clip = 0;
  oc.qk_clip = false;
  oc.bias_update_speed = 0;
  oc.schedule = "constant";
  return oc;
}

TEST(Optimizer, MuonAndAdamWFollowTheirFormulas) {
  auto mp = ModelWithGradient();
  Model<double>& m = *mp;
  OptimizerConfig oc = FirstStepConfig();
  Param<double>* wq = m.Find("model.layers.0.self_attn.kv_b_proj.weight");
  Param<double>* emb = m.Find("model.embed_tokens.weight");
  ASSERT_TRUE(wq && emb && wq->muon && !emb->muon);
  auto w0 = wq->w, g0 = wq->g, e0 = emb->w, eg = emb->g;
  Optimizer<double> opt(&m, oc);
  opt.Step(0);
  // Muon, first step: M = G; U = G + mu G (Nesterov); W -= lr (NS(U) 0.2 sqrt(max) + wd W).
  const int64_t r = wq->shape[0], c = wq->shape[1];
  std::vector<double> u(g0.size()), o(g0.size()), want(g0.size());
  for (size_t i = 0; i < u.size(); ++i) u[i] = g0[i] * 1.95;
  NewtonSchulz(u.data(), r, c, 5, o.data());
  for (size_t i = 0; i < u.size(); ++i)
    want[i] = w0[i] - 0.01 * (o[i] * 0.2 * std::sqrt(static_cast<double>(std::max(r, c))) + 0.1 * w0[i]);
  EXPECT_TRUE(AllClose(wq->w, want, 1e-14, 1e-12, "muon"));
  // AdamW, first step: mhat/sqrt(vhat) = g/|g|.
  for (size_t i = 0; i < e0.size(); ++i) {
    double step = eg[i] == 0 ? 0.0 : eg[i] / (std::abs(eg[i]) + 1e-8);
    ASSERT_NEAR(emb->w[i], e0[i] - 0.01 * (step + 0.1 * e0[i]), 1e-12) << i;
  }
}

// adamw_lr_scale: the AdamW parameters step at lr * scale (0 freezes them), Muon's are unchanged.
TEST(Optimizer, AdamWLrScaleOnlyScalesTheAdamWParameters) {
  std::vector<std::vector<double>> muon_after, adam_delta;
  for (double scale : {1.0, 0.25, 0.0}) {
    auto mp = ModelWithGradient();
    Model<double>& m = *mp;
    OptimizerConfig oc = FirstStepConfig();
    oc.adamw_lr_scale = scale;
    Param<double>* wq = m.Find("model.layers.0.self_attn.kv_b_proj.weight");
    Param<double>* head = m.Find("lm_head.weight");
    ASSERT_TRUE(wq && head && wq->muon && !head->muon);
    const auto h0 = head->w;
    Optimizer<double> opt(&m, oc);
    opt.Step(0);
    muon_after.push_back(wq->w);
    std::vector<double> d(h0.size());
    for (size_t i = 0; i < d.size(); ++i) d[i] = head->w[i] - h0[i];
    adam_delta.push_back(d);
  }
  EXPECT_EQ(muon_after[0], muon_after[1]);
  EXPECT_EQ(muon_after[0], muon_after[2]);
  double moved = 0;
  for (size_t i = 0; i < adam_delta[0].size(); ++i) {
    moved = std::max(moved, std::fabs(adam_delta[0][i]));
    ASSERT_NEAR(adam_delta[1][i], 0.25 * adam_delta[0][i], 1e-15) << i;
    ASSERT_EQ(adam_delta[2][i], 0.0) << i;
  }
  EXPECT_GT(moved, 1e-3);
}

TEST(Optimizer, ClipsTheGlobalGradientNorm) {
  ModelConfig cfg = TinyConfig();
  auto a = Model<double>::Create(cfg, 5), b = Model<double>::Create(cfg, 5);
  Rng rng(6);
  Batch bt = RandomBatch(rng, 1, 6, cfg.vocab_size);
  for (auto* m : {a->get(), b->get()}) {
    ASSERT_TRUE(m->Forward(bt).ok());
    m->ZeroGrad();
    m->Backward();
  }
  // Clipping to half the norm equals stepping with gradients halved by hand.
  OptimizerConfig oc;
  oc.qk_clip = false;
  oc.bias_update_speed = 0;
  oc.grad_clip = 0;
  double norm = 0;
  for (auto& p : (*b)->params())
    for (auto g : p.g) norm += g * g;
  norm = std::sqrt(norm);
  for (auto& p : (*b)->params())
    for (auto& g : p.g) g *= 0.5;
  Optimizer<double>(b->get(), oc).Step(0);
  oc.grad_clip = norm / 2;
  StepStats st = Optimizer<double>(a->get(), oc).Step(0);
  EXPECT_NEAR(st.grad_norm, norm, 1e-12);
  for (size_t i = 0; i < (*a)->params().size(); ++i)
    EXPECT_TRUE(AllClose((*a)->params()[i].w, (*b)->params()[i].w, 1e-9, 1e-5, (*a)->params()[i].name));
}

TEST(QkClip, RescalesOnlyTheOffendingHeadsRows) {
  ModelConfig cfg = TinyConfig();
  auto mm = Model<double>::Create(cfg, 7);
  ASSERT_TRUE(mm.ok());
  Model<double>& m = **mm;
  Rng rng(8);
  Batch bt = RandomBatch(rng, 1, 8, cfg.vocab_size);
  ASSERT_TRUE(m.Forward(bt).ok());
  auto ml = m.max_logits();
  // Clip head 1 of layer 2 to half its max logit; nothing else.
  const double tau = ml[2][1] / 2;
  std::vector<std::vector<double>> fake(ml.size(), std::vector<double>(ml[0].size(), 0.0));
  fake[2][1] = ml[2][1];
  auto qb = m.Find("model.layers.2.self_attn.q_b_proj.weight")->w;
  auto kvb = m.Find("model.layers.2.self_attn.kv_b_proj.weight")->w;
  auto kva = m.Find("model.layers.2.self_attn.kv_a_proj_with_mqa.weight")->w;
  EXPECT_EQ(ApplyQkClip(&m, fake, tau), 1);
  const int64_t dn = cfg.qk_nope_head_dim, dq = cfg.qk_head_dim(), dv = cfg.v_head_dim, rq = *cfg.q_lora_rank,
                rkv = cfg.kv_lora_rank;
  const double g = 0.5;
  auto& qb2 = m.Find("model.layers.2.self_attn.q_b_proj.weight")->w;
  for (int64_t row = 0; row < cfg.num_attention_heads * dq; ++row) {
    const int64_t h = row / dq, k = row % dq;
    const double f = h != 1 ? 1.0 : (k < dn ? std::sqrt(g) : g);
    for (int64_t j = 0; j < rq; ++j) ASSERT_DOUBLE_EQ(qb2[row * rq + j], qb[row * rq + j] * f) << row;
  }
  auto& kvb2 = m.Find("model.layers.2.self_attn.kv_b_proj.weight")->w;
  for (int64_t row = 0; row < cfg.num_attention_heads * (dn + dv); ++row) {
    const int64_t h = row / (dn + dv), k = row % (dn + dv);
    const double f = (h == 1 && k < dn) ? std::sqrt(g) : 1.0;
    for (int64_t j = 0; j < rkv; ++j) ASSERT_DOUBLE_EQ(kvb2[row * rkv + j], kvb[row * rkv + j] * f) << row;
  }
  EXPECT_EQ(m.Find("model.layers.2.self_attn.kv_a_proj_with_mqa.weight")->w, kva) << "shared k_rope untouched";
  // Every logit of that head scales by gamma, so its max logit is now exactly tau.
  ASSERT_TRUE(m.Forward(bt).ok());
  EXPECT_NEAR(m.max_logits()[2][1], tau, 1e-9 * tau);
}

// Trains tiny (MoE layers, routing free to flip) on one batch with a learning rate large enough that
// attention logits grow by several percent per step; returns the max logit of every step's forward.
std::vector<double> TrainMaxLogits(bool clip, const std::string& measure, double tau, std::vector<double>* losses,
                                   std::vector<double>* after = nullptr) {
  ModelConfig cfg = TinyConfig();
  auto mm = Model<float>::Create(cfg, 21);
  Model<float>& m = **mm;
  Rng rng(22);
  Batch bt = RandomBatch(rng, 2, 16, cfg.vocab_size, false);
  OptimizerConfig oc;
  oc.lr = 0.02;
  oc.schedule = "constant";
  oc.weight_decay = 0;
  oc.qk_clip = clip;
  oc.qk_clip_tau = tau;
  oc.qk_clip_measure = measure;
  oc.bias_update_speed = 0.01;  // routing moves between steps too
  Optimizer<float> opt(&m, oc);
  std::vector<double> out;
  for (int s = 0; s < 60; ++s) {
    auto r = m.Forward(bt);
    EXPECT_TRUE(r.ok());
    if (losses) losses->push_back(r->loss);
    m.ZeroGrad();
    m.Backward();
    StepStats st = opt.Step(s);
    out.push_back(st.max_logit);
    if (after) after->push_back(st.max_logit_after);
  }
  return out;
}

TEST(QkClip, BoundsTheMaxLogitThatGrowsWithoutIt) {
  auto free_run = TrainMaxLogits(false, "post_update", 0, nullptr);
  const double s0 = free_run.front(), s_end = *std::max_element(free_run.begin(), free_run.end());
  ASSERT_GT(s_end, 2 * s0) << "the learning rate must make logits grow for this test to mean anything";
  double growth = 0;  // the largest one-step relative growth of the free run
  for (size_t s = 1; s < free_run.size(); ++s) growth = std::max(growth, free_run[s] / free_run[s - 1] - 1);
  EXPECT_GT(growth, 0.02) << "steps must be large enough that a pre-update clip could overshoot by > 1%";
  const double tau = s0 + 0.5 * (s_end - s0);
  std::vector<double> losses, after;
  auto clipped = TrainMaxLogits(true, "post_update", tau, &losses, &after);
  double worst = 0;
  for (size_t s = 1; s < clipped.size(); ++s) worst = std::max(worst, clipped[s]);
  EXPECT_LE(worst, tau * 1.01) << "free run peaks at " << s_end;
  EXPECT_GT(worst, tau * 0.9) << "the clip must be what holds the logit, not a lack of growth";
  for (double a : after) EXPECT_LE(a, tau * (1 + 1e-5));
  for (double l : losses) EXPECT_TRUE(std::isfinite(l));
  // K2's Algorithm 1 (clip with the step's own pre-update maxima) is bounded by tau times one step's
  // growth instead; it still holds the logit far below the free run.
  auto k2 = TrainMaxLogits(true, "step_forward", tau, nullptr);
  const double k2_worst = *std::max_element(k2.begin() + 1, k2.end());
  EXPECT_LE(k2_worst, tau * (1 + 2 * growth));
  EXPECT_LT(k2_worst, s_end);
  std::printf("QK-Clip: tau %.3f, free run peak %.3f, post_update peak %.3f (+%.3f%%), step_forward peak %.3f "
              "(+%.2f%%), max one-step growth %.1f%%\n",
              tau, s_end, worst, 100 * (worst / tau - 1), k2_worst, 100 * (k2_worst / tau - 1), 100 * growth);
}

TEST(QkClip, ReplayWithUnchangedWeightsReproducesTheForward) {
  // The replay is the forward's own code on the stored batch: with unchanged weights it measures the
  // same maxima bit for bit, clips nothing above them, and leaves the real forward's outputs alone.
  ModelConfig cfg = TinyConfig();
  auto mm = Model<double>::Create(cfg, 17);
  ASSERT_TRUE(mm.ok());
  Model<double>& m = **mm;
  Rng rng(18);
  Batch bt = RandomBatch(rng, 2, 7, cfg.vocab_size);
  bt.segment_ids = std::vector<int32_t>(14, 0);
  for (int i = 4; i < 14; ++i) bt.segment_ids[i] = 1;
  ASSERT_TRUE(m.Forward(bt).ok());
  const auto ml = m.max_logits();
  const auto logits = m.logits();
  const auto load = m.expert_load();
  std::vector<std::vector<double>> w;
  for (auto& p : m.params()) w.push_back(p.w);
  EXPECT_EQ(m.ReplayClipQk(1e9), 0);
  EXPECT_EQ(m.replayed_max_logits(), ml);
  EXPECT_EQ(m.max_logits(), ml);
  EXPECT_EQ(m.logits(), logits);
  EXPECT_EQ(m.expert_load(), load);
  for (size_t i = 0; i < w.size(); ++i) ASSERT_EQ(m.params()[i].w, w[i]) << m.params()[i].name;
  // A tau below every head's max clips every head, and the replay then measures exactly tau.
  double lo = 1e300;
  for (auto& l : ml)
    for (double v : l) lo = std::min(lo, v);
  const double tau = lo / 2;
  EXPECT_EQ(m.ReplayClipQk(tau), 0) << "a replay needs a fresh Forward (the last one was replayed)";
  ASSERT_TRUE(m.Forward(bt).ok());
  EXPECT_EQ(m.ReplayClipQk(tau), cfg.num_hidden_layers * cfg.num_attention_heads);
  for (auto& l : m.replayed_max_logits())
    for (double v : l) EXPECT_NEAR(v, tau, 1e-12 * tau);
  ASSERT_TRUE(m.Forward(bt).ok());
  for (auto& l : m.max_logits())
    for (double v : l) EXPECT_NEAR(v, tau, 1e-12 * tau);
}

double MaxOverMeanLoad(const Model<float>& m) {
  double worst = 0;
  for (auto& ld : m.expert_load()) {
    if (ld.empty()) continue;
    double mean = 0, mx = 0;
    for (auto v : ld) mean += static_cast<double>(v), mx = std::max(mx, static_cast<double>(v));
    worst = std::max(worst, mx / (mean / static_cast<double>(ld.size())));
  }
  return worst;
}

TEST(LoadBalancing, BiasUpdateEvensOutASkewedRouter) {
  ModelConfig cfg = TinyConfig();
  cfg.n_group = 1;
  cfg.topk_group = 1;
  auto run = [&](double gamma, double* first) {
    auto mm = Model<float>::Create(cfg, 31);
    Model<float>& m = **mm;
    // Skew: every embedding shares a direction u (as real LM hidden states do) and the router rows of
    // experts 0 and 1 point along u, so every token prefers them.
    Rng srng(33);
    auto u = RandVec<float>(srng, cfg.hidden_size);
    double un = 0;
    for (float v : u) un += v * v;
    for (float& v : u) v = static_cast<float>(v / std::sqrt(un));
    auto& emb = m.Find("model.embed_tokens.weight")->w;
    for (int64_t t = 0; t < cfg.vocab_size; ++t)
      for (int64_t d = 0; d < cfg.hidden_size; ++d) emb[t * cfg.hidden_size + d] += 0.7f * u[d];
    for (int64_t l = cfg.first_k_dense_replace; l < cfg.num_hidden_layers; ++l) {
      auto& w = m.Find("model.layers." + std::to_string(l) + ".mlp.gate.weight")->w;
      for (int64_t e = 0; e < 2; ++e)
        for (int64_t d = 0; d < cfg.hidden_size; ++d) w[e * cfg.hidden_size + d] += 3.0f * u[d];
    }
    Rng rng(32);
    OptimizerConfig oc;
    oc.lr = 0;  // only the bias moves: isolates the balancing mechanism
    oc.bias_update_speed = gamma;
    Optimizer<float> opt(&m, oc);
    // Loads are noisy per batch: compare the mean imbalance of the first 5 steps with the last 20.
    double head = 0, tail = 0;
    for (int s = 0; s < 80; ++s) {
      EXPECT_TRUE(m.Forward(RandomBatch(rng, 4, 32, cfg.vocab_size)).ok());
      if (s < 5) head += MaxOverMeanLoad(m) / 5;
      if (s >= 60) tail += MaxOverMeanLoad(m) / 20;
      opt.Step(s);
    }
    *first = head;
    return tail;
  };
  double first = 0, first_off = 0;
  const double balanced = run(0.01, &first);
  const double off = run(0.0, &first_off);
  EXPECT_GT(first, 2.0) << "router must start skewed";
  EXPECT_LT(balanced, 0.6 * first);
  EXPECT_GT(off, 0.9 * first_off) << "without the bias update the skew stays";
}

TEST(Router, CombineWeightsUseUnbiasedScores) {
  ModelConfig cfg = TinyConfig();
  auto mm = Model<double>::Create(cfg, 41);
  Model<double>& m = **mm;
  auto& bias = m.Find("model.layers.1.mlp.gate.e_score_correction_bias")->w;
  for (size_t e = 0; e < bias.size(); ++e) bias[e] = 0.3 * static_cast<double>(e % 3);
  Rng rng(42);
  ASSERT_TRUE(m.Forward(RandomBatch(rng, 1, 5, cfg.vocab_size)).ok());
  const auto& s = *m.Intermediate("layers.1.mlp.scores");
  const auto& w = *m.Intermediate("layers.1.mlp.combine_weights");
  auto idx = m.router_choice(1);
  const int64_t K = cfg.num_experts_per_tok, E = cfg.n_routed_experts;
  for (int64_t n = 0; n < 5; ++n) {
    double sum = 0;
    for (int64_t k = 0; k < K; ++k) sum += s[n * E + idx[n * K + k]];
    for (int64_t k = 0; k < K; ++k)
      EXPECT_NEAR(w[n * K + k], cfg.routed_scaling_factor * s[n * E + idx[n * K + k]] / sum, 1e-12);
  }
}

}  // namespace
}  // namespace k2::engine
