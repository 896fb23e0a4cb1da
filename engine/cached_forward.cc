// Generation's forward (engine/engine.h: CachedForward): the model's layer sequence of
// engine/model_impl.h on its absorbed route, over the paged latent cache of a LatentCache.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "engine/engine.h"
#include "engine/model_impl.h"

namespace k2::engine {

namespace {

// a·b over n floats in two 4-lane accumulators (GCC/Clang vector extensions, any target), summed
// pairwise at the end. Written out because GCC 12 at -O2 lowers `omp simd reduction` here with its
// accumulator in a stack slot that every key re-initializes through two 8-byte stores and a 16-byte load
// (a store-forwarding stall per key; decode at batch 32 ran ~25% slower), and leaves a plain lane loop
// scalar.
typedef float F4 __attribute__((vector_size(16)));
inline F4 Load4(const float* p) {
  F4 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline float Dot8(const float* a, const float* b, I n) {
  F4 s0 = {0, 0, 0, 0}, s1 = {0, 0, 0, 0};
  I e = 0;
  for (; e + 8 <= n; e += 8) {
    s0 += Load4(a + e) * Load4(b + e);
    s1 += Load4(a + e + 4) * Load4(b + e + 4);
  }
  const F4 s = s0 + s1;
  float t = (s[0] + s[2]) + (s[1] + s[3]);
  for (; e < n; ++e) t += a[e] * b[e];
  return t;
}

// One decode query against a sequence's cached latent rows, read in place from the pages: S[j] =
// scale (q_lat·c_j + q_pe·k_pe_j); returns max_j S[j].
float LatentScores(const float* ql, const float* qp, const LatentCache& kv, int32_t seq, I l, I Tk, I rkv, I dr,
                   float sc, float* S) {
  const I W = rkv + dr, ps = kv.page_size();
  float mx = -std::numeric_limits<float>::infinity();
  for (I p = 0; p * ps < Tk; ++p) {
    const float* base = kv.PageRows(seq, l, p);
    const I cnt = std::min(ps, Tk - p * ps);
    for (I jj = 0; jj < cnt; ++jj) {
      const float* key = base + jj * W;
      const float sv = (Dot8(ql, key, rkv) + Dot8(qp, key + rkv, dr)) * sc;
      S[p * ps + jj] = sv;
      mx = std::max(mx, sv);
    }
  }
  return mx;
}

// o_lat = sum_j P[j] c_j over the same pages, P[j] = S[j] * inv (S holds exp(score - max)).
void LatentMix(const float* S, float inv, const LatentCache& kv, int32_t seq, I l, I Tk, I rkv, I dr, float* o) {
  const I W = rkv + dr, ps = kv.page_size();
  std::fill(o, o + rkv, 0.0f);
  for (I p = 0; p * ps < Tk; ++p) {
    const float* base = kv.PageRows(seq, l, p);
    const I cnt = std::min(ps, Tk - p * ps);
    for (I jj = 0; jj < cnt; ++jj) {
      const float pj = S[p * ps + jj] * inv;
      const float* key = base + jj * W;
#pragma omp simd
      for (I e = 0; e < rkv; ++e) o[e] += pj * key[e];
    }
  }
}

}  // namespace

template <class T>
struct CachedForward<T>::State {
  I max_rows = 0, max_chunk = 0, max_context = 0;
  LayerAct<T> a;                       // one set of activations for every layer (no backward to keep them for)
  MoeScratch<T> ws;
  std::vector<int64_t> load;           // tokens per expert of the layer being run
  std::vector<T> x;                    // [N, D] the residual stream
  std::vector<T> qlat, olat;           // [N*H, rkv]
  std::vector<T> keys;                 // [max_context, rkv+dr] a prefill chunk's gathered pages
  std::vector<T> s;                    // [max_chunk*H, max_context] a prefill chunk's scores
  std::vector<T> dec_s;                // [threads, max_context] decode rows' scores
  std::vector<T> hsel, rstd, logits;   // [N, D], [N], [N, V]
  std::vector<int32_t> pos;            // [N]
  std::vector<I> logit_src;            // rows whose logits are wanted
  std::vector<std::pair<int32_t, I>> decode_rows;  // (sequence, batch row) of one-token chunks
  int threads = 1;                     // OpenMP threads at construction
  I logit_rows = 0;
};

template <class T>
CachedForward<T>::CachedForward(Model<T>* model, int64_t max_rows, int64_t max_chunk, int64_t max_context)
    : model_(model), st_(std::make_unique<State>()) {
  const ModelConfig& c = model->config();
  State& st = *st_;
  st.max_rows = max_rows, st.max_chunk = max_chunk, st.max_context = max_context;
  const I N = max_rows, D = c.hidden_size, H = c.num_attention_heads, dq = c.qk_head_dim(), dv = c.v_head_dim,
          dr = c.qk_rope_head_dim, rkv = c.kv_lora_rank, rq = c.q_lora_rank.value_or(0), E = c.n_routed_experts,
          K = c.num_experts_per_tok, Im = c.moe_intermediate_size, Is = c.moe_intermediate_size * c.n_shared_experts;
  auto z = [](auto& v, I n) { Resize(v, std::max<I>(n, 1)); };
  LayerAct<T>& a = st.a;
  a.row_blocked = true;
  z(a.xn, N * D), z(a.rstd1, N), z(a.qa, N * rq), z(a.qa_rstd, N), z(a.qa_n, N * rq), z(a.q, N * H * dq);
  z(a.kva, N * (rkv + dr)), z(a.ckv, N * rkv), z(a.ckv_rstd, N), z(a.kpe, N * dr), z(a.o, N * H * dv);
  z(a.h_mid, N * D), z(a.xn2, N * D), z(a.rstd2, N), z(a.ffn_out, N * D);
  bool moe = false, dense = false;
  for (I l = 0; l < c.num_hidden_layers; ++l) (c.is_moe_layer(l) ? moe : dense) = true;
  if (dense) z(a.g, N * c.intermediate_size), z(a.u, N * c.intermediate_size), z(a.a, N * c.intermediate_size);
  if (moe) {
    z(a.logits, N * E), z(a.s, N * E), z(a.idx, N * K), z(a.wts, N * K), z(a.offs, E + 1);
    z(a.row_of_slot, N * K), z(a.slot_of_row, N * K), z(a.xe, N * K * D), z(a.ge, N * K * Im), z(a.ue, N * K * Im);
    z(a.ae, N * K * Im), z(a.ye, N * K * D);
    if (Is) z(a.sg, N * Is), z(a.su, N * Is), z(a.sa, N * Is), z(a.sy, N * D);
    st.ws.Size(N, E, c.n_group);
    st.load.assign(static_cast<size_t>(E), 0);
  }
  z(st.x, N * D), z(st.qlat, N * H * rkv), z(st.olat, N * H * rkv), z(st.keys, max_context * (rkv + dr));
  z(st.s, max_chunk * H * max_context), z(st.hsel, N * D), z(st.rstd, N), z(st.logits, N * c.vocab_size);
  z(st.pos, N), z(st.logit_src, N);
  st.threads = std::max(1, omp_get_max_threads());
  z(st.dec_s, st.threads * max_context);
  st.decode_rows.assign(static_cast<size_t>(std::max<I>(N, 1)), {-1, 0});
}

template <class T>
CachedForward<T>::~CachedForward() = default;
template <class T>
const T* CachedForward<T>::logits() const { return st_->logits.data(); }
template <class T>
int64_t CachedForward<T>::logit_rows() const { return st_->logit_rows; }
template <class T>
int64_t CachedForward<T>::max_rows() const { return st_->max_rows; }

// The absorbed attention of layer l: the chunks' new latents go into the cache, then each query attends
// over its sequence's pages. Decode chunks (one new token) are many small pieces of work: each runs as
// plain SIMD loops straight over its pages (BLAS calls of M = H rows cost more in thread hand-offs than
// they compute), the sequences in parallel. Prefill chunks gather their pages and use GEMMs
// (LatentAttention), one chunk at a time.
template <class T>
void CachedForward<T>::Attend(int64_t l, const std::vector<CachedChunk>& chunks, LatentCache& kv, int64_t N) {
  State& st = *st_;
  typename Model<T>::Impl& m = *model_->impl_;
  const ModelConfig& c = m.cfg;
  LayerAct<T>& a = st.a;
  const I H = c.num_attention_heads, dq = c.qk_head_dim(), dn = c.qk_nope_head_dim, dr = c.qk_rope_head_dim,
          rkv = c.kv_lora_rank, W = rkv + dr, ps = kv.page_size();
  const MlaDims d{H, dn, dr, c.v_head_dim, rkv, m.scale};
  I row = 0;
  for (const CachedChunk& ch : chunks) {
    const I start = kv.length(ch.seq) - ch.n;
    for (I i = 0; i < ch.n; ++i, ++row) {
      float* dst = kv.MutableRow(ch.seq, l, start + i);
      std::copy(&a.ckv[row * rkv], &a.ckv[row * rkv] + rkv, dst);
      std::copy(&a.kpe[row * dr], &a.kpe[row * dr] + dr, dst + rkv);
    }
  }
  const T* wkvb = m.layers[l].kv_b->w.data();
  AbsorbQ(a.q.data(), N, wkvb, d, st.qlat.data(), /*blocked=*/true);
  I nd = 0;
  row = 0;
  for (const CachedChunk& ch : chunks) {
    if (ch.n == 1) st.decode_rows[nd++] = {ch.seq, row};
    row += ch.n;
  }
#pragma omp parallel for schedule(dynamic, 1) num_threads(st.threads) if (nd > 1)
  for (I i = 0; i < nd; ++i) {
    const I t = st.threads > 1 ? omp_get_thread_num() : 0;
    AttendRow(l, kv, st.decode_rows[i].first, st.decode_rows[i].second, &st.dec_s[t * st.max_context]);
  }
  row = 0;
  for (const CachedChunk& ch : chunks) {
    if (ch.n > 1) {
      const I Tk = kv.length(ch.seq);
      for (I p = 0; p * ps < Tk; ++p) {
        const I cnt = std::min(ps, Tk - p * ps);
        const float* src = kv.PageRows(ch.seq, l, p);
        std::copy(src, src + cnt * W, &st.keys[p * ps * W]);
      }
      LatentAttention(&st.qlat[row * H * rkv], &a.q[row * H * dq + dn], st.keys.data(), ch.n, Tk, d, st.s.data(),
                      &st.olat[row * H * rkv]);
    }
    row += ch.n;
  }
  ExpandO(st.olat.data(), N, wkvb, d, a.o.data(), /*blocked=*/true);
}

// One decode row (the last token of `seq`, batch row `row`): per head, scores against every cached row
// read in place from the pages, softmax, and o_lat = P c_kv. S: [max_context] scratch.
template <class T>
void CachedForward<T>::AttendRow(int64_t l, const LatentCache& kv, int32_t seq, int64_t row, T* S) {
  static_assert(std::is_same_v<T, float>, "the latent cache holds floats");
  State& st = *st_;
  const typename Model<T>::Impl& m = *model_->impl_;
  const ModelConfig& c = m.cfg;
  const I H = c.num_attention_heads, dq = c.qk_head_dim(), dn = c.qk_nope_head_dim, dr = c.qk_rope_head_dim,
          rkv = c.kv_lora_rank, Tk = kv.length(seq);
  const float sc = static_cast<float>(m.scale);
  for (I h = 0; h < H; ++h) {
    const float mx = LatentScores(&st.qlat[(row * H + h) * rkv], &st.a.q[row * H * dq + h * dq + dn], kv, seq, l, Tk,
                                  rkv, dr, sc, S);
    float z = 0;
    for (I j = 0; j < Tk; ++j) z += (S[j] = std::exp(S[j] - mx));
    LatentMix(S, 1.0f / z, kv, seq, l, Tk, rkv, dr, &st.olat[(row * H + h) * rkv]);
  }
}

template <class T>
Status CachedForward<T>::Forward(const std::vector<CachedChunk>& chunks, LatentCache* kv) {
  State& st = *st_;
  typename Model<T>::Impl& m = *model_->impl_;
  const ModelConfig& c = m.cfg;
  const I D = c.hidden_size, V = c.vocab_size;
  I N = 0;
  for (const CachedChunk& ch : chunks) {
    if (ch.n < 1) return InvalidArgument("decoder: empty chunk");
    if (ch.n > st.max_chunk)
      return InvalidArgument("decoder: chunk of " + std::to_string(ch.n) + " tokens > max " + std::to_string(st.max_chunk));
    const I len = kv->length(ch.seq);
    if (len < ch.n) return FailedPrecondition("decoder: sequence shorter than its chunk (Append first)");
    if (len > st.max_context)
      return InvalidArgument("decoder: sequence of " + std::to_string(len) + " tokens exceeds the context " +
                             std::to_string(st.max_context));
    for (I i = 0; i < ch.n; ++i)
      if (ch.tokens[i] < 0 || ch.tokens[i] >= V)
        return InvalidArgument("decoder: token " + std::to_string(ch.tokens[i]) + " outside [0, vocab_size=" +
                               std::to_string(V) + ")");
    N += ch.n;
  }
  if (N > st.max_rows)
    return InvalidArgument("decoder: " + std::to_string(N) + " rows > max_rows " + std::to_string(st.max_rows));
  st.logit_rows = 0;
  if (N == 0) return Status::Ok();
  I row = 0;
  for (const CachedChunk& ch : chunks) {
    const I start = kv->length(ch.seq) - ch.n;
    ops::EmbeddingGather(m.embed->w.data(), ch.tokens, ch.n, D, &st.x[row * D]);
    for (I i = 0; i < ch.n; ++i, ++row) {
      st.pos[row] = static_cast<int32_t>(start + i);
      if (ch.all_logits || i == ch.n - 1) st.logit_src[st.logit_rows++] = row;
    }
  }
  for (I l = 0; l < c.num_hidden_layers; ++l) {
    m.AttentionIn(l, st.a, st.x.data(), N, st.pos.data());
    Attend(l, chunks, *kv, N);
    m.AttentionOut(l, st.a, st.x.data(), N);
    m.Ffn(l, st.a, N, st.x.data(), st.load, st.ws);
  }
  // Final norm and lm_head only on the rows whose logits are wanted.
  for (I r = 0; r < st.logit_rows; ++r)
    std::memcpy(&st.hsel[r * D], &st.x[st.logit_src[r] * D], sizeof(T) * static_cast<size_t>(D));
  ops::RmsNorm(st.hsel.data(), D, m.final_norm->w.data(), st.a.xn.data(), st.rstd.data(), st.logit_rows, D,
               c.rms_norm_eps);
  m.Lin(st.a, st.a.xn.data(), m.lm_head->w.data(), st.logits.data(), st.logit_rows, D, V);
  return Status::Ok();
}

template class CachedForward<float>;

}  // namespace k2::engine
