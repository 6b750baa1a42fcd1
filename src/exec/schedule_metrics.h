#pragma once
// The scheduler's per-function figures in the Prometheus text format, rendered at scrape
// time (they are computed from the sliding window, not counted): arrival rate, service
// time, target and allocated slots, slots used, attainment, refusals by reason, and the
// cost of re-planning. Function names are [a-z0-9-] (isFunctionName, util/names.h), so they
// need no escaping as label values.

#include <string>

#include "exec/executor.h"
#include "exec/function_table.h"

namespace tern::exec {

std::string renderScheduleMetrics(const Executor& executor, const FunctionTable& table);

}  // namespace tern::exec
