#pragma once
// Running a helper program (wasm2c, the C compiler) with its output captured, a time limit
// and, optionally, memory and CPU limits. Untrusted input is handed to such programs rather
// than parsed in-process, so a crash there is an error here, not a crash of tern, and the
// limits keep one input from taking the machine's memory or CPU.

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "util/error.h"

namespace tern {

// Resource limits set with setrlimit in the child between fork and exec, so they hold from
// its first instruction and are inherited by every process it starts (the C compiler driver
// starts cc1, as and ld): each of those processes gets the same limits of its own. 0: no
// limit.
struct SubprocessLimits {
  // RLIMIT_AS: allocations that would take the process's address space past this fail
  // (malloc returns null, mmap and brk fail), so the program reports that it ran out of
  // memory instead of growing without bound.
  uint64_t addressSpaceBytes = 0;
  // RLIMIT_CPU: SIGXCPU when a process has used this much CPU time, SIGKILL a second later.
  uint64_t cpuSeconds = 0;
};

struct SubprocessOptions {
  // Wall-clock limit. At the deadline the child's whole process group is killed.
  std::chrono::milliseconds timeout{std::chrono::minutes(5)};
  size_t maxOutputBytes = 1 << 20;  // stdout+stderr kept, the rest is dropped
  std::string workingDirectory{};  // empty: inherit
  SubprocessLimits limits{};
  // Settings on top of this process's environment, each "NAME=value": a NAME the
  // environment has is replaced, except GLIBC_TUNABLES, whose value joins the inherited
  // one (glibc reads one list, "name=value:name=value").
  std::vector<std::string> environment{};
};

// The environment a child gets: `inherited` (a null-terminated list, like environ) with
// `settings` applied as SubprocessOptions::environment says.
std::vector<std::string> childEnvironment(const char* const* inherited,
                                          const std::vector<std::string>& settings);

struct SubprocessResult {
  int exitStatus = -1;    // exit code, or -1 when killed by a signal
  int termSignal = 0;     // the signal that ended it, if any
  bool timedOut = false;
  std::string output;     // stdout and stderr, interleaved
  // CPU time (user + system) of the child and of the descendants it waited for.
  double cpuSeconds = 0;
};

// Runs argv[0] (looked up in PATH when it has no '/') with the given arguments, in a
// process group of its own, with stdin from /dev/null, default signal dispositions, an
// empty signal mask and no core dumps (a helper program's memory holds untrusted input).
// An error only when the program could not be started at all; a non-zero exit is reported
// in the result.
Result<SubprocessResult> runSubprocess(const std::vector<std::string>& argv,
                                       const SubprocessOptions& options = {});

// Two programs joined through this process, so that the second starts on the first's
// output while it is still being written (the baseline compiler reads wasm2c's C as it
// comes): the producer's stdout is read here and handed to `relay` piece by piece as it
// arrives; what the relay appends to `out` is written to the consumer's stdin. When the
// producer's stdout ends the relay is called once more with `last` set (and an empty
// piece) to add what remains, and the consumer's stdin is closed after it. Each program
// runs as runSubprocess runs one, under the same options; the timeout is one deadline for
// both, at which both are killed. A consumer that exits early (a compile error) is not
// written to again; the producer's output is still read to its end.
struct PipelineResult {
  SubprocessResult producer;  // output: what it wrote to stderr (its stdout is the data)
  SubprocessResult consumer;  // output: its stdout and stderr
};
using PipelineRelay = std::function<void(std::string_view piece, bool last, std::string& out)>;
Result<PipelineResult> runPipeline(const std::vector<std::string>& producer,
                                   const std::vector<std::string>& consumer,
                                   const PipelineRelay& relay,
                                   const SubprocessOptions& options = {});

}  // namespace tern
