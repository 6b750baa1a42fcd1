#include "events/run_log.h"

#include <sqlite3.h>

#include <optional>
#include <utility>

#include "util/quote.h"
#include "util/data_dir.h"

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

struct StatementDeleter {
  void operator()(sqlite3_stmt* stmt) const { sqlite3_finalize(stmt); }
};
using StatementPtr = std::unique_ptr<sqlite3_stmt, StatementDeleter>;

}  // namespace

struct RunLog::Connection {
  ~Connection() {
    // Statements first: a connection with unfinalised statements does not close.
    find.reset();
    put.reset();
    erase.reset();
    sqlite3_close(db);
  }

  Error error(std::string_view what) const {
    return Error(ErrorCode::kIo, "schedule database " + quoteUntrusted(path) + ": " +
                                     std::string(what) + " failed: " + sqlite3_errmsg(db));
  }

  Result<void> exec(const char* sql, std::string_view what) {
    if (sqlite3_exec(db, sql, nullptr, nullptr, nullptr) != SQLITE_OK) return error(what);
    return {};
  }

  Result<StatementPtr> prepare(const char* sql) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) != SQLITE_OK) return error("prepare");
    return StatementPtr(stmt);
  }

  std::string path;
  sqlite3* db = nullptr;
  StatementPtr find;
  StatementPtr put;
  StatementPtr erase;
};

RunLog::RunLog(std::unique_ptr<Connection> connection) : db_(std::move(connection)) {}
RunLog::~RunLog() = default;

Result<std::unique_ptr<RunLog>> RunLog::open(const std::string& path) {
  auto conn = std::make_unique<Connection>();
  conn->path = path;
  // Created 0600 first: SQLite would use 0644 less the umask, for the -wal and -shm too.
  if (path != ":memory:" && !path.empty()) {
    if (auto created = createPrivateFile(path); !created) {
      return Error(ErrorCode::kIo, "schedule database " + quoteUntrusted(path) +
                                       ": open failed: " + created.error().message());
    }
  }
  int rc = sqlite3_open_v2(path.c_str(), &conn->db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                           nullptr);
  if (rc != SQLITE_OK) {
    std::string why = conn->db != nullptr ? sqlite3_errmsg(conn->db) : sqlite3_errstr(rc);
    return Error(ErrorCode::kIo,
                 "schedule database " + quoteUntrusted(path) + ": open failed: " + why);
  }
  sqlite3_busy_timeout(conn->db, 5'000);
  // NORMAL is enough: a write lost to a power cut only makes a run-once scheduler fire a
  // time again, and the fire callback deduplicates by scheduled time (see scheduler.h).
  if (auto r = conn->exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;",
                          "setting the journal mode");
      !r) {
    return r.error();
  }

  auto version = conn->prepare("PRAGMA user_version");
  if (!version) return version.error();
  if (sqlite3_step(version->get()) != SQLITE_ROW) return conn->error("reading the schema version");
  int found = sqlite3_column_int(version->get(), 0);
  version->reset();
  if (found > kSchemaVersion) {
    return Error(ErrorCode::kIo, "schedule database " + quoteUntrusted(path) +
                                     " has schema version " + std::to_string(found) +
                                     ", newer than this tern understands (" +
                                     std::to_string(kSchemaVersion) + ")");
  }
  if (found == 0) {
    if (auto r = conn->exec(kSchemaV1, "creating the schema"); !r) return r.error();
  }

  auto find = conn->prepare("SELECT spec, last_ms FROM schedule_runs WHERE id = ?1");
  if (!find) return find.error();
  auto put = conn->prepare(
      "INSERT INTO schedule_runs (id, spec, last_ms) VALUES (?1, ?2, ?3) "
      "ON CONFLICT (id) DO UPDATE SET spec = excluded.spec, last_ms = excluded.last_ms");
  if (!put) return put.error();
  auto erase = conn->prepare("DELETE FROM schedule_runs WHERE id = ?1");
  if (!erase) return erase.error();
  conn->find = std::move(*find);
  conn->put = std::move(*put);
  conn->erase = std::move(*erase);
  return std::unique_ptr<RunLog>(new RunLog(std::move(conn)));
}

Result<std::optional<RunRecord>> RunLog::find(std::string_view id) {
  sqlite3_stmt* stmt = db_->find.get();
  sqlite3_reset(stmt);
  sqlite3_bind_text64(stmt, 1, id.data(), id.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  int rc = sqlite3_step(stmt);
  if (rc == SQLITE_DONE) return std::optional<RunRecord>();
  if (rc != SQLITE_ROW) return db_->error("reading schedule " + quoteUntrusted(id));
  RunRecord record;
  const unsigned char* spec = sqlite3_column_text(stmt, 0);
  record.spec = spec != nullptr ? reinterpret_cast<const char*>(spec) : "";
  record.lastMs = sqlite3_column_int64(stmt, 1);
  sqlite3_reset(stmt);
  return std::optional<RunRecord>(std::move(record));
}

Result<void> RunLog::put(std::string_view id, const RunRecord& record) {
  sqlite3_stmt* stmt = db_->put.get();
  sqlite3_reset(stmt);
  sqlite3_bind_text64(stmt, 1, id.data(), id.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  sqlite3_bind_text64(stmt, 2, record.spec.data(), record.spec.size(), SQLITE_TRANSIENT,
                      SQLITE_UTF8);
  sqlite3_bind_int64(stmt, 3, record.lastMs);
  int rc = sqlite3_step(stmt);
  // The error is read before reset(), which would replace the connection's message.
  std::optional<Error> failure;
  if (rc != SQLITE_DONE) failure = db_->error("recording schedule " + quoteUntrusted(id));
  sqlite3_reset(stmt);
  if (failure) return *failure;
  return {};
}

Result<void> RunLog::erase(std::string_view id) {
  sqlite3_stmt* stmt = db_->erase.get();
  sqlite3_reset(stmt);
  sqlite3_bind_text64(stmt, 1, id.data(), id.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  int rc = sqlite3_step(stmt);
  // The error is read before reset(), which would replace the connection's message.
  std::optional<Error> failure;
  if (rc != SQLITE_DONE) failure = db_->error("forgetting schedule " + quoteUntrusted(id));
  sqlite3_reset(stmt);
  if (failure) return *failure;
  return {};
}

}  // namespace tern::events
