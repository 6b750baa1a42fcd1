#include "exec/schedule_metrics.h"

#include <fmt/format.h>

#include <utility>
#include <vector>

namespace tern::exec {

std::string renderScheduleMetrics(const Executor& executor, const FunctionTable& table) {
  std::vector<std::pair<std::string, Executor::FunctionReport>> reports;
  for (const auto& fn : table.all()) reports.emplace_back(fn->name, executor.report(fn->admission));
  std::string out;
  auto family = [&](const char* name, const char* type, const char* help, auto value) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
    for (const auto& [fn, r] : reports) value(fn, r);
  };
  auto series = [&](const char* name, const std::string& fn, double v) {
    out += fmt::format("{}{{function=\"{}\"}} {}\n", name, fn, v);
  };
  family("tern_function_arrival_rate", "gauge",
         "Arrivals per second over the scheduler's window", [&](auto& fn, auto& r) {
           series("tern_function_arrival_rate", fn, r.window.ratePerSecond);
         });
  family("tern_function_service_seconds", "gauge",
         "Service time of recent invocations (mean and quantiles)", [&](auto& fn, auto& r) {
           for (auto [q, v] : {std::pair{"mean", r.service.meanNs}, std::pair{"0.5", r.service.p50Ns},
                               std::pair{"0.95", r.service.p95Ns},
                               std::pair{"0.99", r.service.p99Ns}}) {
             out += fmt::format("tern_function_service_seconds{{function=\"{}\",quantile=\"{}\"}} {}\n",
                                fn, q, v / 1e9);
           }
         });
  family("tern_function_objective_seconds", "gauge",
         "Response-time objective (0: best effort)", [&](auto& fn, auto& r) {
           series("tern_function_objective_seconds", fn, r.objective ? r.objective->sloMs / 1e3 : 0);
         });
  family("tern_function_target_slots", "gauge",
         "Worker slots the capacity model asks for at the measured load",
         [&](auto& fn, auto& r) { series("tern_function_target_slots", fn, r.targetSlots); });
  family("tern_function_allocated_slots", "gauge",
         "Worker slots allocated after fair sharing",
         [&](auto& fn, auto& r) { series("tern_function_allocated_slots", fn, r.allocatedSlots); });
  family("tern_function_used_slots", "gauge",
         "Worker slots actually used over the window (slot-seconds per second)",
         [&](auto& fn, auto& r) { series("tern_function_used_slots", fn, r.window.slotsUsed); });
  family("tern_function_slot_seconds_total", "counter",
         "Worker-slot time held by the function's invocations, from dispatch to release",
         [&](auto& fn, auto& r) { series("tern_function_slot_seconds_total", fn, r.slotSeconds); });
  family("tern_function_attainment_ratio", "gauge",
         "Share of requests over the window that completed within the objective (refusals "
         "count as misses; functions with an objective only)",
         [&](auto& fn, auto& r) {
           if (r.objective) series("tern_function_attainment_ratio", fn, r.window.attainment());
         });
  family("tern_function_refusals_total", "counter", "Requests refused at admission, by reason",
         [&](auto& fn, auto& r) {
           for (size_t i = 0; i < kRefusalKinds; ++i) {
             out += fmt::format("tern_function_refusals_total{{function=\"{}\",reason=\"{}\"}} {}\n",
                                fn, refusalName(static_cast<Refusal>(i)), r.refusedTotal[i]);
           }
         });
  auto st = executor.stats();
  out += fmt::format(
      "# HELP tern_scheduler_replans_total Re-plans of the slot allocation\n"
      "# TYPE tern_scheduler_replans_total counter\ntern_scheduler_replans_total {}\n"
      "# HELP tern_scheduler_sharp_replans_total Re-plans triggered by a sharp rise in "
      "arrivals\n# TYPE tern_scheduler_sharp_replans_total counter\n"
      "tern_scheduler_sharp_replans_total {}\n"
      "# HELP tern_scheduler_replan_seconds How long the last re-plan took\n"
      "# TYPE tern_scheduler_replan_seconds gauge\ntern_scheduler_replan_seconds {}\n"
      "# HELP tern_scheduler_replan_max_seconds The longest re-plan so far\n"
      "# TYPE tern_scheduler_replan_max_seconds gauge\ntern_scheduler_replan_max_seconds {}\n",
      st.replans, st.sharpReplans, static_cast<double>(st.lastReplanNs) / 1e9,
      static_cast<double>(st.maxReplanNs) / 1e9);
  return out;
}

}  // namespace tern::exec
