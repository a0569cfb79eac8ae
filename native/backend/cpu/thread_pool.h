// A fixed pool of worker threads for data-parallel kernels.
// Why: kernels split work into independent tasks (tiles of an output); spawning threads per call
// would cost more than small GEMMs take. The calling thread works too, so a pool of N threads
// starts N-1. Tasks must write disjoint outputs, which keeps results independent of scheduling.
// Workers spin briefly before sleeping: back-to-back kernels (a training step issues hundreds)
// then start in well under a microsecond instead of paying a futex wake-up each.
#pragma once
#include <atomic>
#include <cstdint>
#include <condition_variable>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace tk {

class ThreadPool {
 public:
  explicit ThreadPool(int num_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return num_threads_; }

  // Runs fn(0..num_tasks-1) across the pool and the caller; returns when all are done.
  // The first exception thrown by a task is rethrown here. Concurrent callers take turns.
  void run(int num_tasks, const std::function<void(int)>& fn);

 private:
  void worker_loop();
  void drain_tasks();

  const int num_threads_;
  std::vector<std::thread> workers_;
  std::mutex run_mutex_;  // one run() at a time
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  const std::function<void(int)>* job_ = nullptr;
  int num_tasks_ = 0;
  std::atomic<int> next_task_{0};
  std::atomic<int> busy_workers_{0};
  std::atomic<unsigned long long> generation_{0};
  bool stopping_ = false;
  std::exception_ptr first_error_;
};

// Runs fn(i0, i1) over [begin, end) in contiguous pieces across the pool (or on the caller alone
// when the range is under `min_split` or there is no pool): for element-wise work, where any
// split gives the same result.
template <class Fn>
void parallel_for(ThreadPool* pool, int64_t begin, int64_t end, int64_t min_split, Fn&& fn) {
  const int64_t n = end - begin;
  const int tasks = pool && n >= min_split ? pool->size() : 1;
  if (tasks == 1) return fn(begin, end);
  pool->run(tasks, [&](int t) { fn(begin + n * t / tasks, begin + n * (t + 1) / tasks); });
}

}  // namespace tk
