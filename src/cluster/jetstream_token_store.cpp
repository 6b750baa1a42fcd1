#include "cluster/jetstream_token_store.h"

#include <fmt/format.h>
#include <nats/nats.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>

#include "cluster/jetstream_kv.h"
#include "cluster/nats_options.h"
#include "cluster/nats_text.h"

namespace tern::cluster {

namespace {

constexpr const char* kBucket = "tern_tokens";
constexpr const char* kStream = "KV_tern_tokens";  // the bucket's stream
constexpr std::string_view kRecordPrefix = "tok.";
// Confirmations in a row that find the watch behind the same write before it is replaced
// by a new one (a watch whose consumer the server lost delivers nothing more).
constexpr int kBehindRounds = 3;

std::string recordKey(std::string_view id) { return fmt::format("tok.{}", id); }
std::string nameKey(std::string_view name) { return fmt::format("name.{}", name); }

std::string valueOf(kvEntry* e) {
  const char* data = static_cast<const char*>(kvEntry_Value(e));
  return data ? std::string(data, static_cast<size_t>(kvEntry_ValueLen(e))) : std::string();
}

int64_t steadyMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// The record an entry of the bucket holds, if it holds one.
std::optional<TokenCache::Entry> recordOf(const KvChange& e) {
  if (!e.key.starts_with(kRecordPrefix) || e.deleted) return std::nullopt;
  auto record = store::parseTokenRecord(e.value);
  if (!record.ok()) {
    spdlog::warn("tokens: {} cannot be read: {}", e.key, record.error().message());
    return std::nullopt;
  }
  return TokenCache::Entry{std::move(*record), e.revision};
}

}  // namespace

struct JetStreamTokenStore::Connection {
  JetStreamTokenOptions opt;
  natsOptions* options = nullptr;
  natsConnection* conn = nullptr;
  jsCtx* js = nullptr;
  std::unique_ptr<LazyBucket> bucket = std::make_unique<LazyBucket>(KvBucketSpec{kBucket, 1});
  std::atomic<uint64_t> reconnects{0};

  ~Connection() {
    bucket.reset();
    jsCtx_Destroy(js);
    closeNats(conn, options);
  }

  bool connected() const { return conn && natsConnection_Status(conn) == NATS_CONN_STATUS_CONNECTED; }

  Error failure(std::string_view what, natsStatus s, jsErrCode err = static_cast<jsErrCode>(0)) const {
    return natsFailure(fmt::format("tokens: {}", what), opt.url, s, err);
  }

  // The bucket, bound on first use. kUnavailable at once while NATS is not connected.
  Result<kvStore*> kv() {
    if (!connected()) {
      return Error(ErrorCode::kUnavailable, fmt::format("tokens: NATS at {} is not connected", opt.url));
    }
    return bucket->get(js, "tokens", opt.url);
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

  // The bucket's last sequence: every write to it up to now has a revision at most this.
  Result<uint64_t> lastSequence() {
    jsStreamInfo* si = nullptr;
    jsErrCode err = static_cast<jsErrCode>(0);
    natsStatus s = js_GetStreamInfo(&si, js, kStream, nullptr, &err);
    if (s != NATS_OK) return failure(fmt::format("state of bucket {}", kBucket), s, err);
    uint64_t last = si->State.LastSeq;
    jsStreamInfo_Destroy(si);
    return last;
  }
};

namespace {

void onConnected(natsConnection*, void* closure) {
  spdlog::info("tokens: connected to NATS at {}", static_cast<JetStreamTokenStore::Connection*>(closure)->opt.url);
}

void onReconnected(natsConnection* nc, void* closure) {
  static_cast<JetStreamTokenStore::Connection*>(closure)->reconnects.fetch_add(1);
  onConnected(nc, closure);
}

void onDisconnected(natsConnection* nc, void* closure) {
  if (natsConnection_IsClosed(nc)) return;  // closed by stop()
  auto* c = static_cast<JetStreamTokenStore::Connection*>(closure);
  spdlog::warn("tokens: disconnected from NATS at {}; token checks answer from this node's copy for at most "
               "{} ms after it was last known current",
               c->opt.url, c->opt.maxStaleness.count());
}

}  // namespace

Result<std::unique_ptr<JetStreamTokenStore>> JetStreamTokenStore::connect(JetStreamTokenOptions options,
                                                                          MetricsRegistry& metrics) {
  if (options.requestTimeout <= std::chrono::milliseconds(0)) {
    return Error(ErrorCode::kInvalidArgument, "the JetStream request timeout must be positive");
  }
  if (options.confirmInterval <= std::chrono::milliseconds(0) || options.maxStaleness <= options.confirmInterval) {
    return Error(ErrorCode::kInvalidArgument,
                 fmt::format("the tokens' maximum staleness ({} ms) must be longer than the interval at which "
                             "the copy is confirmed ({} ms)",
                             options.maxStaleness.count(), options.confirmInterval.count()));
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
  natsOptions_SetReconnectedCB(o, onReconnected, c.get());
  natsOptions_SetDisconnectedCB(o, onDisconnected, c.get());
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
  std::unique_ptr<JetStreamTokenStore> store(new JetStreamTokenStore(std::move(c), metrics));
  store->watcher_ = std::thread([s = store.get()] { s->watchLoop(); });
  return store;
}

JetStreamTokenStore::JetStreamTokenStore(std::unique_ptr<Connection> nats, MetricsRegistry& metrics)
    : nats_(std::move(nats)),
      cache_(nats_->opt.maxStaleness),
      loadsOk_(metrics.counter("tern_tokens_copy_loads_total",
                               "Loads of this node's copy of the cluster's tokens by a new watch", {{"result", "ok"}})),
      loadsFailed_(metrics.counter("tern_tokens_copy_loads_total",
                                   "Loads of this node's copy of the cluster's tokens by a new watch",
                                   {{"result", "failed"}})),
      confirmsCurrent_(metrics.counter("tern_tokens_copy_confirms_total",
                                       "Checks that this node's copy of the tokens has every write of the bucket",
                                       {{"result", "current"}})),
      confirmsBehind_(metrics.counter("tern_tokens_copy_confirms_total",
                                      "Checks that this node's copy of the tokens has every write of the bucket",
                                      {{"result", "behind"}})),
      confirmsFailed_(metrics.counter("tern_tokens_copy_confirms_total",
                                      "Checks that this node's copy of the tokens has every write of the bucket",
                                      {{"result", "failed"}})),
      usable_(metrics.gauge("tern_tokens_copy_usable",
                            "1 while token checks may answer from this node's copy of the cluster's tokens")) {}

JetStreamTokenStore::~JetStreamTokenStore() { stop(); }

void JetStreamTokenStore::stop() {
  {
    MutexLock lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  // Ends a watch or request the thread is waiting on (a local call: nothing is awaited).
  if (nats_->conn) natsConnection_Close(nats_->conn);
  if (watcher_.joinable()) watcher_.join();
}

bool JetStreamTokenStore::stopping() {
  MutexLock lock(mu_);
  return stopping_;
}

void JetStreamTokenStore::pause(std::chrono::milliseconds d) {
  MutexLock lock(mu_);
  lock.waitFor(wake_, d, [this]() TERN_REQUIRES(mu_) { return stopping_; });
}

void JetStreamTokenStore::watchLoop() {
  Connection& c = *nats_;
  std::unique_ptr<KvWatch> w;
  uint64_t epoch = 0;
  auto nextConfirm = std::chrono::steady_clock::now();
  uint64_t behindTarget = 0;
  int behindRounds = 0;
  bool failing = false;
  auto drop = [&] { w.reset(); };
  // A new watch: everything in the bucket, then the updates. Current as of the moment
  // just before the bucket's last sequence was asked.
  auto load = [&]() -> Result<void> {
    auto kv = c.kv();
    if (!kv.ok()) return kv.error();
    int64_t asked = steadyMs();
    auto last = c.lastSequence();
    if (!last.ok()) return last.error();
    std::unique_ptr<KvWatch> fresh;
    natsStatus s = KvWatch::open(fresh, c.conn, c.js, *kv);
    if (s != NATS_OK) return c.failure(fmt::format("watch of bucket {}", kBucket), s);
    std::vector<TokenCache::Entry> records;
    uint64_t through = *last;  // a write between the question and the watch is delivered too
    auto deadline = std::chrono::steady_clock::now() + c.opt.requestTimeout;
    for (;;) {
      auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      std::optional<KvChange> e;
      s = left.count() > 0 ? fresh->next(e, left.count()) : NATS_TIMEOUT;
      if (s != NATS_OK || !e) break;  // none: everything the bucket held is here
      through = std::max(through, e->revision);
      if (auto r = recordOf(*e)) records.push_back(std::move(*r));
    }
    if (s != NATS_OK) return c.failure(fmt::format("loading bucket {}", kBucket), s);
    cache_.load(std::move(records), through, asked);
    w = std::move(fresh);
    return {};
  };

  while (!stopping()) {
    usable_.set(cache_.usable(steadyMs()) ? 1 : 0);
    if (!w) {
      if (!c.connected()) {
        pause(c.opt.confirmInterval);
        continue;
      }
      epoch = c.reconnects.load();
      if (auto ok = load(); !ok.ok()) {
        loadsFailed_.inc();
        cache_.noteFailure(ok.error().message());
        if (!failing) spdlog::warn("{}; trying again", ok.error().message());
        failing = true;
        pause(c.opt.confirmInterval);
        continue;
      }
      loadsOk_.inc();
      if (failing) spdlog::info("tokens: this node's copy of the cluster's tokens is loaded");
      failing = false;
      behindRounds = 0;
      nextConfirm = std::chrono::steady_clock::now() + c.opt.confirmInterval;
      continue;
    }
    if (c.reconnects.load() != epoch || !c.connected()) {
      drop();  // loaded again once connected
      continue;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(nextConfirm - std::chrono::steady_clock::now());
    if (left.count() > 0) {
      std::optional<KvChange> e;
      natsStatus s = w->next(e, left.count());
      if (s == NATS_OK) {
        if (e) {
          cache_.delivered(e->revision);
          if (auto r = recordOf(*e)) cache_.apply(std::move(r->first), r->second);
        }
      } else if (s != NATS_TIMEOUT) {
        if (!stopping()) spdlog::warn("tokens: the watch of bucket {} ended ({}); loading it again", kBucket, natsText(s));
        drop();
      }
      continue;
    }
    nextConfirm = std::chrono::steady_clock::now() + c.opt.confirmInterval;
    int64_t asked = steadyMs();
    auto last = c.lastSequence();
    if (!last.ok()) {
      confirmsFailed_.inc();
      cache_.noteFailure(last.error().message());
      continue;
    }
    if (cache_.confirm(*last, asked)) {
      confirmsCurrent_.inc();
      behindRounds = 0;
      continue;
    }
    confirmsBehind_.inc();
    if (behindRounds == 0 || cache_.deliveredThrough() >= behindTarget) {
      behindTarget = *last;
      behindRounds = 1;
    } else if (++behindRounds > kBehindRounds) {
      spdlog::warn("tokens: the watch of bucket {} stays behind (sequence {} not delivered); loading it again",
                   kBucket, behindTarget);
      behindRounds = 0;
      drop();
    }
  }
  drop();
  usable_.set(0);
}

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
  uint64_t revision = 0;
  s = kvStore_Put(&revision, *kv, key.c_str(), value.data(), static_cast<int>(value.size()));
  if (s != NATS_OK) {
    kvStore_Delete(*kv, name.c_str());  // frees the name again; the token was never valid
    return nats_->failure(fmt::format("storing token {}", record.name), s);
  }
  // Usable here at once, whatever the watch's delay.
  cache_.apply(record, revision);
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
  uint64_t revision = 0;
  natsStatus s = kvStore_Put(&revision, *kv, key.c_str(), updated.data(), static_cast<int>(updated.size()));
  if (s != NATS_OK) return nats_->failure(fmt::format("revoking token {}", record->name), s);
  // Refused here from now on, whatever the watch's delay.
  cache_.apply(*record, revision);
  // The record says revoked from here on; the name is free once its key is gone.
  s = kvStore_Delete(*kv, nkey.c_str());
  if (s != NATS_OK) spdlog::warn("tokens: the name of revoked token {} stays taken: {}", record->name, natsText(s));
  return std::optional<store::TokenRecord>(std::move(*record));
}

Result<std::vector<store::TokenRecord>> JetStreamTokenStore::list() { return cache_.live(steadyMs()); }

Result<std::optional<store::TokenRecord>> JetStreamTokenStore::find(std::string_view id) {
  if (!store::isTokenId(id)) return std::optional<store::TokenRecord>();
  return cache_.find(id, steadyMs());
}

}  // namespace tern::cluster
