// The policy update of the RL loop: rollouts (token streams with the policy's own tokens masked in and
// the sampler's log-probs) grouped by prompt -> K2 or GRPO per-token weights -> one MuonClip step on the
// live model, with an optional PTX batch (supervised rows) mixed in with coefficient lambda.
//
// One pass over packed rows (segment ids keep rollouts apart): each micro-batch goes forward, the
// trainer's log-probs of its policy tokens give its rollouts' signed weights w_t = -dL/dlogp_t / G
// (G groups; a rollout's gradient depends on its own log-probs and its group's rewards only), the
// weights are set on that forward (Model::SetLossWeights) and the backward accumulates; PTX rows carry
// lambda / N_ptx, normalizer 1, so the gradient is that of  mean_groups L_policy + lambda * CE_ptx.
// One caller thread; the engine parallelizes internally. Bad rollouts are InvalidArgument naming one.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/status.h"
#include "engine/dist/comm.h"
#include "engine/engine.h"
#include "rl/loss.h"
#include "sft/sft.h"

namespace k2::rl {

struct Rollout {
  std::vector<int32_t> tokens;     // the whole stream: prompt, tool results, generated turns
  std::vector<uint8_t> mask;       // 1 on generated (policy) tokens
  std::vector<float> old_logp;     // per token: log pi_old (T=1) for generated tokens, 0 elsewhere
  double reward = 0;
  int64_t group = 0;               // rollouts of the same prompt share a group id
};

struct UpdateConfig {
  std::string objective = "k2";    // k2 | grpo
  double tau = 0.5;                // K2: the regularization tau of (r - rbar - tau * log ratio)^2
  double clip_eps = 0.2;           // GRPO
  double kl_coef = 0.0;            // GRPO: beta of the k3 KL to the frozen reference (the initial weights)
  // Per-token |log pi_theta - log pi_old| below this counts as 0: on-policy, the sampler's and the
  // trainer's float kernels differ by ~1e-7, and that noise alone (e.g. a group with equal rewards)
  // would otherwise give a tiny gradient that Muon's orthogonalization turns into a full-size step.
  double logratio_floor = 1e-4;
  int64_t seq_len = 1024;          // packed row length; a longer rollout is cut here
  int64_t micro_batch = 8;         // rows per forward
  double aux_loss_alpha = 0.0;
  bool skip_uniform_groups = false;  // leave groups with all-equal rewards out of the update (on-policy only)
  int64_t minibatches = 1;         // optimizer steps per iteration (the groups split into this many parts)
  bool share_prefix = true;        // a group's common prompt once per packed row (engine segment parents)
  template <class V> void Visit(V& v) {
    v("objective", objective, "policy objective", {.choices = {"k2", "grpo"}});
    v("tau", tau, "K2: log-ratio regularization tau", {.min = 0.0});
    v("clip_eps", clip_eps, "GRPO ratio clip epsilon", {.min = 0.0});
    v("kl_coef", kl_coef, "GRPO: KL coefficient to a frozen copy of the initial policy (0 = off, no copy kept)",
      {.min = 0.0});
    v("logratio_floor", logratio_floor, "per-token |log ratio| below this is float noise, counted as 0", {.min = 0.0});
    v("seq_len", seq_len, "packed row length for the update (longer rollouts are cut)", {.min = 2});
    v("micro_batch", micro_batch, "rows per forward pass", {.min = 1});
    v("aux_loss_alpha", aux_loss_alpha, "sequence-wise MoE balance loss weight", {.min = 0.0});
    v("skip_uniform_groups", skip_uniform_groups,
      "leave groups whose rewards are all equal out of the update (they carry no gradient on-policy; not with "
      "partial rollouts or a GRPO KL term); entropy and logp_mismatch then cover the updated groups only, "
      "groups_skipped counts the rest");
    v("share_prefix", share_prefix,
      "lay a group's common prompt once per packed row, its rollouts' own tokens after it attending to it "
      "(the same log-probs and gradient as a copy per rollout, up to float rounding, for less compute)");
    v("minibatches", minibatches,
      "optimizer steps per iteration: the iteration's groups (whole groups, in order) are split into this many "
      "minibatches, each scored again by the current weights and stepped on in turn, so later ones are off-policy "
      "by the earlier steps (the K2 tau term / GRPO clip covers that); each step mixes in its own PTX rows",
      {.min = 1});
  }
};

struct UpdateStats {
  double policy_loss = 0;       // mean over groups of the objective
  double ptx_loss = 0;          // mean CE of the PTX rows' assistant tokens (0 without PTX)
  double ptx_coef = 0;
  double entropy = 0;           // mean next-token entropy at policy tokens (nats)
  double logp_mismatch = 0;     // mean |trainer logp - sampler logp| at policy tokens (staleness/fp32)
  double clip_fraction = 0;     // GRPO
  double kl = 0;                // GRPO with kl_coef > 0: mean k3 KL to the reference per policy token
  int64_t policy_tokens = 0, ptx_tokens = 0, groups = 0, truncated_rollouts = 0;
  // Rollout positions laid in the packed rows, and positions not laid because a group's prompt was laid
  // once per row instead of once per rollout (UpdateConfig::share_prefix).
  int64_t packed_positions = 0, shared_positions = 0;
  engine::StepStats opt;
  double load_imbalance = 0;    // max over MoE layers of max/mean expert load (last micro-batch with a backward)
};

// One optimizer step. `ptx` may be null or empty (no PTX); rows come from sft::PackExamples.
// `reference` (GRPO with kl_coef > 0, else ignored; required then): the frozen reference policy, same
// config as `model`; its log-probs of the rollout tokens are computed on the same packed rows (one
// extra forward pass per micro-batch) and feed the k3 KL term of GrpoLoss.
//
// Data parallel (`comm` with W > 1; every rank passes the same rollouts, PTX rows and weights): the
// packed rows' micro-batches are split into W contiguous blocks, rank r runs forward/backward on its
// block only, then the gradients are summed over the ranks (one all-reduce) and so are the statistics
// (the trainer log-probs of the rollouts each rank scored, token counts, entropy, mismatch). Every rank
// then runs one more forward of the last micro-batch (unless it ran it last), so QK-Clip and the router
// bias update read the same last forward as one process does; all ranks take the same step.
Expected<UpdateStats> PolicyUpdate(engine::Model<float>* model, engine::Optimizer<float>* opt, int64_t step,
                                   std::span<const Rollout> rollouts, const std::vector<sft::Row>* ptx,
                                   double ptx_coef, const UpdateConfig& cfg,
                                   engine::Model<float>* reference = nullptr,
                                   engine::dist::Communicator* comm = nullptr);

// The trainer's log-probs of every token of each rollout (entry j = log p(tokens[j] | tokens[<j]),
// entry 0 = 0), computed through the packed rows as PolicyUpdate's forward computes them. For tests and
// for re-scoring.
Expected<std::vector<std::vector<float>>> RolloutLogprobs(engine::Model<float>* model,
                                                          const std::vector<Rollout>& rollouts,
                                                          const UpdateConfig& cfg);

}  // namespace k2::rl
