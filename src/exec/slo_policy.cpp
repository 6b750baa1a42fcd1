#include "exec/slo_policy.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace tern::exec {

std::vector<double> waterFill(double capacity, std::span<const double> demands,
                              std::span<const double> weights) {
  size_t n = demands.size();
  std::vector<double> out(n, 0);
  if (n == 0 || !(capacity > 0)) return out;
  double total = std::accumulate(demands.begin(), demands.end(), 0.0);
  if (total <= capacity) {
    std::copy(demands.begin(), demands.end(), out.begin());
    return out;
  }
  // Satisfy functions in order of demand per unit of weight; each is either below the
  // current water level (gets its demand) or, with all after it, shares what is left.
  std::vector<size_t> order;
  for (size_t i = 0; i < n; ++i) {
    if (demands[i] > 0) order.push_back(i);
  }
  auto perWeight = [&](size_t i) {
    return weights[i] > 0 ? demands[i] / weights[i] : std::numeric_limits<double>::infinity();
  };
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return perWeight(a) < perWeight(b); });
  double left = capacity;
  double weightLeft = 0;
  for (size_t i : order) weightLeft += weights[i];
  size_t k = 0;
  for (; k < order.size() && weightLeft > 0; ++k) {
    size_t i = order[k];
    double level = left / weightLeft;
    if (demands[i] > weights[i] * level) break;
    out[i] = demands[i];
    left -= demands[i];
    weightLeft -= weights[i];
  }
  if (weightLeft > 0) {
    double level = left / weightLeft;
    for (size_t j = k; j < order.size(); ++j) out[order[j]] = weights[order[j]] * level;
  } else if (k < order.size()) {
    // Only zero-weight functions remain: they split what is left evenly.
    double each = left / static_cast<double>(order.size() - k);
    for (size_t j = k; j < order.size(); ++j) out[order[j]] = std::min(each, demands[order[j]]);
  }
  return out;
}

std::vector<FunctionAllocation> planAllocations(uint32_t slots,
                                                std::span<const FunctionDemand> functions) {
  size_t n = functions.size();
  std::vector<FunctionAllocation> out(n);
  std::vector<double> sloDemand(n, 0), beDemand(n, 0), weights(n, 0);
  for (size_t i = 0; i < n; ++i) {
    const FunctionDemand& f = functions[i];
    auto& a = out[i];
    weights[i] = std::isfinite(f.weight) && f.weight > 0 ? f.weight : 0;
    double rate = std::isfinite(f.ratePerSecond) ? std::max(f.ratePerSecond, 0.0) : 0;
    double service = std::isfinite(f.serviceMs) ? std::max(f.serviceMs, 0.0) : 0;
    double offered = rate * service / 1000;
    if (rate == 0) {
      a.target = 0;
    } else if (service == 0) {
      a.target = 1;  // arrivals but nothing measured yet: one slot until it is
    } else if (f.objective) {
      auto plan = planCapacity({rate, service, *f.objective});
      if (plan.ok()) {
        a.target = plan->slots;
      } else {
        a.unreachable = service >= f.objective->sloMs;
        a.target = std::min<double>(offered, kMaxPlannedSlots);
      }
    } else {
      a.target = offered;
    }
    (f.objective ? sloDemand : beDemand)[i] = a.target;
  }
  auto slo = waterFill(slots, sloDemand, weights);
  double used = std::accumulate(slo.begin(), slo.end(), 0.0);
  auto be = waterFill(std::max(0.0, slots - used), beDemand, weights);
  for (size_t i = 0; i < n; ++i) out[i].allocation = functions[i].objective ? slo[i] : be[i];
  return out;
}

bool overloaded(uint32_t slots, std::span<const FunctionDemand> functions) {
  double offered = 0;
  for (const auto& f : functions) {
    double rate = std::isfinite(f.ratePerSecond) ? std::max(f.ratePerSecond, 0.0) : 0;
    double service = std::isfinite(f.serviceMs) ? std::max(f.serviceMs, 0.0) : 0;
    offered += rate * service / 1000;
  }
  return offered > slots;
}

double refusalThreshold(uint32_t slots, std::span<const FunctionDemand> functions) {
  return overloaded(slots, functions) ? kOverloadRefusalConfidence : kRefusalConfidence;
}

double startQuantile(uint32_t slots, std::span<const FunctionDemand> functions) {
  return overloaded(slots, functions) ? kOverloadStartConfidence : 1 - kRefusalConfidence;
}

size_t chooseNext(SchedulingPolicy policy, std::span<const DispatchCandidate> c) {
  auto better = [policy](const DispatchCandidate& a, const DispatchCandidate& b) {
    if (policy == SchedulingPolicy::kFifo) return a.sequence < b.sequence;
    // Rank: 0 objective within share, 1 best effort within share, 2 objective over share,
    // 3 best effort over share.
    auto rank = [](const DispatchCandidate& x) {
      return (x.credit >= 0 ? 0 : 2) + (x.hasObjective ? 0 : 1);
    };
    int ra = rank(a), rb = rank(b);
    if (ra != rb) return ra < rb;
    if (ra >= 2 && a.credit != b.credit) return a.credit > b.credit;
    if (a.hasObjective && a.deadlineNs != b.deadlineNs) return a.deadlineNs < b.deadlineNs;
    return a.sequence < b.sequence;
  };
  size_t best = 0;
  for (size_t i = 1; i < c.size(); ++i) {
    if (better(c[i], c[best])) best = i;
  }
  return best;
}

namespace {

double finiteOr0(double x) { return std::isfinite(x) && x > 0 ? x : 0; }

// The dispatch class of a function (chooseNext's rank): lower goes first.
int dispatchClass(bool hasObjective, bool withinShare) {
  return (withinShare ? 0 : 2) + (hasObjective ? 0 : 1);
}

}  // namespace

CompletionForecast forecastAdmission(const AdmissionView& v) {
  const double slots = std::isfinite(v.slots) && v.slots > 0 ? v.slots : 1;
  const double now = static_cast<double>(v.nowNs);
  const double deadline = static_cast<double>(v.deadlineNs);
  const int ownClass = dispatchClass(true, v.withinShare);
  // Work (slot-nanoseconds) known to be ahead of the request now: mean and variance.
  double mean = 0, var = 0;
  auto add = [&](double count, double m, double s2) {
    if (!(count > 0)) return;
    mean += count * finiteOr0(m);
    var += count * finiteOr0(s2);
  };
  add(0.5 * v.running, v.serviceMeanNs, v.serviceVarianceNs2);
  add(v.queuedAhead, v.serviceMeanNs, v.serviceVarianceNs2);
  for (const auto& o : v.others) {
    add(0.5 * o.running, o.serviceMeanNs, o.serviceVarianceNs2);
    int c = dispatchClass(o.objectiveNs.has_value(), o.withinShare);
    if (c < ownClass) {
      add(o.queued, o.serviceMeanNs, o.serviceVarianceNs2);
    } else if (c == ownClass) {
      add(o.queuedBefore, o.serviceMeanNs, o.serviceVarianceNs2);
    }
  }
  // Arrivals of other objective functions while the request waits, with an earlier
  // deadline, go first too: iterate the start time a few times (each pass only adds
  // work, and the arrivals that count are bounded by the deadline).
  double start = now + mean / slots;
  double futureMean = 0, futureVar = 0;
  for (int pass = 0; pass < 4; ++pass) {
    futureMean = futureVar = 0;
    for (const auto& o : v.others) {
      if (!o.objectiveNs) continue;
      int c = dispatchClass(true, o.withinShare);
      if (c > ownClass) continue;
      // Arrivals in (now, start] whose deadline (arrival + objective) precedes ours.
      double until = std::min(start, deadline - *o.objectiveNs);
      double window = until - now;
      if (!(window > 0)) continue;
      double m = finiteOr0(o.serviceMeanNs);
      double count = finiteOr0(o.ratePerSecond) * window / 1e9;
      if (v.withinShare && m > 0) count = std::min(count, finiteOr0(o.allocation) * window / m);
      futureMean += count * m;
      futureVar += count * finiteOr0(o.serviceVarianceNs2);
    }
    double next = now + (mean + futureMean) / slots;
    bool settled = std::abs(next - start) < 1000;  // within a microsecond
    start = next;
    if (settled) break;
  }
  CompletionForecast f;
  f.startNs = start;
  f.completionNs = start + finiteOr0(v.serviceMeanNs);
  f.sdNs = std::sqrt((var + futureVar) / (slots * slots) + finiteOr0(v.serviceVarianceNs2));
  double slack = deadline - f.completionNs;
  if (f.sdNs > 0) {
    // P(X > deadline) for X ~ N(completion, sd^2).
    f.lateProbability = 0.5 * std::erfc(slack / (f.sdNs * std::sqrt(2.0)));
  } else {
    f.lateProbability = slack < 0 ? 1 : 0;
  }
  return f;
}

bool stillInTime(double remainingNs, double startServiceNs) {
  return !(remainingNs < finiteOr0(startServiceNs));
}

}  // namespace tern::exec
