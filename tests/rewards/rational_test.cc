// BigInt/Rational against __int128 (the slow, obviously right reference) on seeded random operands,
// plus parsing edge cases. Pins: exact equality beyond double precision, digit caps, zero handling.
#include "rewards/rational.h"

#include <gtest/gtest.h>

#include "core/rng.h"

namespace k2::rewards {
namespace {

std::string I128ToString(__int128 v) {
  if (v == 0) return "0";
  bool neg = v < 0;
  unsigned __int128 m = neg ? -static_cast<unsigned __int128>(v) : static_cast<unsigned __int128>(v);
  std::string s;
  while (m) {
    s.insert(s.begin(), static_cast<char>('0' + static_cast<int>(m % 10)));
    m /= 10;
  }
  return neg ? "-" + s : s;
}

TEST(BigInt, MultiplyAddCompareMatchInt128) {
  Rng rng(1234);
  for (int it = 0; it < 5000; ++it) {
    int64_t a = static_cast<int64_t>(rng.Next() >> rng.Below(63)) * (rng.Bernoulli(0.5) ? -1 : 1);
    int64_t b = static_cast<int64_t>(rng.Next() >> rng.Below(63)) * (rng.Bernoulli(0.5) ? -1 : 1);
    BigInt x(a), y(b);
    EXPECT_EQ((x * y).ToString(), I128ToString(static_cast<__int128>(a) * b)) << a << " * " << b;
    EXPECT_EQ((x + y).ToString(), I128ToString(static_cast<__int128>(a) + b)) << a << " + " << b;
    EXPECT_EQ(Compare(x, y), a < b ? -1 : a > b ? 1 : 0);
    auto parsed = BigInt::FromDecimal(std::to_string(a));
    ASSERT_TRUE(parsed.has_value());
    EXPECT_EQ(Compare(*parsed, x), 0);
  }
}

TEST(BigInt, Int64MinAndZero) {
  EXPECT_EQ(BigInt(INT64_MIN).ToString(), "-9223372036854775808");
  EXPECT_EQ(BigInt(0).ToString(), "0");
  EXPECT_FALSE((-BigInt(0)).negative());
  EXPECT_EQ((BigInt(5) + BigInt(-5)).ToString(), "0");
}

TEST(BigInt, RejectsNonDigitsAndOverCap) {
  EXPECT_FALSE(BigInt::FromDecimal("12a").has_value());
  EXPECT_FALSE(BigInt::FromDecimal("").has_value());
  EXPECT_FALSE(BigInt::FromDecimal("-").has_value());
  EXPECT_FALSE(BigInt::FromDecimal(std::string(BigInt::kMaxDigits + 1, '7')).has_value());
  EXPECT_TRUE(BigInt::FromDecimal(std::string(BigInt::kMaxDigits, '7')).has_value());
}

TEST(Rational, ParsesDecimalsExponentsAndFractions) {
  auto eq = [](const char* a, const char* b) {
    auto x = Rational::Parse(a), y = Rational::Parse(b);
    return x && y && *x == *y;
  };
  EXPECT_TRUE(eq("0.5", "1/2"));
  EXPECT_TRUE(eq(".25", "1/4"));
  EXPECT_TRUE(eq("2.5E+4", "25000"));
  EXPECT_TRUE(eq("1e-3", "1/1000"));
  EXPECT_TRUE(eq("-7/8", "-0.875"));
  EXPECT_TRUE(eq("6/8", "3/4"));
  EXPECT_FALSE(eq("0.3333333333", "1/3"));
  EXPECT_FALSE(Rational::Parse("1/0").has_value());
  EXPECT_FALSE(Rational::Parse("1e100000").has_value());
  EXPECT_FALSE(Rational::Parse("abc").has_value());
  // Two integers equal as doubles but not exactly.
  EXPECT_FALSE(eq("123456789012345678901234567891", "123456789012345678901234567890"));
}

TEST(Rational, ToLongDoubleApproximates) {
  EXPECT_NEAR(static_cast<double>(Rational::Parse("1/3")->ToLongDouble()), 1.0 / 3, 1e-15);
  EXPECT_NEAR(static_cast<double>(Rational::Parse("-2.5e10")->ToLongDouble()), -2.5e10, 1);
}

}  // namespace
}  // namespace k2::rewards
