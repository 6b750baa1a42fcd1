#pragma once
// The conformance run over a set of .wast files: each file is checked against the skip
// list, converted with wast2json into a temporary directory, run with a ScriptRunner, and
// summarised (commands passed, failed and skipped, and every failure with its line).

#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "script_runner.h"
#include "skip_list.h"

namespace tern::conformance {

// Exit statuses of the harness.
inline constexpr int kExitPassed = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitSetupError = 2;
inline constexpr int kExitSkipped = 77;  // CTest's SKIP_RETURN_CODE: nothing was run

struct SuiteOptions {
  // Files to run: names relative to specDir, or paths. Empty: every .wast in specDir.
  std::vector<std::string> files;
  std::filesystem::path specDir;
  std::filesystem::path cacheDir;
  std::filesystem::path spectestModule;  // spectest.wasm
  std::filesystem::path skipList;        // skipped.txt; empty: none
  std::string wast2json = "wast2json";
  unsigned compileJobs = 2;
  wasm::OptLevel opt = wasm::OptLevel::kO0;  // the C compiler's level for every module
  wasm::Tier tier = wasm::Tier::kOptimized;  // kBaseline: TinyCC, and `opt` does not apply
  size_t maxReportedFailures = 50;  // per file
  // Self-test mode: the run passes only if exactly this many commands fail.
  std::optional<size_t> expectFailures;
};

// Runs the suite, printing the per-file summaries to `out`; returns the exit status.
int runSuite(const SuiteOptions& options, std::ostream& out);

}  // namespace tern::conformance
