// Rng: determinism, forks, ranges, state round trip.
#include "core/rng.h"

#include <gtest/gtest.h>

#include <set>

namespace k2 {
namespace {

TEST(Rng, SameSeedSameStreamOtherSeedOther) {
  Rng a(42), b(42), c(43);
  for (int i = 0; i < 100; ++i) {
    uint64_t x = a.Next();
    EXPECT_EQ(x, b.Next());
    EXPECT_NE(x, c.Next());
  }
}

TEST(Rng, ForksAreIndependentAndReproducible) {
  Rng base(7);
  EXPECT_EQ(base.Fork(1).Next(), Rng(7).Fork(1).Next());
  EXPECT_NE(base.Fork(1).Next(), base.Fork(2).Next());
  EXPECT_EQ(base.Fork("env").Next(), Rng(7).Fork("env").Next());
}

TEST(Rng, BelowAndRangeStayInBoundsAndCoverThem) {
  Rng r(1);
  std::set<int64_t> seen;
  for (int i = 0; i < 10000; ++i) {
    int64_t v = r.Range(-3, 3);
    ASSERT_GE(v, -3);
    ASSERT_LE(v, 3);
    seen.insert(v);
    double u = r.Uniform();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
  }
  EXPECT_EQ(seen.size(), 7u);
}

TEST(Rng, NormalHasUnitMoments) {
  Rng r(3);
  double s = 0, s2 = 0;
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    double x = r.Normal();
    s += x;
    s2 += x * x;
  }
  EXPECT_NEAR(s / n, 0.0, 0.01);
  EXPECT_NEAR(s2 / n, 1.0, 0.02);
}

TEST(Rng, StateRoundTripResumesStream) {
  Rng a(9);
  for (int i = 0; i < 10; ++i) a.Next();
  auto st = a.state();
  uint64_t expect = a.Next();
  Rng b(0);
  b.set_state(st);
  EXPECT_EQ(b.Next(), expect);
}

}  // namespace
}  // namespace k2
