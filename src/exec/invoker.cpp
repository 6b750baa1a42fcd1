#include "exec/invoker.h"

#include <fmt/format.h>

#include <chrono>
#include <random>

namespace tern::exec {

namespace {
int64_t unixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}
}  // namespace

Invoker::Invoker(wasm::Engine& engine, Executor& executor, FunctionTable& table, Post post)
    : engine_(engine),
      executor_(executor),
      table_(table),
      post_(std::move(post)),
      idPrefix_(static_cast<uint32_t>(std::random_device{}())) {}

std::string Invoker::nextInvocationId() {
  return fmt::format("{:08x}{:012x}", idPrefix_, idCounter_.fetch_add(1) + 1);
}

void Invoker::invoke(InvokeInput input, std::function<void(InvokeOutput)> done) {
  InvokeOutput out;
  out.invocationId = nextInvocationId();
  auto fn = table_.find(input.function);
  if (!fn || !fn->active()) {
    out.error = Error(ErrorCode::kNotFound, fmt::format("no function named \"{}\"", input.function));
    return done(std::move(out));
  }
  int64_t queuedAt = wasm::monotonicNs();
  // The common case allocates nothing: a free slot and a short function run right here.
  Admission a = executor_.tryRunNow(fn->admission);
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
  if (a == Admission::kQueued) a = executor_.admit(fn->admission, runDeferred);
  switch (a) {
    case Admission::kRunNow:
      return runDeferred();
    case Admission::kQueued:
      return;  // runDeferred runs when a slot frees up
    case Admission::kRejected:
      fn->outcomes[FunctionEntry::kRejected]->inc();
      out.error = Error(ErrorCode::kSaturated, "the node is at capacity; retry shortly");
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

  wasm::InvocationRequest req;
  req.input = input.body;
  req.args = {cfg.name};
  req.env = std::move(input.env);
  req.env.insert(req.env.end(), cfg.env.begin(), cfg.env.end());
  req.env.push_back("TERN_INVOCATION_ID=" + id);
  req.env.push_back("TERN_FUNCTION_VERSION=" + std::to_string(cfg.version));
  req.timeout = std::chrono::milliseconds(cfg.timeoutMs);
  req.limits.memoryPages = cfg.memoryMb * 16;

  fn->inFlight->add(1);
  out.result = engine_.invoke(active->module, req);
  fn->inFlight->add(-1);
  fn->recordDuration(out.result.durationNs);
  executor_.finish(fn->admission);
  out.ran = true;

  const auto& r = out.result;
  fn->queueWait->observe(static_cast<double>(startNs - queuedAtNs) / 1e9);
  fn->duration->observe(static_cast<double>(r.durationNs) / 1e9);
  fn->outcomes[static_cast<int>(r.outcome)]->inc();
  out.error = r.error();
  if (!out.error && r.outcome == wasm::Outcome::kExited) {
    out.error = Error(ErrorCode::kFunctionFailed,
                      fmt::format("the function exited with code {}", r.exitCode));
  }
  InvocationRecord record{id,
                          cfg.version,
                          startMs,
                          r.durationNs / 1000,
                          (startNs - queuedAtNs) / 1000,
                          wasm::outcomeName(r.outcome),
                          r.exitCode,
                          r.detail};
  fn->log.add(std::move(record), r.stderrData);
  done(std::move(out));
}

}  // namespace tern::exec
