#pragma once
// Tiered compilation (docs/design/tiers.md): which compiler builds a function's object
// first, and the background service that builds the optimized object of a function served
// at the baseline tier and swaps it in.
//
// The swap replaces the function's active version by a copy that differs only in its
// module, and only while the active version still runs the baseline object the job was
// made for (FunctionEntry::replaceModule), so a deploy, rollback or removal made meanwhile
// always wins. Invocations hold the ActiveVersion they started with, and with it the
// object: those in flight finish on the baseline code, later ones take the optimized code.

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "exec/function_table.h"
#include "store/compile_tier.h"
#include "util/error.h"
#include "util/thread_annotations.h"
#include "wasm/engine.h"

namespace tern::store {

// What is known when a module is loaded.
struct TierView {
  bool optimizedCached = false;     // the optimized object is compiled (disk or memory)
  bool baselineAvailable = false;   // the baseline compiler is installed
  bool backgroundAvailable = false; // a TierUp service runs on this node
};

// What to compile first and whether to build the optimized object in the background.
struct TierPlan {
  wasm::Tier first = wasm::Tier::kOptimized;
  bool optimizeLater = false;
  bool operator==(const TierPlan&) const = default;
};

// The tier policy (pure): an optimized object already built is always used; auto without a
// baseline compiler or a background service compiles optimized at once; a baseline setting
// without a baseline compiler falls back to optimized.
TierPlan planTiers(CompileTier setting, const TierView& view);

// Builds optimized objects in the background, one at a time, and swaps each into the
// function it was made for.
class TierUp {
 public:
  TierUp(wasm::Engine& engine, exec::FunctionTable& table);
  ~TierUp();
  TierUp(const TierUp&) = delete;
  TierUp& operator=(const TierUp&) = delete;

  void start();
  // Refuses new jobs, drops queued ones and waits for the compile in progress (its object
  // is cached, so the next start serves it at once). A function left at the baseline tier
  // is optimized again after the next start.
  void stop() TERN_EXCLUDES(mu_);

  struct Job {
    std::string function;
    std::vector<uint8_t> wasm;
    wasm::CompileOptions options;  // options.tier is set to optimized
    std::shared_ptr<const wasm::CompiledModule> baseline;  // what the function serves now
  };
  // Queues a job; false once stopped.
  bool enqueue(Job job) TERN_EXCLUDES(mu_);

  // Called on the service's thread after it built an optimized object for a function that
  // had moved on during the compile (removed, or another object deployed): the object is
  // in the compile cache, and the removal's collection ran while the compile held its key,
  // so nothing else would collect it before the node's next start. Deployments sets this
  // to its garbage collection.
  void onStaleObject(std::function<void()> collect) TERN_EXCLUDES(mu_);

  struct Stats {
    uint64_t swaps = 0;     // optimized objects swapped in
    uint64_t failures = 0;  // optimized compiles that failed (the function stays baseline)
    uint64_t stale = 0;     // objects built for a function that had moved on meanwhile
    uint64_t dropped = 0;   // jobs not compiled: the function had moved on before
    size_t waiting = 0;     // jobs queued, not counting the one compiling
    bool compiling = false;
  };
  Stats stats() const TERN_EXCLUDES(mu_);

 private:
  void run() TERN_EXCLUDES(mu_);
  void process(const Job& job) TERN_EXCLUDES(mu_);

  wasm::Engine& engine_;
  exec::FunctionTable& table_;
  mutable Mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_ TERN_GUARDED_BY(mu_);
  bool stopping_ TERN_GUARDED_BY(mu_) = false;
  bool compiling_ TERN_GUARDED_BY(mu_) = false;
  std::function<void()> onStale_ TERN_GUARDED_BY(mu_);
  Stats stats_ TERN_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace tern::store
