// BPE training for k2gym's small models: learns tiktoken-style ranks from a corpus, deterministically
// (same corpus and options -> same ranks, whatever the thread count).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "engine/text/tokenizer.h"

namespace k2::text {

struct BpeTrainOptions {
  // Total vocabulary of the model: 256 byte tokens + learned merges + the special block
  // (num_reserved). Training stops earlier when no pair occurs min_pair_count times; the result's
  // vocab_size() then is smaller.
  int vocab_size = 4096;
  int min_pair_count = 2;
  std::string pattern = kKimiPattern;
  int num_reserved = kKimiNumReservedSpecial;  // Kimi-K2's special layout is placed after the ranks
  int threads = 0;                             // pre-tokenization threads; <= 0: hardware concurrency
  bool progress = false;                       // a progress line on stderr
};

// Counts of the corpus' pre-tokenized pieces, sorted by piece bytes (the deterministic input of both
// trainers). Splits the corpus only at a newline followed by a non-space ASCII byte, where no
// piece of the patterns we use can cross, so the counts do not depend on `threads`.
Expected<std::vector<std::pair<std::string, int64_t>>> CountPieces(std::string_view corpus,
                                                                    const BpeTrainOptions& opt);

// Learned ranks: the 256 single bytes (rank = byte value) then one token per merge. Each merge joins
// the most frequent adjacent pair (ties: the smaller left id, then the smaller right id); a merge
// whose bytes already are a token reuses it. Incremental pair counts with a lazy max-heap.
Expected<std::vector<std::string>> TrainBpeRanks(std::string_view corpus, const BpeTrainOptions& opt);
// The slow reference: recounts every pair of every word before each merge. Tests compare the two.
Expected<std::vector<std::string>> TrainBpeRanksReference(std::string_view corpus, const BpeTrainOptions& opt);

// TrainBpeRanks + Tokenizer::Create with the options' pattern and Kimi-K2's special layout.
Expected<Tokenizer> TrainBpe(std::string_view corpus, const BpeTrainOptions& opt);

}  // namespace k2::text
