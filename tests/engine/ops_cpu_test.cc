// The CPU op table against its plain-loop references, and every op's backward against central finite
// differences in fp64 (STYLE habits 1 and 2).
#include "engine/ops_cpu.h"

#include <gtest/gtest.h>

#include <functional>

#include "tests/engine/test_util.h"

namespace k2::engine {
namespace {

using testing::AllClose;
using testing::RandVec;
using I = int64_t;

// Central differences of L(x) = sum(r * f(x)) with respect to every element of x.
std::vector<double> NumGrad(std::vector<double>& x, const std::function<double()>& loss, double h = 1e-6) {
  std::vector<double> g(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    double s = x[i];
    x[i] = s + h;
    double lp = loss();
    x[i] = s - h;
    double lm = loss();
    x[i] = s;
    g[i] = (lp - lm) / (2 * h);
  }
  return g;
}

double Dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

TEST(OpsCpu, LinearMatchesLoopReference) {
  Rng rng(1);
  const I N = 7, in = 13, out = 5;
  auto x = RandVec<float>(rng, N * in), W = RandVec<float>(rng, out * in);
  std::vector<float> y(N * out), yr(N * out);
  ops::Linear(x.data(), W.data(), y.data(), N, in, out);
  ops::ref::Linear(x.data(), W.data(), yr.data(), N, in, out);
  EXPECT_TRUE(AllClose(y, yr, 1e-5, 1e-5, "linear"));
}

TEST(OpsCpu, CausalAttentionMatchesLoopReference) {
  Rng rng(2);
  const I T = 9, dq = 6, dv = 4;
  auto q = RandVec<double>(rng, T * dq), k = RandVec<double>(rng, T * dq), v = RandVec<double>(rng, T * dv);
  std::vector<double> p(T * T), o(T * dv), orf(T * dv);
  double m = ops::CausalAttention(q.data(), k.data(), v.data(), p.data(), o.data(), T, dq, dv, 0.37);
  double mr = ops::ref::CausalAttention(q.data(), k.data(), v.data(), orf.data(), T, dq, dv, 0.37);
  EXPECT_TRUE(AllClose(o, orf, 1e-12, 1e-12, "attention"));
  EXPECT_NEAR(m, mr, 1e-12);
  for (I i = 0; i < T; ++i)
    for (I j = i + 1; j < T; ++j) EXPECT_EQ(p[i * T + j], 0.0) << "future position " << j << " visible to " << i;
}

TEST(OpsCpu, RouterTopKMatchesHfTranscription) {
  Rng rng(3);
  for (auto [E, G, TG, K] : std::vector<std::array<I, 4>>{{8, 1, 1, 2}, {8, 2, 1, 2}, {16, 4, 2, 3}, {12, 3, 3, 4}}) {
    const I N = 40;
    auto s = RandVec<double>(rng, N * E);
    std::vector<int32_t> a(N * K), b(N * K);
    ops::RouterTopK(s.data(), N, E, G, TG, K, a.data());
    ops::ref::RouterTopK(s.data(), N, E, G, TG, K, b.data());
    EXPECT_EQ(a, b) << "E=" << E << " groups=" << G << " topk_group=" << TG << " k=" << K;
  }
}

TEST(OpsCpu, RouterKeepsOnlyTheBestGroups) {
  // Group 1 holds the two largest scores, so with topk_group=1 every choice comes from group 1, even
  // though group 0 holds the single largest score of all.
  const std::vector<double> s = {0.99, 0.01, 0.02, 0.03, 0.9, 0.8, 0.7, 0.1};
  std::vector<int32_t> idx(2);
  ops::RouterTopK(s.data(), 1, 8, 2, 1, 2, idx.data());
  EXPECT_EQ(idx, (std::vector<int32_t>{4, 5}));
}

TEST(OpsCpuGrad, LinearBackward) {
  Rng rng(4);
  const I N = 3, in = 4, out = 5;
  auto x = RandVec<double>(rng, N * in), W = RandVec<double>(rng, out * in), r = RandVec<double>(rng, N * out);
  std::vector<double> y(N * out), dx(N * in), dW(out * in, 0.0);
  auto loss = [&] {
    ops::Linear(x.data(), W.data(), y.data(), N, in, out);
    return Dot(y, r);
  };
  ops::LinearBackward(x.data(), W.data(), r.data(), dx.data(), dW.data(), N, in, out, false);
  EXPECT_TRUE(AllClose(dx, NumGrad(x, loss), 1e-8, 1e-6, "dx"));
  EXPECT_TRUE(AllClose(dW, NumGrad(W, loss), 1e-8, 1e-6, "dW"));
}

TEST(OpsCpuGrad, RmsNormBackward) {
  Rng rng(5);
  const I N = 3, D = 7;
  auto x = RandVec<double>(rng, N * D), w = RandVec<double>(rng, D), r = RandVec<double>(rng, N * D);
  std::vector<double> y(N * D), rs(N), dx(N * D), dw(D, 0.0);
  auto loss = [&] {
    ops::RmsNorm(x.data(), D, w.data(), y.data(), rs.data(), N, D, 1e-6);
    return Dot(y, r);
  };
  loss();
  ops::RmsNormBackward(x.data(), D, w.data(), rs.data(), r.data(), dx.data(), D, dw.data(), N, D, false);
  EXPECT_TRUE(AllClose(dx, NumGrad(x, loss), 1e-8, 1e-6, "dx"));
  EXPECT_TRUE(AllClose(dw, NumGrad(w, loss), 1e-8, 1e-6, "dw"));
}

TEST(OpsCpuGrad, RopeBackwardBothLayouts) {
  Rng rng(6);
  const I N = 5, H = 2, d = 8;
  std::vector<int32_t> pos = {0, 1, 2, 7, 30};
  std::vector<double> f = {1.0, 0.3, 0.05, 0.001};
  for (bool inter : {true, false}) {
    auto x = RandVec<double>(rng, N * H * d), r = RandVec<double>(rng, N * H * d);
    auto loss = [&] {
      auto y = x;
      ops::Rope(y.data(), N, H, H * d, d, pos.data(), f.data(), d, inter, 1.07, false);
      return Dot(y, r);
    };
    auto dx = r;
    ops::Rope(dx.data(), N, H, H * d, d, pos.data(), f.data(), d, inter, 1.07, true);
    EXPECT_TRUE(AllClose(dx, NumGrad(x, loss), 1e-8, 1e-6, inter ? "interleaved" : "halves"));
  }
}

TEST(OpsCpu, RopeLayoutsGiveTheSameDotProducts) {
  // Interleaved pairs on x equal rotate-half pairs on the de-interleaved x (HF rope_interleave).
  Rng rng(7);
  const I d = 8;
  std::vector<int32_t> p1 = {5}, p2 = {2};
  std::vector<double> f = {1.0, 0.3, 0.05, 0.001};
  auto a = RandVec<double>(rng, d), b = RandVec<double>(rng, d);
  auto deint = [&](const std::vector<double>& v) {
    std::vector<double> o(d);
    for (I j = 0; j < d / 2; ++j) o[j] = v[2 * j], o[j + d / 2] = v[2 * j + 1];
    return o;
  };
  auto ai = a, bi = b, ah = deint(a), bh = deint(b);
  ops::Rope(ai.data(), 1, 1, d, 0, p1.data(), f.data(), d, true, 1.0, false);
  ops::Rope(bi.data(), 1, 1, d, 0, p2.data(), f.data(), d, true, 1.0, false);
  ops::Rope(ah.data(), 1, 1, d, 0, p1.data(), f.data(), d, false, 1.0, false);
  ops::Rope(bh.data(), 1, 1, d, 0, p2.data(), f.data(), d, false, 1.0, false);
  EXPECT_NEAR(Dot(ai, bi), Dot(ah, bh), 1e-12);
  EXPECT_TRUE(AllClose(deint(ai), ah, 1e-12, 1e-12, "layout"));
}

TEST(OpsCpuGrad, SwiGluBackward) {
  Rng rng(8);
  const I n = 11;
  auto g = RandVec<double>(rng, n, 2.0), u = RandVec<double>(rng, n), r = RandVec<double>(rng, n);
  std::vector<double> a(n), dg(n), du(n);
  auto loss = [&] {
    ops::SwiGlu(g.data(), u.data(), a.data(), n);
    return Dot(a, r);
  };
  ops::SwiGluBackward(g.data(), u.data(), r.data(), dg.data(), du.data(), n);
  EXPECT_TRUE(AllClose(dg, NumGrad(g, loss), 1e-8, 1e-6, "dg"));
  EXPECT_TRUE(AllClose(du, NumGrad(u, loss), 1e-8, 1e-6, "du"));
}

TEST(OpsCpuGrad, CausalAttentionBackward) {
  Rng rng(9);
  const I T = 6, dq = 5, dv = 3;
  const double scale = 0.45;
  auto q = RandVec<double>(rng, T * dq), k = RandVec<double>(rng, T * dq), v = RandVec<double>(rng, T * dv);
  auto r = RandVec<double>(rng, T * dv);
  std::vector<double> p(T * T), o(T * dv), dq_(T * dq), dk(T * dq), dvv(T * dv), ds(T * T);
  auto loss = [&] {
    ops::CausalAttention(q.data(), k.data(), v.data(), p.data(), o.data(), T, dq, dv, scale);
    return Dot(o, r);
  };
  loss();
  ops::CausalAttentionBackward(q.data(), k.data(), v.data(), p.data(), r.data(), dq_.data(), dk.data(), dvv.data(),
                               ds.data(), T, dq, dv, scale);
  EXPECT_TRUE(AllClose(dq_, NumGrad(q, loss), 1e-8, 1e-6, "dq"));
  EXPECT_TRUE(AllClose(dk, NumGrad(k, loss), 1e-8, 1e-6, "dk"));
  EXPECT_TRUE(AllClose(dvv, NumGrad(v, loss), 1e-8, 1e-6, "dv"));
}

// A shared prefix (segment parents): a prompt P with continuations C1, C2 in one row computes what
// [P C1] and [P C2] compute as separate rows, and the backward sums the two rows' gradients into P.
TEST(OpsCpuGrad, SharedPrefixAttentionEqualsSeparateCopiesAndFiniteDifferences) {
  Rng rng(21);
  const I P = 4, C1 = 3, C2 = 2, T = P + C1 + C2, dq = 5, dv = 3;
  const double scale = 0.4;
  const std::vector<int32_t> seg{0, 0, 0, 0, 1, 1, 1, 2, 2}, par{-1, -1, -1, -1, 0, 0, 0, 0, 0};
  ASSERT_EQ(ops::CheckSharedPrefix(seg.data(), par.data(), T), "");
  auto q = RandVec<double>(rng, T * dq), k = RandVec<double>(rng, T * dq), v = RandVec<double>(rng, T * dv);
  auto r = RandVec<double>(rng, T * dv);
  std::vector<double> p(T * T), o(T * dv), gq(T * dq), gk(T * dq), gv(T * dv), ds(T * T);
  const double m = ops::CausalAttention(q.data(), k.data(), v.data(), p.data(), o.data(), T, dq, dv, scale, seg.data(),
                                        par.data());
  ops::CausalAttentionBackward(q.data(), k.data(), v.data(), p.data(), r.data(), gq.data(), gk.data(), gv.data(),
                               ds.data(), T, dq, dv, scale, seg.data(), par.data());

  // Separate rows: [P C1] with P's and C1's output gradients, [P C2] with C2's only.
  auto rows = [&](const std::vector<double>& x, I w, I c0, I cn) {  // prefix rows then rows [c0, c0 + cn)
    std::vector<double> out(x.begin(), x.begin() + P * w);
    out.insert(out.end(), x.begin() + c0 * w, x.begin() + (c0 + cn) * w);
    return out;
  };
  double mref = -1e300;
  std::vector<double> sq(T * dq, 0.0), sk(T * dq, 0.0), sv(T * dv, 0.0);
  for (int c = 0; c < 2; ++c) {
    const I c0 = c == 0 ? P : P + C1, cn = c == 0 ? C1 : C2, n = P + cn;
    auto qc = rows(q, dq, c0, cn), kc = rows(k, dq, c0, cn), vc = rows(v, dv, c0, cn), rc = rows(r, dv, c0, cn);
    if (c == 1) std::fill(rc.begin(), rc.begin() + P * dv, 0.0);
    std::vector<double> pc(n * n), oc(n * dv), dqc(n * dq), dkc(n * dq), dvc(n * dv), dsc(n * n);
    mref = std::max(mref, ops::CausalAttention(qc.data(), kc.data(), vc.data(), pc.data(), oc.data(), n, dq, dv, scale));
    ops::CausalAttentionBackward(qc.data(), kc.data(), vc.data(), pc.data(), rc.data(), dqc.data(), dkc.data(),
                                 dvc.data(), dsc.data(), n, dq, dv, scale);
    for (I i = 0; i < n; ++i) {
      const I at = i < P ? i : c0 + (i - P);  // row of the shared layout
      if (i >= P || c == 0) {
        for (I d = 0; d < dv; ++d) EXPECT_NEAR(o[at * dv + d], oc[i * dv + d], 1e-12) << "o row " << at;
      }
      for (I d = 0; d < dq; ++d) sq[at * dq + d] += dqc[i * dq + d], sk[at * dq + d] += dkc[i * dq + d];
      for (I d = 0; d < dv; ++d) sv[at * dv + d] += dvc[i * dv + d];
    }
  }
  EXPECT_NEAR(m, mref, 1e-12);
  EXPECT_TRUE(AllClose(gq, sq, 1e-12, 1e-10, "dq vs copies"));
  EXPECT_TRUE(AllClose(gk, sk, 1e-12, 1e-10, "dk vs copies"));
  EXPECT_TRUE(AllClose(gv, sv, 1e-12, 1e-10, "dv vs copies"));
  // C2's rows never see C1's keys: the saved softmax says so.
  for (I i = P + C1; i < T; ++i)
    for (I j = P; j < P + C1; ++j) EXPECT_EQ(p[i * T + j], 0.0) << "C2 row " << i << " sees C1 key " << j;

  auto loss = [&] {
    ops::CausalAttention(q.data(), k.data(), v.data(), p.data(), o.data(), T, dq, dv, scale, seg.data(), par.data());
    return Dot(o, r);
  };
  EXPECT_TRUE(AllClose(gq, NumGrad(q, loss), 1e-8, 1e-6, "dq"));
  EXPECT_TRUE(AllClose(gk, NumGrad(k, loss), 1e-8, 1e-6, "dk"));
  EXPECT_TRUE(AllClose(gv, NumGrad(v, loss), 1e-8, 1e-6, "dv"));
}

TEST(OpsCpu, SharedPrefixRulesAreChecked) {
  auto why = [](std::vector<int32_t> seg, std::vector<int32_t> par) {
    return ops::CheckSharedPrefix(seg.data(), par.data(), static_cast<I>(seg.size()));
  };
  EXPECT_EQ(why({0, 0, 1, 1, 2}, {-1, -1, 0, 0, 0}), "");
  EXPECT_EQ(why({0, 1, 1}, {-1, -1, -1}), "");
  EXPECT_NE(why({0, 1, 0}, {-1, 0, -1}).find("contiguous"), std::string::npos);
  EXPECT_NE(why({0, 0, 1, 1}, {-1, -1, 0, -1}).find("one parent per segment"), std::string::npos);
  EXPECT_NE(why({0, 0, 1, 1}, {1, 1, -1, -1}).find("does not come before"), std::string::npos);
  EXPECT_NE(why({0, 1, 2}, {-1, 0, 1}).find("one level only"), std::string::npos);
  EXPECT_NE(why({0, 1}, {-1, 1}).find("its own parent"), std::string::npos);
  EXPECT_EQ(ops::CheckSharedPrefix(nullptr, nullptr, 3), "");
}

TEST(OpsCpuGrad, CrossEntropyBackward) {
  Rng rng(10);
  const I N = 4, V = 6;
  auto x = RandVec<double>(rng, N * V);
  std::vector<int32_t> t = {1, 5, 0, 3};
  std::vector<float> w = {1.0f, 0.0f, 2.5f, 0.5f};
  std::vector<double> dx(N * V);
  auto loss = [&] { return ops::CrossEntropy(x.data(), t.data(), w.data(), N, V, static_cast<double*>(nullptr), 0); };
  ops::CrossEntropy(x.data(), t.data(), w.data(), N, V, dx.data(), 1.0);
  EXPECT_TRUE(AllClose(dx, NumGrad(x, loss), 1e-8, 1e-6, "dlogits"));
  for (I v = 0; v < V; ++v) EXPECT_EQ(dx[1 * V + v], 0.0) << "weight-0 token gets no gradient";
}

}  // namespace
}  // namespace k2::engine
