// Backend op throughput: GEMM, attention fwd/bwd, MoE grouped GEMM, cross-entropy, MLA decode, RMSNorm and
// Newton-Schulz through engine/backend.h, each beside a reference measured in the same run on the same
// device: the backend's own large bf16 GEMM (cuBLAS on a GPU: the reachable tensor-core rate) for the
// matrix work, and a device-to-device copy for the memory-bound ops.
//
// Usage: bench_engine_cuda [--backend cuda|cpu] [--dtype bf16|fp32] [--quick] [--json FILE]
// Without a GPU, `--backend cuda` prints why and exits 0 (CI builds this; it runs on a GPU machine via
// bench/engine_cuda/run_gpu.sh). Figures are medians of timed repetitions after warm-ups.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "engine/backend.h"

namespace {

using k2::Status;
using namespace k2::engine;
using I = int64_t;

[[noreturn]] void Die(const Status& st, const char* what) {
  std::fprintf(stderr, "bench_engine_cuda: %s: %s\n", what, st.ToString().c_str());
  std::exit(1);
}
#define CHECK_OK(expr)                  \
  do {                                  \
    Status s_ = (expr);                 \
    if (!s_.ok()) Die(s_, #expr);       \
  } while (0)

struct Bench {
  Backend* be;
  bool quick;
  std::vector<DeviceBuffer> bufs;
  std::string json = "[";

  void* Buf(size_t bytes, float fill_scale = 0.5f) {
    auto d = DeviceBuffer::Create(be, bytes);
    if (!d.ok()) Die(d.status(), "alloc");
    // Random-looking, never-zero contents (zeros make tensor cores look faster than real data).
    const I n = static_cast<I>(bytes / be->elem_size());
    std::vector<float> h(static_cast<size_t>(std::min<I>(n, 1 << 22)));
    uint64_t s = 0x9e3779b97f4a7c15ull ^ bytes;
    for (auto& v : h) {
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      v = fill_scale * (static_cast<float>((s >> 40) & 0xffff) / 65536.0f - 0.5f) + 1e-3f;
    }
    for (I off = 0; off < n; off += static_cast<I>(h.size()))
      CHECK_OK(be->UploadFloats(static_cast<char*>(d->get()) + off * be->elem_size(), h.data(),
                                std::min<I>(static_cast<I>(h.size()), n - off)));
    bufs.push_back(std::move(*d));
    return bufs.back().get();
  }
  template <class T>
  T* Raw(const std::vector<T>& v) {
    auto d = DeviceBuffer::Create(be, std::max<size_t>(v.size() * sizeof(T), 8));
    if (!d.ok()) Die(d.status(), "alloc");
    CHECK_OK(be->Upload(d->get(), v.data(), v.size() * sizeof(T)));
    bufs.push_back(std::move(*d));
    return bufs.back().as<T>();
  }

  // Median seconds of `reps` timed calls after `warm` warm-ups.
  double Time(const std::function<Status()>& f, int warm = 2, int reps = 7) {
    for (int i = 0; i < warm; ++i) CHECK_OK(f());
    CHECK_OK(be->Synchronize());
    std::vector<double> t;
    for (int i = 0; i < reps; ++i) {
      auto t0 = std::chrono::steady_clock::now();
      CHECK_OK(f());
      CHECK_OK(be->Synchronize());
      t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
  }

  void Report(const std::string& name, const std::string& size, double sec, double work, const char* unit,
              double ref, const char* ref_name) {
    const double rate = work / sec;
    std::printf("%-22s %-44s %9.3f ms %10.2f %-7s %6.1f%% of %s\n", name.c_str(), size.c_str(), sec * 1e3, rate, unit,
                100.0 * rate / ref, ref_name);
    char buf[512];
    std::snprintf(buf, sizeof buf,
                  "%s{\"op\":\"%s\",\"size\":\"%s\",\"ms\":%.4f,\"rate\":%.3f,\"unit\":\"%s\",\"ratio\":%.4f,\"ref\":\"%s\"}",
                  json.size() > 1 ? "," : "", name.c_str(), size.c_str(), sec * 1e3, rate, unit, rate / ref, ref_name);
    json += buf;
  }
};

std::string Dims(std::initializer_list<I> d) {
  std::string s;
  for (I v : d) s += (s.empty() ? "" : "x") + std::to_string(v);
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  std::string kind = "cuda", dtype = "bf16", json_path;
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--backend" && i + 1 < argc) kind = argv[++i];
    else if (a == "--dtype" && i + 1 < argc) dtype = argv[++i];
    else if (a == "--json" && i + 1 < argc) json_path = argv[++i];
    else if (a == "--quick") quick = true;
    else {
      std::fprintf(stderr, "usage: bench_engine_cuda [--backend cuda|cpu] [--dtype bf16|fp32] [--quick] [--json FILE]\n");
      return 2;
    }
  }
  BackendOptions opts;
  opts.dtype = dtype == "fp32" ? DType::kF32 : DType::kBF16;
  auto made = MakeBackend(kind, opts);
  if (!made.ok()) {
    std::printf("bench_engine_cuda: backend '%s' not available: %s (skipped)\n", kind.c_str(),
                made.status().ToString().c_str());
    return 0;
  }
  Backend* be = made->get();
  const bool gpu = kind == "cuda";
  // CPU runs are a smoke check of the harness: small sizes.
  const bool small = quick || !gpu;
  Bench b{be, quick, {}, "["};
  const size_t es = be->elem_size();
  std::printf("device: %s | storage %s | host threads %u | %s sizes\n", be->name().c_str(), DTypeName(be->dtype()),
              std::thread::hardware_concurrency(), small ? "small" : "full");

  // References: the large square GEMM rate, the device copy bandwidth.
  const I G = small ? 512 : 8192;
  void* A = b.Buf(static_cast<size_t>(G * G) * es);
  void* B = b.Buf(static_cast<size_t>(G * G) * es);
  void* C = b.Buf(static_cast<size_t>(G * G) * es);
  const double t_gemm = b.Time([&] { return be->Gemm(false, true, G, G, G, 1.0f, A, G, B, G, 0.0f, C, G); });
  const double peak = 2.0 * G * G * G / t_gemm / 1e12;
  const size_t cb = static_cast<size_t>(small ? 64 : 1024) << 20;
  void* c0 = b.Buf(cb);
  void* c1 = b.Buf(cb);
  const double t_copy = b.Time([&] { return be->Copy(c1, c0, cb); });
  const double bw = 2.0 * static_cast<double>(cb) / t_copy / 1e9;
  std::printf("reference: GEMM %s %.1f TFLOP/s | device copy %.0f GB/s (read+write)\n", Dims({G, G, G}).c_str(), peak, bw);
  b.Report("gemm_ref", Dims({G, G, G}), t_gemm, 2.0 * G * G * G / 1e12, "TFLOP/s", peak, "gemm");

  // Linear shapes of a ~1B-total MoE layer (hidden 2048): q/kv projections and the lm_head.
  {
    const I N = small ? 256 : 8192, D = small ? 256 : 2048, V = small ? 4096 : 163840;
    void* x = b.Buf(static_cast<size_t>(N * D) * es);
    void* W = b.Buf(static_cast<size_t>(V * D) * es);
    void* y = b.Buf(static_cast<size_t>(N * V) * es);
    const double t = b.Time([&] { return be->Linear(x, W, y, N, D, V, false); });
    b.Report("lm_head_linear", Dims({N, D, V}), t, 2.0 * N * D * V / 1e12, "TFLOP/s", peak, "gemm");
  }

  // Attention with MLA's head dims (dq 192 = 128 nope + 64 rope, dv 128), causal, packed rows.
  {
    AttnShape s;
    s.B = small ? 1 : 4, s.H = small ? 2 : 16, s.T = small ? 256 : 2048, s.dq = 192, s.dv = 128;
    s.scale = 1.0 / std::sqrt(192.0);
    const I nq = s.B * s.H * s.T;
    void *q = b.Buf(static_cast<size_t>(nq * s.dq) * es), *k = b.Buf(static_cast<size_t>(nq * s.dq) * es),
         *v = b.Buf(static_cast<size_t>(nq * s.dv) * es), *o = b.Buf(static_cast<size_t>(nq * s.dv) * es),
         *dout = b.Buf(static_cast<size_t>(nq * s.dv) * es), *dq = b.Buf(static_cast<size_t>(nq * s.dq) * es),
         *dk = b.Buf(static_cast<size_t>(nq * s.dq) * es), *dv = b.Buf(static_cast<size_t>(nq * s.dv) * es);
    float* lse = static_cast<float*>(b.Buf(static_cast<size_t>(nq) * 4));
    float* mx = static_cast<float*>(b.Buf(static_cast<size_t>(s.H) * 4));
    // Causal model FLOPs: half of the square, 2 FLOPs per MAC, QK^T and PV.
    const double f_fwd = 2.0 * s.B * s.H * (s.T * (s.T + 1) / 2.0) * (s.dq + s.dv);
    const std::string sz = "B" + std::to_string(s.B) + " H" + std::to_string(s.H) + " T" + std::to_string(s.T) + " dq192 dv128";
    const double tf = b.Time([&] { return be->AttentionForward(s, q, k, v, nullptr, nullptr, o, lse, mx); }, 1, 5);
    b.Report("attention_fwd", sz, tf, f_fwd / 1e12, "TFLOP/s", peak, "gemm");
    const double tb =
        b.Time([&] { return be->AttentionBackward(s, q, k, v, nullptr, nullptr, o, lse, dout, dq, dk, dv); }, 1, 5);
    b.Report("attention_bwd", sz, tb, 2.5 * f_fwd / 1e12, "TFLOP/s", peak, "gemm");
  }

  // MoE layer: router top-8 of 64 experts, permute, grouped gate/up/down GEMMs, unpermute.
  {
    const I N = small ? 512 : 8192, D = small ? 256 : 2048, E = 64, K = 8, F = small ? 128 : 1408;
    void* x = b.Buf(static_cast<size_t>(N * D) * es);
    void* logits = b.Buf(static_cast<size_t>(N * E) * es, 4.0f);
    float* bias = b.Raw(std::vector<float>(static_cast<size_t>(E), 0.0f));
    int32_t* idx = b.Raw(std::vector<int32_t>(static_cast<size_t>(N * K), 0));
    float* w = b.Raw(std::vector<float>(static_cast<size_t>(N * K), 0.0f));
    int32_t* rows = b.Raw(std::vector<int32_t>(static_cast<size_t>(N * K), 0));
    int32_t* offs = b.Raw(std::vector<int32_t>(static_cast<size_t>(E + 1), 0));
    void* xe = b.Buf(static_cast<size_t>(N * K * D) * es);
    void* W1 = b.Buf(static_cast<size_t>(E * F * D) * es);
    void* h1 = b.Buf(static_cast<size_t>(N * K * F) * es);
    void* W2 = b.Buf(static_cast<size_t>(E * D * F) * es);
    void* ye = b.Buf(static_cast<size_t>(N * K * D) * es);
    void* y = b.Buf(static_cast<size_t>(N * D) * es);
    CHECK_OK(be->RouterTopK(logits, bias, N, E, 8, 4, K, true, 2.5, idx, w, nullptr));
    CHECK_OK(be->MoePermute(x, N, D, idx, K, E, xe, rows, offs));
    std::vector<int32_t> hoff(static_cast<size_t>(E + 1));
    CHECK_OK(be->Download(hoff.data(), offs, hoff.size() * 4));
    const std::string sz = "N" + std::to_string(N) + " D" + std::to_string(D) + " E64 k8 F" + std::to_string(F);
    const double tr = b.Time([&] { return be->RouterTopK(logits, bias, N, E, 8, 4, K, true, 2.5, idx, w, nullptr); });
    b.Report("router_topk", sz, tr, N / 1e6, "Mtok/s", 1.0, "1 Mtok/s");
    const double tp = b.Time([&] { return be->MoePermute(x, N, D, idx, K, E, xe, rows, offs); });
    b.Report("moe_permute", sz, tp, 2.0 * N * K * D * es / 1e9, "GB/s", bw, "copy");
    const double tg = b.Time([&] { return be->GroupedLinear(xe, W1, h1, hoff.data(), E, D, F); });
    b.Report("moe_grouped_gemm_up", sz, tg, 2.0 * N * K * D * F / 1e12, "TFLOP/s", peak, "gemm");
    const double td = b.Time([&] { return be->GroupedLinear(h1, W2, ye, hoff.data(), E, F, D); });
    b.Report("moe_grouped_gemm_down", sz, td, 2.0 * N * K * D * F / 1e12, "TFLOP/s", peak, "gemm");
    const double tu = b.Time([&] { return be->MoeUnpermute(ye, rows, w, N, K, D, y, false); });
    b.Report("moe_unpermute", sz, tu, (1.0 * N * K * D + N * D) * es / 1e9, "GB/s", bw, "copy");
  }

  // Cross-entropy over a K2-sized vocabulary with the gradient written in place.
  {
    const I N = small ? 256 : 4096, V = small ? 8192 : 163840;
    void* logits = b.Buf(static_cast<size_t>(N * V) * es, 8.0f);
    std::vector<int32_t> t(static_cast<size_t>(N));
    for (I i = 0; i < N; ++i) t[static_cast<size_t>(i)] = static_cast<int32_t>((i * 7919) % V);
    int32_t* tg = b.Raw(t);
    float* wt = b.Raw(std::vector<float>(static_cast<size_t>(N), 1.0f));
    float* loss = b.Raw(std::vector<float>(static_cast<size_t>(N), 0.0f));
    // Forward-only (no dlogits) so repetitions see the same logits; then once with the in-place gradient.
    const double tc = b.Time([&] { return be->CrossEntropy(logits, tg, wt, N, V, nullptr, 1.0, loss, nullptr, nullptr); });
    b.Report("cross_entropy_fwd", Dims({N, V}), tc, 1.0 * N * V * es / 1e9, "GB/s", bw, "copy");
    const double tcg = b.Time([&] { return be->CrossEntropy(logits, tg, wt, N, V, logits, 1.0, loss, nullptr, nullptr); }, 0, 1);
    b.Report("cross_entropy_grad", Dims({N, V}), tcg, 2.0 * N * V * es / 1e9, "GB/s", bw, "copy");
  }

  // RMSNorm over hidden 7168 rows (K2's width).
  {
    const I N = small ? 256 : 16384, D = small ? 1024 : 7168;
    void* x = b.Buf(static_cast<size_t>(N * D) * es);
    void* w = b.Buf(static_cast<size_t>(D) * es);
    void* y = b.Buf(static_cast<size_t>(N * D) * es);
    float* rstd = static_cast<float*>(b.Buf(static_cast<size_t>(N) * 4));
    const double t = b.Time([&] { return be->RmsNorm(x, D, w, y, rstd, N, D, 1e-6); });
    b.Report("rmsnorm", Dims({N, D}), t, 2.0 * N * D * es / 1e9, "GB/s", bw, "copy");
  }

  // Absorbed-MLA decode: batch of single-token rows over 4096-token contexts in 64-token pages.
  for (I batch : {I(1), I(64)}) {
    MlaDecodeShape s;
    s.rows = batch, s.H = small ? 4 : 16, s.rkv = 512, s.dr = 64, s.page_size = 64, s.num_layers = 1, s.layer = 0;
    const I ctx = small ? 512 : 4096;
    s.max_pages = ctx / s.page_size;
    s.q_pe_row_stride = s.H * s.dr, s.q_pe_head_stride = s.dr, s.scale = 0.07;
    const I W = s.rkv + s.dr, pages_n = batch * s.max_pages;
    void* pages = b.Buf(static_cast<size_t>(pages_n * s.page_size * W) * es);
    std::vector<int32_t> table(static_cast<size_t>(pages_n)), rs(static_cast<size_t>(batch)), rp(rs.size());
    std::iota(table.begin(), table.end(), 0);
    for (I i = 0; i < batch; ++i) rs[static_cast<size_t>(i)] = static_cast<int32_t>(i), rp[static_cast<size_t>(i)] = static_cast<int32_t>(ctx - 1);
    int32_t *pt = b.Raw(table), *prs = b.Raw(rs), *prp = b.Raw(rp);
    void* ql = b.Buf(static_cast<size_t>(batch * s.H * s.rkv) * es);
    void* qp = b.Buf(static_cast<size_t>(batch * s.H * s.dr) * es);
    void* ol = b.Buf(static_cast<size_t>(batch * s.H * s.rkv) * es);
    const double t = b.Time([&] { return be->MlaDecodeAttention(s, ql, qp, pages, pt, prs, prp, ol); });
    // Unique cache bytes per call (what a kernel sharing the keys across heads must read at least).
    b.Report("mla_decode_b" + std::to_string(batch), "H" + std::to_string(s.H) + " rkv512 dr64 ctx" + std::to_string(ctx),
             t, 1.0 * batch * ctx * W * es / 1e9, "GB/s", bw, "copy");
  }

  // Muon's Newton-Schulz (5 steps) on a 2048 x 7168 gradient.
  {
    const I R = small ? 256 : 2048, Cc = small ? 512 : 7168;
    std::vector<float> g(static_cast<size_t>(R * Cc));
    for (size_t i = 0; i < g.size(); ++i) g[i] = std::sin(0.37f * static_cast<float>(i)) + 0.01f;
    float* dg = b.Raw(g);
    float* out = b.Raw(std::vector<float>(g.size(), 0.0f));
    const double t = b.Time([&] { return be->NewtonSchulz(dg, R, Cc, 5, out); }, 1, 5);
    const double fl = 5.0 * (2.0 * R * R * Cc + 2.0 * R * R * R + 2.0 * R * R * Cc);
    b.Report("newton_schulz_5", Dims({R, Cc}), t, fl / 1e12, "TFLOP/s", peak, "gemm");
  }

  b.json += "]";
  if (!json_path.empty()) {
    std::FILE* f = std::fopen(json_path.c_str(), "w");
    if (!f) {
      std::fprintf(stderr, "bench_engine_cuda: cannot write %s\n", json_path.c_str());
      return 1;
    }
    std::fprintf(f, "{\"device\":\"%s\",\"dtype\":\"%s\",\"results\":%s}\n", be->name().c_str(), DTypeName(be->dtype()),
                 b.json.c_str());
    std::fclose(f);
  }
  return 0;
}
