// RL objectives over per-token log-probabilities: K2's (from Kimi K1.5) squared-residual policy loss and
// GRPO (clipped ratio, group-normalized advantages, optional k3 KL to a reference), each returning the
// loss and dL/dlogp_t per token — the signed per-token weights the engine's weighted loss consumes.
//
// Units: log-probabilities are natural logs of the sampled token under a policy, one per token of a
// sample; `mask` is 1 on the policy's own tokens (assistant turns) and 0 on prompts, tool results and
// user turns, which never contribute to a loss or a gradient. Pure functions: thread-safe, no
// allocation beyond the result. Mismatched lengths are InvalidArgument naming the sample and field.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/status.h"

namespace k2::rl {

// One sampled response y_i of a group (the K rollouts of one prompt x). Spans of equal length T_i.
struct SampleView {
  std::span<const float> logp;      // log pi_theta(y_t) under the policy being trained
  std::span<const float> old_logp;  // log pi_old(y_t): the policy that sampled (T=1, unmodified)
  std::span<const uint8_t> mask;    // 1 = policy token
  double reward = 0;
  std::span<const float> ref_logp;  // GRPO KL reference; may be empty when kl_coef == 0
};

struct LossResult {
  double loss = 0;
  // grad[i][t] = dL/dlogp_t of sample i (0 where mask == 0). To train with the engine's weighted
  // cross-entropy (sum_t w_t * (-log p_t) / normalizer, normalizer 1), use w_t = -grad[i][t].
  std::vector<std::vector<double>> grad;
  // Diagnostics.
  double mean_reward = 0;
  double mean_log_ratio = 0;   // mean over samples of sum_t m_t (logp - old_logp)
  double clip_fraction = 0;    // GRPO: share of policy tokens whose ratio was clipped
  double kl = 0;               // GRPO: mean k3 KL per policy token
  int64_t policy_tokens = 0;
};

// K2 / K1.5:  L = (1/K) sum_i (r_i - rbar - tau * (S_i - S_i^old))^2, S_i = sum_t m_t logp_t,
// rbar = mean_i r_i.  dL/dlogp_t(i) = -(2 tau / K) * e_i * m_t, with e_i the residual.
Expected<LossResult> K2Loss(std::span<const SampleView> group, double tau);

struct GrpoOptions {
  double clip_eps = 0.2;     // ratio clipped to [1-eps, 1+eps]
  double kl_coef = 0.0;      // beta of the k3 estimator exp(ref-logp) - (ref-logp) - 1; 0 = off
  double adv_eps = 1e-6;     // A_i = (r_i - mean) / (std + adv_eps), std the population std
  bool scale_by_std = true;  // false: A_i = r_i - mean (Dr. GRPO)
};

// Token-level GRPO: L = (1/N) sum_i sum_t m_t [ -min(rho_t A_i, clip(rho_t) A_i) + beta KL_t ], N the
// number of policy tokens of the group, rho_t = exp(logp_t - old_logp_t).
Expected<LossResult> GrpoLoss(std::span<const SampleView> group, const GrpoOptions& opt);

// Group-normalized advantages (exposed for tests and metrics).
std::vector<double> GroupAdvantages(std::span<const double> rewards, bool scale_by_std, double eps);

}  // namespace k2::rl
