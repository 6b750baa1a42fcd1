#include "util/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "util/process_stats.h"

namespace tern {
namespace {

TEST(MetricsTest, RendersSmallRegistryExactly) {
  MetricsRegistry reg;
  // Registered out of order: families and series must come out sorted.
  reg.histogram("tern_invocation_seconds", "Invocation latency.", {{"function", "resize"}},
                {0.1, 1})
      .observe(0.05);
  Histogram& h = reg.histogram("tern_invocation_seconds", "", {{"function", "echo"}});
  h.observe(0.1);  // on the bound: le is inclusive
  h.observe(0.5);
  h.observe(7);
  reg.gauge("tern_sandboxes_idle", "Idle sandboxes.").set(2.5);
  reg.counter("tern_invocations_total", "Invocations by outcome.",
              {{"outcome", "ok"}, {"function", "echo"}})
      .inc(3);
  reg.counter("tern_invocations_total", "", {{"function", "a\\b\"c\nd"}, {"outcome", "trap"}})
      .inc();

  EXPECT_EQ(reg.render(),
            "# HELP tern_invocation_seconds Invocation latency.\n"
            "# TYPE tern_invocation_seconds histogram\n"
            "tern_invocation_seconds_bucket{function=\"echo\",le=\"0.1\"} 1\n"
            "tern_invocation_seconds_bucket{function=\"echo\",le=\"1\"} 2\n"
            "tern_invocation_seconds_bucket{function=\"echo\",le=\"+Inf\"} 3\n"
            "tern_invocation_seconds_sum{function=\"echo\"} 7.6\n"
            "tern_invocation_seconds_count{function=\"echo\"} 3\n"
            "tern_invocation_seconds_bucket{function=\"resize\",le=\"0.1\"} 1\n"
            "tern_invocation_seconds_bucket{function=\"resize\",le=\"1\"} 1\n"
            "tern_invocation_seconds_bucket{function=\"resize\",le=\"+Inf\"} 1\n"
            "tern_invocation_seconds_sum{function=\"resize\"} 0.05\n"
            "tern_invocation_seconds_count{function=\"resize\"} 1\n"
            "# HELP tern_invocations_total Invocations by outcome.\n"
            "# TYPE tern_invocations_total counter\n"
            "tern_invocations_total{function=\"a\\\\b\\\"c\\nd\",outcome=\"trap\"} 1\n"
            "tern_invocations_total{function=\"echo\",outcome=\"ok\"} 3\n"
            "# HELP tern_sandboxes_idle Idle sandboxes.\n"
            "# TYPE tern_sandboxes_idle gauge\n"
            "tern_sandboxes_idle 2.5\n");
}

TEST(MetricsTest, EscapesHelpTextAndReplacesInvalidUtf8) {
  MetricsRegistry reg;
  reg.gauge("g", "back\\slash \"quoted\"\nsecond line").set(1);
  reg.counter("c", "", {{"name", std::string("ok\xC3\xA9 bad\xFF\xC3")}});
  EXPECT_EQ(reg.render(),
            "# TYPE c counter\n"
            "c{name=\"ok\xC3\xA9 bad\xEF\xBF\xBD\xEF\xBF\xBD\"} 0\n"
            "# HELP g back\\\\slash \"quoted\"\\nsecond line\n"
            "# TYPE g gauge\n"
            "g 1\n");
}

TEST(MetricsTest, LabelOrderDoesNotMatter) {
  MetricsRegistry reg;
  Counter& a = reg.counter("c", "", {{"x", "1"}, {"y", "2"}});
  Counter& b = reg.counter("c", "", {{"y", "2"}, {"x", "1"}});
  EXPECT_EQ(&a, &b);
  EXPECT_NE(&a, &reg.counter("c", "", {{"x", "1"}, {"y", "3"}}));
}

TEST(MetricsTest, GaugeValuesAndSpecialNumbers) {
  MetricsRegistry reg;
  Gauge& g = reg.gauge("g", "");
  g.set(1.5);
  g.add(-4);
  EXPECT_DOUBLE_EQ(g.value(), -2.5);
  EXPECT_NE(reg.render().find("g -2.5\n"), std::string::npos);
  g.set(std::numeric_limits<double>::infinity());
  EXPECT_NE(reg.render().find("g +Inf\n"), std::string::npos);
  g.set(-std::numeric_limits<double>::infinity());
  EXPECT_NE(reg.render().find("g -Inf\n"), std::string::npos);
  g.set(std::nan(""));
  EXPECT_NE(reg.render().find("g NaN\n"), std::string::npos);
}

// Bounds become `le` label values and must be spelled as the Go and Python clients spell them.
TEST(MetricsTest, NumbersAreSpelledLikeTheGoClient) {
  MetricsRegistry reg;
  Gauge& g = reg.gauge("g", "");
  const std::vector<std::pair<double, std::string>> cases = {
      {0, "0"},
      {-0.5, "-0.5"},
      {1e-5, "1e-05"},
      {2.5e-5, "2.5e-05"},
      {1e-4, "0.0001"},
      {0.00025, "0.00025"},
      {7.6, "7.6"},
      {100000, "100000"},
      {1e6, "1e+06"},
      {1234567, "1.234567e+06"},
      {-2e21, "-2e+21"},
      {0.1 + 0.2, "0.30000000000000004"},
  };
  for (const auto& [v, text] : cases) {
    g.set(v);
    EXPECT_EQ(reg.render(), "# TYPE g gauge\ng " + text + "\n") << v;
  }
}

TEST(MetricsTest, HistogramBucketsAreCumulative) {
  Histogram h({5, 1, 2, 2, std::numeric_limits<double>::infinity()});  // sorted, deduplicated
  for (double v : {0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 100.0}) h.observe(v);
  h.observe(std::nan(""));  // counted only in +Inf
  Histogram::Snapshot s = h.snapshot();
  EXPECT_EQ(s.bounds, (std::vector<double>{1, 2, 5}));
  EXPECT_EQ(s.cumulative, (std::vector<uint64_t>{2, 4, 6, 9}));
  EXPECT_EQ(s.count, 9u);
  EXPECT_TRUE(std::isnan(s.sum));

  Histogram empty({});
  empty.observe(3);
  Histogram::Snapshot e = empty.snapshot();
  EXPECT_EQ(e.cumulative, (std::vector<uint64_t>{1}));
  EXPECT_DOUBLE_EQ(e.sum, 3);
}

TEST(MetricsTest, LatencyBucketsSpanTenMicrosecondsToTenSeconds) {
  std::vector<double> b = latencyBuckets();
  ASSERT_GE(b.size(), 10u);
  EXPECT_DOUBLE_EQ(b.front(), 1e-5);
  EXPECT_DOUBLE_EQ(b.back(), 10);
  for (size_t i = 1; i < b.size(); ++i) {
    EXPECT_LT(b[i - 1], b[i]);
    EXPECT_LE(b[i] / b[i - 1], 2.5 + 1e-9);  // no decade without a bucket
  }
  MetricsRegistry reg;
  reg.histogram("h", "").observe(1e-3);
  EXPECT_NE(reg.render().find("h_bucket{le=\"1e-05\"} 0\n"), std::string::npos);
  EXPECT_NE(reg.render().find("h_bucket{le=\"0.0001\"} 0\n"), std::string::npos);
  EXPECT_NE(reg.render().find("h_bucket{le=\"0.001\"} 1\n"), std::string::npos);
}

TEST(MetricsTest, FamilyKeepsFirstBounds) {
  MetricsRegistry reg;
  reg.histogram("h", "", {{"f", "a"}}, {1, 2});
  Histogram& b = reg.histogram("h", "", {{"f", "b"}}, {10, 20, 30});
  EXPECT_EQ(b.snapshot().bounds, (std::vector<double>{1, 2}));
}

TEST(MetricsTest, ConcurrentUpdatesSumCorrectly) {
  MetricsRegistry reg;
  constexpr int kThreads = 4;
  constexpr int kPerThread = 100000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&reg] {
      // Every thread looks the series up itself: lookups race with each other and updates.
      Counter& c = reg.counter("c", "", {{"f", "x"}});
      Gauge& g = reg.gauge("g", "");
      Histogram& h = reg.histogram("h", "", {}, {0.25, 1});
      for (int i = 0; i < kPerThread; ++i) {
        c.inc();
        g.add(1);
        h.observe(0.5);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(reg.counter("c", "", {{"f", "x"}}).value(), uint64_t{kThreads} * kPerThread);
  EXPECT_EQ(reg.gauge("g", "").value(), double{kThreads} * kPerThread);
  Histogram::Snapshot s = reg.histogram("h", "").snapshot();
  EXPECT_EQ(s.cumulative, (std::vector<uint64_t>{0, 400000, 400000}));
  EXPECT_EQ(s.count, uint64_t{kThreads} * kPerThread);
  EXPECT_EQ(s.sum, 0.5 * kThreads * kPerThread);
}

TEST(MetricsTest, RemoveSeriesDropsMatchingSeriesEverywhere) {
  MetricsRegistry reg;
  Counter& gone = reg.counter("calls_total", "Calls.", {{"function", "old"}, {"outcome", "ok"}});
  Histogram& goneH = reg.histogram("latency_seconds", "Latency.", {{"function", "old"}}, {1});
  Gauge& goneOnly = reg.gauge("warm", "Warm sandboxes.", {{"function", "old"}});
  reg.counter("calls_total", "Calls.", {{"function", "kept"}, {"outcome", "ok"}}).inc(2);
  reg.counter("other_total", "", {{"owner", "old"}}).inc();  // same value, other key
  gone.inc(5);
  goneH.observe(0.5);

  reg.removeSeries("function", "old");
  std::string text = reg.render();
  EXPECT_EQ(text.find("\"old\"} 5"), std::string::npos);
  EXPECT_EQ(text.find("function=\"old\""), std::string::npos);
  EXPECT_EQ(text.find("latency_seconds"), std::string::npos);  // family left empty
  EXPECT_EQ(text.find("warm"), std::string::npos);
  EXPECT_NE(text.find("calls_total{function=\"kept\",outcome=\"ok\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("other_total{owner=\"old\"} 1\n"), std::string::npos);

  // Stale references stay usable (ASan runs would flag a use after free) and are not exported.
  gone.inc();
  goneH.observe(2);
  goneOnly.set(3);
  EXPECT_EQ(gone.value(), 6u);
  EXPECT_EQ(reg.render(), text);

  // The same labels again make a fresh series.
  Counter& fresh = reg.counter("calls_total", "Calls.", {{"function", "old"}, {"outcome", "ok"}});
  EXPECT_NE(&fresh, &gone);
  EXPECT_EQ(fresh.value(), 0u);
  EXPECT_NE(reg.render().find("calls_total{function=\"old\",outcome=\"ok\"} 0\n"),
            std::string::npos);
}

TEST(MetricsTest, MisuseYieldsDetachedMetricsInReleaseAndAssertsInDebug) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  MetricsRegistry reg;
  reg.counter("x", "A counter.").inc();
  const std::string before = reg.render();

  EXPECT_DEBUG_DEATH(reg.gauge("x", "Now a gauge.").set(5), "already registered");
  EXPECT_DEBUG_DEATH(reg.counter("bad-name", "").inc(), "invalid metric name");
  EXPECT_DEBUG_DEATH(reg.counter("y", "", {{"__reserved", "v"}}).inc(), "invalid label name");
  EXPECT_DEBUG_DEATH(reg.histogram("h", "", {{"le", "1"}}).observe(1), "invalid label name");
  EXPECT_DEBUG_DEATH(reg.counter("z", "", {{"a", "1"}, {"a", "2"}}).inc(), "given twice");
  // In release builds the calls above returned working metrics that are never rendered.
  EXPECT_EQ(reg.render(), before);
}

TEST(MetricsTest, ProcessStatsArePlausible) {
  ProcessStats s = readProcessStats();
  EXPECT_GT(s.residentBytes, 0u);
  EXPECT_GE(s.virtualBytes, s.residentBytes);
  EXPECT_GE(s.cpuSecondsUser, 0);
  EXPECT_GE(s.cpuSecondsSystem, 0);
  EXPECT_GE(s.openFds, 3u);  // stdin, stdout, stderr
  EXPECT_GE(s.threads, 1u);
  EXPECT_GE(s.uptimeSeconds, 0);
  EXPECT_GT(s.startTimeSeconds, 1.6e9);  // after 2020

  // Burning CPU and opening a descriptor show up in the next reading.
  volatile double x = 0;
  for (int i = 0; i < 20'000'000; ++i) x = x + 1;
  FILE* f = std::fopen("/proc/self/stat", "r");
  ASSERT_NE(f, nullptr);
  ProcessStats later = readProcessStats();
  std::fclose(f);
  EXPECT_GT(later.cpuSecondsUser + later.cpuSecondsSystem,
            s.cpuSecondsUser + s.cpuSecondsSystem);
  EXPECT_EQ(later.openFds, s.openFds + 1);
}

}  // namespace
}  // namespace tern
