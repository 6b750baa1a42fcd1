#pragma once
// Metrics in the Prometheus text exposition format (version 0.0.4): counters, gauges and
// histograms with label sets, registered in a MetricsRegistry and rendered by /metrics.
// Updates are lock-free (atomics) on the hot path; creating a new label set takes a lock.
//
// Metric names and label names are chosen by tern's code, never by users; label values may
// come from users (function names) and are escaped when rendered. A registration that cannot
// be rendered correctly is a programming error (see MetricsRegistry): it asserts in debug
// builds and yields a detached metric in release builds.

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "util/thread_annotations.h"

namespace tern {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Counter {
 public:
  void inc(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

class Gauge {
 public:
  void set(double v);
  void add(double d);
  double value() const;

 private:
  std::atomic<double> value_{0};
};

class Histogram {
 public:
  // `upperBounds` ascending; +Inf is implicit. Bounds that are NaN or infinite are dropped and
  // the rest sorted and deduplicated, so every histogram renders valid buckets.
  explicit Histogram(std::vector<double> upperBounds);
  // Counts `v` in the first bucket whose bound is >= v (NaN counts only in +Inf).
  void observe(double v);
  struct Snapshot {
    std::vector<double> bounds;
    std::vector<uint64_t> cumulative;  // one per bound, then +Inf
    uint64_t count = 0;                // always equal to cumulative.back()
    double sum = 0;
  };
  // A snapshot taken while other threads observe is consistent in its counts (count equals the
  // +Inf bucket); `sum` may include or miss observations in flight.
  Snapshot snapshot() const;

 private:
  std::vector<double> bounds_;
  // Per-bucket (not cumulative) counts, bounds_.size() + 1 with +Inf last; the total count is
  // their sum, so observe() touches one counter and the sum.
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;
  std::atomic<double> sum_{0};
};

// Default latency buckets in seconds, from 10 µs to 10 s (1, 2.5, 5 per decade).
std::vector<double> latencyBuckets();

// A set of metric families, each a name, a help text, a type and its series (one per label
// set). Families render sorted by name and series sorted by their labels, which are kept
// sorted by label name.
//
// Programming errors (asserted in debug builds): a name that is not a valid Prometheus metric
// name, a label name that is invalid or reserved (`__*`, and `le` for histograms), a label
// name given twice, or a name already registered with another type. In release builds such a
// call returns a detached metric: it works, stays valid for the registry's lifetime, and is
// never rendered. For an existing family the first help text and (for histograms) the first
// bucket bounds win, so all series of a family share bounds.
class MetricsRegistry {
 public:
  MetricsRegistry();
  ~MetricsRegistry();
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // The metric family `name` with `help`, and within it the series for `labels`; created on
  // first use. The returned references stay valid for the registry's lifetime.
  Counter& counter(const std::string& name, const std::string& help, const Labels& labels = {});
  Gauge& gauge(const std::string& name, const std::string& help, const Labels& labels = {});
  Histogram& histogram(const std::string& name, const std::string& help, const Labels& labels = {},
                       const std::vector<double>& bounds = latencyBuckets());
  // Removes every series of every family that has label `key` = `value` (a deleted function).
  // Removed series are no longer rendered, but they are kept alive until the registry is
  // destroyed, so references that callers still hold stay safe to update (the updates are
  // simply not exported). Asking for the same labels again creates a fresh series at zero.
  // A removed series keeps its metric object (tens of bytes; a histogram 8 bytes per bucket)
  // until then.
  void removeSeries(const std::string& key, const std::string& value);

  // The whole registry in Prometheus text format; label values escaped.
  std::string render() const;

 private:
  enum class Type { kCounter, kGauge, kHistogram };
  struct Series;
  struct Family;
  // `bounds` matter only for histograms.
  static std::unique_ptr<Series> makeSeries(Type type, const std::vector<double>& bounds);
  // The series for `labels` in family `name`, created if missing; a detached series for a
  // programming error.
  Series& series(const std::string& name, const std::string& help, Type type,
                 const Labels& labels, const std::vector<double>& bounds) TERN_REQUIRES(mu_);
  // A new series that is never rendered.
  Series& detached(Type type, const std::vector<double>& bounds) TERN_REQUIRES(mu_);

  mutable Mutex mu_;
  std::map<std::string, std::unique_ptr<Family>> families_ TERN_GUARDED_BY(mu_);
  // Removed and detached series: alive until destruction so stale references stay harmless.
  std::vector<std::unique_ptr<Series>> retired_ TERN_GUARDED_BY(mu_);
};

}  // namespace tern
