// Internal to the model's two translation units (engine/model.cc: the Model API and training;
// engine/cached_forward.cc: generation's absorbed route): Model<T>::Impl, the layer sequence both run.
//
// The DeepSeek-V3 / Kimi-K2 model on CPU: parameters by HF name, forward with loss (MLA attention,
// dense SwiGLU and routed MoE with a shared expert), backward for all of it, absorbed MLA, router bias.
// One implementation templated on the scalar type; instantiated for float (training) and double (checks).
//
// One layer sequence serves training and generation. A layer is AttentionIn (norm, q and latent
// projections, RoPE) -> one of two attention routes -> AttentionOut (o_proj and residual) -> Ffn (norm,
// dense MLP or router + experts + shared expert, residual). The naive route (Forward: full sequences,
// packed rows, segment parents) expands K and V per head with kv_b; the absorbed route (CachedForward:
// generation over the paged latent cache) attends in latent space, as DeepSeek-V3's attn_impl "naive"
// and "absorb". Both routes run the same projections, norms, router and MoE code.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/determinism.h"
#include "core/rng.h"
#include "engine/engine.h"
#include "engine/ops_cpu.h"

namespace k2::engine {

namespace model_detail {

using ops::I;

// One MLP (dense, shared or one expert): HF gate_proj/up_proj/down_proj.
template <class T>
struct MlpP {
  Param<T>* gate = nullptr;  // [width, D]
  Param<T>* up = nullptr;    // [width, D]
  Param<T>* down = nullptr;  // [D, width]
};

template <class T>
struct LayerP {
  Param<T>* in_norm = nullptr;  // input_layernorm [D]
  Param<T>* q_a = nullptr;      // q_a_proj [rq, D]
  Param<T>* q_a_norm = nullptr; // q_a_layernorm [rq]
  Param<T>* q_b = nullptr;      // q_b_proj [H*dq, rq]
  Param<T>* q = nullptr;        // q_proj [H*dq, D] (q_lora_rank null)
  Param<T>* kv_a = nullptr;     // kv_a_proj_with_mqa [rkv+dr, D]
  Param<T>* kv_a_norm = nullptr;// kv_a_layernorm [rkv]
  Param<T>* kv_b = nullptr;     // kv_b_proj [H*(dn+dv), rkv]
  Param<T>* o = nullptr;        // o_proj [D, H*dv]
  Param<T>* post_norm = nullptr;// post_attention_layernorm [D]
  bool moe = false;
  MlpP<T> dense;                // first_k_dense_replace layers
  Param<T>* router = nullptr;   // mlp.gate.weight [E, D]
  Param<T>* bias = nullptr;     // mlp.gate.e_score_correction_bias [E] (not trained by gradients)
  std::vector<MlpP<T>> experts; // mlp.experts.e.*
  MlpP<T> shared;               // mlp.shared_experts.* (width moe_intermediate_size * n_shared_experts)
};

// Saved activations of one layer for one (B, T) shape. Shapes in comments: N = B*T.
template <class T>
struct LayerAct {
  std::vector<T> xn, rstd1;             // [N, D], [N]
  std::vector<T> qa, qa_rstd, qa_n;     // [N, rq], [N], [N, rq]  (q_lora path)
  std::vector<T> q;                     // [N, H*dq], rope applied to the last dr of each head
  std::vector<T> kva;                   // [N, rkv+dr] (pre-norm latent | raw k_pe)
  std::vector<T> ckv, ckv_rstd;         // [N, rkv], [N]
  std::vector<T> kpe;                   // [N, dr], rope applied
  std::vector<T> kv;                    // [N, H*(dn+dv)] per head: k_nope then v
  std::vector<T> qh, kh, vh, p, oh;     // [B,H,T,dq] x2, [B,H,T,dv], [B,H,T,T], [B,H,T,dv]
  std::vector<T> o;                     // [N, H*dv]
  std::vector<T> h_mid;                 // [N, D] residual after attention
  std::vector<T> xn2, rstd2;            // [N, D], [N]
  std::vector<T> g, u, a;               // dense: [N, I]
  std::vector<T> logits, s;             // router: [N, E] pre-sigmoid, sigmoid scores
  std::vector<int32_t> idx;             // [N, K] chosen experts
  std::vector<T> wts;                   // [N, K] combine weights
  std::vector<int64_t> offs;            // [E+1] rows of each expert in the grouped buffers
  std::vector<int64_t> row_of_slot;     // [N*K]
  std::vector<int64_t> slot_of_row;     // [N*K]
  std::vector<T> xe, ge, ue, ae, ye;    // grouped by expert: [N*K, D], [N*K, Im] x3, [N*K, D]
  std::vector<T> sg, su, sa, sy;        // shared expert: [N, Is] x3, [N, D]
  std::vector<T> ffn_out;               // [N, D]
  std::vector<double> aux_f;            // [B, E] f_i per sequence (aux loss)
  bool row_blocked = false;             // the cached route: products through GemmRows' row blocks
};

template <class T>
void Resize(std::vector<T>& v, I n) {
  v.assign(static_cast<size_t>(n), T(0));
}

// Products over the rows of a generation step (every running sequence's rows: which rows share a step
// follows timing). In deterministic mode (core/determinism.h) a row's bits must not depend on the other
// rows: OpenBLAS picks its kernels by the row count M, so one row computed in calls of M = 3 and M = 12
// differs in the last bits. Calls of exactly kRowBlock rows, the tail padded with zero rows, give each
// row the same bits in any batch and at any position of its block (measured with OpenBLAS 0.3.21's
// Haswell/Zen sgemm at M = 4 and 8, not at 16 or 32; tests/rl/deterministic_test.cc pins it).
// Otherwise, and always for training, one call.
constexpr I kRowBlock = 8;

template <class T>
void GemmRows(bool blocked, bool tb, I M, I N, I K, const T* A, I lda, const T* B, I ldb, T beta, T* C, I ldc) {
  if (!blocked || !DeterministicMode()) {
    ops::Gemm<T>(false, tb, M, N, K, T(1), A, lda, B, ldb, beta, C, ldc);
    return;
  }
  const I full = M / kRowBlock * kRowBlock;
  for (I r = 0; r < full; r += kRowBlock)
    ops::Gemm<T>(false, tb, kRowBlock, N, K, T(1), A + r * lda, lda, B, ldb, beta, C + r * ldc, ldc);
  const I tail = M - full;
  if (tail == 0) return;
  thread_local std::vector<T> a, c;
  a.assign(static_cast<size_t>(kRowBlock * K), T(0));
  c.assign(static_cast<size_t>(kRowBlock * N), T(0));
  for (I r = 0; r < tail; ++r) {
    std::memcpy(a.data() + r * K, A + (full + r) * lda, sizeof(T) * static_cast<size_t>(K));
    if (beta != T(0)) std::memcpy(c.data() + r * N, C + (full + r) * ldc, sizeof(T) * static_cast<size_t>(N));
  }
  ops::Gemm<T>(false, tb, kRowBlock, N, K, T(1), a.data(), K, B, ldb, beta, c.data(), N);
  for (I r = 0; r < tail; ++r)
    std::memcpy(C + (full + r) * ldc, c.data() + r * N, sizeof(T) * static_cast<size_t>(N));
}

// Shapes of absorbed MLA (q rows [H, dn + dr] per token, W_UK/W_UV inside kv_b [H*(dn+dv), rkv]).
struct MlaDims {
  I H, dn, dr, dv, rkv;
  double scale;
};

// q_lat [N*H, rkv]: row n*H + h = q_nope[n, h] W_UK_h.
template <class T>
void AbsorbQ(const T* q, I N, const T* wkvb, const MlaDims& d, T* qlat, bool blocked) {
  const I dq = d.dn + d.dr;
  for (I h = 0; h < d.H; ++h)
    GemmRows<T>(blocked, false, N, d.rkv, d.dn, q + h * dq, d.H * dq, wkvb + h * (d.dn + d.dv) * d.rkv, d.rkv, T(0),
                qlat + h * d.rkv, d.H * d.rkv);
}

// o [N, H*dv]: o[n, h] = o_lat[n, h] W_UV_h^T.
template <class T>
void ExpandO(const T* olat, I N, const T* wkvb, const MlaDims& d, T* o, bool blocked) {
  for (I h = 0; h < d.H; ++h)
    GemmRows<T>(blocked, true, N, d.dv, d.rkv, olat + h * d.rkv, d.H * d.rkv, wkvb + (h * (d.dn + d.dv) + d.dn) * d.rkv,
                d.rkv, T(0), o + h * d.dv, d.H * d.dv);
}

// Absorbed causal attention of n query tokens at positions Tk-n .. Tk-1 of one sequence over its keys
// [Tk, rkv + dr] (latent | roped k_pe): M = n*H rows r = i*H + h of q_lat [M, rkv] and q_pe (row r at
// qpe + r*(dn+dr)); S [M, Tk] scratch; o_lat [M, rkv] = softmax(scale (q_lat c^T + q_pe k_pe^T)) c.
template <class T>
void LatentAttention(const T* qlat, const T* qpe, const T* keys, I n, I Tk, const MlaDims& d, T* S, T* olat) {
  const I M = n * d.H, W = d.rkv + d.dr, start = Tk - n;
  const T sc = static_cast<T>(d.scale);
  ops::Gemm<T>(false, true, M, Tk, d.rkv, T(1), qlat, d.rkv, keys, W, T(0), S, Tk);
  ops::Gemm<T>(false, true, M, Tk, d.dr, T(1), qpe, d.dn + d.dr, keys + d.rkv, W, T(1), S, Tk);
  for (I r = 0; r < M; ++r) {
    T* srow = S + r * Tk;
    const I last = start + r / d.H;  // causal: query i sees keys 0..start+i
    T m = -std::numeric_limits<T>::infinity();
    for (I j = 0; j <= last; ++j) m = std::max(m, srow[j] * sc);
    T z = 0;
    for (I j = 0; j <= last; ++j) z += (srow[j] = std::exp(srow[j] * sc - m));
    const T inv = T(1) / z;
    for (I j = 0; j <= last; ++j) srow[j] *= inv;
    for (I j = last + 1; j < Tk; ++j) srow[j] = 0;
  }
  ops::Gemm<T>(false, false, M, d.rkv, Tk, T(1), S, Tk, keys, W, T(0), olat, d.rkv);
}

// Scratch of the router and the MoE dispatch for up to N rows.
template <class T>
struct MoeScratch {
  std::vector<T> sb, work;   // [N, E] biased scores; RouterTopK's [E + n_group]
  std::vector<I> iwork;      // [E + n_group]
  void Size(I N, I E, I n_group) {
    Resize(sb, std::max<I>(N * E, 1)), Resize(work, E + n_group);
    iwork.assign(static_cast<size_t>(E + n_group), 0);
  }
};

}  // namespace model_detail

using namespace model_detail;  // this header is included by the model's own .cc files only

template <class T>
struct Model<T>::Impl {
  ModelConfig cfg;
  std::vector<Param<T>> params;
  std::vector<LayerP<T>> layers;
  Param<T>* embed = nullptr;
  Param<T>* final_norm = nullptr;
  Param<T>* lm_head = nullptr;
  std::vector<double> inv_freq;
  double attn_factor = 1, scale = 1;

  // Shape-dependent state.
  I B = 0, Tn = 0;
  std::vector<LayerAct<T>> acts;
  std::vector<std::vector<T>> hidden;   // [L+1][N, D]: hidden[l] is the input of layer l
  std::vector<T> hn, rstd_f, logits;    // final norm [N, D], [N]; logits [N, V]
  std::vector<int32_t> pos, segs, pars, tokens, targets;  // segs empty = no packing; pars empty = no parents
  std::vector<float> weights;
  std::vector<T> token_logp, token_ent;              // [N] of the last Forward
  double weight_sum = 0, loss_norm = 0, aux_alpha = 0;
  // Step-loop scratch (sized in Ensure, so steady-state steps never allocate).
  MoeScratch<T> moe_ws;            // router and dispatch scratch [N, E]
  std::vector<double> aux_pi;      // sequence-wise aux loss P_i [E]
  // Post-update QK-Clip replay (ReplayClipQk).
  bool replaying = false;
  std::vector<int64_t> replay_load;                 // [E]
  std::vector<std::vector<double>> replay_ml;       // [L][H]
  bool have_forward = false;
  bool signed_weights = false;  // the last Forward had a loss_normalizer (signed weights allowed)
  std::vector<std::vector<double>> max_logits;
  std::vector<std::vector<int64_t>> load;
  std::map<std::string, std::vector<T>*> named;
  typename Model<T>::DistHooks dist;  // data-parallel callbacks (SetDistHooks); empty = single process
  void Ready(const Param<T>* p) {
    if (dist.grad_ready && p != nullptr && p->trainable) dist.grad_ready(p - params.data());
  }
  void ReadyMlp(const MlpP<T>& m) { Ready(m.gate), Ready(m.up), Ready(m.down); }
  // Announces layer l's FFN (after FfnBackward) or attention (after AttentionBackward) parameters.
  void ReadyFfn(I l) {
    const LayerP<T>& P = layers[l];
    Ready(P.post_norm);
    if (!P.moe) return ReadyMlp(P.dense);
    if (P.shared.gate != nullptr) ReadyMlp(P.shared);
    for (const auto& e : P.experts) ReadyMlp(e);
    Ready(P.router);
  }
  void ReadyAttention(I l) {
    const LayerP<T>& P = layers[l];
    for (const Param<T>* p : {P.o, P.kv_b, P.kv_a_norm, P.kv_a, P.q_b, P.q_a_norm, P.q_a, P.q, P.in_norm}) Ready(p);
  }

  // Backward scratch, shared by all layers.
  std::vector<T> dh, dxn, dq_buf, dqa_n, dqa, dkva, dckv, dkpe, dkv, dqh, dkh, dvh, doh, ds, dO;
  std::vector<T> dg, du, da, dxe, dye, dge, due, dae, dsg, dsu, dsa, dlogits, dr_s, dr_logits, dwts;

  Param<T>* Add(const std::string& name, std::vector<int64_t> shape, bool muon, bool trainable = true) {
    Param<T> p;
    p.name = name;
    p.shape = std::move(shape);
    I n = 1;
    for (auto d : p.shape) n *= d;
    p.w.assign(static_cast<size_t>(n), T(0));
    if (trainable) p.g.assign(static_cast<size_t>(n), T(0));
    p.trainable = trainable;
    p.muon = muon;
    params.push_back(std::move(p));
    return nullptr;  // pointers are resolved after all params exist (the vector may reallocate)
  }
  Param<T>* Get(const std::string& name) {
    for (auto& p : params)
      if (p.name == name) return &p;
    return nullptr;
  }

  void Build() {
    const ModelConfig& c = cfg;
    const I D = c.hidden_size, H = c.num_attention_heads, dq = c.qk_head_dim(), dn = c.qk_nope_head_dim,
            dv = c.v_head_dim, dr = c.qk_rope_head_dim, rkv = c.kv_lora_rank;
    Add("model.embed_tokens.weight", {c.vocab_size, D}, false);
    for (I l = 0; l < c.num_hidden_layers; ++l) {
      std::string p = "model.layers." + std::to_string(l) + ".";
      Add(p + "input_layernorm.weight", {D}, false);
      if (c.q_lora_rank) {
        I rq = *c.q_lora_rank;
        Add(p + "self_attn.q_a_proj.weight", {rq, D}, true);
        Add(p + "self_attn.q_a_layernorm.weight", {rq}, false);
        Add(p + "self_attn.q_b_proj.weight", {H * dq, rq}, true);
      } else {
        Add(p + "self_attn.q_proj.weight", {H * dq, D}, true);
      }
      Add(p + "self_attn.kv_a_proj_with_mqa.weight", {rkv + dr, D}, true);
      Add(p + "self_attn.kv_a_layernorm.weight", {rkv}, false);
      Add(p + "self_attn.kv_b_proj.weight", {H * (dn + dv), rkv}, true);
      Add(p + "self_attn.o_proj.weight", {D, H * dv}, true);
      Add(p + "post_attention_layernorm.weight", {D}, false);
      auto mlp = [&](const std::string& pre, I width) {
        Add(pre + "gate_proj.weight", {width, D}, true);
        Add(pre + "up_proj.weight", {width, D}, true);
        Add(pre + "down_proj.weight", {D, width}, true);
      };
      if (!c.is_moe_layer(l)) {
        mlp(p + "mlp.", c.intermediate_size);
      } else {
        Add(p + "mlp.gate.weight", {c.n_routed_experts, D}, true);
        Add(p + "mlp.gate.e_score_correction_bias", {c.n_routed_experts}, false, /*trainable=*/false);
        for (I e = 0; e < c.n_routed_experts; ++e)
          mlp(p + "mlp.experts." + std::to_string(e) + ".", c.moe_intermediate_size);
        if (c.n_shared_experts > 0) mlp(p + "mlp.shared_experts.", c.moe_intermediate_size * c.n_shared_experts);
      }
    }
    Add("model.norm.weight", {D}, false);
    Add("lm_head.weight", {c.vocab_size, D}, false);

    embed = Get("model.embed_tokens.weight");
    final_norm = Get("model.norm.weight");
    lm_head = Get("lm_head.weight");
    layers.resize(static_cast<size_t>(c.num_hidden_layers));
    for (I l = 0; l < c.num_hidden_layers; ++l) {
      std::string p = "model.layers." + std::to_string(l) + ".";
      LayerP<T>& L = layers[l];
      L.in_norm = Get(p + "input_layernorm.weight");
      L.q_a = Get(p + "self_attn.q_a_proj.weight");
      L.q_a_norm = Get(p + "self_attn.q_a_layernorm.weight");
      L.q_b = Get(p + "self_attn.q_b_proj.weight");
      L.q = Get(p + "self_attn.q_proj.weight");
      L.kv_a = Get(p + "self_attn.kv_a_proj_with_mqa.weight");
      L.kv_a_norm = Get(p + "self_attn.kv_a_layernorm.weight");
      L.kv_b = Get(p + "self_attn.kv_b_proj.weight");
      L.o = Get(p + "self_attn.o_proj.weight");
      L.post_norm = Get(p + "post_attention_layernorm.weight");
      L.moe = c.is_moe_layer(l);
      auto mlp = [&](const std::string& pre) {
        return MlpP<T>{Get(pre + "gate_proj.weight"), Get(pre + "up_proj.weight"), Get(pre + "down_proj.weight")};
      };
      if (!L.moe) {
        L.dense = mlp(p + "mlp.");
      } else {
        L.router = Get(p + "mlp.gate.weight");
        L.bias = Get(p + "mlp.gate.e_score_correction_bias");
        for (I e = 0; e < c.n_routed_experts; ++e) L.experts.push_back(mlp(p + "mlp.experts." + std::to_string(e) + "."));
        if (c.n_shared_experts > 0) L.shared = mlp(p + "mlp.shared_experts.");
      }
    }
    inv_freq = c.inv_freq();
    attn_factor = c.rope_attention_factor();
    scale = c.softmax_scale();
    max_logits.assign(static_cast<size_t>(c.num_hidden_layers), std::vector<double>(static_cast<size_t>(H), 0.0));
    replay_ml = max_logits;
    load.assign(static_cast<size_t>(c.num_hidden_layers), {});
  }

  void Init(uint64_t seed) {
    Rng rng(seed);
    for (auto& p : params) {
      bool is_norm = p.shape.size() == 1 && p.trainable;
      for (auto& v : p.w) {
        if (!p.trainable) v = T(0);
        else if (is_norm) v = T(1);
        else v = static_cast<T>(rng.Normal() * cfg.initializer_range);
      }
    }
  }

  void Ensure(I b, I t) {
    if (b == B && t == Tn) return;
    B = b;
    Tn = t;
    const ModelConfig& c = cfg;
    const I N = B * Tn, D = c.hidden_size, H = c.num_attention_heads, dq = c.qk_head_dim(),
            dn = c.qk_nope_head_dim, dv = c.v_head_dim, dr = c.qk_rope_head_dim, rkv = c.kv_lora_rank,
            rq = c.q_lora_rank.value_or(0), E = c.n_routed_experts, K = c.num_experts_per_tok,
            Im = c.moe_intermediate_size, Is = c.moe_intermediate_size * c.n_shared_experts;
    named.clear();
    acts.clear();
    acts.resize(static_cast<size_t>(c.num_hidden_layers));
    hidden.assign(static_cast<size_t>(c.num_hidden_layers + 1), std::vector<T>(static_cast<size_t>(N * D)));
    named["embed"] = &hidden[0];
    I maxw = 0;
    for (I l = 0; l < c.num_hidden_layers; ++l) {
      LayerAct<T>& a = acts[l];
      std::string p = "layers." + std::to_string(l) + ".";
      Resize(a.xn, N * D), Resize(a.rstd1, N);
      if (rq) Resize(a.qa, N * rq), Resize(a.qa_rstd, N), Resize(a.qa_n, N * rq);
      Resize(a.q, N * H * dq), Resize(a.kva, N * (rkv + dr)), Resize(a.ckv, N * rkv), Resize(a.ckv_rstd, N);
      Resize(a.kpe, N * dr), Resize(a.kv, N * H * (dn + dv));
      Resize(a.qh, N * H * dq), Resize(a.kh, N * H * dq), Resize(a.vh, N * H * dv);
      Resize(a.p, B * H * Tn * Tn), Resize(a.oh, N * H * dv), Resize(a.o, N * H * dv);
      Resize(a.h_mid, N * D), Resize(a.xn2, N * D), Resize(a.rstd2, N), Resize(a.ffn_out, N * D);
      named[p + "attn_norm"] = &a.xn;
      if (rq) named[p + "attn.q_a"] = &a.qa, named[p + "attn.q_a_norm"] = &a.qa_n;
      named[p + "attn.q"] = &a.q;
      named[p + "attn.kv_a"] = &a.kva;
      named[p + "attn.c_kv"] = &a.ckv;
      named[p + "attn.k_pe"] = &a.kpe;
      named[p + "attn.kv"] = &a.kv;
      named[p + "attn.probs"] = &a.p;
      named[p + "attn.o"] = &a.o;
      named[p + "h_mid"] = &a.h_mid;
      named[p + "ffn_norm"] = &a.xn2;
      named[p + "ffn_out"] = &a.ffn_out;
      named[p + "out"] = &hidden[l + 1];
      if (!layers[l].moe) {
        Resize(a.g, N * c.intermediate_size), Resize(a.u, N * c.intermediate_size), Resize(a.a, N * c.intermediate_size);
        maxw = std::max(maxw, c.intermediate_size);
      } else {
        Resize(a.logits, N * E), Resize(a.s, N * E);
        a.idx.assign(static_cast<size_t>(N * K), 0);
        Resize(a.wts, N * K);
        a.offs.assign(static_cast<size_t>(E + 1), 0);
        a.row_of_slot.assign(static_cast<size_t>(N * K), 0);
        a.slot_of_row.assign(static_cast<size_t>(N * K), 0);
        Resize(a.xe, N * K * D), Resize(a.ge, N * K * Im), Resize(a.ue, N * K * Im), Resize(a.ae, N * K * Im);
        Resize(a.ye, N * K * D);
        if (Is) Resize(a.sg, N * Is), Resize(a.su, N * Is), Resize(a.sa, N * Is), Resize(a.sy, N * D);
        a.aux_f.assign(static_cast<size_t>(B * E), 0.0);
        named[p + "mlp.router_logits"] = &a.logits;
        named[p + "mlp.scores"] = &a.s;
        named[p + "mlp.combine_weights"] = &a.wts;
        maxw = std::max(maxw, Is);
      }
    }
    Resize(hn, N * D), Resize(rstd_f, N), Resize(logits, N * c.vocab_size);
    named["final_norm"] = &hn;
    named["logits"] = &logits;
    pos.resize(static_cast<size_t>(N));
    for (I n = 0; n < N; ++n) pos[n] = static_cast<int32_t>(n % Tn);
    segs.reserve(static_cast<size_t>(N));
    pars.reserve(static_cast<size_t>(N));
    token_logp.assign(static_cast<size_t>(N), T(0));
    token_ent.assign(static_cast<size_t>(N), T(0));
    moe_ws.Size(N, E, c.n_group);
    aux_pi.assign(static_cast<size_t>(E), 0.0);
    replay_load.assign(static_cast<size_t>(E), 0);

    Resize(dh, N * D), Resize(dxn, N * D), Resize(dq_buf, N * H * dq), Resize(dqa_n, N * std::max<I>(rq, 1));
    Resize(dqa, N * std::max<I>(rq, 1)), Resize(dkva, N * (rkv + dr)), Resize(dckv, N * rkv), Resize(dkpe, N * dr);
    Resize(dkv, N * H * (dn + dv)), Resize(dqh, N * H * dq), Resize(dkh, N * H * dq), Resize(dvh, N * H * dv);
    Resize(doh, N * H * dv), Resize(ds, Tn * Tn), Resize(dO, N * H * dv);
    Resize(dg, N * std::max<I>(maxw, 1)), Resize(du, N * std::max<I>(maxw, 1)), Resize(da, N * std::max<I>(maxw, 1));
    Resize(dxe, N * K * D), Resize(dye, N * K * D), Resize(dge, N * K * Im), Resize(due, N * K * Im);
    Resize(dae, N * K * Im), Resize(dlogits, N * c.vocab_size), Resize(dr_s, N * E), Resize(dr_logits, N * E);
    Resize(dwts, N * K);
  }

  // ---- the layer sequence (both routes) ----
  // y[N, out] (+)= x[N, in] W^T: ops::Linear, or row blocks on the cached route in deterministic mode.
  void Lin(const LayerAct<T>& a, const T* x, const T* W, T* y, I N, I in, I out, bool accumulate = false) {
    GemmRows<T>(a.row_blocked, true, N, out, in, x, in, W, in, accumulate ? T(1) : T(0), y, out);
  }
  void Mlp(const LayerAct<T>& act, const MlpP<T>& m, const T* x, I N, I D, I W, T* g, T* u, T* a, T* y) {
    Lin(act, x, m.gate->w.data(), g, N, D, W);
    Lin(act, x, m.up->w.data(), u, N, D, W);
    ops::SwiGlu(g, u, a, N * W);
    Lin(act, a, m.down->w.data(), y, N, W, D);
  }
  // dy [N, D] -> dx (overwrite or accumulate); weight grads accumulate.
  void MlpBackward(const MlpP<T>& m, const T* x, I N, I D, I W, const T* g, const T* u, const T* a, const T* dy,
                   T* dx, bool dx_acc, T* dg_, T* du_, T* da_) {
    ops::LinearBackward(a, m.down->w.data(), dy, da_, m.down->g.data(), N, W, D, false);
    ops::SwiGluBackward(g, u, da_, dg_, du_, N * W);
    ops::LinearBackward(x, m.gate->w.data(), dg_, dx, m.gate->g.data(), N, D, W, dx_acc);
    ops::LinearBackward(x, m.up->w.data(), du_, dx, m.up->g.data(), N, D, W, true);
  }


  // Attention's input side for N rows x [N, D] at RoPE positions p: a.xn, the query (q_a -> norm -> q_b,
  // or q_proj) with RoPE on the last dr of each head (a.q), the latent a.kva = [c_kv pre-norm | raw k_pe],
  // the normalized latent a.ckv and the roped shared key a.kpe.
  void AttentionIn(I l, LayerAct<T>& a, const T* x, I N, const int32_t* p) {
    const ModelConfig& c = cfg;
    LayerP<T>& P = layers[l];
    const I D = c.hidden_size, H = c.num_attention_heads, dq = c.qk_head_dim(), dn = c.qk_nope_head_dim,
            dr = c.qk_rope_head_dim, rkv = c.kv_lora_rank;
    ops::RmsNorm(x, D, P.in_norm->w.data(), a.xn.data(), a.rstd1.data(), N, D, c.rms_norm_eps);
    if (c.q_lora_rank) {
      const I rq = *c.q_lora_rank;
      Lin(a, a.xn.data(), P.q_a->w.data(), a.qa.data(), N, D, rq);                         // [N, rq]
      ops::RmsNorm(a.qa.data(), rq, P.q_a_norm->w.data(), a.qa_n.data(), a.qa_rstd.data(), N, rq, c.rms_norm_eps);
      Lin(a, a.qa_n.data(), P.q_b->w.data(), a.q.data(), N, rq, H * dq);                   // [N, H*dq]
    } else {
      Lin(a, a.xn.data(), P.q->w.data(), a.q.data(), N, D, H * dq);                        // [N, H*dq]
    }
    Lin(a, a.xn.data(), P.kv_a->w.data(), a.kva.data(), N, D, rkv + dr);                   // [N, rkv+dr]
    ops::RmsNorm(a.kva.data(), rkv + dr, P.kv_a_norm->w.data(), a.ckv.data(), a.ckv_rstd.data(), N, rkv,
                 c.rms_norm_eps);                                                          // [N, rkv]
    for (I n = 0; n < N; ++n)
      std::memcpy(&a.kpe[n * dr], &a.kva[n * (rkv + dr) + rkv], sizeof(T) * static_cast<size_t>(dr));
    ops::Rope(a.q.data() + dn, N, H, H * dq, dq, p, inv_freq.data(), dr, c.rope_interleave, attn_factor, false);
    ops::Rope(a.kpe.data(), N, 1, dr, 0, p, inv_freq.data(), dr, c.rope_interleave, attn_factor, false);
  }

  // The naive route over the Forward's B x Tn batch: K and V per head from kv_b, causal attention with
  // segments and parents into a.o; each head's largest visible scaled logit into ml.
  void NaiveAttention(I l, LayerAct<T>& a, std::vector<double>& ml) {
    const ModelConfig& c = cfg;
    LayerP<T>& P = layers[l];
    const I N = B * Tn, H = c.num_attention_heads, dq = c.qk_head_dim(), dn = c.qk_nope_head_dim,
            dv = c.v_head_dim, dr = c.qk_rope_head_dim, rkv = c.kv_lora_rank;
    Lin(a, a.ckv.data(), P.kv_b->w.data(), a.kv.data(), N, rkv, H * (dn + dv));            // [N, H*(dn+dv)]
    // Gather per (sequence, head) contiguous blocks: qh/kh [B,H,T,dq], vh [B,H,T,dv].
    for (I b = 0; b < B; ++b)
      for (I t = 0; t < Tn; ++t) {
        const I n = b * Tn + t;
        for (I h = 0; h < H; ++h) {
          const I bh = (b * H + h) * Tn + t;
          std::memcpy(&a.qh[bh * dq], &a.q[n * H * dq + h * dq], sizeof(T) * static_cast<size_t>(dq));
          std::memcpy(&a.kh[bh * dq], &a.kv[n * H * (dn + dv) + h * (dn + dv)], sizeof(T) * static_cast<size_t>(dn));
          std::memcpy(&a.kh[bh * dq + dn], &a.kpe[n * dr], sizeof(T) * static_cast<size_t>(dr));
          std::memcpy(&a.vh[bh * dv], &a.kv[n * H * (dn + dv) + h * (dn + dv) + dn], sizeof(T) * static_cast<size_t>(dv));
        }
      }
    std::fill(ml.begin(), ml.end(), -std::numeric_limits<double>::infinity());
    for (I b = 0; b < B; ++b)
      for (I h = 0; h < H; ++h) {
        const I bh = b * H + h;
        double m = ops::CausalAttention(&a.qh[bh * Tn * dq], &a.kh[bh * Tn * dq], &a.vh[bh * Tn * dv],
                                        &a.p[bh * Tn * Tn], &a.oh[bh * Tn * dv], Tn, dq, dv, scale,
                                        segs.empty() ? nullptr : &segs[b * Tn], pars.empty() ? nullptr : &pars[b * Tn]);
        ml[h] = std::max(ml[h], m);
      }
    for (I b = 0; b < B; ++b)
      for (I t = 0; t < Tn; ++t)
        for (I h = 0; h < H; ++h)
          std::memcpy(&a.o[(b * Tn + t) * H * dv + h * dv], &a.oh[((b * H + h) * Tn + t) * dv],
                      sizeof(T) * static_cast<size_t>(dv));
  }

  // h_mid = x + o W_o^T.
  void AttentionOut(I l, LayerAct<T>& a, const T* x, I N) {
    const ModelConfig& c = cfg;
    const I D = c.hidden_size, Hdv = c.num_attention_heads * c.v_head_dim;
    std::copy(x, x + N * D, a.h_mid.begin());
    Lin(a, a.o.data(), layers[l].o->w.data(), a.h_mid.data(), N, Hdv, D, /*accumulate=*/true);
  }

  // Training's attention of layer l: the per-head max logits go into ml (max_logits[l] or the replay's).
  void Attention(I l) { Attention(l, max_logits[l]); }
  void Attention(I l, std::vector<double>& ml) {
    LayerAct<T>& a = acts[l];
    AttentionIn(l, a, hidden[l].data(), B * Tn, pos.data());
    NaiveAttention(l, a, ml);
    AttentionOut(l, a, hidden[l].data(), B * Tn);
  }

  void AttentionBackward(I l) {
    // In: dh = dL/d h_mid. Out: dh = dL/d hidden[l].
    const ModelConfig& c = cfg;
    LayerP<T>& P = layers[l];
    LayerAct<T>& a = acts[l];
    const I N = B * Tn, D = c.hidden_size, H = c.num_attention_heads, dq_ = c.qk_head_dim(),
            dn = c.qk_nope_head_dim, dv = c.v_head_dim, dr = c.qk_rope_head_dim, rkv = c.kv_lora_rank;
    ops::LinearBackward(a.o.data(), P.o->w.data(), dh.data(), dO.data(), P.o->g.data(), N, H * dv, D, false);
    for (I b = 0; b < B; ++b)
      for (I t = 0; t < Tn; ++t)
        for (I h = 0; h < H; ++h)
          std::memcpy(&doh[((b * H + h) * Tn + t) * dv], &dO[(b * Tn + t) * H * dv + h * dv],
                      sizeof(T) * static_cast<size_t>(dv));
    for (I bh = 0; bh < B * H; ++bh)
      ops::CausalAttentionBackward(&a.qh[bh * Tn * dq_], &a.kh[bh * Tn * dq_], &a.vh[bh * Tn * dv], &a.p[bh * Tn * Tn],
                                   &doh[bh * Tn * dv], &dqh[bh * Tn * dq_], &dkh[bh * Tn * dq_], &dvh[bh * Tn * dv],
                                   ds.data(), Tn, dq_, dv, scale, segs.empty() ? nullptr : &segs[(bh / H) * Tn],
                                   pars.empty() ? nullptr : &pars[(bh / H) * Tn]);
    std::fill(dkpe.begin(), dkpe.end(), T(0));
    for (I b = 0; b < B; ++b)
      for (I t = 0; t < Tn; ++t) {
        const I n = b * Tn + t;
        for (I h = 0; h < H; ++h) {
          const I bh = (b * H + h) * Tn + t;
          std::memcpy(&dq_buf[n * H * dq_ + h * dq_], &dqh[bh * dq_], sizeof(T) * static_cast<size_t>(dq_));
          std::memcpy(&dkv[n * H * (dn + dv) + h * (dn + dv)], &dkh[bh * dq_], sizeof(T) * static_cast<size_t>(dn));
          std::memcpy(&dkv[n * H * (dn + dv) + h * (dn + dv) + dn], &dvh[bh * dv], sizeof(T) * static_cast<size_t>(dv));
          for (I j = 0; j < dr; ++j) dkpe[n * dr + j] += dkh[bh * dq_ + dn + j];  // k_pe is shared by all heads
        }
      }
    // RoPE backward: the transpose rotation.
    ops::Rope(dq_buf.data() + dn, N, H, H * dq_, dq_, pos.data(), inv_freq.data(), dr, c.rope_interleave, attn_factor, true);
    ops::Rope(dkpe.data(), N, 1, dr, 0, pos.data(), inv_freq.data(), dr, c.rope_interleave, attn_factor, true);
    // kv_b: dckv = dkv W_kvb.
    ops::LinearBackward(a.ckv.data(), P.kv_b->w.data(), dkv.data(), dckv.data(), P.kv_b->g.data(), N, rkv,
                        H * (dn + dv), false);
    // kv_a output gradient: [d latent pre-norm | d raw k_pe].
    ops::RmsNormBackward(a.kva.data(), rkv + dr, P.kv_a_norm->w.data(), a.ckv_rstd.data(), dckv.data(),
                         dkva.data(), rkv + dr, P.kv_a_norm->g.data(), N, rkv, false);
    for (I n = 0; n < N; ++n)
      std::memcpy(&dkva[n * (rkv + dr) + rkv], &dkpe[n * dr], sizeof(T) * static_cast<size_t>(dr));
    ops::LinearBackward(a.xn.data(), P.kv_a->w.data(), dkva.data(), dxn.data(), P.kv_a->g.data(), N, D, rkv + dr,
                        false);
    if (c.q_lora_rank) {
      const I rq = *c.q_lora_rank;
      ops::LinearBackward(a.qa_n.data(), P.q_b->w.data(), dq_buf.data(), dqa_n.data(), P.q_b->g.data(), N, rq, H * dq_,
                          false);
      ops::RmsNormBackward(a.qa.data(), rq, P.q_a_norm->w.data(), a.qa_rstd.data(), dqa_n.data(), dqa.data(), rq,
                           P.q_a_norm->g.data(), N, rq, false);
      ops::LinearBackward(a.xn.data(), P.q_a->w.data(), dqa.data(), dxn.data(), P.q_a->g.data(), N, D, rq, true);
    } else {
      ops::LinearBackward(a.xn.data(), P.q->w.data(), dq_buf.data(), dxn.data(), P.q->g.data(), N, D, H * dq_, true);
    }
    ops::RmsNormBackward(hidden[l].data(), D, P.in_norm->w.data(), a.rstd1.data(), dxn.data(), dh.data(), D,
                         P.in_norm->g.data(), N, D, /*dx_acc=*/true);
  }

  // FFN of N rows: a.xn2 = norm(a.h_mid), dense MLP or MoE into a.ffn_out, out = h_mid + ffn_out. MoE
  // layers count their tokens per expert into ld and route with the scratch ws.
  void Ffn(I l, LayerAct<T>& a, I N, T* out, std::vector<int64_t>& ld, MoeScratch<T>& ws) {
    const ModelConfig& c = cfg;
    LayerP<T>& P = layers[l];
    const I D = c.hidden_size;
    ops::RmsNorm(a.h_mid.data(), D, P.post_norm->w.data(), a.xn2.data(), a.rstd2.data(), N, D, c.rms_norm_eps);
    if (!P.moe) {
      Mlp(a, P.dense, a.xn2.data(), N, D, c.intermediate_size, a.g.data(), a.u.data(), a.a.data(), a.ffn_out.data());
    } else {
      Moe(l, a, N, ld, ws);
    }
    ops::Add(a.h_mid.data(), a.ffn_out.data(), out, N * D);
  }
  // Training's FFN: returns the layer's sequence-wise balance loss (0 when aux_alpha is 0).
  double Ffn(I l) {
    LayerAct<T>& a = acts[l];
    Ffn(l, a, B * Tn, hidden[l + 1].data(), replaying ? replay_load : load[l], moe_ws);  // a replay keeps the loads
    return layers[l].moe ? MoeAux(a) : 0.0;
  }

  // Router (ops::Route: sigmoid scores, the correction bias only chooses), dispatch grouped by expert
  // (ops::MoePlan, token order within an expert: deterministic), experts, shared expert, combine.
  void Moe(I l, LayerAct<T>& a, I N, std::vector<int64_t>& ld, MoeScratch<T>& ws) {
    const ModelConfig& c = cfg;
    LayerP<T>& P = layers[l];
    const I D = c.hidden_size, E = c.n_routed_experts, K = c.num_experts_per_tok,
            Im = c.moe_intermediate_size, Is = c.moe_intermediate_size * c.n_shared_experts;
    Lin(a, a.xn2.data(), P.router->w.data(), a.logits.data(), N, D, E);  // [N, E]
    ops::Route<T, T>(a.logits.data(), P.bias->w.data(), N, E, c.n_group, c.topk_group, K, c.norm_topk_prob,
                     c.routed_scaling_factor, a.s.data(), ws.sb.data(), a.idx.data(), a.wts.data(), ws.work.data(),
                     ws.iwork.data());
    ld.assign(static_cast<size_t>(E), 0);
    ops::MoePlan<int64_t>(a.idx.data(), N * K, E, a.offs.data(), a.row_of_slot.data(), ld.data());
    for (I i = 0; i < N * K; ++i) {
      const I row = a.row_of_slot[i];
      a.slot_of_row[row] = i;
      std::memcpy(&a.xe[row * D], &a.xn2[(i / K) * D], sizeof(T) * static_cast<size_t>(D));
    }
    for (I e = 0; e < E; ++e) {
      const I r0 = a.offs[e], cnt = a.offs[e + 1] - r0;
      if (cnt == 0) continue;
      Mlp(a, P.experts[e], &a.xe[r0 * D], cnt, D, Im, &a.ge[r0 * Im], &a.ue[r0 * Im], &a.ae[r0 * Im], &a.ye[r0 * D]);
    }
    if (Is) {
      Mlp(a, P.shared, a.xn2.data(), N, D, Is, a.sg.data(), a.su.data(), a.sa.data(), a.sy.data());
      std::copy(a.sy.begin(), a.sy.begin() + N * D, a.ffn_out.begin());
    } else {
      std::fill(a.ffn_out.begin(), a.ffn_out.begin() + N * D, T(0));
    }
    ops::MoeCombine<T, T, int64_t>(a.ye.data(), a.row_of_slot.data(), a.wts.data(), N, K, D, a.ffn_out.data());
  }

  // Sequence-wise balance loss of the Forward's batch: alpha * sum_i f_i P_i per sequence, averaged over
  // sequences (a.aux_f keeps f for the backward).
  double MoeAux(LayerAct<T>& a) {
    if (aux_alpha <= 0) return 0;
    const ModelConfig& c = cfg;
    const I E = c.n_routed_experts, K = c.num_experts_per_tok;
    double aux = 0;
    for (I b = 0; b < B; ++b) {
      double* f = &a.aux_f[b * E];
      std::fill(f, f + E, 0.0);
      std::vector<double>& Pi = aux_pi;
      std::fill(Pi.begin(), Pi.end(), 0.0);
      for (I t = 0; t < Tn; ++t) {
        const I n = b * Tn + t;
        for (I k = 0; k < K; ++k) f[a.idx[n * K + k]] += 1.0;
        double z = 0;
        for (I e = 0; e < E; ++e) z += a.s[n * E + e];
        for (I e = 0; e < E; ++e) Pi[e] += a.s[n * E + e] / z;
      }
      for (I e = 0; e < E; ++e) {
        f[e] *= static_cast<double>(E) / static_cast<double>(K * Tn);
        aux += aux_alpha * f[e] * Pi[e] / static_cast<double>(Tn);
      }
    }
    return aux / static_cast<double>(B);
  }

  void FfnBackward(I l) {
    // In: dh = dL/d hidden[l+1]. Out: dh = dL/d h_mid.
    const ModelConfig& c = cfg;
    LayerP<T>& P = layers[l];
    LayerAct<T>& a = acts[l];
    const I N = B * Tn, D = c.hidden_size;
    if (!P.moe) {
      MlpBackward(P.dense, a.xn2.data(), N, D, c.intermediate_size, a.g.data(), a.u.data(), a.a.data(), dh.data(),
                  dxn.data(), false, dg.data(), du.data(), da.data());
    } else {
      MoeBackward(l);
    }
    ops::RmsNormBackward(a.h_mid.data(), D, P.post_norm->w.data(), a.rstd2.data(), dxn.data(), dh.data(), D,
                         P.post_norm->g.data(), N, D, /*dx_acc=*/true);
  }

  void MoeBackward(I l) {
    const ModelConfig& c = cfg;
    LayerP<T>& P = layers[l];
    LayerAct<T>& a = acts[l];
    const I N = B * Tn, D = c.hidden_size, E = c.n_routed_experts, K = c.num_experts_per_tok,
            Im = c.moe_intermediate_size, Is = c.moe_intermediate_size * c.n_shared_experts;
    // dxn (= dL/d xn2) starts from the shared expert.
    if (Is) {
      MlpBackward(P.shared, a.xn2.data(), N, D, Is, a.sg.data(), a.su.data(), a.sa.data(), dh.data(), dxn.data(),
                  false, dg.data(), du.data(), da.data());
    } else {
      std::fill(dxn.begin(), dxn.end(), T(0));
    }
    // Routed experts: dy_row = w * dh[token]; d w = dh[token] . y_row.
    for (I i = 0; i < N * K; ++i) {
      const I n = i / K, row = a.row_of_slot[i];
      const T w = a.wts[i];
      const T* g = &dh[n * D];
      const T* y = &a.ye[row * D];
      T* dy = &dye[row * D];
      T dot = 0;
      for (I d = 0; d < D; ++d) {
        dy[d] = w * g[d];
        dot += g[d] * y[d];
      }
      dwts[i] = dot;
    }
    for (I e = 0; e < E; ++e) {
      const I r0 = a.offs[e], cnt = a.offs[e + 1] - r0;
      if (cnt == 0) continue;
      MlpBackward(P.experts[e], &a.xe[r0 * D], cnt, D, Im, &a.ge[r0 * Im], &a.ue[r0 * Im], &a.ae[r0 * Im],
                  &dye[r0 * D], &dxe[r0 * D], false, &dge[r0 * Im], &due[r0 * Im], &dae[r0 * Im]);
    }
    for (I row = 0; row < N * K; ++row) {
      const I n = a.slot_of_row[row] / K;
      const T* s = &dxe[row * D];
      T* d = &dxn[n * D];
      for (I j = 0; j < D; ++j) d[j] += s[j];
    }
    // Router: combine weights -> scores -> logits.
    std::fill(dr_s.begin(), dr_s.end(), T(0));
    const T rsf = static_cast<T>(c.routed_scaling_factor);
    for (I n = 0; n < N; ++n) {
      T* dsn = &dr_s[n * E];
      if (c.norm_topk_prob) {
        T S = 0;
        for (I k = 0; k < K; ++k) S += a.s[n * E + a.idx[n * K + k]];
        S += static_cast<T>(1e-20);
        // w_k = rsf * s_k / S  =>  ds_j = rsf/S * (dw_j - sum_k dw_k s_k / S)
        T dot = 0;
        for (I k = 0; k < K; ++k) dot += dwts[n * K + k] * a.s[n * E + a.idx[n * K + k]];
        for (I k = 0; k < K; ++k) dsn[a.idx[n * K + k]] += rsf / S * (dwts[n * K + k] - dot / S);
      } else {
        for (I k = 0; k < K; ++k) dsn[a.idx[n * K + k]] += rsf * dwts[n * K + k];
      }
    }
    if (aux_alpha > 0) {
      // L = alpha/B sum_b sum_i f_bi (1/T) sum_t s_it/z_t: d s_jt = (g_j - sum_i g_i s_it/z_t)/z_t.
      for (I b = 0; b < B; ++b) {
        const double* f = &a.aux_f[b * E];
        for (I t = 0; t < Tn; ++t) {
          const I n = b * Tn + t;
          double z = 0, dot = 0;
          for (I e = 0; e < E; ++e) z += a.s[n * E + e];
          const double gs = aux_alpha / static_cast<double>(Tn * B);
          for (I e = 0; e < E; ++e) dot += gs * f[e] * a.s[n * E + e] / z;
          for (I e = 0; e < E; ++e) dr_s[n * E + e] += static_cast<T>((gs * f[e] - dot) / z);
        }
      }
    }
    for (I i = 0; i < N * E; ++i) dr_logits[i] = dr_s[i] * a.s[i] * (T(1) - a.s[i]);
    ops::LinearBackward(a.xn2.data(), P.router->w.data(), dr_logits.data(), dxn.data(), P.router->g.data(), N, D, E,
                        true);
  }

  // QK-Clip of one layer: heads with ml[h] > tau get gamma = tau/ml[h]; q_nope rows x sqrt(gamma),
  // q_rope rows x gamma, k_nope rows of kv_b x sqrt(gamma), so every logit of the head scales by gamma.
  int64_t ClipHeads(I l, const std::vector<double>& ml, double tau) {
    const ModelConfig& c = cfg;
    const I H = c.num_attention_heads, dn = c.qk_nope_head_dim, dr = c.qk_rope_head_dim, dv = c.v_head_dim,
            dq = dn + dr;
    Param<T>* q = c.q_lora_rank ? layers[l].q_b : layers[l].q;
    Param<T>* kvb = layers[l].kv_b;
    const I qin = q->shape[1], kin = kvb->shape[1];
    int64_t clipped = 0;
    for (I h = 0; h < H; ++h) {
      const double smax = ml[h];
      if (!(smax > tau)) continue;
      const double gamma = tau / smax;
      const T sg = static_cast<T>(std::sqrt(gamma)), g = static_cast<T>(gamma);
      for (I r = 0; r < dn; ++r)
        for (I j = 0; j < qin; ++j) q->w[(h * dq + r) * qin + j] *= sg;
      for (I r = dn; r < dq; ++r)
        for (I j = 0; j < qin; ++j) q->w[(h * dq + r) * qin + j] *= g;
      for (I r = 0; r < dn; ++r)
        for (I j = 0; j < kin; ++j) kvb->w[(h * (dn + dv) + r) * kin + j] *= sg;
      ++clipped;
    }
    return clipped;
  }

  // Post-update QK-Clip: the last Forward's batch again through the current weights, layer by layer;
  // each layer's heads above tau are clipped and the layer's attention recomputed before its FFN, so
  // later layers measure on the clipped output. lm_head and the last FFN are skipped.
  int64_t ReplayClipQk(double tau) {
    if (!have_forward) return 0;
    const ModelConfig& c = cfg;
    const I N = B * Tn, D = c.hidden_size, L = c.num_hidden_layers;
    replaying = true;
    ops::EmbeddingGather(embed->w.data(), tokens.data(), N, D, hidden[0].data());
    int64_t clipped = 0;
    for (I l = 0; l < L; ++l) {
      Attention(l, replay_ml[l]);
      if (dist.reduce_layer_max) dist.reduce_layer_max(replay_ml[l]);  // all ranks clip the same heads
      const int64_t k = ClipHeads(l, replay_ml[l], tau);
      if (k > 0) {
        Attention(l, replay_ml[l]);  // the clipped layer's output feeds the next layer
        if (dist.reduce_layer_max) dist.reduce_layer_max(replay_ml[l]);
        clipped += k;
      }
      if (l + 1 < L) Ffn(l);
    }
    replaying = false;
    have_forward = false;  // activations now hold the replay: Backward needs a new Forward
    return clipped;
  }

  Expected<ForwardResult> Forward(const Batch& bt, const ForwardOptions& opt) {
    const ModelConfig& c = cfg;
    const I N = bt.B * bt.T, D = c.hidden_size, V = c.vocab_size;
    if (bt.B < 1 || bt.T < 1) return InvalidArgument("batch: expected B >= 1 and T >= 1, got B=" +
                                                     std::to_string(bt.B) + " T=" + std::to_string(bt.T));
    if (bt.positions.empty() && bt.T > c.max_position_embeddings)
      return InvalidArgument("batch: T=" + std::to_string(bt.T) + " exceeds max_position_embeddings " +
                             std::to_string(c.max_position_embeddings));
    if (static_cast<I>(bt.tokens.size()) != N || static_cast<I>(bt.targets.size()) != N ||
        static_cast<I>(bt.weights.size()) != N)
      return InvalidArgument("batch: tokens/targets/weights must each hold B*T=" + std::to_string(N) + " values");
    if (!bt.positions.empty() && static_cast<I>(bt.positions.size()) != N)
      return InvalidArgument("batch: positions must be empty or hold B*T=" + std::to_string(N) + " values, got " +
                             std::to_string(bt.positions.size()));
    if (!bt.segment_ids.empty() && static_cast<I>(bt.segment_ids.size()) != N)
      return InvalidArgument("batch: segment_ids must be empty or hold B*T=" + std::to_string(N) +
                             " values, got " + std::to_string(bt.segment_ids.size()));
    if (!bt.segment_parents.empty()) {
      if (static_cast<I>(bt.segment_parents.size()) != N || bt.segment_ids.empty())
        return InvalidArgument("batch: segment_parents must be empty or hold B*T=" + std::to_string(N) +
                               " values along with segment_ids, got " + std::to_string(bt.segment_parents.size()) +
                               (bt.segment_ids.empty() ? " without segment_ids" : ""));
      for (I b = 0; b < bt.B; ++b) {
        const std::string why = ops::CheckSharedPrefix(&bt.segment_ids[b * bt.T], &bt.segment_parents[b * bt.T], bt.T);
        if (!why.empty()) return InvalidArgument("batch: row " + std::to_string(b) + " segment_parents: " + why);
      }
    }
    if (!(opt.loss_normalizer >= 0) || !std::isfinite(opt.loss_normalizer))
      return InvalidArgument("forward options: loss_normalizer must be finite and >= 0 (0 = weight sum), got " +
                             std::to_string(opt.loss_normalizer));
    const bool signed_ok = opt.loss_normalizer > 0;
    double wsum = 0;
    for (I n = 0; n < N; ++n) {
      if (bt.tokens[n] < 0 || bt.tokens[n] >= V)
        return InvalidArgument("batch: tokens[" + std::to_string(n) + "] = " + std::to_string(bt.tokens[n]) +
                               " outside [0, vocab_size=" + std::to_string(V) + ")");
      if (!std::isfinite(bt.weights[n]) || (!signed_ok && !(bt.weights[n] >= 0)))
        return InvalidArgument("batch: weights[" + std::to_string(n) + "] must be finite" +
                               (signed_ok ? std::string() : std::string(" and >= 0 (negative weights need a "
                                                                        "loss_normalizer)")));
      if (bt.weights[n] != 0 && (bt.targets[n] < 0 || bt.targets[n] >= V))
        return InvalidArgument("batch: targets[" + std::to_string(n) + "] = " + std::to_string(bt.targets[n]) +
                               " outside [0, vocab_size) with a non-zero weight");
      if (!bt.positions.empty() && (bt.positions[n] < 0 || bt.positions[n] >= c.max_position_embeddings))
        return InvalidArgument("batch: positions[" + std::to_string(n) + "] = " + std::to_string(bt.positions[n]) +
                               " outside [0, max_position_embeddings=" + std::to_string(c.max_position_embeddings) +
                               ")");
      wsum += bt.weights[n];
    }
    if (!signed_ok && wsum <= 0) return InvalidArgument("batch: no token has a positive loss weight");
    Ensure(bt.B, bt.T);
    tokens = bt.tokens;
    targets = bt.targets;
    weights = bt.weights;
    if (bt.positions.empty()) {
      for (I n = 0; n < N; ++n) pos[n] = static_cast<int32_t>(n % bt.T);
    } else {
      std::copy(bt.positions.begin(), bt.positions.end(), pos.begin());
    }
    segs = bt.segment_ids;  // capacity reserved in Ensure: no allocation for a steady shape
    pars = bt.segment_parents;
    weight_sum = wsum;
    loss_norm = signed_ok ? opt.loss_normalizer : wsum;
    signed_weights = signed_ok;
    aux_alpha = opt.aux_loss_alpha;

    ops::EmbeddingGather(embed->w.data(), tokens.data(), N, D, hidden[0].data());
    ForwardResult r;
    for (I l = 0; l < c.num_hidden_layers; ++l) {
      Attention(l);
      r.aux_loss += Ffn(l);
    }
    ops::RmsNorm(hidden.back().data(), D, final_norm->w.data(), hn.data(), rstd_f.data(), N, D, c.rms_norm_eps);
    ops::Linear(hn.data(), lm_head->w.data(), logits.data(), N, D, V);
    r.ce_loss = ops::CrossEntropy(logits.data(), targets.data(), weights.data(), N, V, static_cast<T*>(nullptr), 0.0,
                                  token_logp.data(), token_ent.data()) /
                loss_norm;
    r.loss = r.ce_loss + r.aux_loss;
    r.weight_sum = wsum;
    if (dist.reduce_stats) dist.reduce_stats(max_logits, load);
    have_forward = true;
    return r;
  }

  Status SetLossWeights(std::span<const float> w) {
    if (!have_forward) return FailedPrecondition("SetLossWeights: no Forward to re-weight (or it was replayed)");
    const I N = B * Tn, V = cfg.vocab_size;
    if (static_cast<I>(w.size()) != N)
      return InvalidArgument("SetLossWeights: expected B*T=" + std::to_string(N) + " weights, got " +
                             std::to_string(w.size()));
    const bool signed_ok = signed_weights;
    double wsum = 0;
    for (I n = 0; n < N; ++n) {
      if (!std::isfinite(w[n]) || (!signed_ok && !(w[n] >= 0)))
        return InvalidArgument("SetLossWeights: weights[" + std::to_string(n) + "] must be finite" +
                               (signed_ok ? std::string() : std::string(" and >= 0 (the Forward had no loss_normalizer)")));
      if (w[n] != 0 && (targets[n] < 0 || targets[n] >= V))
        return InvalidArgument("SetLossWeights: weights[" + std::to_string(n) + "] is non-zero but targets[" +
                               std::to_string(n) + "] = " + std::to_string(targets[n]) + " is outside [0, vocab_size)");
      wsum += w[n];
    }
    if (!signed_ok && wsum <= 0) return InvalidArgument("SetLossWeights: no token has a positive loss weight");
    std::copy(w.begin(), w.end(), weights.begin());
    weight_sum = wsum;
    if (!signed_ok) loss_norm = wsum;
    return Status::Ok();
  }

  void Backward() {
    K2_CHECK(have_forward) << "Backward() without a Forward()";
    const ModelConfig& c = cfg;
    const I N = B * Tn, D = c.hidden_size, V = c.vocab_size;
    ops::CrossEntropy(logits.data(), targets.data(), weights.data(), N, V, dlogits.data(), 1.0 / loss_norm);
    ops::LinearBackward(hn.data(), lm_head->w.data(), dlogits.data(), dxn.data(), lm_head->g.data(), N, D, V, false);
    Ready(lm_head);
    ops::RmsNormBackward(hidden.back().data(), D, final_norm->w.data(), rstd_f.data(), dxn.data(), dh.data(), D,
                         final_norm->g.data(), N, D, false);
    Ready(final_norm);
    for (I l = c.num_hidden_layers - 1; l >= 0; --l) {
      FfnBackward(l);
      ReadyFfn(l);
      AttentionBackward(l);
      ReadyAttention(l);
    }
    ops::EmbeddingScatterAdd(dh.data(), tokens.data(), N, D, embed->g.data());
    Ready(embed);
  }
};

}  // namespace k2::engine
