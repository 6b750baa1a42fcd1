#include "async/job_store.h"

#include <fmt/format.h>

#include <string_view>

namespace tern::async {

namespace {

// Version 2 adds the row state 6 (handed off to the cluster) to the same table; a tern
// that knows only version 1 refuses the database instead of misreading such rows.
constexpr int kSchemaVersion = 2;
constexpr int kBusyTimeoutMs = 10000;

// Guest input and output are stored as given (any bytes): SQLite keeps text values
// byte-for-byte, embedded NULs included, when the length is bound explicitly.
constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE jobs (
  id TEXT NOT NULL UNIQUE,
  function TEXT NOT NULL,
  origin TEXT NOT NULL,
  meta TEXT NOT NULL,
  idempotency_key TEXT NOT NULL,
  callback_url TEXT NOT NULL,
  body TEXT NOT NULL,
  env TEXT NOT NULL,
  state INTEGER NOT NULL,
  outcome INTEGER NOT NULL,
  attempts INTEGER NOT NULL,
  max_attempts INTEGER NOT NULL,
  next_attempt_ms INTEGER NOT NULL,
  output TEXT NOT NULL,
  error_code TEXT NOT NULL,
  error_message TEXT NOT NULL,
  exit_code INTEGER NOT NULL,
  delivery_state INTEGER NOT NULL,
  delivery_attempts INTEGER NOT NULL,
  delivery_error TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL,
  started_ms INTEGER NOT NULL,
  finished_ms INTEGER NOT NULL
);
CREATE UNIQUE INDEX jobs_by_idempotency_key ON jobs(function, idempotency_key)
  WHERE idempotency_key <> '';
CREATE INDEX jobs_by_due_time ON jobs(state, next_attempt_ms);
CREATE INDEX jobs_by_finish_time ON jobs(finished_ms) WHERE state >= 4;
)sql";

constexpr const char* kColumns =
    "id, function, origin, meta, idempotency_key, callback_url, body, env, state, outcome, "
    "attempts, max_attempts, next_attempt_ms, output, error_code, error_message, exit_code, "
    "delivery_state, delivery_attempts, delivery_error, created_ms, updated_ms, started_ms, "
    "finished_ms";

// Env entries never contain NUL (checked at enqueue), so NUL separates them.
std::string joinEnv(const std::vector<std::string>& env) {
  std::string out;
  for (size_t i = 0; i < env.size(); ++i) {
    if (i) out.push_back('\0');
    out += env[i];
  }
  return out;
}

std::vector<std::string> splitEnv(std::string_view s) {
  std::vector<std::string> out;
  if (s.empty()) return out;
  size_t start = 0;
  for (;;) {
    size_t nul = s.find('\0', start);
    out.emplace_back(s.substr(start, nul == std::string_view::npos ? s.npos : nul - start));
    if (nul == std::string_view::npos) return out;
    start = nul + 1;
  }
}

Error queueError(const Error& e) {
  return Error(e.code(), "queue database: " + e.message());
}

Result<std::unique_ptr<Database>> openConnection(const std::filesystem::path& file) {
  auto db = Database::open(file);
  if (!db) return db.error();
  for (std::string pragma : {std::string("PRAGMA synchronous = FULL"),
                             "PRAGMA busy_timeout = " + std::to_string(kBusyTimeoutMs)}) {
    if (auto r = (*db)->exec(pragma); !r) return r.error();
  }
  auto mode = (*db)->queryText("PRAGMA journal_mode = WAL");
  if (!mode) return mode.error();
  if (*mode != "wal") {
    return Error(ErrorCode::kIo, fmt::format("{}: cannot use WAL mode (got \"{}\")",
                                             file.string(), *mode));
  }
  return std::move(*db);
}

Result<void> migrate(Database& db, const std::filesystem::path& file) {
  auto tx = Transaction::begin(db);
  if (!tx) return tx.error();
  auto current = db.queryText("PRAGMA user_version");
  if (!current) return current.error();
  int version = std::stoi(*current);
  if (version > kSchemaVersion) {
    return Error(ErrorCode::kIo,
                 fmt::format("{} has schema version {}, newer than this tern ({}); refusing to "
                             "use it",
                             file.string(), version, kSchemaVersion));
  }
  if (version == 0) {
    if (auto r = db.exec(kSchemaV1); !r) return r.error();
  }
  if (version < kSchemaVersion) {
    if (auto r = db.exec("PRAGMA user_version = " + std::to_string(kSchemaVersion)); !r) {
      return r.error();
    }
  }
  return tx->commit();
}

}  // namespace

JobStatus clientStatus(JobState state) {
  switch (state) {
    case JobState::kQueued:
      return JobStatus::kQueued;
    case JobState::kSucceeded:
      return JobStatus::kSucceeded;
    case JobState::kFailed:
      return JobStatus::kFailed;
    case JobState::kHandedOff:
      return JobStatus::kQueued;
    case JobState::kRunning:
    case JobState::kDeliveryDue:
    case JobState::kDelivering:
      break;
  }
  return JobStatus::kRunning;
}

JobRecord StoredJob::finalRecord() const {
  JobRecord r = record;
  r.status = outcome;
  return r;
}

Result<std::unique_ptr<JobStore>> JobStore::open(const std::filesystem::path& file) {
  std::unique_ptr<JobStore> s(new JobStore());
  auto w = openConnection(file);
  if (!w) return queueError(w.error());
  s->writer_ = std::move(*w);
  {
    MutexLock lock(s->writeMu_);  // not shared yet; the lock keeps the analysis exact
    if (auto m = migrate(*s->writer_, file); !m) return queueError(m.error());
  }
  auto r = openConnection(file);
  if (!r) return queueError(r.error());
  s->reader_ = std::move(*r);
  return s;
}

Result<StoredJob> JobStore::readRow(Statement& s) const {
  StoredJob j;
  JobRecord& r = j.record;
  r.id = s.columnText(0);
  r.function = s.columnText(1);
  r.origin = s.columnText(2);
  r.meta = s.columnText(3);
  r.idempotencyKey = s.columnText(4);
  r.callbackUrl = s.columnText(5);
  r.body = s.columnText(6);
  r.env = splitEnv(s.columnText(7));
  int64_t state = s.columnInt(8);
  int64_t outcome = s.columnInt(9);
  if (state < 0 || state > 6 || !(outcome == 0 || outcome == 4 || outcome == 5)) {
    return Error(ErrorCode::kIo, fmt::format("queue database: job {} has an unknown state {}/{}",
                                             r.id, state, outcome));
  }
  j.state = static_cast<JobState>(state);
  j.outcome = outcome == 0 ? JobStatus::kQueued : clientStatus(static_cast<JobState>(outcome));
  r.status = clientStatus(j.state);
  r.attempts = static_cast<uint32_t>(s.columnInt(10));
  r.maxAttempts = static_cast<uint32_t>(s.columnInt(11));
  r.nextAttemptMs = s.columnInt(12);
  r.output = s.columnText(13);
  r.errorCode = s.columnText(14);
  r.errorMessage = s.columnText(15);
  r.exitCode = static_cast<int>(s.columnInt(16));
  int64_t delivery = s.columnInt(17);
  r.delivery = delivery >= 0 && delivery <= 3 ? static_cast<DeliveryState>(delivery)
                                              : DeliveryState::kNone;
  r.deliveryAttempts = static_cast<uint32_t>(s.columnInt(18));
  r.deliveryError = s.columnText(19);
  r.createdMs = s.columnInt(20);
  r.updatedMs = s.columnInt(21);
  r.startedMs = s.columnInt(22);
  r.finishedMs = s.columnInt(23);
  return j;
}

Result<std::vector<Accepted>> JobStore::insert(const std::vector<NewJob>& jobs) {
  MutexLock lock(writeMu_);
  Database& db = *writer_;
  auto tx = Transaction::begin(db);
  if (!tx) return queueError(tx.error());
  auto find = db.prepare("SELECT id FROM jobs WHERE function = ?1 AND idempotency_key = ?2");
  if (!find) return queueError(find.error());
  auto add = db.prepare(fmt::format(
      "INSERT INTO jobs ({}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0, 0, 0, ?9, ?10, '', '', "
      "'', -1, 0, 0, '', ?10, ?10, 0, 0)",
      kColumns));
  if (!add) return queueError(add.error());
  std::vector<Accepted> out;
  out.reserve(jobs.size());
  for (const NewJob& j : jobs) {
    const JobRequest& r = j.request;
    if (!r.idempotencyKey.empty()) {
      StatementUse use(*find);
      if (auto b = find->bindAll(std::string_view(r.function), std::string_view(r.idempotencyKey));
          !b) {
        return queueError(b.error());
      }
      auto step = find->step();
      if (!step) return queueError(step.error());
      if (*step == Statement::Step::kRow) {
        out.push_back(Accepted{find->columnText(0), true});
        continue;
      }
    }
    StatementUse use(*add);
    std::string env = joinEnv(r.env);
    auto b = add->bindAll(std::string_view(j.id), std::string_view(r.function),
                          std::string_view(r.origin), std::string_view(r.meta),
                          std::string_view(r.idempotencyKey), std::string_view(r.callbackUrl),
                          std::string_view(r.body), std::string_view(env),
                          static_cast<int64_t>(j.maxAttempts), j.nowMs);
    if (!b) return queueError(b.error());
    if (auto run = add->run(); !run) return queueError(run.error());
    out.push_back(Accepted{j.id, false});
  }
  if (auto c = tx->commit(); !c) return queueError(c.error());
  return out;
}

Result<int64_t> JobStore::recover(int64_t nowMs) {
  MutexLock lock(writeMu_);
  Database& db = *writer_;
  auto tx = Transaction::begin(db);
  if (!tx) return queueError(tx.error());
  int64_t changed = 0;
  const std::string sql[] = {
      "UPDATE jobs SET state = 0, attempts = MAX(attempts - 1, 0), next_attempt_ms = ?1, "
      "updated_ms = ?1 WHERE state = 1",
      "UPDATE jobs SET state = 2, next_attempt_ms = ?1, updated_ms = ?1 WHERE state = 3"};
  for (const auto& q : sql) {
    auto st = db.prepare(q);
    if (!st) return queueError(st.error());
    if (auto b = st->bind(1, nowMs); !b) return queueError(b.error());
    if (auto r = st->run(); !r) return queueError(r.error());
    changed += db.changes();
  }
  if (auto c = tx->commit(); !c) return queueError(c.error());
  return changed;
}

Result<uint64_t> JobStore::countUnfinished() {
  MutexLock lock(writeMu_);
  auto n = writer_->queryText("SELECT COUNT(*) FROM jobs WHERE state < 4");
  if (!n) return queueError(n.error());
  return static_cast<uint64_t>(std::stoull(*n));
}

Result<std::vector<StoredJob>> JobStore::claim(JobState from, JobState to, int64_t nowMs,
                                               uint32_t limit) {
  MutexLock lock(writeMu_);
  Database& db = *writer_;
  std::vector<StoredJob> out;
  if (limit == 0) return out;
  auto tx = Transaction::begin(db);
  if (!tx) return queueError(tx.error());
  {
    auto sel = db.prepare(fmt::format(
        "SELECT {} FROM jobs WHERE state = ?1 AND next_attempt_ms <= ?2 "
        "ORDER BY next_attempt_ms LIMIT ?3",
        kColumns));
    if (!sel) return queueError(sel.error());
    if (auto b = sel->bindAll(static_cast<int64_t>(from), nowMs, static_cast<int64_t>(limit));
        !b) {
      return queueError(b.error());
    }
    for (;;) {
      auto step = sel->step();
      if (!step) return queueError(step.error());
      if (*step == Statement::Step::kDone) break;
      auto row = readRow(*sel);
      if (!row) return row.error();
      out.push_back(std::move(*row));
    }
  }
  auto upd = db.prepare(
      "UPDATE jobs SET state = ?2, attempts = attempts + ?3, updated_ms = ?4, "
      "started_ms = CASE WHEN ?3 = 1 AND started_ms = 0 THEN ?4 ELSE started_ms END "
      "WHERE id = ?1");
  if (!upd) return queueError(upd.error());
  int64_t startsRun = to == JobState::kRunning ? 1 : 0;
  for (StoredJob& j : out) {
    StatementUse use(*upd);
    if (auto b = upd->bindAll(std::string_view(j.record.id), static_cast<int64_t>(to), startsRun,
                              nowMs);
        !b) {
      return queueError(b.error());
    }
    if (auto r = upd->run(); !r) return queueError(r.error());
    j.state = to;
    j.record.status = clientStatus(to);
    j.record.attempts += static_cast<uint32_t>(startsRun);
    j.record.updatedMs = nowMs;
    if (startsRun && j.record.startedMs == 0) j.record.startedMs = nowMs;
  }
  if (auto c = tx->commit(); !c) return queueError(c.error());
  return out;
}

Result<void> JobStore::update(const std::vector<StoredJob>& jobs) {
  MutexLock lock(writeMu_);
  Database& db = *writer_;
  if (jobs.empty()) return {};
  auto tx = Transaction::begin(db);
  if (!tx) return queueError(tx.error());
  auto upd = db.prepare(
      "UPDATE jobs SET state = ?2, outcome = ?3, attempts = ?4, next_attempt_ms = ?5, "
      "output = ?6, error_code = ?7, error_message = ?8, exit_code = ?9, delivery_state = ?10, "
      "delivery_attempts = ?11, delivery_error = ?12, updated_ms = ?13, finished_ms = ?14 "
      "WHERE id = ?1");
  if (!upd) return queueError(upd.error());
  for (const StoredJob& j : jobs) {
    const JobRecord& r = j.record;
    int64_t outcome = j.outcome == JobStatus::kSucceeded ? 4
                      : j.outcome == JobStatus::kFailed  ? 5
                                                         : 0;
    StatementUse use(*upd);
    auto b = upd->bindAll(std::string_view(r.id), static_cast<int64_t>(j.state), outcome,
                          static_cast<int64_t>(r.attempts), r.nextAttemptMs,
                          std::string_view(r.output), std::string_view(r.errorCode),
                          std::string_view(r.errorMessage), static_cast<int64_t>(r.exitCode),
                          static_cast<int64_t>(r.delivery),
                          static_cast<int64_t>(r.deliveryAttempts),
                          std::string_view(r.deliveryError), r.updatedMs, r.finishedMs);
    if (!b) return queueError(b.error());
    if (auto run = upd->run(); !run) return queueError(run.error());
  }
  if (auto c = tx->commit(); !c) return queueError(c.error());
  return {};
}

Result<void> JobStore::adopt(const std::vector<StoredJob>& jobs) {
  MutexLock lock(writeMu_);
  Database& db = *writer_;
  if (jobs.empty()) return {};
  auto tx = Transaction::begin(db);
  if (!tx) return queueError(tx.error());
  auto up = db.prepare(fmt::format(
      "INSERT INTO jobs ({}) VALUES (?1, ?2, ?3, ?4, '', ?5, '', '', ?6, ?7, ?8, ?9, ?10, ?11, "
      "?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21) "
      "ON CONFLICT(id) DO UPDATE SET state = excluded.state, outcome = excluded.outcome, "
      "attempts = excluded.attempts, next_attempt_ms = excluded.next_attempt_ms, "
      "output = excluded.output, error_code = excluded.error_code, "
      "error_message = excluded.error_message, exit_code = excluded.exit_code, "
      "delivery_state = excluded.delivery_state, delivery_attempts = excluded.delivery_attempts, "
      "delivery_error = excluded.delivery_error, updated_ms = excluded.updated_ms, "
      "started_ms = excluded.started_ms, finished_ms = excluded.finished_ms",
      kColumns));
  if (!up) return queueError(up.error());
  for (const StoredJob& j : jobs) {
    const JobRecord& r = j.record;
    int64_t outcome = j.outcome == JobStatus::kSucceeded ? 4
                      : j.outcome == JobStatus::kFailed  ? 5
                                                         : 0;
    StatementUse use(*up);
    auto b = up->bindAll(
        std::string_view(r.id), std::string_view(r.function), std::string_view(r.origin),
        std::string_view(r.meta), std::string_view(r.callbackUrl), static_cast<int64_t>(j.state),
        outcome, static_cast<int64_t>(r.attempts), static_cast<int64_t>(r.maxAttempts),
        r.nextAttemptMs, std::string_view(r.output), std::string_view(r.errorCode),
        std::string_view(r.errorMessage), static_cast<int64_t>(r.exitCode),
        static_cast<int64_t>(r.delivery), static_cast<int64_t>(r.deliveryAttempts),
        std::string_view(r.deliveryError), r.createdMs, r.updatedMs, r.startedMs, r.finishedMs);
    if (!b) return queueError(b.error());
    if (auto run = up->run(); !run) return queueError(run.error());
  }
  if (auto c = tx->commit(); !c) return queueError(c.error());
  return {};
}

Result<std::optional<int64_t>> JobStore::nextDueMs(JobState state) {
  MutexLock lock(writeMu_);
  auto st = writer_->prepare("SELECT MIN(next_attempt_ms) FROM jobs WHERE state = ?1");
  if (!st) return queueError(st.error());
  if (auto b = st->bind(1, static_cast<int64_t>(state)); !b) return queueError(b.error());
  auto step = st->step();
  if (!step) return queueError(step.error());
  if (*step != Statement::Step::kRow || st->columnIsNull(0)) {
    return std::optional<int64_t>();
  }
  return std::optional<int64_t>(st->columnInt(0));
}

Result<int64_t> JobStore::purge(int64_t cutoffMs) {
  MutexLock lock(writeMu_);
  auto st = writer_->prepare("DELETE FROM jobs WHERE state >= 4 AND finished_ms < ?1");
  if (!st) return queueError(st.error());
  if (auto b = st->bind(1, cutoffMs); !b) return queueError(b.error());
  if (auto r = st->run(); !r) return queueError(r.error());
  return writer_->changes();
}

Result<std::optional<StoredJob>> JobStore::get(const std::string& id) {
  MutexLock lock(readMu_);
  auto st = reader_->prepare(fmt::format("SELECT {} FROM jobs WHERE id = ?1", kColumns));
  if (!st) return queueError(st.error());
  if (auto b = st->bind(1, std::string_view(id)); !b) return queueError(b.error());
  auto step = st->step();
  if (!step) return queueError(step.error());
  if (*step != Statement::Step::kRow) return std::optional<StoredJob>();
  auto row = readRow(*st);
  if (!row) return row.error();
  return std::optional<StoredJob>(std::move(*row));
}

}  // namespace tern::async
