// Math verifier: answer extraction, LaTeX normalization, an exact rational evaluator for + - * / ^ and
// parentheses, and the "math" reward. Hand-written scanners (no std::regex: it recurses per character and
// can overflow the stack on a long adversarial response).
#include "rewards/math_verifier.h"

#include <cctype>
#include <cmath>

#include "rewards/text_util.h"

namespace k2::rewards {

namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

void ReplaceAll(std::string& s, std::string_view from, std::string_view to) {
  if (from.empty()) return;
  for (size_t p = 0; (p = s.find(from, p)) != std::string::npos;) {
    s.replace(p, from.size(), to);
    p += to.size();
  }
}

// Content of the balanced {...} group starting at s[open] == '{'; `end` gets the index after '}'.
bool BraceGroup(const std::string& s, size_t open, std::string* content, size_t* end) {
  if (open >= s.size() || s[open] != '{') return false;
  int depth = 0;
  for (size_t i = open; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {  // escaped brace \{ does not nest
      ++i;
      continue;
    }
    if (s[i] == '{') ++depth;
    if (s[i] == '}' && --depth == 0) {
      *content = s.substr(open + 1, i - open - 1);
      *end = i + 1;
      return true;
    }
  }
  return false;
}

// Every top-level \boxed{...} / \fbox{...} (nested ones stay inside their parent's content).
std::vector<std::string> FindBoxed(const std::string& s) {
  std::vector<std::string> out;
  for (size_t i = 0; i < s.size();) {
    size_t p = s.find('\\', i);
    if (p == std::string::npos) break;
    size_t name_len = s.compare(p, 6, "\\boxed") == 0 ? 6 : s.compare(p, 5, "\\fbox") == 0 ? 5 : 0;
    if (name_len == 0) {
      i = p + 1;
      continue;
    }
    size_t q = p + name_len;
    while (q < s.size() && s[q] == ' ') ++q;
    std::string content;
    size_t end;
    if (q < s.size() && s[q] == '{' && BraceGroup(s, q, &content, &end)) {
      out.push_back(content);
      i = end;
    } else if (q > p + name_len && q < s.size()) {
      // "\boxed 5": the next whitespace-delimited token.
      size_t e = q;
      while (e < s.size() && !std::isspace(static_cast<unsigned char>(s[e])) && s[e] != '$') ++e;
      out.push_back(s.substr(q, e - q));
      i = e;
    } else {
      i = q;
    }
  }
  return out;
}

std::string StripReasoning(std::string s) {
  for (;;) {
    size_t a = s.find("<think>");
    if (a == std::string::npos) break;
    size_t b = s.find("</think>", a);
    if (b == std::string::npos) {
      s.erase(a);  // unterminated reasoning: everything after it is reasoning, not an answer
      break;
    }
    s.erase(a, b + 8 - a);
  }
  size_t c = s.rfind("</think>");
  if (c != std::string::npos) s.erase(0, c + 8);
  return s;
}

// Last number-looking token: -?digits(,ddd)*(.digits)?(/digits)?%?
std::string LastNumber(const std::string& s) {
  std::string best;
  for (size_t i = 0; i < s.size();) {
    if (!IsDigit(s[i]) && !(s[i] == '.' && i + 1 < s.size() && IsDigit(s[i + 1]))) {
      ++i;
      continue;
    }
    size_t b = i;
    if (b > 0 && s[b - 1] == '-') --b;
    size_t e = i;
    while (e < s.size() && IsDigit(s[e])) ++e;
    while (e + 3 < s.size() && s[e] == ',' && IsDigit(s[e + 1]) && IsDigit(s[e + 2]) && IsDigit(s[e + 3]) &&
           (e + 4 >= s.size() || !IsDigit(s[e + 4])))
      e += 4;
    if (e + 1 < s.size() && s[e] == '.' && IsDigit(s[e + 1])) {
      ++e;
      while (e < s.size() && IsDigit(s[e])) ++e;
    }
    if (e + 1 < s.size() && s[e] == '/' && IsDigit(s[e + 1])) {
      ++e;
      while (e < s.size() && IsDigit(s[e])) ++e;
    }
    if (e < s.size() && s[e] == '%') ++e;
    best = s.substr(b, e - b);
    i = e;
  }
  return best;
}

// Exact evaluator over rationals: expr := term (('+'|'-') term)*; term := unary (('*'|'/') unary)*;
// unary := ('-'|'+') unary | power; power := primary ('^' unary)?; primary := number | '(' expr ')'.
class Evaluator {
 public:
  explicit Evaluator(const std::string& s) : s_(s) {}
  std::optional<Rational> Run(bool* inexact) {
    auto v = Expr(0);
    if (!v || pos_ != s_.size()) return std::nullopt;
    *inexact = inexact_;
    return v;
  }

 private:
  static constexpr int kMaxDepth = 64;
  // Long products of huge literals would grow without bound (and schoolbook multiplication with them).
  static bool TooBig(const Rational& v) { return v.num.digits() + v.den.digits() > 3 * BigInt::kMaxDigits; }
  std::optional<Rational> Expr(int depth) {
    if (depth > kMaxDepth) return std::nullopt;
    auto v = Term(depth);
    while (v && pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) {
      bool minus = s_[pos_++] == '-';
      auto r = Term(depth);
      if (!r) return std::nullopt;
      v = minus ? *v + Rational{-r->num, r->den} : *v + *r;
      if (TooBig(*v)) return std::nullopt;
    }
    return v;
  }
  std::optional<Rational> Term(int depth) {
    auto v = Unary(depth);
    while (v && pos_ < s_.size() && (s_[pos_] == '*' || s_[pos_] == '/')) {
      bool div = s_[pos_++] == '/';
      auto r = Unary(depth);
      if (!r) return std::nullopt;
      if (div && r->num.is_zero()) return std::nullopt;
      v = div ? *v / *r : *v * *r;
      if (TooBig(*v)) return std::nullopt;
    }
    return v;
  }
  std::optional<Rational> Unary(int depth) {
    if (depth > kMaxDepth) return std::nullopt;
    if (pos_ < s_.size() && (s_[pos_] == '-' || s_[pos_] == '+')) {
      bool minus = s_[pos_++] == '-';
      auto v = Unary(depth + 1);
      if (!v) return std::nullopt;
      return minus ? Rational{-v->num, v->den} : *v;
    }
    return Power(depth);
  }
  std::optional<Rational> Power(int depth) {
    auto base = Primary(depth);
    if (!base || pos_ >= s_.size() || s_[pos_] != '^') return base;
    ++pos_;
    auto e = Unary(depth + 1);
    if (!e || !(e->den == BigInt(1)) || e->num.digits() > 4) return std::nullopt;
    int64_t n = std::stoll(e->num.ToString());
    bool neg = n < 0;
    if (neg) n = -n;
    // Result digit estimate: refuse what would pass the BigInt cap instead of computing it.
    if (static_cast<double>(std::max(base->num.digits(), base->den.digits())) * static_cast<double>(n) >
        BigInt::kMaxDigits)
      return std::nullopt;
    if (neg && base->num.is_zero()) return std::nullopt;
    Rational r{BigInt(1), BigInt(1)}, b = *base;
    for (; n; n >>= 1) {
      if (n & 1) r = r * b;
      if (n > 1) b = b * b;
    }
    return neg ? Rational{BigInt(1), BigInt(1)} / r : r;
  }
  std::optional<Rational> Primary(int depth) {
    if (pos_ < s_.size() && (s_[pos_] == '(' || s_[pos_] == '{')) {
      char close = s_[pos_] == '(' ? ')' : '}';
      ++pos_;
      auto v = Expr(depth + 1);
      if (!v || pos_ >= s_.size() || s_[pos_] != close) return std::nullopt;
      ++pos_;
      return v;
    }
    size_t b = pos_;
    bool dot = false;
    while (pos_ < s_.size() && (IsDigit(s_[pos_]) || (s_[pos_] == '.' && !dot))) dot |= s_[pos_++] == '.';
    if (pos_ == b) return std::nullopt;
    // Exponent part "e-3" only when followed by digits (so "2e" is not a number).
    if (pos_ + 1 < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      size_t q = pos_ + 1;
      if (q < s_.size() && (s_[q] == '-' || s_[q] == '+')) ++q;
      if (q < s_.size() && IsDigit(s_[q])) {
        pos_ = q;
        while (pos_ < s_.size() && IsDigit(s_[pos_])) ++pos_;
      }
    }
    std::string lit = s_.substr(b, pos_ - b);
    auto d = lit.find('.');
    if (d != std::string::npos) {
      size_t e = lit.find_first_of("eE");
      std::string frac = lit.substr(d + 1, e == std::string::npos ? std::string::npos : e - d - 1);
      if (frac.find_first_not_of('0') != std::string::npos) inexact_ = true;
    }
    return Rational::Parse(lit);
  }

  const std::string& s_;
  size_t pos_ = 0;
  bool inexact_ = false;
};

// \frac{a}{b} (and \frac12) -> ((a)/(b)), innermost arguments converted recursively.
std::string ConvertFracs(const std::string& s, int depth = 0) {
  if (depth > 32) return s;
  std::string out;
  for (size_t i = 0; i < s.size();) {
    if (s.compare(i, 5, "\\frac") == 0) {
      size_t q = i + 5;
      while (q < s.size() && s[q] == ' ') ++q;
      std::string args[2];
      bool ok = true;
      for (auto& a : args) {
        size_t end;
        if (q < s.size() && s[q] == '{' && BraceGroup(s, q, &a, &end)) {
          q = end;
        } else if (q < s.size() && (IsDigit(s[q]) || IsAlpha(s[q]))) {
          a = s.substr(q, 1);  // \frac12: single-character arguments
          ++q;
        } else {
          ok = false;
          break;
        }
      }
      if (ok) {
        out += "((" + ConvertFracs(args[0], depth + 1) + ")/(" + ConvertFracs(args[1], depth + 1) + "))";
        i = q;
        continue;
      }
    }
    out.push_back(s[i++]);
  }
  return out;
}

// \text{X}, \mathrm{X}, \textbf{X}, \mbox{X}, \boxed{X} -> X.
std::string UnwrapCommands(std::string s) {
  static const char* kCmds[] = {"\\text", "\\mathrm", "\\textbf", "\\mbox", "\\boxed", "\\fbox", "\\mathbf", "\\textrm"};
  for (int guard = 0; guard < 64; ++guard) {
    bool changed = false;
    for (const char* c : kCmds) {
      size_t p = s.find(c);
      if (p == std::string::npos) continue;
      size_t q = p + std::string_view(c).size();
      if (q < s.size() && IsAlpha(s[q])) continue;  // a longer command name (\textit handled as unknown)
      std::string content;
      size_t end;
      if (q < s.size() && s[q] == '{' && BraceGroup(s, q, &content, &end)) {
        s = s.substr(0, p) + content + s.substr(end);
        changed = true;
      }
    }
    if (!changed) break;
  }
  return s;
}

// "12 cm", "5cm", "3 km/h", "40 m^2" -> the number; a single glued letter ("2x") is kept (an expression).
std::string StripUnits(std::string s) {
  s = Trim(s);
  size_t p = 0;
  while (p < s.size() && !IsAlpha(s[p])) ++p;
  if (p == 0 || p == s.size()) return s;
  std::string head = Trim(s.substr(0, p));
  std::string tail = s.substr(p);
  bool has_digit = false;
  for (char c : head) has_digit |= IsDigit(c);
  if (!has_digit) return s;
  char last = head.back();
  if (!(IsDigit(last) || last == ')' || last == '%' || last == '.')) return s;
  for (char c : tail)
    if (!(IsAlpha(c) || IsDigit(c) || c == '/' || c == '^' || c == ' ' || c == '.' || c == '{' || c == '}'))
      return s;
  size_t letters = 0;
  while (letters < tail.size() && IsAlpha(tail[letters])) ++letters;
  bool spaced = s[p - 1] == ' ';
  if (!spaced && letters < 2) return s;
  if (!head.empty() && head.back() == '.') head.pop_back();
  return head;
}

std::string RemoveThousandsSeparators(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == ',' && i > 0 && IsDigit(s[i - 1]) && i + 3 < s.size() && IsDigit(s[i + 1]) && IsDigit(s[i + 2]) &&
        IsDigit(s[i + 3]) && (i + 4 >= s.size() || !IsDigit(s[i + 4]))) {
      continue;
    }
    out.push_back(s[i]);
  }
  return out;
}

}  // namespace

ExtractedAnswer ExtractAnswer(std::string_view response, const MathConfig& cfg) {
  std::string text = FoldToAscii(response);
  if (cfg.strip_reasoning) text = StripReasoning(text);
  std::vector<std::string> boxed = FindBoxed(text);
  if (!boxed.empty()) {
    if (cfg.reject_hedging) {
      NormalizedAnswer last = NormalizeAnswer(boxed.back());
      for (size_t i = 0; i + 1 < boxed.size(); ++i) {
        if (!AnswersEquivalent(NormalizeAnswer(boxed[i]), last, cfg)) return {"", "hedged"};
      }
    }
    return {boxed.back(), "boxed"};
  }
  std::string lower = AsciiLower(text);
  size_t best = std::string::npos, best_end = 0;
  for (size_t p = 0; (p = lower.find("answer", p)) != std::string::npos; p += 6) {
    size_t q = p + 6;
    while (q < lower.size() && (lower[q] == ' ' || lower[q] == '*')) ++q;  // "**Answer:**"
    if (q < lower.size() && lower[q] == ':') {
      best = p;
      best_end = q + 1;
    } else if (lower.compare(q, 2, "is") == 0 && (q + 2 >= lower.size() || !IsAlpha(lower[q + 2]))) {
      best = p;
      best_end = q + 2;
    }
  }
  if (best != std::string::npos) {
    size_t eol = text.find('\n', best_end);
    std::string rest = Trim(text.substr(best_end, eol == std::string::npos ? std::string::npos : eol - best_end));
    while (!rest.empty() && rest[0] == '*') rest.erase(0, 1);
    while (!rest.empty() && (rest.back() == '.' || rest.back() == '*')) rest.pop_back();
    rest = Trim(rest);
    if (!rest.empty()) return {rest, "answer_phrase"};
  }
  std::string num = LastNumber(text);
  if (!num.empty()) return {num, "last_number"};
  return {"", "none"};
}

NormalizedAnswer NormalizeAnswer(std::string_view answer) {
  NormalizedAnswer out;
  std::string s = Trim(FoldToAscii(answer));
  s = UnwrapCommands(s);
  for (const char* junk : {"\\$", "\\left", "\\right", "\\displaystyle", "\\!", "\\,", "\\;", "\\:", "\\ ", "~", "\\(",
                           "\\)", "\\[", "\\]", "$"})
    ReplaceAll(s, junk, "");
  ReplaceAll(s, "\\dfrac", "\\frac");
  ReplaceAll(s, "\\tfrac", "\\frac");
  for (const char* deg : {"^{\\circ}", "^\\circ", "\\circ", "\xC2\xB0", "\\degree"}) ReplaceAll(s, deg, "");
  ReplaceAll(s, "\\%", "%");
  ReplaceAll(s, "\\cdot", "*");
  ReplaceAll(s, "\\times", "*");
  ReplaceAll(s, "\\div", "/");
  ReplaceAll(s, "\\approx", "=");
  ReplaceAll(s, "\\le", "<");
  ReplaceAll(s, "\\ge", ">");
  // "x = 5", "a = b = 5": the value is the last right-hand side.
  if (auto eq = s.rfind('='); eq != std::string::npos) s = s.substr(eq + 1);
  s = Trim(s);
  while (!s.empty() && (s.back() == '.')) s.pop_back();
  s = StripUnits(s);
  bool percent = false;
  s = Trim(s);
  if (!s.empty() && s.back() == '%') {
    percent = true;
    s.pop_back();
    s = Trim(s);
  }
  s = RemoveThousandsSeparators(s);
  std::string compact;
  for (char c : s)
    if (!std::isspace(static_cast<unsigned char>(c))) compact.push_back(c);
  std::string expr = ConvertFracs(compact);
  Evaluator ev(expr);
  bool inexact = false;
  if (auto v = ev.Run(&inexact)) {
    out.values.push_back(*v);
    if (percent) out.values.push_back(*v / Rational{BigInt(100), BigInt(1)});
    out.inexact = inexact;
  }
  std::string text = AsciiLower(compact);
  // Multiple choice: "(b)" and "b" are the same answer.
  if (text.size() == 3 && text[0] == '(' && text[2] == ')' && IsAlpha(text[1])) text = text.substr(1, 1);
  out.text = text + (percent ? "%" : "");
  return out;
}

bool AnswersEquivalent(const NormalizedAnswer& a, const NormalizedAnswer& b, const MathConfig& cfg,
                       std::string* why) {
  auto say = [&](const std::string& w) {
    if (why) *why = w;
  };
  if (!a.values.empty() && !b.values.empty()) {
    for (auto& x : a.values)
      for (auto& y : b.values)
        if (x == y) return say("equal as exact rationals"), true;
    if (a.inexact || b.inexact) {
      for (auto& x : a.values) {
        for (auto& y : b.values) {
          long double dx = x.ToLongDouble(), dy = y.ToLongDouble();
          long double scale = std::max(std::fabs(dx), std::fabs(dy));
          if (std::isfinite(dx) && std::isfinite(dy) && std::fabs(dx - dy) <= cfg.rel_tol * scale)
            return say("equal within relative tolerance " + std::to_string(cfg.rel_tol)), true;
        }
      }
    }
    return say("different values"), false;
  }
  if (!a.text.empty() && a.text == b.text) return say("equal as normalized text"), true;
  if (a.values.empty() != b.values.empty()) return say("one answer is numeric, the other is not"), false;
  return say("different normalized text"), false;
}

namespace {

class MathReward : public Reward {
 public:
  explicit MathReward(MathConfig cfg) : cfg_(cfg) {}
  std::string name() const override { return "math"; }

 protected:
  Expected<RewardResult> DoScore(const ScoreInput& in) const override {
    auto it = in.task.find("reference");
    if (it == in.task.end() || !(it->is_string() || it->is_number()))
      return InvalidArgument("math: task.reference: expected string or number");
    std::string ref = it->is_string() ? it->get<std::string>() : it->dump();
    NormalizedAnswer nref = NormalizeAnswer(ref);
    RewardResult r;
    ExtractedAnswer ans = ExtractAnswer(LastAssistantText(in), cfg_);
    r.components["answer_found"] = ans.text.empty() ? 0 : 1;
    if (ans.text.empty()) {
      r.explanation = ans.method == "hedged" ? "several \\boxed answers with different values (hedging)"
                                              : "no final answer found";
      return r;
    }
    std::string why;
    bool eq = AnswersEquivalent(NormalizeAnswer(ans.text), nref, cfg_, &why);
    r.value = eq ? 1 : 0;
    r.components["correct"] = r.value;
    r.explanation = "answer \"" + ans.text + "\" (" + ans.method + ") vs reference \"" + ref + "\": " + why;
    return r;
  }

 private:
  MathConfig cfg_;
};

}  // namespace

Expected<std::unique_ptr<Reward>> MakeMathReward(const json& config, const std::string& where) {
  MathConfig cfg;
  for (auto& [k, v] : config.items()) {
    if (k == "type") continue;
    if (k == "rel_tol" && v.is_number() && v.get<double>() >= 0) cfg.rel_tol = v.get<double>();
    else if (k == "strip_reasoning" && v.is_boolean()) cfg.strip_reasoning = v.get<bool>();
    else if (k == "reject_hedging" && v.is_boolean()) cfg.reject_hedging = v.get<bool>();
    else
      return InvalidArgument(where + "." + k +
                             ": unknown key or wrong type (expected rel_tol: number >= 0, strip_reasoning: "
                             "boolean, reject_hedging: boolean)");
  }
  return std::unique_ptr<Reward>(new MathReward(cfg));
}

}  // namespace k2::rewards
