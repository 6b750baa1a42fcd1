#include "exec/invoker.h"

#include <fmt/format.h>

#include <array>
#include <chrono>
#include <cstring>
#include <random>

#include "util/quote.h"
#include "util/clock.h"

namespace tern::exec {


Invoker::Invoker(wasm::Engine& engine, Executor& executor, FunctionTable& table, Post post,
                 HostServices services)
    : engine_(engine),
      executor_(executor),
      table_(table),
      post_(std::move(post)),
      services_(std::move(services)),
      idPrefix_(static_cast<uint32_t>(std::random_device{}())) {}

std::string Invoker::nextInvocationId() {
  // "%08x%012x" of the node's prefix and the counter, written directly (on every request),
  // two hex digits at a time.
  static constexpr auto kHexPairs = [] {
    std::array<char, 512> t{};
    constexpr char kHex[] = "0123456789abcdef";
    for (size_t i = 0; i < 256; ++i) {
      t[2 * i] = kHex[i >> 4];
      t[2 * i + 1] = kHex[i & 0xf];
    }
    return t;
  }();
  uint64_t n = idCounter_.fetch_add(1) + 1;
  if (n >> 48) return fmt::format("{:08x}{:012x}", idPrefix_, n);
  std::string id(20, '0');
  auto put = [&](size_t at, uint64_t value, int bytes) {
    for (int i = bytes - 1; i >= 0; --i, ++at) {
      std::memcpy(&id[2 * at], &kHexPairs[2 * ((value >> (8 * i)) & 0xff)], 2);
    }
  };
  put(0, idPrefix_, 4);
  put(4, n, 6);
  return id;
}

void Invoker::invoke(InvokeInput&& input, std::function<void(InvokeOutput)> done) {
  if (router_ && !input.routed && input.hops == 0 && input.device.empty() && router_(input, done)) return;
  InvokeOutput out;
  out.invocationId = nextInvocationId();
  auto fn = table_.find(input.function);
  std::shared_ptr<const ActiveVersion> active = fn ? fn->active() : nullptr;
  if (!active) {
    if (remote_ && input.device.empty() && remote_(input, done, Elsewhere::kNotHere)) return;
    out.error = Error(ErrorCode::kNotFound, fmt::format("no function named \"{}\"", input.function));
    return done(std::move(out));
  }
  // The executor's clock (CLOCK_MONOTONIC in a node, like the engine's): arrival times
  // feed its estimates and deadlines.
  int64_t queuedAt = executor_.now();
  // The common case allocates nothing: a free slot and a short function run right here.
  Admission a = executor_.tryRunNow(fn->admission, queuedAt);
  if (a == Admission::kRunNow && fn->runsInline()) {
    // It starts now: on CLOCK_MONOTONIC (the engine's clock too) its arrival is its start.
    return done(runVersion(*fn, *active, std::move(input.env), input.body,
                           std::move(out.invocationId), queuedAt, input.device,
                           executor_.onMonotonicClock() ? queuedAt : 0));
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
      if (remote_ && deferred->first.device.empty() &&
          remote_(deferred->first, deferred->second, Elsewhere::kSaturated)) {
        return;
      }
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
  auto active = fn->active();
  if (!active) {  // removed while waiting
    executor_.finish(fn->admission);
    InvokeOutput out;
    out.invocationId = id;
    out.error = Error(ErrorCode::kNotFound, fmt::format("no function named \"{}\"", fn->name));
    return done(std::move(out));
  }
  done(runVersion(*fn, *active, std::move(input.env), input.body, id, queuedAtNs, input.device));
}

InvokeOutput Invoker::runVersion(FunctionEntry& fn, const ActiveVersion& active,
                                 Environment env, std::string_view body, std::string id,
                                 int64_t queuedAtNs, const std::string& device,
                                 int64_t startNs) {
  InvokeOutput out;
  const FunctionVersionConfig& cfg = active.config;
  out.version = cfg.version;
  if (!startNs) startNs = wasm::monotonicNs();
  int64_t startMs = unixMillis();

  wasm::InvocationRequest req = makeRequest(active, std::move(env), id);
  req.input = body;
  HostContext host(*this, services_,
                   HostCaller{cfg.name, &active.capabilities, id,
                              cfg.timeoutMs ? startNs + int64_t{cfg.timeoutMs} * 1000000 : 0, 0,
                              device});
  req.deadlineNs = host.caller().deadlineNs;
  req.startNs = startNs;
  req.host = &host;

  fn.inFlight->add(1);
  out.result = engine_.invoke(active.module, req);
  fn.inFlight->add(-1);
  fn.recordDuration(out.result.durationNs);
  if (queuedAtNs >= 0) {
    // The engine's end of the invocation, on CLOCK_MONOTONIC, is the executor's now.
    int64_t endNs = executor_.onMonotonicClock() ? startNs + out.result.durationNs : 0;
    executor_.finish(fn.admission, queuedAtNs, out.result.durationNs, endNs);
  }
  out.ran = true;

  const auto& r = out.result;
  record(fn, cfg, id, r, startMs, queuedAtNs >= 0 ? startNs - queuedAtNs : 0);
  out.invocationId = std::move(id);
  out.error = r.error();
  if (!out.error && r.outcome == wasm::Outcome::kExited) {
    out.error = Error(ErrorCode::kFunctionFailed,
                      fmt::format("the function exited with code {}", r.exitCode));
  }
  return out;
}

void Invoker::invokeFused(FusedInput input, std::function<void(FusedOutput)> done) {
  std::vector<std::shared_ptr<FunctionEntry>> fns;
  for (const auto& name : input.functions) {
    auto fn = table_.find(name);
    if (!fn || !fn->active()) {
      FusedOutput out;
      out.error = Error(ErrorCode::kNotFound, fmt::format("no function named \"{}\"", name));
      return done(std::move(out));
    }
    fns.push_back(std::move(fn));
  }
  if (fns.empty()) {
    FusedOutput out;
    out.error = Error(ErrorCode::kInvalidArgument, "a fused unit needs at least one function");
    return done(std::move(out));
  }
  std::shared_ptr<FunctionEntry> first = fns.front();
  int64_t queuedAt = executor_.now();
  Admission a = executor_.tryRunNow(first->admission, queuedAt);
  auto state = std::make_shared<std::tuple<std::vector<std::shared_ptr<FunctionEntry>>, FusedInput,
                                           std::function<void(FusedOutput)>>>(
      std::move(fns), std::move(input), std::move(done));
  auto start = [this, state] {
    post_([this, state] {
      runFused(std::get<0>(*state), std::get<1>(*state), std::get<2>(*state));
    });
  };
  auto refuse = [state](Refusal why) {
    const auto& fn = std::get<0>(*state).front();
    fn->outcomes[FunctionEntry::kRejected]->inc();
    FusedOutput out;
    out.error = refusalError(why, fn->admission.sloMs.load(std::memory_order_relaxed));
    std::get<2>(*state)(std::move(out));
  };
  Refusal why = Refusal::kQueueFull;
  if (a == Admission::kQueued) a = executor_.admit(first->admission, queuedAt, start, refuse, &why);
  switch (a) {
    case Admission::kRunNow:
      return start();
    case Admission::kQueued:
      return;
    case Admission::kRejected:
      return refuse(why);
    case Admission::kStopped: {
      FusedOutput out;
      out.error = Error(ErrorCode::kUnavailable, "the node is shutting down");
      return std::get<2>(*state)(std::move(out));
    }
  }
}

void Invoker::runFused(const std::vector<std::shared_ptr<FunctionEntry>>& fns, FusedInput& input,
                       std::function<void(FusedOutput)>& done) {
  FusedOutput out;
  for (size_t i = 0; i < fns.size() && !out.error; ++i) {
    FunctionEntry& fn = *fns[i];
    auto active = fn.active();
    std::string id = nextInvocationId();
    if (!active) {
      out.error = Error(ErrorCode::kNotFound, fmt::format("no function named \"{}\"", fn.name));
      break;
    }
    auto body = input.input ? input.input(i, out.members) : Result<std::string>(std::string());
    if (!body.ok()) {
      out.error = body.error();
      break;
    }
    // The slot's release waits for the unit's end; the members are recorded as they end.
    out.members.push_back(runVersion(fn, *active, input.env, *body, std::move(id), -1));
    if (out.members.back().error) out.error = out.members.back().error;
  }
  // Released without feeding the first member's estimates: the unit is not one of its
  // invocations.
  executor_.finish(fns.front()->admission);
  done(std::move(out));
}

wasm::InvocationRequest Invoker::makeRequest(const ActiveVersion& active, Environment extraEnv,
                                             const std::string& id) {
  const FunctionVersionConfig& cfg = active.config;
  wasm::InvocationRequest req;
  req.args = {cfg.name};
  req.env = std::move(extraEnv);
  req.env.append(active.env);
  req.env.add("TERN_INVOCATION_ID", id);
  req.timeout = std::chrono::milliseconds(cfg.timeoutMs);
  req.limits = sandboxLimits(cfg);
  return req;
}

void Invoker::record(FunctionEntry& fn, const FunctionVersionConfig& cfg, const std::string& id,
                     const wasm::InvocationResult& r, int64_t startMs, int64_t queueWaitNs) {
  fn.queueWait->observe(static_cast<double>(queueWaitNs) / 1e9);
  fn.duration->observe(static_cast<double>(r.durationNs) / 1e9);
  fn.outcomes[static_cast<int>(r.outcome)]->inc();
  // Assigned field by field into the thread's own record, whose strings keep their memory
  // from one invocation to the next; the log copies it into its ring the same way.
  thread_local InvocationRecord rec;
  rec.id = id;
  rec.version = cfg.version;
  rec.startMs = startMs;
  rec.durationUs = r.durationNs / 1000;
  rec.queueWaitUs = queueWaitNs / 1000;
  rec.outcome = wasm::outcomeName(r.outcome);
  rec.exitCode = r.exitCode;
  rec.detail = r.detail;
  fn.log.add(rec, r.stderrData);
}

wasm::HostReply Invoker::invokeNested(const HostCaller& caller, std::string_view function,
                                      std::string_view input, std::string& output) {
  using wasm::HostReply;
  using wasm::HostStatus;
  auto fn = table_.find(std::string(function));
  auto active = fn ? fn->active() : nullptr;
  if (!active) {
    return HostReply::fail(HostStatus::kNotFound,
                           fmt::format("no function named {}", quoteUntrusted(function)));
  }
  const FunctionVersionConfig& cfg = active->config;
  int64_t startNs = wasm::monotonicNs();
  int64_t startMs = unixMillis();
  if (caller.deadlineNs && startNs >= caller.deadlineNs) {
    return HostReply::fail(HostStatus::kTimeout, "the caller's deadline has passed");
  }
  std::string id = nextInvocationId();
  Environment env;
  env.add("TERN_CALLER", caller.function);
  wasm::InvocationRequest req = makeRequest(*active, std::move(env), id);
  req.input = input;
  int64_t deadline = cfg.timeoutMs ? startNs + int64_t{cfg.timeoutMs} * 1000000 : 0;
  if (caller.deadlineNs && (!deadline || caller.deadlineNs < deadline)) {
    deadline = caller.deadlineNs;
  }
  HostContext host(*this, services_,
                   HostCaller{cfg.name, &active->capabilities, id, deadline, caller.depth + 1,
                              caller.device});
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
