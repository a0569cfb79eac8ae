// A fixed pool of worker threads for data-parallel kernels.
// Why: kernels split work into independent tasks (tiles of an output); spawning threads per call
// would cost more than small GEMMs take. The calling thread works too, so a pool of N threads
// starts N-1. Tasks must write disjoint outputs, which keeps results independent of scheduling.
// Workers spin briefly before sleeping: back-to-back kernels (a training step issues hundreds)
// then start in well under a microsecond instead of paying a futex wake-up each.
#pragma once
#include <atomic>
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

}  // namespace tk
