#pragma once
// Time for every layer, one copy. Decisions that depend on time (schedules, async retries
// and retention) take a Clock: wall-clock time in Unix ms and a wait that callers can
// interrupt through their own condition variable. SystemClock is the real one; ManualClock
// is moved by hand, so tests and simulations drive time without sleeping. Records that
// outlive the process only stamp the time (unixMicros, unixMillis).
//
// A wait takes the caller's tern::Mutex (held) and a std::condition_variable_any, which
// waits on that mutex directly: the analysis of -Wthread-safety sees the mutex held on
// entry and on return, and ManualClock can take it to wake the waiter.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <vector>

#include "util/thread_annotations.h"

namespace tern {

inline int64_t unixMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

inline int64_t unixMillis() { return unixMicros() / 1000; }


class Clock {
 public:
  virtual ~Clock() = default;

  // Wall-clock time in Unix ms (UTC).
  virtual int64_t nowMs() const = 0;

  // Blocks on `cv` until the clock reaches `deadlineMs` (INT64_MAX: no deadline), `cv` is
  // notified, or a spurious wake-up. `mu` guards the caller's state (notifiers of `cv`
  // change that state under it); it is held on entry and on return and may be released in
  // between. Callers re-check their state and the time after every return.
  virtual void waitUntil(Mutex& mu, std::condition_variable_any& cv, int64_t deadlineMs)
      TERN_REQUIRES(mu) = 0;
};

// std::chrono::system_clock. A wait returns at least once an hour, and when the system
// time is set forward past the deadline.
class SystemClock final : public Clock {
 public:
  int64_t nowMs() const override;
  void waitUntil(Mutex& mu, std::condition_variable_any& cv, int64_t deadlineMs) override
      TERN_REQUIRES(mu);
};

// A clock that only moves when told. Setting the time wakes every thread waiting in
// waitUntil, which then re-checks its deadline. Thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t startMs = 1'700'000'000'000) : now_(startMs) {}

  int64_t nowMs() const override TERN_EXCLUDES(mu_);
  void waitUntil(Mutex& mu, std::condition_variable_any& cv, int64_t deadlineMs) override
      TERN_REQUIRES(mu) TERN_EXCLUDES(mu_);

  // Sets the time (forward or backward) and wakes every waiter.
  void setMs(int64_t ms) TERN_EXCLUDES(mu_);
  void advanceMs(int64_t deltaMs) TERN_EXCLUDES(mu_);

  // Blocks until `count` threads wait in waitUntil for a deadline after the current time,
  // having started to wait after the time was last set: each has done everything due now.
  // `limit` (real time) only guards against a hang; returns false when it runs out.
  bool awaitSleepers(size_t count, std::chrono::milliseconds limit) TERN_EXCLUDES(mu_);

 private:
  struct Waiter {
    Mutex* mutex;  // the waiter's own
    std::condition_variable_any* cv;
    int64_t deadlineMs;
    int pendingWakes = 0;  // setMs() calls that may still touch mutex and cv (under mu_)
  };

  // Empties sleepers_, marking each as about to be woken.
  std::vector<Waiter*> takeSleepers() TERN_REQUIRES(mu_);
  // Wakes what takeSleepers() returned.
  void wake(const std::vector<Waiter*>& woken) TERN_EXCLUDES(mu_);

  mutable Mutex mu_;
  std::condition_variable sleepersChanged_;  // a waiter registered or a wake finished
  int64_t now_ TERN_GUARDED_BY(mu_);
  std::vector<Waiter*> sleepers_ TERN_GUARDED_BY(mu_);  // waiting, not yet woken by setMs()
};

}  // namespace tern
