// The model's public API (engine/engine.h: Model<T>, MlaAbsorbedAttention) over Model<T>::Impl
// (engine/model_impl.h), instantiated for float (training and serving) and double (checks).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "engine/engine.h"
#include "engine/model_impl.h"

namespace k2::engine {

template <class T>
Model<T>::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
template <class T>
Model<T>::~Model() = default;

template <class T>
Expected<std::unique_ptr<Model<T>>> Model<T>::Create(const ModelConfig& cfg, uint64_t seed) {
  K2_RETURN_IF_ERROR(ValidateModelConfig(cfg, "model config"));
  auto impl = std::make_unique<Impl>();
  impl->cfg = cfg;
  impl->Build();
  impl->Init(seed);
  return std::unique_ptr<Model<T>>(new Model<T>(std::move(impl)));
}

template <class T>
const ModelConfig& Model<T>::config() const { return impl_->cfg; }
template <class T>
std::vector<Param<T>>& Model<T>::params() { return impl_->params; }
template <class T>
const std::vector<Param<T>>& Model<T>::params() const { return impl_->params; }
template <class T>
Param<T>* Model<T>::Find(const std::string& name) { return impl_->Get(name); }
template <class T>
Expected<ForwardResult> Model<T>::Forward(const Batch& b, const ForwardOptions& opt) { return impl_->Forward(b, opt); }
template <class T>
void Model<T>::Backward() { impl_->Backward(); }
template <class T>
Status Model<T>::SetLossWeights(std::span<const float> w) { return impl_->SetLossWeights(w); }
template <class T>
void Model<T>::SetDistHooks(DistHooks hooks) { impl_->dist = std::move(hooks); }
template <class T>
void Model<T>::ZeroGrad() {
  for (auto& p : impl_->params) std::fill(p.g.begin(), p.g.end(), T(0));
}
template <class T>
const std::vector<T>& Model<T>::logits() const { return impl_->logits; }
template <class T>
const std::vector<T>& Model<T>::token_logprobs() const { return impl_->token_logp; }
template <class T>
const std::vector<T>& Model<T>::token_entropy() const { return impl_->token_ent; }
template <class T>
const std::vector<std::vector<double>>& Model<T>::max_logits() const { return impl_->max_logits; }
template <class T>
const std::vector<std::vector<int64_t>>& Model<T>::expert_load() const { return impl_->load; }
template <class T>
int64_t Model<T>::ClipQkHeads(int64_t layer, const std::vector<double>& max_logits, double tau) {
  K2_CHECK(layer >= 0 && layer < impl_->cfg.num_hidden_layers) << "ClipQkHeads: layer " << layer;
  K2_CHECK_EQ(static_cast<int64_t>(max_logits.size()), impl_->cfg.num_attention_heads);
  return impl_->ClipHeads(layer, max_logits, tau);
}
template <class T>
int64_t Model<T>::ReplayClipQk(double tau) { return impl_->ReplayClipQk(tau); }
template <class T>
const std::vector<std::vector<double>>& Model<T>::replayed_max_logits() const { return impl_->replay_ml; }
template <class T>
std::vector<int32_t> Model<T>::router_choice(int64_t layer) const {
  if (layer < 0 || layer >= static_cast<int64_t>(impl_->acts.size())) return {};
  return impl_->acts[layer].idx;
}
template <class T>
const std::vector<T>* Model<T>::Intermediate(const std::string& name) const {
  auto it = impl_->named.find(name);
  return it == impl_->named.end() ? nullptr : it->second;
}
template <class T>
std::vector<std::string> Model<T>::IntermediateNames() const {
  std::vector<std::string> out;
  for (auto& [k, v] : impl_->named) out.push_back(k);
  return out;
}

template <class T>
std::vector<T> Model<T>::AbsorbedAttention(int64_t l) const {
  const Impl& m = *impl_;
  const ModelConfig& c = m.cfg;
  K2_CHECK(m.have_forward && l >= 0 && l < c.num_hidden_layers) << "AbsorbedAttention needs a Forward";
  K2_CHECK(m.segs.empty() && m.pars.empty()) << "AbsorbedAttention does not mask segments (last Forward was packed)";
  const I H = c.num_attention_heads, dq = c.qk_head_dim(), dv = c.v_head_dim, dr = c.qk_rope_head_dim,
          rkv = c.kv_lora_rank;
  const LayerAct<T>& a = m.acts[l];
  std::vector<T> out(static_cast<size_t>(m.B * m.Tn * H * dv));
  for (I b = 0; b < m.B; ++b)
    MlaAbsorbedAttention(&a.q[b * m.Tn * H * dq], &a.ckv[b * m.Tn * rkv], &a.kpe[b * m.Tn * dr],
                         m.layers[l].kv_b->w.data(), m.Tn, m.Tn, H, c.qk_nope_head_dim, dr, dv, rkv, m.scale,
                         &out[b * m.Tn * H * dv]);
  return out;
}

template <class T>
void Model<T>::UpdateRouterBias(double gamma) {
  Impl& m = *impl_;
  for (size_t l = 0; l < m.layers.size(); ++l) {
    if (!m.layers[l].moe || m.load[l].empty()) continue;
    const auto& ld = m.load[l];
    double mean = 0;
    for (auto v : ld) mean += static_cast<double>(v);
    mean /= static_cast<double>(ld.size());
    auto& bias = m.layers[l].bias->w;
    for (size_t e = 0; e < ld.size(); ++e) {
      double d = mean - static_cast<double>(ld[e]);
      bias[e] += static_cast<T>(gamma * (d > 0 ? 1.0 : (d < 0 ? -1.0 : 0.0)));
    }
  }
}

template <class T>
void MlaAbsorbedAttention(const T* q, const T* ckv, const T* kpe, const T* w_kvb, int64_t Tq, int64_t Tk, int64_t H,
                          int64_t dn, int64_t dr, int64_t dv, int64_t rkv, double scale, T* out) {
  const MlaDims d{H, dn, dr, dv, rkv, scale};
  const I W = rkv + dr;
  std::vector<T> keys(static_cast<size_t>(Tk * W)), qlat(static_cast<size_t>(Tq * H * rkv)),
      olat(static_cast<size_t>(Tq * H * rkv)), s(static_cast<size_t>(Tq * H * Tk));
  for (I j = 0; j < Tk; ++j) {
    std::copy(ckv + j * rkv, ckv + (j + 1) * rkv, keys.begin() + j * W);
    std::copy(kpe + j * dr, kpe + (j + 1) * dr, keys.begin() + j * W + rkv);
  }
  AbsorbQ(q, Tq, w_kvb, d, qlat.data(), false);
  LatentAttention(qlat.data(), q + dn, keys.data(), Tq, Tk, d, s.data(), olat.data());
  ExpandO(olat.data(), Tq, w_kvb, d, out, false);
}

template class Model<float>;
template class Model<double>;
template void MlaAbsorbedAttention<float>(const float*, const float*, const float*, const float*, int64_t, int64_t,
                                          int64_t, int64_t, int64_t, int64_t, int64_t, double, float*);
template void MlaAbsorbedAttention<double>(const double*, const double*, const double*, const double*, int64_t,
                                           int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, double, double*);

}  // namespace k2::engine
