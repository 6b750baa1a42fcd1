#include "events/run_log.h"

#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "util/quote.h"
#include "util/sqlite.h"

namespace tern::events {

namespace {

constexpr int kSchemaVersion = 1;

constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE IF NOT EXISTS schedule_runs (
  id      TEXT PRIMARY KEY,
  spec    TEXT NOT NULL,
  last_ms INTEGER NOT NULL
) WITHOUT ROWID;
PRAGMA user_version = 1;
)sql";

// An error of the schedule database: what was being done and SQLite's own message.
Error failure(const std::string& path, std::string_view what, const Error& cause) {
  return Error(cause.code() == ErrorCode::kResourceExhausted ? cause.code() : ErrorCode::kIo,
               "schedule database " + quoteUntrusted(path) + ": " + std::string(what) +
                   " failed: " + cause.message());
}

}  // namespace

struct RunLog::Connection {
  std::string path;
  std::unique_ptr<Database> db;
  // Declared after the connection, so they are finalised before it closes.
  Statement find;
  Statement put;
  Statement erase;
};

RunLog::RunLog(std::unique_ptr<Connection> connection) : db_(std::move(connection)) {}
RunLog::~RunLog() = default;

Result<std::unique_ptr<RunLog>> RunLog::open(const std::string& path) {
  auto conn = std::make_unique<Connection>();
  conn->path = path;
  // Created 0600 by Database::open: SQLite would use 0644 less the umask, for the -wal and
  // -shm too.
  auto db = Database::open(path);
  if (!db) return failure(path, "open", db.error());
  conn->db = std::move(*db);
  // NORMAL is enough: a write lost to a power cut only makes a run-once scheduler fire a
  // time again, and the fire callback deduplicates by scheduled time (see scheduler.h).
  if (auto r = conn->db->exec("PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; "
                              "PRAGMA synchronous = NORMAL;");
      !r) {
    return failure(path, "setting the journal mode", r.error());
  }
  auto version = conn->db->queryText("PRAGMA user_version");
  if (!version) return failure(path, "reading the schema version", version.error());
  int found = std::atoi(version->c_str());
  if (found > kSchemaVersion) {
    return Error(ErrorCode::kIo, "schedule database " + quoteUntrusted(path) +
                                     " has schema version " + std::to_string(found) +
                                     ", newer than this tern understands (" +
                                     std::to_string(kSchemaVersion) + ")");
  }
  if (found == 0) {
    if (auto r = conn->db->exec(kSchemaV1); !r) return failure(path, "creating the schema", r.error());
  }

  auto find = conn->db->prepare("SELECT spec, last_ms FROM schedule_runs WHERE id = ?1");
  if (!find) return failure(path, "prepare", find.error());
  auto put = conn->db->prepare(
      "INSERT INTO schedule_runs (id, spec, last_ms) VALUES (?1, ?2, ?3) "
      "ON CONFLICT (id) DO UPDATE SET spec = excluded.spec, last_ms = excluded.last_ms");
  if (!put) return failure(path, "prepare", put.error());
  auto erase = conn->db->prepare("DELETE FROM schedule_runs WHERE id = ?1");
  if (!erase) return failure(path, "prepare", erase.error());
  conn->find = std::move(*find);
  conn->put = std::move(*put);
  conn->erase = std::move(*erase);
  return std::unique_ptr<RunLog>(new RunLog(std::move(conn)));
}

Result<std::optional<RunRecord>> RunLog::find(std::string_view id) {
  StatementUse stmt(db_->find);
  if (auto b = stmt->bind(1, id); !b) return failure(db_->path, "reading schedule " + quoteUntrusted(id), b.error());
  auto step = stmt->step();
  if (!step) return failure(db_->path, "reading schedule " + quoteUntrusted(id), step.error());
  if (*step == Statement::Step::kDone) return std::optional<RunRecord>();
  RunRecord record;
  record.spec = stmt->columnText(0);
  record.lastMs = stmt->columnInt(1);
  return std::optional<RunRecord>(std::move(record));
}

Result<void> RunLog::put(std::string_view id, const RunRecord& record) {
  StatementUse stmt(db_->put);
  auto ok = stmt->bindAll(id, std::string_view(record.spec), record.lastMs);
  if (ok) ok = stmt->run();
  if (!ok) return failure(db_->path, "recording schedule " + quoteUntrusted(id), ok.error());
  return {};
}

Result<void> RunLog::erase(std::string_view id) {
  StatementUse stmt(db_->erase);
  auto ok = stmt->bind(1, id);
  if (ok) ok = stmt->run();
  if (!ok) return failure(db_->path, "forgetting schedule " + quoteUntrusted(id), ok.error());
  return {};
}

}  // namespace tern::events
