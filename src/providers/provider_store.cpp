#include "providers/provider_store.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "util/sqlite.h"
#include "util/names.h"

namespace tern::providers {

using json = nlohmann::json;

namespace {

constexpr int kBusyTimeoutMs = 5000;

// A row's JSON as parseProvider/parseRoute take a request body: the stored value is the
// API's JSON (providerJson/routeJson), whose name field ("name", "function") is the row's
// key and is given to the parser separately, so it is left out here.
Result<std::string> bodyOf(std::string_view stored, const char* keyField) {
  json j = json::parse(stored, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return Error(ErrorCode::kInternal, "the stored value is not a JSON object");
  j.erase(keyField);
  return j.dump();
}

// A stored row that does not parse is damage to the file (or a value written by a tern
// with other rules): an internal error naming the row, never the caller's mistake.
Error unreadable(std::string_view what, std::string_view key, const Error& e) {
  return Error(ErrorCode::kInternal,
               fmt::format("providers database: the {} \"{}\" cannot be read: {}", what, key, e.message()));
}

Result<Provider> readProvider(std::string_view name, std::string_view stored) {
  auto body = bodyOf(stored, "name");
  if (!body.ok()) return unreadable("provider", name, body.error());
  auto p = parseProvider(name, *body);
  if (!p.ok()) return unreadable("provider", name, p.error());
  return p;
}

Result<Route> readRoute(std::string_view function, std::string_view stored) {
  auto body = bodyOf(stored, "function");
  if (!body.ok()) return unreadable("route of", function, body.error());
  auto r = parseRoute(function, *body);
  if (!r.ok()) return unreadable("route of", function, r.error());
  return r;
}

// Every (key, json) row of a table, in key order.
Result<std::vector<std::pair<std::string, std::string>>> rows(Database& db, const std::string& sql) {
  auto stmt = db.prepare(sql);
  if (!stmt.ok()) return stmt.error();
  std::vector<std::pair<std::string, std::string>> out;
  for (;;) {
    auto row = stmt->step();
    if (!row.ok()) return row.error();
    if (*row == Statement::Step::kDone) break;
    out.emplace_back(stmt->columnText(0), stmt->columnText(1));
  }
  return out;
}

// The JSON of one row by key, or nullopt.
Result<std::optional<std::string>> valueOf(Database& db, const std::string& sql, std::string_view key) {
  auto stmt = db.prepare(sql);
  if (!stmt.ok()) return stmt.error();
  if (auto b = stmt->bindAll(key); !b.ok()) return b.error();
  auto row = stmt->step();
  if (!row.ok()) return row.error();
  if (*row == Statement::Step::kDone) return std::optional<std::string>();
  return std::optional<std::string>(stmt->columnText(0));
}

Result<void> upsert(Database& db, const std::string& sql, std::string_view key, const std::string& value) {
  auto stmt = db.prepare(sql);
  if (!stmt.ok()) return stmt.error();
  if (auto b = stmt->bindAll(key, value); !b.ok()) return b.error();
  return stmt->run();
}

// True when a row was deleted.
Result<bool> removeRow(Database& db, const std::string& sql, std::string_view key) {
  auto stmt = db.prepare(sql);
  if (!stmt.ok()) return stmt.error();
  if (auto b = stmt->bindAll(key); !b.ok()) return b.error();
  if (auto ok = stmt->run(); !ok.ok()) return ok.error();
  return db.changes() > 0;
}

}  // namespace

ProviderStore::ProviderStore(std::unique_ptr<Database> db) : db_(std::move(db)) {}

ProviderStore::~ProviderStore() = default;

Result<std::unique_ptr<ProviderStore>> ProviderStore::open(const std::filesystem::path& file) {
  auto db = Database::open(file);
  if (!db.ok()) return db.error();
  auto& d = **db;
  for (const std::string& sql :
       {fmt::format("PRAGMA busy_timeout = {}", kBusyTimeoutMs),
        std::string("CREATE TABLE IF NOT EXISTS providers (name TEXT PRIMARY KEY, json TEXT NOT NULL)"),
        std::string("CREATE TABLE IF NOT EXISTS routes (function TEXT PRIMARY KEY, json TEXT NOT NULL)")}) {
    if (auto ok = d.exec(sql); !ok.ok()) return ok.error();
  }
  auto mode = d.queryText("PRAGMA journal_mode = WAL");
  if (!mode.ok()) return mode.error();
  return std::unique_ptr<ProviderStore>(new ProviderStore(std::move(*db)));
}

Result<void> ProviderStore::putProvider(const Provider& p) {
  // parseProvider refuses these; the store holds to them whoever calls it.
  if (p.name == kLocal || !isFunctionName(p.name)) {
    return Error(ErrorCode::kInvalidArgument,
                 fmt::format("\"{}\" cannot name a provider (\"local\" is this node; others follow the "
                             "function-name rule)",
                             p.name));
  }
  MutexLock lock(mu_);
  return upsert(*db_,
                "INSERT INTO providers (name, json) VALUES (?1, ?2) "
                "ON CONFLICT (name) DO UPDATE SET json = excluded.json",
                p.name, providerJson(p));
}

Result<std::optional<Provider>> ProviderStore::provider(std::string_view name) {
  MutexLock lock(mu_);
  auto value = valueOf(*db_, "SELECT json FROM providers WHERE name = ?1", name);
  if (!value.ok()) return value.error();
  if (!*value) return std::optional<Provider>();
  auto p = readProvider(name, **value);
  if (!p.ok()) return p.error();
  return std::optional<Provider>(std::move(*p));
}

Result<std::vector<Provider>> ProviderStore::providers() {
  MutexLock lock(mu_);
  auto all = rows(*db_, "SELECT name, json FROM providers ORDER BY name");
  if (!all.ok()) return all.error();
  std::vector<Provider> out;
  for (const auto& [name, value] : *all) {
    auto p = readProvider(name, value);
    // One damaged row must not take every other provider away from the router; it stays
    // removable by name.
    if (!p.ok()) {
      spdlog::warn("{}", p.error().message());
      continue;
    }
    out.push_back(std::move(*p));
  }
  return out;
}

Result<bool> ProviderStore::removeProvider(std::string_view name) {
  MutexLock lock(mu_);
  // The routes are read and the provider removed in one transaction, so no route can come
  // to name it in between (other connections to the file included).
  auto tx = Transaction::begin(*db_);
  if (!tx.ok()) return tx.error();
  auto all = rows(*db_, "SELECT function, json FROM routes ORDER BY function");
  if (!all.ok()) return all.error();
  std::vector<std::string> users;
  for (const auto& [function, value] : *all) {
    auto r = readRoute(function, value);
    if (!r.ok()) {
      spdlog::warn("{}", r.error().message());
      continue;
    }
    for (const auto& n : r->providers) {
      if (n == name) {
        users.push_back(function);
        break;
      }
    }
  }
  if (!users.empty()) {
    return Error(ErrorCode::kConflict,
                 fmt::format("provider \"{}\" is named by the route{} of {}; change or remove {} first", name,
                             users.size() == 1 ? "" : "s", fmt::join(users, ", "),
                             users.size() == 1 ? "that route" : "those routes"));
  }
  auto removed = removeRow(*db_, "DELETE FROM providers WHERE name = ?1", name);
  if (!removed.ok()) return removed.error();
  if (auto ok = tx->commit(); !ok.ok()) return ok.error();
  return *removed;
}

Result<void> ProviderStore::putRoute(const Route& r) {
  if (!isFunctionName(r.function)) {
    return Error(ErrorCode::kInvalidArgument, fmt::format("\"{}\" is not a function name", r.function));
  }
  MutexLock lock(mu_);
  return upsert(*db_,
                "INSERT INTO routes (function, json) VALUES (?1, ?2) "
                "ON CONFLICT (function) DO UPDATE SET json = excluded.json",
                r.function, routeJson(r));
}

Result<std::optional<Route>> ProviderStore::route(std::string_view function) {
  MutexLock lock(mu_);
  auto value = valueOf(*db_, "SELECT json FROM routes WHERE function = ?1", function);
  if (!value.ok()) return value.error();
  if (!*value) return std::optional<Route>();
  auto r = readRoute(function, **value);
  if (!r.ok()) return r.error();
  return std::optional<Route>(std::move(*r));
}

Result<std::vector<Route>> ProviderStore::routes() {
  MutexLock lock(mu_);
  auto all = rows(*db_, "SELECT function, json FROM routes ORDER BY function");
  if (!all.ok()) return all.error();
  std::vector<Route> out;
  for (const auto& [function, value] : *all) {
    auto r = readRoute(function, value);
    if (!r.ok()) {
      spdlog::warn("{}", r.error().message());
      continue;
    }
    out.push_back(std::move(*r));
  }
  return out;
}

Result<bool> ProviderStore::removeRoute(std::string_view function) {
  MutexLock lock(mu_);
  return removeRow(*db_, "DELETE FROM routes WHERE function = ?1", function);
}

}  // namespace tern::providers
