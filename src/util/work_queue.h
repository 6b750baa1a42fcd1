#pragma once
// Threads that run posted tasks: with one thread, one at a time and in order. stop() runs
// what is already queued, then joins; posts after stop() are dropped.

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "util/thread_annotations.h"

namespace tern {

class WorkQueue {
 public:
  explicit WorkQueue(unsigned threads = 1) {
    for (unsigned i = 0; i < std::max(1u, threads); ++i) threads_.emplace_back([this] { run(); });
  }
  ~WorkQueue() { stop(); }
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;

  // False (the task dropped) once stop() has begun.
  bool post(std::function<void()> task) TERN_EXCLUDES(mu_) {
    {
      MutexLock lock(mu_);
      if (stopping_) return false;
      tasks_.push_back(std::move(task));
    }
    cv_.notify_one();
    return true;
  }

  void stop() TERN_EXCLUDES(mu_) {
    {
      MutexLock lock(mu_);
      if (stopping_) return;
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }

 private:
  void run() TERN_EXCLUDES(mu_) {
    MutexLock lock(mu_);
    for (;;) {
      lock.wait(cv_, [this]() TERN_REQUIRES(mu_) { return stopping_ || !tasks_.empty(); });
      if (tasks_.empty()) return;
      auto task = std::move(tasks_.front());
      tasks_.pop_front();
      lock.unlock();
      task();
      lock.lock();
    }
  }

  Mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_ TERN_GUARDED_BY(mu_);
  bool stopping_ TERN_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace tern
