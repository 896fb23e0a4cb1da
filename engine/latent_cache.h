// What the model's cached (generation) route needs of a paged MLA latent KV cache, so the model
// runs generation without depending on engine/gen: engine/gen/kv_cache.h implements it.
#pragma once

#include <cstdint>

namespace k2::engine {

// Per layer and token position one row of kv_lora_rank normalized latent values followed by
// qk_rope_head_dim roped k_pe values, in pages of page_size() rows.
class LatentCache {
 public:
  virtual ~LatentCache() = default;
  virtual int64_t page_size() const = 0;
  virtual int64_t length(int32_t seq) const = 0;
  // The row of token `pos` (< length) of `layer`, writable by `seq`.
  virtual float* MutableRow(int32_t seq, int64_t layer, int64_t pos) = 0;
  // Page i of `seq` in `layer`: page_size() rows of kv_lora_rank + qk_rope_head_dim floats.
  virtual const float* PageRows(int32_t seq, int64_t layer, int64_t i) const = 0;
};

// One sequence's new tokens in a cached forward: the last n tokens of the sequence, already appended to
// the cache; logits for every row of the chunk (all_logits) or for its last row only.
struct CachedChunk {
  int32_t seq = -1;
  const int32_t* tokens = nullptr;
  int64_t n = 0;
  bool all_logits = false;
};

}  // namespace k2::engine
