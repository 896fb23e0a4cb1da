// Instruction-following verifier (IFEval-style): code-checked constraints on a response plus a hack
// check (a response that claims compliance while breaking a constraint scores 0).
//
// Reward "if": task spec {"constraints": [{"type": "word_count", "relation": "at_least", "num": 100}, ...]}.
// Config {"type": "if", "mode": "all" | "fraction", "hack_check": true}. Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "rewards/reward.h"

namespace k2::rewards {

struct ConstraintResult {
  bool ok = false;
  std::string detail;  // "word_count: 87 words, expected at_least 100"
};

// Checks one constraint; a malformed constraint (unknown type, missing/bad parameter) is an error naming
// `where` and the field. Types: word_count, sentence_count, paragraph_count, include_keywords,
// exclude_keywords, keyword_frequency, letter_frequency, json_format, bullet_count, title, lowercase,
// uppercase, capital_word_frequency, end_phrase, start_phrase, language, no_commas, placeholders,
// postscript, highlighted_sections, quotation, section_count (see docs/rewards.md).
Expected<ConstraintResult> CheckConstraint(std::string_view response, const json& constraint,
                                           const std::string& where);
std::vector<std::string> ConstraintTypes();

// Counting primitives (exposed for tests): words are runs of letters, digits and '_' (any script, like
// Python's \w+); sentences end in . ! ? (or 。！？) followed by whitespace or the end; paragraphs are
// separated by blank lines.
int CountWords(std::string_view text);
int CountSentences(std::string_view text);
int CountParagraphs(std::string_view text);

// True when the response asserts that it follows the instructions ("I have followed all the
// constraints", "word count: 120", "all lowercase as requested", a check mark ...).
bool ClaimsCompliance(std::string_view response);

Expected<std::unique_ptr<Reward>> MakeInstructionReward(const json& config, const std::string& where);

}  // namespace k2::rewards
