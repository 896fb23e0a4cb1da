// UTF-8 decoding, script classes and ASCII folding for the verifiers (math answers, IF constraints).
// Tables cover the scripts IF constraints name; anything else is kOther.
#include "rewards/text_util.h"

#include <cctype>

namespace k2::rewards {

std::u32string DecodeUtf8(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || i + len > s.size()) {
      out.push_back(0xFFFD);
      ++i;
      continue;
    }
    char32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
    bool ok = true;
    for (int k = 1; k < len; ++k) {
      unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc >> 6) != 2) ok = false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if (!ok) {
      out.push_back(0xFFFD);
      ++i;
      continue;
    }
    out.push_back(cp);
    i += len;
  }
  return out;
}

std::string EncodeUtf8(std::u32string_view s) {
  std::string out;
  for (char32_t c : s) {
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
    } else if (c < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (c >> 6)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else if (c < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | (c >> 12)));
      out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xF0 | (c >> 18)));
      out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    }
  }
  return out;
}

int UnicodeDigitValue(char32_t c) {
  // Zero code points of the Nd blocks a model is likely to emit.
  static const char32_t kZeros[] = {0x30,   0x660,  0x6F0,  0x7C0,  0x966,  0x9E6,  0xA66,  0xAE6,  0xB66,
                                    0xBE6,  0xC66,  0xCE6,  0xD66,  0xE50,  0xED0,  0xF20,  0x1040, 0x17E0,
                                    0x1810, 0xFF10, 0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6};
  for (char32_t z : kZeros)
    if (c >= z && c <= z + 9) return static_cast<int>(c - z);
  return -1;
}

std::string FoldToAscii(std::string_view s) {
  std::u32string u = DecodeUtf8(s);
  for (char32_t& c : u) {
    int d = UnicodeDigitValue(c);
    if (d >= 0) c = U'0' + static_cast<char32_t>(d);
    else if (c >= 0xFF01 && c <= 0xFF5E) c = c - 0xFF01 + 0x21;  // fullwidth ASCII
    else if (c == 0x2212 || c == 0x2012 || c == 0x2013 || c == 0xFE63 || c == 0xFF0D) c = U'-';
    else if (c == 0xA0 || c == 0x2009 || c == 0x202F || c == 0x2007 || c == 0x3000) c = U' ';
    else if (c == 0x066B) c = U'.';  // Arabic decimal separator
    else if (c == 0x066C) c = U',';  // Arabic thousands separator
  }
  return EncodeUtf8(u);
}

Script ScriptOf(char32_t c) {
  if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= 0xC0 && c <= 0x24F && c != 0xD7 && c != 0xF7) ||
      (c >= 0x1E00 && c <= 0x1EFF))
    return Script::kLatin;
  if (c >= 0x400 && c <= 0x52F) return Script::kCyrillic;
  if ((c >= 0x370 && c <= 0x3FF && c != 0x37E && c != 0x387) || (c >= 0x1F00 && c <= 0x1FFF)) return Script::kGreek;
  if ((c >= 0x600 && c <= 0x6FF && UnicodeDigitValue(c) < 0 && c != 0x60C && c != 0x61B && c != 0x61F &&
       c != 0x66B && c != 0x66C) ||
      (c >= 0x750 && c <= 0x77F))
    return Script::kArabic;
  if (c >= 0x5D0 && c <= 0x5EA) return Script::kHebrew;
  if (c >= 0x900 && c <= 0x97F && UnicodeDigitValue(c) < 0 && c != 0x964 && c != 0x965) return Script::kDevanagari;
  if ((c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF))
    return Script::kHan;
  if (c >= 0x3041 && c <= 0x309F) return Script::kHiragana;
  if (c >= 0x30A0 && c <= 0x30FF && c != 0x30FB) return Script::kKatakana;
  if ((c >= 0xAC00 && c <= 0xD7AF) || (c >= 0x1100 && c <= 0x11FF)) return Script::kHangul;
  if (c >= 0xE01 && c <= 0xE4E && !(c >= 0xE50 && c <= 0xE59)) return Script::kThai;
  return Script::kOther;
}

namespace {
const char* kScriptNames[] = {"latin", "cyrillic", "greek",   "arabic", "hebrew", "devanagari",
                              "han",   "hiragana", "katakana", "hangul", "thai",   "other"};
}

const char* ScriptName(Script s) { return kScriptNames[static_cast<int>(s)]; }

bool ParseScript(std::string_view name, Script* out) {
  for (int i = 0; i <= static_cast<int>(Script::kOther); ++i) {
    if (name == kScriptNames[i]) {
      *out = static_cast<Script>(i);
      return true;
    }
  }
  return false;
}

bool IsLetter(char32_t c) { return ScriptOf(c) != Script::kOther; }

bool IsUpper(char32_t c) {
  if (c < 0x80) return c >= 'A' && c <= 'Z';
  if (c >= 0xC0 && c <= 0xDE) return c != 0xD7;
  if (c >= 0x100 && c <= 0x17F) return (c & 1) == 0;  // Latin Extended-A alternates upper/lower (approx.)
  if (c >= 0x391 && c <= 0x3A9) return true;
  if (c >= 0x400 && c <= 0x42F) return true;
  return false;
}

bool IsLower(char32_t c) {
  if (c < 0x80) return c >= 'a' && c <= 'z';
  if (c >= 0xDF && c <= 0xFF) return c != 0xF7;
  if (c >= 0x100 && c <= 0x17F) return (c & 1) == 1;
  if (c >= 0x3AC && c <= 0x3CE) return true;
  if (c >= 0x430 && c <= 0x45F) return true;
  return false;
}

std::string AsciiLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string Trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

}  // namespace k2::rewards
