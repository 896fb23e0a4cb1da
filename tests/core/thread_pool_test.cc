// ThreadPool: every index runs once, futures deliver, nested ParallelFor does not deadlock.
#include "core/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <vector>

namespace k2 {
namespace {

TEST(ThreadPool, ParallelForVisitsEachIndexOnce) {
  ThreadPool pool(3);
  std::vector<std::atomic<int>> hits(1000);
  pool.ParallelFor(1000, [&](int64_t i) { hits[i]++; }, 7);
  for (auto& h : hits) EXPECT_EQ(h.load(), 1);
}

TEST(ThreadPool, SubmitReturnsValues) {
  ThreadPool pool(2);
  std::vector<std::future<int>> f;
  for (int i = 0; i < 50; ++i) f.push_back(pool.Submit([i] { return i * i; }));
  for (int i = 0; i < 50; ++i) EXPECT_EQ(f[i].get(), i * i);
}

TEST(ThreadPool, NestedParallelForOnSmallPoolCompletes) {
  ThreadPool pool(1);
  std::atomic<int> sum{0};
  pool.ParallelFor(4, [&](int64_t) { pool.ParallelFor(10, [&](int64_t j) { sum += static_cast<int>(j); }); });
  EXPECT_EQ(sum.load(), 4 * 45);
}

}  // namespace
}  // namespace k2
