#include "store/registry.h"

#include "util/names.h"

#include <atomic>
#include <charconv>
#include <chrono>
#include <limits>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>

#include "store/module_files.h"
#include "util/quote.h"
#include "util/sqlite.h"
#include "util/data_dir.h"
#include "util/clock.h"
#include "util/thread_annotations.h"

namespace fs = std::filesystem;

namespace tern::store {

namespace {

// The schema this code reads and writes, kept in PRAGMA user_version. A database with a
// lower number is migrated forward in open(); a higher one was written by a newer tern and
// is refused rather than misread.
constexpr int64_t kSchemaVersion = 3;

// Schema version 1. Versions are immutable rows; a function's row says which one is active.
// Version numbers are MAX(version) + 1, so they keep growing across rollbacks; remove()
// deletes the rows, so a function deployed again after removal starts at 1. `env` is a JSON
// array of "KEY=VALUE" strings. module_hash names <data>/modules/<hash>.wasm.
constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE functions (
  name          TEXT NOT NULL PRIMARY KEY,
  active_version INTEGER NOT NULL,
  updated_at_ms INTEGER NOT NULL
) STRICT;
CREATE TABLE versions (
  name          TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
  version       INTEGER NOT NULL CHECK (version >= 1),
  module_hash   TEXT NOT NULL,
  module_size   INTEGER NOT NULL,
  memory_mb     INTEGER NOT NULL,
  timeout_ms    INTEGER NOT NULL,
  concurrency   INTEGER NOT NULL,
  env           TEXT NOT NULL,
  created_at_ms INTEGER NOT NULL,
  PRIMARY KEY (name, version)
) STRICT;
)sql";

// Schema version 2: `options` holds the settings added after version 1 as one JSON object
// (triggers, reply_topic, allow), so a new setting needs no further migration. Keys this
// tern does not know are ignored on read.
constexpr const char* kSchemaV2 = R"sql(
ALTER TABLE versions ADD COLUMN options TEXT NOT NULL DEFAULT '{}';
)sql";

// Schema version 3: `unpublished` holds the functions changed here (deploy, rollback,
// removal) whose state the cluster has not acknowledged yet, one row per function. The row
// is written in the same transaction as the change, so a change that answered survives a
// restart before it reaches the cluster. `change` grows with every write, so a row is
// removed only if it was not rewritten while its state was being published.
constexpr const char* kSchemaV3 = R"sql(
CREATE TABLE unpublished (
  name   TEXT NOT NULL PRIMARY KEY,
  change INTEGER NOT NULL
) STRICT;
)sql";

// Waiting for another connection's write (another Registry on the same directory, or
// another process) before giving up with kIo.
constexpr int kBusyTimeoutMs = 10000;

// Temp files from interrupted module writes older than this are removed at open.
constexpr auto kStaleTempAge = std::chrono::hours(1);

constexpr const char* kVersionColumns =
    "name, version, module_hash, module_size, memory_mb, timeout_ms, concurrency, env, "
    "created_at_ms, options";


Result<void> checkName(std::string_view name) {
  if (isFunctionName(name)) return {};
  return Error(ErrorCode::kInvalidArgument,
               "invalid function name " + quoteUntrusted(name) +
                   ": a name is 1 to 63 characters of a-z, 0-9 and '-', not starting with '-'");
}

std::string functionLabel(std::string_view name) {
  return "function \"" + std::string(name) + "\"";
}

// The settings' env as stored: a JSON array of strings. Each entry is "KEY=VALUE" with a
// non-empty key, no NUL byte (it could not reach the guest intact) and valid UTF-8.
Result<std::string> encodeEnv(const std::vector<std::string>& env) {
  for (size_t i = 0; i < env.size(); ++i) {
    const std::string& entry = env[i];
    size_t eq = entry.find('=');
    if (eq == std::string::npos || eq == 0 || entry.find('\0') != std::string::npos) {
      return Error(ErrorCode::kInvalidArgument, "environment entry " + std::to_string(i) + " " +
                                                    quoteUntrusted(entry) +
                                                    " is not KEY=VALUE with a non-empty key");
    }
  }
  try {
    return nlohmann::json(env).dump();
  } catch (const nlohmann::json::exception&) {
    return Error(ErrorCode::kInvalidArgument, "environment entries must be valid UTF-8");
  }
}

// The settings stored in the `options` column (schema version 2).
Result<std::string> encodeOptions(const FunctionSettings& settings) {
  try {
    nlohmann::json o = nlohmann::json::object();
    if (!settings.triggers.empty()) o["triggers"] = settings.triggers;
    if (!settings.replyTopic.empty()) o["reply_topic"] = settings.replyTopic;
    if (!settings.allow.empty()) o["allow"] = settings.allow;
    if (settings.sloMs > 0) o["slo_ms"] = settings.sloMs;
    if (settings.sloPercentile > 0) o["slo_percentile"] = settings.sloPercentile;
    if (settings.weight != 1) o["weight"] = settings.weight;
    const auto& pl = settings.placement;
    if (!pl.sites.empty() || !pl.tier.empty() || !pl.labels.empty()) {
      o["placement"] = {{"sites", pl.sites}, {"tier", pl.tier}, {"labels", pl.labels}};
    }
    if (settings.compileTier != CompileTier::kAuto) {  // absent: auto
      o["compile_tier"] = compileTierName(settings.compileTier);
    }
    return o.dump();
  } catch (const nlohmann::json::exception&) {
    return Error(ErrorCode::kInvalidArgument, "triggers, reply topic and capabilities must be valid UTF-8");
  }
}

bool toU32(int64_t v, uint32_t& out) {
  if (v < 0 || v > std::numeric_limits<uint32_t>::max()) return false;
  out = static_cast<uint32_t>(v);
  return true;
}

// A row of `versions` selected with kVersionColumns.
Result<FunctionVersion> readVersion(const Statement& s) {
  FunctionVersion v;
  v.name = s.columnText(0);
  auto corrupt = [&](std::string_view what) {
    return Error(ErrorCode::kIo, "registry database: version " + std::to_string(s.columnInt(1)) +
                                     " of " + functionLabel(v.name) +
                                     " is corrupt: " + std::string(what));
  };
  int64_t size = s.columnInt(3);
  if (!toU32(s.columnInt(1), v.version) || v.version == 0) return corrupt("bad version number");
  v.moduleHash = s.columnText(2);
  if (!isValidModuleHash(v.moduleHash)) return corrupt("bad module hash");
  if (size < 0) return corrupt("bad module size");
  v.moduleSize = static_cast<uint64_t>(size);
  if (!toU32(s.columnInt(4), v.settings.memoryMb) || !toU32(s.columnInt(5), v.settings.timeoutMs) ||
      !toU32(s.columnInt(6), v.settings.concurrency)) {
    return corrupt("setting out of range");
  }
  auto env = nlohmann::json::parse(s.columnText(7), nullptr, /*allow_exceptions=*/false);
  if (!env.is_array()) return corrupt("env is not a JSON array");
  for (const auto& entry : env) {
    if (!entry.is_string()) return corrupt("env entry is not a string");
    v.settings.env.push_back(entry.get<std::string>());
  }
  v.createdAtMs = s.columnInt(8);
  auto options = nlohmann::json::parse(s.columnText(9), nullptr, /*allow_exceptions=*/false);
  if (!options.is_object()) return corrupt("options is not a JSON object");
  auto strings = [&](const char* key, std::vector<std::string>& out) -> bool {
    auto it = options.find(key);
    if (it == options.end()) return true;
    if (!it->is_array()) return false;
    for (const auto& e : *it) {
      if (!e.is_string()) return false;
      out.push_back(e.get<std::string>());
    }
    return true;
  };
  if (!strings("triggers", v.settings.triggers) || !strings("allow", v.settings.allow)) {
    return corrupt("options has a list that is not of strings");
  }
  if (auto it = options.find("reply_topic"); it != options.end()) {
    if (!it->is_string()) return corrupt("reply_topic is not a string");
    v.settings.replyTopic = it->get<std::string>();
  }
  for (auto [key, out] : {std::pair{"slo_ms", &v.settings.sloMs},
                          std::pair{"slo_percentile", &v.settings.sloPercentile},
                          std::pair{"weight", &v.settings.weight}}) {
    auto it = options.find(key);
    if (it == options.end()) continue;
    if (!it->is_number() || !(it->get<double>() > 0)) {
      return corrupt(std::string(key) + " is not a positive number");
    }
    *out = it->get<double>();
  }
  if (auto it = options.find("compile_tier"); it != options.end()) {
    auto tier = it->is_string() ? parseCompileTier(it->get<std::string>())
                                : Result<CompileTier>(Error(ErrorCode::kInvalidArgument, ""));
    if (!tier.ok()) return corrupt("compile_tier is not auto, baseline or optimized");
    v.settings.compileTier = *tier;
  }
  if (auto it = options.find("placement"); it != options.end()) {
    if (!it->is_object()) return corrupt("placement is not an object");
    auto& pl = v.settings.placement;
    auto list = [&](const char* key, std::vector<std::string>& out) {
      auto e = it->find(key);
      if (e == it->end()) return true;
      if (!e->is_array()) return false;
      for (const auto& x : *e) {
        if (!x.is_string()) return false;
        out.push_back(x.get<std::string>());
      }
      return true;
    };
    auto tier = it->find("tier");
    if (!list("sites", pl.sites) || !list("labels", pl.labels) ||
        (tier != it->end() && !tier->is_string())) {
      return corrupt("placement is malformed");
    }
    if (tier != it->end()) pl.tier = tier->get<std::string>();
  }
  return v;
}

}  // namespace

// The prepared statements, made once at open. Each is used under Impl::mu.
struct Statements {
  Statement maxVersion;
  Statement upsertFunction;
  Statement insertVersion;
  Statement selectActive;
  Statement selectVersions;
  Statement selectPrevious;
  Statement selectActiveNumber;
  Statement setActive;
  Statement listFunctions;
  Statement deleteVersions;
  Statement deleteFunction;
  Statement replaceVersion;
  Statement markUnpublished;
  Statement selectUnpublished;
  Statement selectUnpublishedOne;
  Statement deletePublished;
  Statement selectModuleHashes;
};

// Modules that deploys in this process are working on (ModuleHold), by hash, with how many
// holds each has. Shared with the holds, so a hold may outlive nothing it points to.
struct Registry::HoldTable {
  Mutex mu;  // also held for a whole collectModules, so a new hold waits for it
  std::map<std::string, int> counts TERN_GUARDED_BY(mu);
};

struct Registry::Impl {
  explicit Impl(const fs::path& dataDir) : modules(dataDir / "modules") {}

  ModuleFiles modules;  // thread-safe on its own; used without `mu`
  std::shared_ptr<HoldTable> holds = std::make_shared<HoldTable>();  // lock before `mu`
  std::atomic<ChangeJournal> journal{ChangeJournal::kOff};
  Mutex mu;
  // Declared before stmts, closed after them.
  std::unique_ptr<Database> db TERN_PT_GUARDED_BY(mu);
  Statements stmts TERN_GUARDED_BY(mu);

  // Records `name` as changed here and not yet acknowledged by the cluster, inside the
  // caller's transaction (with the journal on).
  Result<void> journalChange(const std::string& name) TERN_REQUIRES(mu) {
    if (journal.load() != ChangeJournal::kOn) return {};
    StatementUse q(stmts.markUnpublished);
    if (auto r = q->bind(1, name); !r) return r.error();
    return q->run();
  }
};

namespace {

// Creates or migrates the schema to kSchemaVersion in one transaction.
Result<void> migrate(Database& db) {
  auto tx = Transaction::begin(db);
  if (!tx) return tx.error();
  auto current = db.queryText("PRAGMA user_version");
  if (!current) return current.error();
  int64_t version = 0;
  auto [end, ec] = std::from_chars(current->data(), current->data() + current->size(), version);
  if (ec != std::errc() || end != current->data() + current->size()) {
    return Error(ErrorCode::kIo, "registry database: bad user_version \"" + *current + "\"");
  }
  if (version > kSchemaVersion) {
    return Error(ErrorCode::kIo, "registry database has schema version " + std::to_string(version) +
                                     ", newer than this tern supports (" +
                                     std::to_string(kSchemaVersion) + ")");
  }
  if (version < 1) {
    auto created = db.exec(kSchemaV1);
    if (!created) return created.error();
  }
  if (version < 2) {
    auto added = db.exec(kSchemaV2);
    if (!added) return added.error();
  }
  if (version < 3) {
    auto added = db.exec(kSchemaV3);
    if (!added) return added.error();
  }
  // Later schema versions add their steps here: if (version < 4) { ... }
  if (version != kSchemaVersion) {
    auto set = db.exec("PRAGMA user_version = " + std::to_string(kSchemaVersion));
    if (!set) return set.error();
  }
  return tx->commit();
}

Result<void> prepareAll(Database& db, Statements& s) {
  const std::string cols = kVersionColumns;
  struct Item {
    Statement* stmt;
    std::string sql;
  };
  Item items[] = {
      {&s.maxVersion, "SELECT COALESCE(MAX(version), 0) FROM versions WHERE name = ?1"},
      {&s.upsertFunction,
       "INSERT INTO functions (name, active_version, updated_at_ms) VALUES (?1, ?2, ?3) "
       "ON CONFLICT (name) DO UPDATE SET active_version = excluded.active_version, "
       "updated_at_ms = excluded.updated_at_ms"},
      {&s.insertVersion,
       "INSERT INTO versions (" + cols + ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"},
      {&s.selectActive,
       "SELECT v.name, v.version, v.module_hash, v.module_size, v.memory_mb, v.timeout_ms, "
       "v.concurrency, v.env, v.created_at_ms, v.options FROM functions f JOIN versions v "
       "ON v.name = f.name AND v.version = f.active_version WHERE f.name = ?1"},
      {&s.selectVersions, "SELECT " + cols + " FROM versions WHERE name = ?1 ORDER BY version"},
      {&s.selectPrevious, "SELECT " + cols +
                              " FROM versions WHERE name = ?1 AND version < ?2 "
                              "ORDER BY version DESC LIMIT 1"},
      {&s.selectActiveNumber, "SELECT active_version FROM functions WHERE name = ?1"},
      {&s.setActive,
       "UPDATE functions SET active_version = ?2, updated_at_ms = ?3 WHERE name = ?1"},
      {&s.listFunctions,
       "SELECT f.name, f.active_version, MAX(v.version), COUNT(v.version), f.updated_at_ms "
       "FROM functions f JOIN versions v ON v.name = f.name GROUP BY f.name ORDER BY f.name"},
      {&s.deleteVersions, "DELETE FROM versions WHERE name = ?1"},
      {&s.deleteFunction, "DELETE FROM functions WHERE name = ?1"},
      {&s.replaceVersion, "INSERT OR REPLACE INTO versions (" + cols +
                              ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"},
      {&s.markUnpublished,
       "INSERT INTO unpublished (name, change) "
       "VALUES (?1, (SELECT COALESCE(MAX(change), 0) + 1 FROM unpublished)) "
       "ON CONFLICT (name) DO UPDATE SET change = excluded.change"},
      {&s.selectUnpublished, "SELECT name, change FROM unpublished ORDER BY change"},
      {&s.selectUnpublishedOne, "SELECT 1 FROM unpublished WHERE name = ?1"},
      {&s.deletePublished, "DELETE FROM unpublished WHERE name = ?1 AND change = ?2"},
      {&s.selectModuleHashes, "SELECT DISTINCT module_hash FROM versions"},
  };
  for (auto& item : items) {
    auto stmt = db.prepare(item.sql);
    if (!stmt) return stmt.error();
    *item.stmt = std::move(*stmt);
  }
  return {};
}

}  // namespace

Result<std::unique_ptr<Registry>> Registry::open(const fs::path& dataDir) {
  auto impl = std::make_unique<Impl>(dataDir);
  for (const fs::path& dir : {dataDir, dataDir / "modules"}) {
    if (auto created = createPrivateDirectory(dir); !created) return created.error();
  }
  auto db = Database::open(dataDir / "registry.db");
  if (!db) return db.error();
  MutexLock lock(impl->mu);  // not shared yet; the lock keeps the analysis exact
  impl->db = std::move(*db);
  Database& d = *impl->db;

  for (const char* pragma : {"PRAGMA foreign_keys = ON", "PRAGMA synchronous = FULL"}) {
    auto r = d.exec(pragma);
    if (!r) return r.error();
  }
  auto busy = d.exec("PRAGMA busy_timeout = " + std::to_string(kBusyTimeoutMs));
  if (!busy) return busy.error();
  // WAL: readers do not block the writer, and with synchronous = FULL every commit is
  // fsynced to the log before COMMIT returns. The mode is persistent in the file.
  auto mode = d.queryText("PRAGMA journal_mode = WAL");
  if (!mode) return mode.error();
  if (*mode != "wal") {
    return Error(ErrorCode::kIo,
                 "registry database: cannot use WAL journal mode (got \"" + *mode + "\")");
  }
  auto migrated = migrate(d);
  if (!migrated) return migrated.error();
  auto prepared = prepareAll(d, impl->stmts);
  if (!prepared) return prepared.error();

  // The database file and the modules directory may have just been created: make their
  // directory entries durable too.
  for (const fs::path& dir : {dataDir, dataDir / "modules"}) {
    auto synced = syncDirectory(dir);
    if (!synced) return synced.error();
  }
  impl->modules.removeStaleTempFiles(kStaleTempAge);
  return std::unique_ptr<Registry>(new Registry(std::move(impl)));
}

Registry::Registry(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Registry::~Registry() = default;

Result<std::string> Registry::putModule(std::span<const uint8_t> bytes) {
  return impl_->modules.put(bytes);
}

Result<std::vector<uint8_t>> Registry::readModule(const std::string& hash) {
  return impl_->modules.read(hash);
}

Result<FunctionVersion> Registry::addVersion(const std::string& name, const std::string& moduleHash,
                                             uint64_t moduleSize,
                                             const FunctionSettings& settings) {
  if (auto ok = checkName(name); !ok) return ok.error();
  auto env = encodeEnv(settings.env);
  if (!env) return env.error();
  auto options = encodeOptions(settings);
  if (!options) return options.error();

  MutexLock lock(impl_->mu);
  Statements& s = impl_->stmts;
  auto tx = Transaction::begin(*impl_->db);
  if (!tx) return tx.error();
  // Checked inside the write transaction: collectModules deletes files inside one too, so a
  // version never names a file that a collection (in any process) has just removed.
  auto stored = impl_->modules.size(moduleHash);
  if (!stored) {
    if (stored.error().code() != ErrorCode::kNotFound) return stored.error();
    return Error(ErrorCode::kNotFound,
                 stored.error().message() + " (store it with putModule before deploying)");
  }
  if (*stored != moduleSize) {
    return Error(ErrorCode::kInvalidArgument, "module size " + std::to_string(moduleSize) +
                                                  " does not match module " + moduleHash + " (" +
                                                  std::to_string(*stored) + " bytes)");
  }

  int64_t latest = 0;
  {
    StatementUse q(s.maxVersion);
    if (auto r = q->bind(1, name); !r) return r.error();
    auto step = q->step();
    if (!step) return step.error();
    latest = q->columnInt(0);
  }
  if (latest >= std::numeric_limits<uint32_t>::max()) {
    return Error(ErrorCode::kConflict, functionLabel(name) + " has no version numbers left");
  }

  FunctionVersion v;
  v.name = name;
  v.version = static_cast<uint32_t>(latest + 1);
  v.moduleHash = moduleHash;
  v.moduleSize = moduleSize;
  v.settings = settings;
  v.createdAtMs = unixMillis();

  {
    StatementUse q(s.upsertFunction);
    if (auto r = q->bindAll(name, int64_t{v.version}, v.createdAtMs); !r) return r.error();
    if (auto r = q->run(); !r) return r.error();
  }
  {
    StatementUse q(s.insertVersion);
    auto bound = q->bindAll(name, int64_t{v.version}, moduleHash, static_cast<int64_t>(moduleSize),
                            int64_t{settings.memoryMb}, int64_t{settings.timeoutMs},
                            int64_t{settings.concurrency}, *env, v.createdAtMs, *options);
    if (!bound) return bound.error();
    if (auto r = q->run(); !r) return r.error();
  }
  if (auto r = impl_->journalChange(name); !r) return r.error();
  if (auto r = tx->commit(); !r) return r.error();
  return v;
}

Result<std::optional<FunctionVersion>> Registry::active(const std::string& name) {
  if (auto ok = checkName(name); !ok) return ok.error();
  MutexLock lock(impl_->mu);
  StatementUse q(impl_->stmts.selectActive);
  if (auto r = q->bind(1, name); !r) return r.error();
  auto step = q->step();
  if (!step) return step.error();
  if (*step == Statement::Step::kDone) return std::optional<FunctionVersion>();
  auto v = readVersion(impl_->stmts.selectActive);
  if (!v) return v.error();
  return std::optional<FunctionVersion>(std::move(*v));
}

Result<std::vector<FunctionSummary>> Registry::list() {
  MutexLock lock(impl_->mu);
  Statement& s = impl_->stmts.listFunctions;
  StatementUse q(s);
  std::vector<FunctionSummary> out;
  for (;;) {
    auto step = s.step();
    if (!step) return step.error();
    if (*step == Statement::Step::kDone) break;
    FunctionSummary f;
    f.name = s.columnText(0);
    if (!toU32(s.columnInt(1), f.activeVersion) || !toU32(s.columnInt(2), f.latestVersion) ||
        !toU32(s.columnInt(3), f.versionCount)) {
      return Error(ErrorCode::kIo,
                   "registry database: " + functionLabel(f.name) + " has a corrupt row");
    }
    f.updatedAtMs = s.columnInt(4);
    out.push_back(std::move(f));
  }
  return out;
}

Result<std::vector<FunctionVersion>> Registry::versions(const std::string& name) {
  if (auto ok = checkName(name); !ok) return ok.error();
  MutexLock lock(impl_->mu);
  Statement& s = impl_->stmts.selectVersions;
  StatementUse q(s);
  if (auto r = s.bind(1, name); !r) return r.error();
  std::vector<FunctionVersion> out;
  for (;;) {
    auto step = s.step();
    if (!step) return step.error();
    if (*step == Statement::Step::kDone) break;
    auto v = readVersion(s);
    if (!v) return v.error();
    out.push_back(std::move(*v));
  }
  return out;
}

Result<FunctionVersion> Registry::rollback(const std::string& name) {
  if (auto ok = checkName(name); !ok) return ok.error();
  MutexLock lock(impl_->mu);
  Statements& s = impl_->stmts;
  auto tx = Transaction::begin(*impl_->db);
  if (!tx) return tx.error();

  int64_t current = 0;
  {
    StatementUse q(s.selectActiveNumber);
    if (auto r = q->bind(1, name); !r) return r.error();
    auto step = q->step();
    if (!step) return step.error();
    if (*step == Statement::Step::kDone) {
      return Error(ErrorCode::kNotFound, functionLabel(name) + " does not exist");
    }
    current = q->columnInt(0);
  }
  std::optional<FunctionVersion> previous;
  {
    StatementUse q(s.selectPrevious);
    if (auto r = q->bindAll(name, current); !r) return r.error();
    auto step = q->step();
    if (!step) return step.error();
    if (*step == Statement::Step::kDone) {
      return Error(ErrorCode::kConflict,
                   functionLabel(name) + " has no version before " + std::to_string(current));
    }
    auto v = readVersion(s.selectPrevious);
    if (!v) return v.error();
    previous = std::move(*v);
  }
  {
    StatementUse q(s.setActive);
    auto bound = q->bindAll(name, int64_t{previous->version}, unixMillis());
    if (!bound) return bound.error();
    if (auto r = q->run(); !r) return r.error();
  }
  if (auto r = impl_->journalChange(name); !r) return r.error();
  if (auto r = tx->commit(); !r) return r.error();
  return std::move(*previous);
}

Result<bool> Registry::remove(const std::string& name, ChangeSource source) {
  if (auto ok = checkName(name); !ok) return ok.error();
  MutexLock lock(impl_->mu);
  Statements& s = impl_->stmts;
  auto tx = Transaction::begin(*impl_->db);
  if (!tx) return tx.error();
  {
    StatementUse q(s.deleteVersions);
    if (auto r = q->bind(1, name); !r) return r.error();
    if (auto r = q->run(); !r) return r.error();
  }
  bool existed = false;
  {
    StatementUse q(s.deleteFunction);
    if (auto r = q->bind(1, name); !r) return r.error();
    if (auto r = q->run(); !r) return r.error();
    existed = impl_->db->changes() > 0;
  }
  if (existed && source == ChangeSource::kLocal) {
    if (auto r = impl_->journalChange(name); !r) return r.error();
  }
  // Module files stay until collectModules: they are content-addressed and may be shared
  // with other functions and versions.
  if (auto r = tx->commit(); !r) return r.error();
  return existed;
}

ModuleHold Registry::holdModule(const std::string& hash) {
  MutexLock lock(impl_->holds->mu);
  ++impl_->holds->counts[hash];
  return ModuleHold(impl_->holds, hash);
}

ModuleHold::ModuleHold(std::shared_ptr<Registry::HoldTable> table, std::string hash)
    : table_(std::move(table)), hash_(std::move(hash)) {}

ModuleHold::~ModuleHold() {
  if (!table_) return;
  MutexLock lock(table_->mu);
  auto it = table_->counts.find(hash_);
  if (it != table_->counts.end() && --it->second == 0) table_->counts.erase(it);
}

Result<ModuleCollection> Registry::collectModules(const LiveModulesHook& alsoWhileHeld) {
  MutexLock holdLock(impl_->holds->mu);
  MutexLock lock(impl_->mu);
  // The write lock keeps addVersion and adoptVersion, in this process or another, from
  // checking a module file between the reading of the references and the deletions.
  auto tx = Transaction::begin(*impl_->db);
  if (!tx) return tx.error();
  std::set<std::string> live;
  for (const auto& [hash, count] : impl_->holds->counts) live.insert(hash);
  {
    Statement& s = impl_->stmts.selectModuleHashes;
    StatementUse q(s);
    for (;;) {
      auto step = s.step();
      if (!step) return step.error();
      if (*step == Statement::Step::kDone) break;
      live.insert(s.columnText(0));
    }
  }
  auto stored = impl_->modules.list();
  if (!stored) return stored.error();
  ModuleCollection out;
  for (const auto& hash : *stored) {
    if (live.contains(hash)) continue;
    auto freed = impl_->modules.remove(hash);
    if (!freed) return freed.error();
    out.removed.push_back(hash);
    out.bytesFreed += *freed;
  }
  if (auto r = tx->commit(); !r) return r.error();
  if (alsoWhileHeld) alsoWhileHeld(live);
  return out;
}

Result<void> Registry::truncateLog() {
  MutexLock lock(impl_->mu);
  return impl_->db->truncateLog();
}

Result<void> Registry::adoptVersion(const FunctionVersion& v) {
  if (auto ok = checkName(v.name); !ok) return ok.error();
  if (v.version == 0) return Error(ErrorCode::kInvalidArgument, "version numbers start at 1");
  auto env = encodeEnv(v.settings.env);
  if (!env) return env.error();
  auto options = encodeOptions(v.settings);
  if (!options) return options.error();
  MutexLock lock(impl_->mu);
  Statements& s = impl_->stmts;
  auto tx = Transaction::begin(*impl_->db);
  if (!tx) return tx.error();
  auto stored = impl_->modules.size(v.moduleHash);  // inside the transaction: see addVersion
  if (!stored) return stored.error();
  if (*stored != v.moduleSize) {
    return Error(ErrorCode::kInvalidArgument, "module size " + std::to_string(v.moduleSize) +
                                                  " does not match module " + v.moduleHash);
  }
  {
    StatementUse q(s.upsertFunction);
    if (auto r = q->bindAll(v.name, int64_t{v.version}, unixMillis()); !r) return r.error();
    if (auto r = q->run(); !r) return r.error();
  }
  {
    StatementUse q(s.replaceVersion);
    auto bound = q->bindAll(v.name, int64_t{v.version}, v.moduleHash,
                            static_cast<int64_t>(v.moduleSize), int64_t{v.settings.memoryMb},
                            int64_t{v.settings.timeoutMs}, int64_t{v.settings.concurrency}, *env,
                            v.createdAtMs, *options);
    if (!bound) return bound.error();
    if (auto r = q->run(); !r) return r.error();
  }
  return tx->commit();
}

void Registry::setChangeJournal(ChangeJournal journal) { impl_->journal = journal; }

Result<std::vector<UnpublishedChange>> Registry::unpublished() {
  MutexLock lock(impl_->mu);
  Statement& s = impl_->stmts.selectUnpublished;
  StatementUse q(s);
  std::vector<UnpublishedChange> out;
  for (;;) {
    auto step = s.step();
    if (!step) return step.error();
    if (*step == Statement::Step::kDone) break;
    out.push_back(UnpublishedChange{s.columnText(0), s.columnInt(1)});
  }
  return out;
}

Result<bool> Registry::isUnpublished(const std::string& name) {
  MutexLock lock(impl_->mu);
  StatementUse q(impl_->stmts.selectUnpublishedOne);
  if (auto r = q->bind(1, name); !r) return r.error();
  auto step = q->step();
  if (!step) return step.error();
  return *step == Statement::Step::kRow;
}

Result<bool> Registry::markPublished(const UnpublishedChange& change) {
  MutexLock lock(impl_->mu);
  StatementUse q(impl_->stmts.deletePublished);
  if (auto r = q->bindAll(change.name, change.change); !r) return r.error();
  if (auto r = q->run(); !r) return r.error();
  return impl_->db->changes() > 0;
}

}  // namespace tern::store
