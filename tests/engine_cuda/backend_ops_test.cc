// The backend op test: every op of engine/backend.h x {fp32, bf16} x three shapes, on the CPU backend
// and (when a GPU is present) the CUDA backend, each against an fp64 reference on the same inputs.
//
// Inputs are fresh random values rounded to the storage dtype (never zeros), outputs are poisoned with
// NaN before the op, and tolerances follow the precision: S outputs are compared with rtol 1e-4 (fp32)
// or 2e-2 (bf16: one rounding of 2^-9 plus fp32 summation order), fp32 outputs (statistics, losses,
// gradients in fp32) with 1e-4 in both modes, integer outputs exactly. Each element must satisfy
// |got - ref| <= rtol (|ref| + rms(ref)). The CUDA cases skip, with the reason, without a GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>
#include <ostream>
#include <string>
#include <vector>

#include "core/rng.h"
#include "engine/backend.h"
#include "engine/cuda/device.h"
#include "engine/gen/kv_cache.h"
#include "engine/ops_cpu.h"

namespace k2::engine {
namespace {

using I = int64_t;
using Vec = std::vector<double>;
const double kNaN = std::numeric_limits<double>::quiet_NaN();

// Device buffers of one backend for one test; the first failing call is kept in `st`.
class Harness {
 public:
  explicit Harness(Backend* b) : b_(b) {}
  Status st;
  Backend* be() const { return b_; }
  DType dt() const { return b_->dtype(); }

  void* Alloc(size_t bytes) {
    if (!st.ok()) return nullptr;
    auto d = DeviceBuffer::Create(b_, bytes);
    if (!d.ok()) {
      st = d.status();
      return nullptr;
    }
    bufs_.push_back(std::move(*d));
    return bufs_.back().get();
  }
  void* S(const Vec& v) {
    void* p = Alloc(std::max<size_t>(v.size(), 1) * b_->elem_size());
    std::vector<float> f(v.begin(), v.end());
    if (st.ok()) st = b_->UploadFloats(p, f.data(), static_cast<I>(f.size()));
    return p;
  }
  void* PoisonS(I n) { return S(Vec(static_cast<size_t>(n), kNaN)); }
  float* F(const Vec& v) {
    std::vector<float> f(v.begin(), v.end());
    return static_cast<float*>(Raw(f.data(), f.size() * 4));
  }
  float* PoisonF(I n) { return F(Vec(static_cast<size_t>(n), kNaN)); }
  int32_t* I32(const std::vector<int32_t>& v) { return static_cast<int32_t*>(Raw(v.data(), v.size() * 4)); }
  int32_t* PoisonI32(I n) { return I32(std::vector<int32_t>(static_cast<size_t>(n), -7777)); }
  double* F64(const Vec& v) { return static_cast<double*>(Raw(v.data(), v.size() * 8)); }
  void* Raw(const void* host, size_t bytes) {
    void* p = Alloc(std::max<size_t>(bytes, 8));
    if (st.ok() && bytes) st = b_->Upload(p, host, bytes);
    return p;
  }
  Vec GetS(const void* p, I n) {
    std::vector<float> f(static_cast<size_t>(n));
    if (st.ok()) st = b_->DownloadFloats(f.data(), p, n);
    return Vec(f.begin(), f.end());
  }
  Vec GetF(const float* p, I n) {
    std::vector<float> f(static_cast<size_t>(n));
    if (st.ok()) st = b_->Download(f.data(), p, f.size() * 4);
    return Vec(f.begin(), f.end());
  }
  std::vector<int32_t> GetI(const int32_t* p, I n) {
    std::vector<int32_t> v(static_cast<size_t>(n));
    if (st.ok()) st = b_->Download(v.data(), p, v.size() * 4);
    return v;
  }

 private:
  Backend* b_;
  std::vector<DeviceBuffer> bufs_;
};

// Fresh inputs: uniform in +-scale away from zero (|v| >= scale/16), rounded to the storage dtype.
Vec Rand(Rng& r, I n, DType dt, double scale = 1.0) {
  Vec v(static_cast<size_t>(n));
  for (auto& x : v) {
    double u = r.Uniform(1.0 / 16, 1.0) * scale;
    x = RoundTo(dt, static_cast<float>(r.Bernoulli(0.5) ? u : -u));
  }
  return v;
}
Vec RandF(Rng& r, I n, double scale = 1.0) { return Rand(r, n, DType::kF32, scale); }

double Rtol(DType dt) { return dt == DType::kF32 ? 1e-4 : 2e-2; }
constexpr double kF32Tol = 1e-4;

void ExpectNear(const std::string& what, const Vec& got, const Vec& ref, double rtol) {
  ASSERT_EQ(got.size(), ref.size()) << what;
  double ss = 0;
  for (double r : ref) ss += r * r;
  const double rms = ref.empty() ? 0 : std::sqrt(ss / static_cast<double>(ref.size()));
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (!std::isfinite(ref[i])) {
      ADD_FAILURE() << what << ": reference not finite at " << i;
      return;
    }
    if (!std::isfinite(got[i]) || std::fabs(got[i] - ref[i]) > rtol * (std::fabs(ref[i]) + rms)) {
      if (bad++ == 0) first = i;
    }
  }
  EXPECT_EQ(bad, 0u) << what << ": " << bad << " of " << got.size() << " elements out of tolerance (rtol " << rtol
                     << ", rms " << rms << "); first at " << first << ": got " << got[first] << ", want " << ref[first];
}

// ---------------------------------------------------------------- fp64 references
void RefGemm(bool ta, bool tb, I M, I N, I K, double alpha, const Vec& A, I lda, const Vec& B, I ldb, double beta,
             Vec& C, I ldc) {
  for (I i = 0; i < M; ++i)
    for (I j = 0; j < N; ++j) {
      double s = 0;
      for (I k = 0; k < K; ++k) s += A[ta ? k * lda + i : i * lda + k] * B[tb ? j * ldb + k : k * ldb + j];
      C[i * ldc + j] = alpha * s + (beta == 0 ? 0.0 : beta * C[i * ldc + j]);
    }
}

struct Case {
  std::string kind, op;
  DType dt;
  int shape;
};

// Readable parameter in test listings (ctest names) instead of gtest's byte dump.
void PrintTo(const Case& c, std::ostream* os) {
  *os << c.kind << "/" << c.op << "/" << DTypeName(c.dt) << "/shape" << c.shape;
}

std::string CaseName(const testing::TestParamInfo<Case>& p) {
  return p.param.kind + "_" + p.param.op + "_" + DTypeName(p.param.dt) + "_s" + std::to_string(p.param.shape);
}

class BackendOps : public testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    const Case& c = GetParam();
    BackendOptions o;
    o.dtype = c.dt;
    auto b = MakeBackend(c.kind, o);
    if (!b.ok()) {
      if (c.kind == "cuda" && b.status().code() == Code::kUnavailable)
        GTEST_SKIP() << "CUDA backend not available here: " << b.status().message();
      FAIL() << b.status().ToString();
    }
    be_ = std::move(*b);
    // FNV-1a of the op name: the same inputs on every platform, for both backends and dtypes.
    uint64_t hsh = 1469598103934665603ull;
    for (char ch : c.op) hsh = (hsh ^ static_cast<uint8_t>(ch)) * 1099511628211ull;
    rng_ = Rng(hsh + static_cast<uint64_t>(c.shape));
  }
  std::unique_ptr<Backend> be_;
  Rng rng_;
};

#define OK(expr)                                          \
  do {                                                    \
    Status s_ = (expr);                                   \
    ASSERT_TRUE(s_.ok()) << #expr << ": " << s_.ToString(); \
  } while (0)

// ---------------------------------------------------------------- per-op bodies
void TestGemm(Harness& h, Rng& r, int shape, bool batched) {
  const DType dt = h.dt();
  struct S {
    I M, N, K;
    bool ta, tb;
    I pad;
    float alpha, beta;
  };
  const S cases[] = {{7, 13, 29, false, true, 0, 1.0f, 0.0f}, {33, 17, 65, true, false, 3, 0.7f, 0.3f},
                     {70, 45, 19, true, true, 1, -1.3f, 1.0f}};
  const S& c = cases[shape];
  const I batch = batched ? 3 : 1;
  const I lda = (c.ta ? c.M : c.K) + c.pad, ldb = (c.tb ? c.K : c.N) + c.pad, ldc = c.N + c.pad;
  const I na = (c.ta ? c.K : c.M) * lda, nb = (c.tb ? c.N : c.K) * ldb, nc = c.M * ldc;
  Vec A = Rand(r, na * batch, dt), B = Rand(r, nb * batch, dt);
  Vec C = c.beta == 0.0f ? Vec(static_cast<size_t>(nc * batch), kNaN) : Rand(r, nc * batch, dt);
  void* dA = h.S(A);
  void* dB = h.S(B);
  void* dC = h.S(C);
  OK(h.st);
  if (batched) {
    OK(h.be()->GemmStridedBatched(c.ta, c.tb, c.M, c.N, c.K, c.alpha, dA, lda, na, dB, ldb, nb, c.beta, dC, ldc, nc,
                                  batch));
  } else {
    OK(h.be()->Gemm(c.ta, c.tb, c.M, c.N, c.K, c.alpha, dA, lda, dB, ldb, c.beta, dC, ldc));
  }
  Vec got = h.GetS(dC, nc * batch);
  OK(h.st);
  Vec ref = C;
  for (I b = 0; b < batch; ++b) {
    Vec Ab(A.begin() + b * na, A.begin() + (b + 1) * na), Bb(B.begin() + b * nb, B.begin() + (b + 1) * nb),
        Cb(ref.begin() + b * nc, ref.begin() + (b + 1) * nc);
    RefGemm(c.ta, c.tb, c.M, c.N, c.K, c.alpha, Ab, lda, Bb, ldb, c.beta, Cb, ldc);
    std::copy(Cb.begin(), Cb.end(), ref.begin() + b * nc);
  }
  // Only the M x N window of each C is defined (padding columns keep their value, compared too when
  // beta != 0; with beta == 0 they stay NaN in both and are dropped here).
  Vec g2, r2;
  for (I b = 0; b < batch; ++b)
    for (I i = 0; i < c.M; ++i)
      for (I j = 0; j < c.N; ++j) {
        g2.push_back(got[static_cast<size_t>(b * nc + i * ldc + j)]);
        r2.push_back(ref[static_cast<size_t>(b * nc + i * ldc + j)]);
      }
  ExpectNear("C", g2, r2, Rtol(dt));
}

void TestLinear(Harness& h, Rng& r, int shape) {
  const DType dt = h.dt();
  const I Ns[] = {5, 37, 64}, ins[] = {11, 48, 130}, outs[] = {9, 31, 77};
  const I N = Ns[shape], in = ins[shape], out = outs[shape];
  const bool acc = shape == 1;
  Vec x = Rand(r, N * in, dt), W = Rand(r, out * in, dt), y0 = acc ? Rand(r, N * out, dt) : Vec(static_cast<size_t>(N * out), kNaN);
  void *dx = h.S(x), *dW = h.S(W), *dy = h.S(y0);
  OK(h.st);
  OK(h.be()->Linear(dx, dW, dy, N, in, out, acc));
  Vec ref = y0;
  RefGemm(false, true, N, out, in, 1.0, x, in, W, in, acc ? 1.0 : 0.0, ref, out);
  Vec got = h.GetS(dy, N * out);
  OK(h.st);
  ExpectNear("y", got, ref, Rtol(dt));
}

void TestLinearBackward(Harness& h, Rng& r, int shape) {
  const DType dt = h.dt();
  const I Ns[] = {6, 40, 63}, ins[] = {13, 32, 97}, outs[] = {7, 50, 33};
  const I N = Ns[shape], in = ins[shape], out = outs[shape];
  const bool acc = shape != 0;
  Vec x = Rand(r, N * in, dt), W = Rand(r, out * in, dt), dy = Rand(r, N * out, dt);
  Vec dx0 = acc ? Rand(r, N * in, dt) : Vec(static_cast<size_t>(N * in), kNaN), dW0 = RandF(r, out * in);
  void *px = h.S(x), *pW = h.S(W), *pdy = h.S(dy), *pdx = h.S(dx0);
  float* pdW = h.F(dW0);
  OK(h.st);
  OK(h.be()->LinearBackward(px, pW, pdy, pdx, pdW, N, in, out, acc));
  Vec rdx = dx0, rdW = dW0;
  RefGemm(false, false, N, in, out, 1.0, dy, out, W, in, acc ? 1.0 : 0.0, rdx, in);
  RefGemm(true, false, out, in, N, 1.0, dy, out, x, in, 1.0, rdW, in);
  Vec gdx = h.GetS(pdx, N * in), gdW = h.GetF(pdW, out * in);
  OK(h.st);
  ExpectNear("dx", gdx, rdx, Rtol(dt));
  ExpectNear("dW", gdW, rdW, kF32Tol);
}

void TestRmsNorm(Harness& h, Rng& r, int shape, bool backward) {
  const DType dt = h.dt();
  const I Ns[] = {3, 17, 64}, Ds[] = {8, 37, 200}, pads[] = {0, 5, 64};
  const I N = Ns[shape], D = Ds[shape], ld = D + pads[shape];
  const double eps = 1e-6;
  Vec x = Rand(r, N * ld, dt), w = Rand(r, D, dt, 2.0);
  Vec rstd(static_cast<size_t>(N));
  for (I n = 0; n < N; ++n) {
    double ss = 0;
    for (I d = 0; d < D; ++d) ss += x[n * ld + d] * x[n * ld + d];
    rstd[n] = 1.0 / std::sqrt(ss / D + eps);
  }
  void *px = h.S(x), *pw = h.S(w);
  if (!backward) {
    void* py = h.PoisonS(N * D);
    float* pr = h.PoisonF(N);
    OK(h.st);
    OK(h.be()->RmsNorm(px, ld, pw, py, pr, N, D, eps));
    Vec ref(static_cast<size_t>(N * D));
    for (I n = 0; n < N; ++n)
      for (I d = 0; d < D; ++d) ref[n * D + d] = x[n * ld + d] * rstd[n] * w[d];
    Vec gy = h.GetS(py, N * D), gr = h.GetF(pr, N);
    OK(h.st);
    ExpectNear("y", gy, ref, Rtol(dt));
    ExpectNear("rstd", gr, rstd, kF32Tol);
    return;
  }
  const bool acc = shape != 1;
  Vec rf(rstd.begin(), rstd.end());
  for (auto& v : rf) v = static_cast<float>(v);  // the op receives rstd in fp32
  Vec dy = Rand(r, N * D, dt), dx0 = Rand(r, N * ld, dt), dw0 = RandF(r, D);
  if (!acc)
    for (I n = 0; n < N; ++n)
      for (I d = 0; d < D; ++d) dx0[n * ld + d] = kNaN;
  float* pr = h.F(rf);
  void *pdy = h.S(dy), *pdx = h.S(dx0);
  float* pdw = h.F(dw0);
  OK(h.st);
  OK(h.be()->RmsNormBackward(px, ld, pw, pr, pdy, pdx, ld, pdw, N, D, acc));
  Vec rdx = dx0, rdw = dw0;
  for (I n = 0; n < N; ++n) {
    double dot = 0;
    const double rr = rf[n];
    for (I d = 0; d < D; ++d) dot += dy[n * D + d] * w[d] * x[n * ld + d];
    const double c = dot * rr * rr * rr / D;
    for (I d = 0; d < D; ++d) {
      const double v = rr * w[d] * dy[n * D + d] - x[n * ld + d] * c;
      rdx[n * ld + d] = acc ? rdx[n * ld + d] + v : v;
      rdw[d] += dy[n * D + d] * x[n * ld + d] * rr;
    }
  }
  Vec gdx = h.GetS(pdx, N * ld), gdw = h.GetF(pdw, D);
  OK(h.st);
  Vec g2, r2;  // the padding columns of dx keep their values
  for (I i = 0; i < N * ld; ++i)
    if (std::isfinite(rdx[i]) || std::isfinite(gdx[i])) g2.push_back(gdx[i]), r2.push_back(rdx[i]);
  ExpectNear("dx", g2, r2, Rtol(dt));
  ExpectNear("dw", gdw, rdw, kF32Tol);
}

void TestRope(Harness& h, Rng& r, int shape) {
  const DType dt = h.dt();
  // x [N, heads * hd] with the rotary slice [off, off + d) of each head.
  const I Ns[] = {4, 19, 33}, Hs[] = {1, 3, 8}, hds[] = {8, 24, 40}, ds[] = {8, 16, 10}, offs[] = {0, 8, 30};
  const I N = Ns[shape], H = Hs[shape], hd = hds[shape], d = ds[shape], off = offs[shape];
  const bool interleave = shape == 1, inverse = shape == 2;
  const double attn = shape == 1 ? 1.0 : 1.17;
  Vec x = Rand(r, N * H * hd, dt);
  std::vector<int32_t> pos(static_cast<size_t>(N));
  for (auto& p : pos) p = static_cast<int32_t>(r.Range(0, 4000));
  Vec inv(static_cast<size_t>(d / 2));
  for (I j = 0; j < d / 2; ++j) inv[j] = std::pow(10000.0, -2.0 * j / d) * (shape == 2 ? 0.25 : 1.0);
  void* px = h.S(x);
  int32_t* pp = h.I32(pos);
  double* pi = h.F64(inv);
  OK(h.st);
  OK(h.be()->Rope(static_cast<char*>(px) + off * h.be()->elem_size(), N, H, H * hd, hd, pp, pi, d, interleave, attn,
                  inverse));
  Vec ref = x;
  ops::Rope<double>(ref.data() + off, N, H, H * hd, hd, pos.data(), inv.data(), d, interleave, attn, inverse);
  Vec got = h.GetS(px, N * H * hd);
  OK(h.st);
  ExpectNear("x", got, ref, Rtol(dt));
}

void TestSwiGlu(Harness& h, Rng& r, int shape, bool backward) {
  const DType dt = h.dt();
  const I ns[] = {1, 999, 4097};
  const I n = ns[shape];
  Vec g = Rand(r, n, dt, 4.0), u = Rand(r, n, dt, 2.0);
  void *pg = h.S(g), *pu = h.S(u);
  if (!backward) {
    void* pa = h.PoisonS(n);
    OK(h.st);
    OK(h.be()->SwiGlu(pg, pu, pa, n));
    Vec ref(static_cast<size_t>(n));
    ops::SwiGlu<double>(g.data(), u.data(), ref.data(), n);
    Vec got = h.GetS(pa, n);
    OK(h.st);
    ExpectNear("a", got, ref, Rtol(dt));
    return;
  }
  Vec da = Rand(r, n, dt);
  void *pda = h.S(da), *pdg = h.PoisonS(n), *pdu = h.PoisonS(n);
  OK(h.st);
  OK(h.be()->SwiGluBackward(pg, pu, pda, pdg, pdu, n));
  Vec rdg(static_cast<size_t>(n)), rdu(static_cast<size_t>(n));
  ops::SwiGluBackward<double>(g.data(), u.data(), da.data(), rdg.data(), rdu.data(), n);
  Vec gdg = h.GetS(pdg, n), gdu = h.GetS(pdu, n);
  OK(h.st);
  ExpectNear("dg", gdg, rdg, Rtol(dt));
  ExpectNear("du", gdu, rdu, Rtol(dt));
}

struct AttnCase {
  AttnShape s;
  bool seg, par;
};
AttnCase AttnShapeOf(int shape) {
  AttnCase c;
  if (shape == 0) c.s = {1, 1, 5, 8, 8, 0.35}, c.seg = false, c.par = false;
  // T not a multiple of the 16-row tile; shared-prefix rows (segment parents).
  if (shape == 1) c.s = {2, 3, 37, 24, 16, 0.2}, c.seg = true, c.par = true;
  // MLA's own head dims (dq 192 = 128 + 64, dv 128): the GPU backward needs > 48 KB of shared memory.
  if (shape == 2) c.s = {1, 2, 70, 192, 128, 0.0722}, c.seg = true, c.par = false;
  return c;
}

std::vector<int32_t> Segments(Rng& r, I B, I T) {
  // Packed rows: segments of random lengths 1..24 (ids increase along the row).
  std::vector<int32_t> seg(static_cast<size_t>(B * T));
  for (I b = 0; b < B; ++b) {
    int32_t id = 0;
    I left = r.Range(1, 24);
    for (I t = 0; t < T; ++t) {
      if (left-- == 0) ++id, left = r.Range(1, 24) - 1;
      seg[b * T + t] = id;
    }
  }
  return seg;
}

// Shared-prefix rows (RL: one prompt, several continuations): [a plain document on odd rows] [prompt]
// [continuation] [continuation] [the rest as a plain document], the continuations' parent being the
// prompt. Lengths are random, so prompts and continuations straddle the 16-row tiles differently per row.
void ParentSegments(Rng& r, I B, I T, std::vector<int32_t>* seg, std::vector<int32_t>* par) {
  seg->assign(static_cast<size_t>(B * T), 0);
  par->assign(static_cast<size_t>(B * T), -1);
  for (I b = 0; b < B; ++b) {
    int32_t id = 0;
    I t = 0;
    auto put = [&](I len, int32_t parent) {
      for (I i = 0; i < len && t < T; ++i, ++t) (*seg)[b * T + t] = id, (*par)[b * T + t] = parent;
      ++id;
    };
    if (b % 2 == 1) put(r.Range(2, 6), -1);
    const int32_t prompt = id;
    put(r.Range(4, 14), -1);
    put(r.Range(3, 10), prompt);
    put(r.Range(3, 10), prompt);
    if (t < T) put(T - t, -1);
  }
}

void TestAttention(Harness& h, Rng& r, int shape, bool backward) {
  const DType dt = h.dt();
  const AttnCase ac = AttnShapeOf(shape);
  const AttnShape& s = ac.s;
  const I BH = s.B * s.H, T = s.T;
  Vec q = Rand(r, BH * T * s.dq, dt, 1.5), k = Rand(r, BH * T * s.dq, dt, 1.5), v = Rand(r, BH * T * s.dv, dt);
  std::vector<int32_t> seg, par;
  if (ac.par) {
    ParentSegments(r, s.B, T, &seg, &par);
    for (I b = 0; b < s.B; ++b) ASSERT_EQ(ops::CheckSharedPrefix(&seg[b * T], &par[b * T], T), "") << "row " << b;
  } else if (ac.seg) {
    seg = Segments(r, s.B, T);
  }
  void *pq = h.S(q), *pk = h.S(k), *pv = h.S(v), *po = h.PoisonS(BH * T * s.dv);
  int32_t* ps = ac.seg ? h.I32(seg) : nullptr;
  int32_t* pp = ac.par ? h.I32(par) : nullptr;
  float *pl = h.PoisonF(BH * T), *pm = h.PoisonF(s.H);
  OK(h.st);
  OK(h.be()->AttentionForward(s, pq, pk, pv, ps, pp, po, pl, pm));
  // fp64 reference per (row, head), written from the visibility rule itself: key j is visible to query i
  // when j <= i and (no segments, the same segment, or the query's parent segment). P [B, H, T, T] kept
  // for the backward.
  Vec ro(static_cast<size_t>(BH * T * s.dv)), rl(static_cast<size_t>(BH * T)), rm(static_cast<size_t>(s.H), -1e300);
  Vec P(static_cast<size_t>(BH * T * T), 0.0);
  for (I b = 0; b < s.B; ++b)
    for (I hh = 0; hh < s.H; ++hh) {
      const I bh = b * s.H + hh;
      const int32_t* sg = ac.seg ? &seg[b * T] : nullptr;
      const int32_t* pr = ac.par ? &par[b * T] : nullptr;
      auto visible = [&](I i, I j) { return !sg || sg[j] == sg[i] || (pr && pr[i] >= 0 && sg[j] == pr[i]); };
      for (I i = 0; i < T; ++i) {
        double* prow = &P[(bh * T + i) * T];
        double mx = -1e300, z = 0;
        for (I j = 0; j <= i; ++j) {
          if (!visible(i, j)) continue;
          double d = 0;
          for (I c = 0; c < s.dq; ++c) d += q[(bh * T + i) * s.dq + c] * k[(bh * T + j) * s.dq + c];
          prow[j] = d * s.scale;
          mx = std::max(mx, prow[j]);
        }
        for (I j = 0; j <= i; ++j)
          if (visible(i, j)) z += std::exp(prow[j] - mx);
        for (I j = 0; j <= i; ++j) prow[j] = visible(i, j) ? std::exp(prow[j] - mx) / z : 0.0;
        for (I c = 0; c < s.dv; ++c) {
          double a = 0;
          for (I j = 0; j <= i; ++j) a += prow[j] * v[(bh * T + j) * s.dv + c];
          ro[(bh * T + i) * s.dv + c] = a;
        }
        rl[bh * T + i] = mx + std::log(z);
        rm[hh] = std::max(rm[hh], mx);
      }
    }
  if (!backward) {
    Vec go = h.GetS(po, BH * T * s.dv), gl = h.GetF(pl, BH * T), gm = h.GetF(pm, s.H);
    OK(h.st);
    ExpectNear("o", go, ro, Rtol(dt));
    ExpectNear("lse", gl, rl, kF32Tol);
    ExpectNear("max_logit", gm, rm, kF32Tol);
    return;
  }
  Vec dout = Rand(r, BH * T * s.dv, dt);
  void *pdo = h.S(dout), *pdq = h.PoisonS(BH * T * s.dq), *pdk = h.PoisonS(BH * T * s.dq), *pdv = h.PoisonS(BH * T * s.dv);
  OK(h.st);
  OK(h.be()->AttentionBackward(s, pq, pk, pv, ps, pp, po, pl, pdo, pdq, pdk, pdv));
  // The unmasked full-square backward over the reference P (zero where not visible) is the softmax
  // backward of any visibility pattern.
  Vec rdq(static_cast<size_t>(BH * T * s.dq)), rdk(rdq.size()), rdv(static_cast<size_t>(BH * T * s.dv)),
      ds(static_cast<size_t>(T * T));
  for (I bh = 0; bh < BH; ++bh)
    ops::CausalAttentionBackward<double>(&q[bh * T * s.dq], &k[bh * T * s.dq], &v[bh * T * s.dv], &P[bh * T * T],
                                         &dout[bh * T * s.dv], &rdq[bh * T * s.dq], &rdk[bh * T * s.dq],
                                         &rdv[bh * T * s.dv], ds.data(), T, s.dq, s.dv, s.scale);
  Vec gdq = h.GetS(pdq, BH * T * s.dq), gdk = h.GetS(pdk, BH * T * s.dq), gdv = h.GetS(pdv, BH * T * s.dv);
  OK(h.st);
  // bf16: the GPU kernel's row term D = dout·o uses the bf16-rounded o; allow 1.5x the forward tolerance.
  const double tol = dt == DType::kF32 ? Rtol(dt) : 1.5 * Rtol(dt);
  ExpectNear("dq", gdq, rdq, tol);
  ExpectNear("dk", gdk, rdk, tol);
  ExpectNear("dv", gdv, rdv, tol);
}

void TestMlaDecode(Harness& h, Rng& r, int shape) {
  const DType dt = h.dt();
  MlaDecodeShape s;
  const I seqs[] = {1, 3, 5}, rowsq[] = {1, 4, 9}, Hs[] = {1, 4, 3}, rkvs[] = {16, 33, 64}, drs[] = {8, 6, 16},
          pss[] = {16, 5, 8}, layers[] = {1, 2, 3};
  const I nseq = seqs[shape];
  s.rows = rowsq[shape], s.H = Hs[shape], s.rkv = rkvs[shape], s.dr = drs[shape], s.page_size = pss[shape];
  s.num_layers = layers[shape], s.layer = s.num_layers - 1, s.max_pages = 40;
  s.q_pe_row_stride = s.H * (s.dr + 3), s.q_pe_head_stride = s.dr + 3;  // q_pe inside a wider q row
  s.scale = 0.11;
  const I W = s.rkv + s.dr, num_pages = nseq * s.max_pages;
  Vec pages = Rand(r, num_pages * s.num_layers * s.page_size * W, dt);
  // Each sequence's page list is a random selection of distinct pages (a shuffled pool).
  std::vector<int32_t> perm(static_cast<size_t>(num_pages));
  std::iota(perm.begin(), perm.end(), 0);
  for (I i = num_pages - 1; i > 0; --i) std::swap(perm[i], perm[r.Below(static_cast<uint64_t>(i + 1))]);
  std::vector<int32_t> table(perm.begin(), perm.end()), row_seq(static_cast<size_t>(s.rows)), row_pos(row_seq.size());
  for (I i = 0; i < s.rows; ++i) {
    row_seq[i] = static_cast<int32_t>(r.Below(static_cast<uint64_t>(nseq)));
    const I cap = s.max_pages * s.page_size - 1;  // row 0 sits at the cap, the others anywhere below
    row_pos[i] = static_cast<int32_t>(i == 0 ? cap : r.Range(0, std::min<I>(cap, 300)));
  }
  Vec ql = Rand(r, s.rows * s.H * s.rkv, dt), qp = Rand(r, s.rows * s.q_pe_row_stride, dt);
  void *pql = h.S(ql), *pqp = h.S(qp), *ppg = h.S(pages), *po = h.PoisonS(s.rows * s.H * s.rkv);
  int32_t *pt = h.I32(table), *prs = h.I32(row_seq), *prp = h.I32(row_pos);
  OK(h.st);
  OK(h.be()->MlaDecodeAttention(s, pql, pqp, ppg, pt, prs, prp, po));
  Vec ref(static_cast<size_t>(s.rows * s.H * s.rkv));
  for (I i = 0; i < s.rows; ++i)
    for (I hh = 0; hh < s.H; ++hh) {
      const I nk = row_pos[i] + 1;
      Vec sc(static_cast<size_t>(nk));
      double mx = -1e300;
      auto key = [&](I j) {
        const I page = table[row_seq[i] * s.max_pages + j / s.page_size];
        return ((page * s.num_layers + s.layer) * s.page_size + j % s.page_size) * W;
      };
      for (I j = 0; j < nk; ++j) {
        double d = 0;
        for (I c = 0; c < s.rkv; ++c) d += ql[(i * s.H + hh) * s.rkv + c] * pages[key(j) + c];
        for (I c = 0; c < s.dr; ++c) d += qp[i * s.q_pe_row_stride + hh * s.q_pe_head_stride + c] * pages[key(j) + s.rkv + c];
        sc[j] = d * s.scale;
        mx = std::max(mx, sc[j]);
      }
      double z = 0;
      for (I j = 0; j < nk; ++j) z += std::exp(sc[j] - mx);
      for (I c = 0; c < s.rkv; ++c) {
        double a = 0;
        for (I j = 0; j < nk; ++j) a += std::exp(sc[j] - mx) / z * pages[key(j) + c];
        ref[(i * s.H + hh) * s.rkv + c] = a;
      }
    }
  Vec got = h.GetS(po, s.rows * s.H * s.rkv);
  OK(h.st);
  ExpectNear("o_lat", got, ref, Rtol(dt));
}

void TestRouter(Harness& h, Rng& r, int shape) {
  const DType dt = h.dt();
  const I Ns[] = {3, 29, 130}, Es[] = {8, 16, 64}, groups[] = {1, 4, 8}, tg[] = {1, 2, 3}, ks[] = {2, 3, 8};
  const I N = Ns[shape], E = Es[shape], G = groups[shape], TG = tg[shape], K = ks[shape];
  const bool norm = shape != 0;
  const double scaling = shape == 2 ? 2.5 : 1.0;
  // Distinct logits per token (a shuffled grid) and a small bias. A decision whose margin is below 1e-4
  // (the topk_group-th vs the next group score; the masked values in rank order down to the first one
  // left out) could flip on one ulp of expf, so such a token is drawn again: the exact choice is then
  // comparable across backends.
  Vec logits(static_cast<size_t>(N * E)), bias(static_cast<size_t>(E));
  for (auto& b : bias) b = static_cast<float>(r.Uniform(-0.05, 0.05));
  auto sigmoid = [](double x) { return 1.0 / (1.0 + std::exp(-x)); };
  auto margin = [&](const double* lg) {
    Vec row(static_cast<size_t>(E)), gs;
    for (I e = 0; e < E; ++e) row[e] = sigmoid(lg[e]) + static_cast<float>(bias[e]);
    for (I g = 0; g < G; ++g) {  // group scores: top-2 sums
      Vec part(row.begin() + g * (E / G), row.begin() + (g + 1) * (E / G));
      std::sort(part.rbegin(), part.rend());
      gs.push_back(part[0] + part[1]);
    }
    Vec sorted_gs = gs;
    std::sort(sorted_gs.rbegin(), sorted_gs.rend());
    double m = 1e300;
    if (TG < G) m = std::min(m, sorted_gs[TG - 1] - sorted_gs[TG]);
    Vec masked(static_cast<size_t>(E));
    for (I e = 0; e < E; ++e) masked[e] = gs[e / (E / G)] >= sorted_gs[TG - 1] ? row[e] : 0.0;
    std::sort(masked.rbegin(), masked.rend());
    for (I j = 1; j <= K && j < E; ++j) m = std::min(m, masked[j - 1] - masked[j]);
    return m;
  };
  double min_margin = 1e300;
  for (I n = 0; n < N; ++n) {
    double* lg = &logits[n * E];
    for (int attempt = 0; attempt < 1000; ++attempt) {
      std::vector<I> perm(static_cast<size_t>(E));
      std::iota(perm.begin(), perm.end(), 0);
      for (I i = E - 1; i > 0; --i) std::swap(perm[i], perm[r.Below(static_cast<uint64_t>(i + 1))]);
      for (I e = 0; e < E; ++e) lg[e] = RoundTo(dt, static_cast<float>(-3.0 + 6.0 * (perm[e] + 0.5) / E));
      if (margin(lg) > 1e-4) break;
    }
    min_margin = std::min(min_margin, margin(lg));
  }
  void* pl = h.S(logits);
  float *pb = h.F(bias), *pw = h.PoisonF(N * K), *ps = h.PoisonF(N * E);
  int32_t* pi = h.PoisonI32(N * K);
  OK(h.st);
  OK(h.be()->RouterTopK(pl, pb, N, E, G, TG, K, norm, scaling, pi, pw, ps));
  // fp64 reference through ops::ref::RouterTopK (HF's literal transcription) on the biased scores.
  Vec sc(static_cast<size_t>(N * E)), sb(sc.size());
  for (I i = 0; i < N * E; ++i) {
    sc[i] = sigmoid(logits[i]);
    sb[i] = sc[i] + static_cast<float>(bias[i % E]);
  }
  std::vector<int32_t> ridx(static_cast<size_t>(N * K));
  ops::ref::RouterTopK<double>(sb.data(), N, E, G, TG, K, ridx.data());
  Vec rw(static_cast<size_t>(N * K));
  for (I n = 0; n < N; ++n) {
    double sum = 0;
    for (I j = 0; j < K; ++j) sum += sc[n * E + ridx[n * K + j]];
    for (I j = 0; j < K; ++j) rw[n * K + j] = sc[n * E + ridx[n * K + j]] / (norm ? sum + 1e-20 : 1.0) * scaling;
  }
  ASSERT_GT(min_margin, 1e-4) << "test data has near-ties; choose other logits";
  Vec gw = h.GetF(pw, N * K), gs = h.GetF(ps, N * E);
  std::vector<int32_t> gi = h.GetI(pi, N * K);
  OK(h.st);
  EXPECT_EQ(gi, ridx);
  ExpectNear("weights", gw, rw, kF32Tol);
  ExpectNear("scores", gs, sc, kF32Tol);
}

void TestCrossEntropy(Harness& h, Rng& r, int shape) {
  const DType dt = h.dt();
  const I Ns[] = {1, 9, 40}, Vs[] = {7, 301, 2053};
  const I N = Ns[shape], V = Vs[shape];
  const bool in_place = shape == 2;
  const double dscale = 0.37;
  Vec x = Rand(r, N * V, dt, 4.0), w(static_cast<size_t>(N));
  std::vector<int32_t> t(static_cast<size_t>(N));
  for (I n = 0; n < N; ++n) {
    t[n] = static_cast<int32_t>(r.Below(static_cast<uint64_t>(V)));
    w[n] = static_cast<float>(r.Uniform(-1.0, 2.0));  // signed weights (RL losses)
    if (n % 4 == 3) w[n] = 0;
    if (n % 8 == 7) t[n] = -1;  // ignored target, weight 0
  }
  void* pl = h.S(x);
  int32_t* pt = h.I32(t);
  float *pw = h.F(w), *ploss = h.PoisonF(N), *plp = h.PoisonF(N), *pe = h.PoisonF(N);
  void* pd = in_place ? pl : h.PoisonS(N * V);
  OK(h.st);
  OK(h.be()->CrossEntropy(pl, pt, pw, N, V, pd, dscale, ploss, plp, pe));
  Vec rd(static_cast<size_t>(N * V)), rloss(static_cast<size_t>(N)), rlp(rloss.size()), re(rloss.size());
  for (I n = 0; n < N; ++n) {
    float wf = static_cast<float>(w[n]);
    rloss[n] = ops::CrossEntropy<double>(&x[n * V], &t[n], &wf, 1, V, &rd[n * V], dscale, &rlp[n], &re[n]);
  }
  Vec gd = h.GetS(pd, N * V), gl = h.GetF(ploss, N), glp = h.GetF(plp, N), ge = h.GetF(pe, N);
  OK(h.st);
  ExpectNear("dlogits", gd, rd, Rtol(dt));
  ExpectNear("loss", gl, rloss, kF32Tol);
  ExpectNear("logp", glp, rlp, kF32Tol);
  ExpectNear("entropy", ge, re, kF32Tol);
}

struct MoeData {
  I N, K, E, D;
  std::vector<int32_t> idx, row_of_slot, offsets;
};
MoeData MakeMoe(Rng& r, int shape) {
  const I Ns[] = {1, 23, 97}, Ks[] = {1, 2, 6}, Es[] = {3, 8, 32}, Ds[] = {5, 24, 72};
  MoeData m{Ns[shape], Ks[shape], Es[shape], Ds[shape], {}, {}, {}};
  for (I n = 0; n < m.N; ++n) {
    std::vector<int32_t> all(static_cast<size_t>(m.E));
    std::iota(all.begin(), all.end(), 0);
    for (I i = m.E - 1; i > 0; --i) std::swap(all[i], all[r.Below(static_cast<uint64_t>(i + 1))]);
    for (I k = 0; k < m.K; ++k) m.idx.push_back(all[k]);  // distinct experts per token; some experts empty
  }
  std::vector<int32_t> cnt(static_cast<size_t>(m.E), 0);
  for (int32_t e : m.idx) cnt[e]++;
  m.offsets.assign(static_cast<size_t>(m.E + 1), 0);
  for (I e = 0; e < m.E; ++e) m.offsets[e + 1] = m.offsets[e] + cnt[e];
  std::vector<int32_t> fill(m.offsets.begin(), m.offsets.end() - 1);
  for (int32_t e : m.idx) m.row_of_slot.push_back(fill[e]++);
  return m;
}

void TestMoePermute(Harness& h, Rng& r, int shape) {
  const DType dt = h.dt();
  MoeData m = MakeMoe(r, shape);
  Vec x = Rand(r, m.N * m.D, dt);
  void *px = h.S(x), *pxe = h.PoisonS(m.N * m.K * m.D);
  int32_t *pi = h.I32(m.idx), *prs = h.PoisonI32(m.N * m.K), *po = h.PoisonI32(m.E + 1);
  OK(h.st);
  OK(h.be()->MoePermute(px, m.N, m.D, pi, m.K, m.E, pxe, prs, po));
  Vec rxe(static_cast<size_t>(m.N * m.K * m.D));
  for (I i = 0; i < m.N * m.K; ++i)
    for (I d = 0; d < m.D; ++d) rxe[m.row_of_slot[i] * m.D + d] = x[(i / m.K) * m.D + d];
  Vec gxe = h.GetS(pxe, m.N * m.K * m.D);
  std::vector<int32_t> grs = h.GetI(prs, m.N * m.K), go = h.GetI(po, m.E + 1);
  OK(h.st);
  EXPECT_EQ(go, m.offsets);
  EXPECT_EQ(grs, m.row_of_slot);
  ExpectNear("xe", gxe, rxe, 0.0);  // a copy: exact
}

void TestMoeUnpermute(Harness& h, Rng& r, int shape, bool backward) {
  const DType dt = h.dt();
  MoeData m = MakeMoe(r, shape);
  const I S = m.N * m.K;
  Vec ye = Rand(r, S * m.D, dt), w = RandF(r, S);
  const bool unit = shape == 1;  // w null: the backward of MoePermute
  void* pye = h.S(ye);
  int32_t* prs = h.I32(m.row_of_slot);
  float* pw = unit ? nullptr : h.F(w);
  auto wk = [&](I i) { return unit ? 1.0 : w[i]; };
  if (!backward) {
    const bool acc = shape == 2;
    Vec y0 = acc ? Rand(r, m.N * m.D, dt) : Vec(static_cast<size_t>(m.N * m.D), kNaN);
    void* py = h.S(y0);
    OK(h.st);
    OK(h.be()->MoeUnpermute(pye, prs, pw, m.N, m.K, m.D, py, acc));
    Vec ref(static_cast<size_t>(m.N * m.D));
    for (I n = 0; n < m.N; ++n)
      for (I d = 0; d < m.D; ++d) {
        double a = acc ? y0[n * m.D + d] : 0.0;
        for (I k = 0; k < m.K; ++k) a += wk(n * m.K + k) * ye[m.row_of_slot[n * m.K + k] * m.D + d];
        ref[n * m.D + d] = a;
      }
    Vec got = h.GetS(py, m.N * m.D);
    OK(h.st);
    ExpectNear("y", got, ref, Rtol(dt));
    return;
  }
  Vec dy = Rand(r, m.N * m.D, dt);
  void *pdy = h.S(dy), *pdye = h.PoisonS(S * m.D);
  float* pdw = h.PoisonF(S);
  OK(h.st);
  OK(h.be()->MoeUnpermuteBackward(pdy, pye, prs, pw, m.N, m.K, m.D, pdye, pdw));
  Vec rdye(static_cast<size_t>(S * m.D)), rdw(static_cast<size_t>(S));
  for (I i = 0; i < S; ++i) {
    const I n = i / m.K, row = m.row_of_slot[i];
    double dot = 0;
    for (I d = 0; d < m.D; ++d) {
      rdye[row * m.D + d] = wk(i) * dy[n * m.D + d];
      dot += dy[n * m.D + d] * ye[row * m.D + d];
    }
    rdw[i] = dot;
  }
  Vec gdye = h.GetS(pdye, S * m.D), gdw = h.GetF(pdw, S);
  OK(h.st);
  ExpectNear("dye", gdye, rdye, Rtol(dt));
  ExpectNear("dw", gdw, rdw, kF32Tol);
}

void TestGroupedLinear(Harness& h, Rng& r, int shape, bool backward) {
  const DType dt = h.dt();
  MoeData m = MakeMoe(r, shape);
  const I R = m.N * m.K, ins[] = {6, 40, 72}, outs[] = {5, 17, 96};
  const I in = ins[shape], out = outs[shape];
  Vec x = Rand(r, R * in, dt), W = Rand(r, m.E * out * in, dt);
  void *px = h.S(x), *pW = h.S(W);
  const int32_t* off = m.offsets.data();
  if (!backward) {
    void* py = h.PoisonS(R * out);
    OK(h.st);
    OK(h.be()->GroupedLinear(px, pW, py, off, m.E, in, out));
    Vec ref(static_cast<size_t>(R * out));
    for (I e = 0; e < m.E; ++e)
      for (I row = off[e]; row < off[e + 1]; ++row)
        for (I o = 0; o < out; ++o) {
          double a = 0;
          for (I i = 0; i < in; ++i) a += x[row * in + i] * W[(e * out + o) * in + i];
          ref[row * out + o] = a;
        }
    Vec got = h.GetS(py, R * out);
    OK(h.st);
    ExpectNear("y", got, ref, Rtol(dt));
    return;
  }
  Vec dy = Rand(r, R * out, dt), dW0 = RandF(r, m.E * out * in);
  void *pdy = h.S(dy), *pdx = h.PoisonS(R * in);
  float* pdW = h.F(dW0);
  OK(h.st);
  OK(h.be()->GroupedLinearBackward(px, pW, pdy, pdx, pdW, off, m.E, in, out));
  Vec rdx(static_cast<size_t>(R * in)), rdW = dW0;
  for (I e = 0; e < m.E; ++e)
    for (I row = off[e]; row < off[e + 1]; ++row)
      for (I i = 0; i < in; ++i) {
        double a = 0;
        for (I o = 0; o < out; ++o) {
          a += dy[row * out + o] * W[(e * out + o) * in + i];
          rdW[(e * out + o) * in + i] += dy[row * out + o] * x[row * in + i];
        }
        rdx[row * in + i] = a;
      }
  Vec gdx = h.GetS(pdx, R * in), gdW = h.GetF(pdW, m.E * out * in);
  OK(h.st);
  ExpectNear("dx", gdx, rdx, Rtol(dt));
  ExpectNear("dW", gdW, rdW, kF32Tol);
}

void TestNewtonSchulz(Harness& h, Rng& r, int shape) {
  const DType dt = h.dt();
  const I rowsv[] = {8, 48, 17}, colsv[] = {8, 20, 64}, stepsv[] = {1, 5, 5};
  const I rows = rowsv[shape], cols = colsv[shape], steps = stepsv[shape];
  Vec G = RandF(r, rows * cols);
  float *pg = h.F(G), *po = h.PoisonF(rows * cols);
  OK(h.st);
  OK(h.be()->NewtonSchulz(pg, rows, cols, steps, po));
  // fp64 transcription of engine/optimizer.cc's NsInto (kept local so this test builds with the backend
  // sources alone, see bench/engine_cuda/gpu/CMakeLists.txt).
  const bool tr = rows > cols;
  const I rr = tr ? cols : rows, cc = tr ? rows : cols;
  double nrm = 0;
  for (double g : G) nrm += g * g;
  Vec X(static_cast<size_t>(rr * cc)), A(static_cast<size_t>(rr * rr)), B(A.size()), Y;
  for (I i = 0; i < rows; ++i)
    for (I j = 0; j < cols; ++j) (tr ? X[j * rows + i] : X[i * cols + j]) = G[i * cols + j] / (std::sqrt(nrm) + 1e-7);
  for (I st = 0; st < steps; ++st) {
    RefGemm(false, true, rr, rr, cc, 1.0, X, cc, X, cc, 0.0, A, rr);         // A = X X^T
    RefGemm(false, false, rr, rr, rr, 2.0315, A, rr, A, rr, 0.0, B, rr);     // B = c A A
    for (size_t i = 0; i < A.size(); ++i) B[i] += -4.7750 * A[i];            //   + b A
    Y = X;
    RefGemm(false, false, rr, cc, rr, 1.0, B, rr, Y, cc, 3.4445, X, cc);     // X = a X + B X
  }
  Vec ref(static_cast<size_t>(rows * cols));
  for (I i = 0; i < rows; ++i)
    for (I j = 0; j < cols; ++j) ref[i * cols + j] = tr ? X[j * rows + i] : X[i * cols + j];
  Vec got = h.GetF(po, rows * cols);
  OK(h.st);
  // Five quintic iterations amplify the rounding of the small singular directions; in bf16 every GEMM
  // output is rounded, so compare the whole matrix in the Frobenius norm there (NaN fails too).
  if (dt == DType::kF32) {
    ExpectNear("out", got, ref, 1e-3);
    return;
  }
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) num += (got[i] - ref[i]) * (got[i] - ref[i]), den += ref[i] * ref[i];
  const double rel = std::sqrt(num / den);
  EXPECT_TRUE(std::isfinite(rel) && rel < 0.05) << "relative Frobenius error " << rel;
}

void TestEmbedding(Harness& h, Rng& r, int shape, bool backward) {
  const DType dt = h.dt();
  const I Vs[] = {5, 50, 300}, Ds[] = {3, 24, 129}, Ns[] = {1, 40, 257};
  const I V = Vs[shape], D = Ds[shape], N = Ns[shape];
  std::vector<int32_t> tok(static_cast<size_t>(N));
  for (auto& t : tok) t = static_cast<int32_t>(r.Below(static_cast<uint64_t>(V)));
  if (N > 8) tok[3] = tok[5] = tok[7] = tok[0];  // repeated tokens (the backward sums them)
  int32_t* pt = h.I32(tok);
  if (!backward) {
    Vec table = Rand(r, V * D, dt);
    void *ptab = h.S(table), *py = h.PoisonS(N * D);
    OK(h.st);
    OK(h.be()->EmbeddingGather(ptab, V, pt, N, D, py));
    Vec ref(static_cast<size_t>(N * D));
    for (I n = 0; n < N; ++n)
      for (I d = 0; d < D; ++d) ref[n * D + d] = table[tok[n] * D + d];
    Vec got = h.GetS(py, N * D);
    OK(h.st);
    ExpectNear("y", got, ref, 0.0);  // a copy: exact
    return;
  }
  Vec dy = Rand(r, N * D, dt), dt0 = RandF(r, V * D);
  void* pdy = h.S(dy);
  float* pdt = h.F(dt0);
  OK(h.st);
  OK(h.be()->EmbeddingScatterAdd(pdy, pt, N, D, V, pdt));
  Vec ref = dt0;
  for (I n = 0; n < N; ++n)
    for (I d = 0; d < D; ++d) ref[tok[n] * D + d] += dy[n * D + d];
  Vec got = h.GetF(pdt, V * D);
  OK(h.st);
  ExpectNear("dtable", got, ref, kF32Tol);
}

void TestAdd(Harness& h, Rng& r, int shape) {
  const DType dt = h.dt();
  const I ns[] = {1, 1000, 4097};
  const I n = ns[shape];
  Vec a = Rand(r, n, dt), b = Rand(r, n, dt, 3.0);
  void *pa = h.S(a), *pb = h.S(b);
  void* py = shape == 0 ? h.PoisonS(n) : shape == 1 ? pa : pb;  // in place into a, then into b
  OK(h.st);
  OK(h.be()->Add(pa, pb, py, n));
  Vec ref(static_cast<size_t>(n));
  for (I i = 0; i < n; ++i) ref[i] = a[i] + b[i];
  Vec got = h.GetS(py, n);
  OK(h.st);
  ExpectNear("y", got, ref, Rtol(dt));
}

// The S copy of updated weights: exactly the fp32 master rounded to the storage dtype.
void ExpectStorageCopy(Harness& h, const void* pws, const Vec& w_got, I n) {
  Vec ws = h.GetS(pws, n), want(static_cast<size_t>(n));
  for (I i = 0; i < n; ++i) want[i] = RoundTo(h.dt(), static_cast<float>(w_got[i]));
  ASSERT_TRUE(h.st.ok()) << h.st.ToString();
  ExpectNear("w_s", ws, want, 0.0);
}

void TestAdamW(Harness& h, Rng& r, int shape) {
  const I ns[] = {1, 1000, 4097};
  const I n = ns[shape];
  AdamWArgs a;
  const float lrs[] = {0.01f, 0.05f, 0.3f}, wds[] = {0.0f, 0.1f, 0.01f}, gss[] = {1.0f, 0.37f, 0.8f};
  const int steps[] = {0, 4, 99};
  a.lr = lrs[shape], a.weight_decay = wds[shape], a.grad_scale = gss[shape];
  a.beta1 = 0.9f, a.beta2 = shape == 2 ? 0.95f : 0.999f, a.eps = shape == 1 ? 1e-6f : 1e-8f;
  a.bias_correction1 = static_cast<float>(1.0 - std::pow(a.beta1, steps[shape] + 1.0));
  a.bias_correction2 = static_cast<float>(1.0 - std::pow(a.beta2, steps[shape] + 1.0));
  Vec w = RandF(r, n), g = RandF(r, n, 3.0), m = RandF(r, n, 0.1), v = RandF(r, n, 0.01);
  for (auto& x : v) x = std::fabs(x);  // a second moment
  float *pw = h.F(w), *pg = h.F(g), *pm = h.F(m), *pv = h.F(v);
  void* pws = shape == 0 ? nullptr : h.PoisonS(n);
  OK(h.st);
  OK(h.be()->AdamWUpdate(pw, pws, pg, pm, pv, n, a));
  Vec rw = w, rm = m, rv = v;
  for (I j = 0; j < n; ++j) {
    const double gj = g[j] * a.grad_scale;
    rm[j] = a.beta1 * rm[j] + (1.0 - a.beta1) * gj;
    rv[j] = a.beta2 * rv[j] + (1.0 - a.beta2) * gj * gj;
    const double mh = rm[j] / a.bias_correction1, vh = rv[j] / a.bias_correction2;
    rw[j] -= a.lr * (mh / (std::sqrt(vh) + a.eps) + a.weight_decay * rw[j]);
  }
  Vec gw = h.GetF(pw, n), gm = h.GetF(pm, n), gv = h.GetF(pv, n);
  OK(h.st);
  ExpectNear("w", gw, rw, kF32Tol);
  ExpectNear("m", gm, rm, kF32Tol);
  ExpectNear("v", gv, rv, kF32Tol);
  if (pws) ExpectStorageCopy(h, pws, gw, n);
}

void TestMuonMomentum(Harness& h, Rng& r, int shape) {
  const I ns[] = {1, 1000, 4097};
  const I n = ns[shape];
  const bool nesterov = shape != 1;
  const float mu = 0.95f, gss[] = {1.0f, 0.5f, 0.77f}, gs = gss[shape];
  Vec g = RandF(r, n), m = RandF(r, n, 0.5);
  float *pg = h.F(g), *pm = h.F(m);
  float* pu = shape == 2 ? pg : h.PoisonF(n);  // u may alias g
  OK(h.st);
  OK(h.be()->MuonMomentum(pg, pm, pu, n, mu, gs, nesterov));
  Vec rm = m, ru(static_cast<size_t>(n));
  for (I j = 0; j < n; ++j) {
    const double gj = g[j] * gs;
    rm[j] = mu * rm[j] + gj;
    ru[j] = nesterov ? gj + mu * rm[j] : rm[j];
  }
  Vec gm = h.GetF(pm, n), gu = h.GetF(pu, n);
  OK(h.st);
  ExpectNear("m", gm, rm, kF32Tol);
  ExpectNear("u", gu, ru, kF32Tol);
}

void TestMuonApply(Harness& h, Rng& r, int shape) {
  const I ns[] = {1, 1000, 4097};
  const I n = ns[shape];
  const float lrs[] = {0.02f, 0.1f, 0.005f}, scs[] = {0.2f, 1.3f, 4.5f}, wds[] = {0.1f, 0.0f, 0.05f};
  const float lr = lrs[shape], sc = scs[shape], wd = wds[shape];
  Vec w = RandF(r, n), o = RandF(r, n);
  float *pw = h.F(w), *po = h.F(o);
  void* pws = shape == 1 ? nullptr : h.PoisonS(n);
  OK(h.st);
  OK(h.be()->MuonApply(pw, pws, po, n, lr, sc, wd));
  Vec rw = w;
  for (I j = 0; j < n; ++j) rw[j] -= static_cast<double>(lr) * (o[j] * sc + static_cast<double>(wd) * rw[j]);
  Vec gw = h.GetF(pw, n);
  OK(h.st);
  ExpectNear("w", gw, rw, kF32Tol);
  if (pws) ExpectStorageCopy(h, pws, gw, n);
}

TEST_P(BackendOps, MatchesFp64Reference) {
  const Case& c = GetParam();
  Harness h(be_.get());
  Rng& r = rng_;
  const int s = c.shape;
  if (c.op == "gemm") TestGemm(h, r, s, false);
  else if (c.op == "gemm_batched") TestGemm(h, r, s, true);
  else if (c.op == "linear") TestLinear(h, r, s);
  else if (c.op == "linear_bwd") TestLinearBackward(h, r, s);
  else if (c.op == "rmsnorm") TestRmsNorm(h, r, s, false);
  else if (c.op == "rmsnorm_bwd") TestRmsNorm(h, r, s, true);
  else if (c.op == "rope") TestRope(h, r, s);
  else if (c.op == "swiglu") TestSwiGlu(h, r, s, false);
  else if (c.op == "swiglu_bwd") TestSwiGlu(h, r, s, true);
  else if (c.op == "attention") TestAttention(h, r, s, false);
  else if (c.op == "attention_bwd") TestAttention(h, r, s, true);
  else if (c.op == "mla_decode") TestMlaDecode(h, r, s);
  else if (c.op == "router") TestRouter(h, r, s);
  else if (c.op == "cross_entropy") TestCrossEntropy(h, r, s);
  else if (c.op == "moe_permute") TestMoePermute(h, r, s);
  else if (c.op == "moe_unpermute") TestMoeUnpermute(h, r, s, false);
  else if (c.op == "moe_unpermute_bwd") TestMoeUnpermute(h, r, s, true);
  else if (c.op == "grouped_linear") TestGroupedLinear(h, r, s, false);
  else if (c.op == "grouped_linear_bwd") TestGroupedLinear(h, r, s, true);
  else if (c.op == "newton_schulz") TestNewtonSchulz(h, r, s);
  else if (c.op == "embedding") TestEmbedding(h, r, s, false);
  else if (c.op == "embedding_bwd") TestEmbedding(h, r, s, true);
  else if (c.op == "add") TestAdd(h, r, s);
  else if (c.op == "adamw") TestAdamW(h, r, s);
  else if (c.op == "muon_momentum") TestMuonMomentum(h, r, s);
  else if (c.op == "muon_apply") TestMuonApply(h, r, s);
  else FAIL() << "unknown op " << c.op;
  OK(be_->Synchronize());
}

std::vector<Case> AllCases() {
  const char* ops[] = {"gemm", "gemm_batched", "linear", "linear_bwd", "rmsnorm", "rmsnorm_bwd", "rope",
                       "swiglu", "swiglu_bwd", "attention", "attention_bwd", "mla_decode", "router",
                       "cross_entropy", "moe_permute", "moe_unpermute", "moe_unpermute_bwd", "grouped_linear",
                       "grouped_linear_bwd", "newton_schulz", "embedding", "embedding_bwd", "add", "adamw",
                       "muon_momentum", "muon_apply"};
  std::vector<Case> v;
  for (const char* kind : {"cpu", "cuda"})
    for (const char* op : ops)
      for (DType dt : {DType::kF32, DType::kBF16})
        for (int s = 0; s < 3; ++s) v.push_back({kind, op, dt, s});
  return v;
}

INSTANTIATE_TEST_SUITE_P(All, BackendOps, testing::ValuesIn(AllCases()), CaseName);

// ---------------------------------------------------------------- interface behaviour
TEST(Backend, FactoryNamesAndErrors) {
  auto cpu = MakeBackend("cpu");
  ASSERT_TRUE(cpu.ok());
  EXPECT_EQ((*cpu)->name(), "cpu");
  EXPECT_EQ((*cpu)->dtype(), DType::kF32);
  auto bad = MakeBackend("tpu");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Code::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("tpu"), std::string::npos);
  auto cuda = MakeBackend("cuda");
  if (CudaDeviceCount() == 0) {
    ASSERT_FALSE(cuda.ok());
    EXPECT_EQ(cuda.status().code(), Code::kUnavailable) << cuda.status().ToString();
  } else {
    ASSERT_TRUE(cuda.ok()) << cuda.status().ToString();
    EXPECT_EQ((*cuda)->name().rfind("cuda:0", 0), 0u);
    BackendOptions o;
    o.device = 4096;
    auto missing = MakeBackend("cuda", o);
    ASSERT_FALSE(missing.ok());
    EXPECT_EQ(missing.status().code(), Code::kUnavailable);
  }
}

TEST(Backend, Bf16RoundsToNearestEven) {
  EXPECT_EQ(FloatToBf16(1.0f), 0x3f80);
  EXPECT_EQ(Bf16ToFloat(0x3f80), 1.0f);
  // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties go to the even mantissa (1.0).
  EXPECT_EQ(Bf16ToFloat(FloatToBf16(1.0f + 0x1.0p-8f)), 1.0f);
  EXPECT_EQ(Bf16ToFloat(FloatToBf16(1.0f + 3 * 0x1.0p-8f)), 1.0f + 0x1.0p-6f);
  EXPECT_TRUE(std::isnan(Bf16ToFloat(FloatToBf16(std::nanf("")))));
  EXPECT_TRUE(std::isinf(Bf16ToFloat(FloatToBf16(INFINITY))));
}

// The page-pool layout MlaDecodeAttention walks is engine/gen/kv_cache.h's own: a real KvCache with
// forked (shared, copy-on-write) pages, read through the backend, matches an fp64 loop over KvCache::Row.
TEST(Backend, MlaDecodeReadsTheKvCacheLayout) {
  gen::KvCacheConfig kc;
  kc.num_layers = 2, kc.kv_lora_rank = 24, kc.rope_dim = 8, kc.page_size = 4, kc.num_pages = 32;
  kc.max_sequences = 4, kc.max_tokens_per_sequence = 64;
  auto kvx = gen::KvCache::Create(kc);
  ASSERT_TRUE(kvx.ok()) << kvx.status().ToString();
  gen::KvCache& kv = *kvx;
  Rng r(77);
  const I W = kc.kv_lora_rank + kc.rope_dim;
  auto fill = [&](gen::KvCache::SeqId sq, I from, I to) {
    for (I l = 0; l < kc.num_layers; ++l)
      for (I p = from; p < to; ++p) {
        float* row = kv.MutableRow(sq, l, p);
        for (I c = 0; c < W; ++c) row[c] = static_cast<float>(r.Uniform(-1, 1));
      }
  };
  auto a = kv.NewSequence();
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(kv.Append(*a, 10).ok());
  fill(*a, 0, 10);
  auto b = kv.Fork(*a);  // shares a's pages; its append copies the partial last page
  ASSERT_TRUE(b.ok());
  ASSERT_TRUE(kv.Append(*b, 3).ok());
  fill(*b, 10, 13);
  auto c = kv.NewSequence();
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(kv.Append(*c, 5).ok());
  fill(*c, 0, 5);
  const I page_floats = kc.num_layers * kc.page_size * W;
  const float* pool = kv.PageRows(*a, 0, 0) - static_cast<I>(kv.pages(*a)[0]) * page_floats;
  const I max_pages = kc.max_tokens_per_sequence / kc.page_size;
  std::vector<int32_t> table(static_cast<size_t>(kc.max_sequences * max_pages), 0);
  for (gen::KvCache::SeqId sq : {*a, *b, *c})
    for (size_t i = 0; i < kv.pages(sq).size(); ++i) table[static_cast<size_t>(sq * max_pages) + i] = kv.pages(sq)[i];
  const std::vector<int32_t> row_seq{*a, *b, *b, *c, *c}, row_pos{9, 12, 11, 4, 0};
  MlaDecodeShape s;
  s.rows = 5, s.H = 2, s.rkv = kc.kv_lora_rank, s.dr = kc.rope_dim, s.page_size = kc.page_size;
  s.num_layers = kc.num_layers, s.layer = 1, s.max_pages = max_pages, s.scale = 0.3;
  s.q_pe_row_stride = s.H * s.dr, s.q_pe_head_stride = s.dr;
  Vec ql = RandF(r, s.rows * s.H * s.rkv), qp = RandF(r, s.rows * s.H * s.dr);
  Vec ref(static_cast<size_t>(s.rows * s.H * s.rkv));
  for (I i = 0; i < s.rows; ++i)
    for (I h = 0; h < s.H; ++h) {
      Vec sc;
      for (I j = 0; j <= row_pos[i]; ++j) {
        const float* key = kv.Row(row_seq[i], s.layer, j);
        double d = 0;
        for (I q = 0; q < s.rkv; ++q) d += ql[(i * s.H + h) * s.rkv + q] * key[q];
        for (I q = 0; q < s.dr; ++q) d += qp[(i * s.H + h) * s.dr + q] * key[s.rkv + q];
        sc.push_back(d * s.scale);
      }
      const double mx = *std::max_element(sc.begin(), sc.end());
      double z = 0;
      for (double v : sc) z += std::exp(v - mx);
      for (I q = 0; q < s.rkv; ++q) {
        double acc = 0;
        for (I j = 0; j <= row_pos[i]; ++j) acc += std::exp(sc[j] - mx) / z * kv.Row(row_seq[i], s.layer, j)[q];
        ref[(i * s.H + h) * s.rkv + q] = acc;
      }
    }
  int ran = 0;
  for (const char* kind : {"cpu", "cuda"}) {
    auto be = MakeBackend(kind);
    if (!be.ok()) continue;
    ++ran;
    Harness hs(be->get());
    Vec pool_v(pool, pool + kc.num_pages * page_floats);
    void *pp = hs.S(pool_v), *pql = hs.S(ql), *pqp = hs.S(qp), *po = hs.PoisonS(s.rows * s.H * s.rkv);
    int32_t *pt = hs.I32(table), *prs = hs.I32(row_seq), *prp = hs.I32(row_pos);
    ASSERT_TRUE(hs.st.ok()) << hs.st.ToString();
    Status st = (*be)->MlaDecodeAttention(s, pql, pqp, pp, pt, prs, prp, po);
    ASSERT_TRUE(st.ok()) << kind << ": " << st.ToString();
    Vec got = hs.GetS(po, s.rows * s.H * s.rkv);
    ASSERT_TRUE(hs.st.ok()) << hs.st.ToString();
    ExpectNear(std::string(kind) + " o_lat", got, ref, 1e-4);
  }
  EXPECT_GE(ran, 1);
}

TEST(Backend, BadShapesAreErrorsNotCrashes) {
  for (const char* kind : {"cpu", "cuda"}) {
    auto b = MakeBackend(kind);
    if (!b.ok()) continue;  // cuda without a GPU: covered by FactoryNamesAndErrors
    Backend& be = **b;
    std::vector<float> logits(16, 0.5f), bias(8, 0.0f), w(2);
    std::vector<int32_t> idx(2);
    DeviceBuffer dl = std::move(*DeviceBuffer::Create(&be, 64)), db = std::move(*DeviceBuffer::Create(&be, 64)),
                 dw = std::move(*DeviceBuffer::Create(&be, 64)), di = std::move(*DeviceBuffer::Create(&be, 64));
    // 8 experts cannot form 3 groups.
    Status st = be.RouterTopK(dl.get(), db.as<float>(), 1, 8, 3, 1, 2, true, 1.0, di.as<int32_t>(), dw.as<float>(), nullptr);
    EXPECT_EQ(st.code(), Code::kInvalidArgument) << kind << ": " << st.ToString();
    st = be.Rope(dl.get(), 1, 1, 8, 0, di.as<int32_t>(), nullptr, 7, false, 1.0, false);
    EXPECT_EQ(st.code(), Code::kInvalidArgument) << kind << ": " << st.ToString();
    st = be.Gemm(false, false, 4, 4, 4, 1.0f, dl.get(), 2, dl.get(), 4, 0.0f, dl.get(), 4);  // lda 2 < K 4
    EXPECT_EQ(st.code(), Code::kInvalidArgument) << kind << ": " << st.ToString();
    AttnShape s;
    s.H = 0;
    st = be.AttentionForward(s, dl.get(), dl.get(), dl.get(), nullptr, nullptr, dl.get(), dw.as<float>(),
                             dw.as<float>());
    EXPECT_EQ(st.code(), Code::kInvalidArgument) << kind << ": " << st.ToString();
    // Negative sizes and empty rows of the elementwise, embedding and optimizer ops.
    st = be.Add(dl.get(), dl.get(), dl.get(), -1);
    EXPECT_EQ(st.code(), Code::kInvalidArgument) << kind << ": " << st.ToString();
    st = be.EmbeddingGather(dl.get(), 4, di.as<int32_t>(), 1, 0, db.get());
    EXPECT_EQ(st.code(), Code::kInvalidArgument) << kind << ": " << st.ToString();
    st = be.EmbeddingScatterAdd(dl.get(), di.as<int32_t>(), -2, 4, 4, dw.as<float>());
    EXPECT_EQ(st.code(), Code::kInvalidArgument) << kind << ": " << st.ToString();
    st = be.AdamWUpdate(dw.as<float>(), nullptr, dw.as<float>(), dw.as<float>(), dw.as<float>(), -1, AdamWArgs{});
    EXPECT_EQ(st.code(), Code::kInvalidArgument) << kind << ": " << st.ToString();
    st = be.MuonMomentum(dw.as<float>(), dw.as<float>(), dw.as<float>(), -1, 0.9f, 1.0f, true);
    EXPECT_EQ(st.code(), Code::kInvalidArgument) << kind << ": " << st.ToString();
    st = be.MuonApply(dw.as<float>(), nullptr, dw.as<float>(), -1, 0.1f, 1.0f, 0.0f);
    EXPECT_EQ(st.code(), Code::kInvalidArgument) << kind << ": " << st.ToString();
    // Out of memory is a Status, and the backend keeps working afterwards.
    auto huge = be.Alloc(size_t{1} << 50);
    ASSERT_FALSE(huge.ok()) << kind;
    EXPECT_EQ(huge.status().code(), Code::kResourceExhausted) << kind << ": " << huge.status().ToString();
    std::vector<float> in{1.5f, -2.0f, 3.0f, 0.25f}, back(4);
    ASSERT_TRUE(be.UploadFloats(dl.get(), in.data(), 4).ok()) << kind;
    ASSERT_TRUE(be.SwiGlu(dl.get(), dl.get(), db.get(), 4).ok()) << kind;
    ASSERT_TRUE(be.DownloadFloats(back.data(), db.get(), 4).ok()) << kind;
    for (int i = 0; i < 4; ++i) EXPECT_NEAR(back[i], in[i] * in[i] / (1.0f + std::exp(-in[i])), 1e-5f) << kind << " " << i;
  }
  // The CPU backend also checks what the device cannot: a weighted row with a target outside [0, V).
  auto cpu = MakeCpuBackend(DType::kF32);
  std::vector<float> logits(6, 0.1f), wts{1.0f, 0.0f}, loss(2);
  std::vector<int32_t> tg{5, -1};
  Status st = cpu->CrossEntropy(logits.data(), tg.data(), wts.data(), 2, 3, nullptr, 1.0, loss.data(), nullptr, nullptr);
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_NE(st.message().find("row 0"), std::string::npos) << st.message();
  std::vector<int32_t> ids{0, 9}, rows(2), offs(4);
  std::vector<float> x(4, 1.0f), xe(4);
  st = cpu->MoePermute(x.data(), 2, 2, ids.data(), 1, 3, xe.data(), rows.data(), offs.data());
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_NE(st.message().find("expert 9"), std::string::npos) << st.message();
}

// A token outside [0, V): InvalidArgument naming its index on the CPU (nothing written); the device's
// documented behaviour instead (a zero row in the gather, the row skipped in the scatter-add), no fault.
TEST(Backend, EmbeddingTokenOutsideVocabulary) {
  const I V = 4, D = 3, N = 3;
  const std::vector<int32_t> tok{1, 4, 2};  // token 1 (the second) is out of range
  const std::vector<float> table{0, 1, 2, 10, 11, 12, 20, 21, 22, 30, 31, 32}, dy{1, 2, 3, 4, 5, 6, 7, 8, 9};
  int ran = 0;
  for (const char* kind : {"cpu", "cuda"}) {
    auto be = MakeBackend(kind);
    if (!be.ok()) continue;
    ++ran;
    Harness h(be->get());
    void *ptab = h.S(Vec(table.begin(), table.end())), *pdy = h.S(Vec(dy.begin(), dy.end()));
    void* py = h.S(Vec(static_cast<size_t>(N * D), -5.0));
    float* pdt = h.F(Vec(static_cast<size_t>(V * D), 0.5));
    int32_t* pt = h.I32(tok);
    ASSERT_TRUE(h.st.ok()) << h.st.ToString();
    Status g = (*be)->EmbeddingGather(ptab, V, pt, N, D, py);
    Status sa = (*be)->EmbeddingScatterAdd(pdy, pt, N, D, V, pdt);
    Vec y = h.GetS(py, N * D), dt = h.GetF(pdt, V * D);
    ASSERT_TRUE(h.st.ok()) << h.st.ToString();
    Vec want_dt(static_cast<size_t>(V * D), 0.5);
    if (std::string(kind) == "cpu") {
      for (const Status* st : {&g, &sa}) {
        EXPECT_EQ(st->code(), Code::kInvalidArgument) << st->ToString();
        EXPECT_NE(st->message().find("token 1 is 4, outside [0, 4)"), std::string::npos) << st->message();
      }
      EXPECT_EQ(y, Vec(static_cast<size_t>(N * D), -5.0));
    } else {
      ASSERT_TRUE(g.ok()) << g.ToString();
      ASSERT_TRUE(sa.ok()) << sa.ToString();
      ASSERT_TRUE((*be)->Synchronize().ok());
      EXPECT_EQ(y, (Vec{10, 11, 12, 0, 0, 0, 20, 21, 22}));
      for (I d = 0; d < D; ++d) want_dt[1 * D + d] += dy[d], want_dt[2 * D + d] += dy[2 * D + d];
    }
    EXPECT_EQ(dt, want_dt) << kind;
  }
  EXPECT_GE(ran, 1);
}

// Segment parents that break ops::CheckSharedPrefix's layout are InvalidArgument on the CPU backend
// (the block-diagonal attention relies on them), naming the row and the rule.
TEST(Backend, BadSegmentParentsAreInvalidArgumentOnCpu) {
  auto be = MakeCpuBackend(DType::kF32);
  AttnShape s;
  s.B = 2, s.H = 1, s.T = 4, s.dq = 2, s.dv = 2, s.scale = 1.0;
  std::vector<float> q(16, 0.1f), o(16), lse(8), mx(1), dq(16), dk(16), dv(16);
  // Row 0 is valid; row 1's second segment names a parent (2) that comes after it.
  const std::vector<int32_t> seg{0, 0, 1, 1, 0, 1, 1, 2}, par{-1, -1, 0, 0, -1, 2, 2, -1};
  Status st = be->AttentionForward(s, q.data(), q.data(), q.data(), seg.data(), par.data(), o.data(), lse.data(),
                                   mx.data());
  EXPECT_EQ(st.code(), Code::kInvalidArgument) << st.ToString();
  EXPECT_NE(st.message().find("row 1"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("does not come before"), std::string::npos) << st.message();
  st = be->AttentionBackward(s, q.data(), q.data(), q.data(), seg.data(), par.data(), o.data(), lse.data(), q.data(),
                             dq.data(), dk.data(), dv.data());
  EXPECT_EQ(st.code(), Code::kInvalidArgument) << st.ToString();
  // Parents without segment ids.
  st = be->AttentionForward(s, q.data(), q.data(), q.data(), nullptr, par.data(), o.data(), lse.data(), mx.data());
  EXPECT_EQ(st.code(), Code::kInvalidArgument) << st.ToString();
  EXPECT_NE(st.message().find("segment ids"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace k2::engine
