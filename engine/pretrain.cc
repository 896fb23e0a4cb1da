// Pretraining loop (see pretrain.h): sampling, steps, checkpoints and resume, and data parallelism over
// engine/dist (global-batch sharding, bucketed gradient all-reduce, global QK-Clip maxima and loads).
#include "engine/pretrain.h"

#include <cblas.h>
#include <omp.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "core/fault.h"
#include "core/determinism.h"
#include "engine/checkpoint.h"
#include "engine/data.h"
#include "engine/dist/data_parallel.h"

namespace k2::engine {

void ReexecWithPassiveOpenMpWait(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr) return;
  setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
  execv("/proc/self/exe", argv);  // returns only on failure: carry on with libgomp's default
}

void SetComputeThreads(int64_t n) {
  if (DeterministicMode()) n = kDeterministicThreads;  // the same reductions on every machine
  if (n <= 0) return;
  omp_set_num_threads(static_cast<int>(n));
  openblas_set_num_threads(static_cast<int>(n));
}

namespace {

// Every rank must start from the same weights, state and settings; a fingerprint of them is compared
// with rank 0's so that a mismatched launch fails at step 0 instead of silently diverging.
uint64_t Fingerprint(const Model<float>& model, const PretrainConfig& cfg, const TrainerState& st, uint64_t seed,
                     const std::string& corpus) {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&](const void* p, size_t n) {
    const auto* b = static_cast<const unsigned char*>(p);
    for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
  };
  for (const auto& p : model.params()) mix(p.w.data(), p.w.size() * sizeof(float));
  const int64_t ints[] = {cfg.batch_size, cfg.seq_len, cfg.steps, st.step, static_cast<int64_t>(corpus.size())};
  mix(ints, sizeof ints);
  mix(&seed, sizeof seed);
  mix(&cfg.aux_loss_alpha, sizeof cfg.aux_loss_alpha);
  mix(corpus.data(), std::min<size_t>(corpus.size(), 1 << 16));
  return h;
}

// Copies rows [r0, r1) of `global` into `local`.
void Shard(const Batch& global, int64_t r0, int64_t r1, Batch* local) {
  const int64_t T = global.T, n = (r1 - r0) * T;
  local->B = r1 - r0;
  local->T = T;
  local->tokens.assign(global.tokens.begin() + r0 * T, global.tokens.begin() + r0 * T + n);
  local->targets.assign(global.targets.begin() + r0 * T, global.targets.begin() + r0 * T + n);
  local->weights.assign(global.weights.begin() + r0 * T, global.weights.begin() + r0 * T + n);
}

// The hooks' collectives cannot return a Status through the model; the first error is kept here and
// checked after each Forward and Step (the communicator fails fast once broken, so nothing hangs).
struct HookErrors {
  Status first;
  void Keep(Status st) {
    if (!st.ok() && first.ok()) first = std::move(st);
  }
};

}  // namespace

Expected<int64_t> Pretrain(Model<float>* model, const PretrainConfig& cfg, const PretrainRun& run) {
  SetComputeThreads(cfg.threads);
  // Communicator: given by the caller, or from the launcher's environment.
  std::unique_ptr<dist::Communicator> owned;
  dist::Communicator* comm = run.comm;
  if (comm == nullptr) {
    K2_ASSIGN_OR_RETURN(dist::LaunchEnv env, dist::LaunchEnvFromEnv());
    K2_ASSIGN_OR_RETURN(owned, dist::ConnectFromEnv(env, cfg.dist, "pretrain"));
    comm = owned.get();
  }
  const int W = comm ? comm->world_size() : 1, R = comm ? comm->rank() : 0;
  if (cfg.batch_size < W)
    return InvalidArgument("pretrain.batch_size " + std::to_string(cfg.batch_size) + " < world size " +
                           std::to_string(W) + ": every rank needs at least one row of the global batch");

  K2_ASSIGN_OR_RETURN(std::string corpus, LoadByteCorpus(run.corpus_path, cfg.seq_len));
  if (model->config().vocab_size < 256)
    return InvalidArgument("model vocab_size " + std::to_string(model->config().vocab_size) +
                           " < 256: byte-level pretraining needs every byte value");
  OptimizerConfig oc = cfg.optimizer;
  Optimizer<float> opt(model, oc);
  TrainerState st;
  Rng data_rng = Rng(run.seed).Fork("pretrain-data");
  if (run.resume && !run.checkpoint_dir.empty()) {
    // Rank 0 recovers an interrupted save (the other ranks wait for its verdict) and every rank loads
    // the newest complete checkpoint.
    int64_t have = 0;
    if (R == 0) {
      K2_ASSIGN_OR_RETURN(std::optional<CheckpointInfo> ck, RecoverCheckpoint(run.checkpoint_dir));
      have = ck.has_value() ? 1 : 0;
    }
    if (W > 1) K2_RETURN_IF_ERROR(comm->Broadcast(&have, sizeof have, 0));
    if (have) {
      K2_RETURN_IF_ERROR(LoadCheckpoint(run.checkpoint_dir, model, &opt, &st));
      data_rng.set_state(st.rng);
    }
  }

  // Data parallel wiring: this rank's rows, the gradient reducer and the statistics hooks.
  const int64_t r0 = R * (cfg.batch_size / W) + std::min<int64_t>(R, cfg.batch_size % W);
  const int64_t r1 = r0 + cfg.batch_size / W + (R < cfg.batch_size % W ? 1 : 0);
  std::unique_ptr<dist::GradReducer> reducer;
  HookErrors hook_err;
  if (W > 1) {
    // Same start everywhere: rank 0's fingerprint against ours; the verdict is agreed by a max-reduce.
    uint64_t fp = Fingerprint(*model, cfg, st, run.seed, corpus), fp0 = fp;
    K2_RETURN_IF_ERROR(comm->Broadcast(&fp0, sizeof fp0, 0));
    double mismatch = fp0 != fp ? 1.0 : 0.0;
    K2_RETURN_IF_ERROR(comm->AllReduce(&mismatch, 1, dist::ReduceOp::kMax));
    if (mismatch > 0)
      return FailedPrecondition("pretrain: rank " + std::to_string(R) + " of " + std::to_string(W) +
                                (fp0 != fp ? " starts" : ": another rank starts") +
                                " from different weights, settings, seed, checkpoint or corpus than rank 0 "
                                "(launch every rank with the same --model, --data, config, --seed and --out)");
    reducer = std::make_unique<dist::GradReducer>(comm, &model->params(),
                                                  dist::BucketOptions{cfg.dist.bucket_mb, cfg.dist.overlap});
    Model<float>::DistHooks hooks;
    dist::GradReducer* red = reducer.get();
    hooks.grad_ready = [red](int64_t i) { red->OnGradReady(i); };
    hooks.reduce_stats = [comm, &hook_err](std::vector<std::vector<double>>& ml, std::vector<std::vector<int64_t>>& ld) {
      hook_err.Keep(dist::ReduceMaxLogits(comm, &ml));
      hook_err.Keep(dist::ReduceExpertLoad(comm, &ld));
    };
    hooks.reduce_layer_max = [comm, &hook_err](std::vector<double>& hm) {
      hook_err.Keep(comm->AllReduce(hm.data(), static_cast<int64_t>(hm.size()), dist::ReduceOp::kMax));
    };
    model->SetDistHooks(std::move(hooks));
  }
  // The hooks capture locals: detach them whatever way this function returns.
  struct Unhook {
    Model<float>* m;
    bool on;
    ~Unhook() {
      if (on) m->SetDistHooks({});
    }
  } unhook{model, W > 1};

  Batch global, batch;
  const auto t0 = std::chrono::steady_clock::now();
  int64_t taken = 0;
  for (int64_t step = st.step; step < cfg.steps; ++step) {
    SampleByteBatch(corpus, cfg.batch_size, cfg.seq_len, data_rng, W > 1 ? &global : &batch);
    ForwardOptions fo{cfg.aux_loss_alpha};
    if (W > 1) {
      Shard(global, r0, r1, &batch);
      // Global normalizer: each rank's sum_t w_t CE_t / sum_global w is its share of the full-batch loss.
      double wsum = 0;
      for (float w : batch.weights) wsum += w;
      K2_RETURN_IF_ERROR(comm->AllReduce(&wsum, 1, dist::ReduceOp::kSum));
      fo.loss_normalizer = wsum;
      // The sequence-wise aux loss averages over this rank's rows; rescale to the global row count.
      fo.aux_loss_alpha = cfg.aux_loss_alpha * static_cast<double>(r1 - r0) / static_cast<double>(cfg.batch_size);
    }
    K2_ASSIGN_OR_RETURN(ForwardResult fr, model->Forward(batch, fo));
    K2_RETURN_IF_ERROR(hook_err.first);
    model->ZeroGrad();
    model->Backward();
    PretrainStep ps;
    ps.world_size = W;
    if (W > 1) {
      const double w0 = reducer->stats().finish_wait_s;
      K2_RETURN_IF_ERROR(reducer->Finish());
      ps.comm_wait_s = reducer->stats().finish_wait_s - w0;
      double parts[2] = {fr.ce_loss, fr.aux_loss};
      K2_RETURN_IF_ERROR(comm->AllReduce(parts, 2, dist::ReduceOp::kSum));
      fr.ce_loss = parts[0], fr.aux_loss = parts[1], fr.loss = parts[0] + parts[1];
      fr.weight_sum = fo.loss_normalizer;
    }
    if (!std::isfinite(fr.loss))
      return Internal("pretrain: loss is " + std::to_string(fr.loss) + " at step " + std::to_string(step));
    ps.step = step;
    ps.fwd = fr;
    for (auto& ld : model->expert_load()) {
      if (ld.empty()) continue;
      double mean = 0, mx = 0;
      for (auto v : ld) mean += static_cast<double>(v), mx = std::max(mx, static_cast<double>(v));
      mean /= static_cast<double>(ld.size());
      if (mean > 0) ps.load_imbalance = std::max(ps.load_imbalance, mx / mean);
    }
    ps.opt = opt.Step(step);
    K2_RETURN_IF_ERROR(hook_err.first);
    ++taken;
    st.step = step + 1;
    st.data_position += cfg.batch_size;
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ps.tokens_per_s = dt > 0 ? static_cast<double>(taken * cfg.batch_size * cfg.seq_len) / dt : 0;
    if (R != 0) continue;  // rank 0 alone reports and checkpoints (all ranks hold the same weights)
    if (run.on_step) run.on_step(ps);
    CrashPoint("train.step");
    const bool last = st.step == cfg.steps;
    if (!run.checkpoint_dir.empty() && (last || (cfg.checkpoint_every > 0 && st.step % cfg.checkpoint_every == 0))) {
      st.rng = data_rng.state();
      json meta = json::object();
      if (run.commit_metrics) {
        K2_ASSIGN_OR_RETURN(meta, run.commit_metrics());  // the rows before the checkpoint, first
      }
      K2_RETURN_IF_ERROR(SaveCheckpointWithMeta(run.checkpoint_dir, *model, opt, st, meta));
    }
  }
  return taken;
}

}  // namespace k2::engine
