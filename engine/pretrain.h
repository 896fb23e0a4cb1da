// The pretraining loop: byte-level batches from a corpus, forward/backward, MuonClip, metrics callback,
// periodic atomic checkpoints and bit-exact resume. Used by `k2gym pretrain` and by tests.
// Single-threaded caller; the model parallelizes internally. Failures (data, checkpoint I/O) are Status.
#pragma once

#include <functional>
#include <string>

#include "engine/engine.h"

namespace k2::engine {

struct PretrainConfig {
  int64_t batch_size = 8;
  int64_t seq_len = 128;
  int64_t steps = 200;
  double aux_loss_alpha = 0.0;          // sequence-wise balance loss; 0 = aux-loss-free balancing only
  int64_t checkpoint_every = 100;       // steps; 0 = only at the end
  int64_t threads = 0;                  // OpenMP/OpenBLAS threads; 0 = library default
  OptimizerConfig optimizer;
  template <class V> void Visit(V& v) {
    v("batch_size", batch_size, "sequences per step", {.min = 1});
    v("seq_len", seq_len, "tokens per sequence (bytes)", {.min = 1});
    v("steps", steps, "optimizer steps (--steps overrides)", {.min = 1});
    v("aux_loss_alpha", aux_loss_alpha, "sequence-wise MoE balance loss weight (0 = off)", {.min = 0.0});
    v("checkpoint_every", checkpoint_every, "checkpoint period in steps (0 = at the end only)", {.min = 0});
    v("threads", threads, "compute threads (0 = default)", {.min = 0});
    v("optimizer", optimizer, "MuonClip settings");
  }
};

struct PretrainStep {
  int64_t step = 0;       // 0-based index of the step just taken
  ForwardResult fwd;
  StepStats opt;
  double load_imbalance = 0;  // max over MoE layers of max/mean expert load
  double tokens_per_s = 0;    // since the start of this invocation
};

struct PretrainRun {
  std::string corpus_path;
  std::string checkpoint_dir;  // "" = no checkpoints
  bool resume = false;         // continue from checkpoint_dir when it holds a checkpoint
  uint64_t seed = 0;           // model init and data sampling
  std::function<void(const PretrainStep&)> on_step;
};

// Trains `model` (freshly created by the caller from the config and seed) for cfg.steps steps in total
// (a resumed run continues from the checkpoint's step). Returns the number of steps taken now.
Expected<int64_t> Pretrain(Model<float>* model, const PretrainConfig& cfg, const PretrainRun& run);

// Sets OpenMP and OpenBLAS thread counts (0 leaves the defaults).
void SetComputeThreads(int64_t n);

}  // namespace k2::engine
