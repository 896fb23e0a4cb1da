// BigInt (base 1e9 limbs, schoolbook multiply) and Rational parsing for the math verifier.
// Schoolbook is fine: operands are capped at BigInt::kMaxDigits decimal digits.
#include "rewards/rational.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

namespace k2::rewards {

namespace {
constexpr uint32_t kBase = 1000000000u;
}

BigInt::BigInt(int64_t v) {
  neg_ = v < 0;
  // Through unsigned so that INT64_MIN does not overflow.
  uint64_t m = neg_ ? 0 - static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
  while (m) {
    mag_.push_back(static_cast<uint32_t>(m % kBase));
    m /= kBase;
  }
}

void BigInt::Trim() {
  while (!mag_.empty() && mag_.back() == 0) mag_.pop_back();
  if (mag_.empty()) neg_ = false;
}

std::optional<BigInt> BigInt::FromDecimal(std::string_view s) {
  BigInt r;
  size_t i = 0;
  if (i < s.size() && (s[i] == '-' || s[i] == '+')) r.neg_ = s[i++] == '-';
  if (i == s.size() || s.size() - i > kMaxDigits) return std::nullopt;
  for (size_t k = i; k < s.size(); ++k)
    if (s[k] < '0' || s[k] > '9') return std::nullopt;
  // Chunks of 9 digits from the right.
  for (size_t end = s.size(); end > i;) {
    size_t start = end >= i + 9 ? end - 9 : i;
    uint32_t limb = 0;
    for (size_t k = start; k < end; ++k) limb = limb * 10 + static_cast<uint32_t>(s[k] - '0');
    r.mag_.push_back(limb);
    end = start;
  }
  r.Trim();
  return r;
}

size_t BigInt::digits() const {
  if (mag_.empty()) return 1;
  size_t d = (mag_.size() - 1) * 9;
  for (uint32_t top = mag_.back(); top; top /= 10) ++d;
  return d;
}

std::string BigInt::ToString() const {
  if (mag_.empty()) return "0";
  std::string out = neg_ ? "-" : "";
  out += std::to_string(mag_.back());
  for (size_t k = mag_.size() - 1; k-- > 0;) {
    std::string part = std::to_string(mag_[k]);
    out += std::string(9 - part.size(), '0') + part;
  }
  return out;
}

long double BigInt::ToLongDouble() const {
  long double v = 0;
  for (size_t k = mag_.size(); k-- > 0;) v = v * kBase + mag_[k];
  return neg_ ? -v : v;
}

BigInt operator*(const BigInt& a, const BigInt& b) {
  BigInt r;
  if (a.is_zero() || b.is_zero()) return r;
  std::vector<uint64_t> acc(a.mag_.size() + b.mag_.size() + 1, 0);
  for (size_t i = 0; i < a.mag_.size(); ++i) {
    uint64_t carry = 0;
    for (size_t j = 0; j < b.mag_.size(); ++j) {
      uint64_t cur = acc[i + j] + static_cast<uint64_t>(a.mag_[i]) * b.mag_[j] + carry;
      acc[i + j] = cur % kBase;
      carry = cur / kBase;
    }
    for (size_t k = i + b.mag_.size(); carry; ++k) {
      uint64_t cur = acc[k] + carry;
      acc[k] = cur % kBase;
      carry = cur / kBase;
    }
  }
  r.mag_.assign(acc.begin(), acc.end());
  r.neg_ = a.neg_ != b.neg_;
  r.Trim();
  return r;
}

int BigInt::CompareMag(const std::vector<uint32_t>& a, const std::vector<uint32_t>& b) {
  if (a.size() != b.size()) return a.size() < b.size() ? -1 : 1;
  for (size_t k = a.size(); k-- > 0;)
    if (a[k] != b[k]) return a[k] < b[k] ? -1 : 1;
  return 0;
}

BigInt BigInt::operator-() const {
  BigInt r = *this;
  if (!r.is_zero()) r.neg_ = !r.neg_;
  return r;
}

BigInt operator+(const BigInt& a, const BigInt& b) {
  BigInt r;
  if (a.neg_ == b.neg_) {
    r.neg_ = a.neg_;
    uint32_t carry = 0;
    for (size_t k = 0; k < std::max(a.mag_.size(), b.mag_.size()) || carry; ++k) {
      uint64_t cur = carry;
      if (k < a.mag_.size()) cur += a.mag_[k];
      if (k < b.mag_.size()) cur += b.mag_[k];
      r.mag_.push_back(static_cast<uint32_t>(cur % kBase));
      carry = static_cast<uint32_t>(cur / kBase);
    }
  } else {
    // |big| - |small|, sign of the bigger magnitude.
    int c = BigInt::CompareMag(a.mag_, b.mag_);
    if (c == 0) return r;
    const BigInt& big = c > 0 ? a : b;
    const BigInt& small = c > 0 ? b : a;
    r.neg_ = big.neg_;
    int64_t borrow = 0;
    for (size_t k = 0; k < big.mag_.size(); ++k) {
      int64_t cur = static_cast<int64_t>(big.mag_[k]) - borrow - (k < small.mag_.size() ? small.mag_[k] : 0);
      borrow = cur < 0;
      if (cur < 0) cur += kBase;
      r.mag_.push_back(static_cast<uint32_t>(cur));
    }
  }
  r.Trim();
  return r;
}

int Compare(const BigInt& a, const BigInt& b) {
  if (a.neg_ != b.neg_) return a.neg_ ? -1 : 1;
  int m = BigInt::CompareMag(a.mag_, b.mag_);
  return a.neg_ ? -m : m;
}

Rational Rational::operator/(const Rational& o) const {
  Rational r{num * o.den, den * o.num};
  if (r.den.negative()) r = {-r.num, -r.den};
  return r;
}

long double Rational::ToLongDouble() const {
  // Scale both by the same power of ten when they overflow long double separately.
  long double n = num.ToLongDouble(), d = den.ToLongDouble();
  if (std::isfinite(n) && std::isfinite(d)) return n / d;
  long double ln = std::log10(std::fabs(n)) , ld = std::log10(d);
  if (!std::isfinite(ln) || !std::isfinite(ld)) {
    // Go through the digit counts instead: precision is lost but the magnitude is right.
    size_t dn = num.digits(), dd = den.digits();
    std::string sn = num.ToString(), sd = den.ToString();
    bool neg = !sn.empty() && sn[0] == '-';
    if (neg) sn.erase(0, 1);
    long double mn = std::strtold(("0." + sn.substr(0, 30)).c_str(), nullptr);
    long double md = std::strtold(("0." + sd.substr(0, 30)).c_str(), nullptr);
    long double v = mn / md * std::pow(10.0L, static_cast<long double>(dn) - static_cast<long double>(dd));
    return neg ? -v : v;
  }
  return n / d;
}

std::optional<Rational> Rational::Parse(std::string_view s) {
  if (s.empty()) return std::nullopt;
  auto slash = s.find('/');
  if (slash != std::string_view::npos) {
    auto a = Parse(s.substr(0, slash));
    auto b = Parse(s.substr(slash + 1));
    if (!a || !b || b->num.is_zero()) return std::nullopt;
    return *a / *b;
  }
  bool neg = false;
  size_t i = 0;
  if (s[0] == '-' || s[0] == '+') {
    neg = s[0] == '-';
    i = 1;
  }
  std::string digits;
  int64_t exp10 = 0;
  bool seen_digit = false, seen_dot = false;
  for (; i < s.size(); ++i) {
    char c = s[i];
    if (c >= '0' && c <= '9') {
      digits.push_back(c);
      seen_digit = true;
      if (seen_dot) --exp10;
    } else if (c == '.' && !seen_dot) {
      seen_dot = true;
    } else {
      break;
    }
  }
  if (!seen_digit) return std::nullopt;
  if (i < s.size()) {
    if (s[i] != 'e' && s[i] != 'E') return std::nullopt;
    ++i;
    bool eneg = false;
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) eneg = s[i++] == '-';
    if (i == s.size() || s.size() - i > 6) return std::nullopt;
    int64_t e = 0;
    for (; i < s.size(); ++i) {
      if (s[i] < '0' || s[i] > '9') return std::nullopt;
      e = e * 10 + (s[i] - '0');
    }
    exp10 += eneg ? -e : e;
  }
  if (exp10 > kMaxExponent || exp10 < -kMaxExponent) return std::nullopt;
  // Leading zeros would count against the digit cap for nothing.
  size_t nz = digits.find_first_not_of('0');
  digits = nz == std::string::npos ? "0" : digits.substr(nz);
  if (exp10 > 0) digits += std::string(static_cast<size_t>(exp10), '0');
  auto n = BigInt::FromDecimal(digits);
  if (!n) return std::nullopt;
  auto d = BigInt::FromDecimal("1" + std::string(exp10 < 0 ? static_cast<size_t>(-exp10) : 0, '0'));
  if (!d) return std::nullopt;
  return Rational{neg ? -*n : *n, *d};
}

}  // namespace k2::rewards
