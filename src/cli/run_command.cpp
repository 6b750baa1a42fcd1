#include "cli/run_command.h"

#include "cli/output_format.h"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

namespace tern::cli {

namespace {

std::string percentileUs(std::vector<int64_t> ns, double p) {
  if (ns.empty()) return "-";
  std::sort(ns.begin(), ns.end());
  size_t i = std::min(ns.size() - 1, static_cast<size_t>(p * static_cast<double>(ns.size())));
  return fmt::format("{:.2f}", static_cast<double>(ns[i]) / 1000.0);
}

// The module at the tier options.compileTier asks for (see RunOptions).
Result<std::shared_ptr<const wasm::CompiledModule>> load(wasm::Engine& engine,
                                                         const RunOptions& options) {
  wasm::CompileOptions co;
  if (options.compileTier == "baseline") {
    co.tier = wasm::Tier::kBaseline;
  } else if (options.compileTier == "auto") {
    std::error_code ec;
    auto size = std::filesystem::file_size(options.modulePath, ec);
    if (ec) return Error(ErrorCode::kIo, "cannot read " + options.modulePath + ": " + ec.message());
    if (size > engine.compiler().config().maxModuleBytes) return engine.loadFile(options.modulePath);
    std::ifstream f(options.modulePath, std::ios::binary);
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    if (!f.good() && !f.eof()) return Error(ErrorCode::kIo, "cannot read " + options.modulePath);
    auto cached = engine.compiler().loadIfCached(bytes, co);
    if (!cached.ok() || *cached) return cached;
    if (options.repeat == 1 && engine.compiler().baselineAvailable()) {
      co.tier = wasm::Tier::kBaseline;
    }
    return engine.load(bytes, co);
  } else if (options.compileTier != "optimized") {
    return Error(ErrorCode::kInvalidArgument,
                 fmt::format("--compile-tier must be auto, baseline or optimized, got \"{}\"",
                             options.compileTier));
  }
  return engine.loadFile(options.modulePath, co);
}

}  // namespace

int runCommand(const RunOptions& options, std::istream& in, std::ostream& out, std::ostream& err) {
  for (const auto& kv : options.env) {
    if (kv.find('=') == std::string::npos || kv.front() == '=') {
      return reportFailure(err, Error(ErrorCode::kInvalidArgument,
                             fmt::format("--env expects KEY=VALUE, got \"{}\"", kv)));
    }
  }
  if (options.memoryMb == 0 || options.memoryMb > 4096) {
    return reportFailure(err, Error(ErrorCode::kInvalidArgument, "--memory-mb must be 1..4096"));
  }
  if (options.repeat == 0) {
    return reportFailure(err, Error(ErrorCode::kInvalidArgument, "--repeat must be at least 1"));
  }

  std::string input;
  if (!options.inputPath.empty()) {
    std::ifstream f(options.inputPath, std::ios::binary);
    if (!f) {
      return reportFailure(err, Error(ErrorCode::kIo, "cannot read input file " + options.inputPath));
    }
    input.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  } else {
    input.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }

  wasm::EngineConfig config;
  config.compiler.cacheDir =
      options.cacheDir.empty() ? wasm::defaultCacheDir() : std::filesystem::path(options.cacheDir);
  wasm::Engine engine(config);
  auto module = load(engine, options);
  if (!module.ok()) return reportFailure(err, module.error());

  wasm::InvocationRequest request;
  request.input = input;
  request.args.push_back(std::filesystem::path(options.modulePath).stem().string());
  request.args.insert(request.args.end(), options.args.begin(), options.args.end());
  request.env = Environment(options.env);
  request.timeout = std::chrono::milliseconds(options.timeoutMs);
  request.limits.memoryPages = options.memoryMb * 16;

  std::vector<int64_t> durations;
  durations.reserve(options.repeat);
  wasm::InvocationResult first;
  for (uint32_t i = 0; i < options.repeat; ++i) {
    auto start = std::chrono::steady_clock::now();
    wasm::InvocationResult r = engine.invoke(*module, request);
    durations.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(
                            std::chrono::steady_clock::now() - start)
                            .count());
    if (i == 0) {
      first = std::move(r);
    } else if (r.outcome != first.outcome) {
      // Every repetition is the same invocation; say so if one behaves differently.
      err << "tern: repetition " << i + 1 << " ended " << wasm::outcomeName(r.outcome)
          << " where the first ended " << wasm::outcomeName(first.outcome) << "\n";
    }
  }

  out << first.stdoutData;
  out.flush();
  err << first.stderrData;
  if (first.stderrDropped) {
    err << fmt::format("tern: [{} bytes of stderr dropped at the {}-byte limit]\n",
                       first.stderrDropped, request.limits.stderrBytes);
  }
  if (options.repeat > 1) {
    err << fmt::format("tern: {} fresh sandboxes: median {} us, p99 {} us, max {} us\n",
                       options.repeat, percentileUs(durations, 0.5), percentileUs(durations, 0.99),
                       percentileUs(durations, 1.0));
  }
  if (auto e = first.error()) return reportFailure(err, *e);
  return first.exitCode;
}

}  // namespace tern::cli
