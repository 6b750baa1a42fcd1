#pragma once
// The queue database (internal to src/async): one table of jobs in SQLite (WAL,
// synchronous=FULL), written only by the dispatcher thread through `writer` calls, read by
// get() through a second connection so status reads never wait behind an fsync.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "async/async_queue.h"
#include "util/sqlite.h"
#include "util/thread_annotations.h"

namespace tern::async {

// A job's row state. Clients see kDeliveryDue and kDelivering as "running".
enum class JobState : int {
  kQueued = 0,
  kRunning = 1,
  kDeliveryDue = 2,  // outcome final, delivery waits for nextAttemptMs
  kDelivering = 3,
  kSucceeded = 4,
  kFailed = 5,
  // Handed to the cluster's work queue (cluster/job_stream.h): finished here, its record
  // lives in the cluster. Clients see "queued" when the cluster cannot be asked.
  kHandedOff = 6,
};

struct StoredJob {
  JobRecord record;  // record.status is the client's view of `state`
  JobState state = JobState::kQueued;
  JobStatus outcome = JobStatus::kQueued;  // kSucceeded/kFailed once final
  JobRecord finalRecord() const;           // the record with the final status, for delivery
};

// The client's status for a row.
JobStatus clientStatus(JobState state);

struct NewJob {
  std::string id;
  JobRequest request;
  uint32_t maxAttempts = 0;
  int64_t nowMs = 0;
};

class JobStore {
 public:
  static Result<std::unique_ptr<JobStore>> open(const std::filesystem::path& file);

  // Inserts in one transaction; a request whose (function, idempotency key) exists already
  // gets the existing id with duplicate = true.
  Result<std::vector<Accepted>> insert(const std::vector<NewJob>& jobs);
  // Puts interrupted work back: running -> queued (attempts - 1), delivering -> delivery
  // due. Returns the number of jobs changed.
  Result<int64_t> recover(int64_t nowMs);
  Result<uint64_t> countUnfinished();
  // Marks up to `limit` due jobs in `from` as `to` (attempts + 1 when starting a run) and
  // returns them, oldest due first.
  Result<std::vector<StoredJob>> claim(JobState from, JobState to, int64_t nowMs, uint32_t limit);
  // Writes the state and outcome columns of each job, in one transaction.
  Result<void> update(const std::vector<StoredJob>& jobs);
  // Inserts jobs that ran for the cluster, or overwrites the state and outcome columns of
  // rows with the same id (a job handed off from here), in one transaction. Adopted rows
  // have no idempotency key, body or env.
  Result<void> adopt(const std::vector<StoredJob>& jobs);
  // The earliest due time of the jobs in `state` (kQueued or kDeliveryDue), if any.
  Result<std::optional<int64_t>> nextDueMs(JobState state);
  // Deletes finished jobs that finished before `cutoffMs`; returns how many.
  Result<int64_t> purge(int64_t cutoffMs);
  Result<std::optional<StoredJob>> get(const std::string& id);

 private:
  JobStore() = default;
  Result<StoredJob> readRow(Statement& s) const;

  Mutex writeMu_;  // the dispatcher is the only writer; the lock guards misuse
  std::unique_ptr<Database> writer_ TERN_PT_GUARDED_BY(writeMu_);
  Mutex readMu_;
  std::unique_ptr<Database> reader_ TERN_PT_GUARDED_BY(readMu_);
};

}  // namespace tern::async
