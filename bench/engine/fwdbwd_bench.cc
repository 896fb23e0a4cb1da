// Benchmark: fwd+bwd tokens/s of the CPU engine on configs/models/small.json against the eager PyTorch
// reference (bench/engine/torch_fwdbwd.py) on the same CPU, threads and shapes, run by this binary.
// Usage: bench_engine_fwdbwd [--threads N] [--batch B] [--seq T] [--iters K] [--model FILE]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>

#include "core/json.h"
#include "core/rng.h"
#include "engine/engine.h"
#include "engine/pretrain.h"

using namespace k2;

int main(int argc, char** argv) {
  engine::ReexecWithPassiveOpenMpWait(argv);  // as k2gym does; the PyTorch child inherits the setting
  int threads = 2, B = 8, T = 128, iters = 5;
  std::string model = std::string(K2GYM_SOURCE_DIR) + "/configs/models/small.json";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k == "--threads") threads = std::atoi(argv[i + 1]);
    else if (k == "--batch") B = std::atoi(argv[i + 1]);
    else if (k == "--seq") T = std::atoi(argv[i + 1]);
    else if (k == "--iters") iters = std::atoi(argv[i + 1]);
    else if (k == "--model") model = argv[i + 1];
  }
  engine::SetComputeThreads(threads);
  auto cfg = engine::LoadModelConfig(model);
  if (!cfg.ok()) {
    std::fprintf(stderr, "%s\n", cfg.status().ToString().c_str());
    return 1;
  }
  auto m = engine::Model<float>::Create(*cfg, 1);
  Rng rng(2);
  engine::Batch b;
  b.B = B;
  b.T = T;
  for (int i = 0; i < B * T; ++i) {
    b.tokens.push_back(static_cast<int32_t>(rng.Below(static_cast<uint64_t>(cfg->vocab_size))));
    b.targets.push_back(static_cast<int32_t>(rng.Below(static_cast<uint64_t>(cfg->vocab_size))));
    b.weights.push_back(1.0f);
  }
  auto step = [&] {
    auto r = (*m)->Forward(b);
    if (!r.ok()) std::abort();
    (*m)->ZeroGrad();
    (*m)->Backward();
  };
  step();  // warm-up: sizes buffers
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < iters; ++i) step();
  double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double k2_tps = static_cast<double>(B) * T * iters / dt;

  std::string cmd = "/usr/bin/python3 " + std::string(K2GYM_SOURCE_DIR) + "/bench/engine/torch_fwdbwd.py --model " +
                    model + " --batch " + std::to_string(B) + " --seq " + std::to_string(T) + " --iters " +
                    std::to_string(iters) + " --threads " + std::to_string(threads);
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[512];
  while (p && std::fgets(buf, sizeof buf, p)) out += buf;
  int rc = p ? pclose(p) : -1;
  double torch_tps = 0;
  std::string torch_ver = "?";
  if (rc == 0) {
    auto j = ParseJson(out, "torch_fwdbwd.py output");
    if (j.ok()) {
      torch_tps = j->value("tokens_per_s", 0.0);
      torch_ver = j->value("torch", std::string("?"));
    }
  }
  // Full training steps (fwd+bwd+MuonClip) with each QK-Clip measure: the post_update replay's cost.
  auto train_tps = [&](const std::string& measure) {
    auto tm = engine::Model<float>::Create(*cfg, 1);
    if (!tm.ok()) std::abort();
    engine::OptimizerConfig oc;
    oc.qk_clip_measure = measure;
    engine::Optimizer<float> opt(tm->get(), oc);
    auto train_step = [&](int s) {
      if (!(*tm)->Forward(b).ok()) std::abort();
      (*tm)->ZeroGrad();
      (*tm)->Backward();
      opt.Step(s);
    };
    train_step(0);
    auto t1 = std::chrono::steady_clock::now();
    for (int i = 1; i <= iters; ++i) train_step(i);
    return static_cast<double>(B) * T * iters /
           std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  };
  const double step_fwd_tps = train_tps("step_forward"), post_tps = train_tps("post_update");
  // The replay alone against the forward alone (same model, same batch), interleaved.
  double fwd_s = 0, replay_s = 0;
  for (int i = 0; i < iters; ++i) {
    auto a = std::chrono::steady_clock::now();
    if (!(*m)->Forward(b).ok()) std::abort();
    auto c = std::chrono::steady_clock::now();
    (*m)->ReplayClipQk(1e30);  // measures every layer, clips nothing
    auto d = std::chrono::steady_clock::now();
    fwd_s += std::chrono::duration<double>(c - a).count();
    replay_s += std::chrono::duration<double>(d - c).count();
  }

  engine::ModelStats s = engine::ComputeModelStats(*cfg, T);
  std::printf("machine: %u hardware threads; threads used %d (OpenMP + OpenBLAS; torch.set_num_threads)\n",
              std::thread::hardware_concurrency(), threads);
  std::printf("model: %s (%lld params, %lld activated), batch %d x seq %d, %d timed iterations\n", model.c_str(),
              static_cast<long long>(s.total_params), static_cast<long long>(s.activated_params), B, T, iters);
  std::printf("k2gym fwd+bwd:         %10.0f tokens/s (%.2f GFLOP/s model)\n", k2_tps,
              k2_tps * s.flops_per_token_train / 1e9);
  std::printf("k2gym train step, QK-Clip step_forward: %10.0f tokens/s\n", step_fwd_tps);
  std::printf("k2gym train step, QK-Clip post_update:  %10.0f tokens/s (replay cost %.0f%% of a step)\n", post_tps,
              100.0 * (step_fwd_tps / post_tps - 1.0));
  std::printf("post_update replay / forward time:    %10.2f (%.1f ms vs %.1f ms per batch)\n", replay_s / fwd_s,
              1e3 * replay_s / iters, 1e3 * fwd_s / iters);
  if (torch_tps > 0) {
    std::printf("PyTorch %s eager:  %10.0f tokens/s\n", torch_ver.c_str(), torch_tps);
    std::printf("ratio k2gym/PyTorch:   %10.2fx (goal >= 1.5x)\n", k2_tps / torch_tps);
  } else {
    std::printf("PyTorch reference unavailable (rc %d): %s\n", rc, out.c_str());
  }
  return 0;
}
