#include "cluster/jetstream_token_store.h"

#include "cluster/nats_options.h"

#include <fmt/format.h>
#include <nats/nats.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "cluster/nats_options.h"
#include "cluster/nats_text.h"

namespace tern::cluster {

namespace {

constexpr const char* kBucket = "tern_tokens";

std::string recordKey(std::string_view id) { return fmt::format("tok.{}", id); }
std::string nameKey(std::string_view name) { return fmt::format("name.{}", name); }

std::string valueOf(kvEntry* e) {
  const char* data = static_cast<const char*>(kvEntry_Value(e));
  return data ? std::string(data, static_cast<size_t>(kvEntry_ValueLen(e))) : std::string();
}

void onConnected(natsConnection*, void* closure);

}  // namespace

struct JetStreamTokenStore::Connection {
  JetStreamTokenOptions opt;
  natsOptions* options = nullptr;
  natsConnection* conn = nullptr;
  jsCtx* js = nullptr;
  std::mutex mu;
  kvStore* bucket = nullptr;  // bound on first use (mu)

  ~Connection() {
    kvStore_Destroy(bucket);
    jsCtx_Destroy(js);
    closeNats(conn, options);
  }

  bool connected() const { return conn && natsConnection_Status(conn) == NATS_CONN_STATUS_CONNECTED; }

  Error failure(std::string_view what, natsStatus s) const {
    switch (s) {
      case NATS_TIMEOUT:
      case NATS_NO_RESPONDERS:
      case NATS_NO_SERVER:
      case NATS_NOT_YET_CONNECTED:
      case NATS_CONNECTION_CLOSED:
      case NATS_CONNECTION_DISCONNECTED:
      case NATS_STALE_CONNECTION:
        return Error(ErrorCode::kUnavailable,
                     fmt::format("tokens: {}: JetStream at {} does not answer: {}", what, opt.url, natsText(s)));
      default:
        return Error(ErrorCode::kIo, fmt::format("tokens: {}: {}", what, natsText(s)));
    }
  }

  // The bucket, created on first use. kUnavailable at once while NATS is not connected.
  Result<kvStore*> kv() {
    {
      std::lock_guard lock(mu);
      if (bucket) {
        if (!connected()) {
          return Error(ErrorCode::kUnavailable, fmt::format("tokens: NATS at {} is not connected", opt.url));
        }
        return bucket;
      }
    }
    if (!connected()) {
      return Error(ErrorCode::kUnavailable, fmt::format("tokens: NATS at {} is not connected", opt.url));
    }
    kvStore* kv = nullptr;
    natsStatus s = js_KeyValue(&kv, js, kBucket);
    if (s == NATS_NOT_FOUND) {
      kvConfig cfg;
      kvConfig_Init(&cfg);
      cfg.Bucket = kBucket;
      cfg.History = 1;
      cfg.StorageType = js_FileStorage;
      cfg.Replicas = 1;
      s = js_CreateKeyValue(&kv, js, &cfg);
    }
    if (s != NATS_OK) return failure(fmt::format("bucket {}", kBucket), s);
    std::lock_guard lock(mu);
    if (bucket) {
      kvStore_Destroy(kv);  // another thread bound it meanwhile
    } else {
      bucket = kv;
    }
    return bucket;
  }

  // The value of `key`, nullopt when there is none.
  Result<std::optional<std::string>> get(kvStore* kv, const std::string& key) {
    kvEntry* e = nullptr;
    natsStatus s = kvStore_Get(&e, kv, key.c_str());
    if (s == NATS_NOT_FOUND) return std::optional<std::string>();
    if (s != NATS_OK) return failure(fmt::format("reading {}", key), s);
    std::string value = valueOf(e);
    kvEntry_Destroy(e);
    return std::optional<std::string>(std::move(value));
  }
};

namespace {

void onConnected(natsConnection*, void* closure) {
  spdlog::info("tokens: connected to NATS at {}", static_cast<JetStreamTokenStore::Connection*>(closure)->opt.url);
}

}  // namespace

Result<std::unique_ptr<JetStreamTokenStore>> JetStreamTokenStore::connect(JetStreamTokenOptions options) {
  if (options.requestTimeout <= std::chrono::milliseconds(0)) {
    return Error(ErrorCode::kInvalidArgument, "the JetStream request timeout must be positive");
  }
  auto c = std::make_unique<Connection>();
  c->opt = std::move(options);
  auto check = [](natsStatus s, std::string_view what) -> Result<void> {
    if (s == NATS_OK) return {};
    return Error(ErrorCode::kInvalidArgument, fmt::format("NATS {}: {}", what, natsText(s)));
  };
  auto natsOpts = makeNatsOptions(c->opt.url, "tern-tokens", c->opt.nats);
  if (!natsOpts.ok()) return natsOpts.error();
  c->options = *natsOpts;
  natsOptions* o = c->options;
  natsOptions_SetFailRequestsOnDisconnect(o, true);
  // With a callback the first connection is made in the background (NATS_NOT_YET_CONNECTED):
  // a node whose NATS is down still starts, as with the other cluster connections.
  natsOptions_SetRetryOnFailedConnect(o, true, onConnected, c.get());
  natsStatus s = natsConnection_Connect(&c->conn, o);
  if (s != NATS_OK && s != NATS_NOT_YET_CONNECTED) {
    ErrorCode code = s == NATS_INVALID_ARG || s == NATS_ADDRESS_MISSING ? ErrorCode::kInvalidArgument
                                                                         : ErrorCode::kUnavailable;
    return Error(code, fmt::format("NATS connection to {}: {}", c->opt.url, natsText(s)));
  }
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = c->opt.requestTimeout.count();
  if (!c->opt.jetStreamDomain.empty()) jo.Domain = c->opt.jetStreamDomain.c_str();
  if (auto ok = check(natsConnection_JetStream(&c->js, c->conn, &jo), "JetStream"); !ok) return ok.error();
  return std::unique_ptr<JetStreamTokenStore>(new JetStreamTokenStore(std::move(c)));
}

JetStreamTokenStore::JetStreamTokenStore(std::unique_ptr<Connection> nats) : nats_(std::move(nats)) {}

JetStreamTokenStore::~JetStreamTokenStore() = default;

Result<void> JetStreamTokenStore::create(const store::TokenRecord& record) {
  auto kv = nats_->kv();
  if (!kv.ok()) return kv.error();
  std::string name = nameKey(record.name);
  // The name first: the create fails when a live token holds it (on any node).
  natsStatus s = kvStore_Create(nullptr, *kv, name.c_str(), record.id.data(), static_cast<int>(record.id.size()));
  if (s != NATS_OK) {
    auto held = nats_->get(*kv, name);
    if (held.ok() && *held) {
      return Error(ErrorCode::kConflict,
                   fmt::format("a token named \"{}\" exists: revoke it first (tern token revoke {})", record.name,
                               record.name));
    }
    return nats_->failure(fmt::format("naming token {}", record.name), s);
  }
  std::string key = recordKey(record.id);
  std::string value = store::tokenRecordJson(record);
  s = kvStore_Put(nullptr, *kv, key.c_str(), value.data(), static_cast<int>(value.size()));
  if (s != NATS_OK) {
    kvStore_Delete(*kv, name.c_str());  // frees the name again; the token was never valid
    return nats_->failure(fmt::format("storing token {}", record.name), s);
  }
  std::lock_guard lock(mu_);
  seen_[record.id] = record;
  return {};
}

Result<std::optional<store::TokenRecord>> JetStreamTokenStore::revoke(std::string_view name, int64_t nowMs) {
  auto kv = nats_->kv();
  if (!kv.ok()) return kv.error();
  std::string nkey = nameKey(name);
  auto id = nats_->get(*kv, nkey);
  if (!id.ok()) return id.error();
  if (!*id) return std::optional<store::TokenRecord>();
  std::string key = recordKey(**id);
  auto value = nats_->get(*kv, key);
  if (!value.ok()) return value.error();
  if (!*value) return std::optional<store::TokenRecord>();
  auto record = store::parseTokenRecord(**value);
  if (!record.ok()) {
    return Error(ErrorCode::kInternal, fmt::format("tokens: {} cannot be read: {}", key, record.error().message()));
  }
  record->revokedMs = std::max<int64_t>(nowMs, 1);
  std::string updated = store::tokenRecordJson(*record);
  natsStatus s = kvStore_Put(nullptr, *kv, key.c_str(), updated.data(), static_cast<int>(updated.size()));
  if (s != NATS_OK) return nats_->failure(fmt::format("revoking token {}", record->name), s);
  // The record says revoked from here on; the name is free once its key is gone.
  s = kvStore_Delete(*kv, nkey.c_str());
  if (s != NATS_OK) spdlog::warn("tokens: the name of revoked token {} stays taken: {}", record->name, natsText(s));
  {
    std::lock_guard lock(mu_);
    seen_[record->id] = *record;
  }
  return std::optional<store::TokenRecord>(std::move(*record));
}

Result<std::vector<store::TokenRecord>> JetStreamTokenStore::list() {
  auto kv = nats_->kv();
  if (!kv.ok()) return kv.error();
  kvWatchOptions o;
  kvWatchOptions_Init(&o);
  o.IgnoreDeletes = true;
  kvWatcher* w = nullptr;
  natsStatus s = kvStore_Watch(&w, *kv, "tok.*", &o);
  if (s != NATS_OK) return nats_->failure("list of tokens", s);
  // The watcher delivers every current record, then a null entry.
  std::vector<store::TokenRecord> out;
  auto deadline = std::chrono::steady_clock::now() + nats_->opt.requestTimeout;
  for (;;) {
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    kvEntry* e = nullptr;
    s = left.count() > 0 ? kvWatcher_Next(&e, w, left.count()) : NATS_TIMEOUT;
    if (s != NATS_OK || e == nullptr) break;
    auto record = store::parseTokenRecord(valueOf(e));
    if (!record.ok()) {
      spdlog::warn("tokens: {} cannot be read: {}", kvEntry_Key(e), record.error().message());
    } else if (record->revokedMs == 0) {
      out.push_back(std::move(*record));
    }
    kvEntry_Destroy(e);
  }
  kvWatcher_Destroy(w);
  if (s != NATS_OK) return nats_->failure("list of tokens", s);
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return out;
}

Result<std::optional<store::TokenRecord>> JetStreamTokenStore::find(std::string_view id) {
  if (!store::isTokenId(id)) return std::optional<store::TokenRecord>();
  auto fromCache = [&]() -> std::optional<store::TokenRecord> {
    std::lock_guard lock(mu_);
    auto it = seen_.find(id);
    return it == seen_.end() ? std::nullopt : std::optional(it->second);
  };
  auto kv = nats_->kv();
  if (!kv.ok()) {
    if (kv.error().code() == ErrorCode::kUnavailable) {
      if (auto cached = fromCache()) return cached;
    }
    return kv.error();
  }
  std::string key = recordKey(id);
  auto value = nats_->get(*kv, key);
  if (!value.ok()) {
    if (value.error().code() == ErrorCode::kUnavailable) {
      if (auto cached = fromCache()) return cached;
    }
    return value.error();
  }
  if (!*value) return std::optional<store::TokenRecord>();
  auto record = store::parseTokenRecord(**value);
  if (!record.ok()) {
    return Error(ErrorCode::kInternal, fmt::format("tokens: {} cannot be read: {}", key, record.error().message()));
  }
  std::lock_guard lock(mu_);
  seen_[record->id] = *record;
  return std::optional<store::TokenRecord>(std::move(*record));
}

}  // namespace tern::cluster
