#pragma once
// A thin RAII layer over the SQLite C API, the one every component's database uses (the
// registry, key-value state, async queue, workflow runs, stream topics, providers): an
// owned connection, prepared statements that reset themselves after each use, and an
// IMMEDIATE transaction that rolls back unless committed. Every SQLite failure becomes a tern::Error naming what was being
// done, prefixed by the database's name ("registry database: ..."). Not thread-safe by
// itself: each owner serialises all use of its connection.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "util/error.h"

struct sqlite3;
struct sqlite3_stmt;

namespace tern {

class Database;

// A prepared statement. Bind, then step until it returns kDone; `reset()` makes it ready
// for the next use (a `StatementUse` does that on scope exit).
class Statement {
 public:
  enum class Step : uint8_t { kRow, kDone };

  Statement() = default;
  ~Statement();
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  // Parameters are 1-based, as in SQLite.
  Result<void> bind(int index, int64_t value);
  Result<void> bind(int index, std::string_view text);
  // Binds arbitrary bytes as a BLOB (compared with memcmp: byte order).
  Result<void> bindBlob(int index, std::string_view bytes);
  // Binds the arguments to parameters 1, 2, ... in order; stops at the first failure.
  template <typename... Args>
  Result<void> bindAll(const Args&... args) {
    int index = 0;
    Result<void> result;
    ((result = result ? bind(++index, args) : result), ...);
    return result;
  }
  Result<Step> step();
  // Steps a statement that returns no rows (INSERT, UPDATE, DELETE).
  Result<void> run();
  void reset();

  // Columns are 0-based, as in SQLite. Valid after step() returned kRow.
  int64_t columnInt(int column) const;
  std::string columnText(int column) const;
  std::string columnBlob(int column) const;
  bool columnIsNull(int column) const;

 private:
  friend class Database;
  Statement(sqlite3* db, sqlite3_stmt* stmt, std::string sql)
      : db_(db), stmt_(stmt), sql_(std::move(sql)) {}
  Error error(std::string_view what, int rc) const;

  sqlite3* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
  std::string sql_;  // for error messages
};

// Resets a statement (and clears its bindings) when the scope ends, so a statement cached
// in the registry never stays half-stepped after an early return.
class StatementUse {
 public:
  explicit StatementUse(Statement& stmt) : stmt_(stmt) {}
  ~StatementUse() { stmt_.reset(); }
  StatementUse(const StatementUse&) = delete;
  StatementUse& operator=(const StatementUse&) = delete;
  Statement* operator->() { return &stmt_; }

 private:
  Statement& stmt_;
};

// An open connection to one database file.
class Database {
 public:
  // Opens (creating if needed, mode 0600) the database file. Errors: kIo. A write that
  // fails because the file system is full is kResourceExhausted ("disk full: ...").
  static Result<std::unique_ptr<Database>> open(const std::filesystem::path& file);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Runs SQL without results (pragmas, DDL, transaction control). Errors: kIo.
  Result<void> exec(const std::string& sql);
  // The single value of a one-row query such as `PRAGMA journal_mode`.
  Result<std::string> queryText(const std::string& sql);
  Result<Statement> prepare(const std::string& sql);
  // Rows changed by the last INSERT/UPDATE/DELETE.
  int64_t changes() const;
  // Copies the write-ahead log into the database and truncates the log to zero bytes, so
  // the space it took is free again (after removals on a full disk). Errors: kIo, or
  // kIo with SQLITE_BUSY while another connection reads (the log is then cut later).
  Result<void> truncateLog();
  // A kIo error with SQLite's message for `rc`, saying what was being done.
  Error error(std::string_view what, int rc) const;

 private:
  explicit Database(sqlite3* db) : db_(db) {}
  sqlite3* db_;
};

// BEGIN IMMEDIATE ... COMMIT. Taking the write lock up front means a transaction that reads
// and then writes (the next version number, then the insert) never has to upgrade a read
// lock, so it waits for other writers (busy_timeout) instead of failing with SQLITE_BUSY.
// Rolls back on destruction unless commit() succeeded.
class Transaction {
 public:
  static Result<Transaction> begin(Database& db);
  ~Transaction();
  Transaction(Transaction&& other) noexcept : db_(other.db_) { other.db_ = nullptr; }
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  Result<void> commit();

 private:
  explicit Transaction(Database& db) : db_(&db) {}
  Database* db_;  // null once committed or rolled back
};

}  // namespace tern
