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

void TierUp::onStaleObject(std::function<void()> collect) {
  MutexLock lock(mu_);
  onStale_ = std::move(collect);
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
  // A function that no longer serves the baseline object (removed, or another object
  // deployed while the job waited) would not take the optimized one: no compile.
  auto current = table_.find(job.function);
  auto active = current ? current->active() : nullptr;
  if (!active || active->module != job.baseline) {
    MutexLock lock(mu_);
    ++stats_.dropped;
    return;
  }
  // The compile runs without the lock: it takes seconds, in the compile sandbox.
  enum class Outcome { kSwapped, kFailed, kStale } outcome;
  {
    auto optimized = engine_.load(job.wasm, job.options);
    auto fn = table_.find(job.function);
    if (!optimized.ok()) {
      // The function keeps its baseline object; the note says why.
      if (fn) {
        (void)fn->replaceModule(
            job.baseline, job.baseline,
            fmt::format("the optimized compile failed, so this function stays at the "
                        "baseline tier: {}",
                        optimized.error().describe()));
      }
      outcome = Outcome::kFailed;
    } else if (fn && fn->replaceModule(job.baseline, *optimized, "")) {
      outcome = Outcome::kSwapped;
    } else {
      outcome = Outcome::kStale;
    }
  }
  if (outcome == Outcome::kStale) {
    // Built for a function that moved on during the compile: collected now, before the
    // count that waiting on it observes, not at the node's next start. The object stays
    // if a recorded version still uses its module.
    std::function<void()> collect;
    {
      MutexLock lock(mu_);
      collect = onStale_;
    }
    if (collect) collect();
  }
  MutexLock lock(mu_);
  switch (outcome) {
    case Outcome::kSwapped: ++stats_.swaps; break;
    case Outcome::kFailed: ++stats_.failures; break;
    case Outcome::kStale: ++stats_.stale; break;
  }
}

}  // namespace tern::store
