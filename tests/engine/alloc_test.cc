// The training step loop (Forward, ZeroGrad, Backward, Optimizer::Step) allocates nothing once the
// first step of a shape has sized the buffers. Counted by replacing the global operator new in this
// test binary (its own executable, so the counter sees nothing else).
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "engine/engine.h"
#include "tests/engine/test_util.h"

// Replacement allocation functions are malloc/free based by definition; GCC's pairing heuristic cannot
// see that the replaced operator new is malloc.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace {
std::atomic<int64_t> g_news{0};
std::atomic<bool> g_counting{false};
}  // namespace

void* operator new(std::size_t n) {
  if (g_counting.load(std::memory_order_relaxed)) g_news.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return operator new(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  if (g_counting.load(std::memory_order_relaxed)) g_news.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(n ? n : 1);
}
void* operator new[](std::size_t n, const std::nothrow_t& t) noexcept { return operator new(n, t); }
void* operator new(std::size_t n, std::align_val_t a) {
  if (g_counting.load(std::memory_order_relaxed)) g_news.fetch_add(1, std::memory_order_relaxed);
  const std::size_t al = static_cast<std::size_t>(a);
  if (void* p = std::aligned_alloc(al, (n + al - 1) / al * al)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n, std::align_val_t a) { return operator new(n, a); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

namespace k2::engine {
namespace {

// Counts operator new calls made by `steps` training steps after a warm-up step of the same shape.
int64_t AllocationsInSteadySteps(const ModelConfig& cfg, const OptimizerConfig& oc, const ForwardOptions& fo,
                                 bool packed, int steps) {
  auto mm = Model<float>::Create(cfg, 3);
  EXPECT_TRUE(mm.ok());
  Model<float>& m = **mm;
  Optimizer<float> opt(&m, oc);
  Rng rng(4);
  std::vector<Batch> batches;
  for (int s = 0; s <= steps; ++s) {
    Batch b = testing::RandomBatch(rng, 2, 12, cfg.vocab_size);
    if (packed) {
      for (int64_t i = 0; i < b.B * b.T; ++i) {
        const int64_t t = i % b.T;
        b.segment_ids.push_back(t < 5 ? 0 : 1);
        b.positions.push_back(static_cast<int32_t>(t < 5 ? t : t - 5));
      }
    }
    if (fo.loss_normalizer > 0)
      for (size_t i = 0; i < b.weights.size(); i += 3) b.weights[i] = -b.weights[i];
    batches.push_back(std::move(b));
  }
  auto step = [&](int s) {
    auto r = m.Forward(batches[static_cast<size_t>(s)], fo);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    m.ZeroGrad();
    m.Backward();
    opt.Step(s);
  };
  g_news = 0;
  g_counting = true;
  step(0);  // sizes the buffers for this shape
  g_counting = false;
  EXPECT_GT(g_news.load(), 10) << "the first step sizes buffers: the counter must see the engine's allocations";
  g_news = 0;
  g_counting = true;
  for (int s = 1; s <= steps; ++s) step(s);
  g_counting = false;
  return g_news.load();
}

TEST(StepLoop, CounterSeesAllocations) {
  // The counter itself works (so a 0 below means something).
  g_news = 0;
  g_counting = true;
  auto* v = new std::vector<int>(100);
  g_counting = false;
  delete v;
  EXPECT_GE(g_news.load(), 2);
}

TEST(StepLoop, AllocatesNothingAfterTheFirstStep) {
  ModelConfig cfg = testing::TinyConfig();
  OptimizerConfig oc;
  oc.lr = 0.01;
  oc.qk_clip_tau = 0.5;  // low enough that QK-Clip rescales heads every step
  ForwardOptions fo;
  fo.aux_loss_alpha = 0.1;  // sequence-wise aux loss buffers too
  EXPECT_EQ(AllocationsInSteadySteps(cfg, oc, fo, false, 3), 0) << "post_update QK-Clip, aux loss";
  oc.qk_clip_measure = "step_forward";
  EXPECT_EQ(AllocationsInSteadySteps(cfg, oc, fo, false, 3), 0) << "step_forward QK-Clip";
  fo.loss_normalizer = 50;
  EXPECT_EQ(AllocationsInSteadySteps(cfg, oc, fo, true, 3), 0) << "packed rows, signed weights";
  cfg.n_group = 4;
  cfg.topk_group = 2;
  cfg.first_k_dense_replace = 0;
  cfg.q_lora_rank.reset();
  EXPECT_EQ(AllocationsInSteadySteps(cfg, oc, fo, true, 3), 0) << "grouped routing, q_proj, all MoE";
}

}  // namespace
}  // namespace k2::engine
