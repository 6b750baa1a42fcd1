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
  app.add_option("--opt", options.opt,
                 "The C compiler's optimisation level for the modules: O0 (default) or O2, the "
                 "level functions are served at")
      ->transform(CLI::CheckedTransformer(
          std::map<std::string, tern::wasm::OptLevel>{{"O0", tern::wasm::OptLevel::kO0},
                                                      {"O2", tern::wasm::OptLevel::kO2}}));
  app.add_option("--max-failures", options.maxReportedFailures, "Failures printed per file");
  app.add_option("--expect-failures", options.expectFailures,
                 "Self-test: succeed only if exactly this many commands fail");
  CLI11_PARSE(app, argc, argv);

  return runSuite(options, std::cout);
}
