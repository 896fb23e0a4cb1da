// Internal to engine/text: a hand-written splitter equal to Kimi-K2's pre-tokenization regex, the fast
// path of Pretokenizer for that pattern (PCRE2 stays the reference; tests compare the two).
#pragma once

#include <string_view>
#include <vector>

namespace k2::text::detail {

// Splits valid UTF-8 exactly as PCRE2 does with kKimiPattern (leftmost-first alternation, the same
// backtracking). Character classes come from a per-code-point table that PCRE2 itself classifies once
// per process (first call, ~0.1-0.3 s), so both paths share one Unicode database. Thread-safe.
// max_digits 3 is kKimiPattern's \p{N}{1,3}; 1 is kKimiDigitPattern's \p{N}.
void KimiSplitValid(std::string_view text, std::vector<std::string_view>* out, int max_digits = 3);

}  // namespace k2::text::detail
