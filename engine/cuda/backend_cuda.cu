// CudaBackend: engine/backend.h on one NVIDIA GPU. GEMMs through cuBLAS (bf16 tensor cores, fp32
// accumulation; no TF32 in fp32 mode); every other op is a kernel of this file, written simply.
//
// Kernels are templated on the storage type S (float or __nv_bfloat16) and compute in fp32. They favour
// obvious correctness: attention is a tiled flash-style kernel in fp32 FMAs (16x16 tiles in shared memory,
// online softmax, no [T,T] matrix); the tensor-core (wgmma) attention and fused GEMM epilogues are the
// next performance steps (docs/cuda.md). Reductions that feed parameter gradients avoid atomics so that
// results do not depend on scheduling, except the embedding backward (atomicAdd over repeated tokens).
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/cuda/backend_cuda.h"
#include "engine/cuda/check.cuh"

namespace k2::engine {

namespace {

using bf16 = __nv_bfloat16;
using I = int64_t;

__device__ __forceinline__ float ToF(float x) { return x; }
__device__ __forceinline__ float ToF(bf16 x) { return __bfloat162float(x); }
template <class S>
__device__ __forceinline__ S FromF(float x);
template <>
__device__ __forceinline__ float FromF<float>(float x) { return x; }
template <>
__device__ __forceinline__ bf16 FromF<bf16>(float x) { return __float2bfloat16_rn(x); }

__device__ __forceinline__ float WarpSum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float WarpMax(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
// Block-wide reductions for blockDim.x a multiple of 32; every thread gets the result. sh: 32 floats.
// Must be reached by all threads of the block.
__device__ float BlockSum(float v, float* sh) {
  v = WarpSum(v);
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
  __syncthreads();
  if (lane == 0) sh[w] = v;
  __syncthreads();
  return WarpSum(lane < nw ? sh[lane] : 0.0f);
}
__device__ float BlockMax(float v, float* sh) {
  v = WarpMax(v);
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
  __syncthreads();
  if (lane == 0) sh[w] = v;
  __syncthreads();
  return WarpMax(lane < nw ? sh[lane] : -INFINITY);
}

int Blocks(I n, int threads) { return static_cast<int>(std::min<I>((n + threads - 1) / threads, 65535 * 32)); }

// ---------------------------------------------------------------- elementwise
template <class S>
__global__ void ScaleKernel(S* c, I rows, I cols, I ld, float beta) {
  for (I e = blockIdx.x * static_cast<I>(blockDim.x) + threadIdx.x; e < rows * cols;
       e += static_cast<I>(gridDim.x) * blockDim.x) {
    S* p = c + (e / cols) * ld + e % cols;
    *p = FromF<S>(beta == 0.0f ? 0.0f : beta * ToF(*p));
  }
}

template <class S>
__global__ void SwiGluKernel(const S* g, const S* u, S* a, I n) {
  for (I i = blockIdx.x * static_cast<I>(blockDim.x) + threadIdx.x; i < n; i += static_cast<I>(gridDim.x) * blockDim.x) {
    const float gv = ToF(g[i]), s = 1.0f / (1.0f + expf(-gv));
    a[i] = FromF<S>(gv * s * ToF(u[i]));
  }
}

template <class S>
__global__ void SwiGluBwdKernel(const S* g, const S* u, const S* da, S* dg, S* du, I n) {
  for (I i = blockIdx.x * static_cast<I>(blockDim.x) + threadIdx.x; i < n; i += static_cast<I>(gridDim.x) * blockDim.x) {
    const float gv = ToF(g[i]), uv = ToF(u[i]), d = ToF(da[i]), s = 1.0f / (1.0f + expf(-gv));
    du[i] = FromF<S>(d * gv * s);
    dg[i] = FromF<S>(d * uv * s * (1.0f + gv * (1.0f - s)));
  }
}

template <class S>
__global__ void AddKernel(const S* a, const S* b, S* y, I n) {
  for (I i = blockIdx.x * static_cast<I>(blockDim.x) + threadIdx.x; i < n; i += static_cast<I>(gridDim.x) * blockDim.x)
    y[i] = FromF<S>(ToF(a[i]) + ToF(b[i]));
}

// ---------------------------------------------------------------- embedding
// y[n] = table[tokens[n]]; a token outside [0, V) gets a zero row (the CPU backend reports it instead).
template <class S>
__global__ void EmbeddingGatherKernel(const S* table, I V, const int32_t* tokens, I N, I D, S* y) {
  for (I e = blockIdx.x * static_cast<I>(blockDim.x) + threadIdx.x; e < N * D; e += static_cast<I>(gridDim.x) * blockDim.x) {
    const I t = tokens[e / D];
    y[e] = t >= 0 && t < V ? table[t * D + e % D] : FromF<S>(0.0f);
  }
}

// dtable[tokens[n]] += dy[n] by atomicAdd: rows of repeated tokens are summed in no fixed order (the one
// parameter-gradient reduction of this file that is not deterministic). Tokens outside [0, V) are skipped.
template <class S>
__global__ void EmbeddingScatterAddKernel(const S* dy, const int32_t* tokens, I N, I D, I V, float* dtable) {
  for (I e = blockIdx.x * static_cast<I>(blockDim.x) + threadIdx.x; e < N * D; e += static_cast<I>(gridDim.x) * blockDim.x) {
    const I t = tokens[e / D];
    if (t >= 0 && t < V) atomicAdd(dtable + t * D + e % D, ToF(dy[e]));
  }
}

// ---------------------------------------------------------------- optimizer updates (engine/optimizer.cc's
// formulas in fp32; w_s, when not null, receives the updated master rounded to S)
template <class S>
__global__ void AdamWKernel(float* w, S* w_s, const float* g, float* m, float* v, I n, AdamWArgs a) {
  for (I j = blockIdx.x * static_cast<I>(blockDim.x) + threadIdx.x; j < n; j += static_cast<I>(gridDim.x) * blockDim.x) {
    const float gj = g[j] * a.grad_scale;
    const float mj = a.beta1 * m[j] + (1.0f - a.beta1) * gj;
    const float vj = a.beta2 * v[j] + (1.0f - a.beta2) * gj * gj;
    m[j] = mj;
    v[j] = vj;
    const float mh = mj / a.bias_correction1, vh = vj / a.bias_correction2;
    const float wj = w[j] - a.lr * (mh / (sqrtf(vh) + a.eps) + a.weight_decay * w[j]);
    w[j] = wj;
    if (w_s) w_s[j] = FromF<S>(wj);
  }
}

__global__ void MuonMomentumKernel(const float* g, float* m, float* u, I n, float mu, float gs, bool nesterov) {
  for (I j = blockIdx.x * static_cast<I>(blockDim.x) + threadIdx.x; j < n; j += static_cast<I>(gridDim.x) * blockDim.x) {
    const float gj = g[j] * gs;
    const float mj = mu * m[j] + gj;
    m[j] = mj;
    u[j] = nesterov ? gj + mu * mj : mj;
  }
}

template <class S>
__global__ void MuonApplyKernel(float* w, S* w_s, const float* o, I n, float lr, float scale, float wd) {
  for (I j = blockIdx.x * static_cast<I>(blockDim.x) + threadIdx.x; j < n; j += static_cast<I>(gridDim.x) * blockDim.x) {
    const float wj = w[j] - lr * (o[j] * scale + wd * w[j]);
    w[j] = wj;
    if (w_s) w_s[j] = FromF<S>(wj);
  }
}

// ---------------------------------------------------------------- RMSNorm
template <class S>
__global__ void RmsNormKernel(const S* x, I ldx, const S* w, S* y, float* rstd, int D, float eps) {
  __shared__ float sh[32];
  const I n = blockIdx.x;
  const S* xr = x + n * ldx;
  float ss = 0;
  for (int d = threadIdx.x; d < D; d += blockDim.x) {
    const float v = ToF(xr[d]);
    ss += v * v;
  }
  ss = BlockSum(ss, sh);
  const float r = 1.0f / sqrtf(ss / static_cast<float>(D) + eps);
  if (threadIdx.x == 0) rstd[n] = r;
  for (int d = threadIdx.x; d < D; d += blockDim.x) y[n * D + d] = FromF<S>(ToF(xr[d]) * r * ToF(w[d]));
}

template <class S>
__global__ void RmsNormBwdKernel(const S* x, I ldx, const S* w, const float* rstd, const S* dy, S* dx, I lddx, int D,
                                 bool acc) {
  __shared__ float sh[32];
  const I n = blockIdx.x;
  const S* xr = x + n * ldx;
  const S* dyr = dy + n * D;
  float dot = 0;
  for (int d = threadIdx.x; d < D; d += blockDim.x) dot += ToF(dyr[d]) * ToF(w[d]) * ToF(xr[d]);
  dot = BlockSum(dot, sh);
  const float r = rstd[n], c = dot * r * r * r / static_cast<float>(D);
  S* dxr = dx + n * lddx;
  for (int d = threadIdx.x; d < D; d += blockDim.x) {
    const float v = r * ToF(w[d]) * ToF(dyr[d]) - ToF(xr[d]) * c;
    dxr[d] = FromF<S>(acc ? ToF(dxr[d]) + v : v);
  }
}

// dw[d] += sum_n dy[n,d] x[n,d] rstd[n]: one thread per column, rows in order (deterministic).
template <class S>
__global__ void RmsNormDwKernel(const S* x, I ldx, const float* rstd, const S* dy, float* dw, I N, int D) {
  const int d = blockIdx.x * blockDim.x + threadIdx.x;
  if (d >= D) return;
  float acc = 0;
  for (I n = 0; n < N; ++n) acc += ToF(dy[n * D + d]) * ToF(x[n * ldx + d]) * rstd[n];
  dw[d] += acc;
}

// ---------------------------------------------------------------- RoPE
template <class S>
__global__ void RopeKernel(S* x, I N, int heads, I row_stride, I head_stride, const int32_t* pos, const double* inv_freq,
                           int half, bool interleave, double attn_factor, bool inverse) {
  for (I e = blockIdx.x * static_cast<I>(blockDim.x) + threadIdx.x; e < N * half; e += static_cast<I>(gridDim.x) * blockDim.x) {
    const I n = e / half;
    const int j = static_cast<int>(e % half);
    const double ang = static_cast<double>(pos[n]) * inv_freq[j];
    // cos/sin rounded to float as ops::Rope<float> does.
    const float c = static_cast<float>(cos(ang) * attn_factor);
    float s = static_cast<float>(sin(ang) * attn_factor);
    if (inverse) s = -s;
    const int a = interleave ? 2 * j : j, b = interleave ? 2 * j + 1 : j + half;
    for (int h = 0; h < heads; ++h) {
      S* v = x + n * row_stride + h * head_stride;
      const float x0 = ToF(v[a]), x1 = ToF(v[b]);
      v[a] = FromF<S>(x0 * c - x1 * s);
      v[b] = FromF<S>(x1 * c + x0 * s);
    }
  }
}

// ---------------------------------------------------------------- attention (flash-style, fp32 FMAs)
constexpr int kBr = 16, kBc = 16, kAttnThreads = 128;

// ops::CausalAttention's rule: key j is visible to query i when j <= i and (no segments, the same segment,
// or the query's parent segment: pr[i] >= 0 and sg[j] == pr[i]). Parent keys lie before the child, so the
// kernels' loops over j <= i already reach them; a row always sees itself, so no row ends empty.
__device__ __forceinline__ bool Visible(const int32_t* sg, const int32_t* pr, int i, int j, int T) {
  if (i >= T || j >= T || j > i) return false;
  if (sg == nullptr || sg[j] == sg[i]) return true;
  return pr != nullptr && pr[i] >= 0 && sg[j] == pr[i];
}

size_t AttnFwdSmem(int dq, int dv) {
  return sizeof(float) * (static_cast<size_t>(kBr) * dq + kBc * dq + kBc * dv + kBr * dv + kBr * kBc + 3 * kBr + 32);
}

template <class S>
__global__ void AttnFwdKernel(const S* q, const S* k, const S* v, const int32_t* seg, const int32_t* par, S* o,
                              float* lse, float* tile_max, int H, int T, int dq, int dv, float scale) {
  extern __shared__ float sm[];
  float* Qs = sm;                // [Br][dq]
  float* Ks = Qs + kBr * dq;     // [Bc][dq]
  float* Vs = Ks + kBc * dq;     // [Bc][dv]
  float* Os = Vs + kBc * dv;     // [Br][dv]
  float* Ss = Os + kBr * dv;     // [Br][Bc] scores, then probabilities
  float* mS = Ss + kBr * kBc;    // [Br] running max
  float* lS = mS + kBr;          // [Br] running sum
  float* aS = lS + kBr;          // [Br] rescale of this tile
  float* red = aS + kBr;         // [32]
  const int bh = blockIdx.y, b = bh / H, i0 = blockIdx.x * kBr, tid = threadIdx.x;
  const size_t qo = static_cast<size_t>(bh) * T * dq, vo = static_cast<size_t>(bh) * T * dv;
  const int32_t* sg = seg ? seg + static_cast<size_t>(b) * T : nullptr;
  const int32_t* pr = seg && par ? par + static_cast<size_t>(b) * T : nullptr;
  for (int e = tid; e < kBr * dq; e += blockDim.x) {
    const int i = i0 + e / dq;
    Qs[e] = i < T ? ToF(q[qo + static_cast<size_t>(i) * dq + e % dq]) : 0.0f;
  }
  for (int e = tid; e < kBr * dv; e += blockDim.x) Os[e] = 0.0f;
  if (tid < kBr) {
    mS[tid] = -INFINITY;
    lS[tid] = 0.0f;
  }
  float tmax = -INFINITY;
  const int i_last = min(i0 + kBr, T) - 1;
  for (int j0 = 0; j0 <= i_last; j0 += kBc) {
    __syncthreads();
    for (int e = tid; e < kBc * dq; e += blockDim.x) {
      const int j = j0 + e / dq;
      Ks[e] = j < T ? ToF(k[qo + static_cast<size_t>(j) * dq + e % dq]) : 0.0f;
    }
    for (int e = tid; e < kBc * dv; e += blockDim.x) {
      const int j = j0 + e / dv;
      Vs[e] = j < T ? ToF(v[vo + static_cast<size_t>(j) * dv + e % dv]) : 0.0f;
    }
    __syncthreads();
    for (int e = tid; e < kBr * kBc; e += blockDim.x) {
      const int r = e / kBc, c = e % kBc;
      float s = -INFINITY;
      if (Visible(sg, pr, i0 + r, j0 + c, T)) {
        float acc = 0;
        for (int d = 0; d < dq; ++d) acc += Qs[r * dq + d] * Ks[c * dq + d];
        s = scale * acc;
        tmax = fmaxf(tmax, s);
      }
      Ss[e] = s;
    }
    __syncthreads();
    if (tid < kBr) {
      const int r = tid;
      const float mo = mS[r];
      float mx = mo;
      for (int c = 0; c < kBc; ++c) mx = fmaxf(mx, Ss[r * kBc + c]);
      float alpha = 1.0f, sum = 0.0f;
      if (mx == -INFINITY) {  // nothing visible yet in this row (segment starts later): no update
        for (int c = 0; c < kBc; ++c) Ss[r * kBc + c] = 0.0f;
      } else {
        alpha = expf(mo - mx);  // 0 when mo = -inf
        for (int c = 0; c < kBc; ++c) {
          const float p = expf(Ss[r * kBc + c] - mx);
          Ss[r * kBc + c] = p;
          sum += p;
        }
      }
      mS[r] = mx;
      lS[r] = lS[r] * alpha + sum;
      aS[r] = alpha;
    }
    __syncthreads();
    for (int e = tid; e < kBr * dv; e += blockDim.x) {
      const int r = e / dv, d = e % dv;
      float acc = Os[e] * aS[r];
      for (int c = 0; c < kBc; ++c) acc += Ss[r * kBc + c] * Vs[c * dv + d];
      Os[e] = acc;
    }
  }
  __syncthreads();
  for (int e = tid; e < kBr * dv; e += blockDim.x) {
    const int r = e / dv, i = i0 + r;
    if (i < T) o[vo + static_cast<size_t>(i) * dv + e % dv] = FromF<S>(Os[e] / lS[r]);
  }
  if (tid < kBr && i0 + tid < T) lse[static_cast<size_t>(bh) * T + i0 + tid] = mS[tid] + logf(lS[tid]);
  const float bm = BlockMax(tmax, red);
  if (tid == 0) tile_max[static_cast<size_t>(bh) * gridDim.x + blockIdx.x] = bm;
}

// max_logit[h] = max over rows b and query tiles of tile_max[(b*H+h)*tiles + t].
__global__ void HeadMaxKernel(const float* tile_max, int B, int H, int tiles, float* max_logit) {
  const int h = blockIdx.x * blockDim.x + threadIdx.x;
  if (h >= H) return;
  float m = -INFINITY;
  for (int b = 0; b < B; ++b)
    for (int t = 0; t < tiles; ++t) m = fmaxf(m, tile_max[(static_cast<size_t>(b) * H + h) * tiles + t]);
  max_logit[h] = m;
}

// Drow[bh*T+i] = dout_i · o_i (= sum_j p_ij dp_ij, the softmax backward's row term).
template <class S>
__global__ void AttnRowDotKernel(const S* dout, const S* o, float* Drow, I rows, int dv) {
  const I r = blockIdx.x * static_cast<I>(blockDim.x) + threadIdx.x;
  if (r >= rows) return;
  float acc = 0;
  for (int d = 0; d < dv; ++d) acc += ToF(dout[r * dv + d]) * ToF(o[r * dv + d]);
  Drow[r] = acc;
}

size_t AttnBwdKvSmem(int dq, int dv) {
  return sizeof(float) * (2 * static_cast<size_t>(kBc) * dq + 2 * kBc * dv + kBr * dq + kBr * dv + 2 * kBr * kBc + 2 * kBr);
}
size_t AttnBwdQSmem(int dq, int dv) {
  return sizeof(float) * (2 * static_cast<size_t>(kBr) * dq + kBc * dq + kBc * dv + kBr * dv + kBr * kBc + 2 * kBr);
}

// P and dS of the visible entries of one (query tile, key tile): p = exp(s - lse_i),
// ds = p (dout_i·v_j - D_i) scale; zero elsewhere.
__device__ void AttnBwdTile(const float* Qs, const float* Ks, const float* Vs, const float* dOs, const float* lseS,
                            const float* DS, float* Ps, float* dSs, const int32_t* sg, const int32_t* pr, int i0,
                            int j0, int T, int dq, int dv, float scale) {
  for (int e = threadIdx.x; e < kBr * kBc; e += blockDim.x) {
    const int r = e / kBc, c = e % kBc;
    float p = 0.0f, ds = 0.0f;
    if (Visible(sg, pr, i0 + r, j0 + c, T)) {
      float s = 0, dp = 0;
      for (int d = 0; d < dq; ++d) s += Qs[r * dq + d] * Ks[c * dq + d];
      for (int d = 0; d < dv; ++d) dp += dOs[r * dv + d] * Vs[c * dv + d];
      p = expf(scale * s - lseS[r]);
      ds = p * (dp - DS[r]) * scale;
    }
    if (Ps) Ps[e] = p;
    dSs[e] = ds;
  }
}

template <class S>
__device__ void LoadRows(float* dst, const S* src, int r0, int rows, int T, int width) {
  for (int e = threadIdx.x; e < rows * width; e += blockDim.x) {
    const int i = r0 + e / width;
    dst[e] = i < T ? ToF(src[static_cast<size_t>(i) * width + e % width]) : 0.0f;
  }
}

// dK, dV of one key tile: loop over the query tiles that can see it.
template <class S>
__global__ void AttnBwdKvKernel(const S* q, const S* k, const S* v, const int32_t* seg, const int32_t* par,
                                const float* lse, const float* Drow, const S* dout, S* dk, S* dv_out, int H, int T,
                                int dq, int dv, float scale) {
  extern __shared__ float sm[];
  float* Ks = sm;
  float* Vs = Ks + kBc * dq;
  float* dKs = Vs + kBc * dv;
  float* dVs = dKs + kBc * dq;
  float* Qs = dVs + kBc * dv;
  float* dOs = Qs + kBr * dq;
  float* Ps = dOs + kBr * dv;
  float* dSs = Ps + kBr * kBc;
  float* lseS = dSs + kBr * kBc;
  float* DS = lseS + kBr;
  const int bh = blockIdx.y, b = bh / H, j0 = blockIdx.x * kBc, tid = threadIdx.x;
  const size_t qo = static_cast<size_t>(bh) * T * dq, vo = static_cast<size_t>(bh) * T * dv,
               ro = static_cast<size_t>(bh) * T;
  const int32_t* sg = seg ? seg + static_cast<size_t>(b) * T : nullptr;
  const int32_t* pr = seg && par ? par + static_cast<size_t>(b) * T : nullptr;
  LoadRows(Ks, k + qo, j0, kBc, T, dq);
  LoadRows(Vs, v + vo, j0, kBc, T, dv);
  for (int e = tid; e < kBc * dq; e += blockDim.x) dKs[e] = 0.0f;
  for (int e = tid; e < kBc * dv; e += blockDim.x) dVs[e] = 0.0f;
  for (int i0 = j0 - j0 % kBr; i0 < T; i0 += kBr) {
    __syncthreads();
    LoadRows(Qs, q + qo, i0, kBr, T, dq);
    LoadRows(dOs, dout + vo, i0, kBr, T, dv);
    if (tid < kBr) {
      const int i = i0 + tid;
      lseS[tid] = i < T ? lse[ro + i] : 0.0f;
      DS[tid] = i < T ? Drow[ro + i] : 0.0f;
    }
    __syncthreads();
    AttnBwdTile(Qs, Ks, Vs, dOs, lseS, DS, Ps, dSs, sg, pr, i0, j0, T, dq, dv, scale);
    __syncthreads();
    for (int e = tid; e < kBc * dv; e += blockDim.x) {
      const int c = e / dv, d = e % dv;
      float acc = 0;
      for (int r = 0; r < kBr; ++r) acc += Ps[r * kBc + c] * dOs[r * dv + d];
      dVs[e] += acc;
    }
    for (int e = tid; e < kBc * dq; e += blockDim.x) {
      const int c = e / dq, d = e % dq;
      float acc = 0;
      for (int r = 0; r < kBr; ++r) acc += dSs[r * kBc + c] * Qs[r * dq + d];
      dKs[e] += acc;
    }
  }
  __syncthreads();
  for (int e = tid; e < kBc * dq; e += blockDim.x) {
    const int j = j0 + e / dq;
    if (j < T) dk[qo + static_cast<size_t>(j) * dq + e % dq] = FromF<S>(dKs[e]);
  }
  for (int e = tid; e < kBc * dv; e += blockDim.x) {
    const int j = j0 + e / dv;
    if (j < T) dv_out[vo + static_cast<size_t>(j) * dv + e % dv] = FromF<S>(dVs[e]);
  }
}

// dQ of one query tile: loop over the key tiles it sees.
template <class S>
__global__ void AttnBwdQKernel(const S* q, const S* k, const S* v, const int32_t* seg, const int32_t* par,
                               const float* lse, const float* Drow, const S* dout, S* dq_out, int H, int T, int dq,
                               int dv, float scale) {
  extern __shared__ float sm[];
  float* Qs = sm;
  float* dQs = Qs + kBr * dq;
  float* Ks = dQs + kBr * dq;
  float* Vs = Ks + kBc * dq;
  float* dOs = Vs + kBc * dv;
  float* dSs = dOs + kBr * dv;
  float* lseS = dSs + kBr * kBc;
  float* DS = lseS + kBr;
  const int bh = blockIdx.y, b = bh / H, i0 = blockIdx.x * kBr, tid = threadIdx.x;
  const size_t qo = static_cast<size_t>(bh) * T * dq, vo = static_cast<size_t>(bh) * T * dv,
               ro = static_cast<size_t>(bh) * T;
  const int32_t* sg = seg ? seg + static_cast<size_t>(b) * T : nullptr;
  const int32_t* pr = seg && par ? par + static_cast<size_t>(b) * T : nullptr;
  LoadRows(Qs, q + qo, i0, kBr, T, dq);
  LoadRows(dOs, dout + vo, i0, kBr, T, dv);
  for (int e = tid; e < kBr * dq; e += blockDim.x) dQs[e] = 0.0f;
  if (tid < kBr) {
    const int i = i0 + tid;
    lseS[tid] = i < T ? lse[ro + i] : 0.0f;
    DS[tid] = i < T ? Drow[ro + i] : 0.0f;
  }
  const int i_last = min(i0 + kBr, T) - 1;
  for (int j0 = 0; j0 <= i_last; j0 += kBc) {
    __syncthreads();
    LoadRows(Ks, k + qo, j0, kBc, T, dq);
    LoadRows(Vs, v + vo, j0, kBc, T, dv);
    __syncthreads();
    AttnBwdTile(Qs, Ks, Vs, dOs, lseS, DS, nullptr, dSs, sg, pr, i0, j0, T, dq, dv, scale);
    __syncthreads();
    for (int e = tid; e < kBr * dq; e += blockDim.x) {
      const int r = e / dq, d = e % dq;
      float acc = 0;
      for (int c = 0; c < kBc; ++c) acc += dSs[r * kBc + c] * Ks[c * dq + d];
      dQs[e] += acc;
    }
  }
  __syncthreads();
  for (int e = tid; e < kBr * dq; e += blockDim.x) {
    const int i = i0 + e / dq;
    if (i < T) dq_out[qo + static_cast<size_t>(i) * dq + e % dq] = FromF<S>(dQs[e]);
  }
}

// ---------------------------------------------------------------- absorbed-MLA decode over pages
constexpr int kMlaThreads = 128;
__host__ __device__ inline int MlaFloats(int rkv, int dr) {
  const int f = 2 * rkv + dr + kMlaThreads + 32;
  return f + f % 2;
}
size_t MlaSmem(int rkv, int dr) { return MlaFloats(rkv, dr) * sizeof(float) + kMlaThreads * sizeof(size_t); }

template <class S>
__global__ void MlaDecodeKernel(const S* q_lat, const S* q_pe, const S* pages, const int32_t* page_table,
                                const int32_t* row_seq, const int32_t* row_pos, S* o_lat, MlaDecodeShape s) {
  extern __shared__ float sm[];
  const int W = static_cast<int>(s.rkv + s.dr), rkv = static_cast<int>(s.rkv), dr = static_cast<int>(s.dr);
  float* qs = sm;                 // [W]
  float* os = qs + W;             // [rkv]
  float* ps = os + rkv;           // [threads]
  float* red = ps + kMlaThreads;  // [32]
  // [threads] key-row offsets after an even float count (8-byte alignment); MlaSmem has the same formula.
  size_t* kofs = reinterpret_cast<size_t*>(sm + MlaFloats(rkv, dr));
  const I r = blockIdx.x / s.H, h = blockIdx.x % s.H;
  const int tid = threadIdx.x;
  for (int c = tid; c < rkv; c += blockDim.x) {
    qs[c] = ToF(q_lat[(r * s.H + h) * s.rkv + c]);
    os[c] = 0.0f;
  }
  for (int c = tid; c < dr; c += blockDim.x) qs[rkv + c] = ToF(q_pe[r * s.q_pe_row_stride + h * s.q_pe_head_stride + c]);
  __syncthreads();
  const I nk = static_cast<I>(row_pos[r]) + 1, seq = row_seq[r];
  float m = -INFINITY, l = 0.0f;
  for (I j0 = 0; j0 < nk; j0 += blockDim.x) {
    const I j = j0 + tid;
    float sc = -INFINITY;
    if (j < nk) {
      const I page = page_table[seq * s.max_pages + j / s.page_size];
      const size_t off = static_cast<size_t>(((page * s.num_layers + s.layer) * s.page_size + j % s.page_size) * W);
      kofs[tid] = off;
      const S* key = pages + off;
      float acc = 0;
      for (int c = 0; c < W; ++c) acc += qs[c] * ToF(key[c]);
      sc = acc * static_cast<float>(s.scale);
    }
    const float mt = BlockMax(sc, red);
    const float mn = fmaxf(m, mt);  // finite: the tile holds at least one key
    const float p = j < nk ? expf(sc - mn) : 0.0f;
    ps[tid] = p;
    const float lt = BlockSum(p, red);  // its barriers also publish ps and kofs
    const float alpha = expf(m - mn);
    l = l * alpha + lt;
    m = mn;
    const int cnt = static_cast<int>(min(static_cast<I>(blockDim.x), nk - j0));
    for (int c = tid; c < rkv; c += blockDim.x) {
      float acc = os[c] * alpha;
      for (int jj = 0; jj < cnt; ++jj) acc += ps[jj] * ToF(pages[kofs[jj] + c]);
      os[c] = acc;
    }
    __syncthreads();  // ps/kofs are rewritten by the next tile
  }
  for (int c = tid; c < rkv; c += blockDim.x) o_lat[(r * s.H + h) * s.rkv + c] = FromF<S>(os[c] / l);
}

// ---------------------------------------------------------------- router
constexpr int kMaxTopK = 64;

template <class S>
__global__ void RouterKernel(const S* logits, const float* bias, int N, int E, int n_group, int topk_group, int k,
                             bool norm, float scaling, int32_t* idx, float* weights, float* scores) {
  const int n = blockIdx.x * blockDim.x + threadIdx.x;
  if (n >= N) return;
  const S* row = logits + static_cast<size_t>(n) * E;
  float* sc = scores + static_cast<size_t>(n) * E;
  for (int e = 0; e < E; ++e) sc[e] = 1.0f / (1.0f + expf(-ToF(row[e])));
  const int per = E / n_group;
  unsigned long long keep = 0;
  // Groups by top-2 sum of biased scores, best first, ties to the lower index (ops::RouterTopK's order).
  for (int t = 0; t < topk_group; ++t) {
    int best = -1;
    float bv = 0;
    for (int g = 0; g < n_group; ++g) {
      if (keep >> g & 1ull) continue;
      float a = -INFINITY, b2 = -INFINITY;
      for (int e = g * per; e < (g + 1) * per; ++e) {
        const float v = sc[e] + bias[e];
        if (v > a) {
          b2 = a;
          a = v;
        } else if (v > b2) {
          b2 = v;
        }
      }
      const float gs = a + b2;
      if (best < 0 || gs > bv) best = g, bv = gs;
    }
    keep |= 1ull << best;
  }
  int32_t* out = idx + static_cast<size_t>(n) * k;
  for (int t = 0; t < k; ++t) {
    int best = -1;
    float bv = 0;
    for (int e = 0; e < E; ++e) {
      bool used = false;
      for (int u = 0; u < t; ++u) used = used || out[u] == e;
      if (used) continue;
      const float v = (keep >> (e / per) & 1ull) ? sc[e] + bias[e] : 0.0f;  // HF masks other groups to 0.0
      if (best < 0 || v > bv) best = e, bv = v;
    }
    out[t] = best;
  }
  float sum = 0;
  for (int t = 0; t < k; ++t) sum += sc[out[t]];
  for (int t = 0; t < k; ++t) {
    float w = sc[out[t]];
    if (norm) w /= (sum + 1e-20f);
    weights[static_cast<size_t>(n) * k + t] = w * scaling;
  }
}

// ---------------------------------------------------------------- cross-entropy (one block per row)
template <class S>
__global__ void CrossEntropyKernel(const S* logits, const int32_t* targets, const float* weights, I V, S* dlogits,
                                   float dscale, float* loss, float* logp, float* entropy) {
  __shared__ float sh[32];
  const I n = blockIdx.x;
  const S* x = logits + n * V;
  const int t = targets[n];
  const bool valid = t >= 0 && t < V;
  const float w = weights[n];
  const float xt = valid ? ToF(x[t]) : 0.0f;  // read before any thread overwrites the row (in place)
  float m = -INFINITY;
  for (I v = threadIdx.x; v < V; v += blockDim.x) m = fmaxf(m, ToF(x[v]));
  m = BlockMax(m, sh);
  float sum = 0, sx = 0;
  for (I v = threadIdx.x; v < V; v += blockDim.x) {
    const float d = ToF(x[v]) - m, e = expf(d);
    sum += e;
    sx += e * d;
  }
  sum = BlockSum(sum, sh);
  sx = BlockSum(sx, sh);  // its barriers also order every read above before the writes below
  const float ls = logf(sum), lse = ls + m;
  if (threadIdx.x == 0) {
    if (entropy) entropy[n] = ls - sx / sum;
    if (logp) logp[n] = valid ? xt - lse : 0.0f;
    loss[n] = w != 0.0f ? w * (lse - xt) : 0.0f;
  }
  if (dlogits) {
    S* dr = dlogits + n * V;
    const float c = w * dscale;
    for (I v = threadIdx.x; v < V; v += blockDim.x) {
      const float g = w == 0.0f ? 0.0f : c * expf(ToF(x[v]) - lse) - (v == t ? c : 0.0f);
      dr[v] = FromF<S>(g);
    }
  }
}

// ---------------------------------------------------------------- MoE
constexpr int kPermThreads = 1024;

// Block-wide exclusive scan of one int per thread (blockDim.x == kPermThreads); sh: kPermThreads ints.
__device__ int BlockExclusiveScan(int v, int* sh, int* total) {
  const int tid = threadIdx.x;
  sh[tid] = v;
  __syncthreads();
  for (int o = 1; o < kPermThreads; o <<= 1) {
    const int add = tid >= o ? sh[tid - o] : 0;
    __syncthreads();
    sh[tid] += add;
    __syncthreads();
  }
  const int incl = sh[tid];
  *total = sh[kPermThreads - 1];
  __syncthreads();
  return incl - v;
}

// One block: offsets by expert and the stable row of every slot. Each thread owns a contiguous chunk of
// slots; per expert, a scan over the threads' counts gives every thread its first row.
__global__ void MoeRouteKernel(const int32_t* idx, I slots, int E, int32_t* row_of_slot, int32_t* offsets) {
  __shared__ int sh[kPermThreads];
  const int tid = threadIdx.x;
  const I chunk = (slots + kPermThreads - 1) / kPermThreads, s0 = tid * chunk, s1 = min(slots, s0 + chunk);
  int base = 0;
  for (int e = 0; e < E; ++e) {
    int c = 0;
    for (I i = s0; i < s1; ++i) c += idx[i] == e;
    int total = 0;
    int pos = base + BlockExclusiveScan(c, sh, &total);
    if (tid == 0) offsets[e] = base;
    for (I i = s0; i < s1; ++i)
      if (idx[i] == e) row_of_slot[i] = pos++;
    base += total;
  }
  if (tid == 0) offsets[E] = base;
}

template <class S>
__global__ void MoeGatherKernel(const S* x, const int32_t* idx, const int32_t* row_of_slot, int K, int E, I D, S* xe) {
  const I i = blockIdx.x;
  if (idx[i] < 0 || idx[i] >= E) return;
  const S* src = x + (i / K) * D;
  S* dst = xe + static_cast<I>(row_of_slot[i]) * D;
  for (I d = threadIdx.x; d < D; d += blockDim.x) dst[d] = src[d];
}

template <class S>
__global__ void MoeUnpermuteKernel(const S* ye, const int32_t* row_of_slot, const float* w, int K, I D, S* y, bool acc) {
  const I n = blockIdx.x;
  for (I d = threadIdx.x; d < D; d += blockDim.x) {
    float a = acc ? ToF(y[n * D + d]) : 0.0f;
    for (int k = 0; k < K; ++k) a += (w ? w[n * K + k] : 1.0f) * ToF(ye[static_cast<I>(row_of_slot[n * K + k]) * D + d]);
    y[n * D + d] = FromF<S>(a);
  }
}

template <class S>
__global__ void MoeUnpermuteBwdKernel(const S* dy, const S* ye, const int32_t* row_of_slot, const float* w, int K, I D,
                                      S* dye, float* dw) {
  __shared__ float sh[32];
  const I slot = blockIdx.x, n = slot / K, r = row_of_slot[slot];
  const float wk = w ? w[slot] : 1.0f;
  float dot = 0;
  for (I d = threadIdx.x; d < D; d += blockDim.x) {
    const float g = ToF(dy[n * D + d]);
    dye[r * D + d] = FromF<S>(wk * g);
    dot += g * ToF(ye[r * D + d]);
  }
  dot = BlockSum(dot, sh);
  if (dw && threadIdx.x == 0) dw[slot] = dot;
}

// ---------------------------------------------------------------- Newton-Schulz helpers
// *out = sum of squares of g[0..n) in double (one block of 1024 threads, fixed reduction order).
__global__ void SumSquaresKernel(const float* g, I n, double* out) {
  __shared__ double sh[1024];
  double acc = 0;
  for (I i = threadIdx.x; i < n; i += blockDim.x) acc += static_cast<double>(g[i]) * g[i];
  sh[threadIdx.x] = acc;
  __syncthreads();
  for (int o = blockDim.x / 2; o > 0; o >>= 1) {
    if (static_cast<int>(threadIdx.x) < o) sh[threadIdx.x] += sh[threadIdx.x + o];
    __syncthreads();
  }
  if (threadIdx.x == 0) *out = sh[0];
}

// x (S) = G * inv, transposed to [cols, rows] when tr.
template <class S>
__global__ void NsLoadKernel(const float* g, I rows, I cols, bool tr, const double* nrm, S* x) {
  const float inv = static_cast<float>(1.0 / (sqrt(*nrm) + 1e-7));
  for (I e = blockIdx.x * static_cast<I>(blockDim.x) + threadIdx.x; e < rows * cols; e += static_cast<I>(gridDim.x) * blockDim.x) {
    const I i = e / cols, j = e % cols;
    x[tr ? j * rows + i : e] = FromF<S>(g[e] * inv);
  }
}

template <class S>
__global__ void NsStoreKernel(const S* x, I rows, I cols, bool tr, float* out) {
  for (I e = blockIdx.x * static_cast<I>(blockDim.x) + threadIdx.x; e < rows * cols; e += static_cast<I>(gridDim.x) * blockDim.x) {
    const I i = e / cols, j = e % cols;
    out[e] = ToF(x[tr ? j * rows + i : e]);
  }
}

// ---------------------------------------------------------------- the backend
class CudaBackend final : public Backend {
 public:
  CudaBackend(DType t, int device) : Backend(t), device_(device) {}
  ~CudaBackend() override {
    // Teardown errors cannot be reported from a destructor; the process keeps going either way.
    (void)cudaSetDevice(device_);
    for (auto& s : scratch_) (void)cudaFree(s.p);
    if (blas_) (void)cublasDestroy(blas_);
    if (stream_) (void)cudaStreamDestroy(stream_);
  }

  Status Init() {
    K2_CUDA_RETURN(cudaSetDevice(device_));
    cudaDeviceProp prop{};
    K2_CUDA_RETURN(cudaGetDeviceProperties(&prop, device_));
    name_ = "cuda:" + std::to_string(device_) + " (" + prop.name + ")";
    smem_optin_ = prop.sharedMemPerBlockOptin;
    K2_CUDA_RETURN(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    K2_CUBLAS_RETURN(cublasCreate(&blas_));
    K2_CUBLAS_RETURN(cublasSetStream(blas_, stream_));
    // Pedantic-free default math: COMPUTE_32F never silently drops to TF32 unless asked.
    K2_CUBLAS_RETURN(cublasSetMathMode(blas_, CUBLAS_DEFAULT_MATH));
    return Status::Ok();
  }

  std::string name() const override { return name_; }

  Expected<void*> Alloc(size_t bytes) override {
    void* p = nullptr;
    K2_CUDA_RETURN(cudaMalloc(&p, std::max<size_t>(bytes, 1)));
    return p;
  }
  void Free(void* p) override {
    if (!p) return;
    // cudaFree waits for the device; an error here means the context is already broken, which the next
    // checked call reports.
    (void)cudaFree(p);
  }
  Status Upload(void* dst, const void* src, size_t bytes) override {
    if (bytes) K2_CUDA_RETURN(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream_));
    // Pageable source memory: make the copy complete before the caller may reuse its buffer.
    K2_CUDA_RETURN(cudaStreamSynchronize(stream_));
    return Status::Ok();
  }
  Status Download(void* dst, const void* src, size_t bytes) override {
    if (bytes) K2_CUDA_RETURN(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream_));
    K2_CUDA_RETURN(cudaStreamSynchronize(stream_));
    return Status::Ok();
  }
  Status Memset(void* dst, int byte, size_t bytes) override {
    if (bytes) K2_CUDA_RETURN(cudaMemsetAsync(dst, byte, bytes, stream_));
    return Status::Ok();
  }
  Status Copy(void* dst, const void* src, size_t bytes) override {
    if (bytes && dst != src) K2_CUDA_RETURN(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream_));
    return Status::Ok();
  }
  Status Synchronize() override {
    K2_CUDA_RETURN(cudaStreamSynchronize(stream_));
    K2_CUDA_RETURN(cudaGetLastError());
    return Status::Ok();
  }

  // ---- GEMM ----
  cudaDataType_t Sty() const { return dtype() == DType::kF32 ? CUDA_R_32F : CUDA_R_16BF; }

  static Status CheckGemm(const char* op, bool ta, bool tb, I M, I N, I K, I lda, I ldb, I ldc) {
    if (M < 0 || N < 0 || K < 0) return InvalidArgument(std::string(op) + ": negative dimension");
    const I need_a = ta ? M : K, need_b = tb ? K : N;
    if (lda < std::max<I>(1, need_a) || ldb < std::max<I>(1, need_b) || ldc < std::max<I>(1, N))
      return InvalidArgument(std::string(op) + ": leading dimension too small (lda=" + std::to_string(lda) +
                             " ldb=" + std::to_string(ldb) + " ldc=" + std::to_string(ldc) + ")");
    const I lim = 2147483647;
    if (M > lim || N > lim || K > lim || lda > lim || ldb > lim || ldc > lim)
      return InvalidArgument(std::string(op) + ": dimension beyond 32 bits");
    return Status::Ok();
  }

  // Row-major C = op(A) op(B) as column-major C^T = op(B)^T op(A)^T; A/B in S, C in ctype.
  Status GemmEx(bool ta, bool tb, I M, I N, I K, float alpha, const void* A, I lda, const void* B, I ldb, float beta,
                void* C, cudaDataType_t ctype, I ldc) {
    K2_RETURN_IF_ERROR(CheckGemm("Gemm", ta, tb, M, N, K, lda, ldb, ldc));
    if (M == 0 || N == 0) return Status::Ok();
    if (K == 0) return ScaleC(C, ctype, M, N, ldc, beta);
    K2_CUBLAS_RETURN(cublasGemmEx(blas_, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N,
                                  static_cast<int>(N), static_cast<int>(M), static_cast<int>(K), &alpha, B, Sty(),
                                  static_cast<int>(ldb), A, Sty(), static_cast<int>(lda), &beta, C, ctype,
                                  static_cast<int>(ldc), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    return Status::Ok();
  }

  Status ScaleC(void* C, cudaDataType_t ctype, I M, I N, I ldc, float beta) {
    if (ctype == CUDA_R_32F)
      ScaleKernel<float><<<Blocks(M * N, 256), 256, 0, stream_>>>(static_cast<float*>(C), M, N, ldc, beta);
    else
      ScaleKernel<bf16><<<Blocks(M * N, 256), 256, 0, stream_>>>(static_cast<bf16*>(C), M, N, ldc, beta);
    K2_CUDA_LAUNCHED();
    return Status::Ok();
  }

  Status Gemm(bool ta, bool tb, I M, I N, I K, float alpha, const void* A, I lda, const void* B, I ldb, float beta,
              void* C, I ldc) override {
    return GemmEx(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, Sty(), ldc);
  }

  Status GemmStridedBatched(bool ta, bool tb, I M, I N, I K, float alpha, const void* A, I lda, I sA, const void* B,
                            I ldb, I sB, float beta, void* C, I ldc, I sC, I batch) override {
    K2_RETURN_IF_ERROR(CheckGemm("GemmStridedBatched", ta, tb, M, N, K, lda, ldb, ldc));
    if (batch < 0 || batch > 2147483647) return InvalidArgument("GemmStridedBatched: bad batch count");
    if (M == 0 || N == 0 || batch == 0) return Status::Ok();
    if (K == 0) {
      for (I i = 0; i < batch; ++i)
        K2_RETURN_IF_ERROR(ScaleC(static_cast<char*>(C) + i * sC * elem_size(), Sty(), M, N, ldc, beta));
      return Status::Ok();
    }
    K2_CUBLAS_RETURN(cublasGemmStridedBatchedEx(
        blas_, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, static_cast<int>(N), static_cast<int>(M),
        static_cast<int>(K), &alpha, B, Sty(), static_cast<int>(ldb), sB, A, Sty(), static_cast<int>(lda), sA, &beta, C,
        Sty(), static_cast<int>(ldc), sC, static_cast<int>(batch), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    return Status::Ok();
  }

  Status Linear(const void* x, const void* W, void* y, I N, I in, I out, bool accumulate) override {
    return Gemm(false, true, N, out, in, 1.0f, x, in, W, in, accumulate ? 1.0f : 0.0f, y, out);
  }

  Status LinearBackward(const void* x, const void* W, const void* dy, void* dx, float* dW, I N, I in, I out,
                        bool dx_acc) override {
    if (dx) K2_RETURN_IF_ERROR(Gemm(false, false, N, in, out, 1.0f, dy, out, W, in, dx_acc ? 1.0f : 0.0f, dx, in));
    if (dW && N > 0) K2_RETURN_IF_ERROR(GemmEx(true, false, out, in, N, 1.0f, dy, out, x, in, 1.0f, dW, CUDA_R_32F, in));
    return Status::Ok();
  }

// Dispatch a kernel launch on the storage type.
#define K2_LAUNCH(kernel, grid, block, smem, ...)                                   \
  do {                                                                              \
    if (dtype() == DType::kF32) {                                                   \
      using S = float;                                                              \
      kernel<S><<<(grid), (block), (smem), stream_>>>(__VA_ARGS__);                 \
    } else {                                                                        \
      using S = bf16;                                                               \
      kernel<S><<<(grid), (block), (smem), stream_>>>(__VA_ARGS__);                 \
    }                                                                               \
    K2_CUDA_LAUNCHED();                                                             \
  } while (0)
#define SP(p) static_cast<S*>(p)
#define CSP(p) static_cast<const S*>(p)

  Status RmsNorm(const void* x, I ldx, const void* w, void* y, float* rstd, I N, I D, double eps) override {
    if (N < 0 || D < 1 || ldx < D) return InvalidArgument("RmsNorm: bad shape");
    if (N == 0) return Status::Ok();
    K2_LAUNCH(RmsNormKernel, static_cast<unsigned>(N), 256, 0, CSP(x), ldx, CSP(w), SP(y), rstd, static_cast<int>(D),
              static_cast<float>(eps));
    return Status::Ok();
  }

  Status RmsNormBackward(const void* x, I ldx, const void* w, const float* rstd, const void* dy, void* dx, I lddx,
                         float* dw, I N, I D, bool dx_acc) override {
    if (N < 0 || D < 1 || ldx < D || lddx < D) return InvalidArgument("RmsNormBackward: bad shape");
    if (N == 0) return Status::Ok();
    K2_LAUNCH(RmsNormBwdKernel, static_cast<unsigned>(N), 256, 0, CSP(x), ldx, CSP(w), rstd, CSP(dy), SP(dx), lddx,
              static_cast<int>(D), dx_acc);
    K2_LAUNCH(RmsNormDwKernel, Blocks(D, 128), 128, 0, CSP(x), ldx, rstd, CSP(dy), dw, N, static_cast<int>(D));
    return Status::Ok();
  }

  Status Rope(void* x, I N, I heads, I row_stride, I head_stride, const int32_t* pos, const double* inv_freq, I d,
              bool interleave, double attn_factor, bool inverse) override {
    if (d % 2 != 0) return InvalidArgument("Rope: odd rotary dimension " + std::to_string(d));
    if (N <= 0 || heads <= 0 || d == 0) return Status::Ok();
    K2_LAUNCH(RopeKernel, Blocks(N * (d / 2), 256), 256, 0, SP(x), N, static_cast<int>(heads), row_stride, head_stride,
              pos, inv_freq, static_cast<int>(d / 2), interleave, attn_factor, inverse);
    return Status::Ok();
  }

  Status SwiGlu(const void* g, const void* u, void* a, I n) override {
    if (n <= 0) return Status::Ok();
    K2_LAUNCH(SwiGluKernel, Blocks(n, 256), 256, 0, CSP(g), CSP(u), SP(a), n);
    return Status::Ok();
  }
  Status SwiGluBackward(const void* g, const void* u, const void* da, void* dg, void* du, I n) override {
    if (n <= 0) return Status::Ok();
    K2_LAUNCH(SwiGluBwdKernel, Blocks(n, 256), 256, 0, CSP(g), CSP(u), CSP(da), SP(dg), SP(du), n);
    return Status::Ok();
  }
  Status Add(const void* a, const void* b, void* y, I n) override {
    if (n < 0) return InvalidArgument("Add: negative size " + std::to_string(n));
    if (n == 0) return Status::Ok();
    K2_LAUNCH(AddKernel, Blocks(n, 256), 256, 0, CSP(a), CSP(b), SP(y), n);
    return Status::Ok();
  }

  // ---- embedding ----
  static Status CheckEmbedding(const char* op, I N, I D, I V) {
    if (N < 0 || D < 1 || V < 1)
      return InvalidArgument(std::string(op) + ": bad shape N=" + std::to_string(N) + " D=" + std::to_string(D) +
                             " V=" + std::to_string(V));
    return Status::Ok();
  }
  Status EmbeddingGather(const void* table, I V, const int32_t* tokens, I N, I D, void* y) override {
    K2_RETURN_IF_ERROR(CheckEmbedding("EmbeddingGather", N, D, V));
    if (N == 0) return Status::Ok();
    K2_LAUNCH(EmbeddingGatherKernel, Blocks(N * D, 256), 256, 0, CSP(table), V, tokens, N, D, SP(y));
    return Status::Ok();
  }
  Status EmbeddingScatterAdd(const void* dy, const int32_t* tokens, I N, I D, I V, float* dtable) override {
    K2_RETURN_IF_ERROR(CheckEmbedding("EmbeddingScatterAdd", N, D, V));
    if (N == 0) return Status::Ok();
    K2_LAUNCH(EmbeddingScatterAddKernel, Blocks(N * D, 256), 256, 0, CSP(dy), tokens, N, D, V, dtable);
    return Status::Ok();
  }

  // ---- attention ----
  Status CheckAttn(const AttnShape& s, size_t smem) const {
    if (s.B < 0 || s.H < 1 || s.T < 0 || s.dq < 1 || s.dv < 1 || s.T > (1 << 30) || s.B * s.H > 65535)
      return InvalidArgument("attention: bad shape B=" + std::to_string(s.B) + " H=" + std::to_string(s.H) +
                             " T=" + std::to_string(s.T) + " (B*H <= 65535)");
    if (smem > smem_optin_)
      return InvalidArgument("attention: head dims dq=" + std::to_string(s.dq) + " dv=" + std::to_string(s.dv) +
                             " need " + std::to_string(smem) + " bytes of shared memory, the device allows " +
                             std::to_string(smem_optin_));
    return Status::Ok();
  }

  template <class K>
  Status AllowSmem(K* kernel, size_t bytes) {
    if (bytes > 48 * 1024)
      K2_CUDA_RETURN(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)));
    return Status::Ok();
  }

  Status AttentionForward(const AttnShape& s, const void* q, const void* k, const void* v, const int32_t* seg,
                          const int32_t* par, void* o, float* lse, float* max_logit) override {
    const size_t smem = AttnFwdSmem(static_cast<int>(s.dq), static_cast<int>(s.dv));
    K2_RETURN_IF_ERROR(CheckAttn(s, smem));
    const int tiles = static_cast<int>((s.T + kBr - 1) / kBr);
    if (s.B == 0 || tiles == 0) {
      std::vector<float> ninf(static_cast<size_t>(s.H), -INFINITY);
      K2_CUDA_RETURN(cudaMemcpyAsync(max_logit, ninf.data(), ninf.size() * 4, cudaMemcpyHostToDevice, stream_));
      return Synchronize();
    }
    K2_ASSIGN_OR_RETURN(void* tmax, Scratch(0, sizeof(float) * static_cast<size_t>(s.B * s.H * tiles)));
    const dim3 grid(static_cast<unsigned>(tiles), static_cast<unsigned>(s.B * s.H));
    const int H = static_cast<int>(s.H), T = static_cast<int>(s.T), dq = static_cast<int>(s.dq), dv = static_cast<int>(s.dv);
    const float sc = static_cast<float>(s.scale);
    if (dtype() == DType::kF32) {
      K2_RETURN_IF_ERROR(AllowSmem(AttnFwdKernel<float>, smem));
    } else {
      K2_RETURN_IF_ERROR(AllowSmem(AttnFwdKernel<bf16>, smem));
    }
    K2_LAUNCH(AttnFwdKernel, grid, kAttnThreads, smem, CSP(q), CSP(k), CSP(v), seg, par, SP(o), lse,
              static_cast<float*>(tmax), H, T, dq, dv, sc);
    HeadMaxKernel<<<Blocks(s.H, 64), 64, 0, stream_>>>(static_cast<float*>(tmax), static_cast<int>(s.B), H, tiles,
                                                       max_logit);
    K2_CUDA_LAUNCHED();
    return Status::Ok();
  }

  Status AttentionBackward(const AttnShape& s, const void* q, const void* k, const void* v, const int32_t* seg,
                           const int32_t* par, const void* o, const float* lse, const void* dout, void* dq, void* dk,
                           void* dv) override {
    const int idq = static_cast<int>(s.dq), idv = static_cast<int>(s.dv);
    const size_t skv = AttnBwdKvSmem(idq, idv), sq = AttnBwdQSmem(idq, idv);
    K2_RETURN_IF_ERROR(CheckAttn(s, std::max(skv, sq)));
    const int tiles = static_cast<int>((s.T + kBr - 1) / kBr);
    if (s.B == 0 || tiles == 0) return Status::Ok();
    const I rows = s.B * s.H * s.T;
    K2_ASSIGN_OR_RETURN(void* drow, Scratch(0, sizeof(float) * static_cast<size_t>(rows)));
    float* D = static_cast<float*>(drow);
    K2_LAUNCH(AttnRowDotKernel, Blocks(rows, 128), 128, 0, CSP(dout), CSP(o), D, rows, idv);
    const dim3 grid(static_cast<unsigned>(tiles), static_cast<unsigned>(s.B * s.H));
    const int H = static_cast<int>(s.H), T = static_cast<int>(s.T);
    const float sc = static_cast<float>(s.scale);
    if (dtype() == DType::kF32) {
      K2_RETURN_IF_ERROR(AllowSmem(AttnBwdKvKernel<float>, skv));
      K2_RETURN_IF_ERROR(AllowSmem(AttnBwdQKernel<float>, sq));
    } else {
      K2_RETURN_IF_ERROR(AllowSmem(AttnBwdKvKernel<bf16>, skv));
      K2_RETURN_IF_ERROR(AllowSmem(AttnBwdQKernel<bf16>, sq));
    }
    K2_LAUNCH(AttnBwdKvKernel, grid, kAttnThreads, skv, CSP(q), CSP(k), CSP(v), seg, par, lse, D, CSP(dout), SP(dk),
              SP(dv), H, T, idq, idv, sc);
    K2_LAUNCH(AttnBwdQKernel, grid, kAttnThreads, sq, CSP(q), CSP(k), CSP(v), seg, par, lse, D, CSP(dout), SP(dq), H, T,
              idq, idv, sc);
    return Status::Ok();
  }

  Status MlaDecodeAttention(const MlaDecodeShape& s, const void* q_lat, const void* q_pe, const void* pages,
                            const int32_t* page_table, const int32_t* row_seq, const int32_t* row_pos,
                            void* o_lat) override {
    if (s.rows < 0 || s.H < 1 || s.rkv < 1 || s.dr < 0 || s.page_size < 1 || s.layer < 0 || s.layer >= s.num_layers ||
        s.rows * s.H > 2147483647)
      return InvalidArgument("MlaDecodeAttention: bad shape");
    if (s.rows == 0) return Status::Ok();
    if (s.rkv > (1 << 20) || s.dr > (1 << 20)) return InvalidArgument("MlaDecodeAttention: latent too wide");
    const size_t smem = MlaSmem(static_cast<int>(s.rkv), static_cast<int>(s.dr));
    if (smem > smem_optin_) return InvalidArgument("MlaDecodeAttention: latent too wide for shared memory");
    if (dtype() == DType::kF32) {
      K2_RETURN_IF_ERROR(AllowSmem(MlaDecodeKernel<float>, smem));
    } else {
      K2_RETURN_IF_ERROR(AllowSmem(MlaDecodeKernel<bf16>, smem));
    }
    K2_LAUNCH(MlaDecodeKernel, static_cast<unsigned>(s.rows * s.H), kMlaThreads, smem, CSP(q_lat), CSP(q_pe),
              CSP(pages), page_table, row_seq, row_pos, SP(o_lat), s);
    return Status::Ok();
  }

  Status RouterTopK(const void* logits, const float* bias, I N, I E, I n_group, I topk_group, I k, bool norm_topk,
                    double routed_scaling, int32_t* idx, float* weights, float* scores) override {
    if (E < 1 || n_group < 1 || n_group > 64 || E % n_group != 0 || E / n_group < 2 || topk_group < 1 ||
        topk_group > n_group || k < 1 || k > kMaxTopK || k > topk_group * (E / n_group) || N > 2147483647)
      return InvalidArgument("RouterTopK: bad shape E=" + std::to_string(E) + " n_group=" + std::to_string(n_group) +
                             " (<= 64) topk_group=" + std::to_string(topk_group) + " k=" + std::to_string(k) + " (<= 64)");
    if (N == 0) return Status::Ok();
    float* sc = scores;
    if (!sc) {
      K2_ASSIGN_OR_RETURN(void* p, Scratch(1, sizeof(float) * static_cast<size_t>(N * E)));
      sc = static_cast<float*>(p);
    }
    K2_LAUNCH(RouterKernel, Blocks(N, 128), 128, 0, CSP(logits), bias, static_cast<int>(N), static_cast<int>(E),
              static_cast<int>(n_group), static_cast<int>(topk_group), static_cast<int>(k), norm_topk,
              static_cast<float>(routed_scaling), idx, weights, sc);
    return Status::Ok();
  }

  Status CrossEntropy(const void* logits, const int32_t* targets, const float* weights, I N, I V, void* dlogits,
                      double dscale, float* loss, float* logp, float* entropy) override {
    if (V < 1 || N < 0 || N > 2147483647) return InvalidArgument("CrossEntropy: bad shape");
    if (N == 0) return Status::Ok();
    K2_LAUNCH(CrossEntropyKernel, static_cast<unsigned>(N), 512, 0, CSP(logits), targets, weights, V, SP(dlogits),
              static_cast<float>(dscale), loss, logp, entropy);
    return Status::Ok();
  }

  Status MoePermute(const void* x, I N, I D, const int32_t* idx, I K, I E, void* xe, int32_t* row_of_slot,
                    int32_t* offsets) override {
    if (N < 0 || D < 1 || K < 1 || E < 1 || N * K > 2147483647) return InvalidArgument("MoePermute: bad shape");
    MoeRouteKernel<<<1, kPermThreads, 0, stream_>>>(idx, N * K, static_cast<int>(E), row_of_slot, offsets);
    K2_CUDA_LAUNCHED();
    if (N == 0) return Status::Ok();
    K2_LAUNCH(MoeGatherKernel, static_cast<unsigned>(N * K), 256, 0, CSP(x), idx, row_of_slot, static_cast<int>(K),
              static_cast<int>(E), D, SP(xe));
    return Status::Ok();
  }

  Status MoeUnpermute(const void* ye, const int32_t* row_of_slot, const float* w, I N, I K, I D, void* y,
                      bool accumulate) override {
    if (N < 0 || K < 1 || D < 1) return InvalidArgument("MoeUnpermute: bad shape");
    if (N == 0) return Status::Ok();
    K2_LAUNCH(MoeUnpermuteKernel, static_cast<unsigned>(N), 256, 0, CSP(ye), row_of_slot, w, static_cast<int>(K), D,
              SP(y), accumulate);
    return Status::Ok();
  }

  Status MoeUnpermuteBackward(const void* dy, const void* ye, const int32_t* row_of_slot, const float* w, I N, I K,
                              I D, void* dye, float* dw) override {
    if (N < 0 || K < 1 || D < 1) return InvalidArgument("MoeUnpermuteBackward: bad shape");
    if (N == 0) return Status::Ok();
    K2_LAUNCH(MoeUnpermuteBwdKernel, static_cast<unsigned>(N * K), 256, 0, CSP(dy), CSP(ye), row_of_slot, w,
              static_cast<int>(K), D, SP(dye), dw);
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
    const bool tr = rows > cols;
    const I r = tr ? cols : rows, c = tr ? rows : cols;
    const size_t es = elem_size(), xb = static_cast<size_t>(r * c) * es, ab = static_cast<size_t>(r * r) * es;
    K2_ASSIGN_OR_RETURN(void* base, Scratch(2, 2 * xb + 2 * ab + 256 * 5));
    auto align = [](size_t v) { return (v + 255) / 256 * 256; };
    char* p = static_cast<char*>(base);
    double* nrm = reinterpret_cast<double*>(p);
    void* x = p + 256;
    void* y = p + 256 + align(xb);
    void* a = p + 256 + 2 * align(xb);
    void* b = p + 256 + 2 * align(xb) + align(ab);
    SumSquaresKernel<<<1, 1024, 0, stream_>>>(G, rows * cols, nrm);
    K2_CUDA_LAUNCHED();
    K2_LAUNCH(NsLoadKernel, Blocks(rows * cols, 256), 256, 0, G, rows, cols, tr, nrm, SP(x));
    for (I s = 0; s < steps; ++s) {
      K2_RETURN_IF_ERROR(Gemm(false, true, r, r, c, 1.0f, x, c, x, c, 0.0f, a, r));  // A = X X^T
      K2_RETURN_IF_ERROR(Copy(b, a, ab));
      K2_RETURN_IF_ERROR(Gemm(false, false, r, r, r, 2.0315f, a, r, a, r, -4.7750f, b, r));  // B = c A A + b A
      K2_RETURN_IF_ERROR(Copy(y, x, xb));
      K2_RETURN_IF_ERROR(Gemm(false, false, r, c, r, 1.0f, b, r, y, c, 3.4445f, x, c));  // X = a X + B X
    }
    K2_LAUNCH(NsStoreKernel, Blocks(rows * cols, 256), 256, 0, CSP(x), rows, cols, tr, out);
    return Status::Ok();
  }

  // ---- optimizer updates ----
  Status AdamWUpdate(float* w, void* w_s, const float* g, float* m, float* v, I n, const AdamWArgs& a) override {
    if (n < 0) return InvalidArgument("AdamWUpdate: negative size " + std::to_string(n));
    if (n == 0) return Status::Ok();
    K2_LAUNCH(AdamWKernel, Blocks(n, 256), 256, 0, w, SP(w_s), g, m, v, n, a);
    return Status::Ok();
  }

  Status MuonMomentum(const float* g, float* m, float* u, I n, float mu, float grad_scale, bool nesterov) override {
    if (n < 0) return InvalidArgument("MuonMomentum: negative size " + std::to_string(n));
    if (n == 0) return Status::Ok();
    MuonMomentumKernel<<<Blocks(n, 256), 256, 0, stream_>>>(g, m, u, n, mu, grad_scale, nesterov);
    K2_CUDA_LAUNCHED();
    return Status::Ok();
  }

  Status MuonApply(float* w, void* w_s, const float* o, I n, float lr, float scale, float weight_decay) override {
    if (n < 0) return InvalidArgument("MuonApply: negative size " + std::to_string(n));
    if (n == 0) return Status::Ok();
    K2_LAUNCH(MuonApplyKernel, Blocks(n, 256), 256, 0, w, SP(w_s), o, n, lr, scale, weight_decay);
    return Status::Ok();
  }

#undef SP
#undef CSP
#undef K2_LAUNCH

 private:
  struct Buf {
    void* p = nullptr;
    size_t bytes = 0;
  };
  // Growable scratch slots, kept between calls (slot 0 attention, 1 router, 2 Newton-Schulz). Growing
  // synchronizes (cudaFree waits for queued work that may still read the old buffer).
  Expected<void*> Scratch(int slot, size_t bytes) {
    Buf& b = scratch_[static_cast<size_t>(slot)];
    if (b.bytes < bytes) {
      K2_CUDA_RETURN(cudaStreamSynchronize(stream_));
      K2_CUDA_RETURN(cudaFree(b.p));
      b.p = nullptr;
      b.bytes = 0;
      K2_CUDA_RETURN(cudaMalloc(&b.p, bytes));
      b.bytes = bytes;
    }
    return b.p;
  }

  int device_;
  std::string name_;
  size_t smem_optin_ = 48 * 1024;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t blas_ = nullptr;
  Buf scratch_[3];
};

}  // namespace

Expected<std::unique_ptr<Backend>> MakeCudaBackend(const BackendOptions& opts) {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();
    n = 0;
  }
  if (n == 0) return Unavailable("cuda backend: no CUDA device visible (driver missing or no GPU)");
  if (opts.device < 0 || opts.device >= n)
    return Unavailable("cuda backend: device " + std::to_string(opts.device) + " does not exist (" + std::to_string(n) +
                       " visible)");
  auto b = std::make_unique<CudaBackend>(opts.dtype, opts.device);
  K2_RETURN_IF_ERROR(b->Init());
  return std::unique_ptr<Backend>(std::move(b));
}

}  // namespace k2::engine
