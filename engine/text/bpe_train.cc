// BPE training: parallel piece counting, then merges driven by incremental pair counts and a lazy
// max-heap (fast) or by a full recount per merge (reference).
#include "engine/text/bpe_train.h"

#include <algorithm>
#include <map>
#include <queue>
#include <unordered_map>

#include "core/progress.h"
#include "core/thread_pool.h"

namespace k2::text {

namespace {

Status CheckOptions(const BpeTrainOptions& opt) {
  int min_vocab = 256 + opt.num_reserved;
  if (opt.vocab_size < min_vocab)
    return InvalidArgument("vocab_size: expected >= " + std::to_string(min_vocab) + " (256 bytes + " +
                           std::to_string(opt.num_reserved) + " special tokens), got " + std::to_string(opt.vocab_size));
  if (opt.min_pair_count < 1)
    return InvalidArgument("min_pair_count: expected >= 1, got " + std::to_string(opt.min_pair_count));
  return Status::Ok();
}

// Chunk boundaries (byte offsets, first 0, last corpus.size()) at "\n" + non-space ASCII.
std::vector<size_t> ChunkBounds(std::string_view corpus, size_t target_chunks) {
  std::vector<size_t> b{0};
  size_t step = std::max<size_t>(1 << 16, corpus.size() / std::max<size_t>(1, target_chunks));
  size_t pos = step;
  while (pos < corpus.size()) {
    size_t nl = corpus.find('\n', pos);
    while (nl != std::string_view::npos && nl + 1 < corpus.size()) {
      unsigned char c = corpus[nl + 1];
      if (c < 0x80 && c > ' ' && c != 0x7F) break;
      nl = corpus.find('\n', nl + 1);
    }
    if (nl == std::string_view::npos || nl + 1 >= corpus.size()) break;
    b.push_back(nl + 1);
    pos = nl + 1 + step;
  }
  b.push_back(corpus.size());
  return b;
}

using Words = std::vector<std::pair<std::vector<int>, int64_t>>;  // token ids of a piece, its count

Words InitialWords(const std::vector<std::pair<std::string, int64_t>>& pieces) {
  Words w;
  w.reserve(pieces.size());
  for (auto& [p, c] : pieces) {
    std::vector<int> ids;
    for (unsigned char ch : p) ids.push_back(ch);
    w.emplace_back(std::move(ids), c);
  }
  return w;
}

std::vector<std::string> ByteTokens() {
  std::vector<std::string> t;
  for (int b = 0; b < 256; ++b) t.emplace_back(1, char(b));
  return t;
}

int TargetRanks(const BpeTrainOptions& opt) { return opt.vocab_size - opt.num_reserved; }

// Replaces every (a, b) in `ids` (left to right, non-overlapping) by `m`.
void ApplyMerge(std::vector<int>& ids, int a, int b, int m) {
  size_t w = 0;
  for (size_t r = 0; r < ids.size(); ++r) {
    if (r + 1 < ids.size() && ids[r] == a && ids[r + 1] == b) {
      ids[w++] = m;
      ++r;
    } else {
      ids[w++] = ids[r];
    }
  }
  ids.resize(w);
}

// The id of the merged bytes: an existing token with those bytes, or a new rank.
int MergedId(std::vector<std::string>& tokens, std::unordered_map<std::string, int>& index, int a, int b) {
  std::string bytes = tokens[a] + tokens[b];
  auto it = index.find(bytes);
  if (it != index.end()) return it->second;
  int id = static_cast<int>(tokens.size());
  index.emplace(bytes, id);
  tokens.push_back(std::move(bytes));
  return id;
}

uint64_t Key(int a, int b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }

}  // namespace

Expected<std::vector<std::pair<std::string, int64_t>>> CountPieces(std::string_view corpus,
                                                                    const BpeTrainOptions& opt) {
  K2_RETURN_IF_ERROR(CheckOptions(opt));
  K2_ASSIGN_OR_RETURN(Pretokenizer pre, Pretokenizer::Create(opt.pattern));
  ThreadPool pool(opt.threads);
  auto bounds = ChunkBounds(corpus, static_cast<size_t>(pool.size()) * 4);
  size_t nchunks = bounds.size() - 1;
  std::vector<std::unordered_map<std::string, int64_t>> partial(nchunks);
  pool.ParallelFor(static_cast<int64_t>(nchunks), [&](int64_t c) {
    std::vector<std::string_view> pieces;
    pre.Split(corpus.substr(bounds[c], bounds[c + 1] - bounds[c]), &pieces);
    auto& m = partial[c];
    for (auto p : pieces) ++m[std::string(p)];
  });
  std::unordered_map<std::string, int64_t> all;
  for (auto& m : partial)
    for (auto& [p, n] : m) all[p] += n;
  std::vector<std::pair<std::string, int64_t>> out(all.begin(), all.end());
  std::sort(out.begin(), out.end());
  return out;
}

Expected<std::vector<std::string>> TrainBpeRanks(std::string_view corpus, const BpeTrainOptions& opt) {
  K2_ASSIGN_OR_RETURN(auto pieces, CountPieces(corpus, opt));
  Words words = InitialWords(pieces);
  std::vector<std::string> tokens = ByteTokens();
  std::unordered_map<std::string, int> index;
  for (int b = 0; b < 256; ++b) index.emplace(tokens[b], b);

  // Pair counts, where each pair occurs (word indices, possibly stale or repeated), and a lazy heap:
  // an entry is live iff its count equals the pair's current count.
  std::unordered_map<uint64_t, int64_t> counts;
  std::unordered_map<uint64_t, std::vector<int>> where;
  struct Entry {
    int64_t count;
    int a, b;
    bool operator<(const Entry& o) const {  // max-heap: higher count, then smaller (a, b)
      if (count != o.count) return count < o.count;
      if (a != o.a) return a > o.a;
      return b > o.b;
    }
  };
  std::priority_queue<Entry> heap;
  for (size_t w = 0; w < words.size(); ++w) {
    auto& ids = words[w].first;
    for (size_t i = 0; i + 1 < ids.size(); ++i) {
      uint64_t k = Key(ids[i], ids[i + 1]);
      counts[k] += words[w].second;
      auto& v = where[k];
      if (v.empty() || v.back() != static_cast<int>(w)) v.push_back(static_cast<int>(w));
    }
  }
  for (auto& [k, c] : counts) heap.push({c, int(k >> 32), int(k & 0xFFFFFFFFu)});

  const int target = TargetRanks(opt);
  Progress progress("bpe merges", target - 256, opt.progress ? stderr : nullptr);
  std::vector<int> stamp(words.size(), -1);
  int merge_no = 0;
  std::unordered_map<uint64_t, int64_t> delta;
  while (static_cast<int>(tokens.size()) < target && !heap.empty()) {
    Entry e = heap.top();
    heap.pop();
    uint64_t key = Key(e.a, e.b);
    auto cit = counts.find(key);
    if (cit == counts.end() || cit->second != e.count) continue;  // stale
    if (e.count < opt.min_pair_count) break;
    int m = MergedId(tokens, index, e.a, e.b);
    ++merge_no;
    delta.clear();
    std::vector<int> affected = std::move(where[key]);
    where.erase(key);
    for (int w : affected) {
      if (stamp[w] == merge_no) continue;
      stamp[w] = merge_no;
      auto& [ids, c] = words[w];
      bool has = false;
      for (size_t i = 0; i + 1 < ids.size() && !has; ++i) has = ids[i] == e.a && ids[i + 1] == e.b;
      if (!has) continue;
      for (size_t i = 0; i + 1 < ids.size(); ++i) delta[Key(ids[i], ids[i + 1])] -= c;
      ApplyMerge(ids, e.a, e.b, m);
      for (size_t i = 0; i + 1 < ids.size(); ++i) {
        uint64_t k = Key(ids[i], ids[i + 1]);
        delta[k] += c;
        auto& v = where[k];
        if (v.empty() || v.back() != w) v.push_back(w);
      }
    }
    // Apply the changes in key order so the heap's contents do not depend on hash iteration order.
    std::vector<std::pair<uint64_t, int64_t>> changes(delta.begin(), delta.end());
    std::sort(changes.begin(), changes.end());
    for (auto& [k, d] : changes) {
      if (d == 0) continue;
      int64_t& c = counts[k];
      c += d;
      if (c <= 0) {
        counts.erase(k);
      } else {
        heap.push({c, int(k >> 32), int(k & 0xFFFFFFFFu)});
      }
    }
    progress.Set(static_cast<int64_t>(tokens.size()) - 256);
  }
  progress.Finish();
  return tokens;
}

Expected<std::vector<std::string>> TrainBpeRanksReference(std::string_view corpus, const BpeTrainOptions& opt) {
  K2_ASSIGN_OR_RETURN(auto pieces, CountPieces(corpus, opt));
  Words words = InitialWords(pieces);
  std::vector<std::string> tokens = ByteTokens();
  std::unordered_map<std::string, int> index;
  for (int b = 0; b < 256; ++b) index.emplace(tokens[b], b);
  const int target = TargetRanks(opt);
  while (static_cast<int>(tokens.size()) < target) {
    std::map<std::pair<int, int>, int64_t> counts;  // ordered: ties resolve to the smallest (a, b)
    for (auto& [ids, c] : words)
      for (size_t i = 0; i + 1 < ids.size(); ++i) counts[{ids[i], ids[i + 1]}] += c;
    std::pair<int, int> best{-1, -1};
    int64_t best_count = 0;
    for (auto& [p, c] : counts)
      if (c > best_count) best = p, best_count = c;
    if (best_count < opt.min_pair_count) break;
    int m = MergedId(tokens, index, best.first, best.second);
    for (auto& [ids, c] : words) ApplyMerge(ids, best.first, best.second, m);
  }
  return tokens;
}

Expected<Tokenizer> TrainBpe(std::string_view corpus, const BpeTrainOptions& opt) {
  K2_ASSIGN_OR_RETURN(auto tokens, TrainBpeRanks(corpus, opt));
  int base = static_cast<int>(tokens.size());
  // With a smaller special block, keep the Kimi-K2 names that fit in it.
  std::vector<std::pair<std::string, int>> specials;
  for (auto& s : KimiSpecialTokens(base))
    if (s.second < base + opt.num_reserved) specials.push_back(s);
  return Tokenizer::Create(std::move(tokens), opt.pattern, specials, opt.num_reserved);
}

}  // namespace k2::text
