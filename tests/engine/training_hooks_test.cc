// Training hooks of the model used by SFT and RL: packed rows (segment_ids + positions), the loss
// normalizer with signed weights, and the per-token log-probs / entropies of the last Forward.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/engine.h"
#include "engine/ops_cpu.h"
#include "tests/engine/test_util.h"

namespace k2::engine {
namespace {

using testing::AllClose;
using testing::RandomBatch;
using testing::RandVec;
using testing::TinyConfig;

// Non-zero correction biases so routing uses the bias-only-chooses rule.
template <class T>
void PerturbRouterBias(Model<T>& m, Rng& rng) {
  for (auto& p : m.params())
    if (!p.trainable)
      for (auto& v : p.w) v = static_cast<T>(rng.Uniform(-0.05, 0.05));
}

TEST(SegmentAttention, EqualsEachSegmentRunAlone) {
  Rng rng(1);
  const int64_t T = 11, dq = 6, dv = 5;
  const std::vector<int32_t> seg = {0, 0, 0, 7, 7, 2, 2, 2, 2, 9, 9};
  auto q = RandVec<double>(rng, T * dq), k = RandVec<double>(rng, T * dq), v = RandVec<double>(rng, T * dv);
  std::vector<double> p(T * T), o(T * dv);
  const double mx = ops::CausalAttention(q.data(), k.data(), v.data(), p.data(), o.data(), T, dq, dv, 0.4, seg.data());
  double want_mx = -1e300;
  for (int64_t s0 = 0; s0 < T;) {
    int64_t s1 = s0;
    while (s1 < T && seg[s1] == seg[s0]) ++s1;
    const int64_t L = s1 - s0;
    std::vector<double> ro(L * dv);
    want_mx = std::max(want_mx, ops::ref::CausalAttention(&q[s0 * dq], &k[s0 * dq], &v[s0 * dv], ro.data(), L, dq,
                                                          dv, 0.4));
    std::vector<double> got(o.begin() + s0 * dv, o.begin() + s1 * dv);
    EXPECT_TRUE(AllClose(got, ro, 1e-13, 1e-11, "segment at " + std::to_string(s0)));
    // No probability mass crosses into another segment.
    for (int64_t i = s0; i < s1; ++i)
      for (int64_t j = 0; j < T; ++j)
        if (j < s0 || j >= s1) {
          EXPECT_EQ(p[i * T + j], 0.0) << i << "," << j;
        }
    s0 = s1;
  }
  EXPECT_NEAR(mx, want_mx, 1e-12);
  // Without segments the same inputs mix across documents (so the mask above is doing something).
  std::vector<double> o2(T * dv);
  ops::CausalAttention(q.data(), k.data(), v.data(), p.data(), o2.data(), T, dq, dv, 0.4);
  EXPECT_FALSE(AllClose(o, o2, 1e-6, 1e-6, "unmasked"));
}

// Contiguous segments take the block-diagonal path in both directions; its gradients equal the masked
// full-square backward's on the same softmax. Segment ids that come back after another id (not a packing
// layout) take the masked path and still see only their own id.
TEST(SegmentAttention, BlockBackwardEqualsMaskedAndNonContiguousIdsStillMask) {
  Rng rng(2);
  const int64_t T = 11, dq = 6, dv = 5;
  const std::vector<int32_t> seg = {0, 0, 0, 7, 7, 2, 2, 2, 2, 9, 9};
  auto q = RandVec<double>(rng, T * dq), k = RandVec<double>(rng, T * dq), v = RandVec<double>(rng, T * dv);
  auto dout = RandVec<double>(rng, T * dv);
  std::vector<double> p(T * T), o(T * dv), ds(T * T);
  ops::CausalAttention(q.data(), k.data(), v.data(), p.data(), o.data(), T, dq, dv, 0.4, seg.data());
  std::vector<double> dq1(T * dq), dk1(T * dq), dv1(T * dv), dq2(T * dq), dk2(T * dq), dv2(T * dv);
  ops::CausalAttentionBackward(q.data(), k.data(), v.data(), p.data(), dout.data(), dq1.data(), dk1.data(), dv1.data(),
                               ds.data(), T, dq, dv, 0.4, seg.data());
  std::fill(ds.begin(), ds.end(), 123.0);  // stale scratch must not leak into either form
  ops::CausalAttentionBackward(q.data(), k.data(), v.data(), p.data(), dout.data(), dq2.data(), dk2.data(), dv2.data(),
                               ds.data(), T, dq, dv, 0.4);
  EXPECT_TRUE(AllClose(dq1, dq2, 1e-13, 1e-12, "dq"));
  EXPECT_TRUE(AllClose(dk1, dk2, 1e-13, 1e-12, "dk"));
  EXPECT_TRUE(AllClose(dv1, dv2, 1e-13, 1e-12, "dv"));

  const std::vector<int32_t> back = {0, 0, 1, 1, 0, 0, 2, 1, 1, 2, 2};  // ids return after others
  ops::CausalAttention(q.data(), k.data(), v.data(), p.data(), o.data(), T, dq, dv, 0.4, back.data());
  for (int64_t i = 0; i < T; ++i) {
    std::vector<double> w(T, 0.0);
    double m = -1e300, z = 0;
    for (int64_t j = 0; j <= i; ++j)
      if (back[j] == back[i]) {
        double d = 0;
        for (int64_t c = 0; c < dq; ++c) d += q[i * dq + c] * k[j * dq + c];
        w[j] = 0.4 * d;
        m = std::max(m, w[j]);
      }
    for (int64_t j = 0; j <= i; ++j)
      if (back[j] == back[i]) z += (w[j] = std::exp(w[j] - m));
    for (int64_t c = 0; c < dv; ++c) {
      double want = 0;
      for (int64_t j = 0; j <= i; ++j)
        if (back[j] == back[i]) want += w[j] / z * v[j * dv + c];
      EXPECT_NEAR(o[i * dv + c], want, 1e-12) << i << "," << c;
    }
  }
}

// Documents of a packed batch: each row is a sequence of documents, a document is (tokens, targets,
// weights). Rows are padded with weight-0 tokens of their own segment.
struct Doc {
  std::vector<int32_t> tokens, targets;
  std::vector<float> weights;
};

Doc RandomDoc(Rng& rng, int64_t len, int64_t vocab, bool signed_weights) {
  Doc d;
  for (int64_t i = 0; i < len; ++i) {
    d.tokens.push_back(static_cast<int32_t>(rng.Below(static_cast<uint64_t>(vocab))));
    d.targets.push_back(static_cast<int32_t>(rng.Below(static_cast<uint64_t>(vocab))));
    float w = i % 4 == 1 ? 0.0f : static_cast<float>(0.5 + rng.Uniform());
    if (signed_weights && i % 3 == 0) w = -w;
    d.weights.push_back(w);
  }
  return d;
}

Batch Pack(const std::vector<std::vector<Doc>>& rows, int64_t T) {
  Batch b;
  b.B = static_cast<int64_t>(rows.size());
  b.T = T;
  for (auto& row : rows) {
    int64_t used = 0;
    int32_t seg = 0;
    for (auto& d : row) {
      for (size_t i = 0; i < d.tokens.size(); ++i) {
        b.tokens.push_back(d.tokens[i]);
        b.targets.push_back(d.targets[i]);
        b.weights.push_back(d.weights[i]);
        b.positions.push_back(static_cast<int32_t>(i));
        b.segment_ids.push_back(seg);
      }
      used += static_cast<int64_t>(d.tokens.size());
      ++seg;
    }
    for (; used < T; ++used) {  // padding: its own segment, weight 0, target -1 (ignored)
      b.tokens.push_back(0);
      b.targets.push_back(-1);
      b.weights.push_back(0.0f);
      b.positions.push_back(0);
      b.segment_ids.push_back(-1);
    }
  }
  return b;
}

std::vector<std::vector<Doc>> SomeRows(Rng& rng, int64_t vocab, bool signed_weights) {
  return {{RandomDoc(rng, 5, vocab, signed_weights), RandomDoc(rng, 3, vocab, signed_weights),
           RandomDoc(rng, 6, vocab, signed_weights)},
          {RandomDoc(rng, 9, vocab, signed_weights), RandomDoc(rng, 4, vocab, signed_weights)}};
}

std::map<std::string, std::vector<double>> Grads(Model<double>& m) {
  std::map<std::string, std::vector<double>> g;
  for (auto& p : m.params())
    if (p.trainable) g[p.name] = p.g;
  return g;
}

TEST(PackedBatch, EqualsTheDocumentsRunSeparately) {
  for (bool lora : {true, false}) {
    SCOPED_TRACE(lora ? "q_lora path" : "q_proj path");
    ModelConfig c = TinyConfig();
    if (!lora) c.q_lora_rank.reset();
    auto mm = Model<double>::Create(c, 31);
    ASSERT_TRUE(mm.ok());
    Model<double>& m = **mm;
    Rng rng(32);
    PerturbRouterBias(m, rng);
    auto rows = SomeRows(rng, c.vocab_size, /*signed_weights=*/true);
    const int64_t T = 14;
    Batch packed = Pack(rows, T);
    const double norm = 9.5;
    ForwardOptions opt;
    opt.loss_normalizer = norm;
    auto rp = m.Forward(packed, opt);
    ASSERT_TRUE(rp.ok()) << rp.status().ToString();
    const std::vector<double> logits = m.logits(), logp = m.token_logprobs(), ent = m.token_entropy();
    m.ZeroGrad();
    m.Backward();
    auto packed_grads = Grads(m);

    // Each document alone (B=1, positions 0..len-1, no segments); gradients accumulate over documents
    // with the same normalizer, so their sum is the packed batch's gradient.
    m.ZeroGrad();
    double loss_sum = 0;
    const int64_t V = c.vocab_size;
    for (size_t r = 0; r < rows.size(); ++r) {
      int64_t off = static_cast<int64_t>(r) * T;
      for (auto& d : rows[r]) {
        Batch b;
        b.B = 1;
        b.T = static_cast<int64_t>(d.tokens.size());
        b.tokens = d.tokens;
        b.targets = d.targets;
        b.weights = d.weights;
        auto rs = m.Forward(b, opt);
        ASSERT_TRUE(rs.ok()) << rs.status().ToString();
        loss_sum += rs->ce_loss;
        std::vector<double> want(logits.begin() + off * V, logits.begin() + (off + b.T) * V);
        EXPECT_TRUE(AllClose(m.logits(), want, 1e-12, 1e-10, "logits of doc at " + std::to_string(off)));
        std::vector<double> want_lp(logp.begin() + off, logp.begin() + off + b.T);
        EXPECT_TRUE(AllClose(m.token_logprobs(), want_lp, 1e-12, 1e-10, "logprobs"));
        std::vector<double> want_ent(ent.begin() + off, ent.begin() + off + b.T);
        EXPECT_TRUE(AllClose(m.token_entropy(), want_ent, 1e-12, 1e-10, "entropy"));
        m.Backward();
        off += b.T;
      }
    }
    EXPECT_NEAR(rp->ce_loss, loss_sum, 1e-10);
    auto sep_grads = Grads(m);
    for (auto& [name, g] : packed_grads) EXPECT_TRUE(AllClose(g, sep_grads[name], 1e-12, 1e-9, name));

    // The mask and positions matter: without them the packed row's later documents see earlier ones.
    Batch plain = packed;
    plain.segment_ids.clear();
    plain.positions.clear();
    ASSERT_TRUE(m.Forward(plain, opt).ok());
    EXPECT_FALSE(AllClose(m.logits(), logits, 1e-6, 1e-6, "unpacked"));
  }
}

TEST(PackedBatch, DefaultPositionsAndOneSegmentEqualThePlainBatch) {
  ModelConfig c = TinyConfig();
  auto m = Model<double>::Create(c, 41);
  ASSERT_TRUE(m.ok());
  Rng rng(42);
  Batch b = RandomBatch(rng, 2, 9, c.vocab_size);
  ASSERT_TRUE((*m)->Forward(b).ok());
  const std::vector<double> plain = (*m)->logits();
  for (int64_t i = 0; i < b.B * b.T; ++i) {
    b.positions.push_back(static_cast<int32_t>(i % b.T));
    b.segment_ids.push_back(static_cast<int32_t>(i / b.T) * 5);
  }
  ASSERT_TRUE((*m)->Forward(b).ok());
  EXPECT_TRUE(AllClose((*m)->logits(), plain, 0, 0, "explicit defaults"));
  // RoPE reads the given positions: spreading them (relative offsets change) changes the logits. A
  // uniform shift would not, as q.k depends only on the offset.
  for (auto& p : b.positions) p *= 2;
  ASSERT_TRUE((*m)->Forward(b).ok());
  EXPECT_FALSE(AllClose((*m)->logits(), plain, 1e-9, 1e-9, "shifted positions"));
}

TEST(TokenLogprobs, AreTheLogSoftmaxOfTheTargetsAndEntropyOfTheRow) {
  ModelConfig c = TinyConfig();
  auto mm = Model<float>::Create(c, 51);
  ASSERT_TRUE(mm.ok());
  Model<float>& m = **mm;
  Rng rng(52);
  Batch b = RandomBatch(rng, 2, 6, c.vocab_size);
  b.targets[4] = -1;  // weight must be 0 there
  b.weights[4] = 0;
  auto r = m.Forward(b);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const int64_t V = c.vocab_size;
  double ce = 0, wsum = 0;
  for (int64_t n = 0; n < b.B * b.T; ++n) {
    const float* row = &m.logits()[n * V];
    double mx = -1e300, z = 0, ex = 0;
    for (int64_t v = 0; v < V; ++v) mx = std::max(mx, static_cast<double>(row[v]));
    for (int64_t v = 0; v < V; ++v) z += std::exp(row[v] - mx);
    for (int64_t v = 0; v < V; ++v) {
      const double lp = row[v] - mx - std::log(z);
      ex -= std::exp(lp) * lp;
    }
    const double want = b.targets[n] < 0 ? 0.0 : row[b.targets[n]] - mx - std::log(z);
    EXPECT_NEAR(m.token_logprobs()[n], want, 1e-5) << n;
    EXPECT_NEAR(m.token_entropy()[n], ex, 1e-5) << n;
    EXPECT_GT(m.token_entropy()[n], 0.0);
    EXPECT_LE(m.token_entropy()[n], std::log(static_cast<double>(V)) + 1e-5);
    ce -= b.weights[n] * want;
    wsum += b.weights[n];
  }
  EXPECT_NEAR(r->ce_loss, ce / wsum, 1e-5);
}

TEST(LossNormalizer, DividesTheWeightedSumByTheGivenConstant) {
  ModelConfig c = TinyConfig();
  auto mm = Model<double>::Create(c, 61);
  ASSERT_TRUE(mm.ok());
  Model<double>& m = **mm;
  Rng rng(62);
  Batch b = RandomBatch(rng, 2, 5, c.vocab_size);
  auto mean = m.Forward(b);
  ASSERT_TRUE(mean.ok());
  m.ZeroGrad();
  m.Backward();
  auto g_mean = Grads(m);
  ForwardOptions opt;
  opt.loss_normalizer = 123.0;
  auto scaled = m.Forward(b, opt);
  ASSERT_TRUE(scaled.ok());
  EXPECT_NEAR(scaled->ce_loss, mean->ce_loss * mean->weight_sum / 123.0, 1e-12);
  m.ZeroGrad();
  m.Backward();
  auto g_scaled = Grads(m);
  for (auto& [name, g] : g_mean) {
    std::vector<double> want = g;
    for (auto& v : want) v *= mean->weight_sum / 123.0;
    EXPECT_TRUE(AllClose(g_scaled[name], want, 1e-14, 1e-9, name));
  }
}

TEST(LossNormalizer, SignedWeightsGiveThePolicyGradientLoss) {
  ModelConfig c = TinyConfig();
  auto mm = Model<double>::Create(c, 71);
  ASSERT_TRUE(mm.ok());
  Model<double>& m = **mm;
  Rng rng(72);
  Batch b = RandomBatch(rng, 2, 6, c.vocab_size);
  for (size_t i = 0; i < b.weights.size(); ++i)
    if (i % 2) b.weights[i] = -b.weights[i];
  ForwardOptions opt;
  opt.loss_normalizer = 12;
  auto r = m.Forward(b, opt);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  double want = 0;
  for (size_t i = 0; i < b.weights.size(); ++i) want -= b.weights[i] * m.token_logprobs()[i];
  EXPECT_NEAR(r->ce_loss, want / 12, 1e-12);

  // All-zero weights (every advantage 0) are a valid RL batch with a zero gradient.
  std::fill(b.weights.begin(), b.weights.end(), 0.0f);
  auto z = m.Forward(b, opt);
  ASSERT_TRUE(z.ok()) << z.status().ToString();
  EXPECT_EQ(z->ce_loss, 0.0);
  m.ZeroGrad();
  m.Backward();
  for (auto& p : m.params()) {
    if (p.name.find("lm_head") == std::string::npos) continue;
    for (double v : p.g) ASSERT_EQ(v, 0.0);
  }
}

TEST(LossNormalizer, BadInputsAreClearErrors) {
  ModelConfig c = TinyConfig();
  auto mm = Model<float>::Create(c, 81);
  ASSERT_TRUE(mm.ok());
  Model<float>& m = **mm;
  Rng rng(82);
  auto err = [&](const Batch& b, ForwardOptions o = {}) { return m.Forward(b, o).status().ToString(); };
  Batch b = RandomBatch(rng, 1, 6, c.vocab_size);
  b.weights[2] = -1;
  EXPECT_NE(err(b).find("weights[2] must be finite and >= 0 (negative weights need a loss_normalizer)"),
            std::string::npos)
      << err(b);
  ForwardOptions o;
  o.loss_normalizer = 4;
  EXPECT_TRUE(m.Forward(b, o).ok());
  b.weights[3] = std::nanf("");
  EXPECT_NE(err(b, o).find("weights[3] must be finite"), std::string::npos) << err(b, o);
  b = RandomBatch(rng, 1, 6, c.vocab_size);
  o.loss_normalizer = -2;
  EXPECT_NE(err(b, o).find("loss_normalizer must be finite and >= 0"), std::string::npos) << err(b, o);
  b.positions = {0, 1, 2};
  EXPECT_NE(err(b).find("positions must be empty or hold B*T=6 values, got 3"), std::string::npos) << err(b);
  b.positions = {0, 1, 2, 3, 4, static_cast<int32_t>(c.max_position_embeddings)};
  EXPECT_NE(err(b).find("positions[5] = " + std::to_string(c.max_position_embeddings) + " outside"),
            std::string::npos)
      << err(b);
  b.positions = {0, 1, 2, 0, 1, -1};
  EXPECT_NE(err(b).find("positions[5] = -1 outside"), std::string::npos) << err(b);
  b.positions.clear();
  b.segment_ids = {0, 0};
  EXPECT_NE(err(b).find("segment_ids must be empty or hold B*T=6 values, got 2"), std::string::npos) << err(b);
  b.segment_ids.clear();
  b.targets[1] = -1;
  EXPECT_NE(err(b).find("targets[1] = -1 outside [0, vocab_size) with a non-zero weight"), std::string::npos)
      << err(b);
}

// SetLossWeights: a Forward with zero weights, then the real weights, then Backward gives exactly the
// gradient of a Forward given those weights (RL's one-pass update); bad weights are clear errors.
TEST(LossNormalizer, SetLossWeightsAfterForwardEqualsWeightsInTheBatch) {
  ModelConfig c = TinyConfig();
  auto a = Model<double>::Create(c, 91), z = Model<double>::Create(c, 91);
  ASSERT_TRUE(a.ok() && z.ok());
  Rng rng(92);
  Batch b = RandomBatch(rng, 2, 6, c.vocab_size);
  for (size_t i = 0; i < b.weights.size(); ++i)
    if (i % 3 == 0) b.weights[i] = -b.weights[i];
  ForwardOptions o;
  o.loss_normalizer = 5;
  ASSERT_TRUE((*a)->Forward(b, o).ok());
  (*a)->ZeroGrad();
  (*a)->Backward();
  Batch b0 = b;
  std::fill(b0.weights.begin(), b0.weights.end(), 0.0f);
  EXPECT_NE((*z)->SetLossWeights(b.weights).ToString().find("no Forward"), std::string::npos);
  ASSERT_TRUE((*z)->Forward(b0, o).ok());
  ASSERT_TRUE((*z)->SetLossWeights(b.weights).ok());
  (*z)->ZeroGrad();
  (*z)->Backward();
  double scale = 0;
  for (size_t i = 0; i < (*a)->params().size(); ++i)
    for (size_t j = 0; j < (*a)->params()[i].g.size(); ++j) {
      ASSERT_EQ((*a)->params()[i].g[j], (*z)->params()[i].g[j]) << (*a)->params()[i].name << "[" << j << "]";
      scale = std::max(scale, std::fabs((*a)->params()[i].g[j]));
    }
  EXPECT_GT(scale, 0);

  std::vector<float> w(b.weights.size() - 1, 1.0f);
  EXPECT_NE((*z)->SetLossWeights(w).ToString().find("expected B*T=12 weights, got 11"), std::string::npos);
  w.assign(b.weights.size(), 1.0f);
  w[4] = std::nanf("");
  EXPECT_NE((*z)->SetLossWeights(w).ToString().find("weights[4] must be finite"), std::string::npos);
  ASSERT_TRUE((*z)->Forward(b0, ForwardOptions{}).ok() == false);  // zero weights need a normalizer
  Batch bp = b;
  for (auto& v : bp.weights) v = std::fabs(v);
  ASSERT_TRUE((*z)->Forward(bp, ForwardOptions{}).ok());
  w.assign(b.weights.size(), 1.0f);
  w[7] = -1;
  EXPECT_NE((*z)->SetLossWeights(w).ToString().find("weights[7] must be finite and >= 0 (the Forward had no loss_normalizer)"),
            std::string::npos);
}

// Whole-model fp64 finite differences of a packed batch with signed weights and a normalizer: the
// gradient of the RL-style loss through segments, restarted positions, MoE routing and aux loss.
TEST(PackedBatch, SignedPackedGradientsMatchFiniteDifferences) {
  for (double aux : {0.0, 0.2}) {
    SCOPED_TRACE("aux_alpha " + std::to_string(aux));
    ModelConfig c = TinyConfig();
    auto mm = Model<double>::Create(c, 91);
    ASSERT_TRUE(mm.ok());
    Model<double>& m = **mm;
    Rng rng(92);
    PerturbRouterBias(m, rng);
    Batch b = Pack(SomeRows(rng, c.vocab_size, /*signed_weights=*/true), 14);
    ForwardOptions opt;
    opt.aux_loss_alpha = aux;
    opt.loss_normalizer = 7.25;
    auto r0 = m.Forward(b, opt);
    ASSERT_TRUE(r0.ok()) << r0.status().ToString();
    std::vector<std::vector<int32_t>> route0;
    for (int64_t l = 0; l < c.num_hidden_layers; ++l) route0.push_back(m.router_choice(l));
    m.ZeroGrad();
    m.Backward();
    const double h = 1e-6;
    int checked = 0;
    for (auto& p : m.params()) {
      if (!p.trainable) continue;
      for (int s = 0; s < std::min<int64_t>(p.numel(), 4); ++s) {
        const size_t i = static_cast<size_t>(rng.Below(static_cast<uint64_t>(p.numel())));
        const double w0 = p.w[i];
        p.w[i] = w0 + h;
        const double lp = m.Forward(b, opt)->loss;
        for (int64_t l = 0; l < c.num_hidden_layers; ++l)
          ASSERT_EQ(m.router_choice(l), route0[l]) << "routing flipped perturbing " << p.name;
        p.w[i] = w0 - h;
        const double lm = m.Forward(b, opt)->loss;
        p.w[i] = w0;
        const double num = (lp - lm) / (2 * h);
        EXPECT_NEAR(p.g[i], num, 1e-7 + 1e-5 * std::abs(num)) << p.name << "[" << i << "]";
        ++checked;
      }
    }
    EXPECT_GT(checked, 80);
  }
}

}  // namespace
}  // namespace k2::engine
