#pragma once
// Locking that the compiler checks. clang's thread-safety analysis (-Wthread-safety, an
// error in every clang build of tern: the tsan preset, fuzzing) proves that a member marked
// TERN_GUARDED_BY(mu_) is only touched with mu_ held, that a function marked
// TERN_REQUIRES(mu_) is only called with it held and one marked TERN_EXCLUDES(mu_) only
// without it. GCC sees the same code with the macros expanded to nothing.
//
// libstdc++'s std::mutex carries no annotations, so classes that lock use tern::Mutex and
// tern::MutexLock below: the same std::mutex and std::unique_lock underneath, visible to
// the analysis. Condition variables stay std::condition_variable and are waited on through
// MutexLock::wait; a wait predicate that reads guarded members says so with
// TERN_REQUIRES(mu_) on the lambda:
//
//   MutexLock lock(mu_);
//   lock.wait(cv_, [this]() TERN_REQUIRES(mu_) { return stopping_ || !tasks_.empty(); });
//
// See https://clang.llvm.org/docs/ThreadSafetyAnalysis.html for the attributes.

#include <chrono>
#include <condition_variable>
#include <mutex>

#if defined(__clang__)
#define TERN_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define TERN_THREAD_ANNOTATION(x)
#endif

// On a class: its objects are a lock (a "capability").
#define TERN_CAPABILITY(name) TERN_THREAD_ANNOTATION(capability(name))
// On a class: an RAII object that holds a capability for its lifetime.
#define TERN_SCOPED_CAPABILITY TERN_THREAD_ANNOTATION(scoped_lockable)
// On a data member: read or written only with the capability held.
#define TERN_GUARDED_BY(x) TERN_THREAD_ANNOTATION(guarded_by(x))
// On a pointer member: the pointee is read or written only with the capability held.
#define TERN_PT_GUARDED_BY(x) TERN_THREAD_ANNOTATION(pt_guarded_by(x))
// On a function: callers hold the capabilities.
#define TERN_REQUIRES(...) TERN_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
// On a function: callers do not hold the capabilities (the function takes them).
#define TERN_EXCLUDES(...) TERN_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
// On a function: it acquires / releases the capabilities (or the object's own).
#define TERN_ACQUIRE(...) TERN_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define TERN_RELEASE(...) TERN_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
// On a function: it acquires the capability when it returns the given value.
#define TERN_TRY_ACQUIRE(...) TERN_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
// On a function: it returns a reference to the given capability.
#define TERN_RETURN_CAPABILITY(x) TERN_THREAD_ANNOTATION(lock_returned(x))
// On a function whose locking the analysis cannot follow; say why next to each use.
#define TERN_NO_THREAD_SAFETY_ANALYSIS TERN_THREAD_ANNOTATION(no_thread_safety_analysis)

namespace tern {

// A std::mutex the analysis can see.
class TERN_CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void lock() TERN_ACQUIRE() { mu_.lock(); }
  void unlock() TERN_RELEASE() { mu_.unlock(); }
  bool try_lock() TERN_TRY_ACQUIRE(true) { return mu_.try_lock(); }

 private:
  friend class MutexLock;
  std::mutex mu_;
};

// Holds a Mutex from construction to destruction (or between unlock() and lock()), and
// waits on condition variables with it.
class TERN_SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mu) TERN_ACQUIRE(mu) : lock_(mu.mu_) {}
  ~MutexLock() TERN_RELEASE() {}
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

  // Lets go of the mutex early (around a call that must not run under it) ...
  void unlock() TERN_RELEASE() { lock_.unlock(); }
  // ... and takes it again.
  void lock() TERN_ACQUIRE() { lock_.lock(); }

  // Condition-variable waits: the mutex is released while blocked and held again on
  // return, so to the analysis it is held throughout. The predicate runs with it held.
  void wait(std::condition_variable& cv) { cv.wait(lock_); }
  template <class Predicate>
  void wait(std::condition_variable& cv, Predicate pred) TERN_NO_THREAD_SAFETY_ANALYSIS {
    cv.wait(lock_, pred);
  }
  template <class Rep, class Period>
  std::cv_status waitFor(std::condition_variable& cv,
                         const std::chrono::duration<Rep, Period>& timeout) {
    return cv.wait_for(lock_, timeout);
  }
  template <class Rep, class Period, class Predicate>
  bool waitFor(std::condition_variable& cv, const std::chrono::duration<Rep, Period>& timeout,
               Predicate pred) TERN_NO_THREAD_SAFETY_ANALYSIS {
    return cv.wait_for(lock_, timeout, pred);
  }
  template <class Clock, class Duration>
  std::cv_status waitUntil(std::condition_variable& cv,
                           const std::chrono::time_point<Clock, Duration>& deadline) {
    return cv.wait_until(lock_, deadline);
  }
  template <class Clock, class Duration, class Predicate>
  bool waitUntil(std::condition_variable& cv,
                 const std::chrono::time_point<Clock, Duration>& deadline,
                 Predicate pred) TERN_NO_THREAD_SAFETY_ANALYSIS {
    return cv.wait_until(lock_, deadline, pred);
  }

 private:
  std::unique_lock<std::mutex> lock_;
};

}  // namespace tern
