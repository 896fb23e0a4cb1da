// Kimi-K2 pre-tokenization by hand: the eight alternatives of the pattern as code, over a code-point
// class table that PCRE2 builds (so the classes are PCRE2's, and only the control flow is ours).
#include "engine/text/kimi_split.h"

#include <cstdint>
#include <mutex>
#include <string>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "core/check.h"

namespace k2::text::detail {

namespace {

enum : uint8_t {
  kHan = 1,    // \p{sc:Han}
  kUpper = 2,  // [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}] and not Han
  kLower = 4,  // [\p{Ll}\p{Lm}\p{Lo}\p{M}] and not Han
  kLetter = 8, // \p{L}
  kNumber = 16,// \p{N}
  kSpace = 32, // \s (UCP)
};

constexpr uint32_t kMaxCp = 0x110000;

void AppendUtf8(uint32_t cp, std::string* s) {
  if (cp < 0x80) {
    s->push_back(char(cp));
  } else if (cp < 0x800) {
    s->push_back(char(0xC0 | (cp >> 6))), s->push_back(char(0x80 | (cp & 63)));
  } else if (cp < 0x10000) {
    s->push_back(char(0xE0 | (cp >> 12))), s->push_back(char(0x80 | ((cp >> 6) & 63))), s->push_back(char(0x80 | (cp & 63)));
  } else {
    s->push_back(char(0xF0 | (cp >> 18))), s->push_back(char(0x80 | ((cp >> 12) & 63)));
    s->push_back(char(0x80 | ((cp >> 6) & 63))), s->push_back(char(0x80 | (cp & 63)));
  }
}

inline uint32_t Decode(const unsigned char* b, size_t* len) {
  unsigned char c = b[0];
  if (c < 0x80) return *len = 1, c;
  if (c < 0xE0) return *len = 2, ((c & 0x1F) << 6) | (b[1] & 0x3F);
  if (c < 0xF0) return *len = 3, ((c & 0x0F) << 12) | ((b[1] & 0x3F) << 6) | (b[2] & 0x3F);
  return *len = 4, ((c & 0x07) << 18) | ((b[1] & 0x3F) << 12) | ((b[2] & 0x3F) << 6) | (b[3] & 0x3F);
}

// flags[cp] for every code point, classified by PCRE2 with the same class expressions the translated
// pattern uses: one scan per class over a string of all scalar values in order.
const uint8_t* Table() {
  static uint8_t* table = nullptr;
  static std::once_flag once;
  std::call_once(once, [] {
    table = new uint8_t[kMaxCp]();
    std::string all;
    all.reserve(4 * kMaxCp);
    for (uint32_t cp = 0; cp < kMaxCp; ++cp)
      if (cp < 0xD800 || cp > 0xDFFF) AppendUtf8(cp, &all);
    // Runs are capped at 512 characters: an unbounded repeat of a group would need JIT stack in
    // proportion to the run (11,172 Hangul syllables in a row overflow it).
    const std::pair<const char*, uint8_t> kClasses[] = {
        {R"(\p{sc:Han}{1,512})", kHan},
        {R"((?:(?=[^\p{sc:Han}])[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]){1,512})", kUpper},
        {R"((?:(?=[^\p{sc:Han}])[\p{Ll}\p{Lm}\p{Lo}\p{M}]){1,512})", kLower},
        {R"(\p{L}{1,512})", kLetter},
        {R"(\p{N}{1,512})", kNumber},
        {R"(\s{1,512})", kSpace}};
    for (auto& [pat, flag] : kClasses) {
      int err = 0;
      PCRE2_SIZE off = 0;
      pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pat), PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP,
                                       &err, &off, nullptr);
      K2_CHECK(code != nullptr) << "class pattern " << pat << " does not compile";
      (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
      pcre2_match_data* md = pcre2_match_data_create_from_pattern(code, nullptr);
      const auto* s = reinterpret_cast<const unsigned char*>(all.data());
      size_t pos = 0;
      while (pos < all.size()) {
        int rc = pcre2_match(code, s, all.size(), pos, PCRE2_NO_UTF_CHECK, md, nullptr);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        K2_CHECK(rc >= 0) << "PCRE2 error " << rc << " while classifying code points with " << pat;
        PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
        for (size_t i = ov[0]; i < ov[1];) {
          size_t len;
          table[Decode(s + i, &len)] |= flag;
          i += len;
        }
        pos = ov[1] > ov[0] ? ov[1] : ov[0] + 1;
      }
      pcre2_match_data_free(md);
      pcre2_code_free(code);
    }
  });
  return table;
}

class Splitter {
 public:
  Splitter(std::string_view text, const uint8_t* t, int max_digits)
      : b_(reinterpret_cast<const unsigned char*>(text.data())), n_(text.size()), t_(t), max_digits_(max_digits) {}

  // End of the piece that starts at p (> p: every character starts some alternative).
  size_t MatchAt(size_t p) const {
    size_t len;
    uint32_t c = Decode(b_ + p, &len);
    uint8_t f = t_[c];
    // 1: [\p{Han}]+
    if (f & kHan) return Run(p, kHan);
    // 2 and 3: [^\r\n\p{L}\p{N}]? then the letter bodies; the optional prefix is tried first, then
    // skipped (the regex backtracks into it) before moving on to the next alternative.
    bool prefix = c != '\r' && c != '\n' && !(f & (kLetter | kNumber));
    size_t e;
    if (prefix && (e = Alt2Body(p + len)) != 0) return e;
    if ((e = Alt2Body(p)) != 0) return e;
    if (prefix && (e = Alt3Body(p + len)) != 0) return e;
    if ((e = Alt3Body(p)) != 0) return e;
    // 4: \p{N}{1,3} (\p{N} in the digit-splitting variant)
    if (f & kNumber) {
      size_t q = p + len;
      for (int k = 1; k < max_digits_ && q < n_ && (Flags(q) & kNumber); ++k) q = Next(q);
      return q;
    }
    // 5: " ?[^\s\p{L}\p{N}]+[\r\n]*"
    if (c == ' ' && p + 1 < n_ && IsOther(p + 1)) return Newlines(Run(p + 1, 0, /*other=*/true));
    if (IsOther(p)) return Newlines(Run(p, 0, /*other=*/true));
    // Only whitespace is left (every other character started an alternative above).
    size_t w = Run(p, kSpace);
    if (w == p) return p + len;  // unreachable with PCRE2's classes; never loop or step back past p
    // 6: \s*[\r\n]+ : \s* backtracks to the last \r or \n of the run; [\r\n]+ takes it (the next char,
    // if any in the run, is not \r or \n).
    for (size_t q = w; q > p;) {
      q = Prev(q);
      if (b_[q] == '\r' || b_[q] == '\n') return q + 1;
    }
    // 7: \s+(?!\S): the whole run at the end of text, else all but its last character.
    if (w == n_) return w;
    size_t last = Prev(w);
    if (last > p) return last;
    // 8: \s+
    return w;
  }

 private:
  uint8_t Flags(size_t p) const {
    size_t len;
    return t_[Decode(b_ + p, &len)];
  }
  size_t Next(size_t p) const {
    size_t len;
    Decode(b_ + p, &len);
    return p + len;
  }
  size_t Prev(size_t p) const {
    do --p;
    while ((b_[p] & 0xC0) == 0x80);
    return p;
  }
  bool IsOther(size_t p) const { return !(Flags(p) & (kSpace | kLetter | kNumber)); }
  // End of the run of characters with `flag` (or, with other, of [^\s\p{L}\p{N}]) from p.
  size_t Run(size_t p, uint8_t flag, bool other = false) const {
    while (p < n_ && (other ? IsOther(p) : (Flags(p) & flag) != 0)) p = Next(p);
    return p;
  }
  size_t Newlines(size_t p) const {
    while (p < n_ && (b_[p] == '\r' || b_[p] == '\n')) ++p;
    return p;
  }
  // (?i:'s|'t|'re|'ve|'m|'ll|'d)? at p: end after it, or p. PCRE2's caseless 's' also matches U+017F.
  size_t Contraction(size_t p) const {
    if (p >= n_ || b_[p] != '\'') return p;
    auto is = [&](size_t q, char lower) { return q < n_ && (b_[q] | 0x20) == lower; };
    size_t q = p + 1;
    if (q + 1 < n_ && b_[q] == 0xC5 && b_[q + 1] == 0xBF) return q + 2;  // ſ
    if (is(q, 's') || is(q, 't') || is(q, 'm') || is(q, 'd')) return q + 1;
    if (is(q, 'r') && is(q + 1, 'e')) return q + 2;
    if (is(q, 'v') && is(q + 1, 'e')) return q + 2;
    if (is(q, 'l') && is(q + 1, 'l')) return q + 2;
    return p;
  }
  // [U]*[Lw]+ contraction? from q; 0 when it does not match. U* is greedy and gives back characters
  // one at a time until Lw+ can start.
  size_t Alt2Body(size_t q) const {
    if (q >= n_) return 0;
    size_t u = Run(q, kUpper);
    for (size_t x = u;; x = Prev(x)) {
      if (x < n_ && (Flags(x) & kLower)) return Contraction(Run(x, kLower));
      if (x == q) return 0;
    }
  }
  // [U]+[Lw]* contraction? from q; 0 when it does not match (Lw* may be empty, so no backtracking).
  size_t Alt3Body(size_t q) const {
    if (q >= n_ || !(Flags(q) & kUpper)) return 0;
    return Contraction(Run(Run(q, kUpper), kLower));
  }

  const unsigned char* b_;
  size_t n_;
  const uint8_t* t_;
  int max_digits_;
};

}  // namespace

void KimiSplitValid(std::string_view text, std::vector<std::string_view>* out, int max_digits) {
  K2_CHECK(max_digits >= 1) << "max_digits " << max_digits;
  Splitter s(text, Table(), max_digits);
  size_t p = 0;
  while (p < text.size()) {
    size_t e = s.MatchAt(p);
    K2_CHECK(e > p && e <= text.size()) << "Kimi splitter made no progress at byte " << p;
    out->push_back(text.substr(p, e - p));
    p = e;
  }
}

}  // namespace k2::text::detail
