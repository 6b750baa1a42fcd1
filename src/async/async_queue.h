#pragma once
// Durable asynchronous invocations. enqueue() returns once the job is committed to
// <data>/queue.db (SQLite, WAL, synchronous=FULL); a dispatcher thread then runs due jobs
// through exec::Invoker (the path HTTP invocations take), at most `maxInFlight` at once,
// retries failures with capped, jittered exponential backoff, hands each final outcome to
// the delivery hook of the job's origin, and purges finished jobs after the retention
// period. Execution is at least once: a job that was running when the process died runs
// again after a restart. See docs/design/async.md.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "util/clock.h"
#include "util/random.h"
#include "async/retry_policy.h"
#include "exec/function_table.h"
#include "exec/invoker.h"
#include "util/error.h"
#include "util/metrics.h"

namespace tern::async {

struct JobRequest {
  std::string function;
  std::string body;                 // stdin
  std::vector<std::string> env;     // extra "KEY=VALUE" for the guest
  std::string idempotencyKey;       // empty: none; dedup is per function
  std::string callbackUrl;          // empty: none
  std::string origin = "http";      // "http", "mqtt", "cron": selects the delivery hook
  std::string meta;                 // opaque string (JSON) for the origin's delivery hook
};

struct Accepted {
  std::string id;
  bool duplicate = false;  // the idempotency key named an existing job: its id
};

enum class JobStatus { kQueued, kRunning, kSucceeded, kFailed };
const char* jobStatusName(JobStatus s);  // "queued", "running", "succeeded", "failed"

// Delivery of a final outcome to the job's origin (see AsyncQueue::Delivery).
enum class DeliveryState {
  kNone,       // no hook for the origin, or not final yet
  kPending,    // the outcome is final and waits for (another) delivery attempt
  kDelivered,
  kGaveUp,     // every delivery attempt failed; deliveryError says why
};
const char* deliveryStateName(DeliveryState s);  // "none", "pending", "delivered", "gave_up"

struct JobRecord {
  std::string id, function, origin, meta, idempotencyKey, callbackUrl;
  std::string body;
  std::vector<std::string> env;
  // What clients see: kRunning from the first attempt until the outcome is final and
  // delivered. The record a Delivery receives carries the final status.
  JobStatus status = JobStatus::kQueued;
  uint32_t attempts = 0;     // attempts started (an attempt cut short by a crash is not counted)
  uint32_t maxAttempts = 0;
  std::string output;        // stdout of the last attempt
  std::string errorCode;     // ErrorCode name of the last failed attempt; empty if none
  std::string errorMessage;
  int exitCode = -1;         // of the last attempt; -1: it did not exit (trap, timeout, never ran)
  int64_t createdMs = 0, updatedMs = 0, startedMs = 0, finishedMs = 0;  // 0: not yet
  int64_t nextAttemptMs = 0;  // when queued: not before this time
  DeliveryState delivery = DeliveryState::kNone;
  uint32_t deliveryAttempts = 0;
  std::string deliveryError;  // the last delivery failure
};

struct AsyncOptions {
  std::filesystem::path file;           // the queue database, normally <data>/queue.db
  RetryPolicy retry;                    // attempts of the function
  RetryPolicy deliveryRetry;            // attempts of the delivery hook
  uint32_t maxInFlight = 2;             // jobs running or waiting for a worker slot at once
  uint32_t maxDeliveriesInFlight = 4;   // delivery hooks running at once (each a thread)
  uint64_t maxPending = 100000;         // jobs not yet finished; more is kSaturated
  int64_t retentionMs = 24 * 3600 * 1000;  // finished jobs are kept this long
  int64_t purgeIntervalMs = 60 * 1000;
  // A job refused because the node was saturated is tried again after this delay
  // (jittered, no attempt used up).
  int64_t saturatedDelayMs = 200;
  // How long the idle dispatcher sleeps before it reads the clock again; it also wakes at
  // once for new jobs and finished attempts.
  std::chrono::milliseconds pollInterval{1000};
  // How long stop() waits for attempts and deliveries in flight.
  std::chrono::milliseconds stopTimeout{10000};
};

// The cluster's side of the queue (cluster/job_stream.h). Without it (a standalone node)
// every job runs here. With it, a due job is handed to the cluster's work queue while
// `ready()` says so, and runs here otherwise (NATS unreachable); a handed-off job's row
// stays here (state "handed off") and its record is read from the cluster.
struct ClusterLink {
  // Whether hand-offs can succeed now. Must not block.
  std::function<bool()> ready;
  // Publishes the job to the cluster (durably, de-duplicated by its id). `job.attempts`
  // counts the attempts it used here. Runs on a runner thread; may block (bounded). An
  // error keeps the job here and runs it locally.
  std::function<Result<void>(const JobRecord& job)> handOff;
  // The cluster's record of a job this node does not know or has handed off; nullopt
  // when there is none. Runs on the reading thread; may block (bounded).
  std::function<Result<std::optional<JobRecord>>(const std::string& id)> lookup;
  // Told of every job whose record changes here (attempt outcome, delivery, adoption),
  // on the dispatcher thread; must not block.
  std::function<void(const JobRecord& job)> changed;
};

struct AsyncDeps {
  exec::Invoker& invoker;
  exec::FunctionTable& table;  // enqueue checks that the function exists
  MetricsRegistry& metrics;
  const Clock& clock;
  RandomSource& random;
};

class AsyncQueue {
 public:
  // Delivery runs once a job's outcome is final (succeeded, or failed after its last
  // attempt). An error from it retries the delivery (not the function) later with backoff;
  // the job is reported finished only after delivery succeeded, or after delivery gave up
  // (then deliveryError records why). Runs on a delivery thread; may block (bounded).
  using Delivery = std::function<Result<void>(const JobRecord&)>;
  // Which jobs of an origin have something to deliver (the "http" origin: those with a
  // callback URL); unset: all of them. Evaluated on the dispatcher thread; must not block.
  using Wants = std::function<bool(const JobRecord&)>;

  // Opens (creating if needed) the database. Jobs found running go back to queued, jobs
  // found mid-delivery back to pending delivery. Errors: kIo.
  static Result<std::unique_ptr<AsyncQueue>> open(AsyncOptions options, AsyncDeps deps);
  ~AsyncQueue();
  AsyncQueue(const AsyncQueue&) = delete;
  AsyncQueue& operator=(const AsyncQueue&) = delete;

  // Registers the hook for jobs of `origin`; call before start(). Jobs of an origin
  // without a hook are finished as soon as their outcome is final.
  void setDelivery(const std::string& origin, Delivery d, Wants wants = {});

  // Functions this node serves without deploying them (a provider route sends their calls
  // elsewhere); their jobs are accepted like those of deployed functions. Call before start().
  void setRoutedFunctions(std::function<bool(std::string_view)> routed);

  // Checks the request and stores it durably. Errors: kInvalidArgument (bad name, env,
  // idempotency key or callback URL), kNotFound (no such function), kSaturated (maxPending
  // jobs wait already), kUnavailable (stopped), kIo.
  Result<Accepted> enqueue(JobRequest r);
  // The same without blocking the caller: `done` runs once the job is durable (on the
  // dispatcher thread) or at once when the request is refused.
  void enqueue(JobRequest r, std::function<void(Result<Accepted>)> done);

  // The job's record, or nullopt when there is no such job (never was, or purged). With a
  // cluster link, a job handed off or unknown here is looked up in the cluster.
  Result<std::optional<JobRecord>> get(const std::string& id);

  // Connects the queue to the cluster, or disconnects it (an empty link); may be called
  // at any time. Calls already made through the previous link may still be running.
  void setClusterLink(ClusterLink link);
  // Records the final outcome of a job that ran for the cluster (`job` carries its id,
  // function, origin, meta, callback URL and the last attempt's results), replacing the
  // row of a job handed off from here. The job's delivery hook then runs here as for a
  // local job. `done` runs on the dispatcher thread once the row is committed, with the
  // record as clients now see it. Errors: kUnavailable (stopped), kIo.
  void adopt(JobRecord job, JobStatus outcome, std::function<void(Result<JobRecord>)> done);

  Result<void> start();
  // No new dispatch; waits (up to stopTimeout) for attempts and deliveries in flight and
  // records their outcomes. Jobs still queued stay queued for the next start.
  void stop();

  struct Stats {
    uint64_t pending = 0;  // not finished
    uint32_t inFlight = 0;
    uint64_t handedOff = 0;  // jobs handed to the cluster since start
  };
  Stats stats() const;

  struct Impl;

 private:
  explicit AsyncQueue(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Checks an idempotency key: 1..128 printable ASCII characters without spaces.
Result<void> checkIdempotencyKey(std::string_view key);
// Checks a callback URL: http://HOST[:PORT][/PATH] (https is refused), at most 2048
// characters, no spaces or control characters.
Result<void> checkCallbackUrl(std::string_view url);

}  // namespace tern::async
