#include "node/node.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <thread>
#include <vector>

#include "async/async_queue.h"
#include "async/http_callback.h"
#include "cluster/cluster.h"
#include "cluster/job_stream.h"
#include "cluster/jetstream_token_store.h"
#include "cluster/nats_security.h"
#include "util/clock.h"
#include "events/scheduler.h"
#include "exec/executor.h"
#include "exec/function_table.h"
#include "exec/invoker.h"
#include "exec/schedule_metrics.h"
#include "http/http_server.h"
#include "store/deployments.h"
#include "store/kv_store.h"
#include "providers/provider_routes.h"
#include "providers/provider_store.h"
#include "providers/router.h"
#include "store/registry.h"
#include "store/token_store.h"
#include "stream/frames.h"
#include "stream/hub.h"
#include "stream/jetstream_topic_log.h"
#include "stream/mqtt_bridge.h"
#include "stream/mqtt_devices.h"
#include "stream/sqlite_topic_log.h"
#include "stream/stream_routes.h"
#include "triggers/coap_server.h"
#include "triggers/event_router.h"
#include "triggers/http_gateway.h"
#include "triggers/mqtt_client.h"
#include "util/data_dir.h"
#include "util/metrics.h"
#include "util/process_stats.h"
#include "util/work_queue.h"
#include "wasm/compile_cache.h"
#include "wasm/engine.h"
#include "workflow/workflow_routes.h"
#include "workflow/workflow_service.h"

namespace tern::node {

namespace fs = std::filesystem;

namespace {

// Reads <data>/NAME, creating it (`bytes` random bytes, hex, mode 0600) on first start.
Result<std::string> loadOrCreateRandomHex(const fs::path& dataDir, const std::string& name,
                                          size_t bytes) {
  fs::path path = dataDir / name;
  std::ifstream in(path);
  std::string token;
  if (in && std::getline(in, token) && token.size() >= 2 * bytes) return token;
  std::vector<unsigned char> raw(bytes);
  if (RAND_bytes(raw.data(), static_cast<int>(raw.size())) != 1) {
    return Error(ErrorCode::kInternal, "no randomness");
  }
  token.clear();
  for (unsigned char c : raw) token += fmt::format("{:02x}", c);
  fs::path tmp = dataDir / (name + ".tmp");
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Error(ErrorCode::kIo, "cannot write " + tmp.string());
  std::string line = token + "\n";
  bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) &&
            ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    return Error(ErrorCode::kIo, "cannot write " + path.string());
  }
  return token;
}

// Tightens what tern keeps in a data directory (see docs/architecture.md) to its user only.
// Other entries are left alone: a data directory that is also something else (a home
// directory given by mistake) does not have all of its contents changed.
Result<size_t> makeDataPrivate(const fs::path& dataDir) {
  static constexpr std::string_view kTernEntries[] = {
      "registry.db", "kv.db", "queue.db", "schedules.db", "workflows.db", "streams.db", "providers.db", "tokens.db", "admin.token", "node.id",
      "reserve",     "modules", "cache"};
  size_t changed = 0;
  std::error_code ec;
  for (fs::directory_iterator it(dataDir, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    bool ours = false;
    for (auto entry : kTernEntries) ours = ours || name.starts_with(entry);  // -wal, .tmp
    if (!ours) continue;
    auto n = makePrivate(it->path());
    if (!n.ok()) return n.error();
    changed += *n;
  }
  if (ec) return Error(ErrorCode::kIo, "cannot list " + dataDir.string() + ": " + ec.message());
  return changed;
}

}  // namespace

struct Node::Impl {
  NodeConfig config;
  std::string token;
  MetricsRegistry metrics;
  // Scoped tokens: <data>/tokens.db standalone, the tern_tokens bucket in a cluster (whose
  // thread counts into `metrics`, so it is declared after them and destroyed first); the
  // checks of every request that needs a token.
  std::unique_ptr<store::TokenStore> tokenStore;
  std::unique_ptr<triggers::TokenAuth> auth;
  std::unique_ptr<wasm::Engine> engine;
  std::unique_ptr<store::Registry> registry;
  std::unique_ptr<store::KvStore> kv;  // functions' key-value state, <data>/kv.db
  std::unique_ptr<store::DiskReserve> reserve;  // <data>/reserve, released on a full disk
  // How functions' host API publish calls reach a broker. Without an MQTT broker it
  // refuses; set before start() serves, since invocations call through it.
  std::function<Result<void>(std::string_view, std::string_view)> publish =
      [](std::string_view, std::string_view) -> Result<void> {
    return Error(ErrorCode::kUnavailable, "no MQTT broker configured on this node");
  };
  std::unique_ptr<exec::FunctionTable> table;
  std::unique_ptr<exec::Executor> executor;
  std::unique_ptr<exec::Invoker> invoker;
  std::unique_ptr<store::Deployments> deployments;
  // Builds optimized objects of functions served at the baseline tier; declared after the
  // engine and table it uses, so it stops before they go.
  std::unique_ptr<store::TierUp> tierUp;
  std::unique_ptr<WorkQueue> managementQueue;
  SystemClock asyncClock;
  SystemRandom asyncRandom;
  // Durable async invocations; origins other than "http" register their delivery hooks on
  // it before it starts (just before the HTTP server).
  std::unique_ptr<async::AsyncQueue> asyncQueue;
  std::unique_ptr<triggers::HttpGateway> gateway;
  std::unique_ptr<http::Server> server;
  std::shared_ptr<const http::ServerTls> serverTls;  // null: plain HTTP
  std::shared_ptr<const http::LinkTls> linkTls;      // null: plain direct links (or none)
  Result<void> loadTls();
  std::unique_ptr<triggers::CoapServer> coap;
  // MQTT and time triggers (see triggers/event_router.h); mqtt only with a broker.
  SystemClock eventClock;
  std::unique_ptr<events::Scheduler> scheduler;
  std::unique_ptr<triggers::MqttClient> mqtt;
  std::unique_ptr<triggers::EventRouter> eventRouter;
  // Invocations that do not run inline on a serving thread: slow functions, and queued
  // invocations once a slot frees up. As many threads as worker slots.
  std::unique_ptr<WorkQueue> workers;
  // Membership in a cluster (--cluster); null for a standalone node.
  std::unique_ptr<cluster::Cluster> cluster;
  // The cluster's async work queue (TERN_ASYNC); with `cluster` only.
  std::unique_ptr<cluster::JobStream> jobStream;
  // Workflows (<data>/workflows.db); tasks reach the cluster through `cluster` once it
  // exists.
  std::unique_ptr<workflow::WorkflowService> workflows;
  // Streams to devices: topics and apps (<data>/streams.db standalone), and the hub of
  // device connections; the hub goes before the server and the workers.
  std::unique_ptr<stream::SqliteStreamStore> streamStore;
  std::unique_ptr<stream::JetStreamTopics> jetStreamTopics;  // in a cluster, instead
  stream::TopicLog* topics = nullptr;
  stream::AppStore* apps = nullptr;
  std::unique_ptr<stream::Hub> hub;
  // Providers and routes (<data>/providers.db) and the router the invoker offers calls to.
  std::unique_ptr<providers::ProviderStore> providerStore;
  std::unique_ptr<providers::Router> router;
  // Streams over the MQTT broker: bridge rules and device connections (config.streams).
  std::unique_ptr<stream::MqttBridge> mqttBridge;
  std::unique_ptr<stream::MqttDevices> mqttDevices;
  bool running = false;
  // Set when stop() begins: MQTT messages are refused (left unacknowledged for the next
  // start) instead of becoming jobs.
  std::atomic<bool> intakeClosed{false};

  std::string engineMetrics() const;
  Result<void> openEventSources();
  Result<void> openCluster();
  Result<void> openWorkflows();
  Result<void> openStreams();
  Result<void> openProviders();
  Result<void> openStreamsOverMqtt();
  // A fused unit a peer sent: runs it here and answers with its result as stdout.
  void runPeerSegment(std::string text, std::function<void(exec::InvokeOutput)> done);
};

void Node::Impl::runPeerSegment(std::string text, std::function<void(exec::InvokeOutput)> done) {
  auto answer = [done = std::move(done)](workflow::SegmentResult r) {
    exec::InvokeOutput out;
    out.ran = !r.members.empty();
    // A unit that never started answers with the error, so that the caller may try again;
    // one that ran answers with every member's result.
    if (!out.ran && r.error) {
      out.error = std::move(r.error);
    } else {
      out.result.stdoutData = workflow::segmentResultJson(r).dump();
    }
    done(std::move(out));
  };
  auto segment = workflow::parseSegment(nlohmann::json::parse(text, nullptr, false));
  if (!segment.ok()) return answer(workflow::SegmentResult{{}, segment.error()});
  workflow::runSegment(*invoker, std::move(*segment), std::move(answer));
}

// The workflow service: tasks run through the invoker here, and in a cluster on the
// nodes placement names.
Result<void> Node::Impl::openWorkflows() {
  workflow::ServiceDeps deps{*invoker, *table, metrics, config.workers, config.async.retention, {}, {}, {}, {}};
  // A standalone node has a tier too: where a planned workflow's units may run here.
  deps.self.tier = config.cluster.tier;
  if (!config.cluster.url.empty()) {
    deps.self.id = config.cluster.nodeName.empty() ? "self" : config.cluster.nodeName;
    deps.self.site = config.cluster.site;
    deps.self.labels = config.cluster.labels;
    deps.peers = [this] {
      std::vector<workflow::PeerView> out;
      if (!cluster) return out;
      for (const auto& m : cluster->members()) {
        if (m.state == cluster::MemberState::kSelf) continue;
        workflow::PeerView p;
        p.id = m.info.id;
        p.site = m.info.identity.site;
        p.tier = cluster::tierName(m.info.identity.tier);
        p.labels = m.info.identity.labels;
        for (const auto& [fn, rate] : m.info.functions) p.functions.push_back(fn);
        p.spare = m.info.load.spare();
        out.push_back(std::move(p));
      }
      return out;
    };
    deps.invokeOn = [this](const std::string& node, exec::InvokeInput in,
                           std::function<void(exec::InvokeOutput)> done) {
      if (!cluster) {
        exec::InvokeOutput out;
        out.error = Error(ErrorCode::kUnavailable, "not in a cluster yet");
        return done(std::move(out));
      }
      cluster->invokeOn(node, std::move(in), std::move(done));
    };
    deps.segmentOn = [this](const std::string& node, const workflow::Segment& segment,
                            std::function<void(workflow::SegmentResult)> done) {
      auto answer = [done = std::move(done)](exec::InvokeOutput out) {
        if (out.error) return done(workflow::SegmentResult{{}, std::move(out.error)});
        auto r = workflow::parseSegmentResult(out.result.stdoutData);
        if (!r.ok()) return done(workflow::SegmentResult{{}, r.error()});
        done(std::move(*r));
      };
      if (!cluster) {
        exec::InvokeOutput out;
        out.error = Error(ErrorCode::kUnavailable, "not in a cluster yet");
        return answer(std::move(out));
      }
      cluster->segmentOn(node, segment.members.front().function, workflow::segmentJson(segment).dump(), std::move(answer));
    };
  }
  auto service = workflow::WorkflowService::open(config.dataDir / "workflows.db", std::move(deps));
  if (!service.ok()) return service.error();
  workflows = std::move(*service);
  return {};
}

// Topics, apps and the hub of device connections.
// The NATS security settings of every connection the node opens.
static cluster::NatsSecurity natsSecurity(const NodeConfig::Cluster& cc) {
  return cluster::NatsSecurity{cc.natsCaFile, cc.natsCertFile, cc.natsKeyFile, cc.natsCredsFile};
}

Result<void> Node::Impl::openStreams() {
  const auto& sc = config.streams;
  stream::Retention retention{sc.retentionMessages, sc.retentionAge, sc.maxPayloadBytes};
  if (config.cluster.url.empty()) {
    auto store = stream::SqliteStreamStore::open(config.dataDir / "streams.db", retention);
    if (!store.ok()) return store.error();
    streamStore = std::move(*store);
    topics = streamStore.get();
    apps = streamStore.get();
  } else {
    // In a cluster every node sees the same topics and apps: JetStream, on a connection of
    // its own (made in the background while NATS is unreachable).
    stream::JetStreamOptions jo;
    jo.url = config.cluster.url;
    jo.nats = natsSecurity(config.cluster);
    jo.jetStreamDomain = config.cluster.jetStreamDomain;
    jo.retention = retention;
    jo.connectionName = "tern-streams";
    auto js = stream::JetStreamTopics::connect(std::move(jo));
    if (!js.ok()) return js.error();
    jetStreamTopics = std::move(*js);
    topics = &jetStreamTopics->log();
    apps = &jetStreamTopics->apps();
  }
  stream::HubOptions ho;
  ho.maxStreamsPerConnection = sc.maxStreamsPerConnection;
  ho.maxStreams = sc.maxStreams;
  hub = std::make_unique<stream::Hub>(
      stream::HubDeps{*topics, *apps, *invoker, metrics,
                      [this](std::function<void()> task) { workers->post(std::move(task)); }},
      ho);
  return {};
}

// Providers and routes: the router sees every call the invoker takes.
Result<void> Node::Impl::openProviders() {
  auto store = providers::ProviderStore::open(config.dataDir / "providers.db");
  if (!store.ok()) return store.error();
  providerStore = std::move(*store);
  providers::RouterOptions ro;
  ro.probePeriod = config.providers.probePeriod;
  ro.callTimeout = config.providers.callTimeout;
  ro.attemptTimeout = config.providers.attemptTimeout;
  ro.localTier = config.cluster.tier;
  router = std::make_unique<providers::Router>(providers::RouterDeps{*invoker, *providerStore, metrics}, ro);
  if (auto ok = router->reload(); !ok.ok()) return ok.error();
  invoker->setRouter([this](exec::InvokeInput& in, std::function<void(exec::InvokeOutput)>& done) {
    return router->route(in, done);
  });
  asyncQueue->setRoutedFunctions([this](std::string_view fn) { return router->hasRoute(fn); });
  return {};
}

// Bridge rules and device connections on the node's MQTT session, once the topics and the
// hub are open; they subscribe before the session starts.
Result<void> Node::Impl::openStreamsOverMqtt() {
  const auto& sc = config.streams;
  if (!mqtt && !sc.mqttBridges.empty()) {
    return Error(ErrorCode::kInvalidArgument,
                 "--stream-bridge needs --mqtt-broker: bridge rules take their messages from the "
                 "node's MQTT broker");
  }
  if (!mqtt && sc.mqttDevices) {
    return Error(ErrorCode::kInvalidArgument,
                 "--stream-mqtt-devices needs --mqtt-broker: devices reach the node through it");
  }
  std::vector<stream::BridgeRule> rules;
  for (const auto& spec : sc.mqttBridges) {
    auto rule = stream::parseBridgeRule(spec);
    if (!rule.ok()) return rule.error();
    rules.push_back(std::move(*rule));
  }
  if (!rules.empty()) {
    mqttBridge = std::make_unique<stream::MqttBridge>(std::move(rules), *topics, metrics);
    mqtt->setSubscriptions("stream-bridge", mqttBridge->filters());
  }
  if (sc.mqttDevices) {
    stream::MqttDeviceOptions mo;
    mo.idleTimeout = sc.mqttIdleTimeout;
    mo.maxDevices = sc.mqttMaxDevices;
    mqttDevices = std::make_unique<stream::MqttDevices>(
        mo, stream::MqttDeviceDeps{*hub, metrics,
                                   [this](std::string_view topic, std::string_view payload,
                                          std::function<void()> onAcknowledged) {
                                     return mqtt->publish(topic, payload, std::move(onAcknowledged));
                                   }});
    mqtt->setSubscriptions("stream-devices", {std::string(stream::kMqttDeviceUpFilter)});
    mqttDevices->start();
  }
  return {};
}

// Joins the cluster named by config.cluster: the node id, the secret, the invoker's
// remote path. The connection is made in the background; an unreachable NATS server does
// not stop the node from serving.
Result<void> Node::Impl::openCluster() {
  const auto& cc = config.cluster;
  if (cc.secretFile.empty()) {
    return Error(ErrorCode::kInvalidArgument,
                 "--cluster needs --cluster-secret-file: peer messages are signed with it");
  }
  auto key = cluster::ClusterKey::fromFile(cc.secretFile);
  if (!key.ok()) return key.error();
  auto tier = cluster::parseTier(cc.tier);
  if (!tier.ok()) return tier.error();
  for (const auto& l : cc.labels) {
    if (l.find('=') == std::string::npos || l.front() == '=') {
      return Error(ErrorCode::kInvalidArgument, fmt::format("label must be KEY=VALUE, got \"{}\"", l));
    }
  }
  cluster::ClusterOptions co;
  co.url = cc.url;
  co.nats = natsSecurity(cc);
  co.jetStreamDomain = cc.jetStreamDomain;
  co.nodeId = cc.nodeName;
  if (co.nodeId.empty()) {
    auto id = loadOrCreateRandomHex(config.dataDir, "node.id", 8);
    if (!id.ok()) return id.error();
    co.nodeId = *id;
  }
  co.identity = cluster::NodeIdentity{cc.site, *tier, cc.labels};
  co.httpAddress = cc.advertise.empty()
                       ? fmt::format("{}:{}", config.listenAddress, server ? server->port() : config.port)
                       : cc.advertise;
  // Peers and devices reach a node that serves TLS by an https:// URL.
  if (serverTls) co.httpAddress = "https://" + co.httpAddress;
  if (cc.directListen != "off" && serverTls && !linkTls) {
    // A node that serves TLS does not send calls in clear: without a CA to verify its
    // peers with, it keeps them on NATS (TLS with --nats-ca).
    spdlog::info("cluster: direct links are off: this node serves TLS and has no --peer-ca to "
                 "verify its peers' certificates with; forwarded calls go through NATS");
  } else if (cc.directListen != "off") {
    co.directTls = linkTls;
    const std::string& host = config.listenAddress;
    co.directListen = !cc.directListen.empty()              ? cc.directListen
                      : host.find(':') != std::string::npos ? fmt::format("[{}]:0", host)
                                                            : fmt::format("{}:0", host);
    if (!cc.advertise.empty()) {
      auto hp = cluster::splitHostPort(cc.advertise);
      if (!hp.ok()) return hp.error();
      co.directAdvertiseHost = hp->first;
    }
  }
  co.heartbeat = cc.heartbeat;
  co.ttl = cc.ttl;
  co.hopLimit = cc.hopLimit;
  co.forwardTimeout = cc.forwardTimeout;
  co.maxMessageBytes = config.maxInvokeBodyBytes + (1u << 20);
  co.maxModuleBytes = config.maxModuleBytes;
  cluster::JobStreamOptions jo;
  jo.url = co.url;
  jo.nats = co.nats;
  jo.jetStreamDomain = co.jetStreamDomain;
  jo.nodeId = co.nodeId;
  jo.retry.maxAttempts = config.async.attempts;
  jo.retry.baseMs = config.async.backoff.count();
  jo.ackMargin = cc.asyncAckMargin;
  jo.retention = config.async.retention;
  jo.maxInFlight = config.async.concurrency ? config.async.concurrency : config.workers;
  jo.maxMessageBytes = co.maxMessageBytes;
  cluster::ClusterKey jobKey = *key;
  cluster = std::make_unique<cluster::Cluster>(
      std::move(co), std::move(*key),
      cluster::ClusterDeps{*invoker, *executor, *table, *registry, *deployments, metrics,
                           [] { return unixMillis(); },
                           [this](std::string text, std::function<void(exec::InvokeOutput)> done) {
                             runPeerSegment(std::move(text), std::move(done));
                           }});
  invoker->setRemote([this](exec::InvokeInput& in, std::function<void(exec::InvokeOutput)>& done,
                            exec::Elsewhere why) { return cluster->offer(in, done, why); });
  if (auto ok = cluster->start(); !ok.ok()) return ok;
  jobStream = std::make_unique<cluster::JobStream>(
      std::move(jo), std::move(jobKey),
      cluster::JobStreamDeps{*invoker, *table, *asyncQueue, metrics, asyncRandom, [] { return unixMillis(); }});
  return jobStream->start();
}

// The scheduler, the MQTT client and the router between them and the async queue. Called
// once the queue exists and the functions are loaded; the sources start with the queue.
Result<void> Node::Impl::openEventSources() {
  events::SchedulerOptions so;
  so.databasePath = (config.dataDir / "schedules.db").string();
  so.missedRuns = config.catchUpMissedRuns ? events::MissedRuns::kRunOnce : events::MissedRuns::kSkip;
  so.onError = [](const Error& e) { spdlog::error("time triggers: {}", e.message()); };
  auto scheduler = events::Scheduler::open(so, eventClock);
  if (!scheduler.ok()) return scheduler.error();
  this->scheduler = std::move(*scheduler);

  if (!config.mqtt.broker.empty()) {
    auto address = triggers::parseBrokerAddress(config.mqtt.broker);
    if (!address.ok()) return address.error();
    triggers::MqttOptions mo;
    mo.host = address->first;
    mo.port = address->second;
    mo.clientId = config.mqtt.clientId;
    if (mo.clientId.empty()) {
      auto id = loadOrCreateRandomHex(config.dataDir, "node.id", 8);
      if (!id.ok()) return id.error();
      mo.clientId = "tern-" + *id;
    }
    mo.username = config.mqtt.username;
    mo.password = config.mqtt.password;
    mo.caFile = config.mqtt.caFile;
    mo.certFile = config.mqtt.certFile;
    mo.keyFile = config.mqtt.keyFile;
    mqtt = std::make_unique<triggers::MqttClient>(
        mo, [this](std::string_view topic, std::string_view payload) -> Result<void> {
          if (intakeClosed.load()) {
            return Error(ErrorCode::kUnavailable, "the node is shutting down");
          }
          // Devices' frames go to their connections alone; other messages to the stream
          // bridge's rules and the functions' triggers. mqttBridge and mqttDevices are set
          // (openStreamsOverMqtt) before the session starts.
          if (mqttDevices && stream::isMqttDeviceUpTopic(topic)) {
            return mqttDevices->onMqttMessage(topic, payload);
          }
          if (mqttBridge) {
            if (auto ok = mqttBridge->onMqttMessage(topic, payload); !ok.ok()) return ok;
          }
          return eventRouter->onMqttMessage(topic, payload);
        });
    publish = [this](std::string_view topic, std::string_view payload) {
      return mqtt->publish(topic, payload, triggers::PublishWait::kQueued);
    };
  }
  triggers::EventRouterOptions ro;
  ro.maxPayloadBytes = config.maxInvokeBodyBytes;
  eventRouter = std::make_unique<triggers::EventRouter>(ro, *asyncQueue, mqtt.get(), *this->scheduler,
                                                        metrics);
  asyncQueue->setDelivery(
      "mqtt", [this](const async::JobRecord& job) { return eventRouter->deliverMqtt(job); },
      &triggers::EventRouter::wantsDelivery);
  for (const auto& fn : table->all()) {
    if (auto active = fn->active()) eventRouter->update(fn->name, &active->config);
  }
  table->setObserver([this](const std::string& name, const exec::ActiveVersion* active) {
    eventRouter->update(name, active ? &active->config : nullptr);
  });
  return {};
}

std::string Node::Impl::engineMetrics() const {
  std::string out;
  auto c = engine->compiler().stats();
  auto p = engine->pool().stats();
  auto ex = executor->stats();
  auto ps = readProcessStats();
  auto line = [&](const char* name, const char* type, const char* help, double v) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n{} {}\n", name, help, name, type, name, v);
  };
  // Compiles by tier (docs/design/tiers.md), and what each function is served from now.
  out += fmt::format(
      "# HELP tern_compiles_total Modules compiled by this node\n"
      "# TYPE tern_compiles_total counter\n"
      "tern_compiles_total{{tier=\"baseline\"}} {}\n"
      "tern_compiles_total{{tier=\"optimized\"}} {}\n"
      "# HELP tern_compile_seconds_total Time spent compiling modules\n"
      "# TYPE tern_compile_seconds_total counter\n"
      "tern_compile_seconds_total{{tier=\"baseline\"}} {}\n"
      "tern_compile_seconds_total{{tier=\"optimized\"}} {}\n",
      c.baselineCompiles, c.compiles - c.baselineCompiles, c.baselineCompileSeconds,
      c.compileSeconds - c.baselineCompileSeconds);
  out += "# HELP tern_function_tier 1 for the tier whose object serves the function now\n"
         "# TYPE tern_function_tier gauge\n";
  for (const auto& fn : table->all()) {
    auto active = fn->active();
    if (!active || !active->module) continue;
    bool baseline = active->module->tier() == wasm::Tier::kBaseline;
    out += fmt::format(
        "tern_function_tier{{function=\"{}\",tier=\"baseline\"}} {}\n"
        "tern_function_tier{{function=\"{}\",tier=\"optimized\"}} {}\n",
        fn->name, baseline ? 1 : 0, fn->name, baseline ? 0 : 1);
  }
  if (tierUp) {
    auto t = tierUp->stats();
    line("tern_tier_swaps_total", "counter",
         "Optimized objects swapped in for functions served at the baseline tier",
         double(t.swaps));
    line("tern_tier_up_failures_total", "counter",
         "Optimized compiles that failed (the function stays at the baseline tier)",
         double(t.failures));
    line("tern_tier_up_stale_total", "counter",
         "Optimized objects built for a function that had moved on meanwhile (removed or "
         "deployed again): not swapped in, and collected unless a recorded version uses them",
         double(t.stale));
    line("tern_tier_up_dropped_total", "counter",
         "Optimized compiles not started because the function had moved on before their turn",
         double(t.dropped));
    line("tern_tier_ups_pending", "gauge", "Optimized compiles queued or running",
         double(t.waiting + (t.compiling ? 1 : 0)));
  }
  line("tern_compile_cache_hits_total", "counter", "Module loads served from the compile cache",
       double(c.cacheHits));
  line("tern_compiles_running", "gauge", "Compiles running now", double(c.slots.running));
  line("tern_compiles_waiting", "gauge", "Compiles waiting for a compile slot",
       double(c.slots.waiting));
  line("tern_compiles_stopped_by_limits_total", "counter",
       "Compiles stopped by the compile sandbox's memory or CPU limit",
       double(c.stoppedByLimits));
  line("tern_sandboxes_alive", "gauge", "Linear-memory slots in use", double(p.slotsInUse));
  line("tern_memory_reset_fills_pages", "gauge",
       "1 when tern fills guest memory pages itself (userfaultfd), 0 when it counts faults",
       p.fillsPages ? 1 : 0);
  line("tern_memory_pages_filled_total", "counter", "Guest memory pages filled by tern",
       double(p.pageFills));
  line("tern_worker_slots", "gauge", "Worker slots of this node", ex.slots);
  line("tern_worker_slots_busy", "gauge", "Worker slots running an invocation", ex.running);
  line("tern_queue_length", "gauge", "Requests waiting for a worker slot", ex.queued);
  line("tern_rejected_total", "counter", "Requests refused because the queue was full",
       double(ex.rejected));
  if (scheduler) {
    line("tern_schedules", "gauge", "Time triggers (cron:, every:) scheduled on this node",
         double(scheduler->size()));
  }
  line("tern_process_cpu_seconds_total", "counter", "CPU time of the node process",
       ps.cpuSecondsUser + ps.cpuSecondsSystem);
  line("tern_process_resident_memory_bytes", "gauge", "Resident memory of the node process",
       double(ps.residentBytes));
  line("tern_process_virtual_memory_bytes", "gauge", "Virtual memory of the node process",
       double(ps.virtualBytes));
  if (server) {
    auto h = server->stats();
    line("tern_http_connections_open", "gauge", "Open HTTP connections", double(h.openConnections));
    out += fmt::format(
        "# HELP tern_http_connections_refused_total HTTP connections refused at a limit\n"
        "# TYPE tern_http_connections_refused_total counter\n"
        "tern_http_connections_refused_total{{limit=\"node\"}} {}\n"
        "tern_http_connections_refused_total{{limit=\"client\"}} {}\n",
        h.connectionsRefused, h.connectionsRefusedPerClient);
    line("tern_http_idle_connections_closed_total", "counter",
         "Idle keep-alive connections closed to make room for new ones",
         double(h.idleConnectionsClosed));
    line("tern_http_bad_requests_total", "counter", "Malformed, oversized or timed-out requests",
         double(h.badRequests));
    line("tern_http_response_bytes_unsent", "gauge",
         "Bytes of responses not yet taken by clients' sockets", double(h.unsentResponseBytes));
    line("tern_http_connections_waiting", "gauge",
         "Connections waiting for unsent response bytes to drain", double(h.connectionsWaiting));
  }
  out += exec::renderScheduleMetrics(*executor, *table);
  return out;
}

Node::Node(NodeConfig config) : impl_(std::make_unique<Impl>()) {
  impl_->config = std::move(config);
}

Node::~Node() {
  if (impl_->running) stop();
}

// Loads the node's TLS identity, checks the NATS security files and, with any of them,
// logs in to NATS once, so that a bad file or a refusal stops the node before it serves
// anything.
Result<void> Node::Impl::loadTls() {
  const auto& t = config.tls;
  if (t.certFile.empty() != t.keyFile.empty()) {
    return Error(ErrorCode::kInvalidArgument,
                 "--tls-cert and --tls-key go together: a certificate needs its private key");
  }
  if (!t.certFile.empty()) {
    auto identity = http::loadServerTls(t.certFile, t.keyFile);
    if (!identity.ok()) {
      return Error(identity.error().code(), "TLS: " + identity.error().message());
    }
    serverTls = std::move(*identity);
  }
  if (!t.peerCaFile.empty()) {
    if (t.certFile.empty()) {
      return Error(ErrorCode::kInvalidArgument,
                   "--peer-ca needs --tls-cert and --tls-key: a node presents its certificate to "
                   "its peers on direct links");
    }
    auto links = http::loadLinkTls(t.certFile, t.keyFile, t.peerCaFile);
    if (!links.ok()) return Error(links.error().code(), "--peer-ca: " + links.error().message());
    linkTls = std::move(*links);
  }
  if (!config.cluster.url.empty()) {
    if (auto ok = cluster::checkNatsSecurity(natsSecurity(config.cluster)); !ok.ok()) return ok;
    // A NATS server that refuses the node's credentials or certificate stops it here.
    auto login = cluster::checkNatsLogin(config.cluster.url, natsSecurity(config.cluster));
    if (!login.ok()) return login;
  }
  return {};
}

Result<void> Node::start() {
  Impl& n = *impl_;
  NodeConfig& cfg = n.config;
  if (cfg.dataDir.empty()) cfg.dataDir = tern::defaultDataDir();
  if (cfg.workers == 0) cfg.workers = std::max(1u, std::thread::hardware_concurrency());
  // Only the node's user may read the data directory. One left open by an older tern (or
  // created under a permissive umask) is tightened rather than refused: refusing would
  // stop a node over a mode it can fix itself.
  auto created = createPrivateDirectory(cfg.dataDir);
  if (!created.ok()) return Error(ErrorCode::kIo, "data directory: " + created.error().message());
  auto tightened = makeDataPrivate(cfg.dataDir);
  if (!tightened.ok()) return Error(ErrorCode::kIo, "data directory: " + tightened.error().message());
  if (size_t changed = *tightened + (*created ? 1 : 0); changed > 0) {
    spdlog::warn("data directory {}: removed group and other permissions from {} entr{}",
                 cfg.dataDir.string(), changed, changed == 1 ? "y" : "ies");
  }
  n.reserve = std::make_unique<store::DiskReserve>(cfg.dataDir / "reserve", cfg.diskReserveBytes);
  if (cfg.diskReserveBytes > 0 && !n.reserve->restore()) {
    spdlog::warn("data directory {}: no room for the {} byte disk reserve; removals on a full "
                 "disk may fail until space is freed",
                 cfg.dataDir.string(), cfg.diskReserveBytes);
  }
  auto token = loadOrCreateRandomHex(cfg.dataDir, "admin.token", 32);
  if (!token.ok()) return token.error();
  n.token = *token;
  if (auto ok = n.loadTls(); !ok.ok()) return ok.error();

  wasm::EngineConfig ec2;
  ec2.compiler.cacheDir = cfg.dataDir / "cache";
  ec2.compiler.maxModuleBytes = cfg.maxModuleBytes;
  ec2.compiler.moduleLimits = cfg.moduleLimits;
  ec2.compiler.compileLimits = cfg.compileLimits;
  ec2.compiler.cc = cfg.cc;
  ec2.compiler.baselineCc = cfg.baselineCc;
  n.engine = std::make_unique<wasm::Engine>(ec2);
  auto registry = store::Registry::open(cfg.dataDir);
  if (!registry.ok()) return registry.error();
  n.registry = std::move(*registry);
  n.table = std::make_unique<exec::FunctionTable>(n.metrics);
  n.executor = std::make_unique<exec::Executor>(
      exec::Executor::Options{cfg.workers, cfg.queueLimit},
      exec::Executor::Scheduling{cfg.scheduling, cfg.controlPeriod, {}});
  n.workers = std::make_unique<WorkQueue>(cfg.workers);
  auto kv = store::KvStore::open(cfg.dataDir);
  if (!kv.ok()) return kv.error();
  n.kv = std::move(*kv);
  exec::HostServices services;
  services.kv = n.kv.get();
  services.publish = [this](std::string_view topic, std::string_view payload) {
    return impl_->publish(topic, payload);
  };
  // The topics open after the invoker exists (openStreams): read at call time.
  services.streamPublish = [this](std::string_view topic, std::string_view payload) -> Result<uint64_t> {
    if (!impl_->topics) return Error(ErrorCode::kUnavailable, "this node's stream topics are not open yet");
    return impl_->topics->publish(topic, payload);
  };
  n.invoker = std::make_unique<exec::Invoker>(
      *n.engine, *n.executor, *n.table,
      [this](std::function<void()> task) { impl_->workers->post(std::move(task)); },
      std::move(services));
  n.deployments =
      std::make_unique<store::Deployments>(*n.registry, *n.engine, *n.table, n.kv.get());
  n.deployments->setDiskReserve(n.reserve.get());
  n.tierUp = std::make_unique<store::TierUp>(*n.engine, *n.table);
  n.tierUp->start();
  n.deployments->setTierUp(n.tierUp.get());

  // Compiles that a crash interrupted leave work directories; compiles in progress in
  // another process sharing the cache keep theirs (compile_cache.h).
  if (size_t gone = wasm::removeAbandonedWork(ec2.compiler.cacheDir); gone > 0) {
    spdlog::info("removed {} abandoned compile director{}", gone, gone == 1 ? "y" : "ies");
  }
  auto report = n.deployments->loadAll();
  spdlog::info("loaded {} function(s) from {}", report.loaded, cfg.dataDir.string());
  for (const auto& f : report.failures) spdlog::error("cannot load function {}", f);
  // Modules and objects left unreferenced by a crash in the middle of a removal or deploy.
  auto garbage = n.deployments->collectGarbage();
  if (garbage.modules + garbage.objects > 0) {
    spdlog::info("collected {} unreferenced module(s) and {} compiled object(s), {} bytes",
                 garbage.modules, garbage.objects, garbage.bytesFreed);
  }
  for (const auto& f : garbage.failures) spdlog::error("garbage collection: {}", f);

  async::AsyncOptions ao;
  ao.file = cfg.dataDir / "queue.db";
  ao.retry.maxAttempts = cfg.async.attempts;
  ao.retry.baseMs = cfg.async.backoff.count();
  ao.deliveryRetry = ao.retry;
  ao.maxInFlight = cfg.async.concurrency ? cfg.async.concurrency : cfg.workers;
  ao.maxPending = cfg.async.maxPending;
  ao.retentionMs = cfg.async.retention.count();
  ao.stopTimeout = cfg.drainTimeout;
  auto asyncQueue = async::AsyncQueue::open(
      ao, async::AsyncDeps{*n.invoker, *n.table, n.metrics, n.asyncClock, n.asyncRandom});
  if (!asyncQueue.ok()) return asyncQueue.error();
  n.asyncQueue = std::move(*asyncQueue);
  n.asyncQueue->setDelivery("http", async::httpCallbackDelivery(std::chrono::seconds(10)),
                            async::hasCallbackUrl);
  if (auto ok = n.openEventSources(); !ok.ok()) return ok.error();

  if (auto ok = n.openWorkflows(); !ok.ok()) return ok.error();
  if (auto ok = n.openStreams(); !ok.ok()) return ok.error();
  if (auto ok = n.openProviders(); !ok.ok()) return ok.error();
  if (auto ok = n.openStreamsOverMqtt(); !ok.ok()) return ok.error();
  if (cfg.cluster.url.empty()) {
    auto tokens = store::SqliteTokenStore::open(cfg.dataDir / "tokens.db");
    if (!tokens.ok()) return tokens.error();
    n.tokenStore = std::move(*tokens);
  } else {
    // Valid on every node of the cluster; connected in the background like the streams.
    cluster::JetStreamTokenOptions to;
    to.url = cfg.cluster.url;
    to.jetStreamDomain = cfg.cluster.jetStreamDomain;
    to.nats = natsSecurity(cfg.cluster);
    to.maxStaleness = cfg.cluster.tokenMaxStaleness;
    auto tokens = cluster::JetStreamTokenStore::connect(std::move(to), n.metrics);
    if (!tokens.ok()) return tokens.error();
    n.tokenStore = std::move(*tokens);
  }
  n.auth = std::make_unique<triggers::TokenAuth>(n.tokenStore.get(), n.token, triggers::systemTokenClocks());
  n.managementQueue = std::make_unique<WorkQueue>();
  triggers::GatewayLimits limits;
  limits.maxInvokeBody = cfg.maxInvokeBodyBytes;
  limits.maxModuleBytes = cfg.maxModuleBytes;
  n.gateway = std::make_unique<triggers::HttpGateway>(
      triggers::GatewayDeps{*n.invoker, *n.executor, *n.table, *n.registry, *n.deployments,
                            n.metrics, *n.managementQueue, *n.auth, "0.1.0",
                            [this] { return impl_->engineMetrics(); }, n.asyncQueue.get(),
                            [this] { return impl_->cluster ? impl_->cluster->nodeId() : std::string(); },
                            [this] {
                              return impl_->cluster ? impl_->cluster->nodesJson() : std::string();
                            },
                            [this](http::Request&& r, http::Respond respond) {
                              workflow::handleWorkflowRequest(*impl_->workflows, std::move(r),
                                                              std::move(respond));
                            },
                            n.kv.get(),
                            [this](http::Request&& r, http::Respond respond) {
                              stream::handleStreamRequest(
                                  stream::StreamRoutes{*impl_->topics, *impl_->apps, *impl_->hub},
                                  std::move(r), std::move(respond));
                            },
                            [this](http::Request&& r, http::Respond respond) {
                              providers::handleProviderRequest(
                                  providers::ProviderRoutes{*impl_->providerStore,
                                                            [this] { return impl_->router->statsJson(); },
                                                            [this] {
                                                              if (auto ok = impl_->router->reload(); !ok.ok()) {
                                                                spdlog::error("providers: {}", ok.error().message());
                                                              }
                                                            }},
                                  std::move(r), std::move(respond));
                            },
                            cfg.invokeAuth},
      limits);

  http::ServerOptions so;
  so.address = cfg.listenAddress;
  so.port = cfg.port;
  // Serving threads run short invocations inline; slow ones go to the worker pool, so the
  // serving threads stay free to read requests, queue them or refuse them.
  so.threads = cfg.workers;
  so.maxHeaderBytes = cfg.maxHeaderBytes;
  so.maxConnections = cfg.maxConnections;
  so.maxConnectionsPerClient = cfg.maxConnectionsPerClient;
  so.readTimeout = cfg.readTimeout;
  so.idleTimeout = cfg.idleTimeout;
  so.writeTimeout = cfg.writeTimeout;
  so.maxUnsentResponseBytes = cfg.maxUnsentResponseBytes;
  so.maxUnsentResponseBytesPerClient = cfg.maxUnsentResponseBytesPerClient;
  so.tls = n.serverTls;
  n.server = std::make_unique<http::Server>(
      so,
      [this](std::string_view m, std::string_view t) { return impl_->gateway->bodyLimit(m, t); },
      [this](http::Request&& r, http::Respond respond) {
        impl_->gateway->handle(std::move(r), std::move(respond));
      });
  http::WebSocketOptions wo;
  wo.maxMessageBytes = stream::kMaxFrameBytes;
  wo.stallTimeout = cfg.streams.stallTimeout;
  wo.maxConnections = cfg.streams.maxConnections;
  // WebSockets: the console's live event feed (/v1/events), then device connections.
  n.server->setUpgradeHandler(
      [this](const http::Request& r) {
        auto events = impl_->gateway->eventsUpgrade(r);
        if (events.refusal || events.accept) return events;
        return stream::streamsUpgrade(*impl_->hub, r);
      },
      wo);
  if (auto ok = n.asyncQueue->start(); !ok.ok()) return ok.error();
  // Undoes what has started when a later step fails, so a failed start leaves no thread.
  auto abandon = [&n](const Error& e) -> Result<void> {
    if (n.jobStream) n.jobStream->stop();
    if (n.cluster) n.cluster->stop();
    if (n.coap) n.coap->stop(triggers::CoapDrain{});
    n.hub->stop();
    if (n.mqttDevices) n.mqttDevices->stop();
    n.server.reset();  // stops it if it started
    n.router->stop();
    n.scheduler->stop();
    if (n.mqtt) n.mqtt->stop();
    n.asyncQueue->stop();
    return e;
  };
  // Events become jobs from here on; a broker that cannot be reached is retried in the
  // background and never delays serving.
  n.scheduler->start();
  n.router->start();
  if (n.mqtt) {
    if (auto ok = n.mqtt->start(); !ok.ok()) return abandon(ok.error());
  }
  if (auto ok = n.server->start(); !ok.ok()) return abandon(ok.error());
  if (!cfg.cluster.url.empty()) {
    if (auto ok = n.openCluster(); !ok.ok()) return abandon(ok.error());
  }
  if (cfg.coap.enabled) {
    n.coap = std::make_unique<triggers::CoapServer>(
        *n.invoker, n.metrics,
        triggers::CoapOptions{cfg.coap.address, cfg.coap.port, cfg.maxInvokeBodyBytes, cfg.invokeAuth,
                              n.auth.get()});
    if (auto ok = n.coap->start(); !ok.ok()) {
      n.coap.reset();
      return abandon(ok.error());
    }
    bool v6 = cfg.coap.address.find(':') != std::string::npos;
    spdlog::info("serving CoAP on coap://{}{}{}:{}", v6 ? "[" : "", cfg.coap.address,
                 v6 ? "]" : "", n.coap->port());
  }
  // Runs a previous process left unfinished go on, now that tasks can reach the cluster.
  if (size_t resumed = n.workflows->resumeUnfinished(); resumed > 0) {
    spdlog::info("resumed {} unfinished workflow run(s)", resumed);
  }
  n.running = true;
  spdlog::info("serving on {}://{}:{} with {} worker slot(s); data in {}",
               n.serverTls ? "https" : "http", cfg.listenAddress, n.server->port(), cfg.workers,
               cfg.dataDir.string());
  return {};
}

void Node::stop() {
  Impl& n = *impl_;
  if (!n.running) return;
  n.running = false;
  // First every way in closes, without waiting for anything: no new HTTP connection is
  // accepted and idle ones close, CoAP answers new requests with 5.03, no time trigger
  // fires and MQTT messages stay unacknowledged for the next start.
  // Device connections end with a terminate frame ("shutdown"), before the server closes
  // their sockets; devices resume elsewhere.
  n.hub->stop();
  n.server->stopAccepting();
  if (n.mqttDevices) n.mqttDevices->stop();
  if (n.coap) n.coap->refuseNewRequests();
  n.intakeClosed = true;
  n.scheduler->stop();
  spdlog::info("draining: no new requests; waiting for invocations in flight");
  // Then the drain: the invocations in flight share one deadline. CoAP waits for its
  // invocations and their responses, then briefly for acknowledgements of separate
  // responses (--coap-ack-wait-ms).
  auto deadline = std::chrono::steady_clock::now() + n.config.drainTimeout;
  auto remaining = [deadline] {
    return std::max(std::chrono::milliseconds(0),
                    std::chrono::duration_cast<std::chrono::milliseconds>(
                        deadline - std::chrono::steady_clock::now()));
  };
  if (n.coap) n.coap->stop(triggers::CoapDrain{remaining(), n.config.coap.ackWait});
  // Requests in flight (running or queued) finish; keep-alive connections close after them.
  n.server->stop(remaining());
  // Workflow runs in progress finish within the drain; those still going stay unfinished on
  // disk and resume at the next start.
  n.workflows->stop(remaining());
  // Cluster async jobs running here finish and are recorded and acked; the queue hands
  // nothing more to the cluster.
  if (n.jobStream) n.jobStream->stop();
  // Peers' calls running here finish and are answered; calls forwarded from here end.
  if (n.cluster) n.cluster->stop();
  // Async attempts in flight finish (they need the executor and workers); queued jobs wait
  // in queue.db for the next start.
  n.asyncQueue->stop();
  // Routed calls still in flight finish (their remote attempts and probes).
  n.router->stop();
  if (n.mqtt) n.mqtt->stop();
  bool drained = n.executor->stop(std::chrono::milliseconds(100));
  n.managementQueue->stop();
  // An optimized compile in progress finishes (its object is cached for the next start).
  n.tierUp->stop();
  n.workers->stop();
  spdlog::info(drained ? "stopped" : "stopped (drain timed out)");
}

uint16_t Node::port() const { return impl_->server ? impl_->server->port() : 0; }

uint16_t Node::coapPort() const { return impl_->coap ? impl_->coap->port() : 0; }

const std::string& Node::adminToken() const { return impl_->token; }

}  // namespace tern::node
