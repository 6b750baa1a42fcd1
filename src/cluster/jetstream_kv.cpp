#include "cluster/jetstream_kv.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <climits>

#include "cluster/nats_text.h"

namespace tern::cluster {

Error natsFailure(std::string_view what, std::string_view url, natsStatus s, jsErrCode err) {
  switch (s) {
    case NATS_TIMEOUT:
    case NATS_NO_RESPONDERS:
    case NATS_NO_SERVER:
    case NATS_NOT_YET_CONNECTED:
    case NATS_CONNECTION_CLOSED:
    case NATS_CONNECTION_DISCONNECTED:
    case NATS_STALE_CONNECTION:
      return Error(ErrorCode::kUnavailable,
                   fmt::format("{}: JetStream at {} does not answer: {}", what, url, natsText(s)));
    case NATS_MAX_PAYLOAD:
      return Error(ErrorCode::kBodyTooLarge,
                   fmt::format("{}: larger than the NATS server accepts", what));
    default:
      if (err != 0) {
        return Error(ErrorCode::kIo, fmt::format("{}: JetStream error {}: {}", what,
                                                 static_cast<int>(err), natsText(s)));
      }
      return Error(ErrorCode::kIo, fmt::format("{}: {}", what, natsText(s)));
  }
}

Result<kvStore*> bindOrCreateBucket(jsCtx* js, const KvBucketSpec& spec, std::string_view what,
                                    std::string_view url) {
  kvStore* kv = nullptr;
  natsStatus s = js_KeyValue(&kv, js, spec.name);
  if (s == NATS_NOT_FOUND) {
    kvConfig cfg;
    kvConfig_Init(&cfg);
    cfg.Bucket = spec.name;
    cfg.History = spec.history;
    cfg.TTL = spec.ttlMs * 1'000'000;  // nanoseconds
    cfg.StorageType = js_FileStorage;
    cfg.Replicas = 1;
    s = js_CreateKeyValue(&kv, js, &cfg);
  }
  if (s != NATS_OK) {
    std::string subject = what.empty() ? fmt::format("bucket {}", spec.name)
                                       : fmt::format("{}: bucket {}", what, spec.name);
    return natsFailure(subject, url, s);
  }
  return kv;
}

LazyBucket::~LazyBucket() {
  MutexLock lock(mu_);
  kvStore_Destroy(bucket_);
}

kvStore* LazyBucket::bound() {
  MutexLock lock(mu_);
  return bucket_;
}

Result<kvStore*> LazyBucket::get(jsCtx* js, std::string_view what, std::string_view url) {
  if (kvStore* kv = bound()) return kv;
  auto kv = bindOrCreateBucket(js, spec_, what, url);
  if (!kv.ok()) return kv.error();
  MutexLock lock(mu_);
  if (bucket_) {
    kvStore_Destroy(*kv);  // another thread bound it meanwhile
  } else {
    bucket_ = *kv;
  }
  return bucket_;
}

natsStatus KvWatch::open(std::unique_ptr<KvWatch>& out, natsConnection* nc, jsCtx* js,
                         kvStore* kv, Options options) {
  out.reset();
  if (!nc || !js || !kv) return NATS_INVALID_ARG;
  std::string bucket = kvStore_Bucket(kv);
  std::string stream = "KV_" + bucket;
  std::string prefix = "$KV." + bucket + ".";
  std::string subject = prefix + ">";
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = stream.c_str();
  so.Ordered = true;
  so.Config.DeliverPolicy = js_DeliverLastPerSubject;
  natsSubscription* sub = nullptr;
  natsStatus s = js_SubscribeSync(&sub, js, subject.c_str(), nullptr, &so, nullptr);
  if (s != NATS_OK) return s;
  std::unique_ptr<KvWatch> watch(new KvWatch(nc, sub, std::move(prefix), options));
  // Delivery is never dropped for a slow reader: a bucket's values are few and small.
  s = natsSubscription_SetPendingLimits(sub, -1, -1);
  if (s != NATS_OK) return s;
  // Whether the bucket holds anything: when nothing has been delivered and nothing is
  // pending, no message will carry the "none pending" that places the marker.
  jsConsumerInfo* ci = nullptr;
  s = natsSubscription_GetConsumerInfo(&ci, sub, nullptr, nullptr);
  if (s != NATS_OK) return s;
  watch->markerDue_ = ci->Delivered.Consumer == 0 && ci->NumPending == 0;
  jsConsumerInfo_Destroy(ci);
  out = std::move(watch);
  return NATS_OK;
}

KvWatch::~KvWatch() {
  // libnats 3.4.1 hands a message to a subscription without a reference to it
  // (natsConn_processMsg finds it in the connection's table, lets the table's lock go, then
  // locks the subscription), so freeing a subscription while a message for it is being
  // delivered is a use after free; a watched bucket that is written often (membership)
  // hits it. So the watch first leaves the connection's table: an automatic unsubscribe at
  // the count already delivered removes it at once and, unlike a plain unsubscribe, does
  // not delete the consumer. Then a flush waits until the connection's reader has passed
  // every message it read before (the PONG comes after them), and only then is the
  // subscription freed. natsSubscription_Destroy leaves the consumer to the server.
  int64_t delivered = 0;
  if (natsSubscription_GetDelivered(sub_, &delivered) == NATS_OK && delivered > 0) {
    natsSubscription_AutoUnsubscribe(sub_, static_cast<int>(std::min<int64_t>(delivered, INT_MAX)));
  }
  if (natsConnection_Status(nc_) == NATS_CONN_STATUS_CONNECTED) {
    natsConnection_FlushTimeout(nc_, 2000);
  }
  natsSubscription_Destroy(sub_);
}

natsStatus KvWatch::next(std::optional<KvChange>& out, int64_t waitMs) {
  out.reset();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(waitMs);
  for (;;) {
    if (markerDue_ && !caughtUp_) {
      caughtUp_ = true;
      return NATS_OK;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) return NATS_TIMEOUT;
    natsMsg* msg = nullptr;
    natsStatus s = natsSubscription_NextMsg(&msg, sub_, left);
    if (s != NATS_OK) return s;
    jsMsgMetaData* meta = nullptr;
    s = natsMsg_GetMetaData(&meta, msg);
    if (s != NATS_OK) {
      natsMsg_Destroy(msg);
      return s;
    }
    if (!caughtUp_ && meta->NumPending == 0) markerDue_ = true;
    uint64_t revision = meta->Sequence.Stream;
    jsMsgMetaData_Destroy(meta);
    std::string_view subject = natsMsg_GetSubject(msg);
    const char* op = nullptr;
    bool deleted = natsMsgHeader_Get(msg, "KV-Operation", &op) == NATS_OK && op &&
                   (std::string_view(op) == "DEL" || std::string_view(op) == "PURGE");
    if (!subject.starts_with(prefix_) || (deleted && options_.ignoreDeletes)) {
      natsMsg_Destroy(msg);
      continue;
    }
    KvChange change;
    change.key = subject.substr(prefix_.size());
    change.deleted = deleted;
    change.revision = revision;
    if (!deleted && natsMsg_GetDataLength(msg) > 0) {
      change.value.assign(natsMsg_GetData(msg), static_cast<size_t>(natsMsg_GetDataLength(msg)));
    }
    natsMsg_Destroy(msg);
    out = std::move(change);
    return NATS_OK;
  }
}

}  // namespace tern::cluster
