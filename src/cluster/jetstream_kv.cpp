#include "cluster/jetstream_kv.h"

#include <fmt/format.h>

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

}  // namespace tern::cluster
