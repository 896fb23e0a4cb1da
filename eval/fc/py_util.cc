// Python behaviour that BFCL's classes depend on: random.Random (MT19937 seeded as CPython seeds it from
// an int; randint, getrandbits, random, uniform), the generator kept in a class's JSON state, round(),
// and strptime for the date formats the classes parse.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "eval/fc/method.h"

namespace k2::eval::fc {

PyRandom::PyRandom(uint64_t seed) {
  // init_genrand(19650218) then init_by_array(key) with the 32-bit words of the seed (CPython).
  mt_[0] = 19650218U;
  for (uint32_t i = 1; i < 624; ++i) mt_[i] = 1812433253U * (mt_[i - 1] ^ (mt_[i - 1] >> 30)) + i;
  std::vector<uint32_t> key;
  for (uint64_t s = seed; s; s >>= 32) key.push_back(static_cast<uint32_t>(s & 0xffffffffU));
  if (key.empty()) key.push_back(0);
  uint32_t i = 1, j = 0;
  for (size_t k = std::max<size_t>(624, key.size()); k; --k) {
    mt_[i] = (mt_[i] ^ ((mt_[i - 1] ^ (mt_[i - 1] >> 30)) * 1664525U)) + key[j] + j;
    ++i;
    ++j;
    if (i >= 624) {
      mt_[0] = mt_[623];
      i = 1;
    }
    if (j >= key.size()) j = 0;
  }
  for (size_t k = 623; k; --k) {
    mt_[i] = (mt_[i] ^ ((mt_[i - 1] ^ (mt_[i - 1] >> 30)) * 1566083941U)) - i;
    ++i;
    if (i >= 624) {
      mt_[0] = mt_[623];
      i = 1;
    }
  }
  mt_[0] = 0x80000000U;
}

uint32_t PyRandom::Next32() {
  if (index_ >= 624) {
    for (int k = 0; k < 624; ++k) {
      uint32_t y = (mt_[k] & 0x80000000U) | (mt_[(k + 1) % 624] & 0x7fffffffU);
      mt_[k] = mt_[(k + 397) % 624] ^ (y >> 1) ^ ((y & 1U) ? 0x9908b0dfU : 0U);
    }
    index_ = 0;
  }
  ++used_;
  uint32_t y = mt_[index_++];
  y ^= y >> 11;
  y ^= (y << 7) & 0x9d2c5680U;
  y ^= (y << 15) & 0xefc60000U;
  y ^= y >> 18;
  return y;
}

uint64_t PyRandom::GetRandBits(int k) {
  if (k <= 32) return Next32() >> (32 - k);
  uint64_t out = 0;
  for (int shift = 0; k > 0; shift += 32, k -= 32) {
    uint64_t r = Next32();
    if (k < 32) r >>= (32 - k);
    out |= r << shift;
  }
  return out;
}

int64_t PyRandom::RandInt(int64_t a, int64_t b) {
  // randrange(a, b + 1) = a + _randbelow(n): getrandbits(n.bit_length()) until below n.
  uint64_t n = static_cast<uint64_t>(b - a + 1);
  int bits = 0;
  for (uint64_t x = n; x; x >>= 1) ++bits;
  uint64_t r;
  do r = GetRandBits(bits);
  while (r >= n);
  return a + static_cast<int64_t>(r);
}

double PyRandom::Random() {
  double a = Next32() >> 5, b = Next32() >> 6;
  return (a * 67108864.0 + b) * (1.0 / 9007199254740992.0);
}

PyRandom Rng(const json& st) {
  PyRandom r(st.value("_random_seed", uint64_t{0}));
  uint64_t used = st.value("_random_used", uint64_t{0});
  for (uint64_t i = 0; i < used; ++i) r.Next32();
  return r;
}

void SaveRng(json& st, const PyRandom& rng) { st["_random_used"] = rng.used(); }

double PyRound(double x, int ndigits) {
  // printf rounds the exact binary value correctly (ties to even), as CPython's round does.
  char buf[512];
  std::snprintf(buf, sizeof buf, "%.*f", ndigits, x);
  return std::strtod(buf, nullptr);
}

namespace {

// Up to `max` digits at s[i]; at least one.
bool Digits(const std::string& s, size_t& i, int min, int max, int& out) {
  size_t b = i;
  out = 0;
  while (i < s.size() && i - b < static_cast<size_t>(max) && s[i] >= '0' && s[i] <= '9') out = out * 10 + (s[i++] - '0');
  return i - b >= static_cast<size_t>(min);
}

bool Lit(const std::string& s, size_t& i, char c) { return i < s.size() && s[i++] == c; }

}  // namespace

bool PyStrptime(const std::string& s, bool with_time, int out[6]) {
  size_t i = 0;
  for (int k = 0; k < 6; ++k) out[k] = 0;
  // %Y four digits; %m, %d, %H, %M, %S one or two.
  if (!Digits(s, i, 4, 4, out[0]) || !Lit(s, i, '-') || !Digits(s, i, 1, 2, out[1]) || !Lit(s, i, '-') || !Digits(s, i, 1, 2, out[2]))
    return false;
  if (with_time && (!Lit(s, i, ' ') || !Digits(s, i, 1, 2, out[3]) || !Lit(s, i, ':') || !Digits(s, i, 1, 2, out[4]) ||
                    !Lit(s, i, ':') || !Digits(s, i, 1, 2, out[5])))
    return false;
  if (i != s.size()) return false;
  static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  int y = out[0], m = out[1], d = out[2];
  if (y < 1 || m < 1 || m > 12 || d < 1) return false;
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  if (d > kDays[m - 1] + (m == 2 && leap ? 1 : 0)) return false;
  return out[3] <= 23 && out[4] <= 59 && out[5] <= 59;
}

}  // namespace k2::eval::fc

namespace k2::eval::fc {

std::string PyRepr(const std::string& s) {
  // Python picks double quotes when the text has a single quote and no double quote.
  char q = s.find('\'') != std::string::npos && s.find('"') == std::string::npos ? '"' : '\'';
  std::string out(1, q);
  for (char c : s) {
    if (c == '\\' || c == q) out += '\\';
    if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else out += c;
  }
  return out + q;
}

bool IsIntKey(const std::string& k) { return !k.empty() && k.size() <= 18 && k.find_first_not_of("0123456789") == std::string::npos; }

std::string IdKey(const json& id) {
  if (id.is_number_integer()) return std::to_string(id.get<int64_t>());
  if (id.is_number_float()) {
    double d = id.get<double>();
    if (std::trunc(d) == d && std::fabs(d) < 9e15) return std::to_string(static_cast<int64_t>(d));
  }
  return "";
}

std::vector<std::string> IntKeyOrder(const json& object) {
  std::vector<std::string> keys;
  for (auto& [k, v] : object.items()) keys.push_back(k);
  std::stable_sort(keys.begin(), keys.end(), [](const std::string& a, const std::string& b) {
    bool ia = IsIntKey(a), ib = IsIntKey(b);
    if (ia != ib) return ia;
    if (ia) return std::stoll(a) < std::stoll(b);
    return a < b;
  });
  return keys;
}

std::string PyKeyList(const json& object, bool int_keys) {
  std::string out = "[";
  bool first = true;
  std::vector<std::string> keys;
  if (int_keys) {
    keys = IntKeyOrder(object);
  } else {
    for (auto& [k, v] : object.items()) keys.push_back(k);
  }
  for (auto& k : keys) {
    bool digits = int_keys && IsIntKey(k);
    out += (first ? "" : ", ") + (digits ? k : PyRepr(k));
    first = false;
  }
  return out + "]";
}


namespace {

// Python's repr of a float (and json.dumps's, except for the non-finite values).
std::string FloatRepr(double d, bool json_style) {
  if (std::isnan(d)) return json_style ? "NaN" : "nan";
  if (std::isinf(d)) return d > 0 ? (json_style ? "Infinity" : "inf") : (json_style ? "-Infinity" : "-inf");
  return json(d).dump();  // shortest round trip, "1e+16" / "1e-05" / "2.0" as Python writes them
}

// The code points of UTF-8 text (an invalid byte reads as U+FFFD).
std::vector<uint32_t> CodePoints(const std::string& s) {
  std::vector<uint32_t> out;
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    int n = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : -1;
    uint32_t cp = n == 0 ? c : n == 1 ? (c & 0x1f) : n == 2 ? (c & 0x0f) : (c & 0x07);
    bool ok = n >= 0 && i + static_cast<size_t>(n) < s.size() + (n == 0 ? 1 : 0);
    for (int k = 1; ok && k <= n; ++k) {
      unsigned char d = static_cast<unsigned char>(s[i + static_cast<size_t>(k)]);
      ok = (d >> 6) == 2;
      cp = (cp << 6) | (d & 0x3f);
    }
    if (!ok) {
      out.push_back(0xfffd);
      ++i;
      continue;
    }
    out.push_back(cp);
    i += static_cast<size_t>(n) + 1;
  }
  return out;
}

void JsonString(const std::string& s, std::string& out) {
  out += '"';
  char buf[16];
  for (uint32_t cp : CodePoints(s)) {
    switch (cp) {
      case '"': out += "\\\""; continue;
      case '\\': out += "\\\\"; continue;
      case '\n': out += "\\n"; continue;
      case '\r': out += "\\r"; continue;
      case '\t': out += "\\t"; continue;
      case '\b': out += "\\b"; continue;
      case '\f': out += "\\f"; continue;
      default: break;
    }
    if (cp >= 0x20 && cp <= 0x7e) {
      out += static_cast<char>(cp);
    } else if (cp < 0x10000) {
      std::snprintf(buf, sizeof buf, "\\u%04x", cp);
      out += buf;
    } else {  // a surrogate pair, as ensure_ascii writes it
      uint32_t v = cp - 0x10000;
      std::snprintf(buf, sizeof buf, "\\u%04x", 0xd800 + (v >> 10));
      out += buf;
      std::snprintf(buf, sizeof buf, "\\u%04x", 0xdc00 + (v & 0x3ff));
      out += buf;
    }
  }
  out += '"';
}

void Dumps(const json& v, std::string& out) {
  if (v.is_object()) {
    out += '{';
    bool first = true;
    for (auto& [k, x] : v.items()) {
      if (!first) out += ", ";
      first = false;
      JsonString(k, out);
      out += ": ";
      Dumps(x, out);
    }
    out += '}';
  } else if (v.is_array()) {
    out += '[';
    for (size_t i = 0; i < v.size(); ++i) {
      if (i) out += ", ";
      Dumps(v[i], out);
    }
    out += ']';
  } else if (v.is_string()) {
    JsonString(v.get_ref<const std::string&>(), out);
  } else if (v.is_number_float()) {
    out += FloatRepr(v.get<double>(), true);
  } else {
    out += v.dump();  // ints, true / false, null
  }
}

void Repr(const json& v, std::string& out) {
  if (v.is_object()) {
    out += '{';
    bool first = true;
    for (auto& [k, x] : v.items()) {
      if (!first) out += ", ";
      first = false;
      out += PyRepr(k) + ": ";
      Repr(x, out);
    }
    out += '}';
  } else if (v.is_array()) {
    out += '[';
    for (size_t i = 0; i < v.size(); ++i) {
      if (i) out += ", ";
      Repr(v[i], out);
    }
    out += ']';
  } else if (v.is_string()) {
    out += PyRepr(v.get<std::string>());
  } else if (v.is_number_float()) {
    out += FloatRepr(v.get<double>(), false);
  } else {
    out += PyStr(v);
  }
}

}  // namespace

std::string PyJsonDumps(const json& v) {
  std::string out;
  Dumps(v, out);
  return out;
}

std::string PyStrValue(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  std::string out;
  Repr(v, out);
  return out;
}

}  // namespace k2::eval::fc
