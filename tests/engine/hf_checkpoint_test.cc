// Hugging Face checkpoint directories: a DeepSeek-V3-shaped checkpoint in the released FP8 layout
// (3 shards + index, F8_E4M3 weights with a weight_scale_inv per 128x128 block, BF16/F32 elsewhere, an
// MTP layer to skip) loads to the exact dequantized weights and matches fp32 logits within the FP8
// rounding bound; peak RSS of the streamed load (child process, /proc VmHWM) stays under 1.3x the
// model; sharded saving round-trips; malformed directories and hostile headers give named errors.
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include "core/rng.h"
#include "engine/engine.h"
#include "tests/engine/test_util.h"

extern char** environ;

namespace k2::engine {
namespace {
namespace fs = std::filesystem;

std::string TmpDir(const std::string& name) {
  auto d = fs::temp_directory_path() / ("k2gym_hf_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d.string();
}

// A small DeepSeek-V3-shaped model (MLA with q_lora, 3 MoE layers of 16 routed experts + 1 shared,
// group-limited routing, YaRN) whose matrices straddle 128-blocks (192, 384, 112 rows/cols), with one
// multi-token-prediction layer in the files as the released checkpoints have.
json ShapedConfig() {
  return {{"architectures", {"DeepseekV3ForCausalLM"}},
          {"model_type", "deepseek_v3"},
          {"vocab_size", 512},
          {"hidden_size", 256},
          {"intermediate_size", 384},
          {"moe_intermediate_size", 192},
          {"num_hidden_layers", 4},
          {"num_nextn_predict_layers", 1},
          {"num_attention_heads", 4},
          {"num_key_value_heads", 4},
          {"n_shared_experts", 1},
          {"n_routed_experts", 16},
          {"routed_scaling_factor", 2.5},
          {"kv_lora_rank", 96},
          {"q_lora_rank", 192},
          {"qk_rope_head_dim", 16},
          {"qk_nope_head_dim", 32},
          {"v_head_dim", 32},
          {"n_group", 4},
          {"topk_group", 2},
          {"num_experts_per_tok", 4},
          {"first_k_dense_replace", 1},
          {"max_position_embeddings", 64},
          {"rope_parameters",
           {{"rope_type", "yarn"}, {"rope_theta", 10000.0}, {"factor", 4.0}, {"original_max_position_embeddings", 16},
            {"beta_fast", 32}, {"beta_slow", 1}, {"mscale", 1.0}, {"mscale_all_dim", 1.0}}},
          {"initializer_range", 0.05},
          {"torch_dtype", "bfloat16"},
          {"quantization_config",
           {{"activation_scheme", "dynamic"}, {"fmt", "e4m3"}, {"quant_method", "fp8"}, {"weight_block_size", {128, 128}}}}};
}

// The test's own FP8 E4M3 encoder (independent of the loader's decoder): the non-negative values by
// formula, nearest by binary search, ties to the even code.
struct E4m3 {
  std::vector<float> vals;  // code 0..126 (0x7f is NaN)
  E4m3() {
    for (int c = 0; c < 127; ++c) {
      const int e = c >> 3, m = c & 7;
      vals.push_back(e == 0 ? static_cast<float>(m) / 8.0f / 64.0f
                            : (1.0f + static_cast<float>(m) / 8.0f) * std::ldexp(1.0f, e - 7));
    }
  }
  uint8_t Encode(float x) const {
    const float a = std::min(std::abs(x), 448.0f);
    size_t hi = static_cast<size_t>(std::lower_bound(vals.begin(), vals.end(), a) - vals.begin());
    size_t c = hi;
    if (hi > 0 && (hi == vals.size() || a - vals[hi - 1] < vals[hi] - a ||
                   (a - vals[hi - 1] == vals[hi] - a && (hi - 1) % 2 == 0)))
      c = hi - 1;
    return static_cast<uint8_t>(c | (x < 0 ? 0x80 : 0));
  }
  float Decode(uint8_t b) const { return (b & 0x80 ? -1.0f : 1.0f) * vals[b & 0x7f]; }
};

// The released checkpoints quantize every projection of attention and the MLPs (experts, shared
// experts, dense MLP); embeddings, lm_head, norms and the router stay BF16, the correction bias F32.
bool Quantized(const std::string& name) {
  return (name.find(".self_attn.") != std::string::npos && name.find("layernorm") == std::string::npos) ||
         (name.find(".mlp.") != std::string::npos && name.find(".mlp.gate.") == std::string::npos);
}

uint16_t ToBf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
float FromBf16(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Writes `src`'s weights in the released layout: FP8 block-scaled projections, BF16 embeddings, norms
// and router, F32 correction bias, plus an MTP layer; 3 shards + index. Fills `deq` with the weights a
// correct loader must produce (per parameter).
void WriteReleasedLayout(const Model<float>& src, const std::string& dir, std::vector<std::vector<float>>* deq) {
  fs::create_directories(dir);
  const E4m3 fp8;
  json cfg = ShapedConfig();
  ASSERT_TRUE(WriteFileAtomic(dir + "/config.json", cfg.dump(2)).ok());
  std::vector<StFile> shards(3);
  json weight_map = json::object();
  auto shard_of = [&](const std::string& name) -> size_t {
    if (name.rfind("model.layers.", 0) == 0) {
      const int layer = std::atoi(name.c_str() + 13);
      return layer < 2 ? 0 : layer < 4 ? 1 : 2;
    }
    return name == "model.embed_tokens.weight" ? 0 : 2;
  };
  auto put = [&](size_t k, const std::string& name, StTensor t) {
    weight_map[name] = "model-0000" + std::to_string(k + 1) + "-of-00003.safetensors";
    shards[k].tensors.emplace(name, std::move(t));
  };
  auto fp8_tensor = [&](const std::string& name, const std::vector<int64_t>& shape, const float* w,
                        std::vector<float>* out, size_t k, size_t scale_shard) {
    const int64_t R = shape[0], C = shape[1], br = (R + 127) / 128, bc = (C + 127) / 128;
    StTensor q{"F8_E4M3", shape, std::string(static_cast<size_t>(R * C), '\0')};
    StTensor s{"F32", {br, bc}, std::string(static_cast<size_t>(br * bc * 4), '\0')};
    out->assign(static_cast<size_t>(R * C), 0.0f);
    for (int64_t bi = 0; bi < br; ++bi)
      for (int64_t bj = 0; bj < bc; ++bj) {
        float amax = 0;
        for (int64_t i = bi * 128; i < std::min(R, bi * 128 + 128); ++i)
          for (int64_t j = bj * 128; j < std::min(C, bj * 128 + 128); ++j) amax = std::max(amax, std::abs(w[i * C + j]));
        const float scale = amax > 0 ? amax / 448.0f : 1.0f;
        std::memcpy(s.bytes.data() + 4 * (bi * bc + bj), &scale, 4);
        for (int64_t i = bi * 128; i < std::min(R, bi * 128 + 128); ++i)
          for (int64_t j = bj * 128; j < std::min(C, bj * 128 + 128); ++j) {
            const uint8_t b = fp8.Encode(w[i * C + j] / scale);
            q.bytes[static_cast<size_t>(i * C + j)] = static_cast<char>(b);
            (*out)[static_cast<size_t>(i * C + j)] = fp8.Decode(b) * scale;
          }
      }
    put(k, name, std::move(q));
    put(scale_shard, name + "_scale_inv", std::move(s));
  };
  deq->clear();
  bool moved_one_scale = false;
  for (const auto& p : src.params()) {
    std::vector<float> out;
    const size_t k = shard_of(p.name);
    if (p.shape.size() == 2 && Quantized(p.name)) {
      // One scale lives in another shard than its weight (the index says where).
      const size_t sk = moved_one_scale ? k : (k + 1) % 3;
      moved_one_scale = true;
      fp8_tensor(p.name, p.shape, p.w.data(), &out, k, sk);
    } else if (!p.trainable) {
      StTensor t{"F32", p.shape, std::string(p.w.size() * 4, '\0')};
      std::memcpy(t.bytes.data(), p.w.data(), p.w.size() * 4);
      out = p.w;
      put(k, p.name, std::move(t));
    } else {
      StTensor t{"BF16", p.shape, std::string(p.w.size() * 2, '\0')};
      for (size_t i = 0; i < p.w.size(); ++i) {
        const uint16_t h = ToBf16(p.w[i]);
        std::memcpy(t.bytes.data() + 2 * i, &h, 2);
        out.push_back(FromBf16(h));
      }
      put(k, p.name, std::move(t));
    }
    deq->push_back(std::move(out));
  }
  // The MTP layer (layer 4 = num_hidden_layers): an FP8 projection with its scale and a norm.
  std::vector<float> mtp(256 * 512, 0.01f), unused;
  fp8_tensor("model.layers.4.eh_proj.weight", {256, 512}, mtp.data(), &unused, 2, 2);
  put(2, "model.layers.4.enorm.weight", StTensor{"BF16", {256}, std::string(512, '\0')});
  for (size_t k = 0; k < 3; ++k) {
    shards[k].metadata["format"] = "pt";
    ASSERT_TRUE(WriteSafetensors(dir + "/model-0000" + std::to_string(k + 1) + "-of-00003.safetensors", shards[k]).ok());
  }
  json idx = {{"metadata", {{"total_size", 0}}}, {"weight_map", weight_map}};
  ASSERT_TRUE(WriteFileAtomic(dir + "/model.safetensors.index.json", idx.dump(1)).ok());
}

std::unique_ptr<Model<float>> MakeModel(uint64_t seed) {
  auto c = ModelConfigFromJson(ShapedConfig(), "shaped");
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  auto m = Model<float>::Create(*c, seed);
  EXPECT_TRUE(m.ok());
  // Non-trivial norms and correction bias, so a wrong or skipped load of them shows in the logits.
  Rng rng(seed + 100);
  for (auto& p : (*m)->params())
    if (p.shape.size() == 1)
      for (auto& x : p.w) x = static_cast<float>(p.trainable ? 1.0 + 0.2 * rng.Normal() : 0.1 * rng.Normal());
  return std::move(*m);
}

std::vector<float> Logits(Model<float>* m) {
  Rng rng(42);
  Batch b = testing::RandomBatch(rng, 2, 16, m->config().vocab_size);
  auto r = m->Forward(b);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return m->logits();
}

const E4m3& Fp8() {
  static const E4m3 e;
  return e;
}

TEST(Fp8E4m3, DecodesEveryCodeAsTheFormatDefines) {
  EXPECT_EQ(Fp8E4m3ToFloat(0x38), 1.0f);
  EXPECT_EQ(Fp8E4m3ToFloat(0x7e), 448.0f);
  EXPECT_EQ(Fp8E4m3ToFloat(0xfe), -448.0f);
  EXPECT_EQ(Fp8E4m3ToFloat(0x01), std::ldexp(1.0f, -9));
  EXPECT_EQ(Fp8E4m3ToFloat(0x08), std::ldexp(1.0f, -6));
  EXPECT_TRUE(std::isnan(Fp8E4m3ToFloat(0x7f)));
  EXPECT_TRUE(std::isnan(Fp8E4m3ToFloat(0xff)));
  EXPECT_TRUE(std::signbit(Fp8E4m3ToFloat(0x80)));
  for (int b = 0; b < 256; ++b) {
    if ((b & 0x7f) == 0x7f) continue;
    EXPECT_EQ(Fp8E4m3Table()[b], Fp8().Decode(static_cast<uint8_t>(b))) << b;
    EXPECT_EQ(Fp8().Encode(Fp8E4m3ToFloat(static_cast<uint8_t>(b))) & (b == 0x80 ? 0x7f : 0xff), b == 0x80 ? 0 : b);
  }
}

class ReleasedLayout : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(TmpDir("released"));
    src_ = MakeModel(3).release();
    deq_ = new std::vector<std::vector<float>>();
    WriteReleasedLayout(*src_, *dir_, deq_);
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete src_;
    delete deq_;
    delete dir_;
  }
  static std::string* dir_;
  static Model<float>* src_;
  static std::vector<std::vector<float>>* deq_;
};
std::string* ReleasedLayout::dir_ = nullptr;
Model<float>* ReleasedLayout::src_ = nullptr;
std::vector<std::vector<float>>* ReleasedLayout::deq_ = nullptr;

TEST_F(ReleasedLayout, LoadsTheExactDequantizedWeightsAndSkipsTheMtpLayer) {
  auto hc = ReadHfCheckpointConfig(*dir_);
  ASSERT_TRUE(hc.ok()) << hc.status().ToString();
  ASSERT_TRUE(hc->quantization.has_value());
  auto m = Model<float>::Create(hc->config, 99);
  ASSERT_TRUE(m.ok());
  HfLoadStats st;
  Status s = LoadHfWeights(*dir_, hc->quantization, m->get(), &st);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(st.shards, 3);
  EXPECT_EQ(st.tensors, static_cast<int64_t>((*m)->params().size()));
  EXPECT_EQ(st.fp8_tensors, 4 * 5 + 3 + 3 * 17 * 3);
  EXPECT_EQ(st.skipped, 3);  // eh_proj, its scale and enorm of the MTP layer
  for (size_t i = 0; i < (*m)->params().size(); ++i) ASSERT_EQ((*m)->params()[i].w, (*deq_)[i]) << (*m)->params()[i].name;
  // The FP8 rounding bound per weight: half a step of 3 mantissa bits (2^-4 relative) for normal
  // values, half the subnormal step (2^-10 x block scale) below them.
  const auto& ps = src_->params();
  for (size_t i = 0; i < ps.size(); ++i) {
    if (!(ps[i].shape.size() == 2 && Quantized(ps[i].name))) continue;
    float amax = 0;
    for (float x : ps[i].w) amax = std::max(amax, std::abs(x));
    for (size_t k = 0; k < ps[i].w.size(); ++k) {
      const float w = ps[i].w[k], d = (*deq_)[i][k];
      ASSERT_LE(std::abs(w - d), std::max(std::abs(w) / 16.0f, amax / 448.0f / 1024.0f) * 1.0001f) << ps[i].name << k;
    }
  }
  // Model::LoadSafetensors on the directory does the same.
  auto m2 = Model<float>::Create(hc->config, 98);
  ASSERT_TRUE((*m2)->LoadSafetensors(*dir_).ok());
  EXPECT_EQ(Logits(m2->get()), Logits(m->get()));
}

TEST_F(ReleasedLayout, LogitsEqualThoseOfTheSameWeightsFromFp32) {
  auto hc = ReadHfCheckpointConfig(*dir_);
  ASSERT_TRUE(hc.ok());
  auto fp8 = Model<float>::Create(hc->config, 1);
  ASSERT_TRUE(LoadHfWeights(*dir_, hc->quantization, fp8->get()).ok());
  // The same (dequantized) weights written as an fp32 checkpoint: identical logits.
  auto ref = MakeModel(77);
  for (size_t i = 0; i < ref->params().size(); ++i) ref->params()[i].w = (*deq_)[i];
  const std::string f32dir = TmpDir("f32");
  ASSERT_TRUE(SaveHfCheckpoint(*ref, f32dir, "F32", 20 << 20).ok());
  auto f32 = Model<float>::Create(hc->config, 2);
  ASSERT_TRUE((*f32)->LoadSafetensors(f32dir).ok());
  EXPECT_EQ(Logits(fp8->get()), Logits(f32->get()));
  fs::remove_all(f32dir);
}

TEST(HfCheckpoint, LogitsMatchFp32WithinTheFp8RoundingBound) {
  // Against the original fp32 weights the logits move by the rounding of the weights. With MoE layers
  // a rounding can flip an expert choice (a discrete jump), so this comparison uses the dense variant
  // of the same shape (DeepSeek-V3's first layers are dense). To first order the logit error scales
  // with the unit roundoff: FP8 E4M3 (2^-4) is 32x BF16's (2^-9); the BF16 checkpoint of the same
  // weights, measured in the same run, calibrates the constant.
  json cfg = ShapedConfig();
  cfg["num_hidden_layers"] = 2;
  cfg["first_k_dense_replace"] = 2;
  cfg["num_nextn_predict_layers"] = 0;
  auto mc = ModelConfigFromJson(cfg, "dense");
  ASSERT_TRUE(mc.ok()) << mc.status().ToString();
  auto src = Model<float>::Create(*mc, 31);
  ASSERT_TRUE(src.ok());
  Rng rng(32);
  for (auto& p : (*src)->params())
    if (p.shape.size() == 1) for (auto& x : p.w) x = static_cast<float>(1.0 + 0.2 * rng.Normal());
  const std::string d8 = TmpDir("dense8"), d16 = TmpDir("dense16");
  std::vector<std::vector<float>> deq;
  WriteReleasedLayout(**src, d8, &deq);
  json c8 = *ReadJsonFile(d8 + "/config.json");
  c8["num_hidden_layers"] = 2;
  c8["first_k_dense_replace"] = 2;
  c8["num_nextn_predict_layers"] = 0;
  ASSERT_TRUE(WriteFileAtomic(d8 + "/config.json", c8.dump()).ok());
  ASSERT_TRUE(SaveHfCheckpoint(**src, d16, "BF16").ok());
  auto load = [&](const std::string& d) {
    auto hc = ReadHfCheckpointConfig(d);
    EXPECT_TRUE(hc.ok()) << hc.status().ToString();
    auto m = Model<float>::Create(hc->config, 0);
    HfLoadStats st;
    Status s = LoadHfWeights(d, hc->quantization, m->get(), &st);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return Logits(m->get());
  };
  const std::vector<float> orig = Logits(src->get()), l8 = load(d8), l16 = load(d16);
  auto rel = [&](const std::vector<float>& x) {
    double num = 0, den = 0;
    for (size_t i = 0; i < x.size(); ++i) num += (x[i] - orig[i]) * (x[i] - orig[i]), den += orig[i] * orig[i];
    return std::sqrt(num / den);
  };
  const double e8 = rel(l8), e16 = rel(l16);
  std::printf("relative RMS logit error vs fp32: fp8 %.4g, bf16 %.4g (ratio %.1f; unit roundoffs 32x)\n", e8, e16,
              e8 / e16);
  EXPECT_GT(e16, 0.0);
  EXPECT_LT(e16, 0.03);        // the network amplifies bf16's 2^-9 per weight a few times
  EXPECT_GT(e8, e16);          // FP8 rounds coarser ...
  EXPECT_LT(e8, 32 * e16);     // ... but no worse than its unit roundoff predicts (measured ~12x)
  fs::remove_all(d8);
  fs::remove_all(d16);
}

TEST_F(ReleasedLayout, ModelInfoSummaryNamesTensorClassesAndDtypes) {
  auto s = SummarizeHfCheckpoint(*dir_, 4);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->shards, 3);
  EXPECT_EQ(s->classes.at("routed_experts").dtypes.at("F8_E4M3"), 3 * 16 * 3);
  EXPECT_EQ(s->classes.at("embedding").dtypes.at("BF16"), 1);
  EXPECT_EQ(s->classes.at("router_bias").dtypes.at("F32"), 3);
  EXPECT_EQ(s->classes.at("mtp").tensors, 3);
  EXPECT_EQ(s->classes.at("fp8_scales").dtypes.at("F32"), s->classes.at("fp8_scales").tensors);
}

// Runs this binary's DISABLED child test in a fresh process; returns its report (JSON).
json RunChild(const std::string& mode, const std::string& dir) {
  const std::string out = dir + "/rss_" + mode + ".json";
  std::string exe = fs::read_symlink("/proc/self/exe").string();
  std::string filter = "--gtest_filter=HfCheckpointChild.DISABLED_LoadAndReportPeakRss";
  std::vector<std::string> env_s = {"K2_HF_RSS_DIR=" + dir, "K2_HF_RSS_MODE=" + mode, "K2_HF_RSS_OUT=" + out,
                                    "OMP_NUM_THREADS=1", "OPENBLAS_NUM_THREADS=1"};
  std::vector<char*> argv = {exe.data(), filter.data(), const_cast<char*>("--gtest_also_run_disabled_tests"), nullptr};
  std::vector<char*> envp;
  for (auto& e : env_s) envp.push_back(e.data());
  for (char** e = environ; *e != nullptr; ++e)
    if (std::strncmp(*e, "K2_HF_RSS_", 10) != 0 && std::strncmp(*e, "OMP_NUM_THREADS=", 16) != 0 &&
        std::strncmp(*e, "OPENBLAS_NUM_THREADS=", 21) != 0)
      envp.push_back(*e);
  envp.push_back(nullptr);
  pid_t pid;
  EXPECT_EQ(posix_spawn(&pid, exe.c_str(), nullptr, nullptr, argv.data(), envp.data()), 0);
  int status = 0;
  EXPECT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
  auto j = ReadJsonFile(out);
  EXPECT_TRUE(j.ok()) << j.status().ToString();
  return j.ok() ? *j : json::object();
}

int64_t ProcStatusKb(const char* key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind(key, 0) == 0) return std::atoll(line.c_str() + std::strlen(key));
  return -1;
}

TEST(HfCheckpointChild, DISABLED_LoadAndReportPeakRss) {
  const char* dir = std::getenv("K2_HF_RSS_DIR");
  if (dir == nullptr) GTEST_SKIP() << "run by HfCheckpoint.PeakRss... in a child process";
  const std::string mode = std::getenv("K2_HF_RSS_MODE");
  json report;
  report["rss_start_kb"] = ProcStatusKb("VmRSS:");
  auto hc = ReadHfCheckpointConfig(dir);
  ASSERT_TRUE(hc.ok()) << hc.status().ToString();
  auto m = Model<float>::Create(hc->config, 5);
  ASSERT_TRUE(m.ok());
  int64_t wbytes = 0, gbytes = 0, largest = 0;
  for (auto& p : (*m)->params()) {
    wbytes += static_cast<int64_t>(p.w.size() * 4), gbytes += static_cast<int64_t>(p.g.size() * 4);
    largest = std::max<int64_t>(largest, static_cast<int64_t>(p.w.size() * 4));
  }
  report["rss_model_kb"] = ProcStatusKb("VmRSS:");
  // Reset the high-water mark so VmHWM is the peak of the load alone (Linux >= 4.0).
  { std::ofstream("/proc/self/clear_refs") << "5"; }
  report["hwm_reset_kb"] = ProcStatusKb("VmHWM:");
  if (mode == "stream") {
    Status s = LoadHfWeights(dir, hc->quantization, m->get());
    ASSERT_TRUE(s.ok()) << s.ToString();
  } else {
    // The whole-file path for comparison: every shard read into memory, converted through doubles.
    for (const auto& e : fs::directory_iterator(dir)) {
      if (e.path().extension() != ".safetensors") continue;
      auto f = ReadSafetensors(e.path().string());
      ASSERT_TRUE(f.ok());
      for (auto& [name, t] : f->tensors) {
        Param<float>* p = (*m)->Find(name);
        if (p == nullptr) continue;
        auto v = StToDouble(t, name);
        ASSERT_TRUE(v.ok());
        for (size_t i = 0; i < v->size(); ++i) p->w[i] = static_cast<float>((*v)[i]);
      }
    }
  }
  report["hwm_kb"] = ProcStatusKb("VmHWM:");
  report["weights_bytes"] = wbytes;
  report["grads_bytes"] = gbytes;
  report["largest_tensor_bytes"] = largest;
  ASSERT_TRUE(WriteFileAtomic(std::getenv("K2_HF_RSS_OUT"), report.dump()).ok());
}

TEST(HfCheckpoint, PeakRssOfAStreamedLoadStaysUnderModelPlusOneTensor) {
  // A larger variant of the shaped model (about 20M parameters: 5 layers, 32 experts) so the model
  // dwarfs the process's own footprint, saved as BF16 shards of at most 24 MB.
  const std::string dir = TmpDir("rss");
  json cfg = ShapedConfig();
  cfg.erase("quantization_config");
  cfg["num_hidden_layers"] = 5;
  cfg["n_routed_experts"] = 32;
  cfg["num_nextn_predict_layers"] = 0;
  auto mc = ModelConfigFromJson(cfg, "rss");
  ASSERT_TRUE(mc.ok()) << mc.status().ToString();
  {
    auto m = Model<float>::Create(*mc, 11);
    ASSERT_TRUE(m.ok());
    // BF16 shards of ~1/3 of the model each (the streamed load must not hold a shard).
    ASSERT_TRUE(SaveHfCheckpoint(**m, dir, "BF16", 24 << 20).ok());
  }
  ASSERT_TRUE(fs::exists(dir + "/model.safetensors.index.json"));
  json stream = RunChild("stream", dir);
  json whole = RunChild("whole", dir);
  const double model_kb = (stream["weights_bytes"].get<double>() + stream["grads_bytes"].get<double>()) / 1024.0;
  const double w_kb = stream["weights_bytes"].get<double>() / 1024.0;
  const double start = stream["rss_start_kb"].get<double>();
  const double peak = stream["hwm_kb"].get<double>();
  const double extra = peak - stream["rss_model_kb"].get<double>();
  const double whole_extra = whole["hwm_kb"].get<double>() - whole["rss_model_kb"].get<double>();
  std::printf("model %.1f MB (weights %.1f MB + grads), process before %.1f MB, peak during load %.1f MB; extra over "
              "the resident model: streamed %.1f MB (largest tensor %.1f MB), whole-file %.1f MB\n",
              model_kb / 1024, w_kb / 1024, start / 1024, peak / 1024, extra / 1024,
              stream["largest_tensor_bytes"].get<double>() / 1048576.0, whole_extra / 1024);
  EXPECT_LT(peak - start, 1.3 * model_kb);
  // The load itself adds about one tensor, far from a second copy of the weights.
  EXPECT_LT(extra, 0.1 * w_kb);
  EXPECT_GT(whole_extra, 0.3 * w_kb);  // the measure sees a whole-shard load
  fs::remove_all(dir);
}

TEST(HfCheckpoint, ShardedSaveRoundTripsExactlyWithAnIndex) {
  const std::string dir = TmpDir("save");
  auto a = MakeModel(21);
  ASSERT_TRUE(SaveHfCheckpoint(*a, dir, "F32", 2 << 20).ok());
  auto idx = ReadJsonFile(dir + "/model.safetensors.index.json");
  ASSERT_TRUE(idx.ok());
  EXPECT_EQ((*idx)["weight_map"].size(), a->params().size());
  int shards = 0;
  for (const auto& e : fs::directory_iterator(dir)) shards += e.path().extension() == ".safetensors";
  EXPECT_GT(shards, 3);
  auto hc = ReadHfCheckpointConfig(dir);
  ASSERT_TRUE(hc.ok()) << hc.status().ToString();
  EXPECT_TRUE(hc->defaults_taken.empty());
  EXPECT_EQ(ModelConfigToJson(hc->config), ModelConfigToJson(a->config()));
  auto b = Model<float>::Create(hc->config, 1);
  ASSERT_TRUE((*b)->LoadSafetensors(dir).ok());
  for (size_t i = 0; i < a->params().size(); ++i) ASSERT_EQ(a->params()[i].w, (*b)->params()[i].w);
  // Saving again as one file removes the index (it would shadow model.safetensors).
  ASSERT_TRUE(SaveHfCheckpoint(*a, dir, "F32").ok());
  EXPECT_FALSE(fs::exists(dir + "/model.safetensors.index.json"));
  ASSERT_TRUE((*b)->LoadSafetensors(dir).ok());
  fs::remove_all(dir);
}

TEST_F(ReleasedLayout, BrokenDirectoriesGiveNamedErrors) {
  auto hc = ReadHfCheckpointConfig(*dir_);
  ASSERT_TRUE(hc.ok());
  auto m = Model<float>::Create(hc->config, 1);
  auto copy = [&](const std::string& name) {
    const std::string d = TmpDir(name);
    for (const auto& e : fs::directory_iterator(*dir_)) fs::copy_file(e.path(), d + "/" + e.path().filename().string());
    return d;
  };
  auto edit_index = [&](const std::string& d, const std::function<void(json&)>& f) {
    json idx = *ReadJsonFile(d + "/model.safetensors.index.json");
    f(idx);
    ASSERT_TRUE(WriteFileAtomic(d + "/model.safetensors.index.json", idx.dump()).ok());
  };
  const std::string w = "model.layers.1.self_attn.o_proj.weight";
  {
    const std::string d = copy("wrongshard");
    edit_index(d, [&](json& j) { j["weight_map"][w] = "model-00003-of-00003.safetensors"; });
    Status s = LoadHfWeights(d, hc->quantization, m->get());
    EXPECT_NE(s.ToString().find("tensor \"" + w + "\" is not in " + d + "/model-00003-of-00003.safetensors"),
              std::string::npos)
        << s.ToString();
    fs::remove_all(d);
  }
  {
    const std::string d = copy("noscale");
    edit_index(d, [&](json& j) { j["weight_map"].erase(w + "_scale_inv"); });
    Status s = LoadHfWeights(d, hc->quantization, m->get());
    EXPECT_NE(s.ToString().find("FP8 tensor \"" + w + "\" has no \"" + w + "_scale_inv\""), std::string::npos)
        << s.ToString();
    fs::remove_all(d);
  }
  {
    Status s = LoadHfWeights(*dir_, std::nullopt, m->get());
    EXPECT_NE(s.ToString().find("is F8_E4M3 but config.json has no quantization_config"), std::string::npos) << s.ToString();
    Fp8Quantization q;
    q.block_rows = 64;
    s = LoadHfWeights(*dir_, q, m->get());
    EXPECT_NE(s.ToString().find("_scale_inv\": shape [2, 2], blocks of 64x128 over [192, 256] need [3, 2]"), std::string::npos) << s.ToString();
  }
  {
    const std::string d = copy("escape");
    edit_index(d, [&](json& j) { j["weight_map"][w] = "../x.safetensors"; });
    Status s = LoadHfWeights(d, hc->quantization, m->get());
    EXPECT_NE(s.ToString().find("expected a file name in the directory"), std::string::npos) << s.ToString();
    fs::remove_all(d);
  }
  // A model of another shape: the first mismatching tensor is named.
  json other = ShapedConfig();
  other["hidden_size"] = 128;
  auto oc = ModelConfigFromJson(other, "other");
  auto om = Model<float>::Create(*oc, 1);
  Status s = LoadHfWeights(*dir_, hc->quantization, om->get());
  EXPECT_NE(s.ToString().find("tensor \"model.embed_tokens.weight\": shape [512, 256], the config needs [512, 128]"),
            std::string::npos)
      << s.ToString();
  EXPECT_NE(LoadHfWeights(TmpDir("empty"), std::nullopt, m->get()).ToString().find("no model.safetensors.index.json"),
            std::string::npos);
}

TEST(HfCheckpoint, HostileSafetensorsHeadersAreNamedErrors) {
  // ../shared/data/hostile_inputs: shapes whose element or byte count overflows 64 bits.
  const std::string base = std::string(K2GYM_SOURCE_DIR) + "/../shared/data/hostile_inputs/";
  for (const char* f : {"st_bytes_overflow", "st_numel_overflow", "st_shape_u64"}) {
    if (!fs::exists(base + f)) GTEST_SKIP() << "no " << base << f;
    auto a = ReadSafetensors(base + f);
    auto b = ReadSafetensorsHeader(base + f);
    ASSERT_FALSE(a.ok()) << f;
    ASSERT_FALSE(b.ok()) << f;
    EXPECT_NE(a.status().ToString().find(std::string(f) + ": tensor \"a\": shape"), std::string::npos)
        << a.status().ToString();
    EXPECT_EQ(a.status().ToString(), b.status().ToString());
  }
}

}  // namespace
}  // namespace k2::engine
