#include "util/random.h"


namespace tern {

SystemRandom::SystemRandom() : gen_(std::random_device{}()) {}

double SystemRandom::uniform() {
  MutexLock lock(mu_);
  return std::uniform_real_distribution<double>(0.0, 1.0)(gen_);
}

}  // namespace tern
