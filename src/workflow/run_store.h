#pragma once
// Durable workflow state in <data>/workflows.db (SQLite, WAL): deployed workflows, runs
// (input, definition, status, output) and finished tasks (where each ran, when, how long,
// attempts, outcome, output). Writes are group-committed: a writer thread takes every write
// queued since its last commit into one transaction, so a run of many tasks costs one fsync
// per batch, not one per task. Nothing on a run's path waits for the disk except the start
// of a run answered before it ends (an async run's 202): a task whose record a crash
// loses runs again when the run resumes (tasks run at least once), and a run whose start
// a crash loses was never answered. Reads first wait for the writes queued before them,
// so a run's trace read after its answer shows its end.

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "util/error.h"
#include "util/thread_annotations.h"

namespace tern {
class Database;
}

namespace tern::workflow {

struct WorkflowRecord {
  std::string name;
  std::string afcl;       // the YAML as deployed
  std::string types;      // the type mapping's JSON; empty: none
  std::string options;    // JSON: policy and limits (workflow_service.h)
  int64_t deployedMs = 0;
};

struct RunRecord {
  std::string id;
  std::string workflow;
  std::string definition;  // JSON of the WorkflowRecord the run follows
  std::string status;      // running, succeeded, failed
  std::string input;
  std::string output;
  std::string error;
  int64_t startedMs = 0;
  int64_t finishedMs = 0;
};

struct TaskRecord {
  std::string runId;
  std::string key;        // unique in the run: iteration path and task name
  std::string task;       // the function element's name
  std::string iteration;  // "parShift[3]", "" outside loops
  std::string resource;   // where it ran: "local", "node:ID", the Serverless URI
  int64_t startUs = 0;    // Unix time of the (last) attempt's start
  int64_t queueUs = 0;    // from ready to started (waiting for placement)
  int64_t durationUs = 0;  // as the workflow saw it: from start to answer
  int64_t execUs = -1;     // the function's own run time; -1: unknown (a Serverless endpoint)
  uint32_t attempts = 0;
  std::string outcome;    // ok, failed
  std::string output;     // the task's JSON output
  std::string error;
  std::string place;      // a planned workflow: "edge" or "cloud"; else empty
  int group = -1;         // a planned workflow: its cloud group (fused unit); -1: none
};

class RunStore {
 public:
  static Result<std::unique_ptr<RunStore>> open(const std::filesystem::path& file);
  ~RunStore();
  RunStore(const RunStore&) = delete;
  RunStore& operator=(const RunStore&) = delete;

  // Waits for the commit.
  Result<void> putWorkflow(const WorkflowRecord& w);
  Result<void> removeWorkflow(const std::string& name);  // with its finished runs
  enum class Durability { kWaitForDisk, kGroupCommit };
  Result<void> startRun(const RunRecord& r, Durability durability);
  // Group-committed; `committed` (optional) runs on the writer thread after the commit.
  void finishRun(const RunRecord& r, std::function<void(Result<void>)> committed);
  void putTask(TaskRecord t);
  // Removes runs that ended before `beforeMs` (Unix ms) with their tasks; group-committed.
  void purgeEndedBefore(int64_t beforeMs);

  Result<std::vector<WorkflowRecord>> workflows();
  Result<std::vector<RunRecord>> runs(const std::string& workflow, size_t limit);
  Result<std::optional<RunRecord>> run(const std::string& id);
  Result<std::vector<TaskRecord>> tasks(const std::string& runId);
  Result<std::vector<RunRecord>> unfinishedRuns();

  // Writes committed, batches (transactions) used: the group commit's effect.
  struct Stats {
    uint64_t writes = 0;
    uint64_t commits = 0;
  };
  Stats stats() const;

 private:
  explicit RunStore(std::unique_ptr<Database> db);
  struct Write {
    std::function<Result<void>(Database&)> apply;
    std::function<void(Result<void>)> committed;
  };
  void enqueue(Write w);
  Result<void> enqueueAndWait(std::function<Result<void>(Database&)> apply);
  // Waits until every write queued before the call is committed.
  Result<void> flush();
  void writerLoop();

  mutable Mutex dbMu_;
  std::unique_ptr<Database> db_ TERN_PT_GUARDED_BY(dbMu_);
  mutable Mutex queueMu_;
  std::condition_variable queueCv_;
  std::deque<Write> queue_ TERN_GUARDED_BY(queueMu_);
  bool stopping_ TERN_GUARDED_BY(queueMu_) = false;
  // A batch taken from queue_ is being committed.
  bool writing_ TERN_GUARDED_BY(queueMu_) = false;
  Stats stats_ TERN_GUARDED_BY(dbMu_);
  std::thread writer_;
};

}  // namespace tern::workflow
