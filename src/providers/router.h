#pragma once
// The provider router (docs/design/providers.md): calls of a routed function go to the
// provider its policy ranks first, and on to the next when one fails before answering.
// Every attempt is measured at the caller (passive); each (provider, function) of a route
// idle for a probe period is probed (active). Hooked into exec::Invoker, so /fn calls,
// workflow tasks and async jobs of a routed function are all routed.

#include <chrono>
#include <functional>
#include <memory>

#include <nlohmann/json.hpp>

#include "exec/invoker.h"
#include "providers/policy.h"
#include "providers/provider_store.h"
#include "util/metrics.h"

namespace tern::providers {

struct RouterOptions {
  // A (provider, function) of a route without a call for this long is probed: the function
  // called with an empty body (remote: header X-Tern-Probe: 1; local: TERN_PROBE=1).
  std::chrono::milliseconds probePeriod{2000};
  // A routed call's budget, all attempts together; each remote attempt gets what is left.
  std::chrono::milliseconds callTimeout{60000};
  // One remote attempt's limit (within the budget), so that a provider that hangs leaves
  // time for the next.
  std::chrono::milliseconds attemptTimeout{10000};
  std::chrono::milliseconds connectTimeout{2000};
  // A wasm policy's answer; later or failing, lowest-latency decides.
  std::chrono::milliseconds policyTimeout{200};
  unsigned threads = 16;  // remote attempts and probes (the HTTP client blocks)
  std::string localTier = "edge";  // the tier policies see for "local"
  size_t maxResponseBytes = 64u << 20;
};

struct RouterDeps {
  exec::Invoker& invoker;
  ProviderStore& store;
  MetricsRegistry& metrics;
};

class Router {
 public:
  Router(RouterDeps deps, RouterOptions options);
  ~Router();
  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

  // Reads providers and routes from the store again (after every change).
  Result<void> reload();
  bool hasRoute(std::string_view function) const;
  // The invoker's hook: true when the call's function has a route (the call is taken).
  bool route(exec::InvokeInput& input, std::function<void(exec::InvokeOutput)>& done);
  // {"PROVIDER": [{"function", "samples", "ewma_ms", "p95_ms", "failure_rate", "in_flight"}]}
  nlohmann::json statsJson() const;

  // Probing runs between start() and stop(); stop() also waits for attempts in progress.
  void start();
  void stop();

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace tern::providers
