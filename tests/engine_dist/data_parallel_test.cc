// Data parallelism in process (ranks are threads on loopback): the grad-ready hook announces every
// trainable gradient once and final; bucketed overlapped reduction == the flat reference bit for bit;
// W ranks' summed gradients == one model on the combined batch; Pretrain on W ranks (MoE, aux loss,
// QK-Clip both measures, router bias) == Pretrain in one process on the whole batch.
#include "engine/dist/data_parallel.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <future>
#include <map>

#include "engine/data.h"
#include "engine/pretrain.h"
#include "tests/engine/test_util.h"

namespace k2::engine::dist {
namespace {

using Comms = std::vector<std::unique_ptr<Communicator>>;

Comms ConnectAll(int world) {
  std::promise<int> port;
  auto pf = port.get_future().share();
  std::vector<std::future<Expected<std::unique_ptr<Communicator>>>> fs;
  for (int r = 0; r < world; ++r)
    fs.push_back(std::async(std::launch::async, [=, &port]() {
      GlooOptions o;
      o.rank = r, o.world_size = world, o.timeout_s = 30;
      if (r == 0) o.master_port = 0, o.on_listen = [&port](int p) { port.set_value(p); };
      else o.master_port = pf.get();
      return ConnectGloo(o);
    }));
  Comms out;
  for (auto& f : fs) {
    auto c = f.get();
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    out.push_back(c.ok() ? std::move(*c) : nullptr);
  }
  return out;
}

ModelConfig Config() {
  ModelConfig mc = engine::testing::TinyConfig();  // MoE (8 experts, shared expert), q_lora, YaRN
  mc.vocab_size = 256;
  return mc;
}

Batch Rows(const Batch& b, int64_t r0, int64_t r1) {
  Batch o;
  o.B = r1 - r0, o.T = b.T;
  const auto a = static_cast<size_t>(r0 * b.T), e = static_cast<size_t>(r1 * b.T);
  o.tokens.assign(b.tokens.begin() + a, b.tokens.begin() + e);
  o.targets.assign(b.targets.begin() + a, b.targets.begin() + e);
  o.weights.assign(b.weights.begin() + a, b.weights.begin() + e);
  return o;
}

TEST(GradReadyHook, EveryTrainableGradientAnnouncedOnceAndFinal) {
  auto m = Model<float>::Create(Config(), 3);
  ASSERT_TRUE(m.ok());
  Model<float>& model = **m;
  Rng rng(5);
  Batch b = engine::testing::RandomBatch(rng, 2, 12, 256);
  std::map<int64_t, std::vector<float>> at_announce;
  std::vector<int64_t> order;
  Model<float>::DistHooks h;
  h.grad_ready = [&](int64_t i) {
    order.push_back(i);
    at_announce[i] = model.params()[i].g;
  };
  model.SetDistHooks(h);
  ASSERT_TRUE(model.Forward(b, ForwardOptions{0.01}).ok());
  model.ZeroGrad();
  model.Backward();
  int64_t trainable = 0;
  for (size_t i = 0; i < model.params().size(); ++i) {
    const auto& p = model.params()[i];
    if (!p.trainable) {
      EXPECT_EQ(at_announce.count(static_cast<int64_t>(i)), 0u) << p.name;
      continue;
    }
    ++trainable;
    ASSERT_EQ(at_announce.count(static_cast<int64_t>(i)), 1u) << p.name << " never announced";
    EXPECT_EQ(at_announce[static_cast<int64_t>(i)], p.g) << p.name << " changed after it was announced final";
  }
  EXPECT_EQ(static_cast<int64_t>(order.size()), trainable);  // once each
  EXPECT_EQ(model.params()[order.front()].name, "lm_head.weight");
  EXPECT_EQ(model.params()[order.back()].name, "model.embed_tokens.weight");
  model.SetDistHooks({});
}

// Runs forward+backward of `rows` on W models (threads) with the global normalizer, reduces with `mode`
// (0 = bucketed overlap, 1 = bucketed inline, 2 = flat reference) and returns each rank's gradients.
std::vector<std::vector<std::vector<float>>> DpGrads(int W, const Batch& global, int mode, double bucket_mb) {
  Comms cs = ConnectAll(W);
  double wsum = 0;
  for (float w : global.weights) wsum += w;
  std::vector<std::future<std::vector<std::vector<float>>>> fs;
  for (int r = 0; r < W; ++r)
    fs.push_back(std::async(std::launch::async, [&, r] {
      auto m = Model<float>::Create(Config(), 11);
      EXPECT_TRUE(m.ok());
      Model<float>& model = **m;
      const int64_t r0 = global.B * r / W, r1 = global.B * (r + 1) / W;
      Batch local = Rows(global, r0, r1);
      GradReducer red(cs[r].get(), &model.params(), BucketOptions{bucket_mb, mode == 0});
      if (mode != 2) {
        Model<float>::DistHooks h;
        h.grad_ready = [&](int64_t i) { red.OnGradReady(i); };
        model.SetDistHooks(h);
      }
      EXPECT_TRUE(model.Forward(local, ForwardOptions{0.0, wsum}).ok());
      model.ZeroGrad();
      model.Backward();
      Status st = mode == 2 ? AllReduceGradsFlat(cs[r].get(), &model.params()) : red.Finish();
      EXPECT_TRUE(st.ok()) << st.ToString();
      if (mode != 2) {
        EXPECT_GT(red.stats().buckets, mode == 0 ? 10 : 1);
      }
      model.SetDistHooks({});
      std::vector<std::vector<float>> g;
      for (auto& p : model.params()) g.push_back(p.g);
      return g;
    }));
  std::vector<std::vector<std::vector<float>>> out;
  for (auto& f : fs) out.push_back(f.get());
  return out;
}

TEST(GradReducer, BucketedOverlapEqualsFlatReferenceAndTheCombinedBatch) {
  Rng rng(21);
  Batch global = engine::testing::RandomBatch(rng, 4, 12, 256);
  auto flat = DpGrads(2, global, 2, 0);
  auto overlap = DpGrads(2, global, 0, 0.002);  // ~500 floats per bucket: dozens of buckets in flight
  auto inline_ = DpGrads(2, global, 1, 0.05);
  // Two ranks: each element is a+b however the buffers are chunked, so the bits must agree.
  for (int r = 0; r < 2; ++r) {
    EXPECT_EQ(overlap[r], flat[0]) << "rank " << r;
    EXPECT_EQ(inline_[r], flat[0]) << "rank " << r;
  }
  // One model on the combined batch (weighted mean over all tokens = the global normalizer).
  auto m = Model<float>::Create(Config(), 11);
  ASSERT_TRUE(m.ok());
  ASSERT_TRUE((*m)->Forward(global).ok());
  (*m)->ZeroGrad();
  (*m)->Backward();
  const auto& ps = (*m)->params();
  for (size_t i = 0; i < ps.size(); ++i) {
    double worst = 0, scale = 1e-6;
    for (size_t j = 0; j < ps[i].g.size(); ++j) {
      worst = std::max(worst, std::abs(static_cast<double>(ps[i].g[j]) - flat[0][i][j]));
      scale = std::max(scale, std::abs(static_cast<double>(ps[i].g[j])));
    }
    EXPECT_LE(worst, 1e-4 * scale) << ps[i].name;
  }
}

TEST(GradReducer, ThreeRanksUnevenRowsMatchTheCombinedBatch) {
  Rng rng(22);
  Batch global = engine::testing::RandomBatch(rng, 5, 10, 256);  // rows 1/2/2
  auto g = DpGrads(3, global, 0, 0.01);
  for (int r = 1; r < 3; ++r) EXPECT_EQ(g[r], g[0]) << "rank " << r;  // identical bits on every rank
  auto m = Model<float>::Create(Config(), 11);
  ASSERT_TRUE(m.ok());
  ASSERT_TRUE((*m)->Forward(global).ok());
  (*m)->ZeroGrad();
  (*m)->Backward();
  const auto& ps = (*m)->params();
  for (size_t i = 0; i < ps.size(); ++i) {
    double worst = 0, scale = 1e-6;
    for (size_t j = 0; j < ps[i].g.size(); ++j) {
      worst = std::max(worst, std::abs(static_cast<double>(ps[i].g[j]) - g[0][i][j]));
      scale = std::max(scale, std::abs(static_cast<double>(ps[i].g[j])));
    }
    EXPECT_LE(worst, 1e-4 * scale) << ps[i].name;
  }
}

struct TrainOut {
  std::vector<std::vector<float>> weights;
  std::vector<PretrainStep> steps;
};

PretrainConfig DpPretrainConfig(const std::string& measure) {
  PretrainConfig pc;
  pc.batch_size = 6;
  pc.seq_len = 16;
  pc.steps = 5;
  pc.checkpoint_every = 0;
  pc.aux_loss_alpha = 0.01;
  pc.threads = 1;
  pc.optimizer.lr = 0.02;
  pc.optimizer.qk_clip_tau = 1.0;  // low: heads are clipped during the run
  pc.optimizer.qk_clip_measure = measure;
  pc.optimizer.bias_update_speed = 0.01;
  pc.optimizer.total_steps = 5;
  pc.dist.bucket_mb = 0.01;
  return pc;
}

std::vector<TrainOut> TrainRanks(int W, const PretrainConfig& pc, const std::string& corpus) {
  Comms cs = W > 1 ? ConnectAll(W) : Comms{};
  std::vector<std::future<TrainOut>> fs;
  for (int r = 0; r < W; ++r)
    fs.push_back(std::async(std::launch::async, [&, r] {
      TrainOut out;
      auto m = Model<float>::Create(Config(), 7);
      EXPECT_TRUE(m.ok());
      PretrainRun run;
      run.corpus_path = corpus;
      run.seed = 7;
      run.on_step = [&](const PretrainStep& s) { out.steps.push_back(s); };
      run.comm = W > 1 ? cs[r].get() : nullptr;
      auto taken = Pretrain(m->get(), pc, run);
      EXPECT_TRUE(taken.ok()) << taken.status().ToString();
      for (auto& p : (*m)->params()) out.weights.push_back(p.w);
      return out;
    }));
  std::vector<TrainOut> out;
  for (auto& f : fs) out.push_back(f.get());
  return out;
}

void ExpectSameTraining(const TrainOut& dp, const TrainOut& one, const std::vector<Param<float>>& names) {
  ASSERT_EQ(dp.steps.size(), one.steps.size());
  int64_t clipped = 0;
  for (size_t s = 0; s < one.steps.size(); ++s) {
    EXPECT_NEAR(dp.steps[s].fwd.loss, one.steps[s].fwd.loss, 1e-5 * std::abs(one.steps[s].fwd.loss)) << "step " << s;
    EXPECT_NEAR(dp.steps[s].fwd.aux_loss, one.steps[s].fwd.aux_loss, 1e-5) << "step " << s;
    EXPECT_NEAR(dp.steps[s].opt.grad_norm, one.steps[s].opt.grad_norm, 1e-4 * one.steps[s].opt.grad_norm) << "step " << s;
    EXPECT_NEAR(dp.steps[s].opt.max_logit, one.steps[s].opt.max_logit, 1e-4 * one.steps[s].opt.max_logit) << "step " << s;
    EXPECT_EQ(dp.steps[s].opt.clipped_heads, one.steps[s].opt.clipped_heads) << "step " << s;
    EXPECT_NEAR(dp.steps[s].load_imbalance, one.steps[s].load_imbalance, 1e-12) << "step " << s;
    clipped += one.steps[s].opt.clipped_heads;
  }
  EXPECT_GT(clipped, 0) << "QK-Clip never acted: the test would not cover it";
  for (size_t i = 0; i < one.weights.size(); ++i) {
    double worst = 0;
    for (size_t j = 0; j < one.weights[i].size(); ++j)
      worst = std::max(worst, std::abs(static_cast<double>(dp.weights[i][j]) - one.weights[i][j]));
    EXPECT_LE(worst, 2e-4) << names[i].name;  // fp32 tolerance after 5 steps at lr 0.02
  }
}

TEST(DataParallelPretrain, TwoAndThreeRanksEqualOneProcessOnTheCombinedBatch) {
  const std::string dir = ::testing::TempDir() + "/k2gym_dp_" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  const std::string corpus = dir + "/corpus.txt";
  ASSERT_TRUE(WriteFileAtomic(corpus, GenerateCorpus(2, 20000)).ok());
  auto names = Model<float>::Create(Config(), 7);
  ASSERT_TRUE(names.ok());
  for (const std::string measure : {"post_update", "step_forward"}) {
    SCOPED_TRACE(measure);
    PretrainConfig pc = DpPretrainConfig(measure);
    auto one = TrainRanks(1, pc, corpus);
    for (int W : {2, 3}) {
      SCOPED_TRACE("W=" + std::to_string(W));
      if (W == 3) pc.dist.overlap = false;  // the inline bucket path end to end too
      auto dp = TrainRanks(W, pc, corpus);
      ASSERT_EQ(dp.size(), static_cast<size_t>(W));
      for (int r = 1; r < W; ++r) {
        EXPECT_TRUE(dp[r].steps.empty()) << "only rank 0 reports steps";
        EXPECT_EQ(dp[r].weights, dp[0].weights) << "rank " << r << " diverged from rank 0";
      }
      EXPECT_EQ(dp[0].steps.front().world_size, W);
      ExpectSameTraining(dp[0], one[0], (*names)->params());
    }
  }
  std::filesystem::remove_all(dir);
}

TEST(DataParallelPretrain, MismatchedRanksFailAtStepZero) {
  const std::string dir = ::testing::TempDir() + "/k2gym_dpm_" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  const std::string corpus = dir + "/corpus.txt";
  ASSERT_TRUE(WriteFileAtomic(corpus, GenerateCorpus(2, 20000)).ok());
  Comms cs = ConnectAll(2);
  std::vector<std::future<Status>> fs;
  for (int r = 0; r < 2; ++r)
    fs.push_back(std::async(std::launch::async, [&, r] {
      auto m = Model<float>::Create(Config(), 7 + r);  // rank 1 was launched with another seed
      PretrainConfig pc = DpPretrainConfig("post_update");
      PretrainRun run;
      run.corpus_path = corpus;
      run.seed = 7;
      run.comm = cs[r].get();
      auto t = Pretrain(m->get(), pc, run);
      return t.ok() ? Status::Ok() : t.status();
    }));
  for (auto& f : fs) {
    Status st = f.get();
    EXPECT_EQ(st.code(), Code::kFailedPrecondition) << st.ToString();
    EXPECT_NE(st.message().find("different weights, settings"), std::string::npos) << st.message();
  }
  std::filesystem::remove_all(dir);
}

TEST(DataParallelPretrain, BatchSmallerThanTheWorldIsRejected) {
  Comms cs = ConnectAll(2);
  auto m = Model<float>::Create(Config(), 7);
  PretrainConfig pc;
  pc.batch_size = 1;
  PretrainRun run;
  run.comm = cs[0].get();
  auto t = Pretrain(m->get(), pc, run);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("pretrain.batch_size 1 < world size 2"), std::string::npos) << t.status().message();
}

}  // namespace
}  // namespace k2::engine::dist
