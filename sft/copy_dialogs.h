// Synthetic copy dialogs: a warm-up for models fine-tuned from random weights.
//
// Agentic tasks are mostly copying: an id or email from the user's turn into a tool call's arguments,
// an amount from a tool result into the reply. A pretrained base model brings that ability (induction
// heads); the small models here start from random weights and, measured on the quickstart's domain,
// still copy ids at chance (6/40 first calls right, held-out success 0%) after 912 SFT steps on 456
// oracle dialogs. Short dialogs whose only content is copying teach it in a few hundred steps (36/40
// after 700 steps with 3,000 echo dialogs mixed in). Two kinds, two echo dialogs to one lookup:
//   - echo: the user states 1-3 values (ids like "KXQ-4821", emails, amounts); the assistant repeats
//     them as a list, a sentence or a JSON object;
//   - lookup: the user shows a compact JSON record and asks for one field; the assistant states it
//     (floats with two decimals, as the synthetic domains' replies do).
// Each starts with an empty system message (shorter than the template's default system prompt).
// Values are random (never drawn from a task or domain), so nothing about the evaluation leaks.
// Deterministic in `seed`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/rng.h"
#include "sft/sft.h"

namespace k2::sft {

std::vector<Dialog> MakeCopyDialogs(int64_t n, uint64_t seed);

// The local part of a random email: a first name, sometimes ".lastname", and 0-5 digits ("lina.ortiz4821").
std::string RandomEmailLocal(Rng& r);

}  // namespace k2::sft
