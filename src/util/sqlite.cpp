#include "util/sqlite.h"

#include <sqlite3.h>

#include <filesystem>
#include <utility>

#include "util/data_dir.h"

namespace tern {

namespace {

// After a checkpoint has copied the write-ahead log into the database, the log file is cut
// back to this size, so the space a burst of writes took is given back to the file system.
constexpr int64_t kWalSizeLimitBytes = 1 << 20;

ErrorCode codeFor(int rc) {
  switch (rc & 0xff) {
    case SQLITE_FULL:  // the file system is full: see diskFullError
      return ErrorCode::kResourceExhausted;
    case SQLITE_MISUSE:
    case SQLITE_RANGE:
    case SQLITE_CONSTRAINT:  // the registry checks its invariants before writing
      return ErrorCode::kInternal;
    default:
      return ErrorCode::kIo;
  }
}

std::string describe(sqlite3* db, int rc) {
  if ((rc & 0xff) == SQLITE_FULL) {
    return diskFullError("the database cannot grow").message();
  }
  std::string out = sqlite3_errstr(rc);
  // The connection's message is more specific, but only when it belongs to this failure.
  if (db != nullptr && sqlite3_extended_errcode(db) == rc) {
    std::string detail = sqlite3_errmsg(db);
    if (detail != out) out += " (" + detail + ")";
  }
  return out;
}

// "registry database", "kv database": the file's stem, for error messages.
std::string label(sqlite3* db) {
  const char* file = db ? sqlite3_db_filename(db, "main") : nullptr;
  if (file == nullptr || *file == '\0') return "database";
  return std::filesystem::path(file).stem().string() + " database";
}

}  // namespace

// ---- Statement ----

Statement::~Statement() { sqlite3_finalize(stmt_); }

Statement::Statement(Statement&& other) noexcept
    : db_(std::exchange(other.db_, nullptr)),
      stmt_(std::exchange(other.stmt_, nullptr)),
      sql_(std::move(other.sql_)) {}

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    sqlite3_finalize(stmt_);
    db_ = std::exchange(other.db_, nullptr);
    stmt_ = std::exchange(other.stmt_, nullptr);
    sql_ = std::move(other.sql_);
  }
  return *this;
}

Error Statement::error(std::string_view what, int rc) const {
  return Error(codeFor(rc), label(db_) + ": " + std::string(what) + " failed: " +
                                describe(db_, rc) + " [" + sql_ + "]");
}

Result<void> Statement::bind(int index, int64_t value) {
  int rc = sqlite3_bind_int64(stmt_, index, value);
  if (rc != SQLITE_OK) return error("bind", rc);
  return {};
}

Result<void> Statement::bind(int index, std::string_view text) {
  int rc =
      sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  if (rc != SQLITE_OK) return error("bind", rc);
  return {};
}

Result<void> Statement::bindBlob(int index, std::string_view bytes) {
  // A null pointer would bind NULL: an empty blob needs a non-null one.
  const char* data = bytes.data() != nullptr ? bytes.data() : "";
  int rc = sqlite3_bind_blob64(stmt_, index, data, bytes.size(), SQLITE_TRANSIENT);
  if (rc != SQLITE_OK) return error("bind", rc);
  return {};
}

Result<Statement::Step> Statement::step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return Step::kRow;
  if (rc == SQLITE_DONE) return Step::kDone;
  return error("step", rc);
}

Result<void> Statement::run() {
  auto r = step();
  if (!r) return r.error();
  if (*r == Step::kRow) {
    return Error(ErrorCode::kInternal, label(db_) + ": [" + sql_ + "] returned a row");
  }
  return {};
}

void Statement::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

int64_t Statement::columnInt(int column) const { return sqlite3_column_int64(stmt_, column); }

std::string Statement::columnText(int column) const {
  const auto* text = sqlite3_column_text(stmt_, column);
  if (text == nullptr) return {};
  return std::string(reinterpret_cast<const char*>(text),
                     static_cast<size_t>(sqlite3_column_bytes(stmt_, column)));
}

std::string Statement::columnBlob(int column) const {
  const void* data = sqlite3_column_blob(stmt_, column);
  if (data == nullptr) return {};
  return std::string(static_cast<const char*>(data),
                     static_cast<size_t>(sqlite3_column_bytes(stmt_, column)));
}

bool Statement::columnIsNull(int column) const {
  return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

// ---- Database ----

Result<std::unique_ptr<Database>> Database::open(const std::filesystem::path& file) {
  // SQLite creates the file with mode 0644 less the umask, and its -wal and -shm files with
  // the database's mode: creating it 0600 first keeps all three private.
  if (file != ":memory:" && !file.empty()) {
    if (auto created = createPrivateFile(file); !created) return created.error();
  }
  sqlite3* db = nullptr;
  // NOMUTEX: the registry serialises use of the connection with its own mutex.
  int rc = sqlite3_open_v2(
      file.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string message = "cannot open " + file.string() + ": " + describe(db, rc);
    sqlite3_close_v2(db);  // a handle is returned even on failure (or null: a no-op)
    return Error(ErrorCode::kIo, std::move(message));
  }
  sqlite3_extended_result_codes(db, 1);
  std::unique_ptr<Database> out(new Database(db));
  auto limited = out->exec("PRAGMA journal_size_limit = " + std::to_string(kWalSizeLimitBytes));
  if (!limited) return limited.error();
  return out;
}

Database::~Database() { sqlite3_close_v2(db_); }

Error Database::error(std::string_view what, int rc) const {
  return Error(codeFor(rc), label(db_) + ": " + std::string(what) + " failed: " + describe(db_, rc));
}

Result<void> Database::exec(const std::string& sql) {
  int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return error("\"" + sql + "\"", rc);
  return {};
}

Result<std::string> Database::queryText(const std::string& sql) {
  auto stmt = prepare(sql);
  if (!stmt) return stmt.error();
  auto step = stmt->step();
  if (!step) return step.error();
  if (*step != Statement::Step::kRow) {
    return Error(ErrorCode::kInternal, label(db_) + ": \"" + sql + "\" returned no row");
  }
  return stmt->columnText(0);
}

Result<Statement> Database::prepare(const std::string& sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size()),
                              SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return error("preparing \"" + sql + "\"", rc);
  }
  return Statement(db_, stmt, sql);
}

int64_t Database::changes() const { return sqlite3_changes64(db_); }

Result<void> Database::truncateLog() {
  int rc = sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr, nullptr);
  if (rc != SQLITE_OK) return error("checkpointing the write-ahead log", rc);
  return {};
}

// ---- Transaction ----

Result<Transaction> Transaction::begin(Database& db) {
  auto r = db.exec("BEGIN IMMEDIATE");
  if (!r) return r.error();
  return Transaction(db);
}

Transaction::~Transaction() {
  if (db_ != nullptr) (void)db_->exec("ROLLBACK");
}

Result<void> Transaction::commit() {
  auto r = db_->exec("COMMIT");
  // A failed COMMIT (SQLITE_BUSY, I/O) leaves the transaction open; the destructor rolls it
  // back, so the caller's error is final and the connection is usable again.
  if (!r) return r.error();
  db_ = nullptr;
  return {};
}

}  // namespace tern
