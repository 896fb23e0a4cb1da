// libFuzzer harness: math answer parsing (rewards/math_verifier: \boxed{} extraction, answer phrases,
// numbers, fractions, percentages, exact rationals) and the equivalence check. Input: response, NUL,
// reference answer.
#include <cstddef>
#include <cstdint>

#include "fuzz/fuzz_util.h"
#include "rewards/math_verifier.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto [response, reference] = k2::fuzz::SplitNul(std::string_view(reinterpret_cast<const char*>(data), size));
  k2::rewards::MathConfig cfg;
  auto got = k2::rewards::ExtractAnswer(response, cfg);
  auto a = k2::rewards::NormalizeAnswer(got.text);
  auto b = k2::rewards::NormalizeAnswer(reference);
  std::string why;
  bool ab = k2::rewards::AnswersEquivalent(a, b, cfg, &why);
  (void)ab;
  // Equivalence of an answer with itself.
  if (!a.values.empty() && !k2::rewards::AnswersEquivalent(a, a, cfg)) __builtin_trap();
  return 0;
}
