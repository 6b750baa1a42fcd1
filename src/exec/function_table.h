#pragma once
// The functions this node serves, by name: the active version's compiled module and
// settings, admission state, invocation records and logs, and metric handles. An entry
// lives as long as the function exists; a redeploy or rollback swaps its active version
// atomically, so invocations already running finish on the version they started with.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "exec/capabilities.h"
#include "exec/executor.h"
#include "exec/function_series.h"
#include "util/environment.h"
#include "util/metrics.h"
#include "wasm/engine.h"
#include "util/thread_annotations.h"

namespace tern::exec {

// What an invocation of a function version needs; immutable.
struct FunctionVersionConfig {
  std::string name;
  uint32_t version = 0;
  std::string moduleHash;
  uint32_t memoryMb = 128;
  uint32_t timeoutMs = 10000;
  uint32_t concurrency = 0;
  std::vector<std::string> env;
  std::vector<std::string> triggers;  // as in store::FunctionSettings
  std::string replyTopic;
  std::vector<std::string> allow;     // host API capabilities, as granted at deploy
  double sloMs = 0;                   // objective, as in store::FunctionSettings
  double sloPercentile = 0;
  double weight = 1;
};

// The sandbox limits every invocation of a function version runs under. Deploys check a
// module against them (wasm::checkInstantiable), so one that could never start is refused.
wasm::SandboxLimits sandboxLimits(const FunctionVersionConfig& config);

// What every invocation of a function version has in its environment, after the caller's
// variables: the version's own (config.env), then TERN_FUNCTION_VERSION.
Environment versionEnvironment(const FunctionVersionConfig& config);

struct ActiveVersion {
  FunctionVersionConfig config;
  std::shared_ptr<const wasm::CompiledModule> module;  // module->tier(): the tier served
  Capabilities capabilities;  // parsed from config.allow
  Environment env;            // versionEnvironment(config), joined once
  // Why the function is served at the tier it is when that is not what its setting asks
  // for (no baseline compiler, a compile that failed), or that the optimized object is
  // being built; "" otherwise. Shown by `tern info` (docs/design/tiers.md).
  std::string tierNote;
};

struct InvocationRecord {
  std::string id;
  uint32_t version = 0;
  int64_t startMs = 0;      // Unix time
  int64_t durationUs = 0;
  int64_t queueWaitUs = 0;
  std::string outcome;      // ok, exited, trap, timeout, ...
  int exitCode = 0;
  std::string detail;
};

struct LogLine {
  uint64_t seq = 0;         // increasing per function
  int64_t timeMs = 0;
  std::string invocationId;
  uint32_t version = 0;
  std::string text;
};

// Bounded rings of a function's recent invocation records and stderr lines, its time
// series (function_series.h), and the live feeds that follow it (GET /v1/events).
class FunctionLog {
 public:
  // What a live feed receives for each invocation: its record and its stderr lines. Called
  // on the invoking thread, outside the log's lock; it must not block (a WebSocket feed
  // queues the message, and is cut when its client does not keep up).
  using Listener = std::function<void(const InvocationRecord&, const std::vector<LogLine>&)>;
  // A live feed; it stops when the subscription is destroyed.
  class Subscription {
   public:
    ~Subscription();
    Subscription(const Subscription&) = delete;
    Subscription& operator=(const Subscription&) = delete;

   private:
    friend class FunctionLog;
    Subscription(const FunctionLog* log, uint64_t id) : log_(log), id_(id) {}
    const FunctionLog* log_;
    uint64_t id_;
  };

  FunctionLog(size_t maxRecords, size_t maxLines);
  // Copies the record into the ring: a slot's strings keep their memory from the record it
  // held before, so a steady stream of invocations allocates nothing here.
  void add(const InvocationRecord& record, const std::string& stderrText);
  std::vector<InvocationRecord> records() const;
  // Lines with seq > after (at most `limit`), waiting up to `wait` for the first one.
  std::vector<LogLine> lines(uint64_t after, size_t limit, std::chrono::milliseconds wait) const;
  // The function's time series up to `nowMs` (Unix ms), oldest bucket first.
  std::vector<SeriesPoint> series(int64_t nowMs) const;
  // Calls `listener` for every invocation recorded from now on, until the subscription
  // (which must not outlive the log) is destroyed.
  std::unique_ptr<Subscription> subscribe(Listener listener) const;
  // Wakes waiters (the function is being removed or the node stops).
  void close();

 private:
  void unsubscribe(uint64_t id) const;

  const size_t maxRecords_, maxLines_;
  mutable Mutex mu_;
  mutable std::condition_variable grew_;
  // At most maxRecords_; once full, records_[recordsStart_] is the oldest.
  std::vector<InvocationRecord> records_ TERN_GUARDED_BY(mu_);
  size_t recordsStart_ TERN_GUARDED_BY(mu_) = 0;
  std::deque<LogLine> lines_ TERN_GUARDED_BY(mu_);
  FunctionSeries series_ TERN_GUARDED_BY(mu_);
  uint64_t nextSeq_ TERN_GUARDED_BY(mu_) = 1;
  bool closed_ TERN_GUARDED_BY(mu_) = false;
  mutable uint64_t nextListener_ TERN_GUARDED_BY(mu_) = 1;
  mutable std::map<uint64_t, std::shared_ptr<const Listener>> listeners_ TERN_GUARDED_BY(mu_);
};

struct FunctionEntry {
  explicit FunctionEntry(std::string name);
  const std::string name;
  AdmissionState admission;  // guarded by the Executor
  FunctionLog log{256, 2048};

  std::shared_ptr<const ActiveVersion> active() const;
  void setActive(std::shared_ptr<const ActiveVersion> v);
  // Swaps `to` in for the active version's module, with `note` as its tierNote, if the
  // active version still runs `from`: invocations in flight keep the version (and object)
  // they started with. False when the function has moved on (a deploy, rollback or
  // removal since), and nothing changes.
  bool replaceModule(const std::shared_ptr<const wasm::CompiledModule>& from,
                     std::shared_ptr<const wasm::CompiledModule> to, std::string note);

  // Whether invocations run on the serving thread that received them: only for functions
  // whose recent invocations were short (an exponentially weighted mean under
  // kInlineBelowNs). Everything else, including a function's first invocations, runs on the
  // worker pool, so a slow function never holds a serving thread.
  static constexpr int64_t kInlineBelowNs = 1'000'000;
  bool runsInline() const {
    int64_t d = recentDurationNs_.load(std::memory_order_relaxed);
    return d >= 0 && d < kInlineBelowNs;
  }
  void recordDuration(int64_t ns) {
    int64_t d = recentDurationNs_.load(std::memory_order_relaxed);
    recentDurationNs_.store(d < 0 ? ns : (d * 7 + ns) / 8, std::memory_order_relaxed);
  }

  // Metric handles (owned by the MetricsRegistry).
  Histogram* duration = nullptr;
  Histogram* queueWait = nullptr;
  Gauge* inFlight = nullptr;
  // Invocation counts indexed by wasm::Outcome, then one for requests refused at admission.
  static constexpr int kRejected = 8;
  Counter* outcomes[kRejected + 1] = {};

 private:
  mutable Mutex mu_;
  std::shared_ptr<const ActiveVersion> active_ TERN_GUARDED_BY(mu_);
  std::atomic<int64_t> recentDurationNs_{-1};
};

class FunctionTable {
 public:
  explicit FunctionTable(MetricsRegistry& metrics);
  std::shared_ptr<FunctionEntry> find(const std::string& name) const;
  // Installs `version` as the active version of its function, creating the entry.
  std::shared_ptr<FunctionEntry> install(std::shared_ptr<const ActiveVersion> version);
  void remove(const std::string& name);
  std::vector<std::shared_ptr<FunctionEntry>> all() const;

  // Called after every install (with the new active version) and removal (with null), on
  // the thread that made the change, outside the table's lock. Changes to one function are
  // serialised by their callers (store::Deployments), so its calls arrive in order.
  using Observer = std::function<void(const std::string& name, const ActiveVersion* active)>;
  void setObserver(Observer observer);

 private:
  std::shared_ptr<FunctionEntry> installLocked(const std::shared_ptr<const ActiveVersion>& version)
      TERN_REQUIRES(mu_);

  MetricsRegistry& metrics_;
  mutable Mutex mu_;
  std::shared_ptr<const Observer> observer_ TERN_GUARDED_BY(mu_);
  std::map<std::string, std::shared_ptr<FunctionEntry>> entries_ TERN_GUARDED_BY(mu_);
};

}  // namespace tern::exec
