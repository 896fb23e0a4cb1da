// The backend interface of the engine: device memory plus the op table of engine/ops_cpu.h over device
// pointers, so the model is written once and runs on the CPU (CpuBackend) or a GPU (CudaBackend).
//
// Storage and precision. A backend is created with a storage dtype: kF32 (the parity mode) or kBF16.
// Every pointer documented as S points at elements of that dtype; pointers typed float*/int32_t*/double*
// are always that type whatever the mode (norm statistics, softmax log-sum-exp, losses, log-probs,
// router scores/weights, per-head max logits, and parameter GRADIENTS, which accumulate in fp32 so that
// fp32 master weights and optimizer state see unrounded sums). Arithmetic accumulates in fp32 in both
// modes (the CPU backend converts S to float, calls ops_cpu<float>, rounds results back to S), so the two
// backends compute the same function up to summation order.
// Layout: row-major; "ld"/"stride" arguments are row strides in elements. All pointers are device
// pointers of THIS backend (host memory for CpuBackend) unless the argument name starts with host_.
// Ordering: ops run in issue order on the backend's one stream; Download and Synchronize wait for them.
// Errors: every op returns a Status (InvalidArgument for bad shapes, ResourceExhausted for out of memory,
// Internal naming the failed CUDA/cuBLAS call); an asynchronous kernel fault surfaces at the next
// Synchronize/Download. Nothing aborts and no exception escapes.
// Thread safety: one backend object per thread (it owns scratch and a stream); distinct objects are
// independent.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "core/status.h"

namespace k2::engine {

enum class DType { kF32, kBF16 };

inline const char* DTypeName(DType t) { return t == DType::kF32 ? "fp32" : "bf16"; }
inline size_t DTypeSize(DType t) { return t == DType::kF32 ? 4 : 2; }

// Host bf16 conversions: round to nearest even (what __float2bfloat16_rn does), NaN kept quiet.
inline uint16_t FloatToBf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
inline float Bf16ToFloat(uint16_t h) {
  const uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
// The value a float takes after a trip through the storage dtype.
inline float RoundTo(DType t, float f) { return t == DType::kF32 ? f : Bf16ToFloat(FloatToBf16(f)); }

// One AdamW step's hyper-parameters (engine/optimizer.cc's formula, see Backend::AdamWUpdate):
// bias_correction{1,2} = 1 - beta{1,2}^(step+1); grad_scale is the global-norm clipping factor.
struct AdamWArgs {
  float lr = 0.0f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, weight_decay = 0.0f, grad_scale = 1.0f;
  float bias_correction1 = 1.0f, bias_correction2 = 1.0f;
};

struct BackendOptions {
  DType dtype = DType::kF32;
  int device = 0;  // CUDA device ordinal (ignored by the CPU backend)
};

// Shapes of causal attention over B packed rows of T tokens and H heads (the layout engine/model_impl.h
// gathers): q, k [B, H, T, dq]; v, o [B, H, T, dv]; seg [B, T] or null; par [B, T] or null (segment
// parents, -1 = none; needs seg). Query i sees key j when j <= i and (seg is null, or seg[j] == seg[i], or
// par[i] >= 0 and seg[j] == par[i]): ops::CausalAttention's shared-prefix rule (one prompt, several
// continuations in one row). par must follow ops::CheckSharedPrefix's layout rules (contiguous segments,
// one parent per segment, wholly before its children, one level); the CPU backend returns InvalidArgument
// naming the row otherwise, the device applies the visibility rule as written without checking.
// lse [B, H, T] fp32 natural-log sum of exp of the scaled visible logits.
struct AttnShape {
  int64_t B = 1, H = 1, T = 1, dq = 1, dv = 1;
  double scale = 1.0;
};

// Absorbed-MLA attention of `rows` query rows over the paged latent cache of engine/gen/kv_cache.h.
// pages: the page pool [num_pages, num_layers, page_size, rkv + dr] (S); row r belongs to sequence
// row_seq[r], whose page list is page_table[row_seq[r] * max_pages ...]; it sees keys 0..row_pos[r].
// Key j has latent c_j = row[0:rkv] and roped k_pe_j = row[rkv:rkv+dr]; the score of head h is
// scale * (q_lat[r,h]·c_j + q_pe[r,h]·k_pe_j) and the output o_lat[r,h] = sum_j softmax_j c_j.
struct MlaDecodeShape {
  int64_t rows = 1, H = 1, rkv = 1, dr = 0;
  int64_t page_size = 16, num_layers = 1, layer = 0, max_pages = 1;
  int64_t q_pe_row_stride = 0, q_pe_head_stride = 0;  // q_pe element (r, h, d) at r*row + h*head + d
  double scale = 1.0;
};

class Backend {
 public:
  using I = int64_t;
  virtual ~Backend() = default;

  // "cpu" or "cuda:<ordinal> (<GPU name>)".
  virtual std::string name() const = 0;
  DType dtype() const { return dtype_; }
  size_t elem_size() const { return DTypeSize(dtype_); }

  // ---- memory (bytes) ----
  // Alloc returns 256-byte aligned memory (ResourceExhausted when none is left); Free(nullptr) is a no-op.
  virtual Expected<void*> Alloc(size_t bytes) = 0;
  virtual void Free(void* p) = 0;
  virtual Status Upload(void* dst, const void* host_src, size_t bytes) = 0;
  virtual Status Download(void* host_dst, const void* src, size_t bytes) = 0;  // waits for prior ops
  virtual Status Memset(void* dst, int byte, size_t bytes) = 0;
  virtual Status Copy(void* dst, const void* src, size_t bytes) = 0;           // device to device
  virtual Status Synchronize() = 0;
  // n floats to/from S storage (rounded to nearest even for bf16).
  Status UploadFloats(void* dst, const float* host_src, I n);
  Status DownloadFloats(float* host_dst, const void* src, I n);

  // ---- GEMMs (S inputs and output, fp32 accumulation; no TF32 in fp32 mode) ----
  // C[M,N] = alpha op(A) op(B) + beta C.
  virtual Status Gemm(bool ta, bool tb, I M, I N, I K, float alpha, const void* A, I lda, const void* B, I ldb,
                      float beta, void* C, I ldc) = 0;
  // The same for batch matrices A + i*strideA, B + i*strideB, C + i*strideC (strides in elements).
  virtual Status GemmStridedBatched(bool ta, bool tb, I M, I N, I K, float alpha, const void* A, I lda,
                                    I strideA, const void* B, I ldb, I strideB, float beta, void* C, I ldc,
                                    I strideC, I batch) = 0;
  // y[N,out] = x[N,in] W[out,in]^T (or += when accumulate).
  virtual Status Linear(const void* x, const void* W, void* y, I N, I in, I out, bool accumulate) = 0;
  // dx[N,in] = (or += when dx_acc) dy W; dW[out,in] (fp32) += dy^T x. dx or dW may be null.
  virtual Status LinearBackward(const void* x, const void* W, const void* dy, void* dx, float* dW, I N, I in,
                                I out, bool dx_acc) = 0;

  // ---- elementwise and row ops ----
  // y[N,D] = x / rms(x) * w (x rows at stride ldx; y dense); rstd[N] saved. x must not alias y.
  virtual Status RmsNorm(const void* x, I ldx, const void* w, void* y, float* rstd, I N, I D, double eps) = 0;
  // dx (rows at stride lddx) = or += (dx_acc); dw[D] (fp32) += sum over rows.
  virtual Status RmsNormBackward(const void* x, I ldx, const void* w, const float* rstd, const void* dy,
                                 void* dx, I lddx, float* dw, I N, I D, bool dx_acc) = 0;
  // In-place RoPE/YaRN exactly as ops::Rope (pos [N] int32, inv_freq [d/2] fp64 on the device).
  virtual Status Rope(void* x, I N, I heads, I row_stride, I head_stride, const int32_t* pos,
                      const double* inv_freq, I d, bool interleave, double attn_factor, bool inverse) = 0;
  virtual Status SwiGlu(const void* g, const void* u, void* a, I n) = 0;
  virtual Status SwiGluBackward(const void* g, const void* u, const void* da, void* dg, void* du, I n) = 0;
  // y = a + b (S, n elements; fp32 sum rounded once): the residual adds. y may alias a or b.
  virtual Status Add(const void* a, const void* b, void* y, I n) = 0;

  // ---- embedding ----
  // y[n] = table[tokens[n]] (S rows of D; table [V, D] S, tokens [N] int32). A token outside [0, V) is
  // InvalidArgument naming its index on the CPU; the device writes a zero row for it (no fault).
  virtual Status EmbeddingGather(const void* table, I V, const int32_t* tokens, I N, I D, void* y) = 0;
  // The embedding backward: dtable[tokens[n]] += dy[n] (dy [N, D] S; dtable [V, D] fp32, accumulated).
  // Same range rule (the device skips such a row). The CPU adds in token order; the device uses
  // atomicAdd, so the order in which repeated tokens' rows are summed is not fixed there.
  virtual Status EmbeddingScatterAdd(const void* dy, const int32_t* tokens, I N, I D, I V, float* dtable) = 0;

  // ---- attention ----
  // o and lse as documented at AttnShape; max_logit[H] (fp32) = the largest visible scaled logit of each
  // head over all rows (QK-Clip's statistic). No [T,T] matrix is kept.
  virtual Status AttentionForward(const AttnShape& s, const void* q, const void* k, const void* v,
                                  const int32_t* seg, const int32_t* par, void* o, float* lse,
                                  float* max_logit) = 0;
  // dq, dk [B,H,T,dq] and dv [B,H,T,dv] overwritten, recomputing the softmax from lse.
  virtual Status AttentionBackward(const AttnShape& s, const void* q, const void* k, const void* v,
                                   const int32_t* seg, const int32_t* par, const void* o, const float* lse,
                                   const void* dout, void* dq, void* dk, void* dv) = 0;
  virtual Status MlaDecodeAttention(const MlaDecodeShape& s, const void* q_lat, const void* q_pe,
                                    const void* pages, const int32_t* page_table, const int32_t* row_seq,
                                    const int32_t* row_pos, void* o_lat) = 0;

  // ---- router, loss ----
  // DeepSeek-V3 router on logits [N,E] (S): scores = sigmoid(logits) (fp32, written to `scores` [N,E]
  // when not null), choice on scores + bias[E] with ops::RouterTopK's group limit and tie rule,
  // idx [N,k] best first; weights [N,k] = chosen scores (divided by their sum + 1e-20 when norm_topk)
  // times routed_scaling.
  virtual Status RouterTopK(const void* logits, const float* bias, I N, I E, I n_group, I topk_group, I k,
                            bool norm_topk, double routed_scaling, int32_t* idx, float* weights,
                            float* scores) = 0;
  // Weighted softmax cross-entropy over logits [N,V] (S) as ops::CrossEntropy: loss[N] (fp32) = w_n CE_n
  // (0 when w_n = 0), logp/entropy [N] (fp32, optional), dlogits (S, optional) = dscale w_n (softmax -
  // onehot). dlogits MAY equal logits (in place), so no second logits-sized buffer is needed. Targets
  // outside [0, V) must carry weight 0 (InvalidArgument is not detected on the device: loss is then 0).
  virtual Status CrossEntropy(const void* logits, const int32_t* targets, const float* weights, I N, I V,
                              void* dlogits, double dscale, float* loss, float* logp, float* entropy) = 0;

  // ---- MoE ----
  // Slots i = n*K + k (token n's k-th expert idx[i]) grouped by expert, stable in i: expert e owns rows
  // [offsets[e], offsets[e+1]) of xe [N*K, D]; row_of_slot[i] is slot i's row; xe[row_of_slot[i]] = x[n].
  // offsets [E+1] int32 on the device. Expert ids outside [0, E) are a caller bug (InvalidArgument on CPU,
  // skipped on the device).
  virtual Status MoePermute(const void* x, I N, I D, const int32_t* idx, I K, I E, void* xe,
                            int32_t* row_of_slot, int32_t* offsets) = 0;
  // y[n] (+)= sum_k w[n,k] ye[row_of_slot[n*K+k]]; w null means 1 (then it is also the backward of
  // MoePermute: dx += unpermute(dxe)).
  virtual Status MoeUnpermute(const void* ye, const int32_t* row_of_slot, const float* w, I N, I K, I D,
                              void* y, bool accumulate) = 0;
  // dye[row_of_slot[n*K+k]] = w[n,k] dy[n]; dw[n,k] (fp32) = dy[n]·ye[row_of_slot[n*K+k]] (dw nullable).
  virtual Status MoeUnpermuteBackward(const void* dy, const void* ye, const int32_t* row_of_slot, const float* w,
                                      I N, I K, I D, void* dye, float* dw) = 0;
  // Per expert e: y[r] = x[r] W_e^T for rows r in [host_offsets[e], host_offsets[e+1]); W [E,out,in] (S).
  // host_offsets is a host copy of MoePermute's offsets (GEMM sizes must be known when launching).
  virtual Status GroupedLinear(const void* x, const void* W, void* y, const int32_t* host_offsets, I E, I in,
                               I out) = 0;
  // dx = dy_e W_e (overwrite, may be null); dW_e (fp32) += dy_e^T x_e.
  virtual Status GroupedLinearBackward(const void* x, const void* W, const void* dy, void* dx, float* dW,
                                       const int32_t* host_offsets, I E, I in, I out) = 0;

  // ---- optimizer ----
  // Muon's orthogonalization of G [rows, cols] (fp32 in and out) exactly as engine::NewtonSchulz:
  // X = G/(|G|_F + 1e-7) (transposed when rows > cols), `steps` quintic iterations
  // X = 3.4445 X + (-4.7750 A + 2.0315 A A) X with A = X X^T; the GEMMs run in S (bf16 tensor cores in
  // bf16 mode) with fp32 accumulation. Scratch is allocated by the backend and kept for reuse.
  virtual Status NewtonSchulz(const float* G, I rows, I cols, I steps, float* out) = 0;
  // Elementwise updates of n fp32 master weights w (in place) with their fp32 state, exactly the formulas
  // of engine/optimizer.cc (the CPU backend runs the same ops:: functions). w_s, when not null, is an
  // S-typed copy of the weights that the update rewrites: w_s = w rounded to the storage dtype (what the
  // next forward reads in bf16 mode).
  // AdamW: g' = grad_scale g; m = b1 m + (1-b1) g'; v = b2 v + (1-b2) g'^2;
  // w -= lr (m/bc1 / (sqrt(v/bc2) + eps) + weight_decay w).
  virtual Status AdamWUpdate(float* w, void* w_s, const float* g, float* m, float* v, I n, const AdamWArgs& a) = 0;
  // Muon momentum: g' = grad_scale g; m = mu m + g'; u = nesterov ? g' + mu m : m (u, fp32, is what
  // NewtonSchulz orthogonalizes; it may alias g, not m).
  virtual Status MuonMomentum(const float* g, float* m, float* u, I n, float mu, float grad_scale,
                              bool nesterov) = 0;
  // Muon update from the orthogonalized o (fp32): w -= lr (o scale + weight_decay w).
  virtual Status MuonApply(float* w, void* w_s, const float* o, I n, float lr, float scale, float weight_decay) = 0;

 protected:
  explicit Backend(DType dtype) : dtype_(dtype) {}

 private:
  DType dtype_;
};

// "cpu" or "cuda". InvalidArgument for another name; Unavailable when k2gym was built without CUDA
// (cmake --preset cuda) or the device ordinal does not exist.
Expected<std::unique_ptr<Backend>> MakeBackend(std::string_view kind, const BackendOptions& opts = {});
std::unique_ptr<Backend> MakeCpuBackend(DType dtype);

// RAII device buffer of one backend (Free on destruction). Movable, not copyable.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  static Expected<DeviceBuffer> Create(Backend* b, size_t bytes) {
    auto p = b->Alloc(bytes);
    if (!p.ok()) return p.status();
    DeviceBuffer d;
    d.b_ = b;
    d.p_ = *p;
    d.bytes_ = bytes;
    return Expected<DeviceBuffer>(std::move(d));  // explicit: C++17 (nvcc) has no implicit move here
  }
  DeviceBuffer(DeviceBuffer&& o) noexcept : b_(o.b_), p_(o.p_), bytes_(o.bytes_) { o.p_ = nullptr; }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      Reset();
      b_ = o.b_, p_ = o.p_, bytes_ = o.bytes_;
      o.p_ = nullptr;
    }
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() { Reset(); }
  void Reset() {
    if (p_ && b_) b_->Free(p_);
    p_ = nullptr;
  }
  void* get() const { return p_; }
  template <class T>
  T* as() const { return static_cast<T*>(p_); }
  size_t bytes() const { return bytes_; }

 private:
  Backend* b_ = nullptr;
  void* p_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace k2::engine
