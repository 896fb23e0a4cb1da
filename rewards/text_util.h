// UTF-8 text helpers shared by the verifiers: decoding to code points, script and case classes, and
// folding of look-alike characters (unicode digits, fullwidth forms, unicode minus) to ASCII.
// Pure functions; invalid UTF-8 decodes to U+FFFD per bad byte (model output is data, never an error).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace k2::rewards {

std::u32string DecodeUtf8(std::string_view s);
std::string EncodeUtf8(std::u32string_view s);

// Maps decimal digits of other scripts (Arabic-Indic, Devanagari, Bengali, Thai, fullwidth, ...) to
// '0'-'9', fullwidth ASCII forms to ASCII, U+2212 MINUS SIGN and dashes used as minus to '-',
// no-break and thin spaces to ' '. Everything else is kept.
std::string FoldToAscii(std::string_view s);

// 0-9 value of a unicode decimal digit, or -1.
int UnicodeDigitValue(char32_t c);

enum class Script { kLatin, kCyrillic, kGreek, kArabic, kHebrew, kDevanagari, kHan, kHiragana, kKatakana,
                    kHangul, kThai, kOther };
Script ScriptOf(char32_t c);           // kOther for digits, punctuation, spaces
const char* ScriptName(Script s);      // "latin", "cyrillic", ...
bool ParseScript(std::string_view name, Script* out);
bool IsLetter(char32_t c);             // a code point of a known script
bool IsUpper(char32_t c);              // cased scripts only (Latin, Greek, Cyrillic)
bool IsLower(char32_t c);

std::string AsciiLower(std::string_view s);
std::string Trim(std::string_view s);

}  // namespace k2::rewards
