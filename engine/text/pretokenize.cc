// PCRE2-backed pre-tokenizer and the translation of tiktoken's class intersections into lookaheads.
// The pattern is compiled once (JIT when available); matching allocates only its match data.
#include "engine/text/pretokenize.h"

#include "engine/text/kimi_split.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

namespace k2::text {

// Kimi-K2's pattern (tokenization_kimi.py) around its number alternative, which the two patterns differ in.
#define K2_KIMI_PATTERN_HEAD                                                                                         \
  R"([\p{Han}]+)"                                                                                                     \
  R"(|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]*[\p{Ll}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?)" \
  R"(|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]+[\p{Ll}\p{Lm}\p{Lo}\p{M}&&[^\p{Han}]]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?)"
#define K2_KIMI_PATTERN_TAIL R"(| ?[^\s\p{L}\p{N}]+[\r\n]*)" R"(|\s*[\r\n]+)" R"(|\s+(?!\S))" R"(|\s+)"

const char* const kKimiPattern = K2_KIMI_PATTERN_HEAD R"(|\p{N}{1,3})" K2_KIMI_PATTERN_TAIL;
// One digit per piece (as LLaMA's tokenizer splits numbers): every number is a run of the ten digit tokens
// instead of rare 1-3 digit tokens (small models must copy ids and amounts).
const char* const kKimiDigitPattern = K2_KIMI_PATTERN_HEAD R"(|\p{N})" K2_KIMI_PATTERN_TAIL;

#undef K2_KIMI_PATTERN_HEAD
#undef K2_KIMI_PATTERN_TAIL

namespace {

// Scans the class starting at pattern[open] == '[' and returns the index of its closing ']', or npos.
// Handles escapes, nested classes and POSIX [:name:] items; a ']' right after '[' or '[^' is literal.
size_t ClassEnd(std::string_view p, size_t open) {
  size_t i = open + 1;
  if (i < p.size() && p[i] == '^') ++i;
  if (i < p.size() && p[i] == ']') ++i;
  while (i < p.size()) {
    char c = p[i];
    if (c == '\\') {
      i += 2;
    } else if (c == '[' && i + 1 < p.size() && p[i + 1] == ':') {
      size_t e = p.find(":]", i + 2);
      if (e == std::string_view::npos) return std::string_view::npos;
      i = e + 2;
    } else if (c == '[') {
      size_t e = ClassEnd(p, i);
      if (e == std::string_view::npos) return e;
      i = e + 1;
    } else if (c == ']') {
      return i;
    } else {
      ++i;
    }
  }
  return std::string_view::npos;
}

// Splits the body of a class (between its brackets) at top-level "&&".
std::vector<std::string_view> SplitIntersection(std::string_view body) {
  std::vector<std::string_view> ops;
  size_t start = 0, i = 0;
  while (i < body.size()) {
    char c = body[i];
    if (c == '\\') {
      i += 2;
    } else if (c == '[') {
      // Nested class (or POSIX item): skip it whole.
      size_t e = (i + 1 < body.size() && body[i + 1] == ':') ? body.find(":]", i + 2) : ClassEnd(body, i);
      if (e == std::string_view::npos) break;  // unreachable: the outer scan checked the balance
      i = e + (body[e] == ':' ? 2 : 1);
    } else if (c == '&' && i + 1 < body.size() && body[i + 1] == '&') {
      ops.push_back(body.substr(start, i - start));
      i += 2;
      start = i;
    } else {
      ++i;
    }
  }
  ops.push_back(body.substr(start));
  return ops;
}

// An intersection operand as a stand-alone PCRE2 class: a nested class is kept, an implicit union of
// items gets brackets.
std::string OperandClass(std::string_view op) {
  if (op.size() >= 2 && op.front() == '[' && ClassEnd(op, 0) == op.size() - 1) return std::string(op);
  return "[" + std::string(op) + "]";
}

}  // namespace

Expected<std::string> TranslateClassIntersections(std::string_view p) {
  std::string out;
  out.reserve(p.size() + 32);
  size_t i = 0;
  while (i < p.size()) {
    char c = p[i];
    if (c == '\\') {
      out.append(p.substr(i, 2));
      i += 2;
      continue;
    }
    if (c != '[') {
      out.push_back(c);
      ++i;
      continue;
    }
    size_t e = ClassEnd(p, i);
    if (e == std::string_view::npos)
      return InvalidArgument("pattern: unbalanced '[' at byte " + std::to_string(i) + ": expected a closing ']'");
    std::string_view body = p.substr(i + 1, e - i - 1);
    auto ops = SplitIntersection(body);
    if (ops.size() == 1) {
      out.append(p.substr(i, e - i + 1));
    } else {
      if (!body.empty() && body[0] == '^')
        return InvalidArgument("pattern: negated class intersection at byte " + std::to_string(i) +
                               " is not supported: expected [A&&B] with a non-negated outer class");
      for (auto& op : ops)
        if (op.empty())
          return InvalidArgument("pattern: empty operand of '&&' in the class at byte " + std::to_string(i));
      // One character in every operand: look ahead for operands 2..n, consume with operand 1.
      out += "(?:";
      for (size_t k = 1; k < ops.size(); ++k) out += "(?=" + OperandClass(ops[k]) + ")";
      out += OperandClass(ops[0]) + ")";
    }
    i = e + 1;
  }
  return out;
}

namespace {
bool IsGeneralCategory(std::string_view n) {
  static constexpr std::string_view kCats[] = {
      "L",  "L&", "Lu", "Ll", "Lt", "Lm", "Lo", "M",  "Mc", "Me", "Mn", "N",  "Nd", "Nl", "No", "P",
      "Pc", "Pd", "Pe", "Pf", "Pi", "Po", "Ps", "S",  "Sc", "Sk", "Sm", "So", "Z",  "Zl", "Zp", "Zs",
      "C",  "Cc", "Cf", "Cn", "Co", "Cs", "Any", "Xan", "Xps", "Xsp", "Xuc", "Xwd"};
  for (auto c : kCats)
    if (n == c) return true;
  return false;
}
}  // namespace

std::string ScriptPropertiesAsScript(std::string_view p) {
  std::string out;
  out.reserve(p.size() + 16);
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] != '\\' || i + 1 >= p.size()) {
      out.push_back(p[i]);
      continue;
    }
    char e = p[i + 1];
    size_t close = (e == 'p' || e == 'P') && i + 2 < p.size() && p[i + 2] == '{' ? p.find('}', i + 3)
                                                                                   : std::string_view::npos;
    if (close == std::string_view::npos) {
      out.append(p.substr(i, 2));
      ++i;
      continue;
    }
    std::string_view name = p.substr(i + 3, close - i - 3);
    bool negate = !name.empty() && name[0] == '^';
    std::string_view bare = negate ? name.substr(1) : name;
    out += '\\';
    out += e;
    out += '{';
    if (negate) out += '^';
    if (!IsGeneralCategory(bare) && bare.find(':') == std::string_view::npos && bare.find('=') == std::string_view::npos)
      out += "sc:";
    out.append(bare);
    out += '}';
    i = close;
  }
  return out;
}

Expected<std::string> TranslateForPcre2(std::string_view pattern) {
  K2_ASSIGN_OR_RETURN(std::string t, TranslateClassIntersections(pattern));
  return ScriptPropertiesAsScript(t);
}

size_t ValidUtf8Prefix(std::string_view s) {
  const auto* b = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size(), i = 0;
  while (i < n) {
    unsigned char c = b[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2, cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3, cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4, cp = c & 0x07;
    } else {
      return i;  // continuation byte, 0xC0/0xC1 (overlong) or > 0xF4
    }
    if (i + len > n) return i;
    for (size_t k = 1; k < len; ++k) {
      if ((b[i + k] & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (b[i + k] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return i;
    i += len;
  }
  return n;
}

struct Pretokenizer::Code {
  pcre2_code* code = nullptr;
  bool jit = false;  // pcre2_jit_match (no per-call option checks) is usable
  ~Code() { pcre2_code_free(code); }
};

Expected<Pretokenizer> Pretokenizer::Create(const std::string& pattern) {
  K2_ASSIGN_OR_RETURN(std::string translated, TranslateForPcre2(pattern));
  int err = 0;
  PCRE2_SIZE off = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
                                   PCRE2_UTF | PCRE2_UCP, &err, &off, nullptr);
  if (code == nullptr) {
    PCRE2_UCHAR buf[256];
    pcre2_get_error_message(err, buf, sizeof(buf));
    return InvalidArgument("pattern: " + std::string(reinterpret_cast<char*>(buf)) + " at byte " +
                           std::to_string(off) + " of the translated pattern \"" + translated + "\"");
  }
  // JIT is an optimisation only: the interpreter gives the same matches when JIT is unavailable.
  bool jit = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
  auto c = std::make_shared<Code>();
  c->code = code;
  c->jit = jit;
  Pretokenizer p;
  p.pattern_ = pattern;
  p.compiled_ = std::move(translated);
  p.code_ = std::move(c);
  p.fast_digits_ = pattern == kKimiPattern ? 3 : pattern == kKimiDigitPattern ? 1 : 0;
  return p;
}

void Pretokenizer::SplitValid(std::string_view text, std::vector<std::string_view>* out) const {
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(code_->code, nullptr);
  K2_CHECK(md != nullptr) << "pcre2_match_data_create_from_pattern: out of memory";
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t pos = 0, gap = 0;  // [gap, pos): bytes the regex skipped, not yet emitted
  while (pos < text.size()) {
    // The input is valid UTF-8 (Split checked it), so the JIT's fast entry point is safe.
    int rc = code_->jit ? pcre2_jit_match(code_->code, subject, text.size(), pos, 0, md, nullptr)
                        : pcre2_match(code_->code, subject, text.size(), pos, PCRE2_NO_UTF_CHECK, md, nullptr);
    // The JIT's fixed stack can run out on very long runs; the interpreter uses the heap instead.
    if (rc < 0 && rc != PCRE2_ERROR_NOMATCH)
      rc = pcre2_match(code_->code, subject, text.size(), pos, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, md, nullptr);
    if (rc < 0) break;  // no further match (or a resource limit): the rest becomes one gap piece
    PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    size_t s = ov[0], e = ov[1];
    if (e == s) {
      // An empty match would loop forever: skip one character, which joins the gap.
      pos = s + 1;
      while (pos < text.size() && (static_cast<unsigned char>(text[pos]) & 0xC0) == 0x80) ++pos;
      continue;
    }
    if (s > gap) out->push_back(text.substr(gap, s - gap));
    out->push_back(text.substr(s, e - s));
    pos = gap = e;
  }
  if (gap < text.size()) out->push_back(text.substr(gap));
  pcre2_match_data_free(md);
}

void Pretokenizer::Split(std::string_view text, std::vector<std::string_view>* out) const {
  SplitRuns(text, fast_digits_, out);
}

void Pretokenizer::SplitReference(std::string_view text, std::vector<std::string_view>* out) const {
  SplitRuns(text, 0, out);
}

void Pretokenizer::SplitRuns(std::string_view text, int fast_digits, std::vector<std::string_view>* out) const {
  size_t i = 0;
  while (i < text.size()) {
    size_t valid = ValidUtf8Prefix(text.substr(i));
    if (valid > 0) {
      if (fast_digits > 0) {
        detail::KimiSplitValid(text.substr(i, valid), out, fast_digits);
      } else {
        SplitValid(text.substr(i, valid), out);
      }
      i += valid;
    } else {
      out->push_back(text.substr(i, 1));  // an invalid byte is a piece of its own
      ++i;
    }
  }
}

}  // namespace k2::text
