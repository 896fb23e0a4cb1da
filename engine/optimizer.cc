// MuonClip: Muon (Newton–Schulz orthogonalized momentum) for 2-D hidden matrices, AdamW for embeddings,
// lm_head and vectors, QK-Clip after the update, the aux-loss-free router bias update, LR schedules
// and global gradient-norm clipping.
#include <algorithm>
#include <cmath>

#include "engine/engine.h"
#include "engine/ops_cpu.h"

namespace k2::engine {

using ops::I;

double LearningRate(const OptimizerConfig& c, int64_t step) {
  if (c.warmup_steps > 0 && step < c.warmup_steps)
    return c.lr * static_cast<double>(step + 1) / static_cast<double>(c.warmup_steps);
  if (c.schedule == "constant") return c.lr;
  const double span = std::max<double>(1.0, static_cast<double>(c.total_steps - c.warmup_steps));
  const double t = std::clamp(static_cast<double>(step - c.warmup_steps) / span, 0.0, 1.0);
  const double lo = c.lr * c.min_lr_ratio;
  if (c.schedule == "linear") return c.lr + (lo - c.lr) * t;
  return lo + (c.lr - lo) * 0.5 * (1.0 + std::cos(M_PI * t));  // cosine
}

namespace {
// Scratch-based NS so the step loop does not allocate: x, a, b, c, y sized for the largest matrix.
template <class T>
void NsInto(const T* G, I rows, I cols, I steps, T* out, T* x, T* a, T* b, T* y) {
  // Work on X [r, c] with r <= c (transpose tall matrices) so X X^T is the small Gram matrix.
  const bool tr = rows > cols;
  const I r = tr ? cols : rows, c = tr ? rows : cols;
  double nrm = 0;
  for (I i = 0; i < rows * cols; ++i) nrm += static_cast<double>(G[i]) * G[i];
  const T inv = static_cast<T>(1.0 / (std::sqrt(nrm) + 1e-7));
  if (tr) {
    for (I i = 0; i < rows; ++i)
      for (I j = 0; j < cols; ++j) x[j * rows + i] = G[i * cols + j] * inv;
  } else {
    for (I i = 0; i < rows * cols; ++i) x[i] = G[i] * inv;
  }
  const T ca = static_cast<T>(3.4445), cb = static_cast<T>(-4.7750), cc = static_cast<T>(2.0315);
  for (I s = 0; s < steps; ++s) {
    ops::Gemm<T>(false, true, r, r, c, T(1), x, c, x, c, T(0), a, r);       // A = X X^T   [r, r]
    ops::Gemm<T>(false, false, r, r, r, cc, a, r, a, r, T(0), b, r);        // B = c A A
    for (I i = 0; i < r * r; ++i) b[i] += cb * a[i];                        //   + b A
    std::copy(x, x + r * c, y);
    ops::Gemm<T>(false, false, r, c, r, T(1), b, r, y, c, ca, x, c);         // X = a X + B X
  }
  if (tr) {
    for (I i = 0; i < rows; ++i)
      for (I j = 0; j < cols; ++j) out[i * cols + j] = x[j * rows + i];
  } else {
    std::copy(x, x + rows * cols, out);
  }
}
}  // namespace

template <class T>
void NewtonSchulz(const T* G, int64_t rows, int64_t cols, int64_t steps, T* out) {
  const I r = std::min(rows, cols);
  std::vector<T> x(static_cast<size_t>(rows * cols)), a(static_cast<size_t>(r * r)), b(static_cast<size_t>(r * r)),
      y(static_cast<size_t>(rows * cols));
  NsInto(G, rows, cols, steps, out, x.data(), a.data(), b.data(), y.data());
}

template <class T>
int64_t ApplyQkClip(Model<T>* model, const std::vector<std::vector<double>>& max_logits, double tau) {
  int64_t clipped = 0;
  for (int64_t l = 0; l < model->config().num_hidden_layers; ++l) clipped += model->ClipQkHeads(l, max_logits[l], tau);
  return clipped;
}

template <class T>
Optimizer<T>::Optimizer(Model<T>* model, OptimizerConfig cfg) : model_(model), cfg_(std::move(cfg)) {
  auto& ps = model_->params();
  m_.resize(ps.size());
  v_.resize(ps.size());
  I max_n = 0, max_r = 0;
  for (size_t i = 0; i < ps.size(); ++i) {
    if (!ps[i].trainable) continue;
    m_[i].assign(ps[i].w.size(), T(0));
    if (!ps[i].muon) v_[i].assign(ps[i].w.size(), T(0));
    if (ps[i].muon) {
      max_n = std::max<I>(max_n, ps[i].numel());
      max_r = std::max<I>(max_r, std::min(ps[i].shape[0], ps[i].shape[1]));
    }
  }
  ns_x_.resize(static_cast<size_t>(max_n));
  ns_y_.resize(static_cast<size_t>(max_n));
  ns_c_.resize(static_cast<size_t>(max_n));
  ns_a_.resize(static_cast<size_t>(max_r * max_r));
  ns_b_.resize(static_cast<size_t>(max_r * max_r));
}

template <class T>
StepStats Optimizer<T>::Step(int64_t step) {
  StepStats st;
  auto& ps = model_->params();
  st.lr = LearningRate(cfg_, step);
  double sq = 0;
  for (auto& p : ps)
    for (auto g : p.g) sq += static_cast<double>(g) * g;
  st.grad_norm = std::sqrt(sq);
  // torch.nn.utils.clip_grad_norm_ convention: coef = max_norm / (norm + 1e-6), applied when below 1.
  const double coef = cfg_.grad_clip > 0 ? cfg_.grad_clip / (st.grad_norm + 1e-6) : 1.0;
  const double clip = coef < 1.0 ? coef : 1.0;
  const T lr = static_cast<T>(st.lr), wd = static_cast<T>(cfg_.weight_decay), gs = static_cast<T>(clip);
  const T b1 = static_cast<T>(cfg_.adam_beta1), b2 = static_cast<T>(cfg_.adam_beta2), eps = static_cast<T>(cfg_.adam_eps);
  const T bc1 = static_cast<T>(1.0 - std::pow(cfg_.adam_beta1, static_cast<double>(step + 1)));
  const T bc2 = static_cast<T>(1.0 - std::pow(cfg_.adam_beta2, static_cast<double>(step + 1)));
  const T mu = static_cast<T>(cfg_.muon_momentum);
  const T lr_adam = static_cast<T>(st.lr * cfg_.adamw_lr_scale);
  const ops::AdamWParams<T> adam{lr_adam, b1, b2, eps, wd, gs, bc1, bc2};
  for (size_t i = 0; i < ps.size(); ++i) {
    Param<T>& p = ps[i];
    if (!p.trainable) continue;
    const I n = p.numel();
    T* w = p.w.data();
    const T* g = p.g.data();
    T* m = m_[i].data();
    if (p.muon) {
      // M = mu M + G; U = G + mu M (Nesterov) or M; O = NS(U) * 0.2 sqrt(max(r, c)); W -= lr (O + wd W).
      // The elementwise steps are ops:: functions shared with the CPU backend (same expressions).
      T* u = ns_c_.data();
      ops::MuonMomentum<T>(g, m, u, n, mu, gs, cfg_.nesterov);
      const I rows = p.shape[0], cols = p.shape[1];
      NsInto(u, rows, cols, cfg_.ns_steps, u, ns_x_.data(), ns_a_.data(), ns_b_.data(), ns_y_.data());
      const T sc = static_cast<T>(0.2 * std::sqrt(static_cast<double>(std::max(rows, cols))));
      ops::MuonApply<T>(w, u, n, lr, sc, wd);
    } else {
      ops::AdamWUpdate<T>(w, g, m, v_[i].data(), n, adam);
    }
  }
  const auto& ml = model_->max_logits();
  for (auto& layer : ml)
    for (double v : layer) st.max_logit = std::max(st.max_logit, v);
  // The bias moves first so that a post-update replay routes as the next forward will.
  if (cfg_.bias_update_speed > 0) model_->UpdateRouterBias(cfg_.bias_update_speed);
  if (cfg_.qk_clip) {
    if (cfg_.qk_clip_measure == "step_forward") {
      st.clipped_heads = ApplyQkClip(model_, ml, cfg_.qk_clip_tau);
    } else {
      st.clipped_heads = model_->ReplayClipQk(cfg_.qk_clip_tau);
      for (auto& layer : model_->replayed_max_logits())
        for (double v : layer) st.max_logit_after = std::max(st.max_logit_after, v);
    }
  }
  return st;
}

template <class T>
std::vector<std::pair<std::string, std::vector<T>*>> Optimizer<T>::StateTensors() {
  std::vector<std::pair<std::string, std::vector<T>*>> out;
  auto& ps = model_->params();
  for (size_t i = 0; i < ps.size(); ++i) {
    if (!m_[i].empty()) out.emplace_back(ps[i].name + ".m", &m_[i]);
    if (!v_[i].empty()) out.emplace_back(ps[i].name + ".v", &v_[i]);
  }
  return out;
}

template class Optimizer<float>;
template class Optimizer<double>;
template void NewtonSchulz<float>(const float*, int64_t, int64_t, int64_t, float*);
template void NewtonSchulz<double>(const double*, int64_t, int64_t, int64_t, double*);
template int64_t ApplyQkClip<float>(Model<float>*, const std::vector<std::vector<double>>&, double);
template int64_t ApplyQkClip<double>(Model<double>*, const std::vector<std::vector<double>>&, double);

}  // namespace k2::engine
