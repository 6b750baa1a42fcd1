#include "async/clock.h"

#include <chrono>

namespace tern::async {

int64_t SystemClock::nowMs() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

SystemRandom::SystemRandom() : gen_(std::random_device{}()) {}

double SystemRandom::uniform() {
  MutexLock lock(mu_);
  return std::uniform_real_distribution<double>(0.0, 1.0)(gen_);
}

}  // namespace tern::async
