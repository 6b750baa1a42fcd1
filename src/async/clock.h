#pragma once
// Time and randomness for the async queue, behind small interfaces so tests drive them:
// the dispatcher reads "now" only through a Clock and draws backoff jitter only from a
// RandomSource.

#include <atomic>
#include <cstdint>
#include <mutex>
#include <random>

#include "util/thread_annotations.h"

namespace tern::async {

// Wall-clock time in milliseconds since the Unix epoch. Stored timestamps and due times
// come from it, so they stay meaningful across a restart.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t nowMs() const = 0;
};

class SystemClock final : public Clock {
 public:
  int64_t nowMs() const override;
};

// A clock that moves only when told to (tests).
class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t startMs = 1'700'000'000'000) : now_(startMs) {}
  int64_t nowMs() const override { return now_.load(); }
  void advance(int64_t ms) { now_.fetch_add(ms); }

 private:
  std::atomic<int64_t> now_;
};

// Uniform numbers in [0, 1) for backoff jitter.
class RandomSource {
 public:
  virtual ~RandomSource() = default;
  virtual double uniform() = 0;
};

// A Mersenne Twister seeded from std::random_device; thread-safe.
class SystemRandom final : public RandomSource {
 public:
  SystemRandom();
  double uniform() override;

 private:
  Mutex mu_;
  std::mt19937_64 gen_ TERN_GUARDED_BY(mu_);
};

// Always the same value (tests).
class FixedRandom final : public RandomSource {
 public:
  explicit FixedRandom(double value) : value_(value) {}
  double uniform() override { return value_; }

 private:
  double value_;
};

}  // namespace tern::async
