#include "cluster/cluster_context.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "cluster/nats_text.h"

namespace tern::cluster {

void ClusterContext::pause(std::chrono::milliseconds d) {
  MutexLock lock(wakeMu);
  lock.waitFor(wake, d, [this] { return stopping.load(); });
}

void ClusterContext::wakeAll() {
  { MutexLock lock(wakeMu); }
  wake.notify_all();
}

void ClusterContext::reject(Rejection r, std::string_view where, const std::string& message) {
  rejected[static_cast<size_t>(r)]->inc();
  spdlog::warn("cluster: refused {} ({}): {}", where, rejectionName(r), message);
}

std::optional<Envelope> ClusterContext::open(std::span<const uint8_t> bytes, MessageKind kind,
                                             std::string_view where, bool live,
                                             std::optional<MessageKind> also) {
  Decoded d = decodeEnvelope(key, bytes, opt.maxMessageBytes);
  if (!d.ok) {
    reject(d.refused.reason, where, d.refused.message);
    return std::nullopt;
  }
  if (d.envelope.kind != kind && d.envelope.kind != also) {
    reject(Rejection::kUnknownKind, where,
           fmt::format("message kind {} where {} was expected", int(d.envelope.kind), int(kind)));
    return std::nullopt;
  }
  if (live) {
    int64_t age = deps.clock() - d.envelope.sentAtMs;
    if (age > opt.maxClockSkew.count() || -age > opt.maxClockSkew.count()) {
      reject(Rejection::kStale, where,
             fmt::format("message from \"{}\" sent {} ms from now, beyond the allowed {} ms",
                         d.envelope.sender, age, opt.maxClockSkew.count()));
      return std::nullopt;
    }
  }
  return std::move(d.envelope);
}

Error natsError(std::string_view what, natsStatus s) {
  return Error(ErrorCode::kUnavailable, fmt::format("{}: {}", what, natsText(s)));
}

kvStore* bindBucket(jsCtx* js, const char* bucket, int64_t ttlMs, uint8_t history, bool& warned) {
  kvStore* kv = nullptr;
  natsStatus s = js_KeyValue(&kv, js, bucket);
  if (s == NATS_OK) return kv;
  kvConfig cfg;
  kvConfig_Init(&cfg);
  cfg.Bucket = bucket;
  cfg.History = history;
  cfg.TTL = ttlMs * 1000000;  // nanoseconds
  cfg.StorageType = js_FileStorage;
  s = js_CreateKeyValue(&kv, js, &cfg);
  if (s == NATS_OK) return kv;
  if (!warned) spdlog::warn("cluster: bucket {} not available yet: {}", bucket, natsText(s));
  warned = true;
  return nullptr;
}

}  // namespace tern::cluster
