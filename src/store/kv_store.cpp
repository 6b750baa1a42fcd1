#include "store/kv_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>

#include "util/quote.h"
#include "util/sqlite.h"
#include "util/data_dir.h"

namespace tern::store {

namespace fs = std::filesystem;

namespace {

constexpr int kBusyTimeoutMs = 5000;

// One row per key; kv_usage keeps each namespace's totals so a quota check reads one row.
// Keys are BLOBs: SQLite compares them with memcmp, which is the byte order kv_list
// promises.
constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS kv (
  ns    TEXT NOT NULL,
  key   BLOB NOT NULL,
  value BLOB NOT NULL,
  PRIMARY KEY (ns, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS kv_usage (
  ns    TEXT PRIMARY KEY,
  keys  INTEGER NOT NULL,
  bytes INTEGER NOT NULL
) WITHOUT ROWID;
)sql";

Result<void> syncDir(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Error(ErrorCode::kIo, "cannot open directory " + dir.string());
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return Error(ErrorCode::kIo, "cannot sync directory " + dir.string());
  return {};
}

// The smallest byte string greater than every string starting with `prefix`, or nullopt
// when there is none (the prefix is all 0xff bytes).
std::optional<std::string> prefixEnd(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty() && static_cast<unsigned char>(end.back()) == 0xff) end.pop_back();
  if (end.empty()) return std::nullopt;
  end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
  return end;
}

Result<KvStore::Usage> readUsage(Database& db, std::string_view ns) {
  auto stmt = db.prepare("SELECT keys, bytes FROM kv_usage WHERE ns = ?1");
  if (!stmt) return stmt.error();
  if (auto b = stmt->bind(1, ns); !b) return b.error();
  auto step = stmt->step();
  if (!step) return step.error();
  KvStore::Usage u;
  if (*step == Statement::Step::kRow) {
    u.keys = static_cast<uint64_t>(stmt->columnInt(0));
    u.bytes = static_cast<uint64_t>(stmt->columnInt(1));
  }
  return u;
}

Result<void> writeUsage(Database& db, std::string_view ns, const KvStore::Usage& u) {
  auto stmt = u.keys == 0
                  ? db.prepare("DELETE FROM kv_usage WHERE ns = ?1")
                  : db.prepare("INSERT INTO kv_usage (ns, keys, bytes) VALUES (?1, ?2, ?3) "
                               "ON CONFLICT (ns) DO UPDATE SET keys = ?2, bytes = ?3");
  if (!stmt) return stmt.error();
  auto bound = u.keys == 0 ? stmt->bind(1, ns)
                           : stmt->bindAll(ns, static_cast<int64_t>(u.keys),
                                           static_cast<int64_t>(u.bytes));
  if (!bound) return bound.error();
  return stmt->run();
}

// The stored size of a key's entry (key plus value), or nullopt when absent.
Result<std::optional<uint64_t>> entrySize(Database& db, std::string_view ns,
                                          std::string_view key) {
  auto stmt = db.prepare("SELECT length(value) FROM kv WHERE ns = ?1 AND key = ?2");
  if (!stmt) return stmt.error();
  if (auto b = stmt->bind(1, ns); !b) return b.error();
  if (auto b = stmt->bindBlob(2, key); !b) return b.error();
  auto step = stmt->step();
  if (!step) return step.error();
  if (*step != Statement::Step::kRow) return std::optional<uint64_t>();
  return std::optional<uint64_t>(key.size() + static_cast<uint64_t>(stmt->columnInt(0)));
}

}  // namespace

KvStore::KvStore(std::unique_ptr<Database> db, KvLimits limits)
    : db_(std::move(db)), limits_(limits) {}

KvStore::~KvStore() = default;

Result<std::unique_ptr<KvStore>> KvStore::open(const fs::path& dataDir, KvLimits limits) {
  if (auto created = createPrivateDirectory(dataDir); !created) return created.error();
  auto db = Database::open(dataDir / "kv.db");
  if (!db) return db.error();
  Database& d = **db;
  for (std::string pragma : {std::string("PRAGMA synchronous = FULL"),
                             "PRAGMA busy_timeout = " + std::to_string(kBusyTimeoutMs)}) {
    if (auto r = d.exec(pragma); !r) return r.error();
  }
  auto mode = d.queryText("PRAGMA journal_mode = WAL");
  if (!mode) return mode.error();
  if (*mode != "wal") {
    return Error(ErrorCode::kIo, "kv database: cannot use WAL journal mode (got \"" + *mode + "\")");
  }
  if (auto r = d.exec(kSchema); !r) return r.error();
  if (auto r = syncDir(dataDir); !r) return r.error();
  return std::unique_ptr<KvStore>(new KvStore(std::move(*db), limits));
}

Result<void> KvStore::checkKey(std::string_view key) const {
  if (key.empty()) return Error(ErrorCode::kInvalidArgument, "a key must not be empty");
  if (key.size() > limits_.maxKeyBytes) {
    return Error(ErrorCode::kBodyTooLarge, fmt::format("the key is {} bytes, the limit is {}",
                                                       key.size(), limits_.maxKeyBytes));
  }
  return {};
}

Result<std::optional<std::string>> KvStore::get(std::string_view ns, std::string_view key) {
  if (auto ok = checkKey(key); !ok) return ok.error();
  MutexLock lock(mu_);
  auto stmt = db_->prepare("SELECT value FROM kv WHERE ns = ?1 AND key = ?2");
  if (!stmt) return stmt.error();
  if (auto b = stmt->bind(1, ns); !b) return b.error();
  if (auto b = stmt->bindBlob(2, key); !b) return b.error();
  auto step = stmt->step();
  if (!step) return step.error();
  if (*step != Statement::Step::kRow) return std::optional<std::string>();
  return std::optional<std::string>(stmt->columnBlob(0));
}

Result<void> KvStore::set(std::string_view ns, std::string_view key, std::string_view value) {
  if (auto ok = checkKey(key); !ok) return ok.error();
  if (value.size() > limits_.maxValueBytes) {
    return Error(ErrorCode::kBodyTooLarge, fmt::format("the value is {} bytes, the limit is {}",
                                                       value.size(), limits_.maxValueBytes));
  }
  MutexLock lock(mu_);
  auto tx = Transaction::begin(*db_);
  if (!tx) return tx.error();
  auto usage = readUsage(*db_, ns);
  if (!usage) return usage.error();
  auto old = entrySize(*db_, ns, key);
  if (!old) return old.error();
  Usage next = *usage;
  if (!*old) next.keys += 1;
  next.bytes = next.bytes - old->value_or(0) + key.size() + value.size();
  if (!*old && next.keys > limits_.maxKeysPerFunction) {
    return Error(ErrorCode::kResourceExhausted,
                 fmt::format("key-value quota: {} keys stored, the limit is {}", usage->keys,
                             limits_.maxKeysPerFunction));
  }
  if (next.bytes > limits_.maxBytesPerFunction && next.bytes > usage->bytes) {
    return Error(ErrorCode::kResourceExhausted,
                 fmt::format("key-value quota: {} bytes stored, this set needs {} more, the "
                             "limit is {}",
                             usage->bytes, next.bytes - usage->bytes,
                             limits_.maxBytesPerFunction));
  }
  auto stmt = db_->prepare("INSERT INTO kv (ns, key, value) VALUES (?1, ?2, ?3) "
                           "ON CONFLICT (ns, key) DO UPDATE SET value = ?3");
  if (!stmt) return stmt.error();
  if (auto b = stmt->bind(1, ns); !b) return b.error();
  if (auto b = stmt->bindBlob(2, key); !b) return b.error();
  if (auto b = stmt->bindBlob(3, value); !b) return b.error();
  if (auto r = stmt->run(); !r) return r.error();
  if (auto r = writeUsage(*db_, ns, next); !r) return r.error();
  return tx->commit();
}

Result<bool> KvStore::remove(std::string_view ns, std::string_view key) {
  if (auto ok = checkKey(key); !ok) return ok.error();
  MutexLock lock(mu_);
  auto tx = Transaction::begin(*db_);
  if (!tx) return tx.error();
  auto old = entrySize(*db_, ns, key);
  if (!old) return old.error();
  if (!*old) return false;
  auto usage = readUsage(*db_, ns);
  if (!usage) return usage.error();
  auto stmt = db_->prepare("DELETE FROM kv WHERE ns = ?1 AND key = ?2");
  if (!stmt) return stmt.error();
  if (auto b = stmt->bind(1, ns); !b) return b.error();
  if (auto b = stmt->bindBlob(2, key); !b) return b.error();
  if (auto r = stmt->run(); !r) return r.error();
  Usage next{usage->keys - 1, usage->bytes - **old};
  if (auto r = writeUsage(*db_, ns, next); !r) return r.error();
  if (auto r = tx->commit(); !r) return r.error();
  return true;
}

Result<KvStore::Page> KvStore::list(std::string_view ns, std::string_view prefix,
                                    std::string_view after, size_t limit) {
  if (prefix.size() > limits_.maxKeyBytes || after.size() > limits_.maxKeyBytes) {
    return Error(ErrorCode::kBodyTooLarge,
                 fmt::format("the prefix and the start key are at most {} bytes",
                             limits_.maxKeyBytes));
  }
  auto end = prefixEnd(prefix);
  MutexLock lock(mu_);
  // Keys are never empty, so `key > x''` holds for all of them when no start key is given.
  auto stmt = db_->prepare(end ? "SELECT key FROM kv WHERE ns = ?1 AND key >= ?2 AND key > ?3 "
                                 "AND key < ?4 ORDER BY key LIMIT ?5"
                               : "SELECT key FROM kv WHERE ns = ?1 AND key >= ?2 AND key > ?3 "
                                 "ORDER BY key LIMIT ?5");
  if (!stmt) return stmt.error();
  if (auto b = stmt->bind(1, ns); !b) return b.error();
  if (auto b = stmt->bindBlob(2, prefix); !b) return b.error();
  if (auto b = stmt->bindBlob(3, after); !b) return b.error();
  if (end) {
    if (auto b = stmt->bindBlob(4, *end); !b) return b.error();
  }
  if (auto b = stmt->bind(5, static_cast<int64_t>(limit) + 1); !b) return b.error();
  Page page;
  for (;;) {
    auto step = stmt->step();
    if (!step) return step.error();
    if (*step != Statement::Step::kRow) break;
    if (page.keys.size() == limit) {
      page.more = true;
      break;
    }
    page.keys.push_back(stmt->columnBlob(0));
  }
  return page;
}

Result<KvStore::Usage> KvStore::usage(std::string_view ns) {
  MutexLock lock(mu_);
  return readUsage(*db_, ns);
}

Result<std::vector<KvStore::Entry>> KvStore::exportNamespace(std::string_view ns) {
  MutexLock lock(mu_);
  auto stmt = db_->prepare("SELECT key, value FROM kv WHERE ns = ?1 ORDER BY key");
  if (!stmt) return stmt.error();
  if (auto b = stmt->bind(1, ns); !b) return b.error();
  std::vector<Entry> out;
  for (;;) {
    auto step = stmt->step();
    if (!step) return step.error();
    if (*step != Statement::Step::kRow) break;
    out.push_back(Entry{stmt->columnBlob(0), stmt->columnBlob(1)});
  }
  return out;
}

Result<size_t> KvStore::importNamespace(std::string_view ns, const std::vector<Entry>& entries,
                                        ImportMode mode) {
  for (const Entry& e : entries) {
    if (auto ok = checkKey(e.key); !ok) return ok.error();
    if (e.value.size() > limits_.maxValueBytes) {
      return Error(ErrorCode::kBodyTooLarge,
                   fmt::format("a value is {} bytes, the limit is {}", e.value.size(),
                               limits_.maxValueBytes));
    }
  }
  MutexLock lock(mu_);
  auto tx = Transaction::begin(*db_);
  if (!tx) return tx.error();
  if (mode == ImportMode::kReplace) {
    for (const char* sql : {"DELETE FROM kv WHERE ns = ?1", "DELETE FROM kv_usage WHERE ns = ?1"}) {
      auto stmt = db_->prepare(sql);
      if (!stmt) return stmt.error();
      if (auto b = stmt->bind(1, ns); !b) return b.error();
      if (auto r = stmt->run(); !r) return r.error();
    }
  }
  auto usage = readUsage(*db_, ns);
  if (!usage) return usage.error();
  Usage next = *usage;
  size_t written = 0;
  for (const Entry& e : entries) {
    auto old = entrySize(*db_, ns, e.key);
    if (!old) return old.error();
    if (*old && mode == ImportMode::kKeepExisting) continue;
    if (!*old) next.keys += 1;
    next.bytes = next.bytes - old->value_or(0) + e.key.size() + e.value.size();
    auto stmt = db_->prepare("INSERT INTO kv (ns, key, value) VALUES (?1, ?2, ?3) "
                             "ON CONFLICT (ns, key) DO UPDATE SET value = ?3");
    if (!stmt) return stmt.error();
    if (auto b = stmt->bind(1, ns); !b) return b.error();
    if (auto b = stmt->bindBlob(2, e.key); !b) return b.error();
    if (auto b = stmt->bindBlob(3, e.value); !b) return b.error();
    if (auto r = stmt->run(); !r) return r.error();
    ++written;
  }
  if (next.keys > limits_.maxKeysPerFunction || next.bytes > limits_.maxBytesPerFunction) {
    return Error(ErrorCode::kResourceExhausted,
                 fmt::format("key-value quota: the import needs {} keys and {} bytes, the limits "
                             "are {} and {}",
                             next.keys, next.bytes, limits_.maxKeysPerFunction,
                             limits_.maxBytesPerFunction));
  }
  if (auto r = writeUsage(*db_, ns, next); !r) return r.error();
  if (auto r = tx->commit(); !r) return r.error();
  return written;
}

Result<void> KvStore::removeNamespace(std::string_view ns) {
  MutexLock lock(mu_);
  auto tx = Transaction::begin(*db_);
  if (!tx) return tx.error();
  // ?1 itself and its per-device namespaces "?1@DEVICE".
  for (const char* sql :
       {"DELETE FROM kv WHERE ns = ?1 OR substr(ns, 1, length(?1) + 1) = ?1 || '@'",
        "DELETE FROM kv_usage WHERE ns = ?1 OR substr(ns, 1, length(?1) + 1) = ?1 || '@'"}) {
    auto stmt = db_->prepare(sql);
    if (!stmt) return stmt.error();
    if (auto b = stmt->bind(1, ns); !b) return b.error();
    if (auto r = stmt->run(); !r) return r.error();
  }
  return tx->commit();
}

Result<void> KvStore::truncateLog() {
  MutexLock lock(mu_);
  return db_->truncateLog();
}

}  // namespace tern::store
