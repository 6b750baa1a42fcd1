#include "suite.h"

#include <fmt/format.h>
#include <fmt/ostream.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <exception>
#include <fstream>
#include <iterator>
#include <map>
#include <ostream>

#include "util/subprocess.h"
#include "wasm/engine.h"

namespace tern::conformance {

namespace {

namespace fs = std::filesystem;

// A private temporary directory, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "tern-spec-XXXXXX").string();
    if (mkdtemp(pattern.data())) path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  bool ok() const { return !path_.empty(); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// Converts a .wast file with wast2json; returns the JSON file's path.
Result<fs::path> convert(const std::string& wast2json, const fs::path& wast, const fs::path& dir) {
  const fs::path json = dir / (wast.stem().string() + ".json");
  auto r = runSubprocess({wast2json, wast.string(), "-o", json.string()});
  if (!r.ok()) return r.error();
  if (r->exitStatus != 0) {
    return Error(ErrorCode::kInvalidArgument,
                 fmt::format("wast2json failed on {}: {}", wast.string(), r->output));
  }
  return json;
}

struct Totals {
  size_t filesRun = 0;
  size_t filesSkipped = 0;
  size_t filesFailed = 0;  // with failed commands, or not runnable at all
  size_t fileErrors = 0;   // not runnable: wast2json or the JSON failed
  size_t passed = 0;
  size_t failed = 0;
  size_t skipped = 0;
};

void printReport(std::ostream& out, const std::string& name, const ScriptReport& r,
                 size_t maxFailures) {
  fmt::print(out, "{}: {} passed, {} failed, {} skipped (compile {:.1f} s, run {:.1f} s)\n", name,
             r.passed, r.failed, r.skipped, r.compileSeconds, r.runSeconds);
  size_t shown = 0;
  std::map<std::string, size_t> skipReasons;
  for (const CommandResult& f : r.findings) {
    const Command& c = *f.command;
    const std::string what = fmt::format("{}:{} {}{}", name, c.line, commandKindName(c.kind),
                                         c.action ? " \"" + c.action->field + "\"" : std::string());
    switch (f.verdict) {
      case Verdict::kSkipped:
        ++skipReasons[fmt::format("{}: {}", commandKindName(c.kind), f.detail)];
        break;
      case Verdict::kPassed: fmt::print(out, "  NOTE {}: {}\n", what, f.detail); break;
      case Verdict::kFailed:
        if (shown++ < maxFailures) fmt::print(out, "  FAIL {}: {}\n", what, f.detail);
        break;
    }
  }
  if (shown > maxFailures) fmt::print(out, "  ... and {} more failures\n", shown - maxFailures);
  for (const auto& [reason, count] : skipReasons) {
    fmt::print(out, "  skipped {} x {}\n", count, reason);
  }
  for (int line : r.unmatchedSkips) {
    fmt::print(out, "  note: the skip-list entry {}:{} starts no command\n", name, line);
  }
}

}  // namespace

int runSuite(const SuiteOptions& options, std::ostream& out) {
  // Which files: named ones (relative to the spec directory unless they are paths that
  // exist), or all of the spec directory.
  std::vector<fs::path> files;
  bool needsSpecDir = options.files.empty();
  for (const std::string& f : options.files) {
    fs::path p(f);
    if (!fs::exists(p)) {
      p = options.specDir / f;
      needsSpecDir = true;
    }
    files.push_back(p);
  }
  if (needsSpecDir && (options.specDir.empty() || !fs::is_directory(options.specDir))) {
    fmt::print(out,
               "SKIPPED: the spec test directory \"{}\" does not exist; set TERN_SPEC_DIR or "
               "--spec-dir to the WebAssembly spec test suite\n",
               options.specDir.string());
    return kExitSkipped;
  }
  if (options.files.empty()) {
    for (const auto& entry : fs::directory_iterator(options.specDir)) {
      if (entry.path().extension() == ".wast") files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
  }

  SkipList skipList;
  if (!options.skipList.empty()) {
    auto list = SkipList::read(options.skipList);
    if (!list.ok()) {
      fmt::print(out, "error: {}\n", list.error().message());
      return kExitSetupError;
    }
    skipList = std::move(list).value();
  }

  std::ifstream spectestIn(options.spectestModule, std::ios::binary);
  if (!spectestIn) {
    fmt::print(out, "error: cannot read the spectest module {}\n", options.spectestModule.string());
    return kExitSetupError;
  }
  RunnerOptions runnerOptions;
  runnerOptions.spectestModule.assign(std::istreambuf_iterator<char>(spectestIn),
                                      std::istreambuf_iterator<char>());
  runnerOptions.compileJobs = options.compileJobs;
  runnerOptions.opt = options.opt;
  runnerOptions.tier = options.tier;

  wasm::EngineConfig config;
  config.compiler.cacheDir = options.cacheDir;
  // The script's modules compile in parallel (-j): as many compile slots as jobs.
  config.compiler.compileLimits.concurrency = std::max(options.compileJobs, 1u);
  wasm::Engine engine(config);
  ScriptRunner runner(engine, runnerOptions);

  TempDir temp;
  if (!temp.ok()) {
    fmt::print(out, "error: cannot create a temporary directory\n");
    return kExitSetupError;
  }

  const auto started = std::chrono::steady_clock::now();
  Totals totals;
  for (const fs::path& file : files) {
    const std::string name = file.filename().string();
    if (const std::string* reason = skipList.fileReason(name)) {
      fmt::print(out, "{}: SKIPPED: {}\n", name, *reason);
      ++totals.filesSkipped;
      continue;
    }
    ++totals.filesRun;
    const fs::path dir = temp.path() / file.stem();
    std::error_code ec;
    fs::create_directories(dir, ec);
    auto json = convert(options.wast2json, file, dir);
    if (!json.ok()) {
      fmt::print(out, "{}: FAILED: {}\n", name, json.error().message());
      ++totals.filesFailed;
      ++totals.fileErrors;
      continue;
    }
    Script script;
    try {
      script = readScript(*json);
    } catch (const std::exception& e) {
      fmt::print(out, "{}: FAILED: cannot read wast2json's output: {}\n", name, e.what());
      ++totals.filesFailed;
      ++totals.fileErrors;
      continue;
    }
    const ScriptReport report = runner.run(script, skipList.commandReasons(name));
    fs::remove_all(dir, ec);
    printReport(out, name, report, options.maxReportedFailures);
    out.flush();  // a crash in a later file keeps this one's report
    totals.passed += report.passed;
    totals.failed += report.failed;
    totals.skipped += report.skipped;
    if (report.failed) ++totals.filesFailed;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  const wasm::CompileStats stats = engine.compiler().stats();

  // When the whole directory runs, entries that name none of its files are stale.
  if (options.files.empty()) {
    for (const std::string& entry : skipList.fileNames()) {
      if (!fs::exists(options.specDir / entry)) {
        fmt::print(out, "note: skip-list entry {} matches no file\n", entry);
      }
    }
  }
  fmt::print(out,
             "total at {}: {} files run ({} failed), {} skipped; commands: {} passed, {} failed, "
             "{} skipped\n",
             options.tier == wasm::Tier::kBaseline ? "baseline"
             : options.opt == wasm::OptLevel::kO0  ? "-O0"
                                                   : "-O2", totals.filesRun,
             totals.filesFailed, totals.filesSkipped, totals.passed, totals.failed,
             totals.skipped);
  fmt::print(out,
             "time: {:.1f} s; modules compiled: {} ({:.1f} s of compile time), cache hits: {}\n",
             seconds, stats.compiles, stats.compileSeconds, stats.cacheHits);

  if (options.expectFailures) {
    // Self-test: the harness must have caught exactly the planted failures.
    if (totals.failed == *options.expectFailures && totals.fileErrors == 0) {
      fmt::print(out, "self-test: {} failures detected, as expected\n", totals.failed);
      return kExitPassed;
    }
    fmt::print(out, "self-test: expected {} failures, got {}\n", *options.expectFailures,
               totals.failed);
    return kExitFailed;
  }
  if (totals.filesRun == 0) return kExitSkipped;
  return totals.filesFailed ? kExitFailed : kExitPassed;
}

}  // namespace tern::conformance
