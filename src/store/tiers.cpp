#include "store/tiers.h"

#include <fmt/format.h>

namespace tern::store {

const char* compileTierName(CompileTier tier) {
  switch (tier) {
    case CompileTier::kAuto: return "auto";
    case CompileTier::kBaseline: return "baseline";
    case CompileTier::kOptimized: return "optimized";
  }
  return "auto";
}

Result<CompileTier> parseCompileTier(std::string_view name) {
  for (auto t : {CompileTier::kAuto, CompileTier::kBaseline, CompileTier::kOptimized}) {
    if (name == compileTierName(t)) return t;
  }
  return Error(ErrorCode::kInvalidArgument,
               fmt::format("compile tier must be auto, baseline or optimized, got \"{}\"", name));
}

TierPlan planTiers(CompileTier setting, const TierView& view) {
  switch (setting) {
    case CompileTier::kOptimized:
      return {wasm::Tier::kOptimized, false};
    case CompileTier::kBaseline:
      return {view.baselineAvailable ? wasm::Tier::kBaseline : wasm::Tier::kOptimized, false};
    case CompileTier::kAuto:
      if (view.optimizedCached || !view.baselineAvailable || !view.backgroundAvailable) {
        return {wasm::Tier::kOptimized, false};
      }
      return {wasm::Tier::kBaseline, true};
  }
  return {wasm::Tier::kOptimized, false};
}

TierUp::TierUp(wasm::Engine& engine, exec::FunctionTable& table)
    : engine_(engine), table_(table) {}

TierUp::~TierUp() { stop(); }

void TierUp::start() {
  {
    MutexLock lock(mu_);
    stopping_ = false;
  }
  if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
}

void TierUp::stop() {
  {
    MutexLock lock(mu_);
    stopping_ = true;
    queue_.clear();
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool TierUp::enqueue(Job job) {
  job.options.tier = wasm::Tier::kOptimized;
  {
    MutexLock lock(mu_);
    if (stopping_) return false;
    queue_.push_back(std::move(job));
  }
  cv_.notify_all();
  return true;
}

TierUp::Stats TierUp::stats() const {
  MutexLock lock(mu_);
  Stats s = stats_;
  s.waiting = queue_.size();
  s.compiling = compiling_;
  return s;
}

void TierUp::run() {
  for (;;) {
    Job job;
    {
      MutexLock lock(mu_);
      lock.wait(cv_, [this]() TERN_REQUIRES(mu_) { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      job = std::move(queue_.front());
      queue_.pop_front();
      compiling_ = true;
    }
    process(job);
    MutexLock lock(mu_);
    compiling_ = false;
  }
}

void TierUp::process(const Job& job) {
  // The compile runs without the lock: it takes seconds, in the compile sandbox.
  auto optimized = engine_.load(job.wasm, job.options);
  auto fn = table_.find(job.function);
  bool swapped = false;
  if (optimized.ok()) {
    swapped = fn && fn->replaceModule(job.baseline, *optimized, "");
  } else if (fn) {
    // The function keeps its baseline object; the note says why.
    swapped = fn->replaceModule(
        job.baseline, job.baseline,
        fmt::format("the optimized compile failed, so this function stays at the baseline "
                    "tier: {}",
                    optimized.error().describe()));
  }
  MutexLock lock(mu_);
  if (!optimized.ok()) {
    ++stats_.failures;
  } else if (swapped) {
    ++stats_.swaps;
  } else {
    ++stats_.stale;
  }
}

}  // namespace tern::store
