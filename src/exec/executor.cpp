#include "exec/executor.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace tern::exec {

namespace {

// How much unused allocation a function may bank, in slot-time per allocated slot: enough
// for a short burst, small next to the objectives it protects.
constexpr double kCreditHorizonNs = 25e6;

// A rise of a function's arrivals over the last two buckets to more than twice (plus a few
// requests per second) the rate of the last plan re-plans at once, at most once a bucket.
constexpr size_t kSharpBuckets = 2;
constexpr double kSharpFactor = 2;
constexpr double kSharpSlackPerSecond = 5;

int64_t steadyNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

struct FunctionSchedule {
  struct Waiting {
    std::function<void()> start;
    std::function<void(Refusal)> refuse;
    int64_t arrivalNs = 0;
    int64_t deadlineNs = INT64_MAX;
    uint64_t sequence = 0;
  };
  std::deque<Waiting> queue;
  LoadWindow window;
  uint32_t running = 0;
  uint32_t limit = 0;
  // Copies of the deployed settings, refreshed at each arrival.
  std::optional<Objective> objective;
  double weight = 1;
  // From the last plan.
  double target = 0;
  double allocation = 0;
  bool unreachable = false;
  double plannedRate = 0;
  // The service time a waiting request must still have before its deadline to be started
  // while other requests wait behind it (the startQuantile of recent service times), and
  // when none does (the 1 - kRefusalConfidence quantile: the slot would otherwise idle).
  // With less left it is refused before it runs. Refreshed at each plan and at the first
  // completion.
  double startServiceNs = 0;
  double lastChanceServiceNs = 0;
  // Slot-nanoseconds the function may still use within its allocation (negative: over).
  double credit = 0;
  int64_t creditAtNs = INT64_MIN;
  bool known = false;
  std::array<uint64_t, kRefusalKinds> refusedTotal{};

  // Slot-nanoseconds held by the function's invocations (from dispatch to release), up to
  // creditAtNs.
  double heldNs = 0;

  void settleCredit(int64_t nowNs) {
    if (creditAtNs != INT64_MIN && nowNs > creditAtNs) {
      heldNs += static_cast<double>(running) * static_cast<double>(nowNs - creditAtNs);
      double cap = std::max(allocation, 1.0) * kCreditHorizonNs;
      credit += (allocation - running) * static_cast<double>(nowNs - creditAtNs);
      credit = std::clamp(credit, -cap, cap);
    }
    creditAtNs = std::max(creditAtNs, nowNs);
  }
  bool backlogged() const { return !queue.empty(); }
};

Error refusalError(Refusal reason, double sloMs) {
  switch (reason) {
    case Refusal::kQueueFull:
      break;
    case Refusal::kDeadline:
      return Error(ErrorCode::kSaturated,
                   fmt::format("refused on arrival (deadline): with the work queued ahead of "
                               "it the request cannot finish within its {:g} ms objective; "
                               "retry shortly",
                               sloMs));
    case Refusal::kExpired:
      return Error(ErrorCode::kSaturated,
                   fmt::format("refused before running (expired): the request waited until it "
                               "could no longer finish within its {:g} ms objective; retry "
                               "shortly",
                               sloMs));
  }
  return Error(ErrorCode::kSaturated, "the node is at capacity (queue_full); retry shortly");
}

AdmissionState::AdmissionState() : schedule(std::make_shared<FunctionSchedule>()) {}
AdmissionState::~AdmissionState() = default;

Executor::Executor(Options options) : options_(options) {}
Executor::Executor(Options options, Scheduling scheduling)
    : options_(options), scheduling_(std::move(scheduling)) {}
Executor::~Executor() = default;

int64_t Executor::now() const { return scheduling_.clock ? scheduling_.clock() : steadyNs(); }

bool Executor::canRun(const AdmissionState& fn) const {
  uint32_t limit = fn.limit.load(std::memory_order_relaxed);
  return running_ < options_.slots && (limit == 0 || fn.schedule->running < limit);
}

void Executor::noteArrivalLocked(AdmissionState& fn, int64_t nowNs) {
  FunctionSchedule& s = *fn.schedule;
  s.limit = fn.limit.load(std::memory_order_relaxed);
  double slo = fn.sloMs.load(std::memory_order_relaxed);
  double pct = fn.percentile.load(std::memory_order_relaxed);
  if (slo > 0) {
    s.objective = Objective{slo, pct > 0 ? std::optional<double>(pct) : std::nullopt};
  } else {
    s.objective.reset();
  }
  s.weight = fn.weight.load(std::memory_order_relaxed);
  if (!s.known) {
    // A function joining the plan starts with no credit or debt and gets an allocation
    // at once.
    s.known = true;
    s.credit = 0;
    s.creditAtNs = nowNs;
    known_.push_back(fn.schedule);
    joined_ = true;
  }
  s.window.arrival(nowNs);
}

Admission Executor::takeSlotLocked(AdmissionState& fn, int64_t nowNs) {
  if (stopping_) return Admission::kStopped;
  // Waiting requests go first: a newcomer may not overtake them.
  if (backlogged_.empty() && canRun(fn)) {
    fn.schedule->settleCredit(nowNs);
    ++running_;
    ++fn.schedule->running;
    return Admission::kRunNow;
  }
  return Admission::kQueued;
}

Admission Executor::tryRunNow(AdmissionState& fn, int64_t arrivalNs) {
  MutexLock lock(mu_);
  Admission a = takeSlotLocked(fn, arrivalNs);
  if (a == Admission::kRunNow) {
    noteArrivalLocked(fn, arrivalNs);
    maybeReplanLocked(arrivalNs);
  }
  return a;
}

Admission Executor::admit(AdmissionState& fn, int64_t arrivalNs, std::function<void()> start,
                          std::function<void(Refusal)> refuse, Refusal* why) {
  MutexLock lock(mu_);
  if (stopping_) return Admission::kStopped;
  FunctionSchedule& s = *fn.schedule;
  noteArrivalLocked(fn, arrivalNs);
  maybeReplanLocked(arrivalNs);
  if ((lastSharpPlanNs_ == INT64_MIN || arrivalNs - lastSharpPlanNs_ >= LoadWindow::kBucketNs) &&
      s.window.recentRate(arrivalNs, kSharpBuckets) >
          kSharpFactor * s.plannedRate + kSharpSlackPerSecond) {
    replanLocked(arrivalNs, /*sharp=*/true);
  }
  Admission now = takeSlotLocked(fn, arrivalNs);
  if (now != Admission::kQueued) return now;
  auto refuseNow = [&](Refusal r) TERN_REQUIRES(mu_) {
    ++rejected_;
    ++s.refusedTotal[static_cast<size_t>(r)];
    s.window.refusal(arrivalNs, r);
    if (why) *why = r;
    return Admission::kRejected;
  };
  if (queued_ >= options_.queueLimit) return refuseNow(Refusal::kQueueFull);
  FunctionSchedule::Waiting w{std::move(start), std::move(refuse), arrivalNs, INT64_MAX,
                              ++sequence_};
  if (scheduling_.policy == SchedulingPolicy::kDeadline && s.objective) {
    w.deadlineNs = arrivalNs + static_cast<int64_t>(s.objective->sloMs * 1e6);
    double service = s.window.meanServiceNs();
    // Before the first completion nothing is known about the function: it waits.
    if (service > 0 && predictLateLocked(fn, arrivalNs, w.deadlineNs) >= refusalThreshold_) {
      return refuseNow(Refusal::kDeadline);
    }
  }
  if (s.queue.empty()) backlogged_.push_back(&fn);
  s.queue.push_back(std::move(w));
  ++queued_;
  return Admission::kQueued;
}

double Executor::predictLateLocked(AdmissionState& fn, int64_t nowNs, int64_t deadlineNs) {
  FunctionSchedule& s = *fn.schedule;
  s.settleCredit(nowNs);
  double slots = options_.slots;
  if (s.limit > 0) slots = std::min<double>(slots, s.limit);
  std::vector<CompetingFunction> others;
  others.reserve(known_.size());
  for (const auto& o : known_) {
    if (o.get() == &s) continue;
    if (o->queue.empty() && o->running == 0 && o->allocation == 0) continue;
    o->settleCredit(nowNs);
    CompetingFunction c;
    if (o->objective) c.objectiveNs = o->objective->sloMs * 1e6;
    c.withinShare = o->credit >= 0;
    c.running = o->running;
    c.queued = static_cast<uint32_t>(o->queue.size());
    if (o->objective) {
      // Deadlines within one function's queue rise with arrival (one objective).
      auto it = std::partition_point(o->queue.begin(), o->queue.end(),
                                     [deadlineNs](const FunctionSchedule::Waiting& x) {
                                       return x.deadlineNs <= deadlineNs;
                                     });
      c.queuedBefore = static_cast<uint32_t>(it - o->queue.begin());
    } else {
      c.queuedBefore = c.queued;
    }
    c.ratePerSecond = o->plannedRate;
    c.allocation = o->allocation;
    c.serviceMeanNs = o->window.meanServiceNs();
    c.serviceVarianceNs2 = o->window.serviceVarianceNs2();
    others.push_back(c);
  }
  AdmissionView v;
  v.nowNs = nowNs;
  v.deadlineNs = deadlineNs;
  v.slots = slots;
  v.withinShare = s.credit >= 0;
  v.queuedAhead = static_cast<uint32_t>(s.queue.size());
  v.running = s.running;
  v.serviceMeanNs = s.window.meanServiceNs();
  v.serviceVarianceNs2 = s.window.serviceVarianceNs2();
  v.others = others;
  return forecastAdmission(v).lateProbability;
}

void Executor::releaseLocked(AdmissionState& fn, int64_t nowNs) {
  fn.schedule->settleCredit(nowNs);
  --running_;
  --fn.schedule->running;
}

void Executor::finish(AdmissionState& fn, int64_t arrivalNs, int64_t serviceNs, int64_t endNs) {
  std::vector<std::function<void()>> calls;
  {
    MutexLock lock(mu_);
    int64_t t = endNs ? endNs : now();
    releaseLocked(fn, t);
    FunctionSchedule& s = *fn.schedule;
    bool within = !s.objective || static_cast<double>(t - arrivalNs) <= s.objective->sloMs * 1e6;
    s.window.completion(t, serviceNs, within);
    if (s.startServiceNs == 0) s.startServiceNs = s.lastChanceServiceNs = static_cast<double>(serviceNs);
    maybeReplanLocked(t);
    dispatchLocked(t, calls);
    if (running_ == 0 && queued_ == 0) drained_.notify_all();
  }
  for (auto& c : calls) c();
}

void Executor::finish(AdmissionState& fn) {
  std::vector<std::function<void()>> calls;
  {
    MutexLock lock(mu_);
    int64_t t = now();
    releaseLocked(fn, t);
    dispatchLocked(t, calls);
    if (running_ == 0 && queued_ == 0) drained_.notify_all();
  }
  for (auto& c : calls) c();
}

void Executor::dispatchLocked(int64_t nowNs, std::vector<std::function<void()>>& calls) {
  const bool deadline = scheduling_.policy == SchedulingPolicy::kDeadline;
  std::vector<DispatchCandidate> candidates;
  while (running_ < options_.slots && !backlogged_.empty()) {
    candidates.clear();
    for (AdmissionState* f : backlogged_) {
      AdmissionState& fn = *f;
      FunctionSchedule& s = *fn.schedule;
      // A waiting request that can no longer finish by its deadline is refused rather
      // than run late.
      while (deadline && !s.queue.empty() && s.objective && s.startServiceNs > 0 &&
             !stillInTime(static_cast<double>(s.queue.front().deadlineNs - nowNs),
                          queued_ > 1 ? s.startServiceNs : s.lastChanceServiceNs)) {
        auto& w = s.queue.front();
        ++rejected_;
        ++s.refusedTotal[static_cast<size_t>(Refusal::kExpired)];
        s.window.refusal(nowNs, Refusal::kExpired);
        if (w.refuse) calls.push_back([refuse = std::move(w.refuse)] { refuse(Refusal::kExpired); });
        s.queue.pop_front();
        --queued_;
      }
      if (s.queue.empty() || !canRun(fn)) continue;
      s.settleCredit(nowNs);
      const auto& head = s.queue.front();
      candidates.push_back({s.objective.has_value(), s.credit, head.deadlineNs, head.sequence});
    }
    // Functions whose queues emptied leave the backlog.
    std::erase_if(backlogged_, [](AdmissionState* fn) { return fn->schedule->queue.empty(); });
    if (candidates.empty()) break;
    // The chosen function is found by its head's sequence number, which is unique.
    uint64_t seq = candidates[chooseNext(scheduling_.policy, candidates)].sequence;
    auto it = std::find_if(backlogged_.begin(), backlogged_.end(), [seq](AdmissionState* f) {
      return f->schedule->queue.front().sequence == seq;
    });
    AdmissionState& chosen = **it;
    FunctionSchedule& s = *chosen.schedule;
    s.settleCredit(nowNs);
    ++running_;
    ++s.running;
    calls.push_back(std::move(s.queue.front().start));
    s.queue.pop_front();
    --queued_;
    if (s.queue.empty()) backlogged_.erase(it);
  }
}

void Executor::maybeReplanLocked(int64_t nowNs) {
  if (joined_ || lastPlanNs_ == INT64_MIN ||
      nowNs - lastPlanNs_ >= std::chrono::nanoseconds(scheduling_.controlPeriod).count()) {
    replanLocked(nowNs, /*sharp=*/false);
  }
}

void Executor::replanLocked(int64_t nowNs, bool sharp) {
  int64_t began = now();
  // Functions that are gone, or idle for a whole window, leave the plan.
  std::erase_if(known_, [nowNs](const std::shared_ptr<FunctionSchedule>& s) {
    bool idle = s->queue.empty() && s->running == 0 &&
                (s.use_count() == 1 || s->window.estimate(nowNs).arrivals == 0);
    if (idle) s->known = false;
    return idle;
  });
  std::vector<FunctionDemand> demands;
  demands.reserve(known_.size());
  for (const auto& s : known_) {
    FunctionDemand d;
    d.objective = s->objective;
    d.weight = s->weight;
    d.ratePerSecond = s->window.estimate(nowNs).ratePerSecond;
    d.serviceMs = s->window.meanServiceNs() / 1e6;
    demands.push_back(d);
  }
  auto plan = planAllocations(options_.slots, demands);
  refusalThreshold_ = refusalThreshold(options_.slots, demands);
  double startAt = startQuantile(options_.slots, demands);
  for (size_t i = 0; i < known_.size(); ++i) {
    FunctionSchedule& s = *known_[i];
    s.settleCredit(nowNs);
    s.target = plan[i].target;
    s.allocation = plan[i].allocation;
    s.unreachable = plan[i].unreachable;
    s.plannedRate = demands[i].ratePerSecond;
    s.startServiceNs = s.window.serviceQuantileNs(startAt);
    s.lastChanceServiceNs = s.window.serviceQuantileNs(1 - kRefusalConfidence);
  }
  lastPlanNs_ = nowNs;
  joined_ = false;
  if (sharp) {
    lastSharpPlanNs_ = nowNs;
    ++sharpReplans_;
  }
  ++replans_;
  lastReplanNs_ = std::max<int64_t>(0, now() - began);
  maxReplanNs_ = std::max(maxReplanNs_, lastReplanNs_);
}

bool Executor::stop(std::chrono::milliseconds timeout) {
  MutexLock lock(mu_);
  stopping_ = true;
  return lock.waitFor(drained_, timeout,
                      [this]() TERN_REQUIRES(mu_) { return running_ == 0 && queued_ == 0; });
}

Executor::Stats Executor::stats() const {
  MutexLock lock(mu_);
  Stats st;
  st.slots = options_.slots;
  st.running = running_;
  st.queued = queued_;
  st.rejected = rejected_;
  st.policy = scheduling_.policy;
  st.controlPeriod = scheduling_.controlPeriod;
  st.replans = replans_;
  st.sharpReplans = sharpReplans_;
  st.lastReplanNs = lastReplanNs_;
  st.maxReplanNs = maxReplanNs_;
  return st;
}

Executor::FunctionReport Executor::report(const AdmissionState& fn) const {
  MutexLock lock(mu_);
  const FunctionSchedule& s = *fn.schedule;
  int64_t t = now();
  FunctionReport r;
  double slo = fn.sloMs.load(std::memory_order_relaxed);
  double pct = fn.percentile.load(std::memory_order_relaxed);
  if (slo > 0) r.objective = Objective{slo, pct > 0 ? std::optional<double>(pct) : std::nullopt};
  r.weight = fn.weight.load(std::memory_order_relaxed);
  r.window = s.window.estimate(t);
  r.service = s.window.service();
  // A function that left the plan (idle for a window) has no target or allocation.
  r.targetSlots = s.known ? s.target : 0;
  r.allocatedSlots = s.known ? s.allocation : 0;
  r.unreachable = s.known && s.unreachable;
  r.running = s.running;
  r.slotSeconds = (s.heldNs + (s.creditAtNs != INT64_MIN && t > s.creditAtNs
                                   ? static_cast<double>(s.running) *
                                         static_cast<double>(t - s.creditAtNs)
                                   : 0)) /
                  1e9;
  r.queued = static_cast<uint32_t>(s.queue.size());
  r.refusedTotal = s.refusedTotal;
  return r;
}

}  // namespace tern::exec
