// Pretraining: bit-exact resume from a checkpoint (the interrupted run's losses equal the uninterrupted
// run's), and `small` learning the generated corpus by a stated margin.
#include "engine/pretrain.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "engine/data.h"
#include "tests/engine/test_util.h"

namespace k2::engine {
namespace {

std::string TmpDir(const std::string& name) {
  auto d = std::filesystem::temp_directory_path() / ("k2gym_pt_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d.string();
}

std::vector<double> Train(const ModelConfig& mc, PretrainConfig pc, const std::string& corpus, const std::string& ckpt,
                          bool resume) {
  auto m = Model<float>::Create(mc, 7);
  EXPECT_TRUE(m.ok());
  std::vector<double> losses;
  PretrainRun run{corpus, ckpt, resume, 7, [&](const PretrainStep& s) { losses.push_back(s.fwd.loss); }};
  auto r = Pretrain(m->get(), pc, run);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return losses;
}

TEST(Pretrain, ResumeIsBitExact) {
  const std::string dir = TmpDir("resume");
  const std::string corpus = dir + "/corpus.txt";
  ASSERT_TRUE(WriteFileAtomic(corpus, GenerateCorpus(1, 20000)).ok());
  ModelConfig mc = testing::TinyConfig();
  mc.vocab_size = 256;
  PretrainConfig pc;
  pc.batch_size = 2;
  pc.seq_len = 16;
  pc.steps = 6;
  pc.checkpoint_every = 0;
  pc.aux_loss_alpha = 0.01;
  pc.optimizer.lr = 0.01;
  pc.optimizer.qk_clip_tau = 1.0;  // low enough that QK-Clip acts during the run
  pc.optimizer.warmup_steps = 2;
  pc.optimizer.total_steps = 6;
  auto full = Train(mc, pc, corpus, dir + "/full", false);
  pc.steps = 3;
  auto first = Train(mc, pc, corpus, dir + "/split", false);
  ASSERT_TRUE(std::filesystem::exists(dir + "/split/trainer_state.json"));
  pc.steps = 6;
  auto second = Train(mc, pc, corpus, dir + "/split", true);
  ASSERT_EQ(full.size(), 6u);
  ASSERT_EQ(first.size() + second.size(), 6u);
  first.insert(first.end(), second.begin(), second.end());
  for (size_t i = 0; i < 6; ++i) EXPECT_EQ(full[i], first[i]) << "step " << i;  // bitwise equal
  // The resumed model equals the uninterrupted one bit for bit.
  auto a = ReadSafetensors(dir + "/full/model.safetensors");
  auto b = ReadSafetensors(dir + "/split/model.safetensors");
  ASSERT_TRUE(a.ok() && b.ok());
  for (auto& [name, t] : a->tensors) EXPECT_EQ(t.bytes, b->tensors.at(name).bytes) << name;
}

TEST(Pretrain, ResumeRejectsAnotherModelConfig) {
  const std::string dir = TmpDir("mismatch");
  const std::string corpus = dir + "/corpus.txt";
  ASSERT_TRUE(WriteFileAtomic(corpus, GenerateCorpus(2, 5000)).ok());
  ModelConfig mc = testing::TinyConfig();
  mc.vocab_size = 256;
  PretrainConfig pc;
  pc.batch_size = 1;
  pc.seq_len = 8;
  pc.steps = 1;
  Train(mc, pc, corpus, dir + "/ck", false);
  mc.hidden_size = 32;
  auto m = Model<float>::Create(mc, 1);
  PretrainRun run{corpus, dir + "/ck", true, 1, nullptr};
  pc.steps = 2;
  auto r = Pretrain(m->get(), pc, run);
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.status().ToString().find("config.json"), std::string::npos) << r.status().ToString();
}

// Acceptance: `small` on the generated corpus goes from ln(256) = 5.55 nats/byte at step 0 to below 2.5
// and at least 2 nats/byte lower (mean of steps 20-24) within 25 steps of 4 x 64 bytes (measured: 5.59
// -> 1.97). (Muon's Newton–Schulz
// dominates the step cost at this batch size, which is why the test keeps to 25 steps.)
TEST(Pretrain, SmallLearnsTheGeneratedCorpus) {
  const std::string dir = TmpDir("small");
  const std::string corpus = dir + "/corpus.txt";
  ASSERT_TRUE(WriteFileAtomic(corpus, GenerateCorpus(3, 200000)).ok());
  auto mc = LoadModelConfig(std::string(K2GYM_SOURCE_DIR) + "/configs/models/small.json");
  ASSERT_TRUE(mc.ok());
  PretrainConfig pc;
  pc.batch_size = 4;
  pc.seq_len = 64;
  pc.steps = 25;
  pc.checkpoint_every = 0;
  pc.optimizer.lr = 0.01;
  pc.optimizer.warmup_steps = 5;
  pc.optimizer.total_steps = 25;
  auto losses = Train(*mc, pc, corpus, "", false);
  ASSERT_EQ(losses.size(), 25u);
  double last = 0;
  for (int i = 20; i < 25; ++i) last += losses[i] / 5;
  if (std::getenv("K2_PRINT_LOSS"))
    for (size_t i = 0; i < losses.size(); ++i) std::fprintf(stderr, "step %zu loss %.4f\n", i, losses[i]);
  EXPECT_GT(losses[0], 5.0);
  EXPECT_LT(last, losses[0] - 2.0) << "step 0: " << losses[0];
  EXPECT_LT(last, 2.5);
}

}  // namespace
}  // namespace k2::engine
