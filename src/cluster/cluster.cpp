#include "cluster/cluster.h"

#include <fmt/format.h>
#include <nats/nats.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <condition_variable>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <thread>

#include "cluster/nats_options.h"
#include "cluster/nats_text.h"
#include "cluster/function_record.h"
#include "cluster/payload.h"
#include "cluster/peer_link.h"
#include "cluster/policy.h"
#include "util/sha256.h"

namespace tern::cluster {

using json = nlohmann::json;

namespace {

constexpr const char* kNodesBucket = "tern_nodes";
constexpr const char* kFunctionsBucket = "tern_functions";
constexpr const char* kModulesBucket = "tern_modules";
constexpr size_t kModuleChunkBytes = 256u << 10;
constexpr int64_t kJetStreamWaitMs = 2000;

Error natsError(std::string_view what, natsStatus s) {
  return Error(ErrorCode::kUnavailable, fmt::format("{}: {}", what, natsText(s)));
}

std::optional<wasm::Outcome> outcomeByName(std::string_view name) {
  for (int i = 0; i <= static_cast<int>(wasm::Outcome::kInvalid); ++i) {
    auto o = static_cast<wasm::Outcome>(i);
    if (name == wasm::outcomeName(o)) return o;
  }
  return std::nullopt;
}

}  // namespace

struct Cluster::Impl {
  Impl(ClusterOptions o, ClusterKey k, ClusterDeps d)
      : opt(std::move(o)),
        key(std::move(k)),
        deps(std::move(d)),
        view(opt.nodeId, opt.heartbeat.count(), opt.ttl.count()) {}

  ClusterOptions opt;
  ClusterKey key;
  ClusterDeps deps;
  MemberView view;
  int64_t startedAtMs = 0;
  uint64_t sequence = 0;  // heartbeat thread only

  natsOptions* natsOpts = nullptr;
  natsConnection* conn = nullptr;
  jsCtx* js = nullptr;
  natsSubscription* heartbeatSub = nullptr;
  natsSubscription* invokeSub = nullptr;
  natsSubscription* replySub = nullptr;
  // Bound by the registry thread once JetStream answers; read by the heartbeat thread.
  std::mutex kvMu;
  kvStore* nodesKv = nullptr;
  kvStore* functionsKv = nullptr;
  kvStore* modulesKv = nullptr;
  bool bindWarned = false;  // registry thread only

  std::atomic<bool> connected{false};
  std::atomic<bool> resync{true};
  std::atomic<bool> stopping{false};
  std::mutex wakeMu;
  std::condition_variable wake;
  std::thread heartbeatThread, registryThread;

  // Functions here that the cluster registry has never had (found at each catch-up),
  // still to be written to it. Changes made through this node's API wait in the
  // registry's durable outbox instead (Registry::unpublished).
  std::mutex outboxMu;
  std::set<std::string> localOnly;

  // Calls forwarded by this node, waiting for their reply.
  struct Pending {
    std::string function;
    std::shared_ptr<const std::string> request;  // the envelope, sent again to the next peer
    std::vector<std::string> tried;
    std::string target;
    CapacityNeed need = CapacityNeed::kAny;
    std::chrono::steady_clock::time_point deadline;
    std::function<void(exec::InvokeOutput)> done;
    std::optional<Error> lastError;
    bool pinned = false;  // only `target` may take it (a fused unit)
  };
  std::mutex pendingMu;
  std::map<uint64_t, Pending> pending;
  uint64_t nextRequest = 1;  // guarded by pendingMu

  // Calls served for peers whose reply is not yet sent; stop() waits for them.
  std::mutex servingMu;
  std::condition_variable servedAll;
  uint64_t serving = 0;

  // Invocation totals per function at the last heartbeat, for rates.
  std::map<std::string, uint64_t> lastTotals;
  int64_t lastTotalsMs = 0;

  Counter* rejected[kRejectionKinds] = {};
  // Direct links to and from the peers of this site (null without --direct-listen), and
  // the address announced for them.
  std::unique_ptr<PeerLinks> links;
  std::string directAddress;

  Counter* forwardedOk = nullptr;
  Counter* sentDirect = nullptr;
  Counter* sentNats = nullptr;
  Counter* forwardedFailed = nullptr;
  Counter* servedForPeers = nullptr;
  Counter* recordsApplied = nullptr;
  Gauge* membersGauge = nullptr;
  Gauge* connectedGauge = nullptr;

  void initMetrics();
  void reject(Rejection r, std::string_view where, const std::string& message);
  // Decodes and authenticates a message; checks the kind and, for live messages, the age.
  // `also`: a second kind accepted.
  std::optional<Envelope> open(std::span<const uint8_t> bytes, MessageKind kind,
                               std::string_view where, bool live,
                               std::optional<MessageKind> also = std::nullopt);

  // Heartbeats.
  NodeInfo selfInfo(int64_t nowMs);
  void heartbeatLoop();
  void onHeartbeat(std::string_view subject, std::span<const uint8_t> bytes, bool live);
  void loadMembersFromBucket();

  // Registry.
  bool bindBuckets();
  void registryLoop();
  bool applyRecord(std::string_view key, std::string_view value);
  Result<void> fetchModule(const store::FunctionVersion& v);
  Result<void> uploadModule(const store::FunctionVersion& v);
  Result<void> publishFunction(const std::string& name);
  void flushOutbox();
  void reconcileLocalOnly(const std::set<std::string>& inCluster);

  // Forwarding.
  // Whether a request too large for a cluster message is declined (the local answer
  // stands) or answered with kBodyTooLarge.
  enum class Oversize { kDecline, kAnswer };
  // A segment request (kSegmentRequest: `input.body` is the unit) goes to `target` only.
  bool forward(exec::InvokeInput& input, std::function<void(exec::InvokeOutput)>& done,
               CapacityNeed need, std::string target, Oversize oversize,
               MessageKind kind = MessageKind::kInvokeRequest);
  void invokeOn(const std::string& node, exec::InvokeInput input,
                std::function<void(exec::InvokeOutput)> done);
  bool offer(exec::InvokeInput& input, std::function<void(exec::InvokeOutput)>& done,
             exec::Elsewhere why);
  // Sends call `id` to `target`, or (empty) to the best-ranked peer not tried yet.
  void sendNext(uint64_t id, std::string target = {});  // pendingMu not held
  void complete(uint64_t id, exec::InvokeOutput out);
  // The direct-link address of `target` when calls to it may take one: same site, and it
  // announces one. Empty otherwise (NATS).
  std::string directAddressOf(const std::string& target);
  void onReply(natsMsg* msg);
  void acceptReply(uint64_t id, std::span<const uint8_t> bytes);
  void onRequest(natsMsg* msg);
  // Runs a call from a peer (either path) and hands the signed reply to `send`; `replyLimit`
  // is the largest message the path carries. False when the message was refused.
  bool serveCall(std::span<const uint8_t> bytes, std::string_view where,
                 const std::function<bool(const Envelope&)>& checkSender, size_t replyLimit,
                 std::function<void(std::string)> send);
  void reapTimeouts();
};

void Cluster::Impl::initMetrics() {
  rejectionCounters(deps.metrics, rejected);
  forwardedOk = &deps.metrics.counter("tern_cluster_forwarded_total",
                                      "Calls forwarded to other nodes, by result",
                                      {{"result", "answered"}});
  forwardedFailed = &deps.metrics.counter("tern_cluster_forwarded_total",
                                          "Calls forwarded to other nodes, by result",
                                          {{"result", "failed"}});
  sentDirect = &deps.metrics.counter("tern_cluster_forward_sends_total",
                                     "Forwarded calls sent to a peer, by path",
                                     {{"path", "direct"}});
  sentNats = &deps.metrics.counter("tern_cluster_forward_sends_total",
                                   "Forwarded calls sent to a peer, by path", {{"path", "nats"}});
  servedForPeers = &deps.metrics.counter("tern_cluster_served_total",
                                         "Calls this node ran for other nodes");
  recordsApplied = &deps.metrics.counter("tern_cluster_registry_applied_total",
                                         "Cluster registry changes applied on this node");
  membersGauge = &deps.metrics.gauge("tern_cluster_members", "Nodes in this node's view, itself included");
  connectedGauge = &deps.metrics.gauge("tern_cluster_connected", "1 while connected to NATS");
}

void Cluster::Impl::reject(Rejection r, std::string_view where, const std::string& message) {
  rejected[static_cast<size_t>(r)]->inc();
  spdlog::warn("cluster: refused {} ({}): {}", where, rejectionName(r), message);
}

std::optional<Envelope> Cluster::Impl::open(std::span<const uint8_t> bytes, MessageKind kind,
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

// ---- heartbeats ----

NodeInfo Cluster::Impl::selfInfo(int64_t nowMs) {
  NodeInfo n;
  n.id = opt.nodeId;
  n.identity = opt.identity;
  n.httpAddress = opt.httpAddress;
  n.directAddress = directAddress;
  auto ex = deps.executor.stats();
  n.load = NodeLoad{ex.slots, ex.running, ex.queued, ex.rejected};
  double seconds = lastTotalsMs ? static_cast<double>(nowMs - lastTotalsMs) / 1000.0 : 0;
  std::map<std::string, uint64_t> totals;
  for (const auto& fn : deps.table.all()) {
    if (!fn->active()) continue;
    uint64_t total = 0;
    for (int i = 0; i < exec::FunctionEntry::kRejected; ++i) total += fn->outcomes[i]->value();
    auto last = lastTotals.find(fn->name);
    double rate = 0;
    if (seconds > 0 && last != lastTotals.end() && total >= last->second) {
      rate = static_cast<double>(total - last->second) / seconds;
    }
    n.functions[fn->name] = rate;
    totals[fn->name] = total;
  }
  lastTotals = std::move(totals);
  lastTotalsMs = nowMs;
  n.startedAtMs = startedAtMs;
  n.sequence = ++sequence;
  return n;
}

void Cluster::Impl::heartbeatLoop() {
  auto nextBeat = std::chrono::steady_clock::now();
  while (!stopping) {
    auto now = std::chrono::steady_clock::now();
    if (now >= nextBeat) {
      nextBeat = now + opt.heartbeat;
      int64_t nowMs = deps.clock();
      NodeInfo info = selfInfo(nowMs);
      view.setSelf(info, nowMs);
      if (connected) {
        std::string msg = encodeEnvelope(
            key, Envelope{MessageKind::kHeartbeat, opt.nodeId, nowMs, encodeNodeInfo(info)});
        std::string subject = "tern.v1.hb." + opt.nodeId;
        natsConnection_Publish(conn, subject.c_str(), msg.data(), static_cast<int>(msg.size()));
        std::lock_guard lock(kvMu);
        if (nodesKv) {
          uint64_t rev = 0;
          natsStatus s = kvStore_Put(&rev, nodesKv, opt.nodeId.c_str(), msg.data(),
                                     static_cast<int>(msg.size()));
          if (s != NATS_OK) spdlog::debug("cluster: membership record not written: {}", natsText(s));
        }
      }
      for (const auto& gone : view.expire(nowMs)) {
        spdlog::info("cluster: node {} is silent for {} ms and leaves the view", gone,
                     opt.ttl.count());
      }
      membersGauge->set(static_cast<double>(view.size()));
    }
    reapTimeouts();
    std::unique_lock lock(wakeMu);
    wake.wait_for(lock, std::chrono::milliseconds(50), [this] { return stopping.load(); });
  }
}

void Cluster::Impl::onHeartbeat(std::string_view subject, std::span<const uint8_t> bytes,
                                bool live) {
  auto e = open(bytes, MessageKind::kHeartbeat, "heartbeat", live);
  if (!e) return;
  std::string_view claimed = lastToken(subject);
  if (e->sender != claimed || e->sender == opt.nodeId) {
    reject(Rejection::kForgedIdentity, "heartbeat",
           fmt::format("node \"{}\" sent a heartbeat as \"{}\"", e->sender, claimed));
    return;
  }
  auto info = decodeNodeInfo(e->payload);
  if (!info.ok()) {
    reject(Rejection::kMalformed, "heartbeat", info.error().message());
    return;
  }
  if (info->id != e->sender) {
    reject(Rejection::kForgedIdentity, "heartbeat",
           fmt::format("node \"{}\" announced itself as \"{}\"", e->sender, info->id));
    return;
  }
  if (!live && deps.clock() - e->sentAtMs > opt.ttl.count()) return;  // an old registration
  view.observe(std::move(*info), deps.clock());
}

void Cluster::Impl::loadMembersFromBucket() {
  kvKeysList keys{};
  kvWatchOptions wo;
  kvWatchOptions_Init(&wo);
  wo.Timeout = kJetStreamWaitMs;
  std::lock_guard lock(kvMu);
  if (kvStore_Keys(&keys, nodesKv, &wo) != NATS_OK) return;
  for (int i = 0; i < keys.Count; ++i) {
    kvEntry* entry = nullptr;
    if (kvStore_Get(&entry, nodesKv, keys.Keys[i]) != NATS_OK) continue;
    auto data = reinterpret_cast<const uint8_t*>(kvEntry_Value(entry));
    onHeartbeat(std::string("tern.v1.hb.") + keys.Keys[i],
                std::span(data, static_cast<size_t>(kvEntry_ValueLen(entry))), false);
    kvEntry_Destroy(entry);
  }
  kvKeysList_Destroy(&keys);
}

// ---- the registry ----

bool Cluster::Impl::bindBuckets() {
  auto bind = [&](const char* bucket, int64_t ttlMs, uint8_t history, kvStore** out) {
    natsStatus s = js_KeyValue(out, js, bucket);
    if (s == NATS_OK) return true;
    kvConfig cfg;
    kvConfig_Init(&cfg);
    cfg.Bucket = bucket;
    cfg.History = history;
    cfg.TTL = ttlMs * 1000000;  // nanoseconds
    cfg.StorageType = js_FileStorage;
    s = js_CreateKeyValue(out, js, &cfg);
    if (s != NATS_OK) {
      if (!bindWarned) spdlog::warn("cluster: bucket {} not available yet: {}", bucket, natsText(s));
      bindWarned = true;
      return false;
    }
    return true;
  };
  kvStore *nodes = nullptr, *functions = nullptr, *modules = nullptr;
  if (!bind(kNodesBucket, opt.ttl.count(), 1, &nodes) ||
      !bind(kFunctionsBucket, 0, 8, &functions) || !bind(kModulesBucket, 0, 1, &modules)) {
    kvStore_Destroy(nodes);
    kvStore_Destroy(functions);
    kvStore_Destroy(modules);
    return false;
  }
  std::lock_guard lock(kvMu);
  nodesKv = nodes;
  functionsKv = functions;
  modulesKv = modules;
  return true;
}

Result<void> Cluster::Impl::fetchModule(const store::FunctionVersion& v) {
  if (deps.registry.readModule(v.moduleHash).ok()) return {};
  kvEntry* entry = nullptr;
  natsStatus s = kvStore_Get(&entry, modulesKv, v.moduleHash.c_str());
  if (s != NATS_OK) return natsError(fmt::format("module {} manifest", v.moduleHash), s);
  auto manifest = decodeManifest(std::string_view(kvEntry_ValueString(entry),
                                                  static_cast<size_t>(kvEntry_ValueLen(entry))),
                                 opt.maxModuleBytes);
  kvEntry_Destroy(entry);
  if (!manifest.ok()) return manifest.error();
  if (manifest->size != v.moduleSize) {
    return Error(ErrorCode::kInvalidArgument,
                 fmt::format("module {} has {} bytes in the cluster, the entry says {}",
                             v.moduleHash, manifest->size, v.moduleSize));
  }
  std::vector<uint8_t> bytes;
  bytes.reserve(manifest->size);
  for (uint32_t i = 0; i < manifest->chunks; ++i) {
    std::string chunkKey = fmt::format("{}.{}", v.moduleHash, i);
    s = kvStore_Get(&entry, modulesKv, chunkKey.c_str());
    if (s != NATS_OK) return natsError(fmt::format("module chunk {}", chunkKey), s);
    auto p = reinterpret_cast<const uint8_t*>(kvEntry_Value(entry));
    size_t n = static_cast<size_t>(kvEntry_ValueLen(entry));
    if (bytes.size() + n > manifest->size) {
      kvEntry_Destroy(entry);
      return Error(ErrorCode::kInvalidArgument,
                   fmt::format("module {} chunks exceed its size", v.moduleHash));
    }
    bytes.insert(bytes.end(), p, p + n);
    kvEntry_Destroy(entry);
  }
  std::string actual = sha256Hex(std::span<const unsigned char>(bytes.data(), bytes.size()));
  if (actual != v.moduleHash) {
    reject(Rejection::kHashMismatch, fmt::format("module of function \"{}\"", v.name),
           fmt::format("the bytes hash to {}, the registry entry names {}", actual, v.moduleHash));
    return Error(ErrorCode::kInvalidModule, "module bytes do not match their hash");
  }
  auto stored = deps.registry.putModule(bytes);
  if (!stored.ok()) return stored.error();
  return {};
}

Result<void> Cluster::Impl::uploadModule(const store::FunctionVersion& v) {
  kvEntry* entry = nullptr;
  if (kvStore_Get(&entry, modulesKv, v.moduleHash.c_str()) == NATS_OK) {
    kvEntry_Destroy(entry);
    return {};
  }
  auto bytes = deps.registry.readModule(v.moduleHash);
  if (!bytes.ok()) return bytes.error();
  uint32_t chunks = 0;
  for (size_t off = 0; off < bytes->size(); off += kModuleChunkBytes, ++chunks) {
    size_t n = std::min(kModuleChunkBytes, bytes->size() - off);
    std::string chunkKey = fmt::format("{}.{}", v.moduleHash, chunks);
    natsStatus s = kvStore_Put(nullptr, modulesKv, chunkKey.c_str(), bytes->data() + off,
                               static_cast<int>(n));
    if (s != NATS_OK) return natsError("module upload", s);
  }
  std::string manifest = encodeManifest(ModuleManifest{bytes->size(), chunks});
  natsStatus s = kvStore_PutString(nullptr, modulesKv, v.moduleHash.c_str(), manifest.c_str());
  if (s != NATS_OK) return natsError("module upload", s);
  return {};
}

Result<void> Cluster::Impl::publishFunction(const std::string& name) {
  auto active = deps.registry.active(name);
  if (!active.ok()) return active.error();
  FunctionRecord r;
  r.origin = opt.nodeId;
  r.updatedAtMs = deps.clock();
  if (*active) {
    r.version = **active;
    if (auto ok = uploadModule(r.version); !ok.ok()) return ok.error();
  } else {
    r.version.name = name;
    r.deleted = true;
  }
  std::string msg = encodeEnvelope(
      key, Envelope{MessageKind::kFunctionRecord, opt.nodeId, r.updatedAtMs, encodeFunctionRecord(r)});
  natsStatus s = kvStore_Put(nullptr, functionsKv, name.c_str(), msg.data(),
                             static_cast<int>(msg.size()));
  if (s != NATS_OK) return natsError("registry write", s);
  spdlog::info("cluster: published {} of function {}",
               r.deleted ? std::string("removal") : fmt::format("version {}", r.version.version),
               name);
  return {};
}

void Cluster::Impl::flushOutbox() {
  // Local changes, oldest first. A row goes only after the bucket acknowledged the write
  // (kvStore_Put returns once JetStream stored it), and only if the function did not
  // change again meanwhile.
  auto changes = deps.registry.unpublished();
  if (!changes.ok()) {
    spdlog::error("cluster: cannot read the unpublished changes: {}", changes.error().describe());
    return;
  }
  for (const auto& change : *changes) {
    if (auto ok = publishFunction(change.name); !ok.ok()) {
      spdlog::warn("cluster: cannot publish function {} yet: {}", change.name,
                   ok.error().describe());
      return;  // kept for the next round
    }
    if (auto done = deps.registry.markPublished(change); !done.ok()) {
      spdlog::error("cluster: function {} is published but still marked unpublished: {}",
                    change.name, done.error().describe());
    }
  }
  std::set<std::string> names;
  {
    std::lock_guard lock(outboxMu);
    names = localOnly;
  }
  for (const auto& name : names) {
    if (auto ok = publishFunction(name); !ok.ok()) {
      spdlog::warn("cluster: cannot publish function {} yet: {}", name, ok.error().describe());
      return;  // kept for the next round
    }
    std::lock_guard lock(outboxMu);
    localOnly.erase(name);
  }
}

void Cluster::Impl::reconcileLocalOnly(const std::set<std::string>& inCluster) {
  auto list = deps.registry.list();
  if (!list.ok()) return;
  std::lock_guard lock(outboxMu);
  for (const auto& f : *list) {
    if (!inCluster.contains(f.name)) localOnly.insert(f.name);
  }
}

bool Cluster::Impl::applyRecord(std::string_view keyName, std::string_view value) {
  std::string where = fmt::format("registry entry \"{}\"", keyName);
  auto e = open(std::span(reinterpret_cast<const uint8_t*>(value.data()), value.size()),
                MessageKind::kFunctionRecord, where, false);
  if (!e) return false;
  auto r = decodeFunctionRecord(e->payload);
  if (!r.ok()) {
    reject(Rejection::kMalformed, where, r.error().message());
    return false;
  }
  const std::string& name = r->version.name;
  if (name != keyName || r->origin != e->sender) {
    reject(Rejection::kForgedIdentity, where,
           fmt::format("entry for \"{}\" from \"{}\" signed by \"{}\"", name, r->origin, e->sender));
    return false;
  }
  // A change made here and not yet acknowledged is newer than this entry (it is written
  // to the bucket after it, and the last write wins): the entry is not applied.
  {
    std::lock_guard lock(outboxMu);
    if (localOnly.contains(name)) return true;
  }
  auto unpublished = deps.registry.isUnpublished(name);
  if (!unpublished.ok()) {
    spdlog::error("cluster: {}: {}", where, unpublished.error().describe());
    return true;
  }
  if (*unpublished) return true;
  auto local = deps.registry.active(name);
  if (!local.ok()) {
    spdlog::error("cluster: {}: {}", where, local.error().describe());
    return true;
  }
  if (r->deleted || !placementMatches(r->version.settings.placement, opt.identity)) {
    if (!*local) return true;
    auto state = r->deleted ? store::StateOnWithdraw::kDelete : store::StateOnWithdraw::kKeep;
    auto gone = deps.deployments.withdraw(name, state);
    if (!gone.ok()) {
      spdlog::error("cluster: cannot withdraw function {}: {}", name, gone.error().describe());
      return true;
    }
    recordsApplied->inc();
    spdlog::info("cluster: function {} {}", name,
                 r->deleted ? "was removed" : "is placed elsewhere: no longer served here");
    return true;
  }
  if (*local && sameVersion(**local, r->version)) return true;
  // Garbage collection keeps the fetched module until adopt() has recorded its version.
  auto hold = deps.registry.holdModule(r->version.moduleHash);
  if (auto ok = fetchModule(r->version); !ok.ok()) {
    spdlog::error("cluster: cannot get the module of function {} version {}: {}", name,
                  r->version.version, ok.error().describe());
    return ok.error().code() != ErrorCode::kInvalidModule;
  }
  if (auto ok = deps.deployments.adopt(r->version); !ok.ok()) {
    spdlog::error("cluster: cannot serve function {} version {}: {}", name, r->version.version,
                  ok.error().describe());
    return true;
  }
  recordsApplied->inc();
  spdlog::info("cluster: serving function {} version {} (from node {})", name, r->version.version,
               r->origin);
  return true;
}

void Cluster::Impl::registryLoop() {
  kvWatcher* watcher = nullptr;
  bool bound = false;
  bool caughtUp = false;
  std::set<std::string> seen;
  auto pause = [this](std::chrono::milliseconds d) {
    std::unique_lock lock(wakeMu);
    wake.wait_for(lock, d, [this] { return stopping.load(); });
  };
  while (!stopping) {
    if (!connected) {
      pause(std::chrono::milliseconds(100));
      continue;
    }
    if (!bound) {
      bound = bindBuckets();
      if (!bound) {
        pause(std::chrono::milliseconds(500));
        continue;
      }
      spdlog::info("cluster: registry and membership buckets ready");
      loadMembersFromBucket();
    }
    if (resync.exchange(false) || !watcher) {
      if (watcher) kvWatcher_Destroy(watcher);
      watcher = nullptr;
      natsStatus s = kvStore_WatchAll(&watcher, functionsKv, nullptr);
      if (s != NATS_OK) {
        spdlog::warn("cluster: cannot watch the registry yet: {}", natsText(s));
        watcher = nullptr;
        resync = true;
        pause(std::chrono::milliseconds(500));
        continue;
      }
      seen.clear();
      caughtUp = false;
    }
    kvEntry* entry = nullptr;
    natsStatus s = kvWatcher_Next(&entry, watcher, 200);
    if (s == NATS_OK && !entry) {
      reconcileLocalOnly(seen);
      caughtUp = true;
      spdlog::info("cluster: registry caught up ({} function(s) in the cluster)", seen.size());
    } else if (s == NATS_OK) {
      std::string name = kvEntry_Key(entry);
      if (kvEntry_Operation(entry) == kvOp_Put) {
        seen.insert(name);
        applyRecord(name, std::string_view(kvEntry_ValueString(entry),
                                           static_cast<size_t>(kvEntry_ValueLen(entry))));
      }
      kvEntry_Destroy(entry);
    } else if (s != NATS_TIMEOUT) {
      spdlog::warn("cluster: registry watch ended: {}", natsText(s));
      resync = true;
      pause(std::chrono::milliseconds(200));
    }
    if (caughtUp && connected) flushOutbox();
  }
  if (watcher) kvWatcher_Destroy(watcher);
}

// ---- forwarding ----

bool Cluster::Impl::offer(exec::InvokeInput& input, std::function<void(exec::InvokeOutput)>& done,
                          exec::Elsewhere why) {
  if (stopping || !connected || input.hops >= opt.hopLimit) return false;
  CapacityNeed need = why == exec::Elsewhere::kSaturated ? CapacityNeed::kSpare : CapacityNeed::kAny;
  auto members = view.members(deps.clock());
  auto ranked = rankPeers(members, RouteQuery{input.function, opt.nodeId, opt.identity.site, need, {}});
  if (ranked.empty()) return false;
  // The first choice is the ranking just made (nothing tried yet); retries rank again.
  return forward(input, done, need, std::move(ranked.front()),
                 why == exec::Elsewhere::kSaturated ? Oversize::kDecline : Oversize::kAnswer);
}

void Cluster::Impl::invokeOn(const std::string& node, exec::InvokeInput input,
                             std::function<void(exec::InvokeOutput)> done) {
  if (stopping || !connected) {
    exec::InvokeOutput out;
    out.error = Error(ErrorCode::kUnavailable,
                      fmt::format("node {} cannot be reached: not connected to the cluster", node));
    return done(std::move(out));
  }
  forward(input, done, CapacityNeed::kAny, node, Oversize::kAnswer);
}

bool Cluster::Impl::forward(exec::InvokeInput& input, std::function<void(exec::InvokeOutput)>& done,
                            CapacityNeed need, std::string target, Oversize oversize,
                            MessageKind kind) {
  json header{{"fn", input.function}, {"env", input.env}, {"hops", input.hops + 1}};
  std::string msg = encodeEnvelope(key, Envelope{kind, opt.nodeId, deps.clock(), framePayload(header, input.body)});
  if (msg.size() > static_cast<size_t>(natsConnection_GetMaxPayload(conn)) ||
      msg.size() > opt.maxMessageBytes) {
    if (oversize == Oversize::kDecline) return false;
    exec::InvokeOutput out;
    out.error = Error(ErrorCode::kBodyTooLarge,
                      fmt::format("function \"{}\" runs on another node, and the request ({} "
                                  "bytes) is larger than a cluster message may be",
                                  input.function, msg.size()));
    done(std::move(out));
    return true;
  }
  uint64_t id;
  {
    std::lock_guard lock(pendingMu);
    id = nextRequest++;
    Pending& p = pending[id];
    p.function = input.function;
    p.request = std::make_shared<const std::string>(std::move(msg));
    p.need = need;
    p.done = std::move(done);
    p.pinned = kind == MessageKind::kSegmentRequest;
  }
  sendNext(id, std::move(target));
  return true;
}

std::string Cluster::Impl::directAddressOf(const std::string& target) {
  if (!links) return {};
  auto m = view.find(target, deps.clock());
  if (!m || m->info.identity.site != opt.identity.site) return {};
  return m->info.directAddress;
}

void Cluster::Impl::sendNext(uint64_t id, std::string target) {
  std::function<void(exec::InvokeOutput)> failed;
  exec::InvokeOutput out;
  std::shared_ptr<const std::string> request;
  {
    std::lock_guard lock(pendingMu);
    auto it = pending.find(id);
    if (it == pending.end()) return;
    Pending& p = it->second;
    std::vector<std::string> ranked;
    if (target.empty() && !p.pinned) {
      ranked = rankPeers(view.members(deps.clock()),
                         RouteQuery{p.function, opt.nodeId, opt.identity.site, p.need, p.tried});
    } else if (!target.empty()) {
      ranked.push_back(std::move(target));
    }
    if (ranked.empty() || stopping) {
      out.error = p.lastError ? *p.lastError
                              : Error(ErrorCode::kUnavailable,
                                      fmt::format("no node can run function \"{}\" now", p.function));
      failed = std::move(p.done);
      pending.erase(it);
    } else {
      p.target = ranked.front();
      p.tried.push_back(p.target);
      p.deadline = std::chrono::steady_clock::now() + opt.forwardTimeout;
      target = p.target;
      request = p.request;
    }
  }
  if (!failed) {
    // A peer of this site with a direct link takes the call on it (one round trip, no
    // nats-server in between); otherwise, or when the link cannot be opened, NATS.
    std::string direct = directAddressOf(target);
    if (!direct.empty() && links->send(direct, id, *request)) {
      sentDirect->inc();
      return;
    }
    std::lock_guard lock(pendingMu);
    auto it = pending.find(id);
    if (it == pending.end()) return;
    std::string subject = "tern.v1.invoke." + target;
    std::string reply = fmt::format("tern.v1.reply.{}.{}", opt.nodeId, id);
    // Published under the lock, which keeps the entry while the library copies it.
    natsStatus s = natsConnection_PublishRequest(conn, subject.c_str(), reply.c_str(),
                                                 request->data(),
                                                 static_cast<int>(request->size()));
    if (s == NATS_OK) {
      sentNats->inc();
      return;
    }
    out.error = natsError("cannot forward the call", s);
    failed = std::move(it->second.done);
    pending.erase(it);
  }
  forwardedFailed->inc();
  failed(std::move(out));
}

void Cluster::Impl::complete(uint64_t id, exec::InvokeOutput out) {
  std::function<void(exec::InvokeOutput)> done;
  {
    std::lock_guard lock(pendingMu);
    auto it = pending.find(id);
    if (it == pending.end()) return;
    done = std::move(it->second.done);
    pending.erase(it);
  }
  (out.error && !out.ran ? forwardedFailed : forwardedOk)->inc();
  done(std::move(out));
}

void Cluster::Impl::onReply(natsMsg* msg) {
  std::string_view subject = natsMsg_GetSubject(msg);
  uint64_t id = 0;
  std::string_view idText = lastToken(subject);
  auto [p, ec] = std::from_chars(idText.data(), idText.data() + idText.size(), id);
  if (ec != std::errc() || p != idText.data() + idText.size()) return;
  if (natsMsg_IsNoResponders(msg)) {
    // The peer is gone (its subscription with it): try the next one.
    {
      std::lock_guard lock(pendingMu);
      auto it = pending.find(id);
      if (it == pending.end()) return;
      it->second.lastError = Error(ErrorCode::kUnavailable,
                                   fmt::format("node {} does not answer", it->second.target));
    }
    sendNext(id);
    return;
  }
  acceptReply(id, std::span(reinterpret_cast<const uint8_t*>(natsMsg_GetData(msg)),
                            static_cast<size_t>(natsMsg_GetDataLength(msg))));
}

void Cluster::Impl::acceptReply(uint64_t id, std::span<const uint8_t> bytes) {
  {
    auto e = open(bytes, MessageKind::kInvokeReply, "invocation reply", true);
    if (!e) return;
    std::string target;
    {
      std::lock_guard lock(pendingMu);
      auto it = pending.find(id);
      if (it == pending.end()) return;  // timed out already
      target = it->second.target;
    }
    if (e->sender != target) {
      reject(Rejection::kForgedIdentity, "invocation reply",
             fmt::format("reply from \"{}\" to a call sent to \"{}\"", e->sender, target));
      return;
    }
    std::string_view raw;
    auto framed = unframePayload(e->payload, raw);
    if (!framed.ok()) {
      reject(Rejection::kMalformed, "invocation reply", framed.error().message());
      return;
    }
    const json& h = *framed;
    exec::InvokeOutput out;
    auto str = [&](const char* k) {
      auto it = h.find(k);
      return it != h.end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    auto num = [&](const char* k) -> int64_t {
      auto it = h.find(k);
      return it != h.end() && it->is_number_integer() ? it->get<int64_t>() : 0;
    };
    out.invocationId = str("id");
    out.node = str("node");
    if (!isValidNodeId(out.node)) out.node = target;
    out.version = static_cast<uint32_t>(std::clamp<int64_t>(num("version"), 0, UINT32_MAX));
    auto ran = h.find("ran");
    out.ran = ran != h.end() && ran->is_boolean() && ran->get<bool>();
    out.result.exitCode = static_cast<int>(num("exit_code"));
    out.result.durationNs = num("duration_ns");
    out.result.detail = str("detail");
    if (auto o = outcomeByName(str("outcome"))) out.result.outcome = *o;
    out.result.stdoutData.assign(raw.data(), raw.size());
    std::string code = str("code");
    if (!code.empty()) {
      auto c = errorCodeByName(code);
      out.error = Error(c ? *c : ErrorCode::kInternal, str("message"));
    }
    bool retry = !out.ran && out.error &&
                 (out.error->code() == ErrorCode::kSaturated ||
                  out.error->code() == ErrorCode::kNotFound ||
                  out.error->code() == ErrorCode::kUnavailable);
    if (!retry) return complete(id, std::move(out));
    std::lock_guard lock(pendingMu);
    auto it = pending.find(id);
    if (it == pending.end()) return;
    it->second.lastError = *out.error;
  }
  sendNext(id);
}

void Cluster::Impl::onRequest(natsMsg* msg) {
  std::string replyTo = natsMsg_GetReply(msg) ? natsMsg_GetReply(msg) : "";
  // The reply subject names the caller: a call must ask for its reply on its own subjects.
  auto checkSender = [&](const Envelope& e) {
    if (std::string_view(replyTo).starts_with("tern.v1.reply." + e.sender + ".")) return true;
    reject(Rejection::kForgedIdentity, "forwarded call",
           fmt::format("call from \"{}\" asks for its reply on \"{}\"", e.sender, replyTo));
    return false;
  };
  serveCall(std::span(reinterpret_cast<const uint8_t*>(natsMsg_GetData(msg)),
                      static_cast<size_t>(natsMsg_GetDataLength(msg))),
            "forwarded call", checkSender,
            std::min(opt.maxMessageBytes, static_cast<size_t>(natsConnection_GetMaxPayload(conn))),
            [this, replyTo](std::string m) {
              natsConnection_Publish(conn, replyTo.c_str(), m.data(), static_cast<int>(m.size()));
            });
}

bool Cluster::Impl::serveCall(std::span<const uint8_t> bytes, std::string_view where,
                              const std::function<bool(const Envelope&)>& checkSender,
                              size_t replyLimit, std::function<void(std::string)> send) {
  auto e = open(bytes, MessageKind::kInvokeRequest, where, true, MessageKind::kSegmentRequest);
  if (!e) return false;
  const bool segment = e->kind == MessageKind::kSegmentRequest;
  if (e->sender == opt.nodeId) {
    reject(Rejection::kForgedIdentity, where, "a call that claims to come from this node");
    return false;
  }
  if (!checkSender(*e)) return false;
  std::string_view raw;
  exec::InvokeInput input;
  auto framed = unframePayload(e->payload, raw);
  bool ok = framed.ok();
  if (ok) {
    const json& h = *framed;
    auto fn = h.find("fn");
    auto env = h.find("env");
    auto hops = h.find("hops");
    ok = fn != h.end() && fn->is_string() && env != h.end() && env->is_array() &&
         hops != h.end() && hops->is_number_unsigned() && hops->get<uint64_t>() <= 64;
    if (ok) {
      input.function = fn->get<std::string>();
      input.hops = static_cast<uint32_t>(hops->get<uint64_t>());
      for (const auto& v : *env) {
        if (!v.is_string()) {
          ok = false;
          break;
        }
        input.env.push_back(v.get<std::string>());
      }
    }
  }
  if (!ok) {
    reject(Rejection::kMalformed, where, "bad framing or header");
    return false;
  }
  input.body.assign(raw.data(), raw.size());
  servedForPeers->inc();
  {
    std::lock_guard lock(servingMu);
    ++serving;
  }
  auto answer = [this, replyLimit, send = std::move(send)](exec::InvokeOutput out) {
    json h{{"id", out.invocationId},
           {"node", out.node.empty() ? opt.nodeId : out.node},
           {"version", out.version},
           {"ran", out.ran},
           {"outcome", wasm::outcomeName(out.result.outcome)},
           {"exit_code", out.result.exitCode},
           {"duration_ns", out.result.durationNs},
           {"detail", out.result.detail}};
    if (out.error) {
      h["code"] = errorKind(out.error->code()).name;
      h["message"] = out.error->message();
    }
    std::string msg = encodeEnvelope(key, Envelope{MessageKind::kInvokeReply, opt.nodeId,
                                                   deps.clock(),
                                                   framePayload(h, out.result.stdoutData)});
    if (msg.size() > replyLimit) {
      h["code"] = errorKind(ErrorCode::kOutputLimit).name;
      h["message"] = "the function's output is larger than a cluster message may be";
      msg = encodeEnvelope(key, Envelope{MessageKind::kInvokeReply, opt.nodeId, deps.clock(),
                                         framePayload(h, "")});
    }
    send(std::move(msg));
    std::lock_guard lock(servingMu);
    if (--serving == 0) servedAll.notify_all();
  };
  if (!segment) {
    deps.invoker.invoke(std::move(input), std::move(answer));
  } else if (deps.segments) {
    deps.segments(std::move(input.body), std::move(answer));
  } else {
    exec::InvokeOutput out;
    out.error = Error(ErrorCode::kUnavailable, "this node does not run fused units");
    answer(std::move(out));
  }
  return true;
}

void Cluster::Impl::reapTimeouts() {
  auto now = std::chrono::steady_clock::now();
  std::vector<std::pair<std::function<void(exec::InvokeOutput)>, std::string>> expired;
  {
    std::lock_guard lock(pendingMu);
    for (auto it = pending.begin(); it != pending.end();) {
      if (it->second.deadline != std::chrono::steady_clock::time_point{} &&
          it->second.deadline < now) {
        expired.emplace_back(std::move(it->second.done), it->second.target);
        it = pending.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& [done, target] : expired) {
    forwardedFailed->inc();
    exec::InvokeOutput out;
    // Not retried elsewhere: the call may have run on that node.
    out.error = Error(ErrorCode::kUnavailable,
                      fmt::format("node {} did not answer a forwarded call within {} ms", target,
                                  opt.forwardTimeout.count()));
    done(std::move(out));
  }
}

// ---- the service ----

Cluster::Cluster(ClusterOptions options, ClusterKey key, ClusterDeps deps)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(key), std::move(deps))) {
  impl_->initMetrics();
}

Cluster::~Cluster() { stop(); }

const std::string& Cluster::nodeId() const { return impl_->opt.nodeId; }

bool Cluster::applyRecord(std::string_view key, std::string_view value) {
  return impl_->applyRecord(key, value);
}

void Cluster::invokeOn(const std::string& node, exec::InvokeInput input,
                       std::function<void(exec::InvokeOutput)> done) {
  impl_->invokeOn(node, std::move(input), std::move(done));
}

void Cluster::segmentOn(const std::string& node, const std::string& first, std::string segment,
                        std::function<void(exec::InvokeOutput)> done) {
  Impl& c = *impl_;
  if (c.stopping || !c.connected) {
    exec::InvokeOutput out;
    out.error = Error(ErrorCode::kUnavailable,
                      fmt::format("node {} cannot be reached: not connected to the cluster", node));
    return done(std::move(out));
  }
  exec::InvokeInput input;
  input.function = first;
  input.body = std::move(segment);
  c.forward(input, done, CapacityNeed::kAny, node, Impl::Oversize::kAnswer, MessageKind::kSegmentRequest);
}

std::vector<Member> Cluster::members() const { return impl_->view.members(impl_->deps.clock()); }

bool Cluster::offer(exec::InvokeInput& input, std::function<void(exec::InvokeOutput)>& done,
                    exec::Elsewhere why) {
  return impl_->offer(input, done, why);
}

Result<void> Cluster::start() {
  Impl& c = *impl_;
  if (!isValidNodeId(c.opt.nodeId)) {
    return Error(ErrorCode::kInvalidArgument,
                 fmt::format("node name \"{}\" is invalid: use 1-63 characters a-z, 0-9 and '-'",
                             c.opt.nodeId));
  }
  if (!isValidNodeId(c.opt.identity.site)) {
    return Error(ErrorCode::kInvalidArgument,
                 fmt::format("site \"{}\" is invalid: use 1-63 characters a-z, 0-9 and '-'",
                             c.opt.identity.site));
  }
  if (c.opt.heartbeat.count() <= 0 || c.opt.ttl <= c.opt.heartbeat) {
    return Error(ErrorCode::kInvalidArgument,
                 "the membership TTL must be longer than the heartbeat interval");
  }
  c.startedAtMs = c.deps.clock();
  if (!c.opt.directListen.empty()) {
    auto hp = splitHostPort(c.opt.directListen);
    if (!hp.ok()) return hp.error();
    PeerLinkOptions po;
    po.maxEnvelopeBytes = c.opt.maxMessageBytes;
    c.links = std::make_unique<PeerLinks>(
        po,
        [&c](std::span<const uint8_t> bytes, PeerLinks::Reply reply) {
          return c.serveCall(bytes, "direct call", [](const Envelope&) { return true; },
                             c.opt.maxMessageBytes, std::move(reply));
        },
        [&c](uint64_t id, std::span<const uint8_t> bytes) { c.acceptReply(id, bytes); },
        [&c](uint64_t id, const std::string& why) {
          exec::InvokeOutput out;
          // Not retried elsewhere: the call may have run on that node.
          out.error = Error(ErrorCode::kUnavailable, why);
          c.complete(id, std::move(out));
        });
    std::string host = c.opt.directAdvertiseHost.empty() ? hp->first : c.opt.directAdvertiseHost;
    if (host == "0.0.0.0" || host == "::") {
      // Peers would connect to themselves: this node opens links to others but takes none.
      spdlog::warn("cluster: not accepting direct links: {} is every interface and no "
                   "--advertise host says which one peers should use",
                   host);
    } else {
      if (auto ok = c.links->listen(hp->first, hp->second); !ok.ok()) return ok;
      c.directAddress = host.find(':') != std::string::npos
                            ? fmt::format("[{}]:{}", host, c.links->port())
                            : fmt::format("{}:{}", host, c.links->port());
      spdlog::info("cluster: direct links from peers of site {} on {}", c.opt.identity.site,
                   c.directAddress);
    }
  }
  // Local changes are recorded as unpublished in the registry, in the transaction that
  // makes them; the listener only wakes the registry thread to publish them.
  c.deps.registry.setChangeJournal(store::ChangeJournal::kOn);
  c.deps.deployments.setListener([this](const std::string&, const store::FunctionVersion*) {
    impl_->wake.notify_all();
  });

  auto check = [](natsStatus s, const char* what) -> Result<void> {
    if (s == NATS_OK) return {};
    return Error(ErrorCode::kInvalidArgument, fmt::format("NATS {}: {}", what, natsText(s)));
  };
  auto options = makeNatsOptions(c.opt.url, "tern-" + c.opt.nodeId, c.opt.nats);
  if (!options.ok()) return options.error();
  c.natsOpts = *options;
  natsOptions* o = c.natsOpts;
  natsOptions_SetNoEcho(o, true);
  natsOptions_SetReconnectBufSize(o, 1 << 20);
  // Forwarded calls and their replies go out at once instead of waiting for the library's
  // flusher, which batches for about a millisecond.
  natsOptions_SetSendAsap(o, true);
  auto onConnected = [](natsConnection*, void* self) {
    auto* impl = static_cast<Impl*>(self);
    impl->connected = true;
    impl->resync = true;
    impl->connectedGauge->set(1);
    spdlog::info("cluster: connected to NATS");
    impl->wake.notify_all();
  };
  natsOptions_SetRetryOnFailedConnect(o, true, onConnected, &c);
  natsOptions_SetReconnectedCB(o, onConnected, &c);
  natsOptions_SetDisconnectedCB(
      o,
      [](natsConnection*, void* self) {
        auto* impl = static_cast<Impl*>(self);
        if (impl->connected.exchange(false) && !impl->stopping) {
          spdlog::warn("cluster: lost the NATS connection; serving local functions, reconnecting");
        }
        impl->connectedGauge->set(0);
      },
      &c);
  natsStatus s = natsConnection_Connect(&c.conn, o);
  if (s == NATS_OK) {
    c.connected = true;
    c.connectedGauge->set(1);
    spdlog::info("cluster: connected to NATS at {}", c.opt.url);
  } else if (s == NATS_NOT_YET_CONNECTED) {
    spdlog::warn("cluster: NATS at {} is not reachable; serving local functions, retrying",
                 c.opt.url);
  } else {
    return Error(ErrorCode::kUnavailable, fmt::format("NATS connect: {}", natsText(s)));
  }
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = kJetStreamWaitMs;
  if (!c.opt.jetStreamDomain.empty()) jo.Domain = c.opt.jetStreamDomain.c_str();
  if (auto ok = check(natsConnection_JetStream(&c.js, c.conn, &jo), "JetStream"); !ok.ok()) return ok;

  auto heartbeatCb = [](natsConnection*, natsSubscription*, natsMsg* m, void* self) {
    auto bytes = std::span(reinterpret_cast<const uint8_t*>(natsMsg_GetData(m)),
                           static_cast<size_t>(natsMsg_GetDataLength(m)));
    static_cast<Impl*>(self)->onHeartbeat(natsMsg_GetSubject(m), bytes, true);
    natsMsg_Destroy(m);
  };
  auto requestCb = [](natsConnection*, natsSubscription*, natsMsg* m, void* self) {
    static_cast<Impl*>(self)->onRequest(m);
    natsMsg_Destroy(m);
  };
  auto replyCb = [](natsConnection*, natsSubscription*, natsMsg* m, void* self) {
    static_cast<Impl*>(self)->onReply(m);
    natsMsg_Destroy(m);
  };
  std::string invokeSubject = "tern.v1.invoke." + c.opt.nodeId;
  std::string replySubject = "tern.v1.reply." + c.opt.nodeId + ".*";
  if (auto ok = check(natsConnection_Subscribe(&c.heartbeatSub, c.conn, "tern.v1.hb.*", heartbeatCb, &c),
                      "subscribe");
      !ok.ok())
    return ok;
  if (auto ok = check(natsConnection_Subscribe(&c.invokeSub, c.conn, invokeSubject.c_str(), requestCb, &c),
                      "subscribe");
      !ok.ok())
    return ok;
  if (auto ok = check(natsConnection_Subscribe(&c.replySub, c.conn, replySubject.c_str(), replyCb, &c),
                      "subscribe");
      !ok.ok())
    return ok;
  c.heartbeatThread = std::thread([&c] { c.heartbeatLoop(); });
  c.registryThread = std::thread([&c] { c.registryLoop(); });
  spdlog::info("cluster: node {} at site {} ({} tier)", c.opt.nodeId, c.opt.identity.site,
               tierName(c.opt.identity.tier));
  return {};
}

void Cluster::stop() {
  Impl& c = *impl_;
  if (c.stopping.exchange(true)) return;
  c.wake.notify_all();
  // No new calls from peers; calls already running here answer before the connection goes.
  if (c.invokeSub) natsSubscription_Unsubscribe(c.invokeSub);
  if (c.links) c.links->stop();
  if (c.heartbeatThread.joinable()) c.heartbeatThread.join();
  if (c.registryThread.joinable()) c.registryThread.join();
  bool drained;
  {
    std::unique_lock lock(c.servingMu);
    drained = c.servedAll.wait_for(lock, std::chrono::seconds(30), [&c] { return c.serving == 0; });
  }
  std::vector<std::function<void(exec::InvokeOutput)>> waiting;
  {
    std::lock_guard lock(c.pendingMu);
    for (auto& [id, p] : c.pending) waiting.push_back(std::move(p.done));
    c.pending.clear();
  }
  for (auto& done : waiting) {
    exec::InvokeOutput out;
    out.error = Error(ErrorCode::kUnavailable, "the node is shutting down");
    done(std::move(out));
  }
  if (!drained) {
    // A call still running here would publish its reply on a destroyed connection: keep the
    // connection (the process is ending).
    spdlog::warn("cluster: calls for peers still running at stop; leaving the connection open");
    return;
  }
  {
    std::lock_guard lock(c.kvMu);
    kvStore_Destroy(c.nodesKv);
    kvStore_Destroy(c.functionsKv);
    kvStore_Destroy(c.modulesKv);
    c.nodesKv = c.functionsKv = c.modulesKv = nullptr;
  }
  natsSubscription_Destroy(c.heartbeatSub);
  natsSubscription_Destroy(c.invokeSub);
  natsSubscription_Destroy(c.replySub);
  c.heartbeatSub = c.invokeSub = c.replySub = nullptr;
  jsCtx_Destroy(c.js);
  c.js = nullptr;
  closeNats(c.conn, c.natsOpts);
}

std::string Cluster::nodesJson() const {
  const Impl& c = *impl_;
  json nodes = json::array();
  for (const auto& m : c.view.members(c.deps.clock())) {
    json fns = json::object();
    for (const auto& [name, rate] : m.info.functions) fns[name] = rate;
    nodes.push_back(json{{"id", m.info.id},
                         {"site", m.info.identity.site},
                         {"tier", tierName(m.info.identity.tier)},
                         {"labels", m.info.identity.labels},
                         {"http", m.info.httpAddress},
                         {"direct", m.info.directAddress},
                         {"state", memberStateName(m.state)},
                         {"last_seen_ms_ago", c.deps.clock() - m.lastSeenMs},
                         {"slots", m.info.load.slots},
                         {"running", m.info.load.running},
                         {"queued", m.info.load.queued},
                         {"rejected", m.info.load.rejected},
                         {"functions", fns}});
  }
  return json{{"node", c.opt.nodeId},
              {"connected", c.connected.load()},
              {"nodes", nodes}}
             .dump(-1, ' ', false, json::error_handler_t::replace) +
         "\n";
}

}  // namespace tern::cluster
