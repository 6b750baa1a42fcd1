#pragma once
// What the cluster's services share (heartbeats.h, registry_sync.h, forwarding.h): the
// options, the cluster key, the node's objects, the NATS connection and its state, and the
// checks every peer message goes through. Internal to src/cluster: only cluster.cpp and the
// services' sources include it (it brings nats.h, which stays out of cluster.h).
//
// Locking: the connection handles are set in Cluster::start before any service starts and
// released after every service stopped; the flags are atomics. No lock of this struct or of
// the services is held across a NATS or JetStream call.

#include <nats/nats.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "cluster/cluster.h"
#include "cluster/envelope.h"
#include "cluster/jetstream_kv.h"
#include "util/error.h"
#include "util/metrics.h"
#include "util/thread_annotations.h"

namespace tern::cluster {

// How long a JetStream call waits for its answer, in milliseconds.
inline constexpr int64_t kJetStreamWaitMs = 2000;

struct ClusterContext {
  ClusterContext(ClusterOptions o, ClusterKey k, ClusterDeps d)
      : opt(std::move(o)), key(std::move(k)), deps(std::move(d)) {
    rejectionCounters(deps.metrics, rejected);
    connectedGauge = &deps.metrics.gauge("tern_cluster_connected", "1 while connected to NATS");
  }
  ClusterContext(const ClusterContext&) = delete;
  ClusterContext& operator=(const ClusterContext&) = delete;

  const ClusterOptions opt;
  const ClusterKey key;
  ClusterDeps deps;

  natsOptions* natsOpts = nullptr;
  natsConnection* conn = nullptr;
  jsCtx* js = nullptr;

  std::atomic<bool> connected{false};
  // Set on every (re)connect: the registry sync reads the whole bucket again.
  std::atomic<bool> resync{true};
  std::atomic<bool> stopping{false};
  // Wakes the services' threads: a (re)connect, a local change, stop. The flags they wait
  // for are atomics; wakeAll() passes through wakeMu so that a thread between checking
  // them and blocking in pause() cannot miss the notification.
  Mutex wakeMu;
  std::condition_variable wake;

  Gauge* connectedGauge = nullptr;
  Counter* rejected[kRejectionKinds] = {};

  // Waits for `d`, or less when stop() or a wake comes first.
  void pause(std::chrono::milliseconds d) TERN_EXCLUDES(wakeMu);
  // Wakes every thread in pause(), after the caller changed what they wait for.
  void wakeAll() TERN_EXCLUDES(wakeMu);
  // Counts and logs a refused peer message.
  void reject(Rejection r, std::string_view where, const std::string& message);
  // Decodes and authenticates a message; checks the kind and, for live messages, the age.
  // `also`: a second kind accepted.
  std::optional<Envelope> open(std::span<const uint8_t> bytes, MessageKind kind,
                               std::string_view where, bool live,
                               std::optional<MessageKind> also = std::nullopt);
};

// kUnavailable naming what failed and the library's text.
Error natsError(std::string_view what, natsStatus s);

// Binds a bucket of the services (bindOrCreateBucket: created only when JetStream has none
// of that name). Null when that fails, for the caller's loop to try again later; the
// failure is logged as a warning the first time (`warned`), at debug level after.
// `url` names the server in the message.
kvStore* bindBucket(jsCtx* js, const KvBucketSpec& spec, std::string_view url, bool& warned);

}  // namespace tern::cluster
