// CpuBackend: the Backend interface over host memory, computed by the ops_cpu<float> op table; bf16
// storage is converted to float around each op and results rounded back. Also MakeBackend.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <new>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/cuda/backend_cuda.h"
#include "engine/ops_cpu.h"

namespace k2::engine {

using I = Backend::I;

Status Backend::UploadFloats(void* dst, const float* host_src, I n) {
  if (n <= 0) return Status::Ok();
  if (dtype() == DType::kF32) return Upload(dst, host_src, static_cast<size_t>(n) * 4);
  std::vector<uint16_t> h(static_cast<size_t>(n));
  for (I i = 0; i < n; ++i) h[static_cast<size_t>(i)] = FloatToBf16(host_src[i]);
  return Upload(dst, h.data(), h.size() * 2);
}

Status Backend::DownloadFloats(float* host_dst, const void* src, I n) {
  if (n <= 0) return Status::Ok();
  if (dtype() == DType::kF32) return Download(host_dst, src, static_cast<size_t>(n) * 4);
  std::vector<uint16_t> h(static_cast<size_t>(n));
  K2_RETURN_IF_ERROR(Download(h.data(), src, h.size() * 2));
  for (I i = 0; i < n; ++i) host_dst[i] = Bf16ToFloat(h[static_cast<size_t>(i)]);
  return Status::Ok();
}

namespace {

// Extent in elements of `rows` rows of `cols` at row stride ld.
I Span(I rows, I cols, I ld) { return rows <= 0 || cols <= 0 ? 0 : (rows - 1) * ld + cols; }

Status CheckDims(const char* op, std::initializer_list<I> dims) {
  for (I d : dims)
    if (d < 0) return InvalidArgument(std::string(op) + ": negative dimension " + std::to_string(d));
  return Status::Ok();
}

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(DType t) : Backend(t) {}
  std::string name() const override { return "cpu"; }

  Expected<void*> Alloc(size_t bytes) override {
    void* p = std::aligned_alloc(256, std::max<size_t>(256, (bytes + 255) / 256 * 256));
    if (!p) return ResourceExhausted("cpu backend: cannot allocate " + std::to_string(bytes) + " bytes");
    return p;
  }
  void Free(void* p) override { std::free(p); }
  Status Upload(void* dst, const void* src, size_t bytes) override { return Copy(dst, src, bytes); }
  Status Download(void* dst, const void* src, size_t bytes) override { return Copy(dst, src, bytes); }
  Status Memset(void* dst, int byte, size_t bytes) override {
    if (bytes) std::memset(dst, byte, bytes);
    return Status::Ok();
  }
  Status Copy(void* dst, const void* src, size_t bytes) override {
    if (bytes && dst != src) std::memmove(dst, src, bytes);
    return Status::Ok();
  }
  Status Synchronize() override { return Status::Ok(); }

  // ---- conversion helpers: in fp32 mode they hand back the caller's memory itself ----
  const float* In(const void* p, I n, std::vector<float>& buf) const {
    if (dtype() == DType::kF32 || p == nullptr) return static_cast<const float*>(p);
    buf.resize(static_cast<size_t>(std::max<I>(n, 1)));
    const auto* h = static_cast<const uint16_t*>(p);
    for (I i = 0; i < n; ++i) buf[static_cast<size_t>(i)] = Bf16ToFloat(h[i]);
    return buf.data();
  }
  // A float view of an output span; `load` converts the current contents (accumulation, strided rows).
  float* Out(void* p, I n, std::vector<float>& buf, bool load) const {
    if (dtype() == DType::kF32 || p == nullptr) return static_cast<float*>(p);
    if (load) {
      In(p, n, buf);
    } else {
      buf.assign(static_cast<size_t>(std::max<I>(n, 1)), 0.0f);
    }
    return buf.data();
  }
  void Store(void* p, const float* f, I n) const {
    if (dtype() == DType::kF32 || p == nullptr) return;
    auto* h = static_cast<uint16_t*>(p);
    for (I i = 0; i < n; ++i) h[i] = FloatToBf16(f[i]);
  }

  Status Gemm(bool ta, bool tb, I M, I N, I K, float alpha, const void* A, I lda, const void* B, I ldb,
              float beta, void* C, I ldc) override {
    K2_RETURN_IF_ERROR(CheckDims("Gemm", {M, N, K}));
    // The CUDA backend's rule (cuBLAS would reject it; OpenBLAS would print and skip).
    if (lda < std::max<I>(1, ta ? M : K) || ldb < std::max<I>(1, tb ? K : N) || ldc < std::max<I>(1, N))
      return InvalidArgument("Gemm: leading dimension too small (lda=" + std::to_string(lda) + " ldb=" +
                             std::to_string(ldb) + " ldc=" + std::to_string(ldc) + ")");
    std::vector<float> a, b, c;
    const I nc = Span(M, N, ldc);
    const float* af = In(A, Span(ta ? K : M, ta ? M : K, lda), a);
    const float* bf = In(B, Span(tb ? N : K, tb ? K : N, ldb), b);
    float* cf = Out(C, nc, c, true);
    if (K == 0) {
      for (I i = 0; i < M; ++i)
        for (I j = 0; j < N; ++j) cf[i * ldc + j] = beta == 0.0f ? 0.0f : beta * cf[i * ldc + j];
    } else {
      ops::Gemm<float>(ta, tb, M, N, K, alpha, af, lda, bf, ldb, beta, cf, ldc);
    }
    Store(C, cf, nc);
    return Status::Ok();
  }

  Status GemmStridedBatched(bool ta, bool tb, I M, I N, I K, float alpha, const void* A, I lda, I sA,
                            const void* B, I ldb, I sB, float beta, void* C, I ldc, I sC, I batch) override {
    const size_t es = elem_size();
    for (I i = 0; i < batch; ++i)
      K2_RETURN_IF_ERROR(Gemm(ta, tb, M, N, K, alpha, static_cast<const char*>(A) + i * sA * es, lda,
                              static_cast<const char*>(B) + i * sB * es, ldb, beta,
                              static_cast<char*>(C) + i * sC * es, ldc));
    return Status::Ok();
  }

  Status Linear(const void* x, const void* W, void* y, I N, I in, I out, bool accumulate) override {
    return Gemm(false, true, N, out, in, 1.0f, x, in, W, in, accumulate ? 1.0f : 0.0f, y, out);
  }

  Status LinearBackward(const void* x, const void* W, const void* dy, void* dx, float* dW, I N, I in, I out,
                        bool dx_acc) override {
    if (dx) K2_RETURN_IF_ERROR(Gemm(false, false, N, in, out, 1.0f, dy, out, W, in, dx_acc ? 1.0f : 0.0f, dx, in));
    if (dW && N > 0) {
      std::vector<float> a, b;
      ops::Gemm<float>(true, false, out, in, N, 1.0f, In(dy, N * out, a), out, In(x, N * in, b), in, 1.0f, dW, in);
    }
    return Status::Ok();
  }

  Status RmsNorm(const void* x, I ldx, const void* w, void* y, float* rstd, I N, I D, double eps) override {
    K2_RETURN_IF_ERROR(CheckDims("RmsNorm", {N, D}));
    std::vector<float> a, b, c;
    float* yf = Out(y, N * D, c, false);
    ops::RmsNorm<float>(In(x, Span(N, D, ldx), a), ldx, In(w, D, b), yf, rstd, N, D, eps);
    Store(y, yf, N * D);
    return Status::Ok();
  }

  Status RmsNormBackward(const void* x, I ldx, const void* w, const float* rstd, const void* dy, void* dx, I lddx,
                         float* dw, I N, I D, bool dx_acc) override {
    std::vector<float> a, b, c, d;
    const I ndx = Span(N, D, lddx);
    float* dxf = Out(dx, ndx, d, true);
    ops::RmsNormBackward<float>(In(x, Span(N, D, ldx), a), ldx, In(w, D, b), rstd, In(dy, N * D, c), dxf, lddx, dw,
                                N, D, dx_acc);
    Store(dx, dxf, ndx);
    return Status::Ok();
  }

  Status Rope(void* x, I N, I heads, I row_stride, I head_stride, const int32_t* pos, const double* inv_freq, I d,
              bool interleave, double attn_factor, bool inverse) override {
    if (d % 2 != 0) return InvalidArgument("Rope: odd rotary dimension " + std::to_string(d));
    if (N <= 0 || heads <= 0 || d == 0) return Status::Ok();
    const I n = (N - 1) * row_stride + (heads - 1) * head_stride + d;
    std::vector<float> a;
    float* xf = Out(x, n, a, true);
    ops::Rope<float>(xf, N, heads, row_stride, head_stride, pos, inv_freq, d, interleave, attn_factor, inverse);
    Store(x, xf, n);
    return Status::Ok();
  }

  Status SwiGlu(const void* g, const void* u, void* a, I n) override {
    std::vector<float> gb, ub, ab;
    float* af = Out(a, n, ab, false);
    ops::SwiGlu<float>(In(g, n, gb), In(u, n, ub), af, n);
    Store(a, af, n);
    return Status::Ok();
  }

  Status SwiGluBackward(const void* g, const void* u, const void* da, void* dg, void* du, I n) override {
    std::vector<float> gb, ub, db, dgb, dub;
    float* dgf = Out(dg, n, dgb, false);
    float* duf = Out(du, n, dub, false);
    ops::SwiGluBackward<float>(In(g, n, gb), In(u, n, ub), In(da, n, db), dgf, duf, n);
    Store(dg, dgf, n);
    Store(du, duf, n);
    return Status::Ok();
  }

  Status Add(const void* a, const void* b, void* y, I n) override {
    K2_RETURN_IF_ERROR(CheckDims("Add", {n}));
    std::vector<float> ab, bb, yb;
    // In fp32 mode y may be a or b itself (ops::Add reads each element before writing it); in bf16 mode
    // a and b are converted before y is written.
    const float* af = In(a, n, ab);
    const float* bf = In(b, n, bb);
    float* yf = Out(y, n, yb, false);
    ops::Add<float>(af, bf, yf, n);
    Store(y, yf, n);
    return Status::Ok();
  }

  static Status CheckTokens(const char* op, const int32_t* tokens, I N, I D, I V) {
    if (N < 0 || D < 1 || V < 1)
      return InvalidArgument(std::string(op) + ": bad shape N=" + std::to_string(N) + " D=" + std::to_string(D) +
                             " V=" + std::to_string(V));
    const I bad = ops::FirstTokenOutside(tokens, N, V);
    if (bad >= 0)
      return InvalidArgument(std::string(op) + ": token " + std::to_string(bad) + " is " + std::to_string(tokens[bad]) +
                             ", outside [0, " + std::to_string(V) + ")");
    return Status::Ok();
  }

  Status EmbeddingGather(const void* table, I V, const int32_t* tokens, I N, I D, void* y) override {
    K2_RETURN_IF_ERROR(CheckTokens("EmbeddingGather", tokens, N, D, V));
    // A row copy in the storage dtype itself (no conversion of the [V, D] table).
    if (dtype() == DType::kF32) {
      ops::EmbeddingGather<float>(static_cast<const float*>(table), tokens, N, D, static_cast<float*>(y));
    } else {
      ops::EmbeddingGather<uint16_t>(static_cast<const uint16_t*>(table), tokens, N, D, static_cast<uint16_t*>(y));
    }
    return Status::Ok();
  }

  Status EmbeddingScatterAdd(const void* dy, const int32_t* tokens, I N, I D, I V, float* dtable) override {
    K2_RETURN_IF_ERROR(CheckTokens("EmbeddingScatterAdd", tokens, N, D, V));
    std::vector<float> db;
    ops::EmbeddingScatterAdd<float>(In(dy, N * D, db), tokens, N, D, dtable);
    return Status::Ok();
  }

  static Status CheckAttn(const AttnShape& s) {
    if (s.B < 0 || s.H < 1 || s.T < 0 || s.dq < 1 || s.dv < 1)
      return InvalidArgument("attention: bad shape B=" + std::to_string(s.B) + " H=" + std::to_string(s.H) +
                             " T=" + std::to_string(s.T) + " dq=" + std::to_string(s.dq) + " dv=" + std::to_string(s.dv));
    return Status::Ok();
  }

  // Segment parents must follow the layout rules the block-diagonal ops rely on (ops::CheckSharedPrefix).
  static Status CheckParents(const AttnShape& s, const int32_t* seg, const int32_t* par) {
    if (par == nullptr) return Status::Ok();
    for (I b = 0; b < s.B; ++b) {
      const std::string why = ops::CheckSharedPrefix(seg ? seg + b * s.T : nullptr, par + b * s.T, s.T);
      if (!why.empty()) return InvalidArgument("attention: row " + std::to_string(b) + ": " + why);
    }
    return Status::Ok();
  }

  Status AttentionForward(const AttnShape& s, const void* q, const void* k, const void* v, const int32_t* seg,
                          const int32_t* par, void* o, float* lse, float* max_logit) override {
    K2_RETURN_IF_ERROR(CheckAttn(s));
    K2_RETURN_IF_ERROR(CheckParents(s, seg, par));
    const I T = s.T, BH = s.B * s.H;
    std::vector<float> qb, kb, vb, ob, p(static_cast<size_t>(std::max<I>(T * T, 1)));
    const float* qf = In(q, BH * T * s.dq, qb);
    const float* kf = In(k, BH * T * s.dq, kb);
    const float* vf = In(v, BH * T * s.dv, vb);
    float* of = Out(o, BH * T * s.dv, ob, false);
    for (I h = 0; h < s.H; ++h) max_logit[h] = -std::numeric_limits<float>::infinity();
    for (I b = 0; b < s.B; ++b)
      for (I h = 0; h < s.H; ++h) {
        const I bh = b * s.H + h;
        const float* qh = qf + bh * T * s.dq;
        const float* kh = kf + bh * T * s.dq;
        const int32_t* sg = seg ? seg + b * T : nullptr;
        const int32_t* pr = par ? par + b * T : nullptr;
        const double m = ops::CausalAttention<float>(qh, kh, vf + bh * T * s.dv, p.data(), of + bh * T * s.dv, T,
                                                     s.dq, s.dv, s.scale, sg, pr);
        if (T > 0) max_logit[h] = std::max(max_logit[h], static_cast<float>(m));
        // The log-sum-exp the flash-style GPU kernel saves for its backward (same visibility rule).
        auto visible = [&](I i, I j) { return !sg || sg[j] == sg[i] || (pr && pr[i] >= 0 && sg[j] == pr[i]); };
        std::vector<double> sc(static_cast<size_t>(std::max<I>(T, 1)));
        for (I i = 0; i < T; ++i) {
          double mx = -std::numeric_limits<double>::infinity();
          for (I j = 0; j <= i; ++j) {
            if (!visible(i, j)) continue;
            double d = 0;
            for (I c = 0; c < s.dq; ++c) d += static_cast<double>(qh[i * s.dq + c]) * kh[j * s.dq + c];
            sc[static_cast<size_t>(j)] = d * s.scale;
            mx = std::max(mx, sc[static_cast<size_t>(j)]);
          }
          double z = 0;
          for (I j = 0; j <= i; ++j)
            if (visible(i, j)) z += std::exp(sc[static_cast<size_t>(j)] - mx);
          lse[bh * T + i] = static_cast<float>(mx + std::log(z));
        }
      }
    Store(o, of, BH * T * s.dv);
    return Status::Ok();
  }

  Status AttentionBackward(const AttnShape& s, const void* q, const void* k, const void* v, const int32_t* seg,
                           const int32_t* par, const void*, const float*, const void* dout, void* dq, void* dk,
                           void* dv) override {
    K2_RETURN_IF_ERROR(CheckAttn(s));
    K2_RETURN_IF_ERROR(CheckParents(s, seg, par));
    // The CPU path recomputes the softmax matrix per (row, head) and runs ops::CausalAttentionBackward;
    // o and lse are not needed here (the GPU kernel uses them to avoid the [T,T] matrix).
    const I T = s.T, BH = s.B * s.H;
    const size_t tt = static_cast<size_t>(std::max<I>(T * T, 1));
    std::vector<float> qb, kb, vb, db, dqb, dkb, dvb, p(tt), ds(tt), otmp(static_cast<size_t>(std::max<I>(T * s.dv, 1)));
    const float* qf = In(q, BH * T * s.dq, qb);
    const float* kf = In(k, BH * T * s.dq, kb);
    const float* vf = In(v, BH * T * s.dv, vb);
    const float* df = In(dout, BH * T * s.dv, db);
    float* dqf = Out(dq, BH * T * s.dq, dqb, false);
    float* dkf = Out(dk, BH * T * s.dq, dkb, false);
    float* dvf = Out(dv, BH * T * s.dv, dvb, false);
    for (I b = 0; b < s.B; ++b)
      for (I h = 0; h < s.H; ++h) {
        const I bh = b * s.H + h;
        const float *qh = qf + bh * T * s.dq, *kh = kf + bh * T * s.dq, *vh = vf + bh * T * s.dv;
        const int32_t* sg = seg ? seg + b * T : nullptr;
        const int32_t* pr = par ? par + b * T : nullptr;
        ops::CausalAttention<float>(qh, kh, vh, p.data(), otmp.data(), T, s.dq, s.dv, s.scale, sg, pr);
        ops::CausalAttentionBackward<float>(qh, kh, vh, p.data(), df + bh * T * s.dv, dqf + bh * T * s.dq,
                                            dkf + bh * T * s.dq, dvf + bh * T * s.dv, ds.data(), T, s.dq, s.dv,
                                            s.scale, sg, pr);
      }
    Store(dq, dqf, BH * T * s.dq);
    Store(dk, dkf, BH * T * s.dq);
    Store(dv, dvf, BH * T * s.dv);
    return Status::Ok();
  }

  Status MlaDecodeAttention(const MlaDecodeShape& s, const void* q_lat, const void* q_pe, const void* pages,
                            const int32_t* page_table, const int32_t* row_seq, const int32_t* row_pos,
                            void* o_lat) override {
    if (s.rows < 0 || s.H < 1 || s.rkv < 1 || s.dr < 0 || s.page_size < 1 || s.layer < 0 || s.layer >= s.num_layers)
      return InvalidArgument("MlaDecodeAttention: bad shape");
    const I W = s.rkv + s.dr, es = static_cast<I>(elem_size());
    const bool bf = dtype() == DType::kBF16;
    auto at = [&](const void* base, I i) -> float {
      return bf ? Bf16ToFloat(static_cast<const uint16_t*>(base)[i]) : static_cast<const float*>(base)[i];
    };
    (void)es;
    std::vector<float> ob;
    float* of = Out(o_lat, s.rows * s.H * s.rkv, ob, false);
    std::vector<double> sc, acc(static_cast<size_t>(s.rkv));
    for (I r = 0; r < s.rows; ++r) {
      const I nk = static_cast<I>(row_pos[r]) + 1;
      if (nk > s.max_pages * s.page_size)
        return InvalidArgument("MlaDecodeAttention: row " + std::to_string(r) + " position beyond the page table");
      sc.assign(static_cast<size_t>(nk), 0.0);
      for (I h = 0; h < s.H; ++h) {
        double mx = -std::numeric_limits<double>::infinity();
        for (I j = 0; j < nk; ++j) {
          const I page = page_table[static_cast<I>(row_seq[r]) * s.max_pages + j / s.page_size];
          const I key = ((page * s.num_layers + s.layer) * s.page_size + j % s.page_size) * W;
          double d = 0;
          for (I c = 0; c < s.rkv; ++c) d += static_cast<double>(at(q_lat, (r * s.H + h) * s.rkv + c)) * at(pages, key + c);
          for (I c = 0; c < s.dr; ++c)
            d += static_cast<double>(at(q_pe, r * s.q_pe_row_stride + h * s.q_pe_head_stride + c)) *
                 at(pages, key + s.rkv + c);
          sc[static_cast<size_t>(j)] = d * s.scale;
          mx = std::max(mx, d * s.scale);
        }
        double z = 0;
        std::fill(acc.begin(), acc.end(), 0.0);
        for (I j = 0; j < nk; ++j) {
          const double p = std::exp(sc[static_cast<size_t>(j)] - mx);
          z += p;
          const I page = page_table[static_cast<I>(row_seq[r]) * s.max_pages + j / s.page_size];
          const I key = ((page * s.num_layers + s.layer) * s.page_size + j % s.page_size) * W;
          for (I c = 0; c < s.rkv; ++c) acc[static_cast<size_t>(c)] += p * at(pages, key + c);
        }
        for (I c = 0; c < s.rkv; ++c) of[(r * s.H + h) * s.rkv + c] = static_cast<float>(acc[static_cast<size_t>(c)] / z);
      }
    }
    Store(o_lat, of, s.rows * s.H * s.rkv);
    return Status::Ok();
  }

  Status RouterTopK(const void* logits, const float* bias, I N, I E, I n_group, I topk_group, I k, bool norm_topk,
                    double routed_scaling, int32_t* idx, float* weights, float* scores) override {
    if (E < 1 || n_group < 1 || E % n_group != 0 || E / n_group < 2 || topk_group < 1 || topk_group > n_group ||
        k < 1 || k > topk_group * (E / n_group))
      return InvalidArgument("RouterTopK: bad shape E=" + std::to_string(E) + " n_group=" + std::to_string(n_group) +
                             " topk_group=" + std::to_string(topk_group) + " k=" + std::to_string(k));
    std::vector<float> lb, sc(static_cast<size_t>(std::max<I>(N * E, 1))), sb(sc.size());
    std::vector<float> work(static_cast<size_t>(E + n_group));
    std::vector<I> iwork(work.size());
    const float* lf = In(logits, N * E, lb);
    ops::Route<float, float>(lf, bias, N, E, n_group, topk_group, k, norm_topk, routed_scaling, sc.data(), sb.data(), idx,
                             weights, work.data(), iwork.data());
    if (scores) std::copy(sc.begin(), sc.begin() + N * E, scores);
    return Status::Ok();
  }

  Status CrossEntropy(const void* logits, const int32_t* targets, const float* weights, I N, I V, void* dlogits,
                      double dscale, float* loss, float* logp, float* entropy) override {
    if (V < 1) return InvalidArgument("CrossEntropy: vocabulary of " + std::to_string(V));
    for (I n = 0; n < N; ++n)
      if (weights[n] != 0.0f && (targets[n] < 0 || targets[n] >= V))
        return InvalidArgument("CrossEntropy: row " + std::to_string(n) + " has weight " + std::to_string(weights[n]) +
                               " and target " + std::to_string(targets[n]) + " outside [0, " + std::to_string(V) + ")");
    std::vector<float> lb, db;
    const float* lf = In(logits, N * V, lb);
    // fp32 mode with dlogits == logits runs in place: ops::CrossEntropy reads each row before writing it.
    float* df = dlogits == nullptr ? nullptr
                : dtype() == DType::kF32 ? static_cast<float*>(dlogits)
                                         : Out(dlogits, N * V, db, false);
    for (I n = 0; n < N; ++n) {
      float lp = 0, ent = 0;
      const double l = ops::CrossEntropy<float>(lf + n * V, targets + n, weights + n, 1, V, df ? df + n * V : nullptr,
                                                dscale, &lp, &ent);
      loss[n] = static_cast<float>(l);
      if (logp) logp[n] = lp;
      if (entropy) entropy[n] = ent;
    }
    if (df) Store(dlogits, df, N * V);
    return Status::Ok();
  }

  Status MoePermute(const void* x, I N, I D, const int32_t* idx, I K, I E, void* xe, int32_t* row_of_slot,
                    int32_t* offsets) override {
    for (I i = 0; i < N * K; ++i)
      if (idx[i] < 0 || idx[i] >= E)
        return InvalidArgument("MoePermute: slot " + std::to_string(i) + " names expert " + std::to_string(idx[i]) +
                               " outside [0, " + std::to_string(E) + ")");
    std::vector<int32_t> load(static_cast<size_t>(E));
    ops::MoePlan<int32_t>(idx, N * K, E, offsets, row_of_slot, load.data());
    const size_t row = static_cast<size_t>(D) * elem_size();
    for (I i = 0; i < N * K; ++i)
      std::memcpy(static_cast<char*>(xe) + row_of_slot[i] * row, static_cast<const char*>(x) + (i / K) * row, row);
    return Status::Ok();
  }

  Status MoeUnpermute(const void* ye, const int32_t* row_of_slot, const float* w, I N, I K, I D, void* y,
                      bool accumulate) override {
    std::vector<float> yb, eb;
    float* yf = Out(y, N * D, yb, accumulate);
    const float* ef = In(ye, N * K * D, eb);
    if (!accumulate) std::fill(yf, yf + N * D, 0.0f);
    ops::MoeCombine<float, float, int32_t>(ef, row_of_slot, w, N, K, D, yf);
    Store(y, yf, N * D);
    return Status::Ok();
  }

  Status MoeUnpermuteBackward(const void* dy, const void* ye, const int32_t* row_of_slot, const float* w, I N, I K,
                              I D, void* dye, float* dw) override {
    std::vector<float> db, eb, ob;
    const float* df = In(dy, N * D, db);
    const float* ef = In(ye, N * K * D, eb);
    float* of = Out(dye, N * K * D, ob, false);
    for (I n = 0; n < N; ++n)
      for (I k = 0; k < K; ++k) {
        const I r = row_of_slot[n * K + k];
        const float wk = w ? w[n * K + k] : 1.0f;
        double dot = 0;
        for (I d = 0; d < D; ++d) {
          of[r * D + d] = wk * df[n * D + d];
          dot += static_cast<double>(df[n * D + d]) * ef[r * D + d];
        }
        if (dw) dw[n * K + k] = static_cast<float>(dot);
      }
    Store(dye, of, N * K * D);
    return Status::Ok();
  }

  Status GroupedLinear(const void* x, const void* W, void* y, const int32_t* host_offsets, I E, I in,
                       I out) override {
    const size_t es = elem_size();
    for (I e = 0; e < E; ++e) {
      const I r0 = host_offsets[e], n = host_offsets[e + 1] - r0;
      if (n < 0) return InvalidArgument("GroupedLinear: offsets decrease at expert " + std::to_string(e));
      if (n == 0) continue;
      K2_RETURN_IF_ERROR(Linear(static_cast<const char*>(x) + r0 * in * es, static_cast<const char*>(W) + e * out * in * es,
                                static_cast<char*>(y) + r0 * out * es, n, in, out, false));
    }
    return Status::Ok();
  }

  Status GroupedLinearBackward(const void* x, const void* W, const void* dy, void* dx, float* dW,
                               const int32_t* host_offsets, I E, I in, I out) override {
    const size_t es = elem_size();
    for (I e = 0; e < E; ++e) {
      const I r0 = host_offsets[e], n = host_offsets[e + 1] - r0;
      if (n < 0) return InvalidArgument("GroupedLinearBackward: offsets decrease at expert " + std::to_string(e));
      if (n == 0) continue;
      K2_RETURN_IF_ERROR(LinearBackward(static_cast<const char*>(x) + r0 * in * es,
                                        static_cast<const char*>(W) + e * out * in * es,
                                        static_cast<const char*>(dy) + r0 * out * es,
                                        dx ? static_cast<char*>(dx) + r0 * in * es : nullptr,
                                        dW ? dW + e * out * in : nullptr, n, in, out, false));
    }
    return Status::Ok();
  }

  Status NewtonSchulz(const float* G, I rows, I cols, I steps, float* out) override {
    if (rows < 1 || cols < 1 || steps < 0) return InvalidArgument("NewtonSchulz: bad shape");
    // The same GEMM sequence as the CUDA backend, on S-typed host buffers through this backend's Gemm, so
    // bf16 mode rounds where the GPU rounds.
    const bool tr = rows > cols;
    const I r = tr ? cols : rows, c = tr ? rows : cols;
    double nrm = 0;
    for (I i = 0; i < rows * cols; ++i) nrm += static_cast<double>(G[i]) * G[i];
    const float inv = static_cast<float>(1.0 / (std::sqrt(nrm) + 1e-7));
    std::vector<float> xf(static_cast<size_t>(r * c));
    for (I i = 0; i < rows; ++i)
      for (I j = 0; j < cols; ++j) (tr ? xf[j * rows + i] : xf[i * cols + j]) = G[i * cols + j] * inv;
    const size_t es = elem_size();
    std::vector<char> x(static_cast<size_t>(r * c) * es), y(x.size()), a(static_cast<size_t>(r * r) * es), b(a.size());
    if (dtype() == DType::kF32) {
      std::memcpy(x.data(), xf.data(), x.size());
    } else {
      Store(x.data(), xf.data(), r * c);
    }
    for (I s = 0; s < steps; ++s) {
      K2_RETURN_IF_ERROR(Gemm(false, true, r, r, c, 1.0f, x.data(), c, x.data(), c, 0.0f, a.data(), r));   // A = X X^T
      std::memcpy(b.data(), a.data(), a.size());
      K2_RETURN_IF_ERROR(Gemm(false, false, r, r, r, 2.0315f, a.data(), r, a.data(), r, -4.7750f, b.data(), r));  // B
      std::memcpy(y.data(), x.data(), x.size());
      K2_RETURN_IF_ERROR(Gemm(false, false, r, c, r, 1.0f, b.data(), r, y.data(), c, 3.4445f, x.data(), c));  // X
    }
    std::vector<float> tmp;
    const float* xr = In(x.data(), r * c, tmp);
    for (I i = 0; i < rows; ++i)
      for (I j = 0; j < cols; ++j) out[i * cols + j] = tr ? xr[j * rows + i] : xr[i * cols + j];
    return Status::Ok();
  }

  // The optimizer's own ops:: loops on the fp32 masters, then the S copy (a plain copy in fp32 mode).
  void StoreWeights(void* w_s, const float* w, I n) const {
    if (w_s == nullptr) return;
    if (dtype() == DType::kF32) {
      if (w_s != w) std::memcpy(w_s, w, static_cast<size_t>(n) * 4);
    } else {
      Store(w_s, w, n);
    }
  }

  Status AdamWUpdate(float* w, void* w_s, const float* g, float* m, float* v, I n, const AdamWArgs& a) override {
    K2_RETURN_IF_ERROR(CheckDims("AdamWUpdate", {n}));
    const ops::AdamWParams<float> p{a.lr, a.beta1, a.beta2, a.eps, a.weight_decay, a.grad_scale, a.bias_correction1,
                                    a.bias_correction2};
    ops::AdamWUpdate<float>(w, g, m, v, n, p);
    StoreWeights(w_s, w, n);
    return Status::Ok();
  }

  Status MuonMomentum(const float* g, float* m, float* u, I n, float mu, float grad_scale, bool nesterov) override {
    K2_RETURN_IF_ERROR(CheckDims("MuonMomentum", {n}));
    ops::MuonMomentum<float>(g, m, u, n, mu, grad_scale, nesterov);
    return Status::Ok();
  }

  Status MuonApply(float* w, void* w_s, const float* o, I n, float lr, float scale, float weight_decay) override {
    K2_RETURN_IF_ERROR(CheckDims("MuonApply", {n}));
    ops::MuonApply<float>(w, o, n, lr, scale, weight_decay);
    StoreWeights(w_s, w, n);
    return Status::Ok();
  }
};

}  // namespace

std::unique_ptr<Backend> MakeCpuBackend(DType dtype) { return std::make_unique<CpuBackend>(dtype); }

Expected<std::unique_ptr<Backend>> MakeBackend(std::string_view kind, const BackendOptions& opts) {
  if (kind == "cpu") return MakeCpuBackend(opts.dtype);
  if (kind == "cuda") return MakeCudaBackend(opts);
  return InvalidArgument("backend: unknown kind '" + std::string(kind) + "' (expected cpu or cuda)");
}

}  // namespace k2::engine
