#include "workflow/run_store.h"

#include <fmt/format.h>

#include <future>

#include "util/sqlite.h"

namespace tern::workflow {

namespace {

constexpr int kBusyTimeoutMs = 5000;
constexpr size_t kMaxBatch = 4096;

const char* kSchema = R"(
CREATE TABLE IF NOT EXISTS workflows(
  name TEXT PRIMARY KEY, afcl TEXT NOT NULL, types TEXT NOT NULL, options TEXT NOT NULL,
  deployed_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS runs(
  id TEXT PRIMARY KEY, workflow TEXT NOT NULL, definition TEXT NOT NULL, status TEXT NOT NULL,
  input TEXT NOT NULL, output TEXT NOT NULL, error TEXT NOT NULL,
  started_ms INTEGER NOT NULL, finished_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS runs_by_workflow ON runs(workflow, started_ms);
CREATE INDEX IF NOT EXISTS runs_by_status ON runs(status, finished_ms);
CREATE TABLE IF NOT EXISTS tasks(
  run_id TEXT NOT NULL, key TEXT NOT NULL, task TEXT NOT NULL, iteration TEXT NOT NULL,
  resource TEXT NOT NULL, start_us INTEGER NOT NULL, queue_us INTEGER NOT NULL,
  duration_us INTEGER NOT NULL, exec_us INTEGER NOT NULL, attempts INTEGER NOT NULL, outcome TEXT NOT NULL,
  output TEXT NOT NULL, error TEXT NOT NULL, place TEXT NOT NULL, grp INTEGER NOT NULL,
  PRIMARY KEY(run_id, key));
)";

Result<void> exec(Database& db, const std::string& sql,
                  std::function<Result<void>(Statement&)> bind) {
  auto st = db.prepare(sql);
  if (!st.ok()) return st.error();
  if (auto b = bind(*st); !b.ok()) return b;
  return st->run();
}

RunRecord runFrom(Statement& s) {
  RunRecord r;
  r.id = s.columnText(0);
  r.workflow = s.columnText(1);
  r.definition = s.columnText(2);
  r.status = s.columnText(3);
  r.input = s.columnText(4);
  r.output = s.columnText(5);
  r.error = s.columnText(6);
  r.startedMs = s.columnInt(7);
  r.finishedMs = s.columnInt(8);
  return r;
}

constexpr const char* kRunColumns =
    "id, workflow, definition, status, input, output, error, started_ms, finished_ms";

}  // namespace

Result<std::unique_ptr<RunStore>> RunStore::open(const std::filesystem::path& file) {
  auto db = Database::open(file);
  if (!db.ok()) return db.error();
  for (std::string pragma : {std::string("PRAGMA synchronous = FULL"),
                             "PRAGMA busy_timeout = " + std::to_string(kBusyTimeoutMs)}) {
    if (auto ok = (*db)->exec(pragma); !ok.ok()) return ok.error();
  }
  auto mode = (*db)->queryText("PRAGMA journal_mode = WAL");
  if (!mode.ok()) return mode.error();
  if (auto ok = (*db)->exec(kSchema); !ok.ok()) return ok.error();
  return std::unique_ptr<RunStore>(new RunStore(std::move(*db)));
}

RunStore::RunStore(std::unique_ptr<Database> db) : db_(std::move(db)) {
  writer_ = std::thread([this] { writerLoop(); });
}

RunStore::~RunStore() {
  {
    MutexLock lock(queueMu_);
    stopping_ = true;
  }
  queueCv_.notify_all();
  writer_.join();
}

void RunStore::enqueue(Write w) {
  {
    MutexLock lock(queueMu_);
    queue_.push_back(std::move(w));
  }
  queueCv_.notify_one();
}

Result<void> RunStore::enqueueAndWait(std::function<Result<void>(Database&)> apply) {
  std::promise<Result<void>> done;
  auto f = done.get_future();
  enqueue(Write{std::move(apply), [&done](Result<void> r) { done.set_value(std::move(r)); }});
  return f.get();
}

void RunStore::writerLoop() {
  std::vector<Write> batch;
  while (true) {
    {
      MutexLock lock(queueMu_);
      lock.wait(queueCv_, [this]() TERN_REQUIRES(queueMu_) { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, everything written
      while (!queue_.empty() && batch.size() < kMaxBatch) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      writing_ = true;
    }
    // One transaction for the batch. A write that fails alone (say, a constraint) fails
    // only itself; a failed commit fails the batch.
    std::vector<Result<void>> results(batch.size());
    {
      MutexLock lock(dbMu_);
      auto tx = Transaction::begin(*db_);
      if (!tx.ok()) {
        for (auto& r : results) r = tx.error();
      } else {
        for (size_t i = 0; i < batch.size(); ++i) results[i] = batch[i].apply(*db_);
        if (auto c = tx->commit(); !c.ok()) {
          for (auto& r : results) r = c.error();
        }
      }
      stats_.writes += batch.size();
      stats_.commits += 1;
    }
    {
      MutexLock lock(queueMu_);
      writing_ = false;
    }
    for (size_t i = 0; i < batch.size(); ++i) {
      if (batch[i].committed) batch[i].committed(std::move(results[i]));
    }
    batch.clear();
  }
}

Result<void> RunStore::putWorkflow(const WorkflowRecord& w) {
  return enqueueAndWait([w](Database& db) {
    return exec(db,
                "INSERT INTO workflows(name, afcl, types, options, deployed_ms) VALUES(?,?,?,?,?) "
                "ON CONFLICT(name) DO UPDATE SET afcl=excluded.afcl, types=excluded.types, "
                "options=excluded.options, deployed_ms=excluded.deployed_ms",
                [&](Statement& s) { return s.bindAll(w.name, w.afcl, w.types, w.options, w.deployedMs); });
  });
}

Result<void> RunStore::removeWorkflow(const std::string& name) {
  return enqueueAndWait([name](Database& db) -> Result<void> {
    auto bindName = [&](Statement& s) { return s.bindAll(name); };
    if (auto r = exec(db, "DELETE FROM tasks WHERE run_id IN (SELECT id FROM runs WHERE workflow = ? AND status != 'running')", bindName); !r.ok()) return r;
    if (auto r = exec(db, "DELETE FROM runs WHERE workflow = ? AND status != 'running'", bindName); !r.ok()) return r;
    return exec(db, "DELETE FROM workflows WHERE name = ?", bindName);
  });
}

Result<void> RunStore::startRun(const RunRecord& r, Durability durability) {
  auto insert = [r](Database& db) {
    return exec(db, fmt::format("INSERT INTO runs({}) VALUES(?,?,?,?,?,?,?,?,?)", kRunColumns),
                [&](Statement& s) {
                  return s.bindAll(r.id, r.workflow, r.definition, r.status, r.input, r.output,
                                   r.error, r.startedMs, r.finishedMs);
                });
  };
  if (durability == Durability::kWaitForDisk) return enqueueAndWait(insert);
  enqueue(Write{insert, nullptr});
  return {};
}

Result<void> RunStore::flush() {
  {
    MutexLock lock(queueMu_);
    if (queue_.empty() && !writing_) return {};
  }
  return enqueueAndWait([](Database&) -> Result<void> { return {}; });
}

void RunStore::finishRun(const RunRecord& r, std::function<void(Result<void>)> committed) {
  enqueue(Write{[r](Database& db) {
                  return exec(db,
                              "UPDATE runs SET status = ?, output = ?, error = ?, finished_ms = ? "
                              "WHERE id = ?",
                              [&](Statement& s) {
                                return s.bindAll(r.status, r.output, r.error, r.finishedMs, r.id);
                              });
                },
                std::move(committed)});
}

void RunStore::putTask(TaskRecord t) {
  enqueue(Write{[t = std::move(t)](Database& db) {
                  return exec(db,
                              "INSERT OR REPLACE INTO tasks(run_id, key, task, iteration, resource, "
                              "start_us, queue_us, duration_us, exec_us, attempts, outcome, output, "
                              "error, place, grp) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                              [&](Statement& s) {
                                return s.bindAll(t.runId, t.key, t.task, t.iteration, t.resource,
                                                 t.startUs, t.queueUs, t.durationUs, t.execUs,
                                                 int64_t{t.attempts}, t.outcome, t.output, t.error,
                                                 t.place, int64_t{t.group});
                              });
                },
                nullptr});
}

void RunStore::purgeEndedBefore(int64_t beforeMs) {
  enqueue(Write{[beforeMs](Database& db) -> Result<void> {
                  auto bind = [&](Statement& s) { return s.bindAll(beforeMs); };
                  if (auto r = exec(db,
                                    "DELETE FROM tasks WHERE run_id IN (SELECT id FROM runs WHERE "
                                    "status != 'running' AND finished_ms < ?)",
                                    bind);
                      !r.ok()) {
                    return r;
                  }
                  return exec(db, "DELETE FROM runs WHERE status != 'running' AND finished_ms < ?", bind);
                },
                nullptr});
}

Result<std::vector<WorkflowRecord>> RunStore::workflows() {
  if (auto ok = flush(); !ok.ok()) return ok.error();
  MutexLock lock(dbMu_);
  auto st = db_->prepare("SELECT name, afcl, types, options, deployed_ms FROM workflows ORDER BY name");
  if (!st.ok()) return st.error();
  std::vector<WorkflowRecord> out;
  while (true) {
    auto step = st->step();
    if (!step.ok()) return step.error();
    if (*step == Statement::Step::kDone) break;
    out.push_back(WorkflowRecord{st->columnText(0), st->columnText(1), st->columnText(2),
                                 st->columnText(3), st->columnInt(4)});
  }
  return out;
}

namespace {

Result<std::vector<RunRecord>> queryRuns(Database& db, const std::string& sql,
                                         const std::function<Result<void>(Statement&)>& bind) {
  auto st = db.prepare(sql);
  if (!st.ok()) return st.error();
  if (auto b = bind(*st); !b.ok()) return b.error();
  std::vector<RunRecord> out;
  while (true) {
    auto step = st->step();
    if (!step.ok()) return step.error();
    if (*step == Statement::Step::kDone) break;
    out.push_back(runFrom(*st));
  }
  return out;
}

}  // namespace

Result<std::vector<RunRecord>> RunStore::runs(const std::string& workflow, size_t limit) {
  if (auto ok = flush(); !ok.ok()) return ok.error();
  MutexLock lock(dbMu_);
  return queryRuns(*db_,
                   fmt::format("SELECT {} FROM runs WHERE workflow = ? ORDER BY started_ms DESC, id DESC LIMIT ?", kRunColumns),
                   [&](Statement& s) { return s.bindAll(workflow, static_cast<int64_t>(limit)); });
}

Result<std::optional<RunRecord>> RunStore::run(const std::string& id) {
  if (auto ok = flush(); !ok.ok()) return ok.error();
  MutexLock lock(dbMu_);
  auto rs = queryRuns(*db_, fmt::format("SELECT {} FROM runs WHERE id = ?", kRunColumns),
                      [&](Statement& s) { return s.bindAll(id); });
  if (!rs.ok()) return rs.error();
  if (rs->empty()) return std::optional<RunRecord>();
  return std::optional<RunRecord>(std::move(rs->front()));
}

Result<std::vector<RunRecord>> RunStore::unfinishedRuns() {
  MutexLock lock(dbMu_);
  return queryRuns(*db_,
                   fmt::format("SELECT {} FROM runs WHERE status = 'running' ORDER BY started_ms", kRunColumns),
                   [](Statement&) -> Result<void> { return {}; });
}

Result<std::vector<TaskRecord>> RunStore::tasks(const std::string& runId) {
  if (auto ok = flush(); !ok.ok()) return ok.error();
  MutexLock lock(dbMu_);
  auto st = db_->prepare(
      "SELECT run_id, key, task, iteration, resource, start_us, queue_us, duration_us, exec_us, "
      "attempts, outcome, output, error, place, grp FROM tasks WHERE run_id = ? ORDER BY start_us, key");
  if (!st.ok()) return st.error();
  if (auto b = st->bindAll(runId); !b.ok()) return b.error();
  std::vector<TaskRecord> out;
  while (true) {
    auto step = st->step();
    if (!step.ok()) return step.error();
    if (*step == Statement::Step::kDone) break;
    TaskRecord t;
    t.runId = st->columnText(0);
    t.key = st->columnText(1);
    t.task = st->columnText(2);
    t.iteration = st->columnText(3);
    t.resource = st->columnText(4);
    t.startUs = st->columnInt(5);
    t.queueUs = st->columnInt(6);
    t.durationUs = st->columnInt(7);
    t.execUs = st->columnInt(8);
    t.attempts = static_cast<uint32_t>(st->columnInt(9));
    t.outcome = st->columnText(10);
    t.output = st->columnText(11);
    t.error = st->columnText(12);
    t.place = st->columnText(13);
    t.group = static_cast<int>(st->columnInt(14));
    out.push_back(std::move(t));
  }
  return out;
}

RunStore::Stats RunStore::stats() const {
  MutexLock lock(dbMu_);
  return stats_;
}

}  // namespace tern::workflow
