// Pre-tokenization for byte-level BPE: splits text into pieces with a tiktoken-style regex run by
// PCRE2 (UTF + UCP), after cutting the input into valid-UTF-8 runs so that invalid bytes survive.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace k2::text {

// Kimi-K2's pre-tokenization pattern (tokenization_kimi.py), in tiktoken syntax. It uses character-class
// intersections ([...&&[^\p{Han}]]) which PCRE2 lacks; TranslateClassIntersections rewrites them.
extern const char* const kKimiPattern;
// kKimiPattern with \p{N} for \p{N}{1,3}: one digit per piece (`tokenizer train --split-digits`).
extern const char* const kKimiDigitPattern;

// Rewrites every character class with a top-level intersection, [A&&B&&C] (operands are nested classes
// or implicit unions of items), into the equivalent (?:(?=[B])(?=[C])[A]): one character that is in
// every operand. Nothing else changes. InvalidArgument (naming the byte offset) for an unbalanced class
// or a negated intersection ([^A&&B]), which has no single-lookahead form.
Expected<std::string> TranslateClassIntersections(std::string_view pattern);

// PCRE2 (>= 10.40) matches \p{Han} by Script_Extensions, so U+3001 '、' and U+3002 '。' would count as
// Han; tiktoken's engine (and Python's regex) use the Script property. Rewrites \p{Script} and
// \P{Script} (anything that is not a general category or PCRE2's own X.. classes) to \p{sc:Script}.
std::string ScriptPropertiesAsScript(std::string_view pattern);
// Both rewrites: the pattern PCRE2 compiles for a tiktoken-syntax pattern.
Expected<std::string> TranslateForPcre2(std::string_view pattern);

// Length of the longest prefix of `s` that is valid UTF-8 (no overlongs, surrogates or > U+10FFFF).
size_t ValidUtf8Prefix(std::string_view s);
inline bool IsValidUtf8(std::string_view s) { return ValidUtf8Prefix(s) == s.size(); }

// A compiled pre-tokenizer. Immutable after Create; Split is thread-safe (each call owns its match
// data). Copies share the compiled pattern.
class Pretokenizer {
 public:
  // `pattern` in tiktoken syntax (intersections allowed). InvalidArgument with PCRE2's message and offset.
  static Expected<Pretokenizer> Create(const std::string& pattern);

  // Appends the pieces of `text` to *out; their concatenation is exactly `text`. Valid UTF-8 runs are
  // split by the regex (leftmost-first alternation, like tiktoken); text the regex does not match
  // becomes its own piece (tiktoken would drop it: we never lose bytes); each byte that is not part of
  // valid UTF-8 is a piece of one byte. The views point into `text`.
  // For Kimi-K2's pattern (and its digit-splitting variant) the valid runs go through a hand-written splitter (engine/text/kimi_split.h);
  // every other pattern runs on PCRE2.
  void Split(std::string_view text, std::vector<std::string_view>* out) const;
  // Always PCRE2: the reference that tests and the benchmark compare the fast splitter with.
  void SplitReference(std::string_view text, std::vector<std::string_view>* out) const;
  bool has_fast_path() const { return fast_digits_ > 0; }

  const std::string& pattern() const { return pattern_; }        // as given
  const std::string& pcre2_pattern() const { return compiled_; }  // after translation

 private:
  struct Code;
  void SplitValid(std::string_view text, std::vector<std::string_view>* out) const;
  void SplitRuns(std::string_view text, int fast_digits, std::vector<std::string_view>* out) const;
  std::string pattern_, compiled_;
  int fast_digits_ = 0;  // > 0: the hand-written splitter with this many digits per number piece
  std::shared_ptr<const Code> code_;
};

}  // namespace k2::text
