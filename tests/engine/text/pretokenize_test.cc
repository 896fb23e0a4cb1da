// Tests of engine/text/pretokenize: the PCRE2 translation of Kimi-K2's pattern against golden splits
// from an independent engine (Python `regex`), the intersection rewrite, UTF-8 runs and invalid bytes.
#include "engine/text/pretokenize.h"

#include <gtest/gtest.h>

#include "core/json.h"
#include "core/rng.h"

namespace k2::text {
namespace {

std::vector<std::string> SplitAll(const Pretokenizer& p, std::string_view s) {
  std::vector<std::string_view> v;
  p.Split(s, &v);
  return {v.begin(), v.end()};
}

Pretokenizer Kimi() {
  auto p = Pretokenizer::Create(kKimiPattern);
  K2_CHECK(p.ok()) << p.status().ToString();
  return *p;
}

// Pins the PCRE2 translation to tiktoken semantics: every golden case (fixed tricky strings plus 300
// random mixes of scripts, marks, titlecase, modifier letters, digits of other scripts, emoji and
// unusual spaces) must split exactly as the Python regex engine splits it with the original pattern.
TEST(Pretokenizer, KimiPatternMatchesGoldenSplitsFromPythonRegex) {
  auto cases = ReadJsonFile(std::string(K2GYM_SOURCE_DIR) + "/tests/engine/text/testdata/kimi_pretokenize_golden.json");
  ASSERT_TRUE(cases.ok()) << cases.status().ToString();
  ASSERT_GE(cases->size(), 300u);
  Pretokenizer p = Kimi();
  int mismatches = 0;
  for (auto& c : *cases) {
    std::string text = c["text"];
    std::vector<std::string> want = c["pieces"];
    auto got = SplitAll(p, text);
    std::vector<std::string_view> ref_views;
    p.SplitReference(text, &ref_views);  // PCRE2 on the translated pattern
    std::vector<std::string> ref(ref_views.begin(), ref_views.end());
    if (ref != want && ++mismatches <= 5) ADD_FAILURE() << "PCRE2 reference differs on " << json(text).dump();
    if (got != want && ++mismatches <= 5) {
      ADD_FAILURE() << "text " << json(text).dump() << "\n  got  " << json(got).dump() << "\n  want "
                    << json(want).dump();
    }
  }
  EXPECT_EQ(mismatches, 0);
}

TEST(Pretokenizer, HanIsSplitFromOtherLettersByTheIntersection) {
  Pretokenizer p = Kimi();
  EXPECT_EQ(SplitAll(p, "Hello世界World"), (std::vector<std::string>{"Hello", "世界", "World"}));
  // Kana are Lo but not Han: they stay in the letter alternative.
  EXPECT_EQ(SplitAll(p, "ひらがな漢字"), (std::vector<std::string>{"ひらがな", "漢字"}));
}

TEST(TranslateClassIntersections, RewritesIntersectionsAsLookaheads) {
  auto t = TranslateClassIntersections(R"([\p{L}&&[^\p{Han}]]+)");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(*t, R"((?:(?=[^\p{Han}])[\p{L}])+)");
  auto three = TranslateClassIntersections(R"([a-z&&[^aeiou]&&[^xyz]])");
  ASSERT_TRUE(three.ok());
  EXPECT_EQ(*three, R"((?:(?=[^aeiou])(?=[^xyz])[a-z]))");
}

TEST(TranslateClassIntersections, LeavesOrdinaryClassesAndEscapesAlone) {
  for (std::string p : {R"([^\r\n\p{L}\p{N}]?)", R"(\[&&\])", R"([[:alpha:]]+)", R"(a&&b)", R"([]a])"}) {
    auto t = TranslateClassIntersections(p);
    ASSERT_TRUE(t.ok()) << p;
    EXPECT_EQ(*t, p);
  }
}

TEST(TranslateClassIntersections, RejectsUnbalancedAndNegatedIntersections) {
  auto a = TranslateClassIntersections("[abc");
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.status().message().find("byte 0"), std::string::npos);
  auto b = TranslateClassIntersections("x[^a-z&&[^b]]");
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.status().message().find("negated"), std::string::npos);
  auto c = TranslateClassIntersections("[a&&]");
  EXPECT_FALSE(c.ok());
}

TEST(Pretokenizer, IntersectionEqualsExplicitClassOnEveryCodePointSample) {
  // [\p{L}&&[^\p{Han}]] must accept exactly the letters that are not Han: compare with the
  // subtraction spelled through two separate PCRE2 patterns on sampled code points.
  auto inter = Pretokenizer::Create(R"([\p{L}&&[^\p{Han}]])");
  auto letter = Pretokenizer::Create(R"(\p{L})");
  auto han = Pretokenizer::Create(R"(\p{Han})");
  ASSERT_TRUE(inter.ok() && letter.ok() && han.ok());
  auto encode = [](uint32_t cp) {
    std::string s;
    if (cp < 0x80) {
      s += char(cp);
    } else if (cp < 0x800) {
      s += char(0xC0 | (cp >> 6)), s += char(0x80 | (cp & 63));
    } else if (cp < 0x10000) {
      s += char(0xE0 | (cp >> 12)), s += char(0x80 | ((cp >> 6) & 63)), s += char(0x80 | (cp & 63));
    } else {
      s += char(0xF0 | (cp >> 18)), s += char(0x80 | ((cp >> 12) & 63)), s += char(0x80 | ((cp >> 6) & 63)),
          s += char(0x80 | (cp & 63));
    }
    return s;
  };
  // A pattern that matches one char yields that char as a piece; a non-matching char is a gap piece
  // too, so "matched" is told apart by a sentinel: split "c!" and check whether c was matched alone.
  auto matches = [](const Pretokenizer& p, const std::string& c) {
    std::vector<std::string_view> v;
    p.Split(c + "\x01" + c, &v);
    return v.size() == 3;  // c, "\x01"+... gap, c  when c matches; one gap piece otherwise
  };
  int checked = 0;
  for (uint32_t cp = 0x20; cp < 0x30000; cp += (cp < 0x3000 ? 1 : 7)) {
    if (cp >= 0xD800 && cp <= 0xDFFF) continue;
    std::string c = encode(cp);
    bool want = matches(*letter, c) && !matches(*han, c);
    ASSERT_EQ(matches(*inter, c), want) << "U+" << std::hex << cp;
    ++checked;
  }
  EXPECT_GT(checked, 10000);
}

TEST(ValidUtf8Prefix, AcceptsValidAndStopsAtEachKindOfInvalidSequence) {
  EXPECT_EQ(ValidUtf8Prefix("abc"), 3u);
  EXPECT_EQ(ValidUtf8Prefix("é中😀"), 2u + 3u + 4u);
  EXPECT_EQ(ValidUtf8Prefix("a\x80"), 1u);               // lone continuation
  EXPECT_EQ(ValidUtf8Prefix("a\xC0\xAF"), 1u);           // overlong 2-byte
  EXPECT_EQ(ValidUtf8Prefix("a\xE0\x80\xAF"), 1u);       // overlong 3-byte
  EXPECT_EQ(ValidUtf8Prefix("a\xED\xA0\x80"), 1u);       // surrogate
  EXPECT_EQ(ValidUtf8Prefix("a\xF4\x90\x80\x80"), 1u);   // > U+10FFFF
  EXPECT_EQ(ValidUtf8Prefix("a\xE4\xB8"), 1u);           // truncated
  EXPECT_EQ(ValidUtf8Prefix("a\xFF"), 1u);
}

TEST(Pretokenizer, InvalidBytesBecomeSingleBytePiecesAndNothingIsLost) {
  Pretokenizer p = Kimi();
  std::string s = "ab\xFF\xFE cd\xE4\xB8 中";
  auto got = SplitAll(p, s);
  EXPECT_EQ(got, (std::vector<std::string>{"ab", "\xFF", "\xFE", " cd", "\xE4", "\xB8", " ", "中"}));
}

TEST(Pretokenizer, PiecesConcatenateToTheInputOnRandomBytes) {
  Pretokenizer p = Kimi();
  Rng rng(7);
  for (int t = 0; t < 500; ++t) {
    std::string s;
    size_t n = rng.Below(64);
    for (size_t i = 0; i < n; ++i) s += char(rng.Below(256));
    std::string joined;
    for (auto& piece : SplitAll(p, s)) {
      ASSERT_FALSE(piece.empty());
      joined += piece;
    }
    ASSERT_EQ(joined, s);
  }
}

TEST(Pretokenizer, LongWhitespaceAndSymbolRunsSplitWithoutError) {
  Pretokenizer p = Kimi();
  std::string s(200000, ' ');
  s += "x";
  s += std::string(100000, '!');
  auto got = SplitAll(p, s);
  std::string joined;
  for (auto& piece : got) joined += piece;
  EXPECT_EQ(joined, s);
  // "\s+(?!\S)" leaves the last space to join the word, as tiktoken does.
  ASSERT_GE(got.size(), 2u);
  EXPECT_EQ(got[0].size(), 199999u);
  EXPECT_EQ(got[1], " x");
}

TEST(Pretokenizer, CreateReportsPcre2ErrorsWithOffset) {
  auto p = Pretokenizer::Create("(abc");
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), Code::kInvalidArgument);
  EXPECT_NE(p.status().message().find("at byte"), std::string::npos);
}

TEST(Pretokenizer, EmptyMatchesDoNotLoop) {
  auto p = Pretokenizer::Create("x*");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(SplitAll(*p, "abxxc"), (std::vector<std::string>{"ab", "xx", "c"}));
}

}  // namespace
}  // namespace k2::text

namespace k2::text {
namespace {

// Regression: PCRE2 10.40+ matches \p{Han} by Script_Extensions, which put '。' (U+3002) inside a Han
// run ("这是一段中文文本。" as one piece); tiktoken splits it off.
TEST(Pretokenizer, HanMeansTheScriptPropertyNotScriptExtensions) {
  Pretokenizer p = Kimi();
  EXPECT_EQ(SplitAll(p, "文本。"), (std::vector<std::string>{"文本", "。"}));
  EXPECT_EQ(ScriptPropertiesAsScript(R"([\p{Han}\p{L}\P{Greek}\p{^Han}\p{sc:Han}\\p{Han}])"),
            R"([\p{sc:Han}\p{L}\P{sc:Greek}\p{^sc:Han}\p{sc:Han}\\p{Han}])");
}

}  // namespace
}  // namespace k2::text

namespace k2::text {
namespace {

// The hand-written Kimi splitter (fast path) against PCRE2 running the translated pattern
// (reference), on random strings drawn from characters at every class boundary of the pattern.
class KimiFastSplitter : public testing::TestWithParam<const char*> {};

TEST_P(KimiFastSplitter, EqualsPcre2OnRandomText) {
  auto created = Pretokenizer::Create(GetParam());
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  const Pretokenizer& p = *created;
  ASSERT_TRUE(p.has_fast_path());
  const std::vector<std::string> pool = {
      "a", "Z", "q", "É", "é", "ß", "ǅ", "ʰ", "ª", "\u0301", "\u0308", "\u0903", "中", "文", "〆", "々", "。", "、",
      "ひ", "カ", "ー", "한", "Ж", "ж", "Δ", "δ", "ſ", "K", "0", "9", "٣", "²", "Ⅻ", "１", "½", " ", "  ", "\t", "\n",
      "\r", "\r\n", "\u3000", "\u00a0", "\u2028", "\u0085", "\x0b", "\x0c", "\x1c", "'", "'s", "'S", "'ll", "'LL",
      "'re", "'ve", "'m", "'d", "'t", "'x", "'ſ", ".", ",", "!", "?", "-", "_", "(", "$", "€", "😀", "👍", "\u200d",
      "\u200b", "\ufeff", "\U0001F1EB", "\U00020000", "\U000E0101", "\U000F0000", "#", "@", "x²"};
  Rng rng(77);
  for (int t = 0; t < 20000; ++t) {
    std::string s;
    for (uint64_t i = 0, n = 1 + rng.Below(24); i < n; ++i) s += pool[rng.Below(pool.size())];
    std::vector<std::string_view> fast, ref;
    p.Split(s, &fast);
    p.SplitReference(s, &ref);
    ASSERT_EQ(std::vector<std::string>(fast.begin(), fast.end()), std::vector<std::string>(ref.begin(), ref.end()))
        << json(s).dump();
  }
  // And on the golden corpus and generated multilingual text with invalid bytes.
  std::string text;
  for (int i = 0; i < 2000; ++i) text += pool[rng.Below(pool.size())] + (rng.Bernoulli(0.02) ? "\xff" : "");
  std::vector<std::string_view> fast, ref;
  p.Split(text, &fast);
  p.SplitReference(text, &ref);
  EXPECT_EQ(fast, ref);
}

INSTANTIATE_TEST_SUITE_P(Patterns, KimiFastSplitter, testing::Values(kKimiPattern, kKimiDigitPattern),
                         [](const testing::TestParamInfo<const char*>& i) {
                           return std::string(i.param == kKimiPattern ? "Kimi" : "KimiDigits");
                         });

TEST(Pretokenizer, DigitPatternSplitsEveryDigitAndNothingElse) {
  auto p = Pretokenizer::Create(kKimiDigitPattern);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(SplitAll(*p, "id TRA-1001 paid 41.00"),
            (std::vector<std::string>{"id", " TRA", "-", "1", "0", "0", "1", " paid", " ", "4", "1", ".", "0", "0"}));
  EXPECT_EQ(SplitAll(Kimi(), "id TRA-1001 paid 41.00"),
            (std::vector<std::string>{"id", " TRA", "-", "100", "1", " paid", " ", "41", ".", "00"}));
}

TEST(Pretokenizer, OtherPatternsHaveNoFastPath) {
  auto p = Pretokenizer::Create(R"(\p{L}+|\s+|.)");
  ASSERT_TRUE(p.ok());
  EXPECT_FALSE(p->has_fast_path());
}

}  // namespace
}  // namespace k2::text
