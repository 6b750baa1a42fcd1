// The deadline scheduler inside the executor, driven by a manual clock: early refusal of
// requests that cannot meet their deadline, refusal of requests that waited too long,
// earliest-deadline-first dispatch, weighted fair shares under overload, re-planning, and
// the estimates it reports.

#include <gtest/gtest.h>

#include <map>
#include <queue>
#include <string>
#include <vector>

#include "exec/executor.h"

namespace tern::exec {
namespace {

constexpr int64_t kMs = 1'000'000;

struct Harness {
  int64_t t = 1'000'000 * kMs;
  Executor ex;
  explicit Harness(uint32_t slots, SchedulingPolicy policy = SchedulingPolicy::kDeadline,
                   uint32_t queue = 256)
      : ex(Executor::Options{slots, queue},
           Executor::Scheduling{policy, std::chrono::milliseconds(250), [this] { return t; }}) {}
  // One invocation that runs at once and takes `serviceMs`.
  void runOnce(AdmissionState& f, int64_t serviceMs) {
    int64_t arrival = t;
    ASSERT_EQ(ex.tryRunNow(f, arrival), Admission::kRunNow);
    t += serviceMs * kMs;
    ex.finish(f, arrival, serviceMs * kMs);
  }
};

void setObjective(AdmissionState& f, double sloMs, double percentile = 95, double weight = 1) {
  f.sloMs = sloMs;
  f.percentile = percentile;
  f.weight = weight;
}

TEST(SchedulerTest, RefusesOnArrivalWhatCannotMeetItsDeadline) {
  Harness h(1);
  AdmissionState f;
  setObjective(f, 10);
  h.runOnce(f, 4);  // the function takes 4 ms
  ASSERT_EQ(h.ex.tryRunNow(f, h.t), Admission::kRunNow);  // holds the only slot
  Refusal why = Refusal::kQueueFull;
  // Predicted completions: 0.5*4+4 = 6 ms, 1.5*4+4 = 10 ms (just in time), 14 ms (late).
  EXPECT_EQ(h.ex.admit(f, h.t, [] {}, {}, &why), Admission::kQueued);
  EXPECT_EQ(h.ex.admit(f, h.t, [] {}, {}, &why), Admission::kQueued);
  EXPECT_EQ(h.ex.admit(f, h.t, [] {}, {}, &why), Admission::kRejected);
  EXPECT_EQ(why, Refusal::kDeadline);
  auto r = h.ex.report(f);
  EXPECT_EQ(r.refusedTotal[static_cast<size_t>(Refusal::kDeadline)], 1u);
  EXPECT_EQ(r.queued, 2u);
}

TEST(SchedulerTest, RefusesWhatIsMoreLikelyLateThanNotWhenOverloaded) {
  // Service times of 2 and 6 ms (mean 4, sd about 2), objective 9 ms, one slot held. The
  // first waiting request finishes at 6 ms expected (about 10% likely late); the second at
  // 10 ms (about 60% likely late); the third at 14 ms (over 90%).
  for (bool flood : {false, true}) {
    SCOPED_TRACE(flood ? "overloaded" : "not overloaded");
    Harness h(1);
    AdmissionState f;
    setObjective(f, 9);
    for (int i = 0; i < 20; ++i) h.runOnce(f, i % 2 ? 6 : 2);
    ASSERT_EQ(h.ex.tryRunNow(f, h.t), Admission::kRunNow);
    if (flood) {
      // 600 arrivals at once: with 4 ms each, far more than the slot serves in the window.
      for (int i = 0; i < 600; ++i) h.ex.admit(f, h.t, [] {}, {});
    }
    // Whatever was admitted runs (or expires); the slot frees up.
    while (h.ex.report(f).running > 0) {
      h.t += 4 * kMs;
      h.ex.finish(f, h.t, 4 * kMs);
    }
    ASSERT_EQ(h.ex.report(f).running, 0u);
    ASSERT_EQ(h.ex.report(f).queued, 0u);
    h.t += 250 * kMs;  // a control period: the next arrival re-plans
    ASSERT_EQ(h.ex.tryRunNow(f, h.t), Admission::kRunNow);
    EXPECT_EQ(h.ex.admit(f, h.t, [] {}, {}), Admission::kQueued);
    Refusal why = Refusal::kQueueFull;
    EXPECT_EQ(h.ex.admit(f, h.t, [] {}, {}, &why),
              flood ? Admission::kRejected : Admission::kQueued);
    if (flood) {
      EXPECT_EQ(why, Refusal::kDeadline);
    }
    EXPECT_EQ(h.ex.admit(f, h.t, [] {}, {}), Admission::kRejected);
  }
}

TEST(SchedulerTest, OverItsShareWithTheOthersIdleTheWholeSlotCounts) {
  // One slot shared by two functions (0.5 each); `busy` has used 60% of it, more than its
  // half, while `idle` has nothing waiting, so the slot drains busy's queue alone and a request
  // is refused only when its own queue makes it late: 0.5 ms (the running one's rest)
  // + q ms ahead + 1 ms of its own must fit in 25 ms, so q <= 23.
  Harness h(1);
  AdmissionState busy, idle;
  setObjective(busy, 25);
  setObjective(idle, 100);
  h.runOnce(idle, 4);
  for (int i = 0; i < 300; ++i) {
    h.runOnce(busy, 1);
    h.t += 2 * kMs / 3;
  }
  EXPECT_EQ(h.ex.report(busy).allocatedSlots, 0.5);
  ASSERT_EQ(h.ex.tryRunNow(busy, h.t), Admission::kRunNow);
  Refusal why = Refusal::kQueueFull;
  int queued = 0;
  while (h.ex.admit(busy, h.t, [] {}, {}, &why) == Admission::kQueued) ++queued;
  EXPECT_EQ(queued, 24);
  EXPECT_EQ(why, Refusal::kDeadline);
}

TEST(SchedulerTest, OverItsShareItsRequestsWaitBehindAFunctionWithinItsShare) {
  // As above, but the other function has 4 requests (16 ms) waiting: they dispatch first,
  // so busy's fit only while 0.5 + 16 + q + 1 <= 25, q <= 7.
  Harness h(1);
  AdmissionState busy, other;
  setObjective(busy, 25);
  setObjective(other, 100);
  h.runOnce(other, 4);
  for (int i = 0; i < 300; ++i) {
    h.runOnce(busy, 1);
    h.t += 2 * kMs / 3;
  }
  ASSERT_EQ(h.ex.tryRunNow(busy, h.t), Admission::kRunNow);
  for (int i = 0; i < 4; ++i) ASSERT_EQ(h.ex.admit(other, h.t, [] {}, {}), Admission::kQueued);
  int queued = 0;
  while (h.ex.admit(busy, h.t, [] {}, {}) == Admission::kQueued) ++queued;
  EXPECT_EQ(queued, 8);
}

TEST(SchedulerTest, FifoRunsLateInsteadOfRefusing) {
  Harness h(1, SchedulingPolicy::kFifo);
  AdmissionState f;
  setObjective(f, 10);
  h.runOnce(f, 4);
  ASSERT_EQ(h.ex.tryRunNow(f, h.t), Admission::kRunNow);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(h.ex.admit(f, h.t, [] {}, {}), Admission::kQueued);
}

TEST(SchedulerTest, RefusesAWaiterThatCanNoLongerFinishInTime) {
  Harness h(1);
  AdmissionState f;
  setObjective(f, 10);
  h.runOnce(f, 4);
  int64_t arrival = h.t;
  ASSERT_EQ(h.ex.tryRunNow(f, arrival), Admission::kRunNow);
  int started = 0;
  std::vector<Refusal> refused;
  ASSERT_EQ(h.ex.admit(f, h.t, [&] { ++started; }, [&](Refusal r) { refused.push_back(r); }),
            Admission::kQueued);
  h.t += 8 * kMs;  // the running invocation overran: 2 ms left before the waiter's deadline
  h.ex.finish(f, arrival, 8 * kMs);
  EXPECT_EQ(started, 0);
  EXPECT_EQ(refused, std::vector<Refusal>{Refusal::kExpired});
  EXPECT_EQ(h.ex.stats().queued, 0u);
  EXPECT_EQ(h.ex.stats().running, 0u);
  EXPECT_EQ(h.ex.report(f).refusedTotal[static_cast<size_t>(Refusal::kExpired)], 1u);
}

TEST(SchedulerTest, WhenOverloadedAWaiterStartsOnlyIfItWillAlmostSurelyFinishInTime) {
  // Service times of 2 and 6 ms (10th percentile 2, 95th 6), objective 20 ms. Two requests
  // wait while the running one overruns to 16 ms, leaving each 4 ms: enough for the quick
  // end of the service times, not for the slow end. Overloaded, the first is refused since
  // the second can use the slot; the second, with nobody behind it, still runs. Not
  // overloaded, both run.
  for (bool flood : {false, true}) {
    SCOPED_TRACE(flood ? "overloaded" : "not overloaded");
    Harness h(1);
    AdmissionState f;
    setObjective(f, 20);
    for (int i = 0; i < 20; ++i) h.runOnce(f, i % 2 ? 6 : 2);
    if (flood) {
      ASSERT_EQ(h.ex.tryRunNow(f, h.t), Admission::kRunNow);
      for (int i = 0; i < 600; ++i) h.ex.admit(f, h.t, [] {}, {});
      while (h.ex.report(f).running > 0) {
        h.t += 2 * kMs;
        h.ex.finish(f, h.t, 2 * kMs);
      }
    }
    h.t += 250 * kMs;  // a control period: the next arrival re-plans
    int64_t arrival = h.t;
    ASSERT_EQ(h.ex.tryRunNow(f, arrival), Admission::kRunNow);
    int started = 0, refused = 0;
    for (int i = 0; i < 2; ++i) {
      ASSERT_EQ(h.ex.admit(f, h.t, [&] { ++started; }, [&](Refusal) { ++refused; }),
                Admission::kQueued);
    }
    h.t += 16 * kMs;
    h.ex.finish(f, arrival, 16 * kMs);
    EXPECT_EQ(started, 1);
    EXPECT_EQ(refused, flood ? 1 : 0);
    if (!flood) {
      h.t += 2 * kMs;
      h.ex.finish(f, h.t, 2 * kMs);
      EXPECT_EQ(started, 2);
    }
  }
}

TEST(SchedulerTest, CountsTheSlotTimeEachFunctionHeld) {
  Harness h(2);
  AdmissionState a, b;
  for (int i = 0; i < 3; ++i) h.runOnce(a, 4);
  EXPECT_DOUBLE_EQ(h.ex.report(a).slotSeconds, 0.012);
  EXPECT_DOUBLE_EQ(h.ex.report(b).slotSeconds, 0);
  // Held from the slot's grant to its release, including a queued request's.
  ASSERT_EQ(h.ex.tryRunNow(a, h.t), Admission::kRunNow);
  ASSERT_EQ(h.ex.tryRunNow(a, h.t), Admission::kRunNow);
  int started = 0;
  ASSERT_EQ(h.ex.admit(b, h.t, [&] { ++started; }, {}), Admission::kQueued);
  h.t += 2 * kMs;
  EXPECT_DOUBLE_EQ(h.ex.report(a).slotSeconds, 0.016);  // two slots for 2 ms, while running
  h.ex.finish(a, h.t - 2 * kMs, 2 * kMs);
  EXPECT_EQ(started, 1);
  h.t += 5 * kMs;
  h.ex.finish(a, h.t - 7 * kMs, 7 * kMs);
  h.ex.finish(b, h.t - 7 * kMs, 5 * kMs);
  EXPECT_DOUBLE_EQ(h.ex.report(a).slotSeconds, 0.012 + 0.002 + 0.007);
  EXPECT_DOUBLE_EQ(h.ex.report(b).slotSeconds, 0.005);
}

TEST(SchedulerTest, EarliestDeadlineFirstAcrossFunctions) {
  for (auto policy : {SchedulingPolicy::kDeadline, SchedulingPolicy::kFifo}) {
    Harness h(1, policy);
    AdmissionState loose, tight;
    setObjective(loose, 500);
    setObjective(tight, 20);
    h.runOnce(loose, 2);
    h.runOnce(tight, 2);
    h.t += 1000 * kMs;  // both idle long enough to be within their shares
    h.runOnce(loose, 2);
    h.runOnce(tight, 2);
    int64_t arrival = h.t;
    ASSERT_EQ(h.ex.tryRunNow(loose, arrival), Admission::kRunNow);
    std::vector<std::string> order;
    ASSERT_EQ(h.ex.admit(loose, h.t, [&] { order.push_back("loose"); }, {}), Admission::kQueued);
    h.t += kMs;
    ASSERT_EQ(h.ex.admit(tight, h.t, [&] { order.push_back("tight"); }, {}), Admission::kQueued);
    h.t += kMs;
    h.ex.finish(loose, arrival, 2 * kMs);
    // The tight request arrived later but its deadline is earlier.
    EXPECT_EQ(order, std::vector<std::string>{policy == SchedulingPolicy::kDeadline ? "tight"
                                                                                      : "loose"});
  }
}

// A saturated node: both functions always have requests waiting. Returns the share of
// slot time `a` got.
double saturatedShare(double weightA, double weightB, SchedulingPolicy policy) {
  Harness h(2, policy, 10000);
  AdmissionState a, b;
  setObjective(a, 1000, 95, weightA);
  setObjective(b, 1000, 95, weightB);
  const int64_t serviceA = 1 * kMs, serviceB = 4 * kMs;
  struct Job {
    int64_t end;
    AdmissionState* fn;
    int64_t arrival, service;
    bool operator>(const Job& o) const { return end > o.end; }
  };
  std::priority_queue<Job, std::vector<Job>, std::greater<>> running;
  std::map<AdmissionState*, int64_t> slotTime;
  std::function<void(AdmissionState&, int64_t)> submit = [&](AdmissionState& f, int64_t service) {
    int64_t arrival = h.t;
    auto start = [&, arrival, service, fp = &f] {
      running.push({h.t + service, fp, arrival, service});
      slotTime[fp] += service;
    };
    Admission adm = h.ex.tryRunNow(f, arrival);
    if (adm == Admission::kQueued) adm = h.ex.admit(f, arrival, start, {});
    if (adm == Admission::kRunNow) start();
  };
  // Keep 20 requests of each waiting; offered load far above two slots. Arrivals are
  // spread like the work: A arrives four times as often (its jobs are four times shorter).
  for (int i = 0; i < 20; ++i) {
    submit(a, serviceA);
    submit(b, serviceB);
  }
  int64_t begin = h.t;
  int64_t measureFrom = begin + 3000 * kMs;  // after the plan has settled
  std::map<AdmissionState*, int64_t> before;
  while (h.t < begin + 8000 * kMs) {
    Job j = running.top();
    running.pop();
    h.t = j.end;
    if (before.empty() && h.t >= measureFrom) before = slotTime;
    h.ex.finish(*j.fn, j.arrival, j.service);
    submit(*j.fn, j.service);  // replace what finished with a new request of the same kind
  }
  double ta = double(slotTime[&a] - before[&a]), tb = double(slotTime[&b] - before[&b]);
  return ta / (ta + tb);
}

TEST(SchedulerTest, OverloadGivesWeightedFairShares) {
  EXPECT_NEAR(saturatedShare(1, 1, SchedulingPolicy::kDeadline), 0.5, 0.08);
  EXPECT_NEAR(saturatedShare(3, 1, SchedulingPolicy::kDeadline), 0.75, 0.08);
  EXPECT_NEAR(saturatedShare(1, 3, SchedulingPolicy::kDeadline), 0.25, 0.08);
  // FIFO serves requests in arrival order: the function with longer requests takes four
  // fifths of the slot time whatever the weights.
  EXPECT_NEAR(saturatedShare(3, 1, SchedulingPolicy::kFifo), 0.2, 0.05);
}

TEST(SchedulerTest, ReportsEstimatesTargetsAndAllocations) {
  Harness h(4);
  AdmissionState f;
  setObjective(f, 150, 95);
  // 40 requests per second of 100 ms for two seconds (back to back on 4 slots).
  for (int i = 0; i < 80; ++i) {
    int64_t arrival = h.t;
    ASSERT_EQ(h.ex.tryRunNow(f, arrival), Admission::kRunNow);
    h.ex.finish(f, arrival - 100 * kMs, 100 * kMs);
    h.t += 25 * kMs;
  }
  auto r = h.ex.report(f);
  EXPECT_NEAR(r.window.ratePerSecond, 40, 2);
  EXPECT_NEAR(r.service.meanNs, 100e6, 1);
  EXPECT_NEAR(r.service.p95Ns, 100e6, 1);
  EXPECT_EQ(r.targetSlots, 7);      // the capacity model's answer
  EXPECT_EQ(r.allocatedSlots, 4);   // all the node has
  EXPECT_DOUBLE_EQ(r.window.attainment(), 1.0);
  EXPECT_GT(h.ex.stats().replans, 0u);
}

TEST(SchedulerTest, SharpRiseReplansBeforeTheControlPeriod) {
  Harness h(1);
  AdmissionState f;
  setObjective(f, 1000);
  h.runOnce(f, 1);
  auto before = h.ex.stats().sharpReplans;
  int64_t arrival = h.t;
  ASSERT_EQ(h.ex.tryRunNow(f, arrival), Admission::kRunNow);
  for (int i = 0; i < 20; ++i) h.ex.admit(f, h.t, [] {}, {});  // a burst within 1 ms
  EXPECT_GT(h.ex.stats().sharpReplans, before);
}

TEST(SchedulerTest, AttainmentCountsLateAndRefusedRequests) {
  Harness h(1);
  AdmissionState f;
  setObjective(f, 10);
  h.runOnce(f, 4);   // within
  h.runOnce(f, 12);  // late
  auto r = h.ex.report(f);
  EXPECT_EQ(r.window.completions, 2u);
  EXPECT_EQ(r.window.withinObjective, 1u);
  EXPECT_DOUBLE_EQ(r.window.attainment(), 0.5);
}

}  // namespace
}  // namespace tern::exec
