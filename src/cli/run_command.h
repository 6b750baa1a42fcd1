#pragma once
// `tern run`: one module, one invocation (or N fresh ones with --repeat), from the shell.

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "wasm/engine.h"

namespace tern::cli {

struct RunOptions {
  std::string modulePath;
  std::string inputPath;            // empty: read tern's own stdin
  std::vector<std::string> env;     // KEY=VALUE
  std::vector<std::string> args;    // guest argv[1..]
  uint32_t timeoutMs = 10000;
  uint32_t memoryMb = 128;
  uint32_t repeat = 1;
  std::string cacheDir;             // empty: the default cache
  // auto: the optimized object when it is cached, else the baseline tier for a single run
  // (compiled in tens of milliseconds) and the optimized tier for --repeat (which measures
  // the code a node would serve); baseline; optimized. See docs/design/tiers.md.
  std::string compileTier = "auto";
};

// Runs the command. Returns the process exit status: the guest's exit code when it exits
// normally, otherwise the error kind's status (see docs/cli.md), with a one-line message
// on `err`.
int runCommand(const RunOptions& options, std::istream& in, std::ostream& out, std::ostream& err);

}  // namespace tern::cli
