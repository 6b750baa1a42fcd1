#include "node_core.h"

#include <spdlog/spdlog.h>

#include <cstdlib>
#include <functional>
#include <utility>
#include <vector>

#include "fuzz_check.h"

namespace tern::fuzz {

namespace {

// The directories to remove at exit (allocated once and never freed, so that it outlives
// every static destructor that could run before the atexit handler).
std::vector<std::filesystem::path>& removedAtExit() {
  static auto* dirs = new std::vector<std::filesystem::path>;
  return *dirs;
}

}  // namespace

std::filesystem::path temporaryDirectory(const std::string& name) {
  spdlog::set_level(spdlog::level::off);
  std::string path = "/tmp/tern-" + name + "-fuzz-XXXXXX";
  FUZZ_CHECK(mkdtemp(path.data()) != nullptr);
  if (removedAtExit().empty()) {
    std::atexit([] {
      for (const auto& dir : removedAtExit()) std::filesystem::remove_all(dir);
    });
  }
  removedAtExit().emplace_back(path);
  return path;
}

std::unique_ptr<wasm::Engine> engine(const std::filesystem::path& dir, Compiling compiling) {
  wasm::EngineConfig config;
  config.compiler.cacheDir = dir / "cache";
  if (compiling == Compiling::kRefused) config.compiler.wasm2c = "/bin/false";
  return std::make_unique<wasm::Engine>(config);
}

NodeCore::NodeCore(const std::filesystem::path& dataDir, Compiling compiling,
                   exec::HostServices services)
    : dir(dataDir),
      engine(fuzz::engine(dataDir, compiling)),
      table(std::make_unique<exec::FunctionTable>(metrics)),
      executor(std::make_unique<exec::Executor>(exec::Executor::Options{1, 4})),
      workers(std::make_unique<WorkQueue>(1)) {
  invoker = std::make_unique<exec::Invoker>(
      *engine, *executor, *table,
      [queue = workers.get()](std::function<void()> task) { queue->post(std::move(task)); },
      std::move(services));
}

}  // namespace tern::fuzz
