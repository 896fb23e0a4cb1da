// Thread pool.
#include "core/thread_pool.h"

#include <atomic>

namespace k2 {

ThreadPool::ThreadPool(int threads) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 0; i < threads; ++i) workers_.emplace_back([this] { Loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::Enqueue(std::function<void()> job) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    q_.push(std::move(job));
  }
  cv_.notify_one();
}

bool ThreadPool::RunOne() {
  std::function<void()> job;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (q_.empty()) return false;
    job = std::move(q_.front());
    q_.pop();
  }
  job();
  return true;
}

void ThreadPool::Loop() {
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [this] { return stop_ || !q_.empty(); });
      if (q_.empty()) return;  // stop_ and drained
      job = std::move(q_.front());
      q_.pop();
    }
    job();
  }
}

void ThreadPool::ParallelFor(int64_t n, const std::function<void(int64_t)>& fn, int64_t grain) {
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  int64_t chunks = (n + grain - 1) / grain;
  std::atomic<int64_t> next{0}, remaining{chunks};
  std::mutex done_mu;
  std::condition_variable done_cv;
  auto work = [&] {
    for (;;) {
      int64_t c = next.fetch_add(1);
      if (c >= chunks) return;
      int64_t lo = c * grain, hi = std::min(n, lo + grain);
      for (int64_t i = lo; i < hi; ++i) fn(i);
      if (remaining.fetch_sub(1) == 1) {
        std::lock_guard<std::mutex> lk(done_mu);
        done_cv.notify_all();
      }
    }
  };
  int helpers = static_cast<int>(std::min<int64_t>(chunks - 1, size()));
  std::vector<std::future<void>> futs;
  for (int i = 0; i < helpers; ++i) futs.push_back(Submit(work));
  work();
  // Help with other queued jobs while waiting, so a ParallelFor inside a pool task cannot starve.
  while (remaining.load() > 0) {
    if (!RunOne()) {
      std::unique_lock<std::mutex> lk(done_mu);
      done_cv.wait_for(lk, std::chrono::milliseconds(1), [&] { return remaining.load() == 0; });
    }
  }
  // Helper jobs may still be queued behind a thread that is itself waiting here: run queued jobs
  // until each helper has started and returned (it finds no chunk left), never block blindly.
  for (auto& f : futs) {
    while (f.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
      if (!RunOne()) f.wait_for(std::chrono::milliseconds(1));
    }
  }
}

}  // namespace k2
