// The CPU op table of the engine: matmul (OpenBLAS), RMSNorm, RoPE, SwiGLU, causal softmax attention,
// router top-k, MoE dispatch, cross-entropy, embedding and residual adds, forward and backward, the
// optimizer's elementwise AdamW/Muon updates, plus plain-loop references (namespace ref).
//
// All tensors are row-major, contiguous unless a stride is given. Functions never allocate except
// where noted; they are templated on float/double and explicitly instantiated for both in ops_cpu.cc.
// Backward functions ACCUMULATE into weight gradients and, where named `dx_acc`, into input gradients.
// A CUDA backend implements the same table (issue [engine-cuda]); tests run each op against ref::.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace k2::engine::ops {

using I = int64_t;

// C[M,N] = alpha * op(A) op(B) + beta * C, op = transpose when ta/tb. lda/ldb/ldc are row strides.
template <class T>
void Gemm(bool ta, bool tb, I M, I N, I K, T alpha, const T* A, I lda, const T* B, I ldb, T beta, T* C,
          I ldc);

// y[N,out] = x[N,in] W[out,in]^T (beta 0) or += (accumulate).
template <class T>
void Linear(const T* x, const T* W, T* y, I N, I in, I out, bool accumulate = false);
// dx[N,in] = (or +=, dx_acc) dy[N,out] W; dW[out,in] += dy^T x. dx may be null.
template <class T>
void LinearBackward(const T* x, const T* W, const T* dy, T* dx, T* dW, I N, I in, I out, bool dx_acc);

// y = x / rms(x) * w per row; rstd[N] saved for backward. x may not alias y.
template <class T>
void RmsNorm(const T* x, I ldx, const T* w, T* y, T* rstd, I N, I D, double eps);
// dx (+)= ..., dw += ... ; ldx/lddx are row strides of x and dx.
template <class T>
void RmsNormBackward(const T* x, I ldx, const T* w, const T* rstd, const T* dy, T* dx, I lddx, T* dw, I N,
                     I D, bool dx_acc);

// RoPE on vectors of dim d: vector (n, h) starts at x + n*row_stride + h*head_stride, position pos[n].
// Pair j is (2j, 2j+1) when interleave, else (j, j+d/2); it rotates by pos*inv_freq[j], and the result
// is multiplied by `attn_factor` (HF YaRN cos/sin factor). inverse=true applies the transpose
// (rotation by -angle), which is the backward of the forward for the same attn_factor.
template <class T>
void Rope(T* x, I N, I heads, I row_stride, I head_stride, const int32_t* pos, const double* inv_freq, I d,
          bool interleave, double attn_factor, bool inverse);

// a = silu(g) * u (elementwise over n).
template <class T>
void SwiGlu(const T* g, const T* u, T* a, I n);
// dg = da*u*silu'(g), du = da*silu(g) (overwrite).
template <class T>
void SwiGluBackward(const T* g, const T* u, const T* da, T* dg, T* du, I n);

// Causal attention of one (sequence, head): q,k [T,dq], v [T,dv], o [T,dv], p [T,T] (saved softmax,
// zeros above the diagonal). Returns the largest scaled logit (max over i>=j of scale*q_i·k_j).
template <class T>
double CausalAttention(const T* q, const T* k, const T* v, T* p, T* o, I Tn, I dq, I dv, double scale);
// Segment-masked form (packed rows): query i sees key j only when j <= i and seg[j] == seg[i]; seg [T]
// may be null (plain causal). Masked entries of p are 0, so CausalAttentionBackward needs no mask.
// The returned max is over visible logits only. When each segment id is one contiguous run (as
// sft::PackExamples lays documents) only the diagonal blocks are computed.
template <class T>
double CausalAttention(const T* q, const T* k, const T* v, T* p, T* o, I Tn, I dq, I dv, double scale,
                       const int32_t* seg);
// Backward: dq, dk, dv overwritten; ds is scratch [T,T]. With the forward's `seg` (contiguous runs) it
// works on the diagonal blocks only; the result is the same.
template <class T>
void CausalAttentionBackward(const T* q, const T* k, const T* v, const T* p, const T* dout, T* dq, T* dk,
                             T* dv, T* ds, I Tn, I dq_dim, I dv_dim, double scale);
template <class T>
void CausalAttentionBackward(const T* q, const T* k, const T* v, const T* p, const T* dout, T* dq, T* dk,
                             T* dv, T* ds, I Tn, I dq_dim, I dv_dim, double scale, const int32_t* seg);
// Shared-prefix form (RL: one prompt, several continuations in one row): par [T] (null = none) names
// for each query a parent segment whose keys it also sees, all of them: query i sees key j when j <= i
// and (seg[j] == seg[i] or seg[j] == par[i]). With the rules CheckSharedPrefix enforces (contiguous
// segments, one parent per segment, the parent wholly before its children and without a parent of its
// own) a row computes for each continuation exactly what it computes with its own copy of the prefix,
// and the backward sums the continuations' gradients into the prefix. p gains an [L, Lp] block left of
// each child's square; entries outside the visible set are 0.
template <class T>
double CausalAttention(const T* q, const T* k, const T* v, T* p, T* o, I Tn, I dq, I dv, double scale,
                       const int32_t* seg, const int32_t* par);
template <class T>
void CausalAttentionBackward(const T* q, const T* k, const T* v, const T* p, const T* dout, T* dq, T* dk,
                             T* dv, T* ds, I Tn, I dq_dim, I dv_dim, double scale, const int32_t* seg,
                             const int32_t* par);
// "" when seg/par [T] follow the shared-prefix rules above (par null: always), else what is wrong.
std::string CheckSharedPrefix(const int32_t* seg, const int32_t* par, I Tn);

// Group-limited top-k on biased scores sb [N,E] (HF noaux_tc): group score = sum of its top-2, keep
// topk_group groups (others masked to 0.0 as HF does), then the top `k` experts. idx [N,k] ascending by
// rank (best first); ties go to the lower index.
template <class T>
void RouterTopK(const T* sb, I N, I E, I n_group, I topk_group, I k, int32_t* idx);
// Allocation-free form for the step loop: work [E + n_group] and iwork [E + n_group] are scratch.
template <class T>
void RouterTopK(const T* sb, I N, I E, I n_group, I topk_group, I k, int32_t* idx, T* work, I* iwork);

// The DeepSeek-V3 router, the one implementation behind training, generation and the CPU backend:
// scores [N,E] = sigmoid(logits); the choice is RouterTopK on scores + bias[E] (written to sb [N,E],
// scratch); weights [N,k] = the chosen scores, divided by their sum + 1e-20 when norm_topk, times
// routed_scaling. work/iwork [E + n_group] are RouterTopK's scratch. No allocation.
template <class T, class B>
void Route(const T* logits, const B* bias, I N, I E, I n_group, I topk_group, I k, bool norm_topk,
           double routed_scaling, T* scores, T* sb, int32_t* idx, T* weights, T* work, I* iwork);

// MoE dispatch plan: slots i = n*K + k (token n's k-th expert idx[i]) grouped by expert, stable in i
// (counting sort): expert e owns rows [offs[e], offs[e+1]) and slot i lands in row_of_slot[i].
// load [E] receives the count of each expert (Ix = int64_t for the model, int32_t for backends).
template <class Ix>
void MoePlan(const int32_t* idx, I slots, I E, Ix* offs, Ix* row_of_slot, Ix* load);
// y[n] += sum_k w[n,k] ye[row_of_slot[n*K+k]] (w null means 1): the combine of the routed experts.
template <class T, class W, class Ix>
void MoeCombine(const T* ye, const Ix* row_of_slot, const W* w, I N, I K, I D, T* y);

// Weighted next-token cross-entropy over logits [N,V]; returns sum_t w_t * CE_t (the caller divides).
// dlogits (if not null) = scale * w_t * (softmax - onehot).
template <class T>
double CrossEntropy(const T* logits, const int32_t* targets, const float* weights, I N, I V, T* dlogits,
                    double dscale);
// Same, also writing (when not null) logp[n] = log softmax(logits_n)[targets[n]] (0 when the target is
// outside [0, V)) and entropy[n] = -sum_v p_v log p_v. Weights may be negative (signed RL losses).
template <class T>
double CrossEntropy(const T* logits, const int32_t* targets, const float* weights, I N, I V, T* dlogits,
                    double dscale, T* logp, T* entropy);

// ---- embedding, residual, optimizer updates (elementwise; one implementation for the model, the
// optimizer and CpuBackend) ----
// The first n with tokens[n] outside [0, V), or -1 when all are inside (callers check before the ops below,
// which index the table unchecked).
I FirstTokenOutside(const int32_t* tokens, I N, I V);
// y[n, :] = table[tokens[n], :] (D columns): a row copy, also instantiated for uint16_t (bf16 storage bits).
template <class T>
void EmbeddingGather(const T* table, const int32_t* tokens, I N, I D, T* y);
// dtable[tokens[n], :] += dy[n, :] for n = 0..N-1 in order (repeated tokens sum in token order).
template <class T>
void EmbeddingScatterAdd(const T* dy, const int32_t* tokens, I N, I D, T* dtable);
// y = a + b elementwise; y may alias a or b.
template <class T>
void Add(const T* a, const T* b, T* y, I n);

// AdamW hyper-parameters of one step: bias_correction{1,2} = 1 - beta{1,2}^(step+1).
template <class T>
struct AdamWParams {
  T lr, beta1, beta2, eps, weight_decay, grad_scale, bias_correction1, bias_correction2;
};
// AdamW on fp master weights: g' = grad_scale g; m = b1 m + (1-b1) g'; v = b2 v + (1-b2) g'^2;
// w -= lr (m/bc1 / (sqrt(v/bc2) + eps) + wd w). The expression order is part of the contract: the
// optimizer's bit-exact resume and golden checks depend on it.
template <class T>
void AdamWUpdate(T* w, const T* g, T* m, T* v, I n, const AdamWParams<T>& a);
// Muon's momentum: g' = grad_scale g; m = mu m + g'; u = nesterov ? g' + mu m : m. u may alias g, not m.
template <class T>
void MuonMomentum(const T* g, T* m, T* u, I n, T mu, T grad_scale, bool nesterov);
// Muon's update from the orthogonalized momentum o: w -= lr (o scale + weight_decay w).
template <class T>
void MuonApply(T* w, const T* o, I n, T lr, T scale, T weight_decay);

namespace ref {
// Obvious loop versions used by tests.
template <class T>
void Linear(const T* x, const T* W, T* y, I N, I in, I out);
template <class T>
double CausalAttention(const T* q, const T* k, const T* v, T* o, I Tn, I dq, I dv, double scale);
template <class T>
void RouterTopK(const T* sb, I N, I E, I n_group, I topk_group, I k, int32_t* idx);
}  // namespace ref

}  // namespace k2::engine::ops
