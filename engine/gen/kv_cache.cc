// Paged MLA latent KV cache: page pool with reference counts, per-sequence page lists, fork and
// copy-on-write of a shared partial last page. All memory is taken in Create.
#include "engine/gen/kv_cache.h"

#include <algorithm>
#include <cstring>
#include <string>

namespace k2::gen {

Expected<KvCache> KvCache::Create(const KvCacheConfig& c) {
  if (c.num_layers < 1 || c.kv_lora_rank < 1 || c.rope_dim < 0 || c.page_size < 1 || c.num_pages < 1 ||
      c.max_sequences < 1 || c.max_tokens_per_sequence < 1)
    return InvalidArgument("kv cache: num_layers, kv_lora_rank, page_size, num_pages, max_sequences and "
                           "max_tokens_per_sequence must be >= 1 (rope_dim >= 0)");
  if (c.num_pages > (int64_t{1} << 30) || c.max_sequences > (int64_t{1} << 30))
    return InvalidArgument("kv cache: num_pages and max_sequences must be < 2^30");
  KvCache kv;
  kv.cfg_ = c;
  kv.page_floats_ = static_cast<size_t>(c.num_layers * c.page_size * (c.kv_lora_rank + c.rope_dim));
  const double bytes = static_cast<double>(kv.page_floats_) * static_cast<double>(c.num_pages) * sizeof(float);
  if (bytes > 64.0 * (1ull << 30))
    return ResourceExhausted("kv cache: " + std::to_string(bytes / (1 << 30)) + " GiB requested (limit 64 GiB)");
  kv.data_.assign(kv.page_floats_ * static_cast<size_t>(c.num_pages), 0.0f);
  kv.refs_.assign(static_cast<size_t>(c.num_pages), 0);
  kv.free_.reserve(static_cast<size_t>(c.num_pages));
  for (int64_t p = c.num_pages - 1; p >= 0; --p) kv.free_.push_back(static_cast<int32_t>(p));
  kv.max_pages_per_seq_ = kv.PagesFor(c.max_tokens_per_sequence);
  kv.seqs_.resize(static_cast<size_t>(c.max_sequences));
  for (auto& s : kv.seqs_) s.pages.reserve(static_cast<size_t>(kv.max_pages_per_seq_));
  kv.free_seqs_.reserve(static_cast<size_t>(c.max_sequences));
  for (int64_t s = c.max_sequences - 1; s >= 0; --s) kv.free_seqs_.push_back(static_cast<SeqId>(s));
  return kv;
}

Status KvCache::CheckSeq(SeqId seq) const {
  if (seq < 0 || seq >= static_cast<SeqId>(seqs_.size()) || !seqs_[static_cast<size_t>(seq)].alive)
    return InvalidArgument("kv cache: sequence " + std::to_string(seq) + " is not alive");
  return Status::Ok();
}

Expected<KvCache::SeqId> KvCache::NewSequence() {
  if (free_seqs_.empty())
    return ResourceExhausted("kv cache: all " + std::to_string(cfg_.max_sequences) + " sequence slots in use");
  SeqId id = free_seqs_.back();
  free_seqs_.pop_back();
  Seq& s = seqs_[static_cast<size_t>(id)];
  s.alive = true;
  s.length = 0;
  s.pages.clear();
  return id;
}

Expected<KvCache::SeqId> KvCache::Fork(SeqId parent) {
  K2_RETURN_IF_ERROR(CheckSeq(parent));
  K2_ASSIGN_OR_RETURN(SeqId child, NewSequence());
  const Seq& p = seqs_[static_cast<size_t>(parent)];
  Seq& c = seqs_[static_cast<size_t>(child)];
  c.length = p.length;
  c.pages.assign(p.pages.begin(), p.pages.end());  // within the reserved capacity: no allocation
  for (int32_t pg : c.pages) refs_[static_cast<size_t>(pg)]++;
  return child;
}

Status KvCache::Append(SeqId seq, int64_t n) {
  K2_RETURN_IF_ERROR(CheckSeq(seq));
  if (n < 0) return InvalidArgument("kv cache: Append of a negative count");
  Seq& s = seqs_[static_cast<size_t>(seq)];
  const int64_t new_len = s.length + n;
  if (new_len > cfg_.max_tokens_per_sequence)
    return ResourceExhausted("kv cache: sequence would hold " + std::to_string(new_len) +
                             " tokens, more than max_tokens_per_sequence " +
                             std::to_string(cfg_.max_tokens_per_sequence));
  const int64_t have = static_cast<int64_t>(s.pages.size());
  const int64_t need = PagesFor(new_len);
  const bool partial = s.length % cfg_.page_size != 0;
  const bool cow = n > 0 && partial && refs_[static_cast<size_t>(s.pages.back())] > 1;
  const int64_t want = std::max<int64_t>(0, need - have) + (cow ? 1 : 0);
  if (want > free_pages())
    return ResourceExhausted("kv cache: " + std::to_string(want) + " pages needed, " +
                             std::to_string(free_pages()) + " free of " + std::to_string(cfg_.num_pages));
  if (cow) {
    // The last page is shared and will receive new rows: give this sequence its own copy.
    int32_t old = s.pages.back();
    int32_t fresh = free_.back();
    free_.pop_back();
    refs_[static_cast<size_t>(fresh)] = 1;
    std::memcpy(PageData(fresh), PageData(old), page_floats_ * sizeof(float));
    refs_[static_cast<size_t>(old)]--;
    s.pages.back() = fresh;
  }
  for (int64_t i = have; i < need; ++i) {
    int32_t pg = free_.back();
    free_.pop_back();
    refs_[static_cast<size_t>(pg)] = 1;
    s.pages.push_back(pg);
  }
  s.length = new_len;
  return Status::Ok();
}

void KvCache::Release(int32_t page) {
  int32_t& r = refs_[static_cast<size_t>(page)];
  K2_CHECK(r > 0) << "kv cache: releasing free page " << page;
  if (--r == 0) free_.push_back(page);
}

void KvCache::Truncate(SeqId seq, int64_t new_length) {
  K2_CHECK(CheckSeq(seq).ok()) << "kv cache: Truncate of dead sequence " << seq;
  Seq& s = seqs_[static_cast<size_t>(seq)];
  K2_CHECK(new_length >= 0 && new_length <= s.length) << "kv cache: Truncate to " << new_length;
  const int64_t keep = PagesFor(new_length);
  while (static_cast<int64_t>(s.pages.size()) > keep) {
    Release(s.pages.back());
    s.pages.pop_back();
  }
  s.length = new_length;
}

void KvCache::Free(SeqId seq) {
  K2_CHECK(CheckSeq(seq).ok()) << "kv cache: Free of dead sequence " << seq;
  Seq& s = seqs_[static_cast<size_t>(seq)];
  for (int32_t pg : s.pages) Release(pg);
  s.pages.clear();
  s.length = 0;
  s.alive = false;
  free_seqs_.push_back(seq);
}

float* KvCache::MutableRow(SeqId seq, int64_t layer, int64_t pos) {
  const Seq& s = seqs_[static_cast<size_t>(seq)];
  K2_CHECK(s.alive && pos >= 0 && pos < s.length && layer >= 0 && layer < cfg_.num_layers)
      << "kv cache: row (" << seq << ", " << layer << ", " << pos << ") out of range";
  int32_t pg = s.pages[static_cast<size_t>(pos / cfg_.page_size)];
  K2_CHECK(refs_[static_cast<size_t>(pg)] == 1) << "kv cache: write into shared page " << pg;
  return PageData(pg) + static_cast<size_t>((layer * cfg_.page_size + pos % cfg_.page_size) * row_width());
}

const float* KvCache::Row(SeqId seq, int64_t layer, int64_t pos) const {
  const Seq& s = seqs_[static_cast<size_t>(seq)];
  K2_CHECK(s.alive && pos >= 0 && pos < s.length && layer >= 0 && layer < cfg_.num_layers)
      << "kv cache: row (" << seq << ", " << layer << ", " << pos << ") out of range";
  int32_t pg = s.pages[static_cast<size_t>(pos / cfg_.page_size)];
  return PageData(pg) + static_cast<size_t>((layer * cfg_.page_size + pos % cfg_.page_size) * row_width());
}

const float* KvCache::PageRows(SeqId seq, int64_t layer, int64_t i) const {
  const Seq& s = seqs_[static_cast<size_t>(seq)];
  K2_CHECK(s.alive && i >= 0 && i < static_cast<int64_t>(s.pages.size())) << "kv cache: page index " << i;
  return PageData(s.pages[static_cast<size_t>(i)]) + static_cast<size_t>(layer * cfg_.page_size * row_width());
}

int64_t KvCache::length(SeqId seq) const {
  K2_CHECK(CheckSeq(seq).ok()) << "kv cache: length of dead sequence " << seq;
  return seqs_[static_cast<size_t>(seq)].length;
}

bool KvCache::alive(SeqId seq) const { return CheckSeq(seq).ok(); }

const std::vector<int32_t>& KvCache::pages(SeqId seq) const {
  K2_CHECK(CheckSeq(seq).ok()) << "kv cache: pages of dead sequence " << seq;
  return seqs_[static_cast<size_t>(seq)].pages;
}

int64_t KvCache::live_sequences() const {
  return static_cast<int64_t>(seqs_.size() - free_seqs_.size());
}

}  // namespace k2::gen
