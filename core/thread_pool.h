// A fixed pool of worker threads. Submit() returns a future; ParallelFor() splits [0, n) into chunks
// and blocks until all are done (the caller's thread works too, so nesting cannot deadlock on a
// pool of one). Destruction joins after draining the queue.
#pragma once

#include <condition_variable>
#include <functional>
#include <future>
#include <mutex>
#include <queue>
#include <thread>
#include <vector>

namespace k2 {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);  // threads <= 0: hardware concurrency
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()); }

  template <class F>
  auto Submit(F&& f) -> std::future<decltype(f())> {
    using R = decltype(f());
    auto task = std::make_shared<std::packaged_task<R()>>(std::forward<F>(f));
    auto fut = task->get_future();
    Enqueue([task] { (*task)(); });
    return fut;
  }

  // Calls fn(i) for i in [0, n), in chunks of `grain`. Blocks until done.
  void ParallelFor(int64_t n, const std::function<void(int64_t)>& fn, int64_t grain = 1);

 private:
  void Enqueue(std::function<void()> job);
  bool RunOne();  // runs one queued job on the calling thread, if any
  void Loop();

  std::vector<std::thread> workers_;
  std::queue<std::function<void()>> q_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
};

}  // namespace k2
