#include "exec/invoker.h"

#include <fmt/format.h>

#include <chrono>
#include <random>

#include "store/quote.h"

namespace tern::exec {

namespace {
int64_t unixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}
}  // namespace

Invoker::Invoker(wasm::Engine& engine, Executor& executor, FunctionTable& table, Post post,
                 HostServices services)
    : engine_(engine),
      executor_(executor),
      table_(table),
      post_(std::move(post)),
      services_(std::move(services)),
      idPrefix_(static_cast<uint32_t>(std::random_device{}())) {}

std::string Invoker::nextInvocationId() {
  return fmt::format("{:08x}{:012x}", idPrefix_, idCounter_.fetch_add(1) + 1);
}

void Invoker::invoke(InvokeInput input, std::function<void(InvokeOutput)> done) {
  InvokeOutput out;
  out.invocationId = nextInvocationId();
  auto fn = table_.find(input.function);
  if (!fn || !fn->active()) {
    if (remote_ && remote_(input, done, Elsewhere::kNotHere)) return;
    out.error = Error(ErrorCode::kNotFound, fmt::format("no function named \"{}\"", input.function));
    return done(std::move(out));
  }
  // The executor's clock (CLOCK_MONOTONIC in a node, like the engine's): arrival times
  // feed its estimates and deadlines.
  int64_t queuedAt = executor_.now();
  // The common case allocates nothing: a free slot and a short function run right here.
  Admission a = executor_.tryRunNow(fn->admission, queuedAt);
  if (a == Admission::kRunNow && fn->runsInline()) {
    return run(fn, input, out.invocationId, queuedAt, done);
  }
  // Otherwise input and callback travel with the invocation to another thread.
  auto deferred = std::make_shared<std::pair<InvokeInput, std::function<void(InvokeOutput)>>>(
      std::move(input), std::move(done));
  auto id = out.invocationId;
  auto runDeferred = [this, fn, deferred, id, queuedAt] {
    post_([this, fn, deferred, id, queuedAt] {
      run(fn, deferred->first, id, queuedAt, deferred->second);
    });
  };
  // A waiting request the scheduler gives up on (it can no longer meet its deadline).
  auto refuseDeferred = [fn, deferred, id](Refusal why) {
    fn->outcomes[FunctionEntry::kRejected]->inc();
    InvokeOutput refused;
    refused.invocationId = id;
    refused.error = refusalError(why, fn->admission.sloMs.load(std::memory_order_relaxed));
    deferred->second(std::move(refused));
  };
  Refusal why = Refusal::kQueueFull;
  if (a == Admission::kQueued) {
    a = executor_.admit(fn->admission, queuedAt, runDeferred, refuseDeferred, &why);
  }
  switch (a) {
    case Admission::kRunNow:
      return runDeferred();
    case Admission::kQueued:
      return;  // runDeferred runs when a slot frees up
    case Admission::kRejected:
      // Spill: a peer with capacity takes the call before it is refused here.
      if (remote_ && remote_(deferred->first, deferred->second, Elsewhere::kSaturated)) return;
      fn->outcomes[FunctionEntry::kRejected]->inc();
      out.error = refusalError(why, fn->admission.sloMs.load(std::memory_order_relaxed));
      return deferred->second(std::move(out));
    case Admission::kStopped:
      out.error = Error(ErrorCode::kUnavailable, "the node is shutting down");
      return deferred->second(std::move(out));
  }
}

void Invoker::run(const std::shared_ptr<FunctionEntry>& fn, InvokeInput& input,
                  const std::string& id, int64_t queuedAtNs,
                  std::function<void(InvokeOutput)>& done) {
  InvokeOutput out;
  out.invocationId = id;
  auto active = fn->active();
  if (!active) {  // removed while waiting
    executor_.finish(fn->admission);
    out.error = Error(ErrorCode::kNotFound, fmt::format("no function named \"{}\"", fn->name));
    return done(std::move(out));
  }
  const FunctionVersionConfig& cfg = active->config;
  out.version = cfg.version;
  int64_t startNs = wasm::monotonicNs();
  int64_t startMs = unixMs();

  wasm::InvocationRequest req = makeRequest(cfg, std::move(input.env), id);
  req.input = input.body;
  HostContext host(*this, services_,
                   HostCaller{cfg.name, &active->capabilities, id,
                              cfg.timeoutMs ? startNs + int64_t{cfg.timeoutMs} * 1000000 : 0, 0});
  req.deadlineNs = host.caller().deadlineNs;
  req.host = &host;

  fn->inFlight->add(1);
  out.result = engine_.invoke(active->module, req);
  fn->inFlight->add(-1);
  fn->recordDuration(out.result.durationNs);
  executor_.finish(fn->admission, queuedAtNs, out.result.durationNs);
  out.ran = true;

  const auto& r = out.result;
  record(*fn, cfg, id, r, startMs, startNs - queuedAtNs);
  out.error = r.error();
  if (!out.error && r.outcome == wasm::Outcome::kExited) {
    out.error = Error(ErrorCode::kFunctionFailed,
                      fmt::format("the function exited with code {}", r.exitCode));
  }
  done(std::move(out));
}

wasm::InvocationRequest Invoker::makeRequest(const FunctionVersionConfig& cfg,
                                             std::vector<std::string> extraEnv,
                                             const std::string& id) {
  wasm::InvocationRequest req;
  req.args = {cfg.name};
  req.env = std::move(extraEnv);
  req.env.insert(req.env.end(), cfg.env.begin(), cfg.env.end());
  req.env.push_back("TERN_INVOCATION_ID=" + id);
  req.env.push_back("TERN_FUNCTION_VERSION=" + std::to_string(cfg.version));
  req.timeout = std::chrono::milliseconds(cfg.timeoutMs);
  req.limits = sandboxLimits(cfg);
  return req;
}

void Invoker::record(FunctionEntry& fn, const FunctionVersionConfig& cfg, const std::string& id,
                     const wasm::InvocationResult& r, int64_t startMs, int64_t queueWaitNs) {
  fn.queueWait->observe(static_cast<double>(queueWaitNs) / 1e9);
  fn.duration->observe(static_cast<double>(r.durationNs) / 1e9);
  fn.outcomes[static_cast<int>(r.outcome)]->inc();
  InvocationRecord rec{id,
                       cfg.version,
                       startMs,
                       r.durationNs / 1000,
                       queueWaitNs / 1000,
                       wasm::outcomeName(r.outcome),
                       r.exitCode,
                       r.detail};
  fn.log.add(std::move(rec), r.stderrData);
}

wasm::HostReply Invoker::invokeNested(const HostCaller& caller, std::string_view function,
                                      std::string_view input, std::string& output) {
  using wasm::HostReply;
  using wasm::HostStatus;
  auto fn = table_.find(std::string(function));
  auto active = fn ? fn->active() : nullptr;
  if (!active) {
    return HostReply::fail(HostStatus::kNotFound,
                           fmt::format("no function named {}", store::quoteUntrusted(function)));
  }
  const FunctionVersionConfig& cfg = active->config;
  int64_t startNs = wasm::monotonicNs();
  int64_t startMs = unixMs();
  if (caller.deadlineNs && startNs >= caller.deadlineNs) {
    return HostReply::fail(HostStatus::kTimeout, "the caller's deadline has passed");
  }
  std::string id = nextInvocationId();
  wasm::InvocationRequest req = makeRequest(cfg, {"TERN_CALLER=" + caller.function}, id);
  req.input = input;
  int64_t deadline = cfg.timeoutMs ? startNs + int64_t{cfg.timeoutMs} * 1000000 : 0;
  if (caller.deadlineNs && (!deadline || caller.deadlineNs < deadline)) {
    deadline = caller.deadlineNs;
  }
  HostContext host(*this, services_,
                   HostCaller{cfg.name, &active->capabilities, id, deadline, caller.depth + 1});
  req.deadlineNs = deadline;
  req.host = &host;

  fn->inFlight->add(1);
  wasm::InvocationResult r = engine_.invoke(active->module, req);
  fn->inFlight->add(-1);
  record(*fn, cfg, id, r, startMs, 0);
  output = std::move(r.stdoutData);

  std::string callee = fmt::format("function \"{}\" (invocation {})", cfg.name, id);
  switch (r.outcome) {
    case wasm::Outcome::kOk:
      return HostReply::ok();
    case wasm::Outcome::kExited:
      return HostReply::fail(HostStatus::kFailed,
                             fmt::format("{} exited with code {}", callee, r.exitCode));
    case wasm::Outcome::kTimeout:
      return HostReply::fail(
          HostStatus::kTimeout,
          fmt::format("{} timed out after {} ms ({})", callee, r.durationNs / 1000000,
                      deadline == caller.deadlineNs ? "the caller's deadline"
                                                    : "its own timeout"));
    default:
      return HostReply::fail(HostStatus::kFailed,
                             fmt::format("{} failed: {}: {}", callee,
                                         wasm::outcomeName(r.outcome), r.detail));
  }
}

}  // namespace tern::exec
