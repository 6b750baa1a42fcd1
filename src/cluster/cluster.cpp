#include "cluster/cluster.h"

#include <fmt/format.h>
#include <nats/nats.h>
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "cluster/cluster_context.h"
#include "cluster/forwarding.h"
#include "cluster/heartbeats.h"
#include "cluster/nats_options.h"
#include "cluster/nats_text.h"
#include "cluster/registry_sync.h"
#include "util/names.h"

namespace tern::cluster {

using json = nlohmann::json;

// The facade: the NATS connection, and the three services on it (heartbeats.h,
// registry_sync.h, forwarding.h), started and stopped in order.
struct Cluster::Impl : ClusterContext {
  Impl(ClusterOptions o, ClusterKey k, ClusterDeps d)
      : ClusterContext(std::move(o), std::move(k), std::move(d)),
        heartbeats(*this),
        registry(*this),
        forwarding(*this, heartbeats.view()) {}

  Heartbeats heartbeats;
  RegistrySync registry;
  Forwarding forwarding;
};

Cluster::Cluster(ClusterOptions options, ClusterKey key, ClusterDeps deps)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(key), std::move(deps))) {}

Cluster::~Cluster() { stop(); }

const std::string& Cluster::nodeId() const { return impl_->opt.nodeId; }

bool Cluster::applyRecord(std::string_view key, std::string_view value) {
  return impl_->registry.applyRecord(key, value);
}

void Cluster::invokeOn(const std::string& node, exec::InvokeInput input,
                       std::function<void(exec::InvokeOutput)> done) {
  impl_->forwarding.invokeOn(node, std::move(input), std::move(done));
}

void Cluster::segmentOn(const std::string& node, const std::string& first, std::string segment,
                        std::function<void(exec::InvokeOutput)> done) {
  impl_->forwarding.segmentOn(node, first, std::move(segment), std::move(done));
}

std::vector<Member> Cluster::members() const {
  return impl_->heartbeats.view().members(impl_->deps.clock());
}

bool Cluster::offer(exec::InvokeInput& input, std::function<void(exec::InvokeOutput)>& done,
                    exec::Elsewhere why) {
  return impl_->forwarding.offer(input, done, why);
}

Result<void> Cluster::start() {
  Impl& c = *impl_;
  if (!isNodeName(c.opt.nodeId)) {
    return Error(ErrorCode::kInvalidArgument,
                 fmt::format("node name \"{}\" is invalid: use 1-63 characters a-z, 0-9 and '-'",
                             c.opt.nodeId));
  }
  if (!isNodeName(c.opt.identity.site)) {
    return Error(ErrorCode::kInvalidArgument,
                 fmt::format("site \"{}\" is invalid: use 1-63 characters a-z, 0-9 and '-'",
                             c.opt.identity.site));
  }
  if (c.opt.heartbeat.count() <= 0 || c.opt.ttl <= c.opt.heartbeat) {
    return Error(ErrorCode::kInvalidArgument,
                 "the membership TTL must be longer than the heartbeat interval");
  }
  if (auto ok = c.forwarding.listen(); !ok.ok()) return ok;

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
    impl->wakeAll();
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


  if (auto ok = c.heartbeats.start(c.forwarding.directAddress()); !ok.ok()) return ok;
  if (auto ok = c.forwarding.start(); !ok.ok()) return ok;
  c.registry.start();
  spdlog::info("cluster: node {} at site {} ({} tier)", c.opt.nodeId, c.opt.identity.site,
               tierName(c.opt.identity.tier));
  return {};
}

void Cluster::stop() {
  Impl& c = *impl_;
  if (c.stopping.exchange(true)) return;
  c.wakeAll();
  // No new calls from peers; calls already running here answer before the connection goes.
  c.forwarding.stopTaking();
  c.heartbeats.stop();
  c.registry.stop();
  if (!c.forwarding.stop()) {
    // A call still running here would publish its reply on a destroyed connection: keep the
    // connection (the process is ending).
    spdlog::warn("cluster: calls for peers still running at stop; leaving the connection open");
    return;
  }
  c.heartbeats.release();
  c.registry.release();
  c.forwarding.release();
  jsCtx_Destroy(c.js);
  c.js = nullptr;
  closeNats(c.conn, c.natsOpts);
}

std::string Cluster::nodesJson() const {
  const Impl& c = *impl_;
  json nodes = json::array();
  for (const auto& m : c.heartbeats.view().members(c.deps.clock())) {
    json fns = json::object();
    for (const auto& [name, rate] : m.info.functions) fns[name] = rate;
    nodes.push_back(json{{"id", m.info.id},
                         {"site", m.info.identity.site},
                         {"tier", tierName(m.info.identity.tier)},
                         {"labels", m.info.identity.labels},
                         {"http", m.info.httpAddress},
                         {"direct", m.info.directAddress},
                         {"direct_tls", m.info.directSecurity == LinkSecurity::kTls},
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
