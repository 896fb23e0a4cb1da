// The generator's cached forward: engine::CachedForward (the model's absorbed route, engine/cached_forward.cc)
// bound to one paged KvCache.
#pragma once

#include <cstdint>
#include <vector>

#include "core/status.h"
#include "engine/engine.h"
#include "engine/gen/kv_cache.h"

namespace k2::gen {

class CachedDecoder {
 public:
  using Chunk = engine::CachedChunk;  // seq is a KvCache::SeqId

  // max_rows: rows (tokens) per Forward; max_chunk: longest chunk; max_context: longest sequence.
  CachedDecoder(engine::Model<float>* model, KvCache* kv, int64_t max_rows, int64_t max_chunk, int64_t max_context)
      : kv_(kv), fwd_(model, max_rows, max_chunk, max_context) {}

  // Runs the chunks (each sequence at most once per call; errors as engine::CachedForward::Forward).
  Status Forward(const std::vector<Chunk>& chunks) { return fwd_.Forward(chunks, kv_); }
  const float* logits() const { return fwd_.logits(); }
  int64_t logit_rows() const { return fwd_.logit_rows(); }
  int64_t max_rows() const { return fwd_.max_rows(); }

 private:
  KvCache* kv_;
  engine::CachedForward<float> fwd_;
};

}  // namespace k2::gen
