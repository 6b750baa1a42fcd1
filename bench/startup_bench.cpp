// Fresh-sandbox latency: one WASI "hello" invocation (instantiate, run _start, tear down)
// timed many times, next to the process-per-request baseline (the same hello compiled
// natively, started with posix_spawn and reaped), then the throughput of one and two
// threads invoking concurrently.

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <ctime>
#include <iostream>
#include <latch>
#include <thread>

#include "bench_support.h"
#include "wasm/engine.h"

namespace tern::bench {
namespace {

namespace fs = std::filesystem;
using ModulePtr = std::shared_ptr<const wasm::CompiledModule>;

struct Options {
  fs::path module = examplesDir() / "hello.wasm";
  fs::path nativeDynamic = binDir() / "hello_native";
  fs::path nativeStatic = binDir() / "hello_native_static";
  size_t warmup = 20000;
  size_t samples = 200000;
  size_t spawnSamples = 3000;
  size_t perThread = 200000;       // invocations per thread in the throughput runs
  size_t spawnPerThread = 2000;    // processes per thread in the throughput runs
};

// One engine invocation of the hello module, checked against the expected response.
class HelloInvoker {
 public:
  HelloInvoker(wasm::Engine& engine, ModulePtr module, std::string expected)
      : engine_(engine), module_(std::move(module)), expected_(std::move(expected)) {
    request_.args = {"hello"};
  }
  void operator()() const {
    wasm::InvocationResult r = engine_.invoke(module_, request_);
    if (r.outcome != wasm::Outcome::kOk || r.stdoutData != expected_) {
      die("hello.wasm", fmt::format("invocation ended {} with stdout \"{}\" ({})",
                                    wasm::outcomeName(r.outcome), r.stdoutData, r.detail));
    }
  }

 private:
  wasm::Engine& engine_;
  ModulePtr module_;
  std::string expected_;
  wasm::InvocationRequest request_;
};

// One process-per-request "invocation": spawn the native hello, read its stdout, reap it.
class HelloSpawner {
 public:
  HelloSpawner(fs::path program, std::string expected)
      : program_(std::move(program)), expected_(std::move(expected)) {}
  void operator()() const {
    SpawnResult r = orDie(spawnCapture({program_.string()}, {}), program_.string());
    if (r.exitStatus != 0 || r.stdoutData != expected_) {
      die(program_.string(), fmt::format("exit status {}, stdout \"{}\"", r.exitStatus,
                                         r.stdoutData));
    }
  }

 private:
  fs::path program_;
  std::string expected_;
};

template <typename Op>
std::vector<int64_t> timeEach(const Op& op, size_t count) {
  std::vector<int64_t> samples;
  samples.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    int64_t start = nowNs();
    op();
    samples.push_back(nowNs() - start);
  }
  return samples;
}

struct ConcurrentRun {
  size_t threads = 0;
  size_t operations = 0;
  int64_t wallNs = 0;
  int64_t cpuNs = 0;  // CPU time of this process (all its threads) over the run
  Summary latency;    // of every operation on every thread
};

int64_t processCpuNs() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

// Runs `perThread` operations on each of `threads` threads released together; the wall
// time runs from the release to the last thread's finish.
template <typename Op>
ConcurrentRun runConcurrent(const Op& op, size_t threads, size_t perThread) {
  std::vector<std::vector<int64_t>> samples(threads);
  std::latch ready(static_cast<ptrdiff_t>(threads));
  std::latch go(1);
  std::vector<std::thread> workers;
  for (size_t t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      op();  // this thread's first invocation sets up its signal stack and slot
      ready.count_down();
      go.wait();
      samples[t] = timeEach(op, perThread);
    });
  }
  ready.wait();
  int64_t start = nowNs();
  int64_t startCpu = processCpuNs();
  go.count_down();
  for (auto& w : workers) w.join();
  ConcurrentRun run;
  run.threads = threads;
  run.operations = threads * perThread;
  run.wallNs = nowNs() - start;
  run.cpuNs = processCpuNs() - startCpu;
  std::vector<int64_t> all;
  for (auto& s : samples) all.insert(all.end(), s.begin(), s.end());
  run.latency = summarize(all);
  return run;
}

std::string latencyRow(const std::string& what, const Summary& s) {
  return fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} |\n", what, s.count,
                     micros(s.median), micros(s.p90), micros(s.p99), micros(s.p999),
                     micros(s.max), micros(static_cast<int64_t>(s.mean)));
}

double perSecond(const ConcurrentRun& r) {
  return static_cast<double>(r.operations) / (static_cast<double>(r.wallNs) / 1e9);
}

// CPU columns only for tern: a spawned process's work is not this process's CPU time.
enum class CpuColumns : uint8_t { kShow, kHide };

std::string throughputRow(const std::string& what, const ConcurrentRun& r, CpuColumns cpu) {
  std::string cpuCells = " | |";
  if (cpu == CpuColumns::kShow) {
    cpuCells = fmt::format(" {:.2f} | {} |", static_cast<double>(r.cpuNs) / static_cast<double>(r.wallNs),
                           micros(r.cpuNs / static_cast<int64_t>(r.operations)));
  }
  return fmt::format("| {} | {} | {} | {:.3f} | {:.0f} | {} | {} |{}\n", what, r.threads,
                     r.operations, static_cast<double>(r.wallNs) / 1e9, perSecond(r),
                     micros(r.latency.median), micros(r.latency.p99), cpuCells);
}

int run(const Options& o) {
  ScratchDir cache("tern-bench-startup");
  wasm::EngineConfig config;
  config.compiler.cacheDir = cache.path();
  wasm::Engine engine(config);
  ModulePtr module = orDie(engine.loadFile(o.module), o.module.string());

  // The native build's output is the answer the sandbox must give too.
  std::string expected =
      orDie(spawnCapture({o.nativeDynamic.string()}, {}), o.nativeDynamic.string()).stdoutData;
  HelloInvoker invoke(engine, module, expected);
  HelloSpawner spawnDynamic(o.nativeDynamic, expected);
  HelloSpawner spawnStatic(o.nativeStatic, expected);

  std::cerr << "startup: warm-up\n";
  timeEach(invoke, o.warmup);
  std::cerr << "startup: " << o.samples << " timed invocations\n";
  std::vector<int64_t> sandboxSamples = timeEach(invoke, o.samples);
  std::cerr << "startup: process baselines\n";
  timeEach(spawnDynamic, o.spawnSamples / 10);
  std::vector<int64_t> dynamicSamples = timeEach(spawnDynamic, o.spawnSamples);
  timeEach(spawnStatic, o.spawnSamples / 10);
  std::vector<int64_t> staticSamples = timeEach(spawnStatic, o.spawnSamples);
  Summary sandbox = summarize(sandboxSamples);
  Summary dynamicProc = summarize(dynamicSamples);
  Summary staticProc = summarize(staticSamples);

  std::cerr << "startup: throughput, 1 and 2 threads\n";
  ConcurrentRun tern1 = runConcurrent(invoke, 1, o.perThread);
  ConcurrentRun tern2 = runConcurrent(invoke, 2, o.perThread);
  ConcurrentRun proc1 = runConcurrent(spawnStatic, 1, o.spawnPerThread);
  ConcurrentRun proc2 = runConcurrent(spawnStatic, 2, o.spawnPerThread);

  std::cout << "## Fresh sandbox per invocation: WASI hello\n\n"
            << fmt::format("Module `{}` ({} bytes), response `{}`. Each sample is one "
                           "`Engine::invoke` (fresh instance, `_start`, teardown) or one "
                           "process; {} warm-up invocations first.\n\n",
                           o.module.filename().string(), fs::file_size(o.module),
                           expected.substr(0, expected.find('\n')), o.warmup)
            << "| one invocation | samples | median µs | p90 µs | p99 µs | p99.9 µs | max µs "
               "| mean µs |\n"
            << "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n"
            << latencyRow("tern: fresh sandbox (`Engine::invoke`)", sandbox)
            << latencyRow("process: posix_spawn + read + waitpid, `hello_native` (dynamic)",
                          dynamicProc)
            << latencyRow("process: the same, `hello_native_static` (static)", staticProc)
            << fmt::format(
                   "\nMedian ratio: a fresh process costs {:.0f}x (dynamic) and {:.0f}x (static) "
                   "a fresh sandbox.\n\n",
                   static_cast<double>(dynamicProc.median) / static_cast<double>(sandbox.median),
                   static_cast<double>(staticProc.median) / static_cast<double>(sandbox.median))
            << "### Throughput, one and two threads\n\n"
            << "Each thread runs its invocations back to back; the threads start together. "
               "CPUs busy = this process's CPU time / wall time (2.00 when both threads run "
               "all the time); CPU µs = its CPU time per invocation, which rises if the "
               "threads contend.\n\n"
            << "| what | threads | invocations | wall s | per second | median µs | p99 µs | "
               "CPUs busy | CPU µs per invocation |\n"
            << "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n"
            << throughputRow("tern: fresh sandbox", tern1, CpuColumns::kShow)
            << throughputRow("tern: fresh sandbox", tern2, CpuColumns::kShow)
            << throughputRow("process: `hello_native_static`", proc1, CpuColumns::kHide)
            << throughputRow("process: `hello_native_static`", proc2, CpuColumns::kHide)
            << fmt::format("\nTwo threads give {:.2f}x the throughput of one (tern), {:.2f}x "
                           "(processes).\n\n",
                           perSecond(tern2) / perSecond(tern1), perSecond(proc2) / perSecond(proc1));
  return 0;
}

}  // namespace
}  // namespace tern::bench

int main(int argc, char** argv) {
  tern::bench::Options o;
  CLI::App app{"Fresh-sandbox latency and throughput of a WASI hello, with a process baseline"};
  app.add_option("--module", o.module, "the hello module");
  app.add_option("--native", o.nativeDynamic, "hello compiled natively, dynamically linked");
  app.add_option("--native-static", o.nativeStatic, "hello compiled natively, static");
  app.add_option("--warmup", o.warmup, "untimed invocations first");
  app.add_option("--samples", o.samples, "timed invocations");
  app.add_option("--spawn-samples", o.spawnSamples, "timed processes per baseline");
  app.add_option("--per-thread", o.perThread, "invocations per thread, throughput runs");
  app.add_option("--spawn-per-thread", o.spawnPerThread, "processes per thread, throughput runs");
  CLI11_PARSE(app, argc, argv);
  return tern::bench::run(o);
}
