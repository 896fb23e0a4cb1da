// The engine against an independent PyTorch implementation (tests/golden/make_golden.py): logits, loss,
// intermediates, every gradient and the parameters after 3 MuonClip steps, at fp32 tolerance. A failure
// names the first tensor that diverges (STYLE habit 3).
#include <gtest/gtest.h>

#include <cmath>

#include "engine/engine.h"
#include "tests/engine/test_util.h"

namespace k2::engine {
namespace {

const std::string kGolden = std::string(K2GYM_SOURCE_DIR) + "/tests/golden/";

struct Fixture {
  StFile f;
  std::vector<double> Get(const std::string& name) const {
    auto it = f.tensors.find(name);
    EXPECT_NE(it, f.tensors.end()) << "fixture lacks " << name;
    if (it == f.tensors.end()) return {};
    return *StToDouble(it->second, name);
  }
  double Meta(const std::string& k) const { return std::stod(f.metadata.at(k)); }
};

// Scale-aware fp32 comparison: |a-b| <= atol_frac * max|ref| + rtol * |ref|.
template <class A>
::testing::AssertionResult Near(const std::vector<A>& got, const std::vector<double>& ref, double atol_frac,
                                double rtol, const std::string& name) {
  if (got.size() != ref.size()) return ::testing::AssertionFailure() << name << ": size " << got.size() << " vs " << ref.size();
  double mx = 0;
  for (double v : ref) mx = std::max(mx, std::abs(v));
  for (size_t i = 0; i < ref.size(); ++i) {
    double d = std::abs(static_cast<double>(got[i]) - ref[i]);
    if (!(d <= atol_frac * mx + rtol * std::abs(ref[i])))
      return ::testing::AssertionFailure() << "first divergence: " << name << "[" << i << "] k2gym " << got[i]
                                           << " vs torch " << ref[i] << " (max |ref| " << mx << ")";
  }
  return ::testing::AssertionSuccess();
}

TEST(Golden, MatchesIndependentPyTorchModel) {
  auto st = ReadSafetensors(kGolden + "golden.safetensors");
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  Fixture fx{*st};
  ASSERT_EQ(fx.f.metadata["format"], "k2gym-golden");
  ASSERT_EQ(fx.f.metadata["version"], "1") << "fixture version changed: update this test with the script";
  ModelConfig cfg = testing::TinyConfig();
  auto mm = Model<float>::Create(cfg, 0);
  ASSERT_TRUE(mm.ok());
  Model<float>& m = **mm;
  Status ls = m.LoadSafetensors(kGolden + "tiny_model.safetensors");
  ASSERT_TRUE(ls.ok()) << ls.ToString();

  Batch b;
  auto tok = fx.Get("input.tokens"), tgt = fx.Get("input.targets"), w = fx.Get("input.weights");
  b.B = fx.f.tensors.at("input.tokens").shape[0];
  b.T = fx.f.tensors.at("input.tokens").shape[1];
  for (size_t i = 0; i < tok.size(); ++i) {
    b.tokens.push_back(static_cast<int32_t>(tok[i]));
    b.targets.push_back(static_cast<int32_t>(tgt[i]));
    b.weights.push_back(static_cast<float>(w[i]));
  }
  ForwardOptions fo{fx.Meta("aux_loss_alpha")};
  auto r = m.Forward(b, fo);
  ASSERT_TRUE(r.ok()) << r.status().ToString();

  // Forward: intermediates in model order, so the first failure is the first divergence.
  std::vector<std::string> acts = {"embed"};
  for (int64_t l = 0; l < cfg.num_hidden_layers; ++l) {
    acts.push_back("layers." + std::to_string(l) + ".attn.o");
    acts.push_back("layers." + std::to_string(l) + ".h_mid");
    acts.push_back("layers." + std::to_string(l) + ".out");
  }
  for (auto& a : acts) {
    const std::vector<float>* got = m.Intermediate(a);
    ASSERT_NE(got, nullptr) << a;
    ASSERT_TRUE(Near(*got, fx.Get("act." + a), 1e-5, 1e-4, a));
  }
  ASSERT_TRUE(Near(m.logits(), fx.Get("out.logits"), 1e-5, 1e-4, "logits"));
  EXPECT_NEAR(r->ce_loss, fx.Get("out.ce_loss")[0], 1e-5);
  EXPECT_NEAR(r->aux_loss, fx.Get("out.aux_loss")[0], 1e-6);
  EXPECT_GT(r->aux_loss, 0.0);
  std::vector<double> ml;
  for (auto& l : m.max_logits()) ml.insert(ml.end(), l.begin(), l.end());
  ASSERT_TRUE(Near(ml, fx.Get("max_logits"), 1e-5, 1e-4, "max_logits"));

  // Backward: every gradient, in parameter order.
  m.ZeroGrad();
  m.Backward();
  for (auto& p : m.params()) {
    if (!p.trainable) continue;
    ASSERT_TRUE(Near(p.g, fx.Get("grad." + p.name), 1e-4, 1e-3, "grad." + p.name));
  }

  // 3 MuonClip steps with the script's hyper-parameters; QK-Clip triggers (tau between head maxima).
  OptimizerConfig oc;
  oc.lr = fx.Meta("lr");
  oc.schedule = "constant";
  oc.weight_decay = fx.Meta("weight_decay");
  oc.muon_momentum = fx.Meta("momentum");
  oc.nesterov = fx.f.metadata.at("nesterov") == "True";
  oc.ns_steps = static_cast<int64_t>(fx.Meta("ns_steps"));
  oc.adam_beta1 = fx.Meta("beta1");
  oc.adam_beta2 = fx.Meta("beta2");
  oc.adam_eps = fx.Meta("eps");
  oc.grad_clip = fx.Meta("grad_clip");
  oc.qk_clip = true;
  oc.qk_clip_tau = fx.Get("qk_clip_tau")[0];
  oc.qk_clip_measure = "step_forward";  // the fixture clips with the step's own maxima (K2 Algorithm 1)
  oc.bias_update_speed = fx.Meta("bias_update_speed");
  Optimizer<float> opt(&m, oc);
  auto losses = fx.Get("step.loss");
  int64_t clipped = 0;
  for (int s = 0; s < 3; ++s) {
    auto rs = m.Forward(b, fo);
    ASSERT_TRUE(rs.ok());
    EXPECT_NEAR(rs->loss, losses[s], 1e-4 * std::abs(losses[s])) << "loss at step " << s;
    m.ZeroGrad();
    m.Backward();
    clipped += opt.Step(s).clipped_heads;
  }
  EXPECT_GT(clipped, 0) << "the fixture's tau must make QK-Clip act";
  for (auto& p : m.params()) ASSERT_TRUE(Near(p.w, fx.Get("step3." + p.name), 1e-4, 1e-3, "step3." + p.name));
}

}  // namespace
}  // namespace k2::engine
