#pragma once
// What the benchmark programs share: sample statistics, spawning a baseline process with
// its stdout captured, scratch directories, and where the build put the example functions.
// Each benchmark prints a markdown section on stdout (bench/run.sh assembles them into the
// report) and its progress on stderr.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "util/error.h"

namespace tern::bench {

// Where the build put the example functions and the native executables.
std::filesystem::path examplesDir();
std::filesystem::path binDir();

inline int64_t nowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Order statistics of a set of durations in nanoseconds. Percentiles are nearest-rank.
struct Summary {
  size_t count = 0;
  int64_t min = 0;
  int64_t median = 0;
  int64_t p90 = 0;
  int64_t p99 = 0;
  int64_t p999 = 0;
  int64_t max = 0;
  double mean = 0;
};

// Sorts `samples` in place.
Summary summarize(std::vector<int64_t>& samples);

double geomean(std::span<const double> values);

// "1.23" for 1230 ns: microseconds with two decimals.
std::string micros(int64_t ns);
// "1.23" for 1230000 ns: milliseconds with two decimals.
std::string millis(int64_t ns);
// "12.3" for 12.3 * 2^20 bytes.
std::string mebibytes(uint64_t bytes);
// "12.3" for 12.3 * 2^30 bytes.
std::string gibibytes(uint64_t bytes);

struct SpawnResult {
  int exitStatus = -1;  // -1 when the child was killed by a signal
  std::string stdoutData;
};

// Runs `argv[0]` (a path, no PATH lookup) with `env` as its whole environment, stdin
// /dev/null and stdout captured through a pipe, and waits for it. This is the work a
// process-per-request server does for each request: posix_spawn, read the response, reap.
Result<SpawnResult> spawnCapture(const std::vector<std::string>& argv,
                                 const std::vector<std::string>& env);

// A fresh directory under $TMPDIR, removed with its contents on destruction.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& prefix);
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// The file's bytes, or an error naming it.
Result<std::vector<uint8_t>> readFileBytes(const std::filesystem::path& path);

// Prints "tern bench: <what>: <message>" on stderr and exits with status 1. Benchmarks
// cannot go on without their inputs, and a wrong answer from the engine voids the figures.
[[noreturn]] void die(const std::string& what, const std::string& message);

template <typename T>
T orDie(Result<T> r, const std::string& what) {
  if (!r.ok()) die(what, r.error().describe());
  return std::move(r).value();
}

// The value after "key=" in a line such as "fib scale=35 best_ns=8797526 checksum=9227465".
std::string fieldValue(const std::string& line, const std::string& key);

}  // namespace tern::bench
