// K2 and GRPO policy losses with their analytic per-token gradients (rl/loss.h). The finite-difference
// tests in tests/rl/loss_test.cc are the reference for these formulas.
#include "rl/loss.h"

#include <algorithm>
#include <cmath>

namespace k2::rl {
namespace {

Status CheckGroup(std::span<const SampleView> group, bool need_ref) {
  if (group.empty()) return InvalidArgument("rl loss: empty group (need K >= 1 samples)");
  for (size_t i = 0; i < group.size(); ++i) {
    const SampleView& s = group[i];
    const std::string at = "rl loss: sample " + std::to_string(i) + ": ";
    if (s.old_logp.size() != s.logp.size())
      return InvalidArgument(at + "old_logp has " + std::to_string(s.old_logp.size()) + " entries, logp has " +
                             std::to_string(s.logp.size()));
    if (s.mask.size() != s.logp.size())
      return InvalidArgument(at + "mask has " + std::to_string(s.mask.size()) + " entries, logp has " +
                             std::to_string(s.logp.size()));
    if (need_ref && s.ref_logp.size() != s.logp.size())
      return InvalidArgument(at + "ref_logp has " + std::to_string(s.ref_logp.size()) + " entries, logp has " +
                             std::to_string(s.logp.size()) + " (kl_coef > 0 needs a reference)");
    if (!std::isfinite(s.reward)) return InvalidArgument(at + "reward is not finite");
  }
  return Status::Ok();
}

}  // namespace

Expected<LossResult> K2Loss(std::span<const SampleView> group, double tau) {
  K2_RETURN_IF_ERROR(CheckGroup(group, false));
  const double K = static_cast<double>(group.size());
  LossResult out;
  for (const auto& s : group) out.mean_reward += s.reward;
  out.mean_reward /= K;
  out.grad.resize(group.size());
  for (size_t i = 0; i < group.size(); ++i) {
    const SampleView& s = group[i];
    double dlog = 0;  // S_i - S_i^old, summed in double over policy tokens only
    for (size_t t = 0; t < s.logp.size(); ++t) {
      if (!s.mask[t]) continue;
      dlog += static_cast<double>(s.logp[t]) - static_cast<double>(s.old_logp[t]);
      ++out.policy_tokens;
    }
    const double e = s.reward - out.mean_reward - tau * dlog;
    out.loss += e * e / K;
    out.mean_log_ratio += dlog / K;
    const double g = -2.0 * tau * e / K;
    out.grad[i].assign(s.logp.size(), 0.0);
    for (size_t t = 0; t < s.logp.size(); ++t)
      if (s.mask[t]) out.grad[i][t] = g;
  }
  return out;
}

std::vector<double> GroupAdvantages(std::span<const double> rewards, bool scale_by_std, double eps) {
  std::vector<double> a(rewards.size(), 0.0);
  if (rewards.empty()) return a;
  double mean = 0;
  for (double r : rewards) mean += r;
  mean /= static_cast<double>(rewards.size());
  double var = 0;
  for (double r : rewards) var += (r - mean) * (r - mean);
  var /= static_cast<double>(rewards.size());
  const double denom = scale_by_std ? std::sqrt(var) + eps : 1.0;
  for (size_t i = 0; i < rewards.size(); ++i) a[i] = (rewards[i] - mean) / denom;
  return a;
}

Expected<LossResult> GrpoLoss(std::span<const SampleView> group, const GrpoOptions& opt) {
  K2_RETURN_IF_ERROR(CheckGroup(group, opt.kl_coef != 0.0));
  if (!(opt.clip_eps >= 0)) return InvalidArgument("grpo: clip_eps must be >= 0");
  LossResult out;
  std::vector<double> rewards;
  for (const auto& s : group) {
    rewards.push_back(s.reward);
    out.mean_reward += s.reward / static_cast<double>(group.size());
    for (uint8_t m : s.mask) out.policy_tokens += m ? 1 : 0;
  }
  const std::vector<double> adv = GroupAdvantages(rewards, opt.scale_by_std, opt.adv_eps);
  out.grad.resize(group.size());
  if (out.policy_tokens == 0) {
    for (size_t i = 0; i < group.size(); ++i) out.grad[i].assign(group[i].logp.size(), 0.0);
    return out;
  }
  const double N = static_cast<double>(out.policy_tokens);
  int64_t clipped = 0;
  for (size_t i = 0; i < group.size(); ++i) {
    const SampleView& s = group[i];
    const double A = adv[i];
    out.grad[i].assign(s.logp.size(), 0.0);
    double dlog = 0;
    for (size_t t = 0; t < s.logp.size(); ++t) {
      if (!s.mask[t]) continue;
      const double lr = static_cast<double>(s.logp[t]) - static_cast<double>(s.old_logp[t]);
      dlog += lr;
      const double rho = std::exp(lr);
      const double clipped_rho = std::clamp(rho, 1.0 - opt.clip_eps, 1.0 + opt.clip_eps);
      const double unclipped_obj = rho * A, clipped_obj = clipped_rho * A;
      double g;
      if (unclipped_obj <= clipped_obj) {  // min picks the unclipped term: d(-rho A)/dlogp = -rho A
        out.loss -= unclipped_obj / N;
        g = -rho * A;
      } else {  // the clipped term is constant in logp
        out.loss -= clipped_obj / N;
        g = 0.0;
        ++clipped;
      }
      if (opt.kl_coef != 0.0) {
        const double d = static_cast<double>(s.ref_logp[t]) - static_cast<double>(s.logp[t]);
        const double kl = std::exp(d) - d - 1.0;
        out.loss += opt.kl_coef * kl / N;
        out.kl += kl / N;
        g += opt.kl_coef * (1.0 - std::exp(d));
      }
      out.grad[i][t] = g / N;
    }
    out.mean_log_ratio += dlog / static_cast<double>(group.size());
  }
  out.clip_fraction = static_cast<double>(clipped) / N;
  return out;
}

}  // namespace k2::rl
