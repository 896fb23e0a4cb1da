// Value variants of a dialog (see value_variants.h).
#include "sft/value_variants.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/rng.h"
#include "sft/copy_dialogs.h"

namespace k2::sft {
namespace {

bool Digit(char c) { return c >= '0' && c <= '9'; }
bool Upper(char c) { return c >= 'A' && c <= 'Z'; }
bool Alnum(char c) { return Digit(c) || Upper(c) || (c >= 'a' && c <= 'z'); }
bool LocalChar(char c) { return Alnum(c) || c == '.' || c == '_' || c == '+' || c == '-'; }
bool DomainChar(char c) { return Alnum(c) || c == '.' || c == '-'; }

// Fewest decimals that write v exactly (up to 6).
int MinDecimals(double v) {
  for (int d = 0; d < 6; ++d) {
    const double s = v * std::pow(10.0, d);
    if (std::fabs(s - std::round(s)) < 1e-6) return d;
  }
  return 6;
}

std::string Fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

class Replacer {
 public:
  Replacer(uint64_t seed, std::vector<double> thresholds) : r_(seed), thr_(std::move(thresholds)) {
    std::sort(thr_.begin(), thr_.end());
  }

  std::string Apply(const std::string& s) {
    std::string out;
    out.reserve(s.size());
    const size_t n = s.size();
    size_t i = 0;
    while (i < n) {
      const char c = s[i], prev = i ? s[i - 1] : ' ';
      if (LocalChar(c) && !LocalChar(prev)) {  // an email: local part '@' domain with a dot
        size_t j = i;
        while (j < n && LocalChar(s[j])) ++j;
        if (j < n && s[j] == '@' && j > i) {
          size_t e = j + 1;
          while (e < n && DomainChar(s[e])) ++e;
          while (e > j + 1 && (s[e - 1] == '.' || s[e - 1] == '-')) --e;
          const std::string dom = s.substr(j + 1, e - j - 1);
          if (dom.find('.') != std::string::npos) {
            out += Email(s.substr(i, e - i), dom);
            i = e;
            continue;
          }
        }
      }
      if (Upper(c) && !Alnum(prev) && prev != '-') {  // an id: 2-5 capitals, '-', 3-8 digits
        size_t j = i;
        while (j < n && Upper(s[j])) ++j;
        if (j - i >= 2 && j - i <= 5 && j < n && s[j] == '-') {
          size_t k = j + 1;
          while (k < n && Digit(s[k])) ++k;
          if (k - j - 1 >= 3 && k - j - 1 <= 8 && (k == n || !Alnum(s[k]))) {
            out += Id(s.substr(i, k - i), j - i + 1, k - j - 1);
            i = k;
            continue;
          }
        }
      }
      if (Digit(c)) {
        size_t j = i;
        while (j < n && Digit(s[j])) ++j;
        const bool starts = !Alnum(prev) && prev != '.' && prev != '-';
        if (starts && j + 1 < n && s[j] == '.' && Digit(s[j + 1]) && j - i <= 12) {  // a decimal
          size_t k = j + 1;
          while (k < n && Digit(s[k])) ++k;
          const bool ends = k == n || (!Alnum(s[k]) && !(s[k] == '.' && k + 1 < n && Digit(s[k + 1])));
          if (ends) {
            out += Number(s.substr(i, k - i), static_cast<int>(k - j - 1));
            i = k;
            continue;
          }
        }
        out.append(s, i, j - i);  // an integer or part of something else: kept, digits not re-tested
        i = j;
        continue;
      }
      out += c;
      ++i;
    }
    return out;
  }

 private:
  std::string Email(const std::string& orig, const std::string& domain) {
    auto it = emails_.find(orig);
    if (it != emails_.end()) return it->second;
    std::string e;
    do e = RandomEmailLocal(r_) + "@" + domain;
    while (e == orig || !used_.insert(e).second);
    return emails_[orig] = e;
  }

  std::string Id(const std::string& orig, size_t prefix_len, size_t digits) {
    auto it = ids_.find(orig);
    if (it != ids_.end()) return it->second;
    std::string id;
    do {
      id = orig.substr(0, prefix_len);
      id += static_cast<char>('1' + r_.Below(9));
      for (size_t d = 1; d < digits; ++d) id += static_cast<char>('0' + r_.Below(10));
    } while (id == orig || !used_.insert(id).second);
    return ids_[orig] = id;
  }

  // A new value of the same number of decimals (last one non-zero), in the same interval between the
  // system message's numbers; the original when the interval has no other such value.
  std::string Number(const std::string& text, int decimals) {
    const double v = std::strtod(text.c_str(), nullptr);
    auto it = nums_.find(v);
    if (it != nums_.end()) return Fixed(it->second, decimals);
    double x = v;
    if (!std::binary_search(thr_.begin(), thr_.end(), v)) {
      auto up = std::upper_bound(thr_.begin(), thr_.end(), v);
      const double lo = up == thr_.begin() ? 0.0 : *(up - 1);
      const double hi = up == thr_.end() ? std::max(2.0 * v, v + 10.0) : *up;
      const int d = MinDecimals(v);
      const double unit = std::pow(10.0, -d);
      for (int t = 0; t < 64; ++t) {
        int64_t k = std::llround(r_.Uniform(lo, hi) / unit);
        if (d > 0 && k % 10 == 0) ++k;
        const double y = static_cast<double>(k) * unit;
        if (y > lo && y < hi && y != v && !used_num_.count(y)) {
          x = y;
          break;
        }
      }
    }
    used_num_.insert(x);
    nums_[v] = x;
    return Fixed(x, decimals);
  }

  Rng r_;
  std::vector<double> thr_;
  std::map<std::string, std::string> emails_, ids_;
  std::set<std::string> used_;
  std::map<double, double> nums_;
  std::set<double> used_num_;
};

// Every number written in the text, integers and decimals, except the parts of dates and ids (digit
// runs joined to others by '-', as in "2026-10-20"): a rule's limit, not today's day of the month.
void Numbers(const std::string& s, std::vector<double>* out) {
  for (size_t i = 0; i < s.size();) {
    if (!Digit(s[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < s.size() && Digit(s[j])) ++j;
    if (j + 1 < s.size() && s[j] == '.' && Digit(s[j + 1]))
      for (++j; j < s.size() && Digit(s[j]);) ++j;
    const bool joined = (i >= 2 && s[i - 1] == '-' && Digit(s[i - 2])) || (j + 1 < s.size() && s[j] == '-' && Digit(s[j + 1]));
    if (!joined) out->push_back(std::strtod(s.substr(i, j - i).c_str(), nullptr));
    i = j;
  }
}

}  // namespace

Dialog ValueVariant(const Dialog& d, uint64_t seed) {
  std::vector<double> thresholds;
  for (const auto& m : d.messages)
    if (m.role == "system") Numbers(m.content, &thresholds);
  Replacer rep(seed, std::move(thresholds));
  Dialog out = d;
  out.id += "#v" + std::to_string(seed);
  for (auto& m : out.messages) {
    m.content = rep.Apply(m.content);
    for (auto& c : m.tool_calls) c.arguments = rep.Apply(c.arguments);
  }
  return out;
}

}  // namespace k2::sft
