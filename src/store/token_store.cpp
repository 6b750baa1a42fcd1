#include "store/token_store.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "util/sqlite.h"
#include "util/names.h"

namespace tern::store {

using json = nlohmann::json;

namespace {

constexpr int kBusyTimeoutMs = 5000;

Error invalid(std::string message) { return Error(ErrorCode::kInvalidArgument, std::move(message)); }

bool isHex(std::string_view s, size_t size) {
  if (s.size() != size) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

Result<int64_t> intField(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer() || it->get<int64_t>() < 0) {
    return invalid(fmt::format("token record: \"{}\" must be an integer >= 0", key));
  }
  return it->get<int64_t>();
}

Result<double> numberField(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number() || !std::isfinite(it->get<double>()) || it->get<double>() < 0) {
    return invalid(fmt::format("token record: \"{}\" must be a number >= 0", key));
  }
  return it->get<double>();
}

Result<std::string> textField(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return invalid(fmt::format("token record: \"{}\" must be a string", key));
  return it->get<std::string>();
}

// A stored record that does not parse is damage to the file, never the caller's mistake.
Result<TokenRecord> readStored(std::string_view id, std::string_view text) {
  auto r = parseTokenRecord(text);
  if (!r.ok()) {
    return Error(ErrorCode::kInternal,
                 fmt::format("tokens database: the token {} cannot be read: {}", id, r.error().message()));
  }
  return r;
}

}  // namespace

bool isTokenId(std::string_view id) { return isHex(id, 16); }

std::string tokenRecordJson(const TokenRecord& r) {
  return json{{"id", r.id},
              {"name", r.name},
              {"hash", r.hash},
              {"scopes", r.scopes},
              {"created_ms", r.createdMs},
              {"expires_ms", r.expiresMs},
              {"rate", r.rate},
              {"burst", r.burst},
              {"revoked_ms", r.revokedMs}}
      .dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<TokenRecord> parseTokenRecord(std::string_view text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return invalid("token record: not a JSON object");
  TokenRecord r;
  auto id = textField(j, "id");
  if (!id.ok()) return id.error();
  if (!isTokenId(*id)) return invalid("token record: \"id\" must be 16 hex digits");
  r.id = std::move(*id);
  auto name = textField(j, "name");
  if (!name.ok()) return name.error();
  if (!isFunctionName(*name)) return invalid("token record: \"name\" breaks the name rule");
  r.name = std::move(*name);
  auto hash = textField(j, "hash");
  if (!hash.ok()) return hash.error();
  if (!isHex(*hash, 64)) return invalid("token record: \"hash\" must be 64 hex digits");
  r.hash = std::move(*hash);
  auto scopes = j.find("scopes");
  if (scopes == j.end() || !scopes->is_array() || scopes->empty()) {
    return invalid("token record: \"scopes\" must be a non-empty array");
  }
  for (const auto& s : *scopes) {
    if (!s.is_string()) return invalid("token record: \"scopes\" must hold strings");
    r.scopes.push_back(s.get<std::string>());
  }
  for (auto [key, out] : {std::pair{"created_ms", &r.createdMs}, std::pair{"expires_ms", &r.expiresMs},
                          std::pair{"revoked_ms", &r.revokedMs}}) {
    auto v = intField(j, key);
    if (!v.ok()) return v.error();
    *out = *v;
  }
  for (auto [key, out] : {std::pair{"rate", &r.rate}, std::pair{"burst", &r.burst}}) {
    auto v = numberField(j, key);
    if (!v.ok()) return v.error();
    *out = *v;
  }
  return r;
}

Result<std::unique_ptr<SqliteTokenStore>> SqliteTokenStore::open(const std::filesystem::path& file) {
  auto db = Database::open(file);
  if (!db.ok()) return db.error();
  auto& d = **db;
  for (const std::string& sql :
       {fmt::format("PRAGMA busy_timeout = {}", kBusyTimeoutMs),
        std::string("CREATE TABLE IF NOT EXISTS tokens (id TEXT PRIMARY KEY, name TEXT NOT NULL, "
                    "revoked_ms INTEGER NOT NULL, record TEXT NOT NULL)"),
        // At most one token by a name that is not revoked.
        std::string("CREATE UNIQUE INDEX IF NOT EXISTS tokens_live_name ON tokens (name) WHERE revoked_ms = 0")}) {
    if (auto ok = d.exec(sql); !ok.ok()) return ok.error();
  }
  auto mode = d.queryText("PRAGMA journal_mode = WAL");
  if (!mode.ok()) return mode.error();
  return std::unique_ptr<SqliteTokenStore>(new SqliteTokenStore(std::move(*db)));
}

SqliteTokenStore::SqliteTokenStore(std::unique_ptr<Database> db) : db_(std::move(db)) {}

SqliteTokenStore::~SqliteTokenStore() = default;

Result<void> SqliteTokenStore::create(const TokenRecord& record) {
  MutexLock lock(mu_);
  auto tx = Transaction::begin(*db_);
  if (!tx.ok()) return tx.error();
  auto taken = db_->prepare("SELECT 1 FROM tokens WHERE name = ?1 AND revoked_ms = 0");
  if (!taken.ok()) return taken.error();
  if (auto b = taken->bindAll(record.name); !b.ok()) return b.error();
  auto row = taken->step();
  if (!row.ok()) return row.error();
  if (*row == Statement::Step::kRow) {
    return Error(ErrorCode::kConflict,
                 fmt::format("a token named \"{}\" exists: revoke it first (tern token revoke {})",
                             record.name, record.name));
  }
  auto insert = db_->prepare("INSERT INTO tokens (id, name, revoked_ms, record) VALUES (?1, ?2, ?3, ?4)");
  if (!insert.ok()) return insert.error();
  if (auto b = insert->bindAll(record.id, record.name, record.revokedMs, tokenRecordJson(record)); !b.ok()) {
    return b.error();
  }
  if (auto ok = insert->run(); !ok.ok()) return ok.error();
  return tx->commit();
}

Result<std::optional<TokenRecord>> SqliteTokenStore::revoke(std::string_view name, int64_t nowMs) {
  MutexLock lock(mu_);
  auto tx = Transaction::begin(*db_);
  if (!tx.ok()) return tx.error();
  auto select = db_->prepare("SELECT id, record FROM tokens WHERE name = ?1 AND revoked_ms = 0");
  if (!select.ok()) return select.error();
  if (auto b = select->bindAll(name); !b.ok()) return b.error();
  auto row = select->step();
  if (!row.ok()) return row.error();
  if (*row == Statement::Step::kDone) return std::optional<TokenRecord>();
  auto record = readStored(select->columnText(0), select->columnText(1));
  if (!record.ok()) return record.error();
  record->revokedMs = std::max<int64_t>(nowMs, 1);
  auto update = db_->prepare("UPDATE tokens SET revoked_ms = ?1, record = ?2 WHERE id = ?3");
  if (!update.ok()) return update.error();
  if (auto b = update->bindAll(record->revokedMs, tokenRecordJson(*record), record->id); !b.ok()) {
    return b.error();
  }
  if (auto ok = update->run(); !ok.ok()) return ok.error();
  if (auto ok = tx->commit(); !ok.ok()) return ok.error();
  return std::optional<TokenRecord>(std::move(*record));
}

Result<std::vector<TokenRecord>> SqliteTokenStore::list() {
  MutexLock lock(mu_);
  auto select = db_->prepare("SELECT id, record FROM tokens WHERE revoked_ms = 0 ORDER BY name");
  if (!select.ok()) return select.error();
  std::vector<TokenRecord> out;
  for (;;) {
    auto row = select->step();
    if (!row.ok()) return row.error();
    if (*row == Statement::Step::kDone) break;
    auto record = readStored(select->columnText(0), select->columnText(1));
    if (!record.ok()) return record.error();
    out.push_back(std::move(*record));
  }
  return out;
}

Result<std::optional<TokenRecord>> SqliteTokenStore::find(std::string_view id) {
  if (!isTokenId(id)) return std::optional<TokenRecord>();
  MutexLock lock(mu_);
  auto select = db_->prepare("SELECT record FROM tokens WHERE id = ?1");
  if (!select.ok()) return select.error();
  if (auto b = select->bindAll(id); !b.ok()) return b.error();
  auto row = select->step();
  if (!row.ok()) return row.error();
  if (*row == Statement::Step::kDone) return std::optional<TokenRecord>();
  auto record = readStored(id, select->columnText(0));
  if (!record.ok()) return record.error();
  return std::optional<TokenRecord>(std::move(*record));
}

}  // namespace tern::store
