#pragma once
// Wall-clock time as Unix microseconds and milliseconds, for records that outlive the
// process (run and task records, traces). Decisions that depend on time take an injected
// clock instead (events/clock.h, async/clock.h).

#include <chrono>
#include <cstdint>

namespace tern {

inline int64_t unixMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

inline int64_t unixMillis() { return unixMicros() / 1000; }

}  // namespace tern
