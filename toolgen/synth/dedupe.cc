// MinHash/LSH near-duplicate measurement and its exact all-pairs reference (see dedupe.h).
#include "toolgen/synth/dedupe.h"

#include <algorithm>
#include <cctype>
#include <unordered_map>

#include "core/rng.h"
#include "core/thread_pool.h"

namespace k2::toolgen::synth {

std::vector<uint64_t> Shingles(const std::string& text, int k) {
  std::vector<std::string> words;
  std::string w;
  for (char ch : text) {
    unsigned char c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c == '_') {
      w += static_cast<char>(std::tolower(c));
    } else if (!w.empty()) {
      words.push_back(std::move(w));
      w.clear();
    }
  }
  if (!w.empty()) words.push_back(std::move(w));
  std::vector<uint64_t> out;
  if (words.empty()) return out;
  size_t n = words.size() < static_cast<size_t>(k) ? 1 : words.size() - k + 1;
  for (size_t i = 0; i < n; ++i) {
    std::string s;
    for (size_t j = i; j < std::min(words.size(), i + k); ++j) s += words[j] + ' ';
    out.push_back(HashString(s));
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

double Jaccard(const std::vector<uint64_t>& a, const std::vector<uint64_t>& b) {
  if (a.empty() && b.empty()) return 1.0;
  size_t i = 0, j = 0, inter = 0;
  while (i < a.size() && j < b.size()) {
    if (a[i] == b[j]) ++inter, ++i, ++j;
    else if (a[i] < b[j]) ++i;
    else ++j;
  }
  return static_cast<double>(inter) / static_cast<double>(a.size() + b.size() - inter);
}

namespace {

void Finish(DedupeReport& r, std::vector<std::pair<int64_t, int64_t>> pairs) {
  std::sort(pairs.begin(), pairs.end());
  pairs.erase(std::unique(pairs.begin(), pairs.end()), pairs.end());
  std::vector<char> has(r.docs, 0);
  for (auto& [i, j] : pairs) has[i] = has[j] = 1;
  r.near_duplicate_pairs = static_cast<int64_t>(pairs.size());
  r.docs_with_near_duplicate = std::count(has.begin(), has.end(), 1);
  r.pairs = std::move(pairs);
}

}  // namespace

DedupeReport MeasureNearDuplicates(const std::vector<std::string>& texts, double threshold, ThreadPool* pool, int bands,
                                   int rows) {
  DedupeReport r;
  r.docs = static_cast<int64_t>(texts.size());
  r.threshold = threshold;
  const int h = bands * rows;
  std::vector<std::vector<uint64_t>> sh(texts.size());
  std::vector<uint64_t> sig(texts.size() * h);
  // Hash family: x -> mix(x ^ salt_k), salts from a fixed seed so reports are reproducible.
  std::vector<uint64_t> salts(h);
  uint64_t s = 0x5eed;
  for (auto& x : salts) x = SplitMix64(s);
  auto one = [&](int64_t i) {
    sh[i] = Shingles(texts[i]);
    for (int k = 0; k < h; ++k) {
      uint64_t m = ~0ULL;
      for (uint64_t x : sh[i]) {
        uint64_t y = x ^ salts[k];
        m = std::min(m, SplitMix64(y));
      }
      sig[i * h + k] = m;
    }
  };
  if (pool) pool->ParallelFor(r.docs, one, 64);
  else
    for (int64_t i = 0; i < r.docs; ++i) one(i);
  std::vector<std::pair<int64_t, int64_t>> cand;
  for (int b = 0; b < bands; ++b) {
    std::unordered_map<uint64_t, std::vector<int64_t>> buckets;
    for (int64_t i = 0; i < r.docs; ++i) {
      uint64_t key = 0x9e3779b97f4a7c15ULL * (b + 1);
      for (int k = 0; k < rows; ++k) {
        key ^= sig[i * h + b * rows + k] + 0x9e3779b97f4a7c15ULL + (key << 6) + (key >> 2);
      }
      buckets[key].push_back(i);
    }
    for (auto& [key, v] : buckets)
      for (size_t x = 0; x < v.size(); ++x)
        for (size_t y = x + 1; y < v.size(); ++y) cand.push_back({v[x], v[y]});
  }
  std::sort(cand.begin(), cand.end());
  cand.erase(std::unique(cand.begin(), cand.end()), cand.end());
  r.candidate_pairs = static_cast<int64_t>(cand.size());
  std::vector<double> jac(cand.size());
  auto score = [&](int64_t k) { jac[k] = Jaccard(sh[cand[k].first], sh[cand[k].second]); };
  if (pool) pool->ParallelFor(static_cast<int64_t>(cand.size()), score, 256);
  else
    for (size_t k = 0; k < cand.size(); ++k) score(static_cast<int64_t>(k));
  std::vector<std::pair<int64_t, int64_t>> pairs;
  for (size_t k = 0; k < cand.size(); ++k) {
    r.max_jaccard = std::max(r.max_jaccard, jac[k]);
    if (jac[k] >= threshold) pairs.push_back(cand[k]);
  }
  Finish(r, std::move(pairs));
  return r;
}

DedupeReport MeasureNearDuplicatesExact(const std::vector<std::string>& texts, double threshold) {
  DedupeReport r;
  r.docs = static_cast<int64_t>(texts.size());
  r.threshold = threshold;
  std::vector<std::vector<uint64_t>> sh;
  for (auto& t : texts) sh.push_back(Shingles(t));
  std::vector<std::pair<int64_t, int64_t>> pairs;
  for (int64_t i = 0; i < r.docs; ++i)
    for (int64_t j = i + 1; j < r.docs; ++j) {
      double x = Jaccard(sh[i], sh[j]);
      ++r.candidate_pairs;
      r.max_jaccard = std::max(r.max_jaccard, x);
      if (x >= threshold) pairs.push_back({i, j});
    }
  Finish(r, std::move(pairs));
  return r;
}

}  // namespace k2::toolgen::synth
