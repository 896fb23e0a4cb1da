// Value variants: copies of a training dialog with its values replaced by fresh random ones, the same
// replacement everywhere in the dialog (user turns, tool-call arguments, tool results, replies).
//
// Why: an agentic dialog's values (ids, emails, amounts, balances, totals) are copied from the context —
// from the user's first turn into a call's arguments, from a tool result into the reply. A model trained
// from random weights on a few hundred oracle dialogs memorizes the values it saw instead (measured on the
// quickstart domain: transfer amounts and new emails 0/25 and 0/20 right, totals read from the last tool
// result 1/47), because every value of the training set can be recalled. In a variant the only way to
// predict a value is to copy it, so the same dialogs teach the copying. It is counterfactual data
// augmentation (entity/value substitution) restricted to what can be replaced safely:
//   - emails "local@domain": a new local part (names + digits), the same domain;
//   - ids "ABC-1234" (2-5 capitals, a hyphen, 3-8 digits): the same prefix, new digits of the same count;
//   - non-negative decimals "41.00", "41.0", "1050.65": one new value per distinct number (so "41.00" in a
//     turn and 41.0 in a call's JSON stay equal), written with the original's number of decimals; a new
//     value keeps the original's order against every number of the system message (the rules' limits; not
//     the parts of a date), so "at most 500 per transfer" still allows or refuses the same requests, and a number equal
//     to one of them is kept.
// Integers, negative numbers, dates, names and tool declarations are left alone. Tool-call arguments stay
// valid JSON (a number replaces a number; ids and emails are replaced inside their strings).
// Written by hand: a scanner over the characters; no regex library gives "the same replacement for the
// same value across renderings".
#pragma once

#include <cstdint>

#include "sft/sft.h"

namespace k2::sft {

// Deterministic in `seed`. Dialog id gets the suffix "#vSEED".
Dialog ValueVariant(const Dialog& d, uint64_t seed);

}  // namespace k2::sft
