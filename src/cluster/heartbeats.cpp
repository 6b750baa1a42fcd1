#include "cluster/heartbeats.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <memory>
#include <optional>

#include "cluster/jetstream_kv.h"
#include "cluster/nats_text.h"

namespace tern::cluster {

namespace {

constexpr const char* kNodesBucket = "tern_nodes";

}  // namespace

Heartbeats::Heartbeats(ClusterContext& c)
    : c_(c), view_(c.opt.nodeId, c.opt.heartbeat.count(), c.opt.ttl.count()) {
  membersGauge_ = &c.deps.metrics.gauge("tern_cluster_members",
                                        "Nodes in this node's view, itself included");
  recordsWritten_ = &c.deps.metrics.counter("tern_cluster_membership_writes_total",
                                            "Writes of this node's record to the tern_nodes bucket, by result",
                                            {{"result", "written"}});
  recordsFailed_ = &c.deps.metrics.counter("tern_cluster_membership_writes_total",
                                           "Writes of this node's record to the tern_nodes bucket, by result",
                                           {{"result", "failed"}});
}

Heartbeats::~Heartbeats() { stop(); }

Result<void> Heartbeats::start(std::string directAddress) {
  directAddress_ = std::move(directAddress);
  startedAtMs_ = c_.deps.clock();
  auto onMessage = [](natsConnection*, natsSubscription*, natsMsg* m, void* self) {
    auto bytes = std::span(reinterpret_cast<const uint8_t*>(natsMsg_GetData(m)),
                           static_cast<size_t>(natsMsg_GetDataLength(m)));
    static_cast<Heartbeats*>(self)->onHeartbeat(natsMsg_GetSubject(m), bytes, true);
    natsMsg_Destroy(m);
  };
  natsStatus s = natsConnection_Subscribe(&sub_, c_.conn, "tern.v1.hb.*", onMessage, this);
  if (s != NATS_OK) {
    return Error(ErrorCode::kInvalidArgument, fmt::format("NATS subscribe: {}", natsText(s)));
  }
  beatThread_ = std::thread([this] { beatLoop(); });
  recordThread_ = std::thread([this] { recordLoop(); });
  return {};
}

void Heartbeats::stop() {
  {
    MutexLock lock(recordMu_);
    recordReady_.notify_all();
  }
  c_.wakeAll();
  if (beatThread_.joinable()) beatThread_.join();
  if (recordThread_.joinable()) recordThread_.join();
}

void Heartbeats::release() {
  kvStore_Destroy(nodesKv_);
  nodesKv_ = nullptr;
  natsSubscription_Destroy(sub_);
  sub_ = nullptr;
}

NodeInfo Heartbeats::selfInfo(int64_t nowMs) {
  NodeInfo n;
  n.id = c_.opt.nodeId;
  n.identity = c_.opt.identity;
  n.httpAddress = c_.opt.httpAddress;
  n.directAddress = directAddress_;
  n.directSecurity = c_.opt.directTls ? LinkSecurity::kTls : LinkSecurity::kPlain;
  auto ex = c_.deps.executor.stats();
  n.load = NodeLoad{ex.slots, ex.running, ex.queued, ex.rejected};
  double seconds = lastTotalsMs_ ? static_cast<double>(nowMs - lastTotalsMs_) / 1000.0 : 0;
  std::map<std::string, uint64_t> totals;
  for (const auto& fn : c_.deps.table.all()) {
    if (!fn->active()) continue;
    uint64_t total = 0;
    for (int i = 0; i < exec::FunctionEntry::kRejected; ++i) total += fn->outcomes[i]->value();
    auto last = lastTotals_.find(fn->name);
    double rate = 0;
    if (seconds > 0 && last != lastTotals_.end() && total >= last->second) {
      rate = static_cast<double>(total - last->second) / seconds;
    }
    n.functions[fn->name] = rate;
    totals[fn->name] = total;
  }
  lastTotals_ = std::move(totals);
  lastTotalsMs_ = nowMs;
  n.startedAtMs = startedAtMs_;
  n.sequence = ++sequence_;
  return n;
}

void Heartbeats::beatLoop() {
  while (!c_.stopping) {
    int64_t nowMs = c_.deps.clock();
    NodeInfo info = selfInfo(nowMs);
    view_.setSelf(info, nowMs);
    if (c_.connected) {
      std::string msg = encodeEnvelope(
          c_.key, Envelope{MessageKind::kHeartbeat, c_.opt.nodeId, nowMs, encodeNodeInfo(info)});
      std::string subject = "tern.v1.hb." + c_.opt.nodeId;
      natsConnection_Publish(c_.conn, subject.c_str(), msg.data(), static_cast<int>(msg.size()));
      MutexLock lock(recordMu_);
      record_ = std::move(msg);
      recordReady_.notify_all();
    }
    for (const auto& gone : view_.expire(nowMs)) {
      spdlog::info("cluster: node {} is silent for {} ms and leaves the view", gone,
                   c_.opt.ttl.count());
    }
    membersGauge_->set(static_cast<double>(view_.size()));
    c_.pause(c_.opt.heartbeat);
  }
}

void Heartbeats::recordLoop() {
  bool warned = false;
  while (!c_.stopping) {
    if (!c_.connected) {
      c_.pause(std::chrono::milliseconds(100));
      continue;
    }
    if (!nodesKv_) {
      nodesKv_ = bindBucket(c_.js, {kNodesBucket, 1, c_.opt.ttl.count()}, c_.opt.url, warned);
      if (!nodesKv_) {
        c_.pause(std::chrono::milliseconds(500));
        continue;
      }
      spdlog::info("cluster: membership bucket ready");
      loadMembersFromBucket(nodesKv_);
    }
    std::string msg;
    {
      MutexLock lock(recordMu_);
      lock.wait(recordReady_, [this]() TERN_REQUIRES(recordMu_) { return c_.stopping || !record_.empty(); });
      if (c_.stopping) break;
      msg = std::move(record_);
      record_.clear();
    }
    // Only the latest heartbeat is written: those published while this write waits on
    // JetStream are superseded by the next one.
    uint64_t rev = 0;
    natsStatus s = kvStore_Put(&rev, nodesKv_, c_.opt.nodeId.c_str(), msg.data(),
                               static_cast<int>(msg.size()));
    if (s == NATS_OK) {
      recordsWritten_->inc();
    } else {
      recordsFailed_->inc();
      spdlog::debug("cluster: membership record not written: {}", natsText(s));
    }
  }
}

void Heartbeats::onHeartbeat(std::string_view subject, std::span<const uint8_t> bytes, bool live) {
  auto e = c_.open(bytes, MessageKind::kHeartbeat, "heartbeat", live);
  if (!e) return;
  std::string_view claimed = lastToken(subject);
  if (e->sender != claimed || e->sender == c_.opt.nodeId) {
    c_.reject(Rejection::kForgedIdentity, "heartbeat",
              fmt::format("node \"{}\" sent a heartbeat as \"{}\"", e->sender, claimed));
    return;
  }
  auto info = decodeNodeInfo(e->payload);
  if (!info.ok()) {
    c_.reject(Rejection::kMalformed, "heartbeat", info.error().message());
    return;
  }
  if (info->id != e->sender) {
    c_.reject(Rejection::kForgedIdentity, "heartbeat",
              fmt::format("node \"{}\" announced itself as \"{}\"", e->sender, info->id));
    return;
  }
  if (!live && c_.deps.clock() - e->sentAtMs > c_.opt.ttl.count()) return;  // an old registration
  view_.observe(std::move(*info), c_.deps.clock());
}

void Heartbeats::loadMembersFromBucket(kvStore* nodes) {
  std::unique_ptr<KvWatch> watch;
  if (KvWatch::open(watch, c_.conn, c_.js, nodes, {.ignoreDeletes = true}) != NATS_OK) return;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kJetStreamWaitMs);
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    std::optional<KvChange> e;
    if (left.count() <= 0 || watch->next(e, left.count()) != NATS_OK || !e) return;
    auto data = reinterpret_cast<const uint8_t*>(e->value.data());
    onHeartbeat("tern.v1.hb." + e->key, std::span(data, e->value.size()), false);
  }
}

}  // namespace tern::cluster
