#pragma once
// Runs one spec-test script through tern's engine: every module is compiled (in parallel,
// before the first command runs), then the commands execute in order against a Linker
// that holds the script's instances and the "spectest" host module.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "script.h"
#include "wasm/engine.h"

namespace tern::conformance {

struct RunnerOptions {
  std::vector<uint8_t> spectestModule;           // the binary of the "spectest" host module
  unsigned compileJobs = 2;                      // modules compiled at once
  // The C compiler's optimisation level: -O0 checks wasm2c's translation as written, -O2
  // is the level functions are served at, where the compiler may reshape the code.
  wasm::OptLevel opt = wasm::OptLevel::kO0;
  // The baseline tier (TinyCC) compiles without levels: the code as wasm2c wrote it.
  wasm::Tier tier = wasm::Tier::kOptimized;
  std::chrono::milliseconds callTimeout{60000};  // per invocation and start function
};

enum class Verdict : uint8_t { kPassed, kFailed, kSkipped };

// What happened to one command; `detail` says why it failed or was skipped, or for a
// passed command, how it deviated acceptably (a note).
struct CommandResult {
  const Command* command = nullptr;  // points into the Script given to ScriptRunner::run
  Verdict verdict = Verdict::kPassed;
  std::string detail;
};

struct ScriptReport {
  size_t passed = 0;
  size_t failed = 0;
  size_t skipped = 0;
  std::vector<CommandResult> findings;  // failed, skipped and noted commands, in order
  std::vector<int> unmatchedSkips;      // skipped lines that start no command
  double compileSeconds = 0;            // compiling (or finding in the cache) every module
  double runSeconds = 0;                // executing the commands
};

class ScriptRunner {
 public:
  ScriptRunner(wasm::Engine& engine, RunnerOptions options);

  // Runs the script; the commands starting on the lines of `skipped` are not run and are
  // reported as skipped with the given reason.
  ScriptReport run(const Script& script, const std::map<int, std::string>& skipped = {});

 private:
  wasm::Engine& engine_;
  RunnerOptions options_;
};

}  // namespace tern::conformance
