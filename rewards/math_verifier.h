// Math verifier (RLVR): final-answer extraction from a response, normalization of LaTeX / plain answers,
// and equivalence by exact rational comparison with a numeric-tolerance fallback for decimals.
//
// Reward "math": task spec {"reference": "<answer>" | number}; value 1 when the response's final answer
// is equivalent, else 0 with the reason. Pure functions; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rewards/rational.h"
#include "rewards/reward.h"

namespace k2::rewards {

struct MathConfig {
  double rel_tol = 1e-6;        // tolerance, used only when either side is a decimal with a fractional part
  bool strip_reasoning = true;  // ignore <think>...</think> (an answer only there does not count)
  bool reject_hedging = true;   // several \boxed{} with different values score 0
};

struct ExtractedAnswer {
  std::string text;    // the raw answer text ("" when none was found)
  std::string method;  // "boxed", "answer_phrase", "last_number", "none", "hedged"
};

// Extraction order: last \boxed{...}/\fbox{...} (balanced, nested braces) -> last "final answer:" /
// "answer:" / "answer is" phrase (rest of its line) -> last number in the text.
ExtractedAnswer ExtractAnswer(std::string_view response, const MathConfig& cfg = {});

struct NormalizedAnswer {
  std::string text;                // canonical text (whitespace-free, lower-case) for non-numeric compare
  std::vector<Rational> values;    // exact values (two for a percentage: p and p/100); empty if not numeric
  bool inexact = false;            // written as a decimal with a fractional part (tolerance applies)
};

// Unicode digits folded; $, \(\), \left/\right, spacing commands, \text{units}, degrees, currency,
// "x =" prefixes, thousands separators removed; \frac/\dfrac/\tfrac, a/b, decimals, 1.5e3,
// 1.5\times10^{3}, +-*/^ and parentheses evaluated exactly over rationals.
NormalizedAnswer NormalizeAnswer(std::string_view answer);

// True when equivalent; `why` (optional) gets a short reason.
bool AnswersEquivalent(const NormalizedAnswer& a, const NormalizedAnswer& b, const MathConfig& cfg,
                       std::string* why = nullptr);

// Config: {"type": "math", "rel_tol": 1e-6, "strip_reasoning": true, "reject_hedging": true}.
Expected<std::unique_ptr<Reward>> MakeMathReward(const json& config, const std::string& where);

}  // namespace k2::rewards
