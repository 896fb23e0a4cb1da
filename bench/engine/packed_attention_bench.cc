// Benchmark: fwd+bwd tokens/s of the CPU engine on packed rows (sft::PackExamples' layout: documents of
// `--doc` tokens one after another, positions restarting per document) with block-diagonal attention,
// against the same rows computed with the full causal T x T square (no segment ids), which is what a
// packed row cost before attention skipped the blocks between documents. Same model, threads and shapes,
// same run. Usage: bench_engine_packed_attention [--threads N] [--batch B] [--seq T] [--doc L] [--iters K]
#include <chrono>
#include <cstdio>
#include <algorithm>
#include <cstdlib>
#include <string>

#include "core/rng.h"
#include "engine/engine.h"
#include "engine/pretrain.h"

using namespace k2;

int main(int argc, char** argv) {
  engine::ReexecWithPassiveOpenMpWait(argv);
  int threads = 2, B = 2, T = 1024, L = 64, iters = 3;
  std::string model = std::string(K2GYM_SOURCE_DIR) + "/configs/sft/model_small.json";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k == "--threads") threads = std::atoi(argv[i + 1]);
    else if (k == "--batch") B = std::atoi(argv[i + 1]);
    else if (k == "--seq") T = std::atoi(argv[i + 1]);
    else if (k == "--doc") L = std::atoi(argv[i + 1]);
    else if (k == "--iters") iters = std::atoi(argv[i + 1]);
    else if (k == "--model") model = argv[i + 1];
  }
  if (L < 1 || T < 2 || B < 1 || iters < 1) {
    std::fprintf(stderr, "bad sizes\n");
    return 2;
  }
  engine::SetComputeThreads(threads);
  auto cfg = engine::LoadModelConfig(model);
  if (!cfg.ok()) {
    std::fprintf(stderr, "%s\n", cfg.status().ToString().c_str());
    return 1;
  }
  cfg->vocab_size = std::max<int64_t>(cfg->vocab_size, 4096);  // the quickstart's tokenizer size
  auto m = engine::Model<float>::Create(*cfg, 1);
  if (!m.ok()) {
    std::fprintf(stderr, "%s\n", m.status().ToString().c_str());
    return 1;
  }
  Rng rng(2);
  engine::Batch packed;
  packed.B = B;
  packed.T = T;
  for (int b = 0; b < B; ++b)
    for (int t = 0; t < T; ++t) {
      packed.tokens.push_back(static_cast<int32_t>(rng.Below(static_cast<uint64_t>(cfg->vocab_size))));
      packed.targets.push_back(static_cast<int32_t>(rng.Below(static_cast<uint64_t>(cfg->vocab_size))));
      packed.weights.push_back(1.0f);
      packed.positions.push_back(t % L);
      packed.segment_ids.push_back(t / L);
    }
  engine::Batch full = packed;  // the same tokens, one causal square per row
  full.positions.clear();
  full.segment_ids.clear();
  auto time = [&](const engine::Batch& b) {
    auto step = [&] {
      auto r = (*m)->Forward(b);
      if (!r.ok()) {
        std::fprintf(stderr, "%s\n", r.status().ToString().c_str());
        std::exit(1);
      }
      (*m)->ZeroGrad();
      (*m)->Backward();
    };
    step();  // warm-up: sizes buffers
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < iters; ++i) step();
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return static_cast<double>(B) * T * iters / dt;
  };
  const double full_tps = time(full), block_tps = time(packed);
  std::printf("packed rows, fwd+bwd, %s, %d threads, %d x %d positions, documents of %d tokens, %d iters\n",
              model.c_str(), threads, B, T, L, iters);
  std::printf("full causal square: %.0f tokens/s\nblock-diagonal:     %.0f tokens/s\nratio: %.2fx\n", full_tps,
              block_tps, block_tps / full_tps);
  return 0;
}
