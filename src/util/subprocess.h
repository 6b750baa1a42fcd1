#pragma once
// Running a helper program (wasm2c, the C compiler) with its output captured and a time
// limit. Untrusted input is handed to such programs rather than parsed in-process, so a
// crash there is an error here, not a crash of tern.

#include <chrono>
#include <string>
#include <vector>

#include "util/error.h"

namespace tern {

struct SubprocessOptions {
  std::chrono::milliseconds timeout{std::chrono::minutes(5)};
  size_t maxOutputBytes = 1 << 20;  // stdout+stderr kept, the rest is dropped
  std::string workingDirectory;    // empty: inherit
};

struct SubprocessResult {
  int exitStatus = -1;    // exit code, or -1 when killed by a signal
  int termSignal = 0;     // the signal that ended it, if any
  bool timedOut = false;
  std::string output;     // stdout and stderr, interleaved
};

// Runs argv[0] (looked up in PATH) with the given arguments. An error only when the program
// could not be started at all; a non-zero exit is reported in the result.
Result<SubprocessResult> runSubprocess(const std::vector<std::string>& argv,
                                       const SubprocessOptions& options = {});

}  // namespace tern
