// Paged MLA latent KV cache: per layer and token only the normalized kv latent [kv_lora_rank] and the
// roped shared key k_pe [qk_rope_head_dim]; fixed-size pages with reference counts (prefix sharing).
//
// Memory is planned at Create: num_pages pages, each [num_layers, page_size, kv_lora_rank + rope_dim]
// floats, plus a fixed table of max_sequences sequences whose page lists are reserved up to
// max_pages_per_sequence — Append/Fork/Free never allocate heap memory.
// Sharing: Fork gives a new sequence the parent's page list (every page's count + 1). A sequence may
// only write the token rows it appended itself, and Append makes them writable: when its last page is
// partially filled and shared, Append copies that page first (copy-on-write), so the other holders
// keep their contents. Full shared pages are never written again and stay shared.
// Thread safety: none; one owner thread (the generator's loop). Failure: Append/Fork/NewSequence return
// ResourceExhausted (no page / no sequence slot / too long) and leave the cache unchanged.
#pragma once

#include <cstdint>
#include <vector>

#include "core/status.h"
#include "engine/latent_cache.h"

namespace k2::gen {

struct KvCacheConfig {
  int64_t num_layers = 1;
  int64_t kv_lora_rank = 16;  // latent width rkv
  int64_t rope_dim = 8;       // qk_rope_head_dim dr
  int64_t page_size = 16;     // tokens per page
  int64_t num_pages = 64;
  int64_t max_sequences = 64;
  int64_t max_tokens_per_sequence = 4096;  // bounds the page list of one sequence
};

class KvCache final : public engine::LatentCache {
 public:
  using SeqId = int32_t;

  static Expected<KvCache> Create(const KvCacheConfig& cfg);

  // A new empty sequence.
  Expected<SeqId> NewSequence();
  // A new sequence sharing all of `parent`'s pages (no copy, no page allocated).
  Expected<SeqId> Fork(SeqId parent);
  // Grows `seq` by n tokens; afterwards rows [old_len, old_len+n) of every layer are writable by `seq`
  // alone. Allocates ceil((len+n)/P) - ceil(len/P) pages, plus one when the last page is partial and
  // shared (copy-on-write). ResourceExhausted (unchanged cache) when pages or the length cap run out.
  Status Append(SeqId seq, int64_t n);
  // Drops the last n tokens (n <= length); pages no longer covered are released.
  void Truncate(SeqId seq, int64_t new_length);
  // Releases the sequence and its page references.
  void Free(SeqId seq);

  // Row of token `pos` (< length) in `layer`: [kv_lora_rank] latent followed by [rope_dim] k_pe.
  // The mutable form K2_CHECKs that the row's page is held by `seq` alone.
  float* MutableRow(SeqId seq, int64_t layer, int64_t pos) override;
  const float* Row(SeqId seq, int64_t layer, int64_t pos) const;
  // Page `i` of `seq` in `layer`: page_size rows with stride row_width(), first row = token i*page_size.
  const float* PageRows(SeqId seq, int64_t layer, int64_t i) const override;

  int64_t length(SeqId seq) const override;
  int64_t page_size() const override { return cfg_.page_size; }
  bool alive(SeqId seq) const;
  int64_t free_pages() const { return static_cast<int64_t>(free_.size()); }
  int64_t ref_count(int32_t page) const { return refs_[static_cast<size_t>(page)]; }
  const std::vector<int32_t>& pages(SeqId seq) const;
  int64_t row_width() const { return cfg_.kv_lora_rank + cfg_.rope_dim; }
  int64_t bytes_per_token() const { return cfg_.num_layers * row_width() * static_cast<int64_t>(sizeof(float)); }
  int64_t capacity_bytes() const { return static_cast<int64_t>(data_.size() * sizeof(float)); }
  int64_t live_sequences() const;
  const KvCacheConfig& config() const { return cfg_; }
  // Pages needed to hold n tokens from scratch.
  int64_t PagesFor(int64_t n) const { return (n + cfg_.page_size - 1) / cfg_.page_size; }

 private:
  struct Seq {
    bool alive = false;
    int64_t length = 0;
    std::vector<int32_t> pages;  // capacity reserved at Create
  };
  float* PageData(int32_t page) { return data_.data() + static_cast<size_t>(page) * page_floats_; }
  const float* PageData(int32_t page) const { return data_.data() + static_cast<size_t>(page) * page_floats_; }
  void Release(int32_t page);
  Status CheckSeq(SeqId seq) const;

  KvCacheConfig cfg_;
  size_t page_floats_ = 0;
  int64_t max_pages_per_seq_ = 0;
  std::vector<float> data_;
  std::vector<int32_t> refs_;
  std::vector<int32_t> free_;      // stack of free page ids
  std::vector<Seq> seqs_;
  std::vector<SeqId> free_seqs_;   // stack of free sequence slots
};

}  // namespace k2::gen
