#include "async/async_queue.h"

#include <fmt/format.h>
#include <openssl/rand.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <future>
#include <map>
#include <mutex>
#include <thread>

#include "async/job_store.h"
#include "store/registry.h"
#include "util/work_queue.h"
#include "util/names.h"
#include "util/thread_annotations.h"

namespace tern::async {

const char* jobStatusName(JobStatus s) {
  switch (s) {
    case JobStatus::kQueued:
      return "queued";
    case JobStatus::kRunning:
      return "running";
    case JobStatus::kSucceeded:
      return "succeeded";
    case JobStatus::kFailed:
      return "failed";
  }
  return "unknown";
}

const char* deliveryStateName(DeliveryState s) {
  switch (s) {
    case DeliveryState::kNone:
      return "none";
    case DeliveryState::kPending:
      return "pending";
    case DeliveryState::kDelivered:
      return "delivered";
    case DeliveryState::kGaveUp:
      return "gave_up";
  }
  return "unknown";
}

Result<void> checkIdempotencyKey(std::string_view key) {
  constexpr size_t kMax = 128;
  if (key.empty() || key.size() > kMax) {
    return Error(ErrorCode::kInvalidArgument,
                 fmt::format("the idempotency key must be 1..{} characters, got {}", kMax,
                             key.size()));
  }
  for (char c : key) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) {
      return Error(ErrorCode::kInvalidArgument,
                   "the idempotency key must be printable ASCII without spaces");
    }
  }
  return {};
}

namespace {

// 96 random bits as 24 hex digits: unguessable, so ids can be handed out to clients.
Result<std::string> newJobId() {
  unsigned char raw[12];
  if (RAND_bytes(raw, sizeof raw) != 1) return Error(ErrorCode::kInternal, "no randomness");
  std::string id;
  for (unsigned char c : raw) id += fmt::format("{:02x}", c);
  return id;
}

Result<void> checkRequest(const JobRequest& r) {
  if (!isFunctionName(r.function)) {
    return Error(ErrorCode::kInvalidArgument,
                 fmt::format("invalid function name \"{}\"", r.function.substr(0, 64)));
  }
  for (const auto& kv : r.env) {
    size_t eq = kv.find('=');
    if (eq == 0 || eq == std::string::npos || kv.find('\0') != std::string::npos) {
      return Error(ErrorCode::kInvalidArgument,
                   fmt::format("env must be KEY=VALUE without NUL, got \"{}\"", kv.substr(0, 64)));
    }
  }
  if (!r.idempotencyKey.empty()) {
    if (auto ok = checkIdempotencyKey(r.idempotencyKey); !ok) return ok;
  }
  if (!r.callbackUrl.empty()) {
    if (auto ok = checkCallbackUrl(r.callbackUrl); !ok) return ok;
  }
  if (r.origin.empty() || r.origin.size() > 32) {
    return Error(ErrorCode::kInvalidArgument, "the origin must be 1..32 characters");
  }
  return {};
}

}  // namespace

struct AsyncQueue::Impl {
  Impl(AsyncOptions o, AsyncDeps d) : options(std::move(o)), deps(d) {}

  void run();
  void writeIntake(std::vector<std::pair<NewJob, std::function<void(Result<Accepted>)>>>& in);
  // Applies finished attempts, hand-offs and deliveries; returns false when the write
  // failed.
  bool writeOutcomes(std::vector<std::pair<StoredJob, exec::InvokeOutput>>& runs,
                     std::vector<StoredJob>& handed,
                     std::vector<std::pair<StoredJob, Result<void>>>& deliveries);
  using Adoption = std::pair<StoredJob, std::function<void(Result<JobRecord>)>>;
  void writeAdoptions(std::vector<Adoption>& in);
  // Counter increments of one batch of outcomes, applied once the batch is written.
  struct Tally {
    uint64_t retries = 0;
    uint64_t deliveryFailures = 0;
  };
  void finishAttempt(StoredJob& j, exec::InvokeOutput& out, int64_t now, Tally& tally);
  void finishDelivery(StoredJob& j, const Result<void>& result, int64_t now, Tally& tally);
  // The job's outcome is final: to delivery, or finished.
  void settle(StoredJob& j, JobStatus outcome, int64_t now);
  void dispatch(StoredJob job);
  void deliver(StoredJob job);
  uint32_t claimRuns(uint32_t free, int64_t now);
  uint32_t claimDeliveries(uint32_t free, int64_t now);

  const AsyncOptions options;
  AsyncDeps deps;
  std::function<bool(std::string_view)> routed;  // setRoutedFunctions
  std::unique_ptr<JobStore> store;
  struct Hook {
    Delivery deliver;
    Wants wants;
  };
  std::map<std::string, Hook> hooks;  // fixed before start()
  // The cluster's side (empty when standalone); replaced whole under linkMu, read as a copy.
  mutable Mutex linkMu;
  std::shared_ptr<const ClusterLink> link TERN_GUARDED_BY(linkMu) =
      std::make_shared<const ClusterLink>();
  std::shared_ptr<const ClusterLink> currentLink() const TERN_EXCLUDES(linkMu) {
    MutexLock lock(linkMu);
    return link;
  }

  Counter* enqueued = nullptr;
  Counter* succeeded = nullptr;
  Counter* failed = nullptr;
  Counter* retries = nullptr;
  Counter* deliveryFailures = nullptr;
  Counter* handedOffTotal = nullptr;
  Gauge* depth = nullptr;
  Gauge* inFlightGauge = nullptr;

  mutable Mutex mu;
  std::condition_variable wake;     // new intake, finished work, stop
  std::condition_variable drained;  // nothing in flight
  std::vector<std::pair<NewJob, std::function<void(Result<Accepted>)>>> intake
      TERN_GUARDED_BY(mu);
  std::vector<std::pair<StoredJob, exec::InvokeOutput>> finishedRuns TERN_GUARDED_BY(mu);
  std::vector<std::pair<StoredJob, Result<void>>> finishedDeliveries TERN_GUARDED_BY(mu);
  // Claimed jobs now in the cluster's work queue.
  std::vector<StoredJob> handedOff TERN_GUARDED_BY(mu);
  std::vector<Adoption> adoptions TERN_GUARDED_BY(mu);
  uint64_t handedOffSinceStart TERN_GUARDED_BY(mu) = 0;
  bool running TERN_GUARDED_BY(mu) = false;   // between start() and stop()
  bool stopping TERN_GUARDED_BY(mu) = false;  // no new dispatch
  bool abandon TERN_GUARDED_BY(mu) = false;   // stop() gave up waiting: the loop ends now
  uint32_t inFlight TERN_GUARDED_BY(mu) = 0;
  uint32_t deliveriesInFlight TERN_GUARDED_BY(mu) = 0;
  uint64_t pending TERN_GUARDED_BY(mu) = 0;  // committed jobs not finished
  int64_t nextPurgeMs = 0;                    // the loop's own

  std::unique_ptr<WorkQueue> runners;     // start invocations (small ones run right there)
  std::unique_ptr<WorkQueue> deliverers;  // run delivery hooks, which may block
  std::thread loop;
};

AsyncQueue::AsyncQueue(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

AsyncQueue::~AsyncQueue() { stop(); }

Result<std::unique_ptr<AsyncQueue>> AsyncQueue::open(AsyncOptions options, AsyncDeps deps) {
  if (options.maxInFlight == 0 || options.maxDeliveriesInFlight == 0 ||
      options.retry.maxAttempts == 0 || options.deliveryRetry.maxAttempts == 0) {
    return Error(ErrorCode::kInvalidArgument,
                 "async queue: in-flight limits and attempts must be at least 1");
  }
  auto impl = std::make_unique<Impl>(std::move(options), deps);
  auto s = JobStore::open(impl->options.file);
  if (!s) return s.error();
  impl->store = std::move(*s);
  auto recovered = impl->store->recover(deps.clock.nowMs());
  if (!recovered) return recovered.error();
  if (*recovered > 0) {
    spdlog::info("async queue: {} interrupted job(s) queued again", *recovered);
  }
  auto unfinished = impl->store->countUnfinished();
  if (!unfinished) return unfinished.error();
  {
    MutexLock lock(impl->mu);  // not shared yet; the lock keeps the analysis exact
    impl->pending = *unfinished;
  }

  MetricsRegistry& m = deps.metrics;
  impl->enqueued = &m.counter("tern_async_enqueued_total", "Async invocations accepted");
  impl->succeeded = &m.counter("tern_async_succeeded_total", "Async invocations that succeeded");
  impl->failed =
      &m.counter("tern_async_failed_total", "Async invocations that failed after their attempts");
  impl->retries = &m.counter("tern_async_retries_total", "Async attempts scheduled again");
  impl->deliveryFailures = &m.counter("tern_async_delivery_failures_total",
                                      "Failed delivery attempts of async outcomes (callbacks)");
  impl->handedOffTotal = &m.counter("tern_async_handed_off_total",
                                    "Async invocations handed to the cluster's work queue");
  impl->depth = &m.gauge("tern_async_queue_depth", "Async invocations not finished");
  impl->inFlightGauge = &m.gauge("tern_async_in_flight", "Async attempts running or admitted");
  impl->depth->set(static_cast<double>(*unfinished));
  return std::unique_ptr<AsyncQueue>(new AsyncQueue(std::move(impl)));
}

void AsyncQueue::setDelivery(const std::string& origin, Delivery d, Wants wants) {
  MutexLock lock(impl_->mu);
  impl_->hooks[origin] = Impl::Hook{std::move(d), std::move(wants)};
}

Result<void> AsyncQueue::start() {
  Impl& q = *impl_;
  MutexLock lock(q.mu);
  if (q.running || q.stopping) {
    return Error(ErrorCode::kInternal, "async queue: start() called twice");
  }
  q.running = true;
  q.runners = std::make_unique<WorkQueue>(q.options.maxInFlight);
  q.deliverers = std::make_unique<WorkQueue>(q.options.maxDeliveriesInFlight);
  q.loop = std::thread([&q] { q.run(); });
  return {};
}

void AsyncQueue::stop() {
  Impl& q = *impl_;
  {
    MutexLock lock(q.mu);
    if (!q.running) return;
    q.running = false;
    q.stopping = true;
    q.wake.notify_all();
    if (!lock.waitFor(q.drained, q.options.stopTimeout, [&]() TERN_REQUIRES(q.mu) {
          return q.inFlight == 0 && q.deliveriesInFlight == 0;
        })) {
      spdlog::warn("async queue: stopping with {} attempt(s) and {} delivery(ies) in flight; "
                   "they run again after a restart",
                   q.inFlight, q.deliveriesInFlight);
    }
    q.abandon = true;
    q.wake.notify_all();
  }
  q.loop.join();
  q.runners->stop();
  q.deliverers->stop();
}

AsyncQueue::Stats AsyncQueue::stats() const {
  MutexLock lock(impl_->mu);
  return Stats{impl_->pending, impl_->inFlight, impl_->handedOffSinceStart};
}

void AsyncQueue::setRoutedFunctions(std::function<bool(std::string_view)> routed) {
  impl_->routed = std::move(routed);
}

void AsyncQueue::enqueue(JobRequest r, std::function<void(Result<Accepted>)> done) {
  Impl& q = *impl_;
  if (auto ok = checkRequest(r); !ok) return done(ok.error());
  auto fn = q.deps.table.find(r.function);
  if ((!fn || !fn->active()) && !(q.routed && q.routed(r.function))) {
    return done(Error(ErrorCode::kNotFound, fmt::format("no function named \"{}\"", r.function)));
  }
  auto id = newJobId();
  if (!id) return done(id.error());
  NewJob job{std::move(*id), std::move(r), q.options.retry.maxAttempts, q.deps.clock.nowMs()};
  {
    MutexLock lock(q.mu);
    if (!q.running) {
      return done(Error(ErrorCode::kUnavailable, "the async queue is not running"));
    }
    if (q.pending + q.intake.size() >= q.options.maxPending) {
      return done(Error(ErrorCode::kSaturated,
                        fmt::format("{} async invocations are waiting already (the limit); "
                                    "retry later",
                                    q.pending + q.intake.size())));
    }
    q.intake.emplace_back(std::move(job), std::move(done));
  }
  q.wake.notify_all();
}

Result<Accepted> AsyncQueue::enqueue(JobRequest r) {
  std::promise<Result<Accepted>> promise;
  auto future = promise.get_future();
  enqueue(std::move(r), [&promise](Result<Accepted> a) { promise.set_value(std::move(a)); });
  return future.get();
}

Result<std::optional<JobRecord>> AsyncQueue::get(const std::string& id) {
  auto j = impl_->store->get(id);
  if (!j) return j.error();
  auto link = impl_->currentLink();
  bool askCluster = link->lookup && (!*j || (*j)->state == JobState::kHandedOff);
  if (askCluster) {
    auto remote = link->lookup(id);
    if (remote.ok() && *remote) {
      JobRecord r = std::move(**remote);
      if (*j) r.idempotencyKey = (*j)->record.idempotencyKey;
      return std::optional<JobRecord>(std::move(r));
    }
    if (!remote.ok()) {
      spdlog::debug("async queue: cluster record of job {} not readable: {}", id,
                    remote.error().describe());
    }
  }
  if (!*j) return std::optional<JobRecord>();
  return std::optional<JobRecord>(std::move((*j)->record));
}

void AsyncQueue::setClusterLink(ClusterLink link) {
  auto shared = std::make_shared<const ClusterLink>(std::move(link));
  MutexLock lock(impl_->linkMu);
  impl_->link = std::move(shared);
}

void AsyncQueue::adopt(JobRecord job, JobStatus outcome,
                       std::function<void(Result<JobRecord>)> done) {
  Impl& q = *impl_;
  StoredJob j;
  j.record = std::move(job);
  j.record.body.clear();
  j.record.env.clear();
  j.record.idempotencyKey.clear();
  j.outcome = outcome;
  {
    MutexLock lock(q.mu);
    if (!q.running) return done(Error(ErrorCode::kUnavailable, "the async queue is not running"));
    q.adoptions.emplace_back(std::move(j), std::move(done));
  }
  q.wake.notify_all();
}

void AsyncQueue::Impl::run() {
  MutexLock lock(mu);
  for (;;) {
    if (abandon) break;
    auto in = std::move(intake);
    intake.clear();
    auto runs = std::move(finishedRuns);
    finishedRuns.clear();
    auto dels = std::move(finishedDeliveries);
    finishedDeliveries.clear();
    auto handed = std::move(handedOff);
    handedOff.clear();
    auto adopted = std::move(adoptions);
    adoptions.clear();
    bool stopNow = stopping;
    uint32_t freeRuns = stopNow ? 0 : options.maxInFlight - inFlight;
    uint32_t freeDeliveries = stopNow ? 0 : options.maxDeliveriesInFlight - deliveriesInFlight;
    lock.unlock();

    bool healthy = true;
    if (!in.empty()) writeIntake(in);
    if (!adopted.empty()) writeAdoptions(adopted);
    if (!runs.empty() || !dels.empty() || !handed.empty()) {
      size_t nRuns = runs.size() + handed.size(), nDels = dels.size();
      healthy = writeOutcomes(runs, handed, dels);
      lock.lock();
      if (healthy) {
        inFlight -= static_cast<uint32_t>(nRuns);
        deliveriesInFlight -= static_cast<uint32_t>(nDels);
        inFlightGauge->set(inFlight);
        depth->set(static_cast<double>(pending));
        if (inFlight == 0 && deliveriesInFlight == 0) drained.notify_all();
      } else {
        // Nothing was written: keep the outcomes and try again after a pause.
        for (auto& r : runs) finishedRuns.push_back(std::move(r));
        for (auto& h : handed) handedOff.push_back(std::move(h));
        for (auto& d : dels) finishedDeliveries.push_back(std::move(d));
      }
      freeRuns = stopping ? 0 : options.maxInFlight - inFlight;
      freeDeliveries = stopping ? 0 : options.maxDeliveriesInFlight - deliveriesInFlight;
      lock.unlock();
    }

    int64_t now = deps.clock.nowMs();
    int64_t waitMs = options.pollInterval.count();
    if (healthy && freeRuns > 0) {
      // When every free slot got a job, more may be due: a finishing attempt wakes the loop.
      if (claimRuns(freeRuns, now) < freeRuns) {
        if (auto due = store->nextDueMs(JobState::kQueued); due && *due) {
          waitMs = std::min(waitMs, std::max<int64_t>(**due - now, 0));
        }
      }
    }
    if (healthy && freeDeliveries > 0) {
      if (claimDeliveries(freeDeliveries, now) < freeDeliveries) {
        if (auto due = store->nextDueMs(JobState::kDeliveryDue); due && *due) {
          waitMs = std::min(waitMs, std::max<int64_t>(**due - now, 0));
        }
      }
    }
    if (!stopNow && now >= nextPurgeMs) {
      auto purged = store->purge(now - options.retentionMs);
      if (!purged) {
        spdlog::error("async queue: purge failed: {}", purged.error().describe());
      } else if (*purged > 0) {
        spdlog::info("async queue: purged {} finished job(s) older than the retention", *purged);
      }
      nextPurgeMs = now + options.purgeIntervalMs;
    }
    if (!stopNow) waitMs = std::min(waitMs, std::max<int64_t>(nextPurgeMs - now, 0));
    if (!healthy) waitMs = options.pollInterval.count();

    lock.lock();
    if (abandon) break;
    bool haveWork = !intake.empty() || !finishedRuns.empty() || !finishedDeliveries.empty() ||
                    !handedOff.empty() || !adoptions.empty();
    if (stopping && inFlight == 0 && deliveriesInFlight == 0 && !haveWork) break;
    if ((haveWork && healthy) || waitMs <= 0) continue;
    lock.waitFor(wake, std::chrono::milliseconds(waitMs), [&]() TERN_REQUIRES(mu) {
      return abandon || (stopping && !stopNow) || !intake.empty() || !finishedRuns.empty() ||
             !finishedDeliveries.empty() || !handedOff.empty() || !adoptions.empty();
    });
  }
  // Requests that arrived while stopping but were never written are refused.
  auto left = std::move(intake);
  intake.clear();
  auto leftAdoptions = std::move(adoptions);
  adoptions.clear();
  lock.unlock();
  for (auto& [job, done] : left) {
    done(Error(ErrorCode::kUnavailable, "the async queue is stopping"));
  }
  for (auto& [job, done] : leftAdoptions) {
    done(Error(ErrorCode::kUnavailable, "the async queue is stopping"));
  }
}

void AsyncQueue::Impl::writeIntake(
    std::vector<std::pair<NewJob, std::function<void(Result<Accepted>)>>>& in) {
  std::vector<NewJob> jobs;
  jobs.reserve(in.size());
  for (auto& p : in) jobs.push_back(p.first);
  auto accepted = store->insert(jobs);
  if (!accepted) {
    spdlog::error("async queue: cannot store {} job(s): {}", in.size(),
                  accepted.error().describe());
    for (auto& p : in) p.second(accepted.error());
    return;
  }
  uint64_t added = 0;
  for (const auto& a : *accepted) added += a.duplicate ? 0 : 1;
  {
    MutexLock lock(mu);
    pending += added;
    depth->set(static_cast<double>(pending));
  }
  enqueued->inc(added);
  for (size_t i = 0; i < in.size(); ++i) in[i].second(std::move((*accepted)[i]));
}

void AsyncQueue::Impl::writeAdoptions(std::vector<Adoption>& in) {
  int64_t now = deps.clock.nowMs();
  std::vector<StoredJob> rows;
  rows.reserve(in.size());
  uint64_t unfinished = 0;
  for (auto& [job, done] : in) {
    StoredJob j = job;
    j.record.updatedMs = now;
    settle(j, j.outcome, now);
    unfinished += j.state == JobState::kDeliveryDue ? 1 : 0;
    rows.push_back(std::move(j));
  }
  if (auto ok = store->adopt(rows); !ok) {
    spdlog::error("async queue: cannot record {} outcome(s) from the cluster: {}", rows.size(),
                  ok.error().describe());
    for (auto& p : in) p.second(ok.error());
    return;
  }
  {
    MutexLock lock(mu);
    pending += unfinished;
    depth->set(static_cast<double>(pending));
  }
  for (const StoredJob& j : rows) {
    if (j.state == JobState::kSucceeded) succeeded->inc();
    if (j.state == JobState::kFailed) failed->inc();
  }
  auto cluster = currentLink();
  for (size_t i = 0; i < in.size(); ++i) {
    if (cluster->changed) cluster->changed(rows[i].record);
    in[i].second(rows[i].record);
  }
}

uint32_t AsyncQueue::Impl::claimRuns(uint32_t free, int64_t now) {
  auto jobs = store->claim(JobState::kQueued, JobState::kRunning, now, free);
  if (!jobs) {
    spdlog::error("async queue: cannot claim jobs: {}", jobs.error().describe());
    return 0;
  }
  {
    MutexLock lock(mu);
    inFlight += static_cast<uint32_t>(jobs->size());
    inFlightGauge->set(inFlight);
  }
  for (auto& j : *jobs) dispatch(std::move(j));
  return static_cast<uint32_t>(jobs->size());
}

uint32_t AsyncQueue::Impl::claimDeliveries(uint32_t free, int64_t now) {
  auto jobs = store->claim(JobState::kDeliveryDue, JobState::kDelivering, now, free);
  if (!jobs) {
    spdlog::error("async queue: cannot claim deliveries: {}", jobs.error().describe());
    return 0;
  }
  {
    MutexLock lock(mu);
    deliveriesInFlight += static_cast<uint32_t>(jobs->size());
  }
  for (auto& j : *jobs) deliver(std::move(j));
  return static_cast<uint32_t>(jobs->size());
}

void AsyncQueue::Impl::dispatch(StoredJob job) {
  runners->post([this, job = std::move(job)]() mutable {
    auto cluster = currentLink();
    if (cluster->handOff && cluster->ready && cluster->ready()) {
      JobRecord r = job.record;
      r.attempts -= 1;  // the attempt claimed for it does not run here
      if (auto ok = cluster->handOff(r); ok.ok()) {
        MutexLock lock(mu);
        handedOff.push_back(std::move(job));
        wake.notify_all();  // under mu: see the invoker's callback below
        return;
      } else {
        spdlog::debug("async queue: job {} runs here: {}", r.id, ok.error().describe());
      }
    }
    exec::InvokeInput in;
    in.function = job.record.function;
    in.body = std::move(job.record.body);
    in.env = Environment(job.record.env);
    in.env.add("TERN_ASYNC_ID", job.record.id);
    in.env.add("TERN_ATTEMPT", std::to_string(job.record.attempts));
    auto shared = std::make_shared<StoredJob>(std::move(job));
    // The callback runs on the invoker's thread, which outlives this queue. Once the entry
    // is in finishedRuns, the loop may count the attempt done and stop() may return and
    // destroy the queue, so the callback notifies before it lets go of mu and touches
    // nothing of the queue after that (ThreadSanitizer found a notify_all racing with the
    // condition variable's destruction).
    deps.invoker.invoke(std::move(in), [this, shared](exec::InvokeOutput out) {
      MutexLock lock(mu);
      finishedRuns.emplace_back(std::move(*shared), std::move(out));
      wake.notify_all();
    });
  });
}

void AsyncQueue::Impl::deliver(StoredJob job) {
  auto hook = hooks.find(job.record.origin);
  Delivery d = hook == hooks.end() ? Delivery() : hook->second.deliver;
  deliverers->post([this, d = std::move(d), job = std::move(job)]() mutable {
    Result<void> result;
    if (!d) {
      result = Error(ErrorCode::kUnavailable,
                     fmt::format("no delivery for origin \"{}\" on this node", job.record.origin));
    } else {
      try {
        result = d(job.finalRecord());
      } catch (const std::exception& e) {
        result = Error(ErrorCode::kInternal, fmt::format("delivery threw: {}", e.what()));
      }
    }
    MutexLock lock(mu);
    finishedDeliveries.emplace_back(std::move(job), std::move(result));
    wake.notify_all();  // under mu: see the invoker's callback in dispatch()
  });
}

void AsyncQueue::Impl::settle(StoredJob& j, JobStatus outcome, int64_t now) {
  j.outcome = outcome;
  auto hook = hooks.find(j.record.origin);
  if (hook != hooks.end() && (!hook->second.wants || hook->second.wants(j.finalRecord()))) {
    j.state = JobState::kDeliveryDue;
    j.record.delivery = DeliveryState::kPending;
    j.record.nextAttemptMs = now;
  } else {
    j.state = outcome == JobStatus::kSucceeded ? JobState::kSucceeded : JobState::kFailed;
    j.record.finishedMs = now;
  }
  j.record.status = clientStatus(j.state);
}

void AsyncQueue::Impl::finishAttempt(StoredJob& j, exec::InvokeOutput& out, int64_t now,
                                     Tally& tally) {
  JobRecord& r = j.record;
  r.updatedMs = now;
  if (out.ran) {
    r.output = std::move(out.result.stdoutData);
    r.exitCode = out.result.outcome == wasm::Outcome::kOk       ? 0
                 : out.result.outcome == wasm::Outcome::kExited ? out.result.exitCode
                                                                : -1;
  }
  // The rule shared with the cluster's job stream (retry_policy.h).
  NextStep step = nextStep(options.retry, options.saturatedDelayMs, r.attempts, r.maxAttempts,
                           attemptEndOf(out.error), deps.random.uniform());
  if (step.kind == NextStep::kSucceed) return settle(j, JobStatus::kSucceeded, now);
  auto requeue = [&](int64_t delayMs) {
    j.state = JobState::kQueued;
    r.status = JobStatus::kQueued;
    r.nextAttemptMs = now + delayMs;
  };
  if (step.kind == NextStep::kRetry && !step.usesAttempt) {
    // The node was full or is stopping: not the function's failure, so the attempt does
    // not count (a stopping node runs the job after the next start).
    r.attempts -= 1;
    return requeue(step.delayMs);
  }
  r.errorCode = std::string(errorKind(out.error->code()).name);
  r.errorMessage = out.error->message();
  if (step.kind == NextStep::kFail) return settle(j, JobStatus::kFailed, now);
  tally.retries += 1;
  requeue(step.delayMs);
}

void AsyncQueue::Impl::finishDelivery(StoredJob& j, const Result<void>& result, int64_t now,
                                      Tally& tally) {
  JobRecord& r = j.record;
  r.updatedMs = now;
  r.deliveryAttempts += 1;
  auto finish = [&](DeliveryState d) {
    r.delivery = d;
    j.state = j.outcome == JobStatus::kSucceeded ? JobState::kSucceeded : JobState::kFailed;
    r.status = j.outcome;
    r.finishedMs = now;
  };
  if (result.ok()) return finish(DeliveryState::kDelivered);
  tally.deliveryFailures += 1;
  r.deliveryError = result.error().describe();
  if (r.deliveryAttempts >= options.deliveryRetry.maxAttempts) {
    spdlog::warn("async queue: gave up delivering job {} after {} attempt(s): {}", r.id,
                 r.deliveryAttempts, r.deliveryError);
    return finish(DeliveryState::kGaveUp);
  }
  j.state = JobState::kDeliveryDue;
  r.nextAttemptMs = now + backoffMs(options.deliveryRetry, r.deliveryAttempts,
                                    deps.random.uniform());
}

bool AsyncQueue::Impl::writeOutcomes(std::vector<std::pair<StoredJob, exec::InvokeOutput>>& runs,
                                     std::vector<StoredJob>& handed,
                                     std::vector<std::pair<StoredJob, Result<void>>>& deliveries) {
  int64_t now = deps.clock.nowMs();
  std::vector<StoredJob> rows;
  rows.reserve(runs.size() + handed.size() + deliveries.size());
  for (const StoredJob& h : handed) {
    StoredJob j = h;
    j.state = JobState::kHandedOff;
    j.record.status = JobStatus::kQueued;
    j.record.attempts -= 1;
    j.record.updatedMs = now;
    j.record.finishedMs = now;  // purged with the finished jobs after the retention
    rows.push_back(std::move(j));
  }
  Tally tally;
  // Outcomes are computed on copies so a failed write can be retried from the originals.
  for (auto& [job, out] : runs) {
    StoredJob j = job;
    exec::InvokeOutput o = out;
    finishAttempt(j, o, now, tally);
    rows.push_back(std::move(j));
  }
  for (auto& [job, result] : deliveries) {
    StoredJob j = job;
    finishDelivery(j, result, now, tally);
    rows.push_back(std::move(j));
  }
  if (auto ok = store->update(rows); !ok) {
    spdlog::error("async queue: cannot record {} outcome(s): {}", rows.size(),
                  ok.error().describe());
    return false;
  }
  retries->inc(tally.retries);
  deliveryFailures->inc(tally.deliveryFailures);
  handedOffTotal->inc(handed.size());
  uint64_t done = handed.size();
  auto cluster = currentLink();
  for (const StoredJob& j : rows) {
    if (j.state == JobState::kSucceeded || j.state == JobState::kFailed) {
      ++done;
      (j.state == JobState::kSucceeded ? succeeded : failed)->inc();
    }
    if (cluster->changed && j.state != JobState::kHandedOff) cluster->changed(j.record);
  }
  MutexLock lock(mu);
  pending -= std::min(pending, done);
  handedOffSinceStart += handed.size();
  return true;
}

}  // namespace tern::async
