#pragma once
// Resource usage of the current process (CPU time, memory, file descriptors, threads), read
// from getrusage(2), getrlimit(2) and /proc/self for the node's process_* metrics. Linux only.

#include <cstdint>

namespace tern {

// Counters follow the Prometheus process collector's metrics. A field that cannot be read
// is 0.
struct ProcessStats {
  double cpuSecondsUser = 0;    // user CPU time, all threads
  double cpuSecondsSystem = 0;  // system CPU time, all threads
  uint64_t residentBytes = 0;   // resident set size
  uint64_t virtualBytes = 0;    // virtual address space size
  uint64_t openFds = 0;         // open file descriptors
  uint64_t maxFds = 0;          // soft RLIMIT_NOFILE; 0 when unlimited
  uint64_t threads = 0;         // threads in the process
  double startTimeSeconds = 0;  // process start, seconds since the Unix epoch
  double uptimeSeconds = 0;     // seconds since the process started
};

// A fresh reading; never throws and never fails as a whole (see the fields).
ProcessStats readProcessStats() noexcept;

}  // namespace tern
