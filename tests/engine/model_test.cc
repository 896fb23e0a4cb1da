// The model: shipped configs, strict config errors, parameter counts, whole-model fp64 finite-difference
// gradients (router, aux loss and RoPE included) for each variant, absorbed == naive MLA, float == double.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/engine.h"
#include "tests/engine/test_util.h"

namespace k2::engine {
namespace {

using testing::AllClose;
using testing::RandomBatch;
using testing::TinyConfig;

const std::string kModels = std::string(K2GYM_SOURCE_DIR) + "/configs/models/";

TEST(ModelConfig, ShippedConfigsLoad) {
  for (auto name : {"tiny.json", "small.json", "kimi-k2.json"}) {
    auto c = LoadModelConfig(kModels + name);
    EXPECT_TRUE(c.ok()) << name << ": " << c.status().ToString();
  }
}

TEST(ModelConfig, KimiK2CountsMatchTheReport) {
  auto c = LoadModelConfig(kModels + "kimi-k2.json");
  ASSERT_TRUE(c.ok());
  ModelStats s = ComputeModelStats(*c, 4096);
  // K2 report: 1.04T total, 32.6B activated. Our counts (HF tensors, embeddings + lm_head included).
  EXPECT_NEAR(static_cast<double>(s.total_params) / 1e12, 1.03, 0.015);
  EXPECT_NEAR(static_cast<double>(s.activated_params) / 1e9, 32.6, 0.5);
}

TEST(ModelConfig, TinyParameterCountEqualsTheBuiltTensors) {
  auto m = Model<float>::Create(TinyConfig(), 1);
  ASSERT_TRUE(m.ok());
  int64_t n = 0;
  for (auto& p : (*m)->params()) n += p.numel();
  EXPECT_EQ(n, ComputeModelStats(TinyConfig(), 64).total_params);
  EXPECT_GT(n, 80000);
  EXPECT_LT(n, 130000);
}

TEST(ModelConfig, ErrorsNameTheField) {
  auto bad = [](json j) { return ModelConfigFromJson(j, "m.json").status().ToString(); };
  json base = config::ToJson(TinyConfig());
  json j = base;
  j["num_key_value_heads"] = 3;
  EXPECT_NE(bad(j).find("m.json: num_key_value_heads"), std::string::npos) << bad(j);
  j = base;
  j["hidden_size"] = "big";
  EXPECT_NE(bad(j).find("hidden_size: expected integer"), std::string::npos) << bad(j);
  j = base;
  j["topk_group"] = 5;
  EXPECT_NE(bad(j).find("topk_group"), std::string::npos) << bad(j);
  j = base;
  j["rope_scaling"]["type"] = "linear";
  EXPECT_NE(bad(j).find("rope_scaling.type"), std::string::npos) << bad(j);
  j = base;
  j["architectures"] = {"DeepseekV3ForCausalLM"};  // foreign keys are fine
  EXPECT_TRUE(ModelConfigFromJson(j, "m.json").ok());
}

TEST(ModelConfig, YarnConstantsFollowHf) {
  ModelConfig c = TinyConfig();
  // m = 0.1 * 0.8 * ln 4 + 1; scale = 16^-0.5 * m^2; attention factor = get_mscale(4,1)/get_mscale(4,0.8).
  const double m = 0.1 * 0.8 * std::log(4.0) + 1;
  EXPECT_NEAR(c.softmax_scale(), 0.25 * m * m, 1e-12);
  EXPECT_NEAR(c.rope_attention_factor(), (0.1 * std::log(4.0) + 1) / m, 1e-12);
  auto f = c.inv_freq();
  ASSERT_EQ(f.size(), 4u);
  // dims below `low` keep the original frequency, above `high` are divided by the factor.
  EXPECT_NEAR(f[0], 1.0, 1e-12);
  EXPECT_NEAR(f[3], std::pow(10000.0, -6.0 / 8.0) / 4.0, 1e-12);
}

TEST(Model, ForwardRejectsBadBatches) {
  auto m = Model<float>::Create(TinyConfig(), 1);
  ASSERT_TRUE(m.ok());
  Rng rng(1);
  Batch b = RandomBatch(rng, 1, 4, 128);
  b.tokens[2] = 500;
  EXPECT_NE((*m)->Forward(b).status().ToString().find("tokens[2] = 500"), std::string::npos);
  b = RandomBatch(rng, 1, 100, 128);
  EXPECT_NE((*m)->Forward(b).status().ToString().find("max_position_embeddings"), std::string::npos);
  b = RandomBatch(rng, 1, 4, 128);
  std::fill(b.weights.begin(), b.weights.end(), 0.0f);
  EXPECT_FALSE((*m)->Forward(b).ok());
}

// Segment parents (a shared prefix): one row [P C1 C2] with C1, C2 attending to P equals the packed row
// [P C1 | P C2] — the same log-probs, loss and gradient (the second copy of P carries no weight), in fp64.
TEST(ModelGrad, SharedPrefixEqualsACopyPerContinuation) {
  auto mm = Model<double>::Create(TinyConfig(), 31);
  ASSERT_TRUE(mm.ok());
  Model<double>& m = **mm;
  Rng rng(32);
  const int64_t P = 5, C1 = 4, C2 = 3, V = TinyConfig().vocab_size;
  Batch full = RandomBatch(rng, 1, P + C1 + C2, V, false);  // tokens/targets/weights of the shared layout
  Batch sh = full;
  for (int64_t i = 0; i < P + C1 + C2; ++i) {
    const bool c2 = i >= P + C1;
    sh.positions.push_back(static_cast<int32_t>(c2 ? i - C1 : i));
    sh.segment_ids.push_back(i < P ? 0 : c2 ? 2 : 1);
    sh.segment_parents.push_back(i < P ? -1 : 0);
  }
  Batch cp;  // [P C1 | P C2]
  cp.B = 1;
  cp.T = 2 * P + C1 + C2;
  std::vector<int64_t> src;  // shared-layout index of each copy position
  for (int64_t i = 0; i < P + C1; ++i) src.push_back(i);
  for (int64_t i = 0; i < P; ++i) src.push_back(i);
  for (int64_t i = P + C1; i < P + C1 + C2; ++i) src.push_back(i);
  for (int64_t n = 0; n < cp.T; ++n) {
    const int64_t i = src[n];
    const bool second = n >= P + C1;
    cp.tokens.push_back(full.tokens[i]);
    cp.targets.push_back(full.targets[i]);
    cp.weights.push_back(second && i < P ? 0.0f : full.weights[i]);
    cp.positions.push_back(static_cast<int32_t>(second ? n - (P + C1) : n));
    cp.segment_ids.push_back(second ? 1 : 0);
  }
  ForwardOptions fo;
  fo.loss_normalizer = 1.0;
  auto rs = m.Forward(sh, fo);
  ASSERT_TRUE(rs.ok()) << rs.status().ToString();
  const std::vector<double> lp_sh = m.token_logprobs();
  m.ZeroGrad();
  m.Backward();
  std::vector<std::vector<double>> g_sh;
  for (const auto& p : m.params()) g_sh.push_back(p.g);
  auto rc = m.Forward(cp, fo);
  ASSERT_TRUE(rc.ok()) << rc.status().ToString();
  EXPECT_NEAR(rs->ce_loss, rc->ce_loss, 1e-12);
  for (int64_t n = 0; n < cp.T; ++n) EXPECT_NEAR(lp_sh[src[n]], m.token_logprobs()[n], 1e-12) << "position " << n;
  m.ZeroGrad();
  m.Backward();
  for (size_t k = 0; k < m.params().size(); ++k)
    EXPECT_TRUE(AllClose(g_sh[k], m.params()[k].g, 1e-12, 1e-9, m.params()[k].name));

  // Bad parents are a clear error, not a wrong answer.
  Batch bad = sh;
  bad.segment_parents[P] = 2;  // C1's first position names C2, which comes later
  auto st = m.Forward(bad, fo);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.status().ToString().find("row 0 segment_parents"), std::string::npos) << st.status().ToString();
  bad = sh;
  bad.segment_ids.clear();
  EXPECT_NE(m.Forward(bad, fo).status().ToString().find("without segment_ids"), std::string::npos);
}

struct Variant {
  std::string name;
  std::function<void(ModelConfig&)> edit;
  double aux_alpha;
};

// Whole-model gradient check: every trainable tensor, a seeded sample of its elements, central
// differences of the full loss (CE + aux) in fp64. The routing must not flip under the perturbation;
// the test asserts that too, so a flip cannot hide a wrong gradient.
void CheckModelGradients(const ModelConfig& cfg, double aux_alpha, uint64_t seed) {
  auto mm = Model<double>::Create(cfg, seed);
  ASSERT_TRUE(mm.ok()) << mm.status().ToString();
  Model<double>& m = **mm;
  Rng rng(seed + 100);
  Batch b = RandomBatch(rng, 2, 7, cfg.vocab_size);
  // Non-zero correction biases so the bias-only-chooses rule is exercised.
  for (auto& p : m.params()) {
    if (p.trainable) continue;
    for (auto& v : p.w) v = rng.Uniform(-0.05, 0.05);
  }
  ForwardOptions opt{aux_alpha};
  auto r0 = m.Forward(b, opt);
  ASSERT_TRUE(r0.ok()) << r0.status().ToString();
  if (aux_alpha > 0) {
    EXPECT_GT(r0->aux_loss, 0.0);
  }
  std::vector<std::vector<int32_t>> route0;
  for (int64_t l = 0; l < cfg.num_hidden_layers; ++l) route0.push_back(m.router_choice(l));
  m.ZeroGrad();
  m.Backward();
  const double h = 1e-6;
  int checked = 0;
  for (auto& p : m.params()) {
    if (!p.trainable) continue;
    const int samples = std::min<int64_t>(p.numel(), 6);
    for (int s = 0; s < samples; ++s) {
      const size_t i = static_cast<size_t>(rng.Below(static_cast<uint64_t>(p.numel())));
      const double w0 = p.w[i];
      p.w[i] = w0 + h;
      double lp = m.Forward(b, opt)->loss;
      for (int64_t l = 0; l < cfg.num_hidden_layers; ++l)
        ASSERT_EQ(m.router_choice(l), route0[l]) << "routing flipped perturbing " << p.name << "[" << i << "]";
      p.w[i] = w0 - h;
      double lm = m.Forward(b, opt)->loss;
      p.w[i] = w0;
      const double num = (lp - lm) / (2 * h), ana = p.g[i];
      EXPECT_NEAR(ana, num, 1e-7 + 1e-5 * std::abs(num)) << p.name << "[" << i << "]";
      ++checked;
    }
  }
  EXPECT_GT(checked, 100);
}

TEST(ModelGrad, TinyMatchesFiniteDifferences) { CheckModelGradients(TinyConfig(), 0.0, 11); }

TEST(ModelGrad, TinyWithSequenceAuxLoss) { CheckModelGradients(TinyConfig(), 0.3, 12); }

TEST(ModelGrad, Variants) {
  std::vector<Variant> vs = {
      {"q_proj path (q_lora_rank null)", [](ModelConfig& c) { c.q_lora_rank.reset(); }, 0.0},
      {"no shared expert, unnormalized top-k", [](ModelConfig& c) { c.n_shared_experts = 0; c.norm_topk_prob = false; }, 0.1},
      {"no rope scaling, rotate-half layout", [](ModelConfig& c) { c.rope_scaling.reset(); c.rope_interleave = false; }, 0.0},
      {"all layers MoE, 4 groups keep 2", [](ModelConfig& c) { c.first_k_dense_replace = 0; c.n_group = 4; c.topk_group = 2; }, 0.0},
  };
  for (auto& v : vs) {
    SCOPED_TRACE(v.name);
    ModelConfig c = TinyConfig();
    v.edit(c);
    CheckModelGradients(c, v.aux_alpha, 21);
  }
}

TEST(Model, AbsorbedMlaEqualsNaive) {
  for (bool lora : {true, false}) {
    ModelConfig c = TinyConfig();
    if (!lora) c.q_lora_rank.reset();
    auto m = Model<double>::Create(c, 5);
    ASSERT_TRUE(m.ok());
    Rng rng(6);
    ASSERT_TRUE((*m)->Forward(RandomBatch(rng, 2, 9, c.vocab_size)).ok());
    for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
      const std::vector<double>* naive = (*m)->Intermediate("layers." + std::to_string(l) + ".attn.o");
      ASSERT_NE(naive, nullptr);
      EXPECT_TRUE(AllClose((*m)->AbsorbedAttention(l), *naive, 1e-12, 1e-10, "layer " + std::to_string(l)));
    }
  }
}

TEST(Model, AbsorbedMlaDecodesOneQueryAgainstACache) {
  // The last query alone (Tq=1 against Tk cached latents) equals the last row of the full pass.
  ModelConfig c = TinyConfig();
  auto m = Model<double>::Create(c, 7);
  ASSERT_TRUE(m.ok());
  Rng rng(8);
  const int64_t T = 6, H = c.num_attention_heads, dq = c.qk_head_dim(), dv = c.v_head_dim;
  ASSERT_TRUE((*m)->Forward(RandomBatch(rng, 1, T, c.vocab_size)).ok());
  const auto& q = *(*m)->Intermediate("layers.1.attn.q");
  const auto& ckv = *(*m)->Intermediate("layers.1.attn.c_kv");
  const auto& kpe = *(*m)->Intermediate("layers.1.attn.k_pe");
  const auto& full = *(*m)->Intermediate("layers.1.attn.o");
  std::vector<double> out(H * dv);
  MlaAbsorbedAttention(&q[(T - 1) * H * dq], ckv.data(), kpe.data(),
                       (*m)->Find("model.layers.1.self_attn.kv_b_proj.weight")->w.data(), 1, T, H,
                       c.qk_nope_head_dim, c.qk_rope_head_dim, dv, c.kv_lora_rank, c.softmax_scale(), out.data());
  std::vector<double> last(full.end() - H * dv, full.end());
  EXPECT_TRUE(AllClose(out, last, 1e-12, 1e-10, "decode row"));
}

TEST(Model, FloatForwardMatchesDouble) {
  ModelConfig c = TinyConfig();
  auto mf = Model<float>::Create(c, 9);
  auto md = Model<double>::Create(c, 9);
  ASSERT_TRUE(mf.ok() && md.ok());
  Rng rng(10);
  Batch b = RandomBatch(rng, 2, 8, c.vocab_size);
  auto rf = (*mf)->Forward(b);
  auto rd = (*md)->Forward(b);
  ASSERT_TRUE(rf.ok() && rd.ok());
  EXPECT_NEAR(rf->loss, rd->loss, 1e-4);
  EXPECT_TRUE(AllClose((*mf)->logits(), (*md)->logits(), 1e-4, 1e-3, "logits"));
}

TEST(Model, MaxLogitIsTheLargestScaledScore) {
  ModelConfig c = TinyConfig();
  auto m = Model<double>::Create(c, 3);
  ASSERT_TRUE(m.ok());
  Rng rng(4);
  const int64_t T = 5, H = c.num_attention_heads, dq = c.qk_head_dim(), dn = c.qk_nope_head_dim,
                dv = c.v_head_dim;
  ASSERT_TRUE((*m)->Forward(RandomBatch(rng, 1, T, c.vocab_size)).ok());
  const auto& q = *(*m)->Intermediate("layers.0.attn.q");
  const auto& kv = *(*m)->Intermediate("layers.0.attn.kv");
  const auto& kpe = *(*m)->Intermediate("layers.0.attn.k_pe");
  for (int64_t h = 0; h < H; ++h) {
    double mx = -1e300;
    for (int64_t i = 0; i < T; ++i)
      for (int64_t j = 0; j <= i; ++j) {
        double s = 0;
        for (int64_t d = 0; d < dn; ++d) s += q[i * H * dq + h * dq + d] * kv[j * H * (dn + dv) + h * (dn + dv) + d];
        for (int64_t d = 0; d < dq - dn; ++d) s += q[i * H * dq + h * dq + dn + d] * kpe[j * (dq - dn) + d];
        mx = std::max(mx, s * c.softmax_scale());
      }
    EXPECT_NEAR((*m)->max_logits()[0][h], mx, 1e-12) << "head " << h;
  }
}

}  // namespace
}  // namespace k2::engine
