// Memory over many sandboxes: 100,000 fresh sandboxes in a row with the process's resident
// and virtual size sampled along the way (they must stay flat), then 1,000 instances of
// the same module alive at once (what they cost, and that freeing them gives it back).

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <iostream>

#include "bench_support.h"
#include "util/process_stats.h"
#include "wasm/engine.h"

namespace tern::bench {
namespace {

namespace fs = std::filesystem;
using ModulePtr = std::shared_ptr<const wasm::CompiledModule>;

struct Options {
  fs::path module = examplesDir() / "hello.wasm";
  size_t sequential = 100000;
  size_t sampleEvery = 10000;
  size_t alive = 1000;
  size_t aliveCycles = 2;
};

// The process's memory and the pool's state at one moment.
struct MemorySample {
  ProcessStats process;
  wasm::MemoryPoolStats pool;
};

MemorySample sampleMemory(wasm::Engine& engine) {
  return {readProcessStats(), engine.pool().stats()};
}

// "| VmRSS MiB | VmSize GiB | slots reserved | pool warm KiB |" cells for a sample.
std::string memoryCells(const MemorySample& s) {
  return fmt::format("{} | {} | {} | {}", mebibytes(s.process.residentBytes),
                     gibibytes(s.process.virtualBytes), s.pool.slotsReserved,
                     s.pool.warmBytes / 1024);
}

std::string growth(uint64_t from, uint64_t to, double unit, const char* unitName) {
  return fmt::format("{:+.1f} {}", (static_cast<double>(to) - static_cast<double>(from)) / unit,
                     unitName);
}

constexpr double kMiB = 1 << 20;
constexpr double kGiB = 1 << 30;

void sequential(const Options& o, wasm::Engine& engine, const ModulePtr& module) {
  wasm::InvocationRequest request;
  request.args = {"hello"};
  auto invoke = [&](size_t i) {
    wasm::InvocationResult r = engine.invoke(module, request);
    if (r.outcome != wasm::Outcome::kOk) {
      die("hello.wasm", fmt::format("invocation {} ended {}", i, wasm::outcomeName(r.outcome)));
    }
  };
  // The first invocation maps the thread's signal stack and the pool's first chunk.
  invoke(0);
  MemorySample first = sampleMemory(engine);
  MemorySample last = first;

  std::cout << fmt::format("### {} fresh sandboxes in a row\n\n", o.sequential)
            << "`hello.wasm` invoked again and again in one process after a first invocation; "
               "VmRSS and VmSize are the process's resident and virtual size (/proc/self); "
               "the pool's slots are reserved linear-memory address ranges, its warm pages "
               "zeroed pages kept resident in free slots.\n\n"
            << "| invocations | VmRSS MiB | VmSize GiB | slots reserved | pool warm KiB | "
               "median µs since the previous row |\n"
            << "| ---: | ---: | ---: | ---: | ---: | ---: |\n"
            << fmt::format("| 1 | {} | |\n", memoryCells(first));
  std::vector<int64_t> block;
  block.reserve(o.sampleEvery);
  for (size_t i = 1; i <= o.sequential; ++i) {
    int64_t start = nowNs();
    invoke(i);
    block.push_back(nowNs() - start);
    if (i % o.sampleEvery == 0 || i == o.sequential) {
      last = sampleMemory(engine);
      std::cout << fmt::format("| {} | {} | {} |\n", i + 1, memoryCells(last),
                               micros(summarize(block).median));
      block.clear();
    }
  }
  std::cout << fmt::format(
      "\nFrom the first invocation to the last: VmRSS {}, VmSize {}.\n\n",
      growth(first.process.residentBytes, last.process.residentBytes, kMiB, "MiB"),
      growth(first.process.virtualBytes, last.process.virtualBytes, kGiB, "GiB"));
}

void alive(const Options& o, wasm::Engine& engine, const ModulePtr& module) {
  std::cout << fmt::format("### {} instances alive at once\n\n", o.alive)
            << fmt::format(
                   "`Engine::instantiate` on `hello.wasm` {} times (fresh linear memory "
                   "from the pool, data segments, start section; `_start` is not run), "
                   "all kept alive, then all destroyed; {} cycles. Times are per "
                   "instance.\n\n",
                   o.alive, o.aliveCycles)
            << "| cycle | state | VmRSS MiB | VmSize GiB | slots reserved | pool warm KiB | "
               "instantiate median µs | p99 µs | max µs | destroy median µs |\n"
            << "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n";
  MemorySample before = sampleMemory(engine);
  std::cout << fmt::format("| 0 | before | {} | | | | |\n", memoryCells(before));
  MemorySample withAlive = before;
  MemorySample after = before;
  for (size_t cycle = 1; cycle <= o.aliveCycles; ++cycle) {
    std::vector<std::unique_ptr<wasm::Instance>> instances;
    instances.reserve(o.alive);
    std::vector<int64_t> create, destroy;
    for (size_t i = 0; i < o.alive; ++i) {
      int64_t start = nowNs();
      auto instance = engine.instantiate(module, {});
      create.push_back(nowNs() - start);
      instances.push_back(orDie(std::move(instance), fmt::format("instance {}", i)));
    }
    withAlive = sampleMemory(engine);
    Summary c = summarize(create);
    std::cout << fmt::format("| {} | all alive | {} | {} | {} | {} | |\n", cycle,
                             memoryCells(withAlive), micros(c.median), micros(c.p99),
                             micros(c.max));
    for (auto& instance : instances) {
      int64_t start = nowNs();
      instance.reset();
      destroy.push_back(nowNs() - start);
    }
    instances.clear();
    after = sampleMemory(engine);
    std::cout << fmt::format("| {} | all freed | {} | | | | {} |\n", cycle, memoryCells(after),
                             micros(summarize(destroy).median));
  }
  const double perInstanceKiB = (static_cast<double>(withAlive.process.residentBytes) -
                                 static_cast<double>(before.process.residentBytes)) /
                                1024.0 / static_cast<double>(o.alive);
  std::cout << fmt::format(
      "\nWith {} alive (last cycle): VmRSS {} over the start ({:.1f} KiB per instance), "
      "VmSize {} (reserved address space, not memory). After freeing them: VmRSS {}, "
      "VmSize {} over the start.\n\n",
      o.alive, growth(before.process.residentBytes, withAlive.process.residentBytes, kMiB, "MiB"),
      perInstanceKiB,
      growth(before.process.virtualBytes, withAlive.process.virtualBytes, kGiB, "GiB"),
      growth(before.process.residentBytes, after.process.residentBytes, kMiB, "MiB"),
      growth(before.process.virtualBytes, after.process.virtualBytes, kGiB, "GiB"));
}

int run(const Options& o) {
  ScratchDir cache("tern-bench-memory");
  wasm::EngineConfig config;
  config.compiler.cacheDir = cache.path();
  config.maxSandboxes = std::max<size_t>(config.maxSandboxes, o.alive + 1);
  wasm::Engine engine(config);
  ModulePtr module = orDie(engine.loadFile(o.module), o.module.string());

  std::cout << "## Memory: many sandboxes\n\n";
  std::cerr << "memory: " << o.sequential << " sequential invocations\n";
  sequential(o, engine, module);
  std::cerr << "memory: " << o.alive << " instances alive\n";
  alive(o, engine, module);
  return 0;
}

}  // namespace
}  // namespace tern::bench

int main(int argc, char** argv) {
  tern::bench::Options o;
  CLI::App app{"Process memory across many fresh sandboxes and many live instances"};
  app.add_option("--module", o.module, "a WASI command module");
  app.add_option("--sequential", o.sequential, "fresh sandboxes in a row");
  app.add_option("--sample-every", o.sampleEvery, "invocations between memory samples")
      ->check(CLI::PositiveNumber);
  app.add_option("--alive", o.alive, "instances alive at once");
  app.add_option("--cycles", o.aliveCycles, "times to create and free them");
  CLI11_PARSE(app, argc, argv);
  return tern::bench::run(o);
}
