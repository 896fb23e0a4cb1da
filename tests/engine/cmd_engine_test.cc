// The engine commands as a user runs them: model info (Kimi-K2 counts, --json), corpus gen, pretrain
// with metrics, checkpoint and --resume, model grad (through tools/hf_parity.py), one-line errors.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/json.h"

namespace k2 {
namespace {

struct Result {
  int code;
  std::string out, err;
};

class EngineCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("k2gym_engcli_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  Result Run(const std::string& args) { return Shell(std::string(K2GYM_BINARY_DIR) + "/apps/k2gym " + args); }
  // Any command line, run in the test's directory.
  Result Shell(const std::string& cmdline) {
    std::string out = (dir_ / "out").string(), err = (dir_ / "err").string();
    std::string cmd = "cd " + dir_.string() + " && " + cmdline + " >" + out + " 2>" + err;
    int st = std::system(cmd.c_str());
    return Result{WIFEXITED(st) ? WEXITSTATUS(st) : -1, *ReadFile(out), *ReadFile(err)};
  }
  std::filesystem::path dir_;
};

const std::string kModels = std::string(K2GYM_SOURCE_DIR) + "/configs/models/";

TEST_F(EngineCli, ModelInfoCountsKimiK2) {
  Result r = Run("model info --model " + kModels + "kimi-k2.json --json");
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = ParseJson(r.out, "stdout");
  ASSERT_TRUE(j.ok()) << r.out;
  EXPECT_NEAR((*j)["total_params"].get<double>() / 1e12, 1.03, 0.015);
  EXPECT_NEAR((*j)["activated_params"].get<double>() / 1e9, 32.6, 0.5);
  EXPECT_GT((*j)["flops_per_token_forward"].get<double>(), 2 * 30e9);
  Result t = Run("model info --model " + kModels + "small.json");
  ASSERT_EQ(t.code, 0) << t.err;
  EXPECT_NE(t.out.find("total parameters"), std::string::npos) << t.out;
}

TEST_F(EngineCli, ModelInfoOfACheckpointDirectoryNamesDefaultsDtypesAndMemory) {
  // config.json without routed_scaling_factor and n_group (DeepseekV3Config: 2.5 and 8 -> 8 groups of 1
  // expert would be invalid, so n_group stays), an FP8 quantization_config, and one safetensors file with
  // an FP8 expert weight, its block scale and a BF16 embedding.
  auto cfg = ReadJsonFile(kModels + "tiny.json");
  ASSERT_TRUE(cfg.ok());
  cfg->erase("routed_scaling_factor");
  (*cfg)["quantization_config"] = {{"quant_method", "fp8"}, {"fmt", "e4m3"}, {"weight_block_size", {128, 128}}};
  std::filesystem::create_directories(dir_ / "ckpt");
  ASSERT_TRUE(WriteFileAtomic((dir_ / "ckpt/config.json").string(), cfg->dump()).ok());
  json h = {{"model.layers.1.mlp.experts.0.up_proj.weight", {{"dtype", "F8_E4M3"}, {"shape", {24, 48}}, {"data_offsets", {0, 1152}}}},
            {"model.layers.1.mlp.experts.0.up_proj.weight_scale_inv", {{"dtype", "F32"}, {"shape", {1, 1}}, {"data_offsets", {1152, 1156}}}},
            {"model.embed_tokens.weight", {{"dtype", "BF16"}, {"shape", {128, 48}}, {"data_offsets", {1156, 1156 + 128 * 48 * 2}}}}};
  std::string hs = h.dump();
  uint64_t n = hs.size();
  std::string file(reinterpret_cast<const char*>(&n), 8);
  file += hs + std::string(1156 + 128 * 48 * 2, '\0');
  ASSERT_TRUE(WriteFileAtomic((dir_ / "ckpt/model.safetensors").string(), file).ok());
  Result r = Run("--json model info --ckpt ckpt");
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = ParseJson(r.out, "stdout");
  ASSERT_TRUE(j.ok()) << r.out;
  EXPECT_EQ((*j)["defaults_taken"], json::array({"routed_scaling_factor=2.5"}));
  const json& c = (*j)["checkpoint"];
  EXPECT_EQ(c["shards"], 1);
  EXPECT_EQ(c["quantization"]["weight_block_size"], json::array({128, 128}));
  EXPECT_EQ(c["tensor_classes"]["routed_experts"]["dtypes"]["F8_E4M3"], 1);
  EXPECT_EQ(c["tensor_classes"]["fp8_scales"]["dtypes"]["F32"], 1);
  EXPECT_EQ(c["tensor_classes"]["embedding"]["dtypes"]["BF16"], 1);
  const double P = (*j)["total_params"].get<double>();
  EXPECT_EQ((*j)["memory"]["device_bf16"]["weights_bytes"].get<double>(), 2 * P);
  EXPECT_EQ((*j)["memory"]["cpu_fp32"]["weights_bytes"].get<double>(), 4 * P);
  EXPECT_GT((*j)["memory"]["cpu_fp32"]["training_bytes"].get<double>(), 12 * P);
  Result t = Run("model info --ckpt ckpt");
  ASSERT_EQ(t.code, 0) << t.err;
  EXPECT_NE(t.out.find("absent fields took DeepseekV3Config defaults: routed_scaling_factor=2.5"), std::string::npos)
      << t.out;
  EXPECT_NE(t.out.find("F8_E4M3 x1"), std::string::npos) << t.out;
  Result bad = Run("model info --ckpt nowhere");
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.err.find("--ckpt: Directory does not exist: nowhere"), std::string::npos) << bad.err;
}

TEST_F(EngineCli, BadModelConfigIsAOneLineUsageError) {
  std::ofstream(dir_ / "bad.json") << R"({"hidden_size": "wide"})";
  Result r = Run("model info --model bad.json");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("bad.json: hidden_size: expected integer"), std::string::npos) << r.err;
  Result m = Run("model info --model missing.json");
  EXPECT_NE(m.code, 0);
  EXPECT_NE(m.err.find("missing.json"), std::string::npos) << m.err;
}

TEST_F(EngineCli, PretrainWritesMetricsCheckpointAndResumes) {
  // tiny with a byte vocabulary, 3 steps, then --resume to 5.
  auto cfg = ReadJsonFile(kModels + "tiny.json");
  ASSERT_TRUE(cfg.ok());
  (*cfg)["vocab_size"] = 256;
  std::ofstream(dir_ / "m.json") << cfg->dump();
  ASSERT_EQ(Run("corpus gen --out corpus.txt --bytes 20000 --seed 3").code, 0);
  const std::string common = "pretrain --model m.json --data corpus.txt --out run --set pretrain.batch_size=2 "
                             "--set pretrain.seq_len=16 --db k.db --json";
  Result r = Run(common + " --steps 3");
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = ParseJson(r.out, "stdout");
  ASSERT_TRUE(j.ok()) << r.out;
  EXPECT_EQ((*j)["steps_taken"], 3);
  EXPECT_TRUE(std::filesystem::exists(dir_ / "run/checkpoint/model.safetensors"));
  EXPECT_TRUE(std::filesystem::exists(dir_ / "run/checkpoint/config.json"));
  auto csv = ReadFile((dir_ / "run/metrics.csv").string());
  ASSERT_TRUE(csv.ok());
  EXPECT_NE(csv->find(",loss,"), std::string::npos);
  EXPECT_NE(csv->find(",max_logit/l0h0,"), std::string::npos);
  Result r2 = Run(common + " --steps 5 --resume");
  ASSERT_EQ(r2.code, 0) << r2.err;
  auto j2 = ParseJson(r2.out, "stdout");
  ASSERT_TRUE(j2.ok());
  EXPECT_EQ((*j2)["steps_taken"], 2);
  Result bad = Run("pretrain --model m.json --data nope.txt --steps 1 --db k.db");
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.err.find("nope.txt"), std::string::npos) << bad.err;
}

// `model grad` is the k2gym side of tools/hf_parity.py. Here the script runs against the repository's
// independent PyTorch model (--reference golden; transformers is not installed on the build machine):
// the same files, command and comparison as the transformers run, on random norms and router biases.
TEST_F(EngineCli, ModelGradMatchesTheIndependentTorchModelThroughHfParity) {
  if (std::system("/usr/bin/python3 -c 'import torch, numpy' >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "/usr/bin/python3 lacks torch/numpy (python3-torch)";
  const std::string script = std::string(K2GYM_SOURCE_DIR) + "/tools/hf_parity.py";
  Result r = Shell("/usr/bin/python3 " + script + " --reference golden --k2gym " + std::string(K2GYM_BINARY_DIR) +
                   "/apps/k2gym --batch 2 --seq 12 --seed 5");
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("PARITY OK (golden"), std::string::npos) << r.out << r.err;
  EXPECT_NE(r.out.find("grad.model.layers.1.mlp.gate.weight"), std::string::npos) << "router gradient compared";
}

TEST_F(EngineCli, ModelGradRejectsBadTokenFiles) {
  std::ofstream(dir_ / "t.json") << "[[1, 2, 3], [4, 5]]";
  Result r = Run("model grad --model " + kModels + "tiny.json --weights " + std::string(K2GYM_SOURCE_DIR) +
                 "/tests/golden/tiny_model.safetensors --tokens t.json --out g.safetensors");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("t.json: row 1: expected 3 tokens"), std::string::npos) << r.err;
  std::ofstream(dir_ / "t.json") << "[[1, 2, 300000]]";
  r = Run("model grad --model " + kModels + "tiny.json --weights " + std::string(K2GYM_SOURCE_DIR) +
          "/tests/golden/tiny_model.safetensors --tokens t.json --out g.safetensors");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("= 300000 outside [0, vocab_size"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace k2
