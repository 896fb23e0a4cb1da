// Near-duplicate measurement of tool descriptions: word 3-shingle Jaccard similarity, found with
// MinHash + LSH banding (fast path) and checked against an all-pairs exact reference in tests.
// Pure functions; MeasureNearDuplicates may use a thread pool.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace k2 {
class ThreadPool;
}

namespace k2::toolgen::synth {

// Sorted, unique 64-bit hashes of the lower-cased word k-shingles of `text` (fewer than k words: one
// shingle of all of them).
std::vector<uint64_t> Shingles(const std::string& text, int k = 3);
double Jaccard(const std::vector<uint64_t>& a, const std::vector<uint64_t>& b);

struct DedupeReport {
  int64_t docs = 0;
  double threshold = 0;
  int64_t candidate_pairs = 0;       // pairs whose exact Jaccard was computed
  int64_t near_duplicate_pairs = 0;  // pairs with Jaccard >= threshold
  int64_t docs_with_near_duplicate = 0;
  double max_jaccard = 0;            // highest Jaccard among the pairs examined
  std::vector<std::pair<int64_t, int64_t>> pairs;  // the near-duplicate pairs (i < j), sorted
};

// MinHash (bands x rows hash functions) + LSH: a pair becomes a candidate when all rows of one band
// agree; its exact Jaccard decides. With 32 x 4, a pair at Jaccard 0.8 is missed with p < 1e-7.
DedupeReport MeasureNearDuplicates(const std::vector<std::string>& texts, double threshold, ThreadPool* pool = nullptr,
                                   int bands = 32, int rows = 4);
// All pairs, exactly: the reference (O(n^2); tests only).
DedupeReport MeasureNearDuplicatesExact(const std::vector<std::string>& texts, double threshold);

}  // namespace k2::toolgen::synth
