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

kvStore* bindBucket(jsCtx* js, const KvBucketSpec& spec, std::string_view url, bool& warned) {
  auto kv = bindOrCreateBucket(js, spec, "cluster", url);
  if (kv.ok()) return *kv;
  spdlog::log(warned ? spdlog::level::debug : spdlog::level::warn, "{} (tried again later)",
              kv.error().message());
  warned = true;
  return nullptr;
}

}  // namespace tern::cluster
