// The engine commands as a user runs them: model info (Kimi-K2 counts, --json), corpus gen, pretrain
// with metrics, checkpoint and --resume, and one-line errors for bad model configs.
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
  Result Run(const std::string& args) {
    std::string out = (dir_ / "out").string(), err = (dir_ / "err").string();
    std::string cmd = "cd " + dir_.string() + " && " + std::string(K2GYM_BINARY_DIR) + "/apps/k2gym " + args + " >" +
                      out + " 2>" + err;
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

}  // namespace
}  // namespace k2
