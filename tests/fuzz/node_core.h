#pragma once
// What the fuzz targets that drive a piece of a real node share (http_gateway,
// mqtt_devices, wasi_calls): a temporary directory removed when the process exits, logging
// off, an engine with its cache there, and the invocation path ternd builds around it
// (function table, executor, worker queue, invoker). Built once per process by each target
// and never destroyed: libFuzzer ends with exit(), and the directory goes at exit.

#include <filesystem>
#include <memory>
#include <string>

#include "exec/executor.h"
#include "exec/function_table.h"
#include "exec/host_context.h"
#include "exec/invoker.h"
#include "util/metrics.h"
#include "util/work_queue.h"
#include "wasm/engine.h"

namespace tern::fuzz {

// A new directory /tmp/tern-NAME-fuzz-XXXXXX, removed with its contents at exit. Also
// turns logging off: refusals are logged, and a target's checks are its output.
std::filesystem::path temporaryDirectory(const std::string& name);

// Whether the engine compiles modules: kRefused makes wasm2c /bin/false, so a deploy runs
// every check up to compiling and then fails at once instead of spending the run in the
// C compiler.
enum class Compiling { kReal, kRefused };

// An engine whose compile cache is dir/cache.
std::unique_ptr<wasm::Engine> engine(const std::filesystem::path& dir, Compiling compiling);

// The invocation path of a node whose data directory is `dir`: an engine (engine()), the
// function table, an executor with one slot and a queue of 4, one worker thread, and an
// invoker backed by `services`.
struct NodeCore {
  NodeCore(const std::filesystem::path& dir, Compiling compiling, exec::HostServices services = {});

  std::filesystem::path dir;
  MetricsRegistry metrics;
  std::unique_ptr<wasm::Engine> engine;
  std::unique_ptr<exec::FunctionTable> table;
  std::unique_ptr<exec::Executor> executor;
  std::unique_ptr<WorkQueue> workers;
  std::unique_ptr<exec::Invoker> invoker;
};

}  // namespace tern::fuzz
