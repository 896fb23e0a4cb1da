// CPU implementations of the engine op table (OpenBLAS GEMMs, OpenMP loops) and their plain-loop
// references. Instantiated for float and double; double is used by the finite-difference tests.
#include "engine/ops_cpu.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "core/check.h"

namespace k2::engine::ops {

template <>
void Gemm<float>(bool ta, bool tb, I M, I N, I K, float alpha, const float* A, I lda, const float* B, I ldb,
                 float beta, float* C, I ldc) {
  if (M == 0 || N == 0) return;
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
              static_cast<int>(M), static_cast<int>(N), static_cast<int>(K), alpha, A, static_cast<int>(lda), B,
              static_cast<int>(ldb), beta, C, static_cast<int>(ldc));
}

template <>
void Gemm<double>(bool ta, bool tb, I M, I N, I K, double alpha, const double* A, I lda, const double* B,
                  I ldb, double beta, double* C, I ldc) {
  if (M == 0 || N == 0) return;
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
              static_cast<int>(M), static_cast<int>(N), static_cast<int>(K), alpha, A, static_cast<int>(lda), B,
              static_cast<int>(ldb), beta, C, static_cast<int>(ldc));
}

template <class T>
void Linear(const T* x, const T* W, T* y, I N, I in, I out, bool accumulate) {
  Gemm<T>(false, true, N, out, in, T(1), x, in, W, in, accumulate ? T(1) : T(0), y, out);
}

template <class T>
void LinearBackward(const T* x, const T* W, const T* dy, T* dx, T* dW, I N, I in, I out, bool dx_acc) {
  if (dx) Gemm<T>(false, false, N, in, out, T(1), dy, out, W, in, dx_acc ? T(1) : T(0), dx, in);
  if (dW) Gemm<T>(true, false, out, in, N, T(1), dy, out, x, in, T(1), dW, in);
}

template <class T>
void RmsNorm(const T* x, I ldx, const T* w, T* y, T* rstd, I N, I D, double eps) {
#pragma omp parallel for schedule(static) if (N * D > 32768)
  for (I n = 0; n < N; ++n) {
    const T* xr = x + n * ldx;
    double ss = 0;
    for (I d = 0; d < D; ++d) ss += static_cast<double>(xr[d]) * xr[d];
    T r = static_cast<T>(1.0 / std::sqrt(ss / static_cast<double>(D) + eps));
    rstd[n] = r;
    T* yr = y + n * D;
    for (I d = 0; d < D; ++d) yr[d] = xr[d] * r * w[d];
  }
}

template <class T>
void RmsNormBackward(const T* x, I ldx, const T* w, const T* rstd, const T* dy, T* dx, I lddx, T* dw, I N,
                     I D, bool dx_acc) {
  // y_d = x_d r w_d, r = (mean x^2 + eps)^-1/2: dx_d = r w_d dy_d - x_d r^3/D sum_e dy_e w_e x_e.
#pragma omp parallel for schedule(static) if (N * D > 32768)
  for (I n = 0; n < N; ++n) {
    const T* xr = x + n * ldx;
    const T* dyr = dy + n * D;
    T r = rstd[n];
    double dot = 0;
    for (I d = 0; d < D; ++d) dot += static_cast<double>(dyr[d]) * w[d] * xr[d];
    T c = static_cast<T>(dot * r * r * r / static_cast<double>(D));
    T* dxr = dx + n * lddx;
    for (I d = 0; d < D; ++d) {
      T v = r * w[d] * dyr[d] - xr[d] * c;
      dxr[d] = dx_acc ? dxr[d] + v : v;
    }
  }
  // dw is reduced serially over rows so the result does not depend on the thread count.
  for (I n = 0; n < N; ++n) {
    const T* xr = x + n * ldx;
    const T* dyr = dy + n * D;
    T r = rstd[n];
    for (I d = 0; d < D; ++d) dw[d] += dyr[d] * xr[d] * r;
  }
}

template <class T>
void Rope(T* x, I N, I heads, I row_stride, I head_stride, const int32_t* pos, const double* inv_freq, I d,
          bool interleave, double attn_factor, bool inverse) {
  const I half = d / 2;
#pragma omp parallel for schedule(static) if (N * heads * d > 32768)
  for (I n = 0; n < N; ++n) {
    for (I j = 0; j < half; ++j) {
      double ang = static_cast<double>(pos[n]) * inv_freq[j];
      // cos/sin rounded to T as the reference frameworks do (they build the tables in the model dtype).
      T c = static_cast<T>(std::cos(ang) * attn_factor);
      T s = static_cast<T>(std::sin(ang) * attn_factor);
      if (inverse) s = -s;
      I a = interleave ? 2 * j : j;
      I b = interleave ? 2 * j + 1 : j + half;
      for (I h = 0; h < heads; ++h) {
        T* v = x + n * row_stride + h * head_stride;
        T x0 = v[a], x1 = v[b];
        v[a] = x0 * c - x1 * s;
        v[b] = x1 * c + x0 * s;
      }
    }
  }
}

template <class T>
static inline T Sigmoid(T v) {
  return T(1) / (T(1) + std::exp(-v));
}

template <class T>
void SwiGlu(const T* g, const T* u, T* a, I n) {
#pragma omp parallel for schedule(static) if (n > 65536)
  for (I i = 0; i < n; ++i) a[i] = g[i] * Sigmoid(g[i]) * u[i];
}

template <class T>
void SwiGluBackward(const T* g, const T* u, const T* da, T* dg, T* du, I n) {
#pragma omp parallel for schedule(static) if (n > 65536)
  for (I i = 0; i < n; ++i) {
    T s = Sigmoid(g[i]);
    T silu = g[i] * s;
    du[i] = da[i] * silu;
    dg[i] = da[i] * u[i] * s * (T(1) + g[i] * (T(1) - s));
  }
}

template <class T>
double CausalAttention(const T* q, const T* k, const T* v, T* p, T* o, I Tn, I dq, I dv, double scale) {
  return CausalAttention(q, k, v, p, o, Tn, dq, dv, scale, static_cast<const int32_t*>(nullptr));
}

// True when every segment id forms one contiguous run (packed rows: documents laid one after another),
// so attention is block-diagonal and only the blocks need computing.
static bool ContiguousSegments(const int32_t* seg, I Tn) {
  for (I s = 1; s < Tn; ++s)
    if (seg[s] != seg[s - 1])
      for (I j = 0; j < s - 1; ++j)
        if (seg[j] == seg[s]) return false;
  return true;
}

// Softmax of row i over keys [s, i] in place (the rest of the row zeroed); returns the row's max logit.
template <class T>
static T SoftmaxRow(T* row, I s, I i, I Tn) {
  std::fill(row, row + s, T(0));
  T m = row[i];
  for (I j = s; j < i; ++j) m = std::max(m, row[j]);
  T sum = 0;
  for (I j = s; j <= i; ++j) {
    row[j] = std::exp(row[j] - m);
    sum += row[j];
  }
  const T inv = T(1) / sum;
  for (I j = s; j <= i; ++j) row[j] *= inv;
  std::fill(row + i + 1, row + Tn, T(0));
  return m;
}

std::string CheckSharedPrefix(const int32_t* seg, const int32_t* par, I Tn) {
  if (par == nullptr) return "";
  if (seg == nullptr) return "segment parents need segment ids";
  if (!ContiguousSegments(seg, Tn)) return "segment parents need each segment id to be one contiguous run";
  for (I s = 0; s < Tn;) {
    I e = s + 1;
    while (e < Tn && seg[e] == seg[s]) ++e;
    for (I i = s; i < e; ++i)
      if (par[i] != par[s])
        return "position " + std::to_string(i) + ": parent " + std::to_string(par[i]) + " differs from its segment's " +
               std::to_string(par[s]) + " (one parent per segment)";
    if (par[s] >= 0) {
      if (par[s] == seg[s]) return "position " + std::to_string(s) + ": segment " + std::to_string(seg[s]) + " is its own parent";
      I j = s - 1;
      while (j >= 0 && seg[j] != par[s]) --j;
      if (j < 0)
        return "position " + std::to_string(s) + ": parent segment " + std::to_string(par[s]) +
               " does not come before its child segment " + std::to_string(seg[s]) + " in the row";
      if (par[j] >= 0)
        return "position " + std::to_string(s) + ": parent segment " + std::to_string(par[s]) +
               " has a parent itself (one level only)";
    }
    s = e;
  }
  return "";
}

// The run [ps, pe) of segment `parent`, which lies before position s (CheckSharedPrefix holds).
static void ParentRun(const int32_t* seg, I s, int32_t parent, I* ps, I* pe) {
  I j = s - 1;
  while (seg[j] != parent) --j;
  *pe = j + 1;
  while (j > 0 && seg[j - 1] == parent) --j;
  *ps = j;
}

template <class T>
double CausalAttention(const T* q, const T* k, const T* v, T* p, T* o, I Tn, I dq, I dv, double scale,
                       const int32_t* seg) {
  return CausalAttention(q, k, v, p, o, Tn, dq, dv, scale, seg, static_cast<const int32_t*>(nullptr));
}

template <class T>
double CausalAttention(const T* q, const T* k, const T* v, T* p, T* o, I Tn, I dq, I dv, double scale,
                       const int32_t* seg, const int32_t* par) {
  double mx = -std::numeric_limits<double>::infinity();
  if (seg && ContiguousSegments(seg, Tn)) {
    // Block-diagonal: each document's own causal square (a packed row of n documents costs ~1/n of the
    // full square). Entries outside the blocks are written 0, as the masked form leaves them. A segment
    // with a parent also attends to all of the parent's keys: one more [L, Lp] block left of its square.
    for (I s = 0; s < Tn;) {
      I e = s + 1;
      while (e < Tn && seg[e] == seg[s]) ++e;
      const I L = e - s;
      if (par && par[s] >= 0) {
        I ps = 0, pe = 0;
        ParentRun(seg, s, par[s], &ps, &pe);
        const I Lp = pe - ps;
        Gemm<T>(false, true, L, Lp, dq, static_cast<T>(scale), q + s * dq, dq, k + ps * dq, dq, T(0), p + s * Tn + ps, Tn);
        Gemm<T>(false, true, L, L, dq, static_cast<T>(scale), q + s * dq, dq, k + s * dq, dq, T(0), p + s * Tn + s, Tn);
        for (I i = s; i < e; ++i) {
          T* row = p + i * Tn;
          T m = row[i];
          for (I j = ps; j < pe; ++j) m = std::max(m, row[j]);
          for (I j = s; j < i; ++j) m = std::max(m, row[j]);
          T sum = 0;
          for (I j = ps; j < pe; ++j) sum += (row[j] = std::exp(row[j] - m));
          for (I j = s; j <= i; ++j) sum += (row[j] = std::exp(row[j] - m));
          const T inv = T(1) / sum;
          for (I j = ps; j < pe; ++j) row[j] *= inv;
          for (I j = s; j <= i; ++j) row[j] *= inv;
          std::fill(row, row + ps, T(0));
          std::fill(row + pe, row + s, T(0));
          std::fill(row + i + 1, row + Tn, T(0));
          mx = std::max(mx, static_cast<double>(m));
        }
        Gemm<T>(false, false, L, dv, Lp, T(1), p + s * Tn + ps, Tn, v + ps * dv, dv, T(0), o + s * dv, dv);
        Gemm<T>(false, false, L, dv, L, T(1), p + s * Tn + s, Tn, v + s * dv, dv, T(1), o + s * dv, dv);
        s = e;
        continue;
      }
      Gemm<T>(false, true, L, L, dq, static_cast<T>(scale), q + s * dq, dq, k + s * dq, dq, T(0), p + s * Tn + s, Tn);
      for (I i = s; i < e; ++i) mx = std::max(mx, static_cast<double>(SoftmaxRow(p + i * Tn, s, i, Tn)));
      Gemm<T>(false, false, L, dv, L, T(1), p + s * Tn + s, Tn, v + s * dv, dv, T(0), o + s * dv, dv);
      s = e;
    }
    return mx;
  }
  // p = scale * q k^T (full square by GEMM, the upper triangle and other segments are masked below).
  Gemm<T>(false, true, Tn, Tn, dq, static_cast<T>(scale), q, dq, k, dq, T(0), p, Tn);
  for (I i = 0; i < Tn; ++i) {
    T* row = p + i * Tn;
    if (seg) {
      for (I j = 0; j < i; ++j)
        if (seg[j] != seg[i] && !(par && par[i] >= 0 && seg[j] == par[i]))
          row[j] = -std::numeric_limits<T>::infinity();  // exp(-inf) = 0
    }
    mx = std::max(mx, static_cast<double>(SoftmaxRow(row, 0, i, Tn)));
  }
  Gemm<T>(false, false, Tn, dv, Tn, T(1), p, Tn, v, dv, T(0), o, dv);
  return mx;
}

template <class T>
void CausalAttentionBackward(const T* q, const T* k, const T* v, const T* p, const T* dout, T* dq, T* dk,
                             T* dv, T* ds, I Tn, I dq_dim, I dv_dim, double scale) {
  CausalAttentionBackward(q, k, v, p, dout, dq, dk, dv, ds, Tn, dq_dim, dv_dim, scale,
                          static_cast<const int32_t*>(nullptr));
}

template <class T>
void CausalAttentionBackward(const T* q, const T* k, const T* v, const T* p, const T* dout, T* dq, T* dk,
                             T* dv, T* ds, I Tn, I dq_dim, I dv_dim, double scale, const int32_t* seg) {
  CausalAttentionBackward(q, k, v, p, dout, dq, dk, dv, ds, Tn, dq_dim, dv_dim, scale, seg,
                          static_cast<const int32_t*>(nullptr));
}

template <class T>
void CausalAttentionBackward(const T* q, const T* k, const T* v, const T* p, const T* dout, T* dq, T* dk,
                             T* dv, T* ds, I Tn, I dq_dim, I dv_dim, double scale, const int32_t* seg,
                             const int32_t* par) {
  // Per block [s, e) (the whole row when not block-diagonal): dv = p^T dout; dp = dout v^T;
  // ds = p * (dp - rowsum(dp * p)) * scale; dq = ds k; dk = ds^T q. A child block adds its share to its
  // parent's dk and dv (written by the parent's own block first: parents come earlier in the row).
  const bool blocks = seg && ContiguousSegments(seg, Tn);
  for (I s = 0; s < Tn;) {
    I e = Tn;
    if (blocks)
      for (e = s + 1; e < Tn && seg[e] == seg[s];) ++e;
    const I L = e - s;
    const T* pb = p + s * Tn + s;
    T* db = ds + s * Tn + s;
    I ps = 0, pe = 0;
    if (blocks && par && par[s] >= 0) ParentRun(seg, s, par[s], &ps, &pe);
    const I Lp = pe - ps;
    const T* pbp = p + s * Tn + ps;
    T* dbp = ds + s * Tn + ps;
    Gemm<T>(true, false, L, dv_dim, L, T(1), pb, Tn, dout + s * dv_dim, dv_dim, T(0), dv + s * dv_dim, dv_dim);
    Gemm<T>(false, true, L, L, dv_dim, T(1), dout + s * dv_dim, dv_dim, v + s * dv_dim, dv_dim, T(0), db, Tn);
    if (Lp > 0) {
      Gemm<T>(true, false, Lp, dv_dim, L, T(1), pbp, Tn, dout + s * dv_dim, dv_dim, T(1), dv + ps * dv_dim, dv_dim);
      Gemm<T>(false, true, L, Lp, dv_dim, T(1), dout + s * dv_dim, dv_dim, v + ps * dv_dim, dv_dim, T(0), dbp, Tn);
    }
    for (I i = s; i < e; ++i) {
      T* dr = ds + i * Tn;
      const T* pr = p + i * Tn;
      T dot = 0;
      for (I j = ps; j < pe; ++j) dot += dr[j] * pr[j];
      for (I j = s; j <= i; ++j) dot += dr[j] * pr[j];
      for (I j = ps; j < pe; ++j) dr[j] = pr[j] * (dr[j] - dot) * static_cast<T>(scale);
      for (I j = s; j <= i; ++j) dr[j] = pr[j] * (dr[j] - dot) * static_cast<T>(scale);
      for (I j = i + 1; j < e; ++j) dr[j] = 0;
    }
    Gemm<T>(false, false, L, dq_dim, L, T(1), db, Tn, k + s * dq_dim, dq_dim, T(0), dq + s * dq_dim, dq_dim);
    Gemm<T>(true, false, L, dq_dim, L, T(1), db, Tn, q + s * dq_dim, dq_dim, T(0), dk + s * dq_dim, dq_dim);
    if (Lp > 0) {
      Gemm<T>(false, false, L, dq_dim, Lp, T(1), dbp, Tn, k + ps * dq_dim, dq_dim, T(1), dq + s * dq_dim, dq_dim);
      Gemm<T>(true, false, Lp, dq_dim, L, T(1), dbp, Tn, q + s * dq_dim, dq_dim, T(1), dk + ps * dq_dim, dq_dim);
    }
    s = e;
  }
}

template <class T>
void RouterTopK(const T* sb, I N, I E, I n_group, I topk_group, I k, int32_t* idx) {
  std::vector<T> work(static_cast<size_t>(E + n_group));
  std::vector<I> iwork(static_cast<size_t>(E + n_group));
  RouterTopK(sb, N, E, n_group, topk_group, k, idx, work.data(), iwork.data());
}

template <class T>
void RouterTopK(const T* sb, I N, I E, I n_group, I topk_group, I k, int32_t* idx, T* work, I* iwork) {
  const I per = E / n_group;
  T* masked = work;          // [E]
  T* gscore = work + E;      // [n_group]
  I* order = iwork;          // [E]
  I* gorder = iwork + E;     // [n_group]
  for (I n = 0; n < N; ++n) {
    const T* row = sb + n * E;
    for (I g = 0; g < n_group; ++g) {
      // Top-2 sum of the group (a group of one expert counts that expert once, as torch.topk(2) would fail;
      // configs with per-group size 1 are rejected by validation).
      T a = -std::numeric_limits<T>::infinity(), b = a;
      for (I e = g * per; e < (g + 1) * per; ++e) {
        T v = row[e];
        if (v > a) {
          b = a;
          a = v;
        } else if (v > b) {
          b = v;
        }
      }
      gscore[g] = a + b;
      gorder[g] = g;
    }
    // partial_sort does not allocate (stable_sort would); the index tie-break makes the order total, so
    // ties still go to the lower index.
    std::partial_sort(gorder, gorder + topk_group, gorder + n_group, [&](I x, I y) {
      return gscore[x] > gscore[y] || (gscore[x] == gscore[y] && x < y);
    });
    std::fill(masked, masked + E, T(0));
    for (I gi = 0; gi < topk_group; ++gi) {
      I g = gorder[gi];
      for (I e = g * per; e < (g + 1) * per; ++e) masked[e] = row[e];
    }
    std::iota(order, order + E, I(0));
    std::partial_sort(order, order + k, order + E, [&](I x, I y) {
      return masked[x] > masked[y] || (masked[x] == masked[y] && x < y);
    });
    for (I j = 0; j < k; ++j) idx[n * k + j] = static_cast<int32_t>(order[j]);
  }
}

template <class T>
double CrossEntropy(const T* logits, const int32_t* targets, const float* weights, I N, I V, T* dlogits,
                    double dscale) {
  return CrossEntropy(logits, targets, weights, N, V, dlogits, dscale, static_cast<T*>(nullptr),
                      static_cast<T*>(nullptr));
}

template <class T>
double CrossEntropy(const T* logits, const int32_t* targets, const float* weights, I N, I V, T* dlogits,
                    double dscale, T* logp, T* entropy) {
  double total = 0;
#pragma omp parallel for schedule(static) reduction(+ : total) if (N * V > 65536)
  for (I n = 0; n < N; ++n) {
    const T* row = logits + n * V;
    double w = weights[n];
    T m = row[0];
    for (I v = 1; v < V; ++v) m = std::max(m, row[v]);
    double sum = 0, sx = 0;
    if (entropy) {
      for (I v = 0; v < V; ++v) {
        const double x = static_cast<double>(row[v] - m), e = std::exp(x);
        sum += e;
        sx += e * x;
      }
    } else {
      for (I v = 0; v < V; ++v) sum += std::exp(static_cast<double>(row[v] - m));
    }
    double lse = std::log(sum) + m;
    const bool valid = targets[n] >= 0 && targets[n] < V;
    // H = lse - E_p[x] = log(sum) - E_p[x - m].
    if (entropy) entropy[n] = static_cast<T>(std::log(sum) - sx / sum);
    if (logp) logp[n] = valid ? static_cast<T>(static_cast<double>(row[targets[n]]) - lse) : T(0);
    if (w != 0) total += w * (lse - row[targets[n]]);
    if (dlogits) {
      T* dr = dlogits + n * V;
      if (w == 0) {
        std::fill(dr, dr + V, T(0));
        continue;
      }
      double c = w * dscale;
      for (I v = 0; v < V; ++v) dr[v] = static_cast<T>(c * std::exp(static_cast<double>(row[v]) - lse));
      dr[targets[n]] -= static_cast<T>(c);
    }
  }
  return total;
}

template <class T, class B>
void Route(const T* logits, const B* bias, I N, I E, I n_group, I topk_group, I k, bool norm_topk,
           double routed_scaling, T* scores, T* sb, int32_t* idx, T* weights, T* work, I* iwork) {
  for (I n = 0; n < N; ++n)
    for (I e = 0; e < E; ++e) {
      const T s = T(1) / (T(1) + std::exp(-logits[n * E + e]));
      scores[n * E + e] = s;
      sb[n * E + e] = s + static_cast<T>(bias[e]);
    }
  RouterTopK(sb, N, E, n_group, topk_group, k, idx, work, iwork);
  for (I n = 0; n < N; ++n) {
    T sum = 0;
    for (I j = 0; j < k; ++j) sum += scores[n * E + idx[n * k + j]];
    for (I j = 0; j < k; ++j) {
      T w = scores[n * E + idx[n * k + j]];
      if (norm_topk) w /= (sum + static_cast<T>(1e-20));
      weights[n * k + j] = w * static_cast<T>(routed_scaling);
    }
  }
}

template <class Ix>
void MoePlan(const int32_t* idx, I slots, I E, Ix* offs, Ix* row_of_slot, Ix* load) {
  std::fill(load, load + E, Ix(0));
  for (I i = 0; i < slots; ++i) load[idx[i]]++;
  offs[0] = 0;
  for (I e = 0; e < E; ++e) offs[e + 1] = offs[e] + load[e];
  // row_of_slot doubles as the cursor store: each expert's next free row, taken in slot order.
  for (I i = 0; i < slots; ++i) row_of_slot[i] = offs[idx[i]]++;
  for (I e = E; e > 0; --e) offs[e] = offs[e - 1];
  offs[0] = 0;
}

template <class T, class W, class Ix>
void MoeCombine(const T* ye, const Ix* row_of_slot, const W* w, I N, I K, I D, T* y) {
  for (I n = 0; n < N; ++n)
    for (I k = 0; k < K; ++k) {
      const T wk = w ? static_cast<T>(w[n * K + k]) : T(1);
      const T* src = ye + static_cast<I>(row_of_slot[n * K + k]) * D;
      T* o = y + n * D;
      for (I d = 0; d < D; ++d) o[d] += wk * src[d];
    }
}

I FirstTokenOutside(const int32_t* tokens, I N, I V) {
  for (I n = 0; n < N; ++n)
    if (tokens[n] < 0 || tokens[n] >= V) return n;
  return -1;
}

template <class T>
void EmbeddingGather(const T* table, const int32_t* tokens, I N, I D, T* y) {
  for (I n = 0; n < N; ++n) {
    const T* row = table + static_cast<I>(tokens[n]) * D;
    std::copy(row, row + D, y + n * D);
  }
}

template <class T>
void EmbeddingScatterAdd(const T* dy, const int32_t* tokens, I N, I D, T* dtable) {
  for (I n = 0; n < N; ++n) {
    T* g = dtable + static_cast<I>(tokens[n]) * D;
    const T* d = dy + n * D;
    for (I j = 0; j < D; ++j) g[j] += d[j];
  }
}

template <class T>
void Add(const T* a, const T* b, T* y, I n) {
#pragma omp parallel for schedule(static) if (n > 65536)
  for (I i = 0; i < n; ++i) y[i] = a[i] + b[i];
}

// The three optimizer loops are elementwise, so splitting them over threads changes no bit of the result.
template <class T>
void AdamWUpdate(T* w, const T* g, T* m, T* v, I n, const AdamWParams<T>& a) {
  const T lr = a.lr, b1 = a.beta1, b2 = a.beta2, eps = a.eps, wd = a.weight_decay, gs = a.grad_scale;
  const T bc1 = a.bias_correction1, bc2 = a.bias_correction2;
#pragma omp parallel for schedule(static) if (n > 65536)
  for (I j = 0; j < n; ++j) {
    const T gj = g[j] * gs;
    m[j] = b1 * m[j] + (T(1) - b1) * gj;
    v[j] = b2 * v[j] + (T(1) - b2) * gj * gj;
    const T mh = m[j] / bc1, vh = v[j] / bc2;
    w[j] -= lr * (mh / (std::sqrt(vh) + eps) + wd * w[j]);
  }
}

template <class T>
void MuonMomentum(const T* g, T* m, T* u, I n, T mu, T grad_scale, bool nesterov) {
#pragma omp parallel for schedule(static) if (n > 65536)
  for (I j = 0; j < n; ++j) {
    const T gj = g[j] * grad_scale;
    m[j] = mu * m[j] + gj;
    u[j] = nesterov ? gj + mu * m[j] : m[j];
  }
}

template <class T>
void MuonApply(T* w, const T* o, I n, T lr, T scale, T weight_decay) {
#pragma omp parallel for schedule(static) if (n > 65536)
  for (I j = 0; j < n; ++j) w[j] -= lr * (o[j] * scale + weight_decay * w[j]);
}

namespace ref {

template <class T>
void Linear(const T* x, const T* W, T* y, I N, I in, I out) {
  for (I n = 0; n < N; ++n)
    for (I o = 0; o < out; ++o) {
      double s = 0;
      for (I i = 0; i < in; ++i) s += static_cast<double>(x[n * in + i]) * W[o * in + i];
      y[n * out + o] = static_cast<T>(s);
    }
}

template <class T>
double CausalAttention(const T* q, const T* k, const T* v, T* o, I Tn, I dq, I dv, double scale) {
  double mx = -std::numeric_limits<double>::infinity();
  std::vector<double> s(static_cast<size_t>(Tn));
  for (I i = 0; i < Tn; ++i) {
    double m = -std::numeric_limits<double>::infinity();
    for (I j = 0; j <= i; ++j) {
      double d = 0;
      for (I c = 0; c < dq; ++c) d += static_cast<double>(q[i * dq + c]) * k[j * dq + c];
      s[j] = d * scale;
      m = std::max(m, s[j]);
    }
    mx = std::max(mx, m);
    double z = 0;
    for (I j = 0; j <= i; ++j) z += std::exp(s[j] - m);
    for (I c = 0; c < dv; ++c) {
      double acc = 0;
      for (I j = 0; j <= i; ++j) acc += std::exp(s[j] - m) / z * v[j * dv + c];
      o[i * dv + c] = static_cast<T>(acc);
    }
  }
  return mx;
}

template <class T>
void RouterTopK(const T* sb, I N, I E, I n_group, I topk_group, I k, int32_t* idx) {
  // Literal transcription of HF DeepseekV3TopkRouter.get_topk_indices for one token at a time.
  const I per = E / n_group;
  for (I n = 0; n < N; ++n) {
    std::vector<double> gscore(static_cast<size_t>(n_group));
    for (I g = 0; g < n_group; ++g) {
      std::vector<double> vals;
      for (I e = g * per; e < (g + 1) * per; ++e) vals.push_back(sb[n * E + e]);
      std::sort(vals.rbegin(), vals.rend());
      gscore[g] = vals[0] + vals[1];
    }
    std::vector<bool> keep(static_cast<size_t>(n_group), false);
    for (I t = 0; t < topk_group; ++t) {
      I best = -1;
      for (I g = 0; g < n_group; ++g)
        if (!keep[g] && (best < 0 || gscore[g] > gscore[best])) best = g;
      keep[best] = true;
    }
    std::vector<bool> used(static_cast<size_t>(E), false);
    for (I t = 0; t < k; ++t) {
      I best = -1;
      double bv = 0;
      for (I e = 0; e < E; ++e) {
        if (used[e]) continue;
        double v = keep[e / per] ? static_cast<double>(sb[n * E + e]) : 0.0;
        if (best < 0 || v > bv) {
          best = e;
          bv = v;
        }
      }
      used[best] = true;
      idx[n * k + t] = static_cast<int32_t>(best);
    }
  }
}

}  // namespace ref

#define K2_OPS_INSTANTIATE(T)                                                                              \
  template void Linear<T>(const T*, const T*, T*, I, I, I, bool);                                          \
  template void LinearBackward<T>(const T*, const T*, const T*, T*, T*, I, I, I, bool);                    \
  template void RmsNorm<T>(const T*, I, const T*, T*, T*, I, I, double);                                   \
  template void RmsNormBackward<T>(const T*, I, const T*, const T*, const T*, T*, I, T*, I, I, bool);      \
  template void Rope<T>(T*, I, I, I, I, const int32_t*, const double*, I, bool, double, bool);             \
  template void SwiGlu<T>(const T*, const T*, T*, I);                                                      \
  template void SwiGluBackward<T>(const T*, const T*, const T*, T*, T*, I);                                \
  template double CausalAttention<T>(const T*, const T*, const T*, T*, T*, I, I, I, double);               \
  template double CausalAttention<T>(const T*, const T*, const T*, T*, T*, I, I, I, double, const int32_t*); \
  template double CausalAttention<T>(const T*, const T*, const T*, T*, T*, I, I, I, double, const int32_t*,  \
                                     const int32_t*);                                                      \
  template void CausalAttentionBackward<T>(const T*, const T*, const T*, const T*, const T*, T*, T*, T*,   \
                                           T*, I, I, I, double, const int32_t*, const int32_t*);           \
  template void CausalAttentionBackward<T>(const T*, const T*, const T*, const T*, const T*, T*, T*, T*,   \
                                          T*, I, I, I, double, const int32_t*);                            \
  template void CausalAttentionBackward<T>(const T*, const T*, const T*, const T*, const T*, T*, T*, T*,   \
                                           T*, I, I, I, double);                                           \
  template void RouterTopK<T>(const T*, I, I, I, I, I, int32_t*);                                          \
  template void RouterTopK<T>(const T*, I, I, I, I, I, int32_t*, T*, I*);                                  \
  template double CrossEntropy<T>(const T*, const int32_t*, const float*, I, I, T*, double);               \
  template double CrossEntropy<T>(const T*, const int32_t*, const float*, I, I, T*, double, T*, T*);       \
  template void ref::Linear<T>(const T*, const T*, T*, I, I, I);                                           \
  template double ref::CausalAttention<T>(const T*, const T*, const T*, T*, I, I, I, double);              \
  template void ref::RouterTopK<T>(const T*, I, I, I, I, I, int32_t*);                                     \
  template void EmbeddingGather<T>(const T*, const int32_t*, I, I, T*);                                    \
  template void EmbeddingScatterAdd<T>(const T*, const int32_t*, I, I, T*);                                \
  template void Add<T>(const T*, const T*, T*, I);                                                         \
  template void AdamWUpdate<T>(T*, const T*, T*, T*, I, const AdamWParams<T>&);                            \
  template void MuonMomentum<T>(const T*, T*, T*, I, T, T, bool);                                          \
  template void MuonApply<T>(T*, const T*, I, T, T, T);

K2_OPS_INSTANTIATE(float)
K2_OPS_INSTANTIATE(double)
template void EmbeddingGather<uint16_t>(const uint16_t*, const int32_t*, I, I, uint16_t*);

template void Route<float, float>(const float*, const float*, I, I, I, I, I, bool, double, float*, float*, int32_t*,
                                  float*, float*, I*);
template void Route<double, double>(const double*, const double*, I, I, I, I, I, bool, double, double*, double*,
                                    int32_t*, double*, double*, I*);
template void MoePlan<int64_t>(const int32_t*, I, I, int64_t*, int64_t*, int64_t*);
template void MoePlan<int32_t>(const int32_t*, I, I, int32_t*, int32_t*, int32_t*);
template void MoeCombine<float, float, int64_t>(const float*, const int64_t*, const float*, I, I, I, float*);
template void MoeCombine<double, double, int64_t>(const double*, const int64_t*, const double*, I, I, I, double*);
template void MoeCombine<float, float, int32_t>(const float*, const int32_t*, const float*, I, I, I, float*);

}  // namespace k2::engine::ops
