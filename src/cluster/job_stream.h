#pragma once
// Async invocations shared by the nodes of a cluster (docs/design/cluster.md, "Async
// invocations"): the JetStream work-queue stream TERN_ASYNC, a durable pull consumer per
// function, and the tern_jobs bucket of job records.
//
// A node accepts a job into its own queue.db first (the 202 answers after that commit,
// connected or not). While JetStream answers, the queue hands due jobs to the stream
// (AsyncQueue's ClusterLink, published with the job id as Nats-Msg-Id) instead of running
// them. Every node pulls from the consumers of the functions it serves, runs each job
// through its Invoker, and acks only after the outcome is recorded: a failed attempt is
// written to tern_jobs and nak'ed with the backoff delay (any node takes the retry); a
// final outcome is adopted into this node's queue.db (whose delivery hook then runs) and
// written to tern_jobs before the ack. A node that dies mid-job never acks, so the job is
// delivered again after the consumer's AckWait (the function's timeout + a margin).

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "cluster/nats_security.h"
#include "async/async_queue.h"
#include "util/clock.h"
#include "util/random.h"
#include "async/retry_policy.h"
#include "cluster/envelope.h"
#include "exec/function_table.h"
#include "exec/invoker.h"
#include "util/error.h"
#include "util/metrics.h"

namespace tern::cluster {

struct JobStreamOptions {
  std::string url;              // nats://HOST:PORT, as ClusterOptions::url
  NatsSecurity nats;  // TLS and credentials of the NATS connection (nats_options.h)
  std::string jetStreamDomain;  // as ClusterOptions::jetStreamDomain
  std::string nodeId;
  async::RetryPolicy retry;     // backoff between the attempts of cluster jobs
  int64_t busyDelayMs = 200;    // redelivery delay of a job this node was too busy to run
  // A consumer's AckWait is its function's timeout plus this margin (compile, queueing,
  // recording the outcome).
  std::chrono::milliseconds ackMargin{10000};
  std::chrono::milliseconds retention{24 * 3600 * 1000};  // TTL of the tern_jobs records
  uint32_t maxInFlight = 2;     // cluster jobs running here at once
  size_t maxMessageBytes = 8u << 20;  // stream messages and records larger are refused
};

struct JobStreamDeps {
  exec::Invoker& invoker;
  exec::FunctionTable& table;
  async::AsyncQueue& queue;
  MetricsRegistry& metrics;
  RandomSource& random;
  std::function<int64_t()> clock;  // Unix ms
};

class JobStream {
 public:
  JobStream(JobStreamOptions options, ClusterKey key, JobStreamDeps deps);
  ~JobStream();
  JobStream(const JobStream&) = delete;
  JobStream& operator=(const JobStream&) = delete;

  // Connects (in the background when NATS is unreachable), starts the worker thread and
  // links the async queue to the cluster. Errors: kInvalidArgument (bad URL), kUnavailable.
  Result<void> start();
  // Unlinks the queue, stops fetching, waits (bounded) for jobs running here, and closes
  // the connection. Jobs still running are redelivered elsewhere after their AckWait.
  void stop();

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace tern::cluster
