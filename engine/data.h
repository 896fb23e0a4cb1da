// Byte-level pretraining data: a text corpus read as bytes (token = byte, vocab >= 256), batch sampling
// from a seeded RNG (state saved in checkpoints), and a synthetic corpus generator for demos and tests.
// Until the tokenizer lands ([engine-text]) this is the data path of `k2gym pretrain`.
#pragma once

#include <cstdint>
#include <string>

#include "core/rng.h"
#include "core/status.h"
#include "engine/engine.h"

namespace k2::engine {

// Reads the corpus; errors when it holds fewer than T+1 bytes (no full window).
Expected<std::string> LoadByteCorpus(const std::string& path, int64_t T);

// Fills `out` with B windows of T+1 bytes starting at uniform offsets drawn from `rng` (tokens = bytes
// [0,T), targets = bytes [1,T], weights 1). Reuses out's storage. corpus.size() must be > T.
void SampleByteBatch(const std::string& corpus, int64_t B, int64_t T, Rng& rng, Batch* out);

// Deterministic synthetic English-like text (a small grammar of sentences plus sums such as
// "17 plus 25 is 42."): structured enough that a tiny model's loss falls within a few hundred steps.
std::string GenerateCorpus(uint64_t seed, int64_t bytes);

}  // namespace k2::engine
