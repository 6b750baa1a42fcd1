// The tern command-line tool. main() only parses arguments and dispatches; every command
// lives in src/cli where tests reach it.

#include <CLI/CLI.hpp>

#include <iostream>

#include "cli/run_command.h"
#include "util/error.h"

int main(int argc, char** argv) {
  CLI::App app{"tern: a serverless platform for the edge, running WebAssembly functions"};
  app.require_subcommand(1);

  tern::cli::RunOptions run;
  auto* runCmd = app.add_subcommand("run", "Run a WebAssembly module as one invocation");
  runCmd->add_option("file", run.modulePath, "the .wasm module (a WASI command)")->required();
  runCmd->add_option("--input", run.inputPath, "file to use as the function's stdin "
                                               "(default: tern's own stdin)");
  runCmd->add_option("--env", run.env, "environment variable KEY=VALUE (repeatable)");
  runCmd->add_option("--arg", run.args, "argument for the function (repeatable)");
  runCmd->add_option("--timeout-ms", run.timeoutMs, "stop the invocation after this long")
      ->check(CLI::Range(1u, 86400000u));
  runCmd->add_option("--memory-mb", run.memoryMb, "linear memory limit")
      ->check(CLI::Range(1u, 4096u));
  runCmd->add_option("--repeat", run.repeat, "run N fresh sandboxes one after another")
      ->check(CLI::Range(1u, 100000000u));
  runCmd->add_option("--cache-dir", run.cacheDir, "compiled-module cache "
                                                  "(default $TERN_CACHE_DIR or ~/.cache/tern)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : tern::errorKind(tern::ErrorCode::kInvalidArgument).exitStatus;
  }
  if (runCmd->parsed()) return tern::cli::runCommand(run, std::cin, std::cout, std::cerr);
  return 0;
}
