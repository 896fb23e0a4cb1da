// A deterministic multilingual text generator for the engine/text tests and benchmark: English,
// Chinese, Japanese, Russian, Greek, accents, emoji, numbers, code and JSON, from a seeded k2::Rng.
#pragma once

#include <string>
#include <vector>

#include "core/rng.h"

namespace k2::text::testing {

inline std::string GenerateCorpus(uint64_t seed, size_t bytes) {
  static const std::vector<std::string> kWords = {
      "the", "of", "and", "to", "in", "is", "tool", "call", "weather", "agent", "reward", "policy", "model",
      "token", "The", "Model", "Kimi", "JSON", "HTTP", "don't", "it's", "we'll", "you're", "naïve", "café",
      "résumé", "über", "straße", "你好", "世界", "模型", "工具", "调用", "天气", "北京", "上海", "こんにちは",
      "ありがとう", "カタカナ", "東京", "Привет", "мир", "модель", "Ελληνικά", "κείμενο", "한국어", "문장",
      "😀", "👍🏽", "🚀", "العربية", "ภาษาไทย", "e\u0301", "x²", "Ⅻ"};
  static const std::vector<std::string> kPunct = {".", ",", "!", "?", ":", ";", " -", " —", "...", "（", "）",
                                                  "。", "，", "\"", "'", "(", ")"};
  static const std::vector<std::string> kSnippets = {
      "{\"name\":\"get_weather\",\"arguments\":{\"city\":\"Paris\",\"days\":3}}",
      "def f(x):\n    return x ** 2  # square\n", "    for (int i = 0; i < n; ++i) sum += a[i];\n",
      "https://example.com/path?q=1&r=2", "user@example.org", "\t\tindented\ttabs\n", "\r\n", "\n\n",
      "   ", "<|im_end|>"};
  Rng rng(seed);
  std::string out;
  out.reserve(bytes + 64);
  while (out.size() < bytes) {
    uint64_t r = rng.Below(100);
    if (r < 70) {
      if (!out.empty() && rng.Below(4) != 0) out += ' ';
      out += kWords[rng.Below(kWords.size())];
    } else if (r < 82) {
      out += kPunct[rng.Below(kPunct.size())];
    } else if (r < 90) {
      out += ' ' + std::to_string(rng.Below(100000));
    } else if (r < 96) {
      out += kSnippets[rng.Below(kSnippets.size())];
    } else {
      out += '\n';
    }
  }
  return out;
}

}  // namespace k2::text::testing
