// spec_runner: runs WebAssembly spec-test scripts (.wast) through tern's engine.
// See README.md in this directory.

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>
#include <map>
#include <string>
#include <thread>

#include "suite.h"
#include "wasm/engine.h"

namespace {

std::string envOr(const char* name, std::string fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : std::move(fallback);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace tern::conformance;
  SuiteOptions options;
  options.specDir = envOr("TERN_SPEC_DIR", "");
  options.cacheDir = envOr("TERN_TEST_CACHE_DIR", tern::wasm::defaultCacheDir().string());
  options.spectestModule = TERN_CONFORMANCE_SPECTEST_WASM;
  options.skipList = TERN_CONFORMANCE_SKIP_LIST;
  options.compileJobs = std::max(1u, std::thread::hardware_concurrency());

  CLI::App app{"Runs WebAssembly spec-test scripts (.wast) through tern's engine"};
  app.add_option("files", options.files,
                 "Scripts to run: names in the spec directory or paths (default: all)");
  app.add_option("--spec-dir", options.specDir, "The spec test suite (default: $TERN_SPEC_DIR)");
  app.add_option("--cache-dir", options.cacheDir,
                 "Compile cache (default: $TERN_TEST_CACHE_DIR, else tern's cache)");
  app.add_option("--spectest", options.spectestModule, "The spectest host module (.wasm)");
  app.add_option("--skip-list", options.skipList, "Files not to run, with reasons");
  app.add_option("--wast2json", options.wast2json, "The wast2json program");
  app.add_option("-j,--jobs", options.compileJobs, "Modules compiled in parallel")
      ->check(CLI::PositiveNumber);
  std::string level = "O0";
  app.add_option("--opt", level,
                 "How the modules are compiled: O0 (default), O2 (the optimized tier functions "
                 "are served at) or baseline (TinyCC, the baseline tier)")
      ->check(CLI::IsMember({"O0", "O2", "baseline"}));
  app.add_option("--max-failures", options.maxReportedFailures, "Failures printed per file");
  app.add_option("--expect-failures", options.expectFailures,
                 "Self-test: succeed only if exactly this many commands fail");
  CLI11_PARSE(app, argc, argv);
  options.opt = level == "O2" ? tern::wasm::OptLevel::kO2 : tern::wasm::OptLevel::kO0;
  options.tier = level == "baseline" ? tern::wasm::Tier::kBaseline : tern::wasm::Tier::kOptimized;

  return runSuite(options, std::cout);
}
