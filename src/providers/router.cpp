#include "providers/router.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <condition_variable>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "http/http_client.h"
#include "providers/wasm_policy.h"
#include "util/work_queue.h"
#include "util/thread_annotations.h"

namespace tern::providers {

using json = nlohmann::json;

namespace {

int64_t steadyMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Statuses that say the function did not run there (the gateway or the node refused it),
// so the call may go to the next provider without running twice.
bool notRunStatus(int status) { return status == 429 || status == 502 || status == 503 || status == 504; }

// A call the local invoker did not run (not served here, at capacity, stopping).
bool notRunHere(const exec::InvokeOutput& out) {
  if (!out.error || out.ran) return false;
  auto c = out.error->code();
  return c == ErrorCode::kNotFound || c == ErrorCode::kSaturated || c == ErrorCode::kUnavailable;
}

Result<std::string> readToken(const std::string& file) {
  if (file.empty()) return std::string();
  std::ifstream in(file);
  std::string token;
  if (!in || !std::getline(in, token)) {
    return Error(ErrorCode::kUnavailable, fmt::format("cannot read the token file {}", file));
  }
  while (!token.empty() && (token.back() == '\r' || token.back() == ' ')) token.pop_back();
  return token;
}

// Where a call of `function` goes at `p`.
Result<std::pair<http::NodeUrl, std::string>> endpoint(const Provider& p, const std::string& function) {
  std::string url = p.url;
  if (p.kind == Kind::kHttp) {
    if (auto at = url.find("{function}"); at != std::string::npos) url.replace(at, 10, function);
  }
  auto parsed = http::parseNodeUrl(url);
  if (!parsed.ok()) return parsed.error();
  // The client puts the URL's path (the prefix) before the target.
  std::string target = p.kind == Kind::kTern ? "/fn/" + http::percentEncode(function)
                       : parsed->path.empty() ? "/"
                                                : "";
  return std::make_pair(std::move(*parsed), std::move(target));
}

}  // namespace

struct RouteState {
  RouteState(Route r, PolicyState p) : route(std::move(r)), policy(std::move(p)) {}
  const Route route;
  Mutex mu;
  PolicyState policy TERN_GUARDED_BY(mu);
};

// One routed call on its way through the ranking.
struct Call {
  exec::InvokeInput input;
  std::function<void(exec::InvokeOutput)> done;
  std::shared_ptr<RouteState> route;
  std::vector<std::string> ranking;
  std::vector<std::string> failures;  // "provider: why", in order
  int64_t deadlineMs = 0;
};

struct Router::Impl : std::enable_shared_from_this<Router::Impl> {
  Impl(RouterDeps d, RouterOptions o) : deps(d), options(o), pool(std::max(1u, o.threads)) {}

  RouterDeps deps;
  RouterOptions options;
  WorkQueue pool;

  mutable Mutex mu;  // providers, routes, stats' map, rng; never held across a call out
  std::map<std::string, Provider, std::less<>> providers TERN_GUARDED_BY(mu);
  std::map<std::string, std::shared_ptr<RouteState>, std::less<>> routes TERN_GUARDED_BY(mu);
  // Whether `routes` has any: a node without routes answers every call itself, and its
  // invocations need not take `mu` to learn that.
  std::atomic<bool> anyRoutes{false};
  std::map<std::pair<std::string, std::string>, std::unique_ptr<Stats>> stats TERN_GUARDED_BY(mu);
  std::set<std::pair<std::string, std::string>> probing TERN_GUARDED_BY(mu);
  std::mt19937_64 rng TERN_GUARDED_BY(mu){std::random_device{}()};
  std::set<std::string> warnedUnknown TERN_GUARDED_BY(mu);

  bool stopped TERN_GUARDED_BY(mu) = false;  // no more calls are taken
  Mutex probeMu;
  std::condition_variable probeCv;
  bool stopping TERN_GUARDED_BY(probeMu) = false;
  std::thread prober;

  Stats& statsFor(const std::string& provider, const std::string& function) {
    MutexLock lock(mu);
    auto& s = stats[{provider, function}];
    if (!s) s = std::make_unique<Stats>();
    return *s;
  }

  void finished(const std::string& provider, const std::string& function, Stats& s, bool ok, double ms,
                bool probe) {
    s.end(ok, ms, steadyMs());
    deps.metrics
        .counter(probe ? "tern_provider_probes_total" : "tern_provider_attempts_total",
                 probe ? "Probes of a (provider, function) by outcome"
                       : "Attempts of routed calls at a provider by outcome",
                 {{"provider", provider}, {"function", function}, {"outcome", ok ? "ok" : "failed"}})
        .inc();
    auto v = s.view(steadyMs());
    Labels labels{{"provider", provider}, {"function", function}};
    deps.metrics.gauge("tern_provider_latency_ewma_seconds", "Mean latency at the caller (EWMA)", labels)
        .set(v.ewmaMs / 1e3);
    deps.metrics.gauge("tern_provider_latency_p95_seconds", "95th percentile latency at the caller", labels)
        .set(v.p95Ms / 1e3);
    deps.metrics.gauge("tern_provider_failure_rate", "Share of failed attempts (EWMA)", labels)
        .set(v.failureRate);
  }

  std::vector<ProviderView> views(const Route& r) {
    std::vector<ProviderView> out;
    int64_t now = steadyMs();
    for (const auto& name : r.providers) {
      ProviderView v;
      if (name == kLocal) {
        v = statsFor(name, r.function).view(now);
        v.tier = options.localTier;
      } else {
        Provider p;
        {
          MutexLock lock(mu);
          auto it = providers.find(name);
          if (it == providers.end()) {
            if (warnedUnknown.insert(name).second) {
              spdlog::warn("route of {} names provider {}, which does not exist; skipped", r.function, name);
            }
            continue;
          }
          p = it->second;
        }
        v = statsFor(name, r.function).view(now);
        v.tier = p.tier;
        v.pricePerCall = p.pricePerCall;
      }
      v.name = name;
      out.push_back(std::move(v));
    }
    return out;
  }

  // The ranking of a call: the policy's, or a wasm policy's answer within its time limit.
  std::vector<std::string> decide(Call& c) {
    auto v = views(c.route->route);
    CallInfo info{c.input.function, c.input.body.size()};
    double r01;
    {
      MutexLock lock(mu);
      r01 = std::uniform_real_distribution<double>(0, 1)(rng);
    }
    std::vector<std::string> ranking;
    {
      MutexLock lock(c.route->mu);
      ranking = rank(c.route->route.policy, info, v, c.route->policy, r01);
    }
    const auto& policy = c.route->route.policy;
    if (policy.kind != PolicySpec::Kind::kWasm) return ranking;
    auto answer = std::make_shared<std::promise<exec::InvokeOutput>>();
    auto future = answer->get_future();
    exec::InvokeInput in;
    in.function = policy.function;
    in.body = wasmPolicyInput(info, v);
    in.routed = true;
    deps.invoker.invoke(std::move(in), [answer](exec::InvokeOutput out) { answer->set_value(std::move(out)); });
    std::string why;
    if (future.wait_for(options.policyTimeout) != std::future_status::ready) {
      why = fmt::format("no answer within {} ms", options.policyTimeout.count());
    } else {
      auto out = future.get();
      if (out.error) {
        why = out.error->message();
      } else {
        auto chosen = parseWasmPolicyOutput(out.result.stdoutData, v, ranking);
        if (chosen.ok()) return std::move(*chosen);
        why = chosen.error().message();
      }
    }
    deps.metrics.counter("tern_provider_policy_fallbacks_total",
                         "Calls ranked by lowest-latency because their wasm policy failed",
                         {{"function", c.input.function}})
        .inc();
    spdlog::warn("policy {} of {} failed ({}); lowest-latency decides", policy.function, c.input.function, why);
    return ranking;
  }

  void attempt(std::shared_ptr<Call> c, size_t i) {
    if (i >= c->ranking.size() || steadyMs() >= c->deadlineMs) {
      exec::InvokeOutput out;
      std::string tried;
      for (const auto& f : c->failures) tried += (tried.empty() ? "" : "; ") + f;
      out.error = Error(ErrorCode::kUnavailable,
                        fmt::format("no provider of {} answered{}{}", c->input.function,
                                    tried.empty() ? "" : ": ", tried.empty() ? "" : tried));
      return c->done(std::move(out));
    }
    const std::string name = c->ranking[i];
    Stats& s = statsFor(name, c->input.function);
    s.begin();
    int64_t t0 = steadyMs();
    if (name == kLocal) {
      exec::InvokeInput in = c->input;
      in.routed = true;
      auto self = shared_from_this();
      deps.invoker.invoke(std::move(in), [self, c, i, name, &s, t0](exec::InvokeOutput out) {
        auto ms = static_cast<double>(steadyMs() - t0);
        if (notRunHere(out)) {
          self->finished(name, c->input.function, s, false, ms, false);
          c->failures.push_back(fmt::format("local: {}", out.error->message()));
          if (!self->pool.post([self, c, i] { self->attempt(c, i + 1); })) {
            exec::InvokeOutput stopped;
            stopped.error = Error(ErrorCode::kUnavailable, "the node is stopping");
            c->done(std::move(stopped));
          }
          return;
        }
        self->finished(name, c->input.function, s, true, ms, false);
        out.provider = name;
        c->done(std::move(out));
      });
      return;
    }
    auto answer = callRemote(name, c->input, std::min<int64_t>(c->deadlineMs - t0, options.attemptTimeout.count()), false);
    auto ms = static_cast<double>(steadyMs() - t0);
    if (!answer.ok()) {
      finished(name, c->input.function, s, false, ms, false);
      c->failures.push_back(fmt::format("{}: {}", name, answer.error().message()));
      return attempt(c, i + 1);
    }
    finished(name, c->input.function, s, true, ms, false);
    exec::InvokeOutput out;
    out.ran = true;
    out.provider = name;
    out.httpStatus = answer->status;
    if (const auto* ct = answer->header("Content-Type")) out.contentType = *ct;
    out.result.stdoutData = std::move(answer->body);
    c->done(std::move(out));
  }

  // One attempt at a remote provider: a response it answered (any status but those that say
  // the function did not run), or why there is none.
  Result<http::HttpResponse> callRemote(const std::string& name, const exec::InvokeInput& input,
                                        int64_t budgetMs, bool probe) {
    Provider p;
    {
      MutexLock lock(mu);
      auto it = providers.find(name);
      if (it == providers.end()) return Error(ErrorCode::kNotFound, "no such provider");
      p = it->second;
    }
    auto where = endpoint(p, input.function);
    if (!where.ok()) return where.error();
    auto token = readToken(p.tokenFile);
    if (!token.ok()) return token.error();
    http::HttpRequest req;
    req.method = "POST";
    req.target = where->second;
    req.body = input.body;
    if (!token->empty()) req.headers.push_back({"Authorization", "Bearer " + *token});
    for (std::string_view e : input.env) {
      if (e.starts_with("CONTENT_TYPE=")) {
        req.headers.push_back({"Content-Type", std::string(e.substr(13))});
      }
    }
    if (probe) req.headers.push_back({"X-Tern-Probe", "1"});
    http::HttpClientOptions o;
    o.connectTimeout = std::min(options.connectTimeout, std::chrono::milliseconds(std::max<int64_t>(budgetMs, 1)));
    o.responseTimeout = std::chrono::milliseconds(std::max<int64_t>(budgetMs, 1));
    o.maxResponseBodyBytes = options.maxResponseBytes;
    auto r = http::sendHttp(where->first, req, o);
    if (!r.ok()) return r.error();
    if (notRunStatus(r->status)) {
      return Error(ErrorCode::kUnavailable, fmt::format("answered {} (the function did not run)", r->status));
    }
    return r;
  }

  void probe(const std::string& name, const std::string& function) {
    Stats& s = statsFor(name, function);
    auto self = shared_from_this();
    auto release = [self, name, function] {
      MutexLock lock(self->mu);
      self->probing.erase({name, function});
    };
    int64_t t0 = steadyMs();
    if (name == kLocal) {
      exec::InvokeInput in;
      in.function = function;
      in.env.add("TERN_PROBE=1");
      in.routed = true;
      s.begin();
      deps.invoker.invoke(std::move(in), [self, name, function, &s, t0, release](exec::InvokeOutput out) {
        self->finished(name, function, s, !notRunHere(out), static_cast<double>(steadyMs() - t0), true);
        release();
      });
      return;
    }
    exec::InvokeInput in;
    in.function = function;
    s.begin();
    int64_t budget = options.attemptTimeout.count();
    auto r = callRemote(name, in, budget, true);
    finished(name, function, s, r.ok(), static_cast<double>(steadyMs() - t0), true);
    release();
  }

  void probeLoop() {
    MutexLock lock(probeMu);
    while (!stopping) {
      lock.waitFor(probeCv, std::max(options.probePeriod / 4, std::chrono::milliseconds(10)));
      if (stopping) break;
      lock.unlock();
      std::vector<std::pair<std::string, std::string>> due;
      {
        std::vector<std::shared_ptr<RouteState>> rs;
        {
          MutexLock l(mu);
          for (auto& [fn, r] : routes) rs.push_back(r);
        }
        int64_t now = steadyMs();
        for (auto& r : rs) {
          for (const auto& name : r->route.providers) {
            auto v = statsFor(name, r->route.function).view(now);
            if (v.inFlight > 0 || now - v.lastUsedMs < options.probePeriod.count()) continue;
            MutexLock l(mu);
            if (name != kLocal && !providers.contains(name)) continue;
            if (probing.insert({name, r->route.function}).second) due.emplace_back(name, r->route.function);
          }
        }
      }
      for (auto& d : due) {
        pool.post([self = shared_from_this(), name = d.first, fn = d.second] {
          self->probe(name, fn);
        });
      }
      lock.lock();
    }
  }
};

Router::Router(RouterDeps deps, RouterOptions options) : impl_(std::make_shared<Impl>(deps, options)) {}

Router::~Router() { stop(); }

Result<void> Router::reload() {
  auto ps = impl_->deps.store.providers();
  if (!ps.ok()) return ps.error();
  auto rs = impl_->deps.store.routes();
  if (!rs.ok()) return rs.error();
  MutexLock lock(impl_->mu);
  impl_->providers.clear();
  for (auto& p : *ps) impl_->providers[p.name] = std::move(p);
  std::map<std::string, std::shared_ptr<RouteState>, std::less<>> routes;
  for (auto& r : *rs) {
    // A route that keeps its providers and policy keeps its round-robin position.
    PolicyState policy;
    if (auto old = impl_->routes.find(r.function); old != impl_->routes.end()) {
      MutexLock l(old->second->mu);
      policy = old->second->policy;
    }
    std::string function = r.function;
    routes[function] = std::make_shared<RouteState>(std::move(r), std::move(policy));
  }
  impl_->routes = std::move(routes);
  impl_->anyRoutes.store(!impl_->routes.empty(), std::memory_order_release);
  impl_->warnedUnknown.clear();
  return {};
}

bool Router::hasRoute(std::string_view function) const {
  MutexLock lock(impl_->mu);
  return impl_->routes.find(function) != impl_->routes.end();
}

bool Router::route(exec::InvokeInput& input, std::function<void(exec::InvokeOutput)>& done) {
  if (!impl_->anyRoutes.load(std::memory_order_acquire)) return false;
  std::shared_ptr<RouteState> r;
  {
    MutexLock lock(impl_->mu);
    if (impl_->stopped) return false;  // stopping: the node answers for itself
    auto it = impl_->routes.find(input.function);
    if (it == impl_->routes.end()) return false;
    r = it->second;
  }
  auto c = std::make_shared<Call>();
  c->input = std::move(input);
  c->done = std::move(done);
  c->route = std::move(r);
  c->deadlineMs = steadyMs() + impl_->options.callTimeout.count();
  // Remote attempts block on the network: off the caller's thread.
  bool taken = impl_->pool.post([self = impl_, c] {
    c->ranking = self->decide(*c);
    self->attempt(c, 0);
  });
  if (!taken) {  // stopping meanwhile: the node answers for itself
    input = std::move(c->input);
    done = std::move(c->done);
  }
  return taken;
}

json Router::statsJson() const {
  json out = json::object();
  int64_t now = steadyMs();
  MutexLock lock(impl_->mu);
  for (const auto& [key, s] : impl_->stats) {
    auto v = s->view(now);
    out[key.first].push_back({{"function", key.second},
                              {"samples", v.samples},
                              {"ewma_ms", v.ewmaMs},
                              {"p95_ms", v.p95Ms},
                              {"failure_rate", v.failureRate},
                              {"in_flight", v.inFlight}});
  }
  return out;
}

void Router::start() {
  MutexLock lock(impl_->probeMu);
  if (impl_->prober.joinable()) return;
  impl_->prober = std::thread([self = impl_] { self->probeLoop(); });
}

void Router::stop() {
  {
    MutexLock lock(impl_->mu);
    impl_->stopped = true;
  }
  {
    MutexLock lock(impl_->probeMu);
    impl_->stopping = true;
  }
  impl_->probeCv.notify_all();
  if (impl_->prober.joinable()) impl_->prober.join();
  impl_->pool.stop();
}

}  // namespace tern::providers
