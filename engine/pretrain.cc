// Pretraining loop (see pretrain.h): sampling, steps, checkpoints and resume.
#include "engine/pretrain.h"

#include <cblas.h>
#include <omp.h>

#include <chrono>
#include <filesystem>

#include "engine/data.h"

namespace k2::engine {

void SetComputeThreads(int64_t n) {
  if (n <= 0) return;
  omp_set_num_threads(static_cast<int>(n));
  openblas_set_num_threads(static_cast<int>(n));
}

Expected<int64_t> Pretrain(Model<float>* model, const PretrainConfig& cfg, const PretrainRun& run) {
  SetComputeThreads(cfg.threads);
  K2_ASSIGN_OR_RETURN(std::string corpus, LoadByteCorpus(run.corpus_path, cfg.seq_len));
  if (model->config().vocab_size < 256)
    return InvalidArgument("model vocab_size " + std::to_string(model->config().vocab_size) +
                           " < 256: byte-level pretraining needs every byte value");
  OptimizerConfig oc = cfg.optimizer;
  Optimizer<float> opt(model, oc);
  TrainerState st;
  Rng data_rng = Rng(run.seed).Fork("pretrain-data");
  if (run.resume && !run.checkpoint_dir.empty() && std::filesystem::exists(run.checkpoint_dir)) {
    K2_RETURN_IF_ERROR(LoadCheckpoint(run.checkpoint_dir, model, &opt, &st));
    data_rng.set_state(st.rng);
  }
  Batch batch;
  const auto t0 = std::chrono::steady_clock::now();
  int64_t taken = 0;
  for (int64_t step = st.step; step < cfg.steps; ++step) {
    SampleByteBatch(corpus, cfg.batch_size, cfg.seq_len, data_rng, &batch);
    K2_ASSIGN_OR_RETURN(ForwardResult fr, model->Forward(batch, ForwardOptions{cfg.aux_loss_alpha}));
    if (!std::isfinite(fr.loss))
      return Internal("pretrain: loss is " + std::to_string(fr.loss) + " at step " + std::to_string(step));
    model->ZeroGrad();
    model->Backward();
    PretrainStep ps;
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
    ++taken;
    st.step = step + 1;
    st.data_position += cfg.batch_size;
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ps.tokens_per_s = dt > 0 ? static_cast<double>(taken * cfg.batch_size * cfg.seq_len) / dt : 0;
    if (run.on_step) run.on_step(ps);
    const bool last = st.step == cfg.steps;
    if (!run.checkpoint_dir.empty() && (last || (cfg.checkpoint_every > 0 && st.step % cfg.checkpoint_every == 0))) {
      st.rng = data_rng.state();
      K2_RETURN_IF_ERROR(SaveCheckpoint(run.checkpoint_dir, *model, opt, st));
    }
  }
  return taken;
}

}  // namespace k2::engine
