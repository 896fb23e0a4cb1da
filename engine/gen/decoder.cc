// Cached forward for generation: embeddings -> per layer (MLA with latents written to the paged cache,
// absorbed attention over the pages, dense or routed MLP) -> final norm -> lm_head on wanted rows.
// Mirrors engine/model.cc's forward op for op so the numbers match the full forward.
#include "engine/gen/decoder.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "core/determinism.h"
#include "engine/ops_cpu.h"

#include <omp.h>

namespace k2::gen {

using I = int64_t;
namespace ops = engine::ops;

namespace {
template <class T>
void Size(std::vector<T>& v, I n) {
  v.assign(static_cast<size_t>(std::max<I>(n, 1)), T(0));
}

// Products over the rows of a step (every running sequence's rows: which share a step follows timing).
// In deterministic mode (core/determinism.h) a row's bits must not depend on the other rows: OpenBLAS
// picks its kernels by the row count M, so one row computed in calls of M = 3 and M = 12 differs in the
// last bits. Calls of exactly kRowBlock rows, the tail padded with zero rows, give each row the same bits
// in any batch and at any position of its block (measured with OpenBLAS 0.3.21's Haswell/Zen sgemm at
// M = 4 and 8, not at 16 or 32; tests/rl/deterministic_test.cc pins it). Otherwise one call.
constexpr I kRowBlock = 8;

void GemmRows(bool tb, I M, I N, I K, const float* A, I lda, const float* B, I ldb, float beta, float* C, I ldc) {
  if (!DeterministicMode()) {
    ops::Gemm<float>(false, tb, M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  const I full = M / kRowBlock * kRowBlock;
  for (I r = 0; r < full; r += kRowBlock)
    ops::Gemm<float>(false, tb, kRowBlock, N, K, 1.0f, A + r * lda, lda, B, ldb, beta, C + r * ldc, ldc);
  const I tail = M - full;
  if (tail == 0) return;
  thread_local std::vector<float> a, c;
  a.assign(static_cast<size_t>(kRowBlock * K), 0.0f);
  c.assign(static_cast<size_t>(kRowBlock * N), 0.0f);
  for (I r = 0; r < tail; ++r) {
    std::memcpy(a.data() + r * K, A + (full + r) * lda, sizeof(float) * static_cast<size_t>(K));
    if (beta != 0.0f) std::memcpy(c.data() + r * N, C + (full + r) * ldc, sizeof(float) * static_cast<size_t>(N));
  }
  ops::Gemm<float>(false, tb, kRowBlock, N, K, 1.0f, a.data(), K, B, ldb, beta, c.data(), N);
  for (I r = 0; r < tail; ++r)
    std::memcpy(C + (full + r) * ldc, c.data() + r * N, sizeof(float) * static_cast<size_t>(N));
}

// y[N, out] (+)= x[N, in] W^T, as ops::Linear, through GemmRows.
void LinearRows(const float* x, const float* W, float* y, I N, I in, I out, bool accumulate = false) {
  GemmRows(true, N, out, in, x, in, W, in, accumulate ? 1.0f : 0.0f, y, out);
}
}  // namespace

CachedDecoder::CachedDecoder(engine::Model<float>* model, KvCache* kv, I max_rows, I max_chunk, I max_context)
    : model_(model), kv_(kv), cfg_(model->config()), max_rows_(max_rows), max_chunk_(max_chunk),
      max_context_(max_context) {
  const engine::ModelConfig& c = cfg_;
  auto get = [&](const std::string& name) {
    engine::Param<float>* p = model_->Find(name);
    K2_CHECK(p != nullptr) << "generator: model has no parameter " << name;
    return p;
  };
  auto mlp = [&](const std::string& pre) {
    return std::vector<engine::Param<float>*>{get(pre + "gate_proj.weight"), get(pre + "up_proj.weight"),
                                              get(pre + "down_proj.weight")};
  };
  embed_ = get("model.embed_tokens.weight");
  final_norm_ = get("model.norm.weight");
  lm_head_ = get("lm_head.weight");
  layers_.resize(static_cast<size_t>(c.num_hidden_layers));
  I maxw = c.intermediate_size;
  for (I l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    Layer& L = layers_[static_cast<size_t>(l)];
    L.in_norm = get(p + "input_layernorm.weight");
    if (c.q_lora_rank) {
      L.q_a = get(p + "self_attn.q_a_proj.weight");
      L.q_a_norm = get(p + "self_attn.q_a_layernorm.weight");
      L.q_b = get(p + "self_attn.q_b_proj.weight");
    } else {
      L.q = get(p + "self_attn.q_proj.weight");
    }
    L.kv_a = get(p + "self_attn.kv_a_proj_with_mqa.weight");
    L.kv_a_norm = get(p + "self_attn.kv_a_layernorm.weight");
    L.kv_b = get(p + "self_attn.kv_b_proj.weight");
    L.o = get(p + "self_attn.o_proj.weight");
    L.post_norm = get(p + "post_attention_layernorm.weight");
    L.moe = c.is_moe_layer(l);
    if (!L.moe) {
      L.dense = mlp(p + "mlp.");
    } else {
      L.router = get(p + "mlp.gate.weight");
      L.bias = get(p + "mlp.gate.e_score_correction_bias");
      for (I e = 0; e < c.n_routed_experts; ++e) L.experts.push_back(mlp(p + "mlp.experts." + std::to_string(e) + "."));
      if (c.n_shared_experts > 0) L.shared = mlp(p + "mlp.shared_experts.");
      maxw = std::max({maxw, c.moe_intermediate_size, c.moe_intermediate_size * c.n_shared_experts});
    }
  }
  inv_freq_ = c.inv_freq();
  attn_factor_ = c.rope_attention_factor();
  scale_ = c.softmax_scale();

  const I N = max_rows_, D = c.hidden_size, H = c.num_attention_heads, dq = c.qk_head_dim(),
          dv = c.v_head_dim, dr = c.qk_rope_head_dim, rkv = c.kv_lora_rank, rq = c.q_lora_rank.value_or(0),
          E = c.n_routed_experts, K = c.num_experts_per_tok;
  Size(x_, N * D), Size(xn_, N * D), Size(rstd_, N), Size(qa_, N * rq), Size(qa_n_, N * rq), Size(q_, N * H * dq);
  Size(kva_, N * (rkv + dr)), Size(ckv_, N * rkv), Size(qlat_, N * H * rkv), Size(olat_, N * H * rkv);
  Size(o_, N * H * dv), Size(g_, N * maxw), Size(u_, N * maxw), Size(a_, N * maxw);
  Size(rlog_, N * E), Size(sb_, N * E), Size(scores_, N * E), Size(idx_, N * K), Size(wts_, N * K);
  Size(cnt_, E), Size(offs_, E + 1), Size(fill_, E), Size(row_of_slot_, N * K);
  Size(xe_, N * K * D), Size(ye_, N * K * D), Size(ffn_, N * D);
  Size(keys_, max_context_ * (rkv + dr)), Size(s_, max_chunk_ * H * max_context_), Size(pos_, N);
  Size(logit_src_, N), Size(hsel_, N * D), Size(logits_, N * c.vocab_size);
  threads_ = std::max(1, omp_get_max_threads());
  Size(dec_s_, threads_ * max_context_);
  decode_rows_.assign(static_cast<size_t>(N), {-1, 0});
}

void CachedDecoder::RunMlp(const std::vector<engine::Param<float>*>& m, const float* x, I N, float* y) {
  const I D = cfg_.hidden_size, W = m[0]->shape[0];
  LinearRows(x, m[0]->w.data(), g_.data(), N, D, W);
  LinearRows(x, m[1]->w.data(), u_.data(), N, D, W);
  ops::SwiGlu(g_.data(), u_.data(), a_.data(), N * W);
  LinearRows(a_.data(), m[2]->w.data(), y, N, W, D);
}

void CachedDecoder::Attention(I l, const std::vector<Chunk>& chunks, I N) {
  const engine::ModelConfig& c = cfg_;
  Layer& P = layers_[static_cast<size_t>(l)];
  const I D = c.hidden_size, H = c.num_attention_heads, dq = c.qk_head_dim(), dn = c.qk_nope_head_dim,
          dv = c.v_head_dim, dr = c.qk_rope_head_dim, rkv = c.kv_lora_rank, W = rkv + dr, ps = kv_->config().page_size;
  ops::RmsNorm(x_.data(), D, P.in_norm->w.data(), xn_.data(), rstd_.data(), N, D, c.rms_norm_eps);
  if (c.q_lora_rank) {
    const I rq = *c.q_lora_rank;
    LinearRows(xn_.data(), P.q_a->w.data(), qa_.data(), N, D, rq);                                // [N, rq]
    ops::RmsNorm(qa_.data(), rq, P.q_a_norm->w.data(), qa_n_.data(), rstd_.data(), N, rq, c.rms_norm_eps);
    LinearRows(qa_n_.data(), P.q_b->w.data(), q_.data(), N, rq, H * dq);                          // [N, H*dq]
  } else {
    LinearRows(xn_.data(), P.q->w.data(), q_.data(), N, D, H * dq);                               // [N, H*dq]
  }
  LinearRows(xn_.data(), P.kv_a->w.data(), kva_.data(), N, D, W);                                 // [N, rkv+dr]
  ops::RmsNorm(kva_.data(), W, P.kv_a_norm->w.data(), ckv_.data(), rstd_.data(), N, rkv, c.rms_norm_eps);  // [N, rkv]
  ops::Rope(q_.data() + dn, N, H, H * dq, dq, pos_.data(), inv_freq_.data(), dr, c.rope_interleave, attn_factor_, false);
  ops::Rope(kva_.data() + rkv, N, 1, W, 0, pos_.data(), inv_freq_.data(), dr, c.rope_interleave, attn_factor_, false);

  // Write the new latents into the cache: [rkv] normalized latent | [dr] roped k_pe.
  I row = 0;
  for (const Chunk& ch : chunks) {
    const I start = kv_->length(ch.seq) - ch.n;
    for (I i = 0; i < ch.n; ++i, ++row) {
      float* dst = kv_->MutableRow(ch.seq, l, start + i);
      std::memcpy(dst, &ckv_[row * rkv], sizeof(float) * static_cast<size_t>(rkv));
      std::memcpy(dst + rkv, &kva_[row * W + rkv], sizeof(float) * static_cast<size_t>(dr));
    }
  }

  // Absorb W_UK into the queries for all rows at once: q_lat[n, h] = q_nope[n, h] W_UK_h  ([N, H, rkv]).
  const float* wkvb = P.kv_b->w.data();
  for (I h = 0; h < H; ++h)
    GemmRows(false, N, rkv, dn, q_.data() + h * dq, H * dq, wkvb + h * (dn + dv) * rkv, rkv, 0.0f,
             qlat_.data() + h * rkv, H * rkv);
  // Decode chunks (one new token) are many small pieces of work: each runs as plain SIMD loops straight
  // over its pages (BLAS calls of M = H rows cost more in thread hand-offs than they compute), and the
  // sequences run in parallel. Prefill chunks gather their pages and use GEMMs, one chunk at a time.
  const float sc = static_cast<float>(scale_);
  I nd = 0;
  row = 0;
  for (const Chunk& ch : chunks) {
    if (ch.n == 1) decode_rows_[nd++] = {ch.seq, row};
    row += ch.n;
  }
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads_) if (nd > 1)
  for (I i = 0; i < nd; ++i) {
    const I t = threads_ > 1 ? omp_get_thread_num() : 0;
    DecodeRowAttention(l, decode_rows_[i].first, decode_rows_[i].second, &dec_s_[t * max_context_]);
  }
  row = 0;
  for (const Chunk& ch : chunks) {
    if (ch.n == 1) {
      row += 1;
      continue;
    }
    const I Tk = kv_->length(ch.seq), start = Tk - ch.n, M = ch.n * H;
    for (I p = 0; p * ps < Tk; ++p) {
      const I cnt = std::min(ps, Tk - p * ps);
      std::memcpy(&keys_[p * ps * W], kv_->PageRows(ch.seq, l, p), sizeof(float) * static_cast<size_t>(cnt * W));
    }
    float* S = s_.data();
    const float* QL = &qlat_[row * H * rkv];      // [M, rkv]
    const float* QP = &q_[row * H * dq + dn];     // [M, dr] with row stride dq
    float* OL = &olat_[row * H * rkv];            // [M, rkv]
    // S[M, Tk] = q_lat c_kv^T + q_pe k_pe^T; row r = i*H + h.
    ops::Gemm<float>(false, true, M, Tk, rkv, 1.0f, QL, rkv, keys_.data(), W, 0.0f, S, Tk);
    ops::Gemm<float>(false, true, M, Tk, dr, 1.0f, QP, dq, keys_.data() + rkv, W, 1.0f, S, Tk);
    for (I r = 0; r < M; ++r) {
      float* srow = S + r * Tk;
      const I last = start + r / H;  // causal: query i sees keys 0..start+i
      float m = -std::numeric_limits<float>::infinity();
      for (I j = 0; j <= last; ++j) m = std::max(m, srow[j] * sc);
      float z = 0;
      for (I j = 0; j <= last; ++j) z += (srow[j] = std::exp(srow[j] * sc - m));
      const float inv = 1.0f / z;
      for (I j = 0; j <= last; ++j) srow[j] *= inv;
      for (I j = last + 1; j < Tk; ++j) srow[j] = 0;
    }
    // o_lat[M, rkv] = P c_kv
    ops::Gemm<float>(false, false, M, rkv, Tk, 1.0f, S, Tk, keys_.data(), W, 0.0f, OL, rkv);
    row += ch.n;
  }
  // o[n, h*dv] = o_lat[n, h] W_UV_h^T; then the residual x += o W_o^T.
  for (I h = 0; h < H; ++h)
    GemmRows(true, N, dv, rkv, olat_.data() + h * rkv, H * rkv, wkvb + (h * (dn + dv) + dn) * rkv, rkv, 0.0f,
             o_.data() + h * dv, H * dv);
  LinearRows(o_.data(), P.o->w.data(), x_.data(), N, H * dv, D, /*accumulate=*/true);
}

// One decode row (the last token of `seq`, batch row `row`): for each head, scores against every cached
// row read in place from the pages, softmax, and the latent output o_lat = P c_kv. S: [max_context] scratch.
void CachedDecoder::DecodeRowAttention(I l, KvCache::SeqId seq, I row, float* S) {
  const engine::ModelConfig& c = cfg_;
  const I H = c.num_attention_heads, dq = c.qk_head_dim(), dn = c.qk_nope_head_dim, dr = c.qk_rope_head_dim,
          rkv = c.kv_lora_rank, W = rkv + dr, ps = kv_->config().page_size, Tk = kv_->length(seq);
  const float sc = static_cast<float>(scale_);
  for (I h = 0; h < H; ++h) {
    const float* ql = &qlat_[(row * H + h) * rkv];
    const float* qp = &q_[row * H * dq + h * dq + dn];
    float m = -std::numeric_limits<float>::infinity();
    for (I p = 0; p * ps < Tk; ++p) {
      const float* base = kv_->PageRows(seq, l, p);
      const I cnt = std::min(ps, Tk - p * ps);
      for (I jj = 0; jj < cnt; ++jj) {
        const float* key = base + jj * W;
        float acc = 0;
#pragma omp simd reduction(+ : acc)
        for (I d = 0; d < rkv; ++d) acc += ql[d] * key[d];
        float pe = 0;
#pragma omp simd reduction(+ : pe)
        for (I d = 0; d < dr; ++d) pe += qp[d] * key[rkv + d];
        const float s = (acc + pe) * sc;
        S[p * ps + jj] = s;
        m = std::max(m, s);
      }
    }
    float z = 0;
    for (I j = 0; j < Tk; ++j) z += (S[j] = std::exp(S[j] - m));
    const float inv = 1.0f / z;
    float* o = &olat_[(row * H + h) * rkv];
    std::fill(o, o + rkv, 0.0f);
    for (I p = 0; p * ps < Tk; ++p) {
      const float* base = kv_->PageRows(seq, l, p);
      const I cnt = std::min(ps, Tk - p * ps);
      for (I jj = 0; jj < cnt; ++jj) {
        const float pj = S[p * ps + jj] * inv;
        const float* key = base + jj * W;
#pragma omp simd
        for (I d = 0; d < rkv; ++d) o[d] += pj * key[d];
      }
    }
  }
}

void CachedDecoder::Moe(I l, I N) {
  const engine::ModelConfig& c = cfg_;
  Layer& P = layers_[static_cast<size_t>(l)];
  const I D = c.hidden_size, E = c.n_routed_experts, K = c.num_experts_per_tok;
  LinearRows(xn_.data(), P.router->w.data(), rlog_.data(), N, D, E);  // [N, E]
  const float* bias = P.bias->w.data();
  for (I n = 0; n < N; ++n)
    for (I e = 0; e < E; ++e) {
      float s = 1.0f / (1.0f + std::exp(-rlog_[n * E + e]));
      scores_[n * E + e] = s;
      sb_[n * E + e] = s + bias[e];
    }
  ops::RouterTopK(sb_.data(), N, E, c.n_group, c.topk_group, K, idx_.data());
  for (I n = 0; n < N; ++n) {
    float sum = 0;
    for (I k = 0; k < K; ++k) sum += scores_[n * E + idx_[n * K + k]];
    for (I k = 0; k < K; ++k) {
      float w = scores_[n * E + idx_[n * K + k]];
      if (c.norm_topk_prob) w /= (sum + 1e-20f);
      wts_[n * K + k] = w * static_cast<float>(c.routed_scaling_factor);
    }
  }
  std::fill(cnt_.begin(), cnt_.end(), 0);
  for (I i = 0; i < N * K; ++i) cnt_[idx_[i]]++;
  offs_[0] = 0;
  for (I e = 0; e < E; ++e) offs_[e + 1] = offs_[e] + cnt_[e], fill_[e] = offs_[e];
  for (I i = 0; i < N * K; ++i) {
    const I r = fill_[idx_[i]]++;
    row_of_slot_[i] = r;
    std::memcpy(&xe_[r * D], &xn_[(i / K) * D], sizeof(float) * static_cast<size_t>(D));
  }
  for (I e = 0; e < E; ++e) {
    const I r0 = offs_[e], n = offs_[e + 1] - r0;
    if (n > 0) RunMlp(P.experts[static_cast<size_t>(e)], &xe_[r0 * D], n, &ye_[r0 * D]);
  }
  if (!P.shared.empty()) RunMlp(P.shared, xn_.data(), N, ffn_.data());
  else std::fill(ffn_.begin(), ffn_.begin() + N * D, 0.0f);
  for (I n = 0; n < N; ++n)
    for (I k = 0; k < K; ++k) {
      const float w = wts_[n * K + k];
      const float* y = &ye_[row_of_slot_[n * K + k] * D];
      float* o = &ffn_[n * D];
      for (I d = 0; d < D; ++d) o[d] += w * y[d];
    }
}

Status CachedDecoder::Forward(const std::vector<Chunk>& chunks) {
  const engine::ModelConfig& c = cfg_;
  const I D = c.hidden_size, V = c.vocab_size;
  I N = 0;
  for (const Chunk& ch : chunks) {
    if (ch.n < 1) return InvalidArgument("decoder: empty chunk");
    if (ch.n > max_chunk_) return InvalidArgument("decoder: chunk of " + std::to_string(ch.n) + " tokens > max " +
                                                  std::to_string(max_chunk_));
    const I len = kv_->length(ch.seq);
    if (len < ch.n) return FailedPrecondition("decoder: sequence shorter than its chunk (Append first)");
    if (len > max_context_) return InvalidArgument("decoder: sequence of " + std::to_string(len) +
                                                   " tokens exceeds the context " + std::to_string(max_context_));
    for (I i = 0; i < ch.n; ++i)
      if (ch.tokens[i] < 0 || ch.tokens[i] >= V)
        return InvalidArgument("decoder: token " + std::to_string(ch.tokens[i]) + " outside [0, vocab_size=" +
                               std::to_string(V) + ")");
    N += ch.n;
  }
  if (N > max_rows_) return InvalidArgument("decoder: " + std::to_string(N) + " rows > max_rows " + std::to_string(max_rows_));
  if (N == 0) {
    logit_rows_ = 0;
    return Status::Ok();
  }
  I row = 0;
  logit_rows_ = 0;
  for (const Chunk& ch : chunks) {
    const I start = kv_->length(ch.seq) - ch.n;
    for (I i = 0; i < ch.n; ++i, ++row) {
      pos_[row] = static_cast<int32_t>(start + i);
      std::memcpy(&x_[row * D], &embed_->w[static_cast<size_t>(ch.tokens[i]) * D], sizeof(float) * static_cast<size_t>(D));
      if (ch.all_logits || i == ch.n - 1) logit_src_[logit_rows_++] = row;
    }
  }
  for (I l = 0; l < c.num_hidden_layers; ++l) {
    Attention(l, chunks, N);
    Layer& P = layers_[static_cast<size_t>(l)];
    ops::RmsNorm(x_.data(), D, P.post_norm->w.data(), xn_.data(), rstd_.data(), N, D, c.rms_norm_eps);
    if (!P.moe) RunMlp(P.dense, xn_.data(), N, ffn_.data());
    else Moe(l, N);
    for (I i = 0; i < N * D; ++i) x_[i] += ffn_[i];
  }
  // Final norm and lm_head only on the rows whose logits are wanted.
  for (I r = 0; r < logit_rows_; ++r)
    std::memcpy(&hsel_[r * D], &x_[logit_src_[r] * D], sizeof(float) * static_cast<size_t>(D));
  ops::RmsNorm(hsel_.data(), D, final_norm_->w.data(), xn_.data(), rstd_.data(), logit_rows_, D, c.rms_norm_eps);
  LinearRows(xn_.data(), lm_head_->w.data(), logits_.data(), logit_rows_, D, V);
  return Status::Ok();
}

}  // namespace k2::gen
