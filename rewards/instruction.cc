// IFEval-style constraint checks over UTF-8 text, the compliance-claim detector (hack check) and the
// "if" reward. Each constraint validates its own parameters so a bad task spec names the field.
#include "rewards/instruction.h"

#include <algorithm>
#include <functional>
#include <map>

#include "core/config.h"
#include "rewards/text_util.h"

namespace k2::rewards {

namespace {

bool IsSpace(char32_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v' || c == 0xA0 || c == 0x3000 || (c >= 0x2000 && c <= 0x200B); }

// Python's \w for the ranges a response uses: letters of any script, digits of any script, '_'.
bool IsWordChar(char32_t c) {
  if (c < 0x80) return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  if (IsLetter(c) || UnicodeDigitValue(c) >= 0) return true;
  if (c >= 0x300 && c <= 0x36F) return true;  // combining marks stay inside their word
  if (c <= 0xBF) return false;                // Latin-1 punctuation and symbols
  if (c >= 0x2000 && c <= 0x2BFF) return false;  // general punctuation, arrows, math, dingbats
  if (c >= 0x3000 && c <= 0x303F) return false;  // CJK punctuation
  if (c >= 0xFE30 && c <= 0xFE4F) return false;
  if (c >= 0xFF00 && c <= 0xFF0F) return false;
  if (c >= 0xFF1A && c <= 0xFF20) return false;
  if (c == 0xFFFD || c >= 0x1F000) return false;  // replacement char, emoji
  return true;
}

std::vector<std::u32string> Words(std::u32string_view t) {
  std::vector<std::u32string> out;
  std::u32string cur;
  for (char32_t c : t) {
    if (IsWordChar(c)) {
      cur.push_back(c);
    } else if (!cur.empty()) {
      out.push_back(std::move(cur));
      cur.clear();
    }
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

std::vector<std::string> Lines(std::string_view s) {
  std::vector<std::string> out;
  size_t b = 0;
  for (size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == '\n') {
      out.emplace_back(s.substr(b, i - b));
      b = i + 1;
    }
  }
  return out;
}

bool Compare(int64_t value, const std::string& rel, int64_t num) {
  if (rel == "at_least") return value >= num;
  if (rel == "at_most") return value <= num;
  if (rel == "exactly") return value == num;
  if (rel == "less_than") return value < num;
  return value > num;  // more_than (validated before)
}

// Parameter access with errors naming the constraint's field.
struct Params {
  const json& c;
  const std::string& where;
  Expected<int64_t> Int(const char* key, int64_t min = 0) const {
    auto it = c.find(key);
    if (it == c.end() || !it->is_number_integer() || it->get<int64_t>() < min)
      return InvalidArgument(where + "." + key + ": expected integer >= " + std::to_string(min));
    return it->get<int64_t>();
  }
  Expected<std::string> Str(const char* key, bool allow_empty = false) const {
    auto it = c.find(key);
    if (it == c.end() || !it->is_string() || (!allow_empty && it->get<std::string>().empty()))
      return InvalidArgument(where + "." + key + ": expected non-empty string");
    return it->get<std::string>();
  }
  Expected<std::string> Relation(const char* def = nullptr) const {
    auto it = c.find("relation");
    if (it == c.end() && def) return std::string(def);
    static const std::vector<std::string> kRel = {"at_least", "at_most", "exactly", "less_than", "more_than"};
    if (it == c.end() || !it->is_string() || std::find(kRel.begin(), kRel.end(), it->get<std::string>()) == kRel.end())
      return InvalidArgument(where + ".relation: expected one of at_least, at_most, exactly, less_than, more_than");
    return it->get<std::string>();
  }
  Expected<std::vector<std::string>> StrList(const char* key) const {
    auto it = c.find(key);
    if (it == c.end() || !it->is_array() || it->empty())
      return InvalidArgument(where + "." + key + ": expected non-empty array of strings");
    std::vector<std::string> out;
    for (auto& v : *it) {
      if (!v.is_string() || v.get<std::string>().empty())
        return InvalidArgument(where + "." + key + ": expected non-empty array of non-empty strings");
      out.push_back(v.get<std::string>());
    }
    return out;
  }
};

// Case-insensitive whole-word occurrences of `kw` (ASCII case folding; "cat" does not match "catalog").
int CountKeyword(std::string_view text, const std::string& kw) {
  std::u32string t = DecodeUtf8(AsciiLower(text)), k = DecodeUtf8(AsciiLower(kw));
  if (k.empty()) return 0;
  int n = 0;
  for (size_t p = 0; (p = t.find(k, p)) != std::u32string::npos; ++p) {
    bool left = p == 0 || !IsWordChar(t[p - 1]) || !IsWordChar(k.front());
    bool right = p + k.size() == t.size() || !IsWordChar(t[p + k.size()]) || !IsWordChar(k.back());
    if (left && right) ++n;
  }
  return n;
}

std::string StripFences(std::string s) {
  s = Trim(s);
  for (const char* f : {"```json", "```JSON", "```Json", "```"}) {
    if (s.rfind(f, 0) == 0) {
      s = s.substr(std::string_view(f).size());
      break;
    }
  }
  if (s.size() >= 3 && s.compare(s.size() - 3, 3, "```") == 0) s.resize(s.size() - 3);
  return Trim(s);
}

using Check = std::function<Expected<ConstraintResult>(std::string_view, const Params&)>;

ConstraintResult Res(bool ok, std::string detail) { return {ok, std::move(detail)}; }

const std::map<std::string, Check>& Checks() {
  static const std::map<std::string, Check> m = {
      {"word_count",
       [](std::string_view r, const Params& p) -> Expected<ConstraintResult> {
         K2_ASSIGN_OR_RETURN(auto rel, p.Relation());
         K2_ASSIGN_OR_RETURN(auto num, p.Int("num"));
         int n = CountWords(r);
         return Res(Compare(n, rel, num), std::to_string(n) + " words, expected " + rel + " " + std::to_string(num));
       }},
      {"sentence_count",
       [](std::string_view r, const Params& p) -> Expected<ConstraintResult> {
         K2_ASSIGN_OR_RETURN(auto rel, p.Relation());
         K2_ASSIGN_OR_RETURN(auto num, p.Int("num"));
         int n = CountSentences(r);
         return Res(Compare(n, rel, num), std::to_string(n) + " sentences, expected " + rel + " " + std::to_string(num));
       }},
      {"paragraph_count",
       [](std::string_view r, const Params& p) -> Expected<ConstraintResult> {
         K2_ASSIGN_OR_RETURN(auto rel, p.Relation("exactly"));
         K2_ASSIGN_OR_RETURN(auto num, p.Int("num", 1));
         int n = 0;
         if (p.c.contains("separator")) {
           K2_ASSIGN_OR_RETURN(auto sep, p.Str("separator"));
           std::string s(r);
           size_t b = 0;
           for (;;) {
             size_t e = s.find(sep, b);
             if (!Trim(s.substr(b, e == std::string::npos ? std::string::npos : e - b)).empty()) ++n;
             if (e == std::string::npos) break;
             b = e + sep.size();
           }
         } else {
           n = CountParagraphs(r);
         }
         return Res(Compare(n, rel, num), std::to_string(n) + " paragraphs, expected " + rel + " " + std::to_string(num));
       }},
      {"include_keywords",
       [](std::string_view r, const Params& p) -> Expected<ConstraintResult> {
         K2_ASSIGN_OR_RETURN(auto kws, p.StrList("keywords"));
         for (auto& k : kws)
           if (CountKeyword(r, k) == 0) return Res(false, "missing keyword \"" + k + "\"");
         return Res(true, "all keywords present");
       }},
      {"exclude_keywords",
       [](std::string_view r, const Params& p) -> Expected<ConstraintResult> {
         K2_ASSIGN_OR_RETURN(auto kws, p.StrList("keywords"));
         for (auto& k : kws)
           if (CountKeyword(r, k) > 0) return Res(false, "forbidden keyword \"" + k + "\" present");
         return Res(true, "no forbidden keyword");
       }},
      {"keyword_frequency",
       [](std::string_view r, const Params& p) -> Expected<ConstraintResult> {
         K2_ASSIGN_OR_RETURN(auto kw, p.Str("keyword"));
         K2_ASSIGN_OR_RETURN(auto rel, p.Relation());
         K2_ASSIGN_OR_RETURN(auto num, p.Int("num"));
         int n = CountKeyword(r, kw);
         return Res(Compare(n, rel, num), "\"" + kw + "\" appears " + std::to_string(n) + " times, expected " + rel + " " + std::to_string(num));
       }},
      {"letter_frequency",
       [](std::string_view r, const Params& p) -> Expected<ConstraintResult> {
         K2_ASSIGN_OR_RETURN(auto letter, p.Str("letter"));
         K2_ASSIGN_OR_RETURN(auto rel, p.Relation());
         K2_ASSIGN_OR_RETURN(auto num, p.Int("num"));
         std::u32string l = DecodeUtf8(AsciiLower(letter));
         if (l.size() != 1) return InvalidArgument(p.where + ".letter: expected one character");
         int n = 0;
         for (char32_t c : DecodeUtf8(AsciiLower(r))) n += c == l[0];
         return Res(Compare(n, rel, num), "letter '" + letter + "' appears " + std::to_string(n) + " times, expected " + rel + " " + std::to_string(num));
       }},
      {"json_format",
       [](std::string_view r, const Params&) -> Expected<ConstraintResult> {
         auto j = ParseJson(StripFences(std::string(r)), "response");
         return Res(j.ok(), j.ok() ? "valid JSON" : "not valid JSON: " + j.status().message());
       }},
      {"bullet_count",
       [](std::string_view r, const Params& p) -> Expected<ConstraintResult> {
         K2_ASSIGN_OR_RETURN(auto rel, p.Relation("exactly"));
         K2_ASSIGN_OR_RETURN(auto num, p.Int("num"));
         int n = 0;
         for (auto& line : Lines(r)) {
           std::string t = Trim(line);
           if (t.size() >= 2 && (t[0] == '*' || t[0] == '-') && (t[1] == ' ' || t[1] == '\t')) ++n;
           else if (t.rfind("\xE2\x80\xA2", 0) == 0) ++n;  // "•"
         }
         return Res(Compare(n, rel, num), std::to_string(n) + " bullet points, expected " + rel + " " + std::to_string(num));
       }},
      {"title",
       [](std::string_view r, const Params&) -> Expected<ConstraintResult> {
         std::string s(r);
         for (size_t a = 0; (a = s.find("<<", a)) != std::string::npos; a += 2) {
           size_t b = s.find(">>", a + 2);
           if (b == std::string::npos) break;
           std::string t = s.substr(a + 2, b - a - 2);
           if (!Trim(t).empty() && t.find('\n') == std::string::npos) return Res(true, "title <<" + t + ">>");
         }
         return Res(false, "no title wrapped in << >>");
       }},
      {"lowercase",
       [](std::string_view r, const Params&) -> Expected<ConstraintResult> {
         for (char32_t c : DecodeUtf8(r))
           if (IsUpper(c)) return Res(false, "contains upper-case letter '" + EncodeUtf8(std::u32string(1, c)) + "'");
         return Res(true, "all lower case");
       }},
      {"uppercase",
       [](std::string_view r, const Params&) -> Expected<ConstraintResult> {
         for (char32_t c : DecodeUtf8(r))
           if (IsLower(c)) return Res(false, "contains lower-case letter '" + EncodeUtf8(std::u32string(1, c)) + "'");
         return Res(true, "all upper case");
       }},
      {"capital_word_frequency",
       [](std::string_view r, const Params& p) -> Expected<ConstraintResult> {
         K2_ASSIGN_OR_RETURN(auto rel, p.Relation());
         K2_ASSIGN_OR_RETURN(auto num, p.Int("num"));
         int n = 0;
         for (auto& w : Words(DecodeUtf8(r))) {
           bool any_upper = false, any_lower = false;
           for (char32_t c : w) any_upper |= IsUpper(c), any_lower |= IsLower(c);
           n += any_upper && !any_lower;
         }
         return Res(Compare(n, rel, num), std::to_string(n) + " all-capital words, expected " + rel + " " + std::to_string(num));
       }},
      {"end_phrase",
       [](std::string_view r, const Params& p) -> Expected<ConstraintResult> {
         K2_ASSIGN_OR_RETURN(auto ph, p.Str("phrase"));
         std::string s = Trim(r);
         while (!s.empty() && s.back() == '"') s.pop_back();  // IFEval strips surrounding quotes
         s = AsciiLower(Trim(s));
         std::string want = AsciiLower(Trim(ph));
         bool ok = s.size() >= want.size() && s.compare(s.size() - want.size(), want.size(), want) == 0;
         return Res(ok, ok ? "ends with the phrase" : "does not end with \"" + ph + "\"");
       }},
      {"start_phrase",
       [](std::string_view r, const Params& p) -> Expected<ConstraintResult> {
         K2_ASSIGN_OR_RETURN(auto ph, p.Str("phrase"));
         std::string s = Trim(r);
         while (!s.empty() && s.front() == '"') s.erase(0, 1);
         bool ok = AsciiLower(s).rfind(AsciiLower(Trim(ph)), 0) == 0;
         return Res(ok, ok ? "starts with the phrase" : "does not start with \"" + ph + "\"");
       }},
      {"language",
       [](std::string_view r, const Params& p) -> Expected<ConstraintResult> {
         K2_ASSIGN_OR_RETURN(auto name, p.Str("script"));
         Script want;
         if (!ParseScript(name, &want) || want == Script::kOther)
           return InvalidArgument(p.where + ".script: expected latin, cyrillic, greek, arabic, hebrew, devanagari, han, hiragana, katakana, hangul or thai");
         double min_fraction = 0.9;
         if (auto it = p.c.find("min_fraction"); it != p.c.end()) {
           if (!it->is_number() || it->get<double>() <= 0 || it->get<double>() > 1)
             return InvalidArgument(p.where + ".min_fraction: expected number in (0, 1]");
           min_fraction = it->get<double>();
         }
         int64_t letters = 0, in_script = 0;
         for (char32_t c : DecodeUtf8(r)) {
           Script s = ScriptOf(c);
           if (s == Script::kOther) continue;
           ++letters;
           // Japanese mixes kana and kanji: a "han" answer counts kana too, and kana answers count han.
           bool ja = (want == Script::kHiragana || want == Script::kKatakana || want == Script::kHan) &&
                     (s == Script::kHiragana || s == Script::kKatakana || s == Script::kHan);
           in_script += (s == want || (ja && want != Script::kHan)) ? 1 : 0;
         }
         double f = letters ? static_cast<double>(in_script) / static_cast<double>(letters) : 0;
         return Res(letters > 0 && f >= min_fraction,
                    std::to_string(in_script) + "/" + std::to_string(letters) + " letters in script " + name);
       }},
      {"no_commas",
       [](std::string_view r, const Params&) -> Expected<ConstraintResult> {
         bool ok = r.find(',') == std::string_view::npos && r.find("\xEF\xBC\x8C") == std::string_view::npos &&
                   r.find("\xE3\x80\x81") == std::string_view::npos;
         return Res(ok, ok ? "no commas" : "contains a comma");
       }},
      {"placeholders",
       [](std::string_view r, const Params& p) -> Expected<ConstraintResult> {
         K2_ASSIGN_OR_RETURN(auto num, p.Int("num", 1));
         int n = 0;
         std::string s(r);
         for (size_t a = 0; (a = s.find('[', a)) != std::string::npos; ++a) {
           size_t b = s.find_first_of("[]\n", a + 1);
           if (b != std::string::npos && s[b] == ']' && b > a + 1) ++n;
         }
         return Res(n >= num, std::to_string(n) + " [placeholders], expected at_least " + std::to_string(num));
       }},
      {"postscript",
       [](std::string_view r, const Params& p) -> Expected<ConstraintResult> {
         std::string marker = "P.S.";
         if (p.c.contains("marker")) {
           K2_ASSIGN_OR_RETURN(marker, p.Str("marker"));
         }
         for (auto& line : Lines(r))
           if (AsciiLower(Trim(line)).rfind(AsciiLower(marker), 0) == 0) return Res(true, "postscript found");
         return Res(false, "no line starting with \"" + marker + "\"");
       }},
      {"highlighted_sections",
       [](std::string_view r, const Params& p) -> Expected<ConstraintResult> {
         K2_ASSIGN_OR_RETURN(auto num, p.Int("num", 1));
         int n = 0;
         for (auto& line : Lines(r)) {
           // *text* or **text**, non-empty, within a line; a bullet "* item" is not a highlight.
           for (size_t a = 0; (a = line.find('*', a)) != std::string::npos;) {
             size_t stars = line.compare(a, 2, "**") == 0 ? 2 : 1;
             size_t b = line.find(std::string(stars, '*'), a + stars);
             if (b == std::string::npos) break;
             std::string inner = line.substr(a + stars, b - a - stars);
             if (!Trim(inner).empty() && inner.find('*') == std::string::npos && inner.front() != ' ') ++n;
             a = b + stars;
           }
         }
         return Res(n >= num, std::to_string(n) + " highlighted sections, expected at_least " + std::to_string(num));
       }},
      {"quotation",
       [](std::string_view r, const Params&) -> Expected<ConstraintResult> {
         std::string s = Trim(r);
         bool ok = (s.size() >= 2 && s.front() == '"' && s.back() == '"') ||
                   (s.size() >= 6 && s.rfind("\xE2\x80\x9C", 0) == 0 && s.compare(s.size() - 3, 3, "\xE2\x80\x9D") == 0);
         return Res(ok, ok ? "wrapped in double quotes" : "not wrapped in double quotes");
       }},
      {"section_count",
       [](std::string_view r, const Params& p) -> Expected<ConstraintResult> {
         K2_ASSIGN_OR_RETURN(auto splitter, p.Str("splitter"));
         K2_ASSIGN_OR_RETURN(auto num, p.Int("num", 1));
         K2_ASSIGN_OR_RETURN(auto rel, p.Relation("at_least"));
         int n = 0;
         std::string s(r);
         for (size_t a = 0; (a = s.find(splitter, a)) != std::string::npos; a += splitter.size()) {
           size_t q = a + splitter.size();
           while (q < s.size() && s[q] == ' ') ++q;
           if (q < s.size() && s[q] >= '0' && s[q] <= '9') ++n;
         }
         return Res(Compare(n, rel, num), std::to_string(n) + " sections, expected " + rel + " " + std::to_string(num));
       }},
  };
  return m;
}

}  // namespace

int CountWords(std::string_view text) { return static_cast<int>(Words(DecodeUtf8(text)).size()); }

int CountSentences(std::string_view text) {
  std::u32string t = DecodeUtf8(text);
  int n = 0;
  bool has_word = false;
  for (size_t i = 0; i < t.size(); ++i) {
    char32_t c = t[i];
    if (IsWordChar(c)) has_word = true;
    bool end = c == '.' || c == '!' || c == '?' || c == 0x3002 || c == 0xFF01 || c == 0xFF1F;
    if (!end) continue;
    size_t j = i;
    while (j + 1 < t.size() && (t[j + 1] == '.' || t[j + 1] == '!' || t[j + 1] == '?' || t[j + 1] == '"' || t[j + 1] == ')'))
      ++j;
    // CJK full stops end a sentence without a following space.
    bool boundary = j + 1 == t.size() || IsSpace(t[j + 1]) || c >= 0x3000;
    if (boundary && has_word) {
      ++n;
      has_word = false;
    }
    i = j;
  }
  if (has_word) ++n;  // a last sentence without final punctuation
  return n;
}

int CountParagraphs(std::string_view text) {
  int n = 0;
  bool in_par = false;
  for (auto& line : Lines(text)) {
    if (Trim(line).empty()) {
      in_par = false;
    } else if (!in_par) {
      ++n;
      in_par = true;
    }
  }
  return n;
}

bool ClaimsCompliance(std::string_view response) {
  std::string s = AsciiLower(response);
  static const char* kClaims[] = {
      "i have followed", "i've followed", "i followed all", "i have complied", "i complied", "complies with",
      "compliant with", "in compliance with", "adheres to", "i adhered", "i have adhered", "follows all",
      "follows the instructions", "follows every", "meets all", "meets the requirement", "satisfies all",
      "satisfies the constraint", "satisfies every", "all constraints", "all the constraints",
      "all instructions", "all the instructions", "all requirements", "all the requirements", "as requested",
      "as instructed", "word count:", "word count =", "words total", "exactly the required", "constraint satisfied",
      "constraints satisfied", "requirements met", "instructions followed", "without using any commas",
      "contains no commas", "no commas were used", "entirely in lowercase", "all in lowercase", "all lowercase",
      "all in uppercase", "in all caps", "all capital letters", "\xE2\x9C\x93", "\xE2\x9C\x85", "\xE2\x9C\x94"};
  for (const char* c : kClaims)
    if (s.find(c) != std::string::npos) return true;
  return false;
}

std::vector<std::string> ConstraintTypes() {
  std::vector<std::string> out;
  for (auto& [k, v] : Checks()) out.push_back(k);
  return out;
}

Expected<ConstraintResult> CheckConstraint(std::string_view response, const json& constraint, const std::string& where) {
  if (!constraint.is_object()) return InvalidArgument(where + ": expected object {\"type\": ...}");
  K2_ASSIGN_OR_RETURN(std::string type, GetString(constraint, "type", where));
  auto it = Checks().find(type);
  if (it == Checks().end()) {
    std::string near = config::Nearest(type, ConstraintTypes());
    return InvalidArgument(where + ".type: unknown constraint \"" + type + "\"" +
                           (near.empty() ? "" : " (did you mean \"" + near + "\"?)"));
  }
  Params p{constraint, where};
  K2_ASSIGN_OR_RETURN(ConstraintResult r, it->second(response, p));
  r.detail = type + ": " + r.detail;
  return r;
}

namespace {

class InstructionReward : public Reward {
 public:
  InstructionReward(bool all, bool hack_check) : all_(all), hack_check_(hack_check) {}
  std::string name() const override { return "if"; }

 protected:
  Expected<RewardResult> DoScore(const ScoreInput& in) const override {
    auto it = in.task.find("constraints");
    if (it == in.task.end() || !it->is_array() || it->empty())
      return InvalidArgument("if: task.constraints: expected a non-empty array of constraints");
    std::string response = LastAssistantText(in);
    RewardResult r;
    int passed = 0;
    for (size_t i = 0; i < it->size(); ++i) {
      std::string w = "task.constraints[" + std::to_string(i) + "]";
      K2_ASSIGN_OR_RETURN(ConstraintResult c, CheckConstraint(response, (*it)[i], w));
      passed += c.ok;
      r.components["c" + std::to_string(i) + ":" + (*it)[i]["type"].get<std::string>()] = c.ok ? 1 : 0;
      r.explanation += (r.explanation.empty() ? "" : "\n") + std::string(c.ok ? "ok   " : "FAIL ") + c.detail;
    }
    int total = static_cast<int>(it->size());
    r.components["fraction"] = static_cast<double>(passed) / total;
    r.value = all_ ? (passed == total ? 1.0 : 0.0) : static_cast<double>(passed) / total;
    bool claims = ClaimsCompliance(response);
    r.components["claims_compliance"] = claims ? 1 : 0;
    r.components["hack"] = 0;
    if (hack_check_ && claims && passed < total) {
      r.components["hack"] = 1;
      r.value = 0;
      r.explanation += "\nHACK claims compliance while breaking " + std::to_string(total - passed) + " constraint(s): score 0";
    }
    return r;
  }

 private:
  bool all_, hack_check_;
};

}  // namespace

Expected<std::unique_ptr<Reward>> MakeInstructionReward(const json& config, const std::string& where) {
  bool all = true, hack = true;
  for (auto& [k, v] : config.items()) {
    if (k == "type") continue;
    if (k == "mode" && v.is_string() && (v == "all" || v == "fraction")) all = v == "all";
    else if (k == "hack_check" && v.is_boolean()) hack = v.get<bool>();
    else
      return InvalidArgument(where + "." + k + ": unknown key or wrong type (expected mode: \"all\"|\"fraction\", hack_check: boolean)");
  }
  return std::unique_ptr<Reward>(new InstructionReward(all, hack));
}

}  // namespace k2::rewards
