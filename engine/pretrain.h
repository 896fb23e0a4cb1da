// The pretraining loop: byte-level batches from a corpus, forward/backward, MuonClip, metrics callback,
// periodic crash-safe checkpoints (engine/checkpoint.h) and bit-exact resume. Used by `k2gym pretrain` and by tests.
// Single-threaded caller; the model parallelizes internally. Failures (data, checkpoint I/O) are Status.
#pragma once

#include <functional>
#include <string>

#include "engine/dist/comm.h"
#include "engine/engine.h"

namespace k2::engine {

// Data parallelism (docs/distributed.md): used when the launcher's environment (RANK/WORLD_SIZE or
// SLURM_*) gives a world above 1, or when PretrainRun::comm is set.
using DistConfig = dist::DistConfig;

struct PretrainConfig {
  int64_t batch_size = 8;
  int64_t seq_len = 128;
  int64_t steps = 200;
  double aux_loss_alpha = 0.0;          // sequence-wise balance loss; 0 = aux-loss-free balancing only
  int64_t checkpoint_every = 100;       // steps; 0 = only at the end
  int64_t threads = 0;                  // OpenMP/OpenBLAS threads; 0 = library default
  OptimizerConfig optimizer;
  DistConfig dist;
  template <class V> void Visit(V& v) {
    v("batch_size", batch_size, "sequences per step", {.min = 1});
    v("seq_len", seq_len, "tokens per sequence (bytes)", {.min = 1});
    v("steps", steps, "optimizer steps (--steps overrides)", {.min = 1});
    v("aux_loss_alpha", aux_loss_alpha, "sequence-wise MoE balance loss weight (0 = off)", {.min = 0.0});
    v("checkpoint_every", checkpoint_every, "checkpoint period in steps (0 = at the end only)", {.min = 0});
    v("threads", threads, "compute threads (0 = default)", {.min = 0});
    v("optimizer", optimizer, "MuonClip settings");
    v("dist", dist, "data parallelism (active when WORLD_SIZE > 1)");
  }
};

struct PretrainStep {
  int64_t step = 0;       // 0-based index of the step just taken
  ForwardResult fwd;
  StepStats opt;
  double load_imbalance = 0;  // max over MoE layers of max/mean expert load
  double tokens_per_s = 0;    // since the start of this invocation (global: all ranks' tokens)
  int world_size = 1;
  double comm_wait_s = 0;     // data parallel: seconds this step waited for gradient buckets after Backward
};

struct PretrainRun {
  std::string corpus_path;
  std::string checkpoint_dir;  // "" = no checkpoints
  bool resume = false;         // continue from checkpoint_dir when it holds a checkpoint
  uint64_t seed = 0;           // model init and data sampling
  std::function<void(const PretrainStep&)> on_step;  // rank 0 only
  // Rank 0, before each checkpoint: makes the metrics logged so far durable and returns what the
  // checkpoint's manifest records of them (engine/checkpoint.h TrainingRun::CommitMetrics). Null = none.
  std::function<Expected<json>()> commit_metrics;
  // Data parallelism: null = from the environment (LaunchEnvFromEnv; world 1 = plain training).
  dist::Communicator* comm = nullptr;
};

// Trains `model` (freshly created by the caller from the config and seed) for cfg.steps steps in total
// (a resumed run continues from the checkpoint's step). Returns the number of steps taken now.
//
// Data parallel (world W > 1): every rank draws the same global batch of cfg.batch_size rows and trains
// on its contiguous shard (rows split as evenly as possible); the loss normalizer is the global weight
// sum, gradients are summed over ranks in buckets during Backward, max logits are max-reduced and
// expert loads sum-reduced before QK-Clip and the router bias update, so W ranks compute what one
// process computes on the whole batch. Only rank 0 calls on_step and writes checkpoints; every rank
// reads the checkpoint on resume. Ranks must run the same model, config, seed and corpus (checked).
Expected<int64_t> Pretrain(Model<float>* model, const PretrainConfig& cfg, const PretrainRun& run);

// Sets OpenMP and OpenBLAS thread counts (0 leaves the defaults).
void SetComputeThreads(int64_t n);

// The engine's elementwise loops use OpenMP (libgomp) and its GEMMs OpenBLAS's own pthreads. Under
// libgomp's default wait policy its idle workers spin after every parallel region and take the cores
// from the BLAS threads: SFT of the small model on 2 cores ran at 1,090 tokens/s spinning and 1,764
// passive (docs/performance.md). libgomp reads OMP_WAIT_POLICY once, in its load-time constructor, so
// a program's main() calls this first: when the variable is unset it sets PASSIVE and execs
// /proc/self/exe again with the same argv (returns normally when set, or if the exec fails). A user's
// own OMP_WAIT_POLICY is kept.
void ReexecWithPassiveOpenMpWait(char** argv);

}  // namespace k2::engine
