#pragma once
// Randomness behind a small interface, so tests drive it: backoff jitter (the async queue,
// cluster jobs) is drawn only from a RandomSource.

#include <cstdint>
#include <mutex>
#include <random>

#include "util/thread_annotations.h"

namespace tern {

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

}  // namespace tern
