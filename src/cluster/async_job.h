#pragma once
// Async jobs in a cluster (docs/design/cluster.md, "Async invocations"): the payloads of
// the two envelope kinds that carry them, and the attempt a delivery stands for. What
// follows an attempt is async::nextStep (async/retry_policy.h), the rule of the local
// queue too. No NATS and no clock here; job_stream.h moves these through JetStream.
//
// - kAsyncJob, a message of the TERN_ASYNC stream on tern.v1.async.<function>: a 4-byte
//   big-endian header length, a JSON header {id, fn, origin, meta, callback_url, env,
//   attempts, max_attempts, created_ms}, then the request body. `attempts` counts the
//   attempts the job used before it was handed to the cluster.
// - kAsyncRecord, the value of key <id> in the tern_jobs bucket: the same framing, a JSON
//   header {id, fn, origin, status, attempts, max_attempts, exit_code, error_code,
//   error_message, delivery, delivery_attempts, delivery_error, created_ms, updated_ms,
//   started_ms, finished_ms, next_attempt_ms, node, output_dropped, handed_back}, then the
//   output of the last attempt (dropped when it does not fit a NATS message).
//   `handed_back` counts the stream's deliveries of the job that used no attempt.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "async/async_queue.h"
#include "async/retry_policy.h"
#include "util/error.h"

namespace tern::cluster {

// A job as it travels in the stream.
struct AsyncJob {
  std::string id;
  std::string function;
  std::string origin, meta, callbackUrl;
  std::vector<std::string> env;
  std::string body;
  uint32_t attemptsBefore = 0;  // attempts used on the accepting node before the hand-off
  uint32_t maxAttempts = 1;
  int64_t createdMs = 0;
};

// The job of a queued record (its attempts so far count as attemptsBefore).
AsyncJob asyncJobFrom(const async::JobRecord& r);
std::string encodeAsyncJob(const AsyncJob& j);
// Errors (kInvalidArgument) name the field that is missing or wrong.
Result<AsyncJob> decodeAsyncJob(std::string_view payload);

// A job's record in the tern_jobs bucket, and the node that wrote it.
struct AsyncRecord {
  async::JobRecord job;  // body and env are not part of it
  std::string node;
  bool outputDropped = false;
  uint32_t handedBack = 0;  // deliveries that used no attempt (attemptOfDelivery)
};
// Encodes the record; when the result would exceed `maxBytes` the output is left out
// (outputDropped).
std::string encodeAsyncRecord(const AsyncRecord& r, size_t maxBytes);
Result<AsyncRecord> decodeAsyncRecord(std::string_view payload);

// Job ids are 1..64 lowercase hex digits (async_queue.cpp makes 24).
bool isValidJobId(std::string_view id);

// The attempt a delivery of the stream stands for: the attempts used before the hand-off
// plus the deliveries so far (NumDelivered, 1-based) that used one, i.e. less the
// deliveries handed back without using an attempt (`handedBack`: a busy or stopping node,
// async::nextStep). An attempt cut short by the death of the node that ran it counts,
// since the stream cannot tell it from a failure.
uint32_t attemptOfDelivery(uint32_t attemptsBefore, uint64_t numDelivered, uint32_t handedBack = 0);

}  // namespace tern::cluster
