// Exact rationals over a small arbitrary-precision integer, for the math verifier's equivalence test
// (huge integers and long decimals compare exactly, never through a double).
// Values; not thread-shared state. Only what equality needs: parse, multiply, compare, print, approximate.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace k2::rewards {

// Sign-magnitude integer, magnitude in base 1e9 limbs (little-endian), no leading zero limbs;
// zero has an empty magnitude and is never negative.
class BigInt {
 public:
  BigInt() = default;
  explicit BigInt(int64_t v);
  // Decimal digits with an optional leading '-' or '+'; nullopt for anything else or more than
  // kMaxDigits digits (a cap so that adversarial inputs cannot make comparisons quadratic-slow).
  static std::optional<BigInt> FromDecimal(std::string_view s);
  static constexpr size_t kMaxDigits = 4000;

  bool is_zero() const { return mag_.empty(); }
  bool negative() const { return neg_; }
  size_t digits() const;  // decimal digits of |x| (1 for zero)
  std::string ToString() const;
  long double ToLongDouble() const;  // approximate; +-inf beyond the long double range

  friend BigInt operator*(const BigInt& a, const BigInt& b);
  friend BigInt operator+(const BigInt& a, const BigInt& b);
  BigInt operator-() const;
  friend int Compare(const BigInt& a, const BigInt& b);  // -1, 0, 1
  friend bool operator==(const BigInt& a, const BigInt& b) { return Compare(a, b) == 0; }

 private:
  static int CompareMag(const std::vector<uint32_t>& a, const std::vector<uint32_t>& b);
  void Trim();
  bool neg_ = false;
  std::vector<uint32_t> mag_;
};

// num/den with den > 0, not reduced (equality is by cross-multiplication, so no gcd is needed).
struct Rational {
  BigInt num{0}, den{1};
  // Parses "-12", "3.25", ".5", "1e-3", "2.5E+4", "7/8", "-7/8". Returns nullopt on anything else,
  // on a zero denominator, or on an exponent beyond +-kMaxExponent.
  static std::optional<Rational> Parse(std::string_view s);
  static constexpr int kMaxExponent = 1000;
  friend bool operator==(const Rational& a, const Rational& b) { return a.num * b.den == b.num * a.den; }
  Rational operator*(const Rational& o) const { return {num * o.num, den * o.den}; }
  Rational operator/(const Rational& o) const;  // o != 0
  Rational operator+(const Rational& o) const { return {num * o.den + o.num * den, den * o.den}; }
  long double ToLongDouble() const;
  std::string ToString() const { return num.ToString() + "/" + den.ToString(); }
};

}  // namespace k2::rewards
