#include "cluster/registry_sync.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <vector>

#include "cluster/function_record.h"
#include "cluster/jetstream_kv.h"
#include "cluster/nats_text.h"
#include "cluster/policy.h"
#include "util/sha256.h"

namespace tern::cluster {

namespace {

constexpr const char* kFunctionsBucket = "tern_functions";
constexpr const char* kModulesBucket = "tern_modules";
constexpr size_t kModuleChunkBytes = 256u << 10;

}  // namespace

RegistrySync::RegistrySync(ClusterContext& c) : c_(c) {
  recordsApplied_ = &c.deps.metrics.counter("tern_cluster_registry_applied_total",
                                            "Cluster registry changes applied on this node");
}

RegistrySync::~RegistrySync() { stop(); }

void RegistrySync::start() {
  // Local changes are recorded as unpublished in the registry, in the transaction that
  // makes them; the listener only wakes the registry thread to publish them.
  c_.deps.registry.setChangeJournal(store::ChangeJournal::kOn);
  c_.deps.deployments.setListener([this](const std::string&, const store::FunctionVersion*) {
    c_.wakeAll();
  });
  thread_ = std::thread([this] { loop(); });
}

void RegistrySync::stop() {
  c_.wakeAll();
  if (thread_.joinable()) thread_.join();
}

void RegistrySync::release() {
  kvStore_Destroy(functionsKv_);
  kvStore_Destroy(modulesKv_);
  functionsKv_ = modulesKv_ = nullptr;
}

bool RegistrySync::bindBuckets() {
  if (!functionsKv_) functionsKv_ = bindBucket(c_.js, {kFunctionsBucket, 8}, c_.opt.url, bindWarned_);
  if (functionsKv_ && !modulesKv_) {
    modulesKv_ = bindBucket(c_.js, {kModulesBucket, 1}, c_.opt.url, bindWarned_);
  }
  return functionsKv_ && modulesKv_;
}

Result<void> RegistrySync::fetchModule(const store::FunctionVersion& v) {
  if (c_.deps.registry.readModule(v.moduleHash).ok()) return {};
  kvEntry* entry = nullptr;
  natsStatus s = kvStore_Get(&entry, modulesKv_, v.moduleHash.c_str());
  if (s != NATS_OK) return natsError(fmt::format("module {} manifest", v.moduleHash), s);
  auto manifest = decodeManifest(std::string_view(kvEntry_ValueString(entry),
                                                  static_cast<size_t>(kvEntry_ValueLen(entry))),
                                 c_.opt.maxModuleBytes);
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
    s = kvStore_Get(&entry, modulesKv_, chunkKey.c_str());
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
    c_.reject(Rejection::kHashMismatch, fmt::format("module of function \"{}\"", v.name),
           fmt::format("the bytes hash to {}, the registry entry names {}", actual, v.moduleHash));
    return Error(ErrorCode::kInvalidModule, "module bytes do not match their hash");
  }
  auto stored = c_.deps.registry.putModule(bytes);
  if (!stored.ok()) return stored.error();
  return {};
}

Result<void> RegistrySync::uploadModule(const store::FunctionVersion& v) {
  kvEntry* entry = nullptr;
  if (kvStore_Get(&entry, modulesKv_, v.moduleHash.c_str()) == NATS_OK) {
    kvEntry_Destroy(entry);
    return {};
  }
  auto bytes = c_.deps.registry.readModule(v.moduleHash);
  if (!bytes.ok()) return bytes.error();
  uint32_t chunks = 0;
  for (size_t off = 0; off < bytes->size(); off += kModuleChunkBytes, ++chunks) {
    size_t n = std::min(kModuleChunkBytes, bytes->size() - off);
    std::string chunkKey = fmt::format("{}.{}", v.moduleHash, chunks);
    natsStatus s = kvStore_Put(nullptr, modulesKv_, chunkKey.c_str(), bytes->data() + off,
                               static_cast<int>(n));
    if (s != NATS_OK) return natsError("module upload", s);
  }
  std::string manifest = encodeManifest(ModuleManifest{bytes->size(), chunks});
  natsStatus s = kvStore_PutString(nullptr, modulesKv_, v.moduleHash.c_str(), manifest.c_str());
  if (s != NATS_OK) return natsError("module upload", s);
  return {};
}

Result<void> RegistrySync::publishFunction(const std::string& name) {
  auto active = c_.deps.registry.active(name);
  if (!active.ok()) return active.error();
  FunctionRecord r;
  r.origin = c_.opt.nodeId;
  r.updatedAtMs = c_.deps.clock();
  if (*active) {
    r.version = **active;
    if (auto ok = uploadModule(r.version); !ok.ok()) return ok.error();
  } else {
    r.version.name = name;
    r.deleted = true;
  }
  std::string msg = encodeEnvelope(
      c_.key, Envelope{MessageKind::kFunctionRecord, c_.opt.nodeId, r.updatedAtMs, encodeFunctionRecord(r)});
  natsStatus s = kvStore_Put(nullptr, functionsKv_, name.c_str(), msg.data(),
                             static_cast<int>(msg.size()));
  if (s != NATS_OK) return natsError("registry write", s);
  spdlog::info("cluster: published {} of function {}",
               r.deleted ? std::string("removal") : fmt::format("version {}", r.version.version),
               name);
  return {};
}

void RegistrySync::flushOutbox() {
  // Local changes, oldest first. A row goes only after the bucket acknowledged the write
  // (kvStore_Put returns once JetStream stored it), and only if the function did not
  // change again meanwhile.
  auto changes = c_.deps.registry.unpublished();
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
    if (auto done = c_.deps.registry.markPublished(change); !done.ok()) {
      spdlog::error("cluster: function {} is published but still marked unpublished: {}",
                    change.name, done.error().describe());
    }
  }
  std::set<std::string> names;
  {
    MutexLock lock(outboxMu_);
    names = localOnly_;
  }
  for (const auto& name : names) {
    if (auto ok = publishFunction(name); !ok.ok()) {
      spdlog::warn("cluster: cannot publish function {} yet: {}", name, ok.error().describe());
      return;  // kept for the next round
    }
    MutexLock lock(outboxMu_);
    localOnly_.erase(name);
  }
}

void RegistrySync::reconcileLocalOnly(const std::set<std::string>& inCluster) {
  auto list = c_.deps.registry.list();
  if (!list.ok()) return;
  MutexLock lock(outboxMu_);
  for (const auto& f : *list) {
    if (!inCluster.contains(f.name)) localOnly_.insert(f.name);
  }
}

bool RegistrySync::applyRecord(std::string_view keyName, std::string_view value) {
  std::string where = fmt::format("registry entry \"{}\"", keyName);
  auto e = c_.open(std::span(reinterpret_cast<const uint8_t*>(value.data()), value.size()),
                MessageKind::kFunctionRecord, where, false);
  if (!e) return false;
  auto r = decodeFunctionRecord(e->payload);
  if (!r.ok()) {
    c_.reject(Rejection::kMalformed, where, r.error().message());
    return false;
  }
  const std::string& name = r->version.name;
  if (name != keyName || r->origin != e->sender) {
    c_.reject(Rejection::kForgedIdentity, where,
           fmt::format("entry for \"{}\" from \"{}\" signed by \"{}\"", name, r->origin, e->sender));
    return false;
  }
  // A change made here and not yet acknowledged is newer than this entry (it is written
  // to the bucket after it, and the last write wins): the entry is not applied.
  {
    MutexLock lock(outboxMu_);
    if (localOnly_.contains(name)) return true;
  }
  auto unpublished = c_.deps.registry.isUnpublished(name);
  if (!unpublished.ok()) {
    spdlog::error("cluster: {}: {}", where, unpublished.error().describe());
    return true;
  }
  if (*unpublished) return true;
  auto local = c_.deps.registry.active(name);
  if (!local.ok()) {
    spdlog::error("cluster: {}: {}", where, local.error().describe());
    return true;
  }
  if (r->deleted || !placementMatches(r->version.settings.placement, c_.opt.identity)) {
    if (!*local) return true;
    auto state = r->deleted ? store::StateOnWithdraw::kDelete : store::StateOnWithdraw::kKeep;
    auto gone = c_.deps.deployments.withdraw(name, state);
    if (!gone.ok()) {
      spdlog::error("cluster: cannot withdraw function {}: {}", name, gone.error().describe());
      return true;
    }
    recordsApplied_->inc();
    spdlog::info("cluster: function {} {}", name,
                 r->deleted ? "was removed" : "is placed elsewhere: no longer served here");
    return true;
  }
  if (*local && sameVersion(**local, r->version)) return true;
  // Garbage collection keeps the fetched module until adopt() has recorded its version.
  auto hold = c_.deps.registry.holdModule(r->version.moduleHash);
  if (auto ok = fetchModule(r->version); !ok.ok()) {
    spdlog::error("cluster: cannot get the module of function {} version {}: {}", name,
                  r->version.version, ok.error().describe());
    return ok.error().code() != ErrorCode::kInvalidModule;
  }
  if (auto ok = c_.deps.deployments.adopt(r->version); !ok.ok()) {
    spdlog::error("cluster: cannot serve function {} version {}: {}", name, r->version.version,
                  ok.error().describe());
    return true;
  }
  recordsApplied_->inc();
  spdlog::info("cluster: serving function {} version {} (from node {})", name, r->version.version,
               r->origin);
  return true;
}

void RegistrySync::loop() {
  std::unique_ptr<KvWatch> watch;
  bool bound = false;
  bool caughtUp = false;
  std::set<std::string> seen;
  while (!c_.stopping) {
    if (!c_.connected) {
      c_.pause(std::chrono::milliseconds(100));
      continue;
    }
    if (!bound) {
      bound = bindBuckets();
      if (!bound) {
        c_.pause(std::chrono::milliseconds(500));
        continue;
      }
      spdlog::info("cluster: registry buckets ready");
    }
    if (c_.resync.exchange(false) || !watch) {
      watch.reset();
      natsStatus s = KvWatch::open(watch, c_.conn, c_.js, functionsKv_);
      if (s != NATS_OK) {
        spdlog::warn("cluster: cannot watch the registry yet: {}", natsText(s));
        c_.resync = true;
        c_.pause(std::chrono::milliseconds(500));
        continue;
      }
      seen.clear();
      caughtUp = false;
    }
    std::optional<KvChange> change;
    natsStatus s = watch->next(change, 200);
    if (s == NATS_OK && !change) {
      reconcileLocalOnly(seen);
      caughtUp = true;
      spdlog::info("cluster: registry caught up ({} function(s) in the cluster)", seen.size());
    } else if (s == NATS_OK) {
      if (!change->deleted) {
        seen.insert(change->key);
        applyRecord(change->key, change->value);
      }
    } else if (s != NATS_TIMEOUT) {
      spdlog::warn("cluster: registry watch ended: {}", natsText(s));
      c_.resync = true;
      c_.pause(std::chrono::milliseconds(200));
    }
    if (caughtUp && c_.connected) flushOutbox();
  }
}

}  // namespace tern::cluster
