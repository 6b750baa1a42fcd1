// Compute kernels: the same C sources run as kernels.wasm through the engine and as native
// executables at -O2, alternately, for several rounds. Each run reports the best of its
// repetitions (the driver times the kernel itself, so neither process start nor
// instantiation is counted); the table keeps the best run of all rounds per build.

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <iostream>
#include <limits>
#include <map>

#include "bench_support.h"
#include "wasm/engine.h"

namespace tern::bench {
namespace {

namespace fs = std::filesystem;
using ModulePtr = std::shared_ptr<const wasm::CompiledModule>;

struct Options {
  fs::path module = examplesDir() / "kernels.wasm";
  fs::path native = binDir() / "kernels_native";
  fs::path nativeClang = binDir() / "kernels_native_clang";
  std::vector<std::string> kernels = {"fib",   "sieve", "matmul", "sha256",
                                      "crc32", "nbody", "qsort",  "mandelbrot"};
  uint32_t rounds = 5;
  uint32_t reps = 5;
};

// One kernel run's result line: "NAME scale=S reps=R best_ns=B checksum=C".
struct KernelRun {
  int64_t bestNs = 0;
  std::string checksum;
};

KernelRun parseRun(const std::string& what, const std::string& output) {
  KernelRun run;
  std::string best = fieldValue(output, "best_ns");
  run.checksum = fieldValue(output, "checksum");
  if (best.empty() || run.checksum.empty()) die(what, "unexpected output: " + output);
  run.bestNs = std::stoll(best);
  return run;
}

// The builds under comparison, in table order; the first is the reference.
enum class Build : uint8_t { kNativeGcc, kNativeClang, kWasm };

struct BuildTimes {
  int64_t best = std::numeric_limits<int64_t>::max();
  std::vector<int64_t> perRound;
};

class KernelRunner {
 public:
  KernelRunner(const Options& o, wasm::Engine& engine, ModulePtr module)
      : o_(o), engine_(engine), module_(std::move(module)) {}

  KernelRun run(Build build, const std::string& kernel) {
    if (build == Build::kWasm) return runWasm(kernel);
    const fs::path& exe = build == Build::kNativeGcc ? o_.native : o_.nativeClang;
    SpawnResult r =
        orDie(spawnCapture({exe.string(), kernel, "0", std::to_string(o_.reps)}, {}), exe.string());
    if (r.exitStatus != 0) die(exe.string(), fmt::format("exit status {}", r.exitStatus));
    return parseRun(exe.string(), r.stdoutData);
  }

 private:
  KernelRun runWasm(const std::string& kernel) {
    wasm::InvocationRequest request;
    request.args = {"kernels"};
    request.env.add("KERNEL", kernel);
    request.env.add("KERNEL_REPS", std::to_string(o_.reps));
    request.timeout = std::chrono::milliseconds(0);
    wasm::InvocationResult r = engine_.invoke(module_, request);
    if (r.outcome != wasm::Outcome::kOk) {
      die("kernels.wasm " + kernel,
          fmt::format("invocation ended {}: {} {}", wasm::outcomeName(r.outcome), r.detail,
                      r.stderrData));
    }
    return parseRun("kernels.wasm " + kernel, r.stdoutData);
  }

  const Options& o_;
  wasm::Engine& engine_;
  ModulePtr module_;
};

std::string ratio(int64_t num, int64_t den) {
  return fmt::format("{:.2f}", static_cast<double>(num) / static_cast<double>(den));
}

double medianRatio(const std::vector<int64_t>& num, const std::vector<int64_t>& den) {
  std::vector<double> r;
  for (size_t i = 0; i < num.size() && i < den.size(); ++i) {
    r.push_back(static_cast<double>(num[i]) / static_cast<double>(den[i]));
  }
  std::sort(r.begin(), r.end());
  return r.empty() ? 0 : r[(r.size() - 1) / 2];
}

int run(const Options& o) {
  ScratchDir cache("tern-bench-kernels");
  wasm::EngineConfig config;
  config.compiler.cacheDir = cache.path();
  wasm::Engine engine(config);
  std::cerr << "kernels: compiling " << o.module.string() << "\n";
  ModulePtr module = orDie(engine.loadFile(o.module), o.module.string());
  KernelRunner runner(o, engine, module);

  std::vector<Build> builds = {Build::kNativeGcc, Build::kWasm};
  const bool haveClang = fs::exists(o.nativeClang);
  if (haveClang) builds.insert(builds.begin() + 1, Build::kNativeClang);

  std::map<std::string, std::map<Build, BuildTimes>> times;
  for (uint32_t round = 0; round < o.rounds; ++round) {
    std::cerr << "kernels: round " << round + 1 << " of " << o.rounds << "\n";
    for (const auto& kernel : o.kernels) {
      // Alternate the order so that neither build always runs first (or last) in a round.
      std::vector<Build> order = builds;
      if (round % 2 == 1) std::reverse(order.begin(), order.end());
      std::string checksum;
      for (Build b : order) {
        KernelRun r = runner.run(b, kernel);
        if (!checksum.empty() && r.checksum != checksum) {
          die(kernel,
              fmt::format("checksums differ between builds: {} and {}", checksum, r.checksum));
        }
        checksum = r.checksum;
        BuildTimes& t = times[kernel][b];
        t.best = std::min(t.best, r.bestNs);
        t.perRound.push_back(r.bestNs);
      }
    }
  }

  std::vector<double> vsGcc, vsGccMedian, vsClang;
  std::cout << "## Compute kernels: wasm through tern vs native\n\n"
            << fmt::format(
                   "{} rounds; in each round every kernel runs once per build, in "
                   "alternating order; each run is {} repetitions of the kernel and "
                   "reports its fastest. Times are the best run of all rounds, in ms. "
                   "Ratio = wasm / native (lower is better); \"median of rounds\" is "
                   "the median of the per-round ratios. Checksums agree across builds.\n\n",
                   o.rounds, o.reps);
  std::cout << "| kernel | native gcc -O2 ms |" << (haveClang ? " native clang -O2 ms |" : "")
            << " tern wasm ms | wasm / gcc | median of rounds |"
            << (haveClang ? " wasm / clang |" : "") << "\n"
            << "| --- | ---: |" << (haveClang ? " ---: |" : "") << " ---: | ---: | ---: |"
            << (haveClang ? " ---: |" : "") << "\n";
  for (const auto& kernel : o.kernels) {
    auto& t = times[kernel];
    const BuildTimes& gcc = t[Build::kNativeGcc];
    const BuildTimes& wasm = t[Build::kWasm];
    vsGcc.push_back(static_cast<double>(wasm.best) / static_cast<double>(gcc.best));
    vsGccMedian.push_back(medianRatio(wasm.perRound, gcc.perRound));
    std::cout << "| " << kernel << " | " << millis(gcc.best) << " |";
    if (haveClang) std::cout << " " << millis(t[Build::kNativeClang].best) << " |";
    std::cout << " " << millis(wasm.best) << " | " << ratio(wasm.best, gcc.best) << " | "
              << fmt::format("{:.2f}", vsGccMedian.back()) << " |";
    if (haveClang) {
      const BuildTimes& clang = t[Build::kNativeClang];
      vsClang.push_back(static_cast<double>(wasm.best) / static_cast<double>(clang.best));
      std::cout << " " << ratio(wasm.best, clang.best) << " |";
    }
    std::cout << "\n";
  }
  std::cout << "| **geomean** | | " << (haveClang ? "| " : "") << "| **"
            << fmt::format("{:.3f}** | {:.3f} |", geomean(vsGcc), geomean(vsGccMedian))
            << (haveClang ? fmt::format(" {:.3f} |", geomean(vsClang)) : "") << "\n\n";
  return 0;
}

}  // namespace
}  // namespace tern::bench

int main(int argc, char** argv) {
  tern::bench::Options o;
  CLI::App app{"Compute kernels: kernels.wasm through tern vs the same C compiled natively"};
  app.add_option("--module", o.module, "kernels.wasm");
  app.add_option("--native", o.native, "kernels_native (the system C compiler, -O2)");
  app.add_option("--native-clang", o.nativeClang,
                 "kernels_native_clang (clang, -O2); skipped when absent");
  app.add_option("--kernel", o.kernels, "kernels to run (repeatable; default all)");
  app.add_option("--rounds", o.rounds, "rounds")->check(CLI::Range(1u, 1000u));
  app.add_option("--reps", o.reps, "repetitions per run")->check(CLI::Range(1u, 1000u));
  CLI11_PARSE(app, argc, argv);
  return tern::bench::run(o);
}
