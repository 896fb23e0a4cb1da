// Shared helpers of the engine tests: seeded random tensors, the tiny config, batches, and a
// tolerance check that reports the worst element.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/rng.h"
#include "engine/engine.h"

namespace k2::engine::testing {

template <class T>
std::vector<T> RandVec(Rng& rng, int64_t n, double scale = 1.0) {
  std::vector<T> v(static_cast<size_t>(n));
  for (auto& x : v) x = static_cast<T>(rng.Normal() * scale);
  return v;
}

inline ModelConfig TinyConfig() {
  auto c = LoadModelConfig(std::string(K2GYM_SOURCE_DIR) + "/configs/models/tiny.json");
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return *c;
}

inline Batch RandomBatch(Rng& rng, int64_t B, int64_t T, int64_t vocab, bool zero_some_weights = true) {
  Batch b;
  b.B = B;
  b.T = T;
  for (int64_t i = 0; i < B * T; ++i) {
    b.tokens.push_back(static_cast<int32_t>(rng.Below(static_cast<uint64_t>(vocab))));
    b.targets.push_back(static_cast<int32_t>(rng.Below(static_cast<uint64_t>(vocab))));
    b.weights.push_back(zero_some_weights && i % 5 == 3 ? 0.0f : static_cast<float>(0.5 + rng.Uniform()));
  }
  return b;
}

// |a - b| <= atol + rtol * max(|a|, |b|) for every element; the message names the worst one.
template <class A, class B>
::testing::AssertionResult AllClose(const std::vector<A>& a, const std::vector<B>& b, double atol, double rtol,
                                    const std::string& what) {
  if (a.size() != b.size())
    return ::testing::AssertionFailure() << what << ": size " << a.size() << " vs " << b.size();
  double worst = 0;
  size_t wi = 0;
  bool bad = false;
  for (size_t i = 0; i < a.size(); ++i) {
    double x = static_cast<double>(a[i]), y = static_cast<double>(b[i]);
    double err = std::abs(x - y) - (atol + rtol * std::max(std::abs(x), std::abs(y)));
    if (!(err <= 0) && (!bad || err > worst)) {
      bad = true;
      worst = err;
      wi = i;
    }
  }
  if (!bad) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << what << ": first worst mismatch at [" << wi << "]: " << a[wi] << " vs "
                                       << b[wi];
}

}  // namespace k2::engine::testing
