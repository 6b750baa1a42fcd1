#pragma once
// Warnings about what devices and MQTT publishers send (the stream bridge, device
// connections over MQTT): a burst, then at most one a second, and from time to time how
// many were left out, so that a misbehaving publisher cannot flood the node's log.

#include <spdlog/spdlog.h>

#include <string>

#include "triggers/coap_datagram.h"
#include "util/thread_annotations.h"

namespace tern::stream {

class LimitedLog {
 public:
  using Clock = triggers::LogLineLimiter::Clock;

  // Thread-safe.
  void warn(const std::string& line, Clock::time_point now = Clock::now()) {
    MutexLock lock(mu_);
    if (uint64_t n = limiter_.takeSuppressed(now)) {
      spdlog::warn("{} more warning(s) like the ones above were not logged", n);
    }
    if (limiter_.admit(now)) spdlog::warn("{}", line);
  }

 private:
  Mutex mu_;
  triggers::LogLineLimiter limiter_ TERN_GUARDED_BY(mu_){triggers::LogLineLimiter::Options{}};
};

}  // namespace tern::stream
