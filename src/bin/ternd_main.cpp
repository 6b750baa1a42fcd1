// ternd: a standalone tern node. main() parses options and wires the Node; SIGTERM or
// SIGINT drains it and exits 0.

#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <iostream>

#ifdef TERN_WITH_MIMALLOC
#include <mimalloc.h>
#endif

#include "node/node.h"
#include "util/error.h"

namespace {

// The allocator that serves this process's malloc, as it is at run time: mimalloc only when
// a block from malloc lies in mimalloc's heap (linked, and ahead of the C library).
std::string allocatorName() {
#ifdef TERN_WITH_MIMALLOC
  void* block = std::malloc(64);
  bool ours = mi_is_in_heap_region(block);
  std::free(block);
  int v = mi_version();  // e.g. 209 for 2.0.9
  if (!ours) return "a preloaded malloc, not the mimalloc it links";
  return "mimalloc " + std::to_string(v / 100) + "." + std::to_string(v % 100 / 10) + "." +
         std::to_string(v % 10);
#else
  return "the C library's malloc";
#endif
}

bool parseListen(const std::string& s, tern::node::NodeConfig& cfg) {
  size_t colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  unsigned port = 0;
  auto [p, ec] = std::from_chars(s.data() + colon + 1, s.data() + s.size(), port);
  if (ec != std::errc() || p != s.data() + s.size() || port > 65535) return false;
  cfg.listenAddress = s.substr(0, colon);
  if (cfg.listenAddress.size() > 2 && cfg.listenAddress.front() == '[') {
    cfg.listenAddress = cfg.listenAddress.substr(1, cfg.listenAddress.size() - 2);
  }
  cfg.port = static_cast<uint16_t>(port);
  return true;
}

// --coap-listen: "off", or ADDRESS:PORT; empty means the address of --listen, port 5683.
bool parseCoapListen(const std::string& s, tern::node::NodeConfig& cfg) {
  if (s == "off") {
    cfg.coap.enabled = false;
    return true;
  }
  if (s.empty()) {
    cfg.coap.address = cfg.listenAddress;
    return true;
  }
  tern::node::NodeConfig parsed;
  if (!parseListen(s, parsed)) return false;
  cfg.coap.address = parsed.listenAddress;
  cfg.coap.port = parsed.port;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ternd: a tern node serving WebAssembly functions over HTTP"};
  app.set_version_flag("--version", std::string("ternd ") + TERN_VERSION + " (allocator: " +
                                          allocatorName() + ")");
  tern::node::NodeConfig cfg;
  std::string listen = "127.0.0.1:8080";
  std::string dataDir;
  unsigned queue = cfg.queueLimit;
  app.set_config("--config", "", "read options from a TOML/INI file (keys are option names)");
  app.add_option("--listen", listen, "address:port to serve HTTP on")->capture_default_str();
  std::string coapListen;
  app.add_option("--coap-listen", coapListen,
                 "address:port to serve CoAP (UDP) on, or off (default: the --listen address, "
                 "port 5683)");
  app.add_option("--data", dataDir, "data directory (default $TERN_DATA or ~/.local/share/tern)");
  std::string invokeAuth = "open";
  app.add_option("--invoke-auth", invokeAuth,
                 "open: anyone who reaches the node may invoke; required: /fn, /wf and CoAP "
                 "invocations need a token with invoke:NAME, invoke:* or admin")
      ->check(CLI::IsMember({"open", "required"}))
      ->capture_default_str();
  uint64_t diskReserveMb = cfg.diskReserveBytes >> 20;
  app.add_option("--disk-reserve-mb", diskReserveMb,
                 "space kept in <data>/reserve and released when a removal finds the disk full "
                 "(0: none)")
      ->check(CLI::Range(uint64_t{0}, uint64_t{1} << 20))
      ->capture_default_str();
  app.add_option("--workers", cfg.workers, "worker slots (default: one per core)")
      ->check(CLI::Range(1u, 1024u));
  app.add_option("--queue", queue, "requests that may wait for a slot before 429")
      ->check(CLI::Range(0u, 1000000u))
      ->capture_default_str();
  std::string scheduler = "deadline";
  app.add_option("--scheduler", scheduler,
                 "how waiting requests get worker slots: deadline (objectives, fair shares, "
                 "early refusal) or fifo")
      ->check(CLI::IsMember({"deadline", "fifo"}))
      ->capture_default_str();
  unsigned controlPeriodMs = static_cast<unsigned>(cfg.controlPeriod.count());
  app.add_option("--control-period-ms", controlPeriodMs,
                 "how often the scheduler re-plans slot allocations")
      ->check(CLI::Range(1u, 1000u))
      ->capture_default_str();
  unsigned readTimeoutMs = static_cast<unsigned>(cfg.readTimeout.count());
  unsigned drainTimeoutMs = static_cast<unsigned>(cfg.drainTimeout.count());
  app.add_option("--read-timeout-ms", readTimeoutMs,
                 "time a client has to send a whole request once it starts")
      ->check(CLI::Range(10u, 600000u))
      ->capture_default_str();
  unsigned idleTimeoutMs = static_cast<unsigned>(cfg.idleTimeout.count());
  unsigned writeTimeoutMs = static_cast<unsigned>(cfg.writeTimeout.count());
  size_t unsentMiB = cfg.maxUnsentResponseBytes >> 20;
  size_t unsentPerClientMiB = cfg.maxUnsentResponseBytesPerClient >> 20;
  app.add_option("--idle-timeout-ms", idleTimeoutMs,
                 "time a keep-alive connection may wait for its next request")
      ->check(CLI::Range(10u, 3600000u))
      ->capture_default_str();
  app.add_option("--write-timeout-ms", writeTimeoutMs,
                 "a response fails when the client acknowledges none of it for this long")
      ->check(CLI::Range(10u, 3600000u))
      ->capture_default_str();
  app.add_option("--max-connections", cfg.maxConnections,
                 "open HTTP connections in total; at the limit the longest-idle keep-alive "
                 "connection makes room for a new one")
      ->check(CLI::Range(size_t{1}, size_t{1000000}))
      ->capture_default_str();
  app.add_option("--max-connections-per-client", cfg.maxConnectionsPerClient,
                 "open HTTP connections per client (IPv4 address or IPv6 /64)")
      ->check(CLI::Range(size_t{1}, size_t{1000000}))
      ->capture_default_str();
  app.add_option("--max-unsent-response-mib", unsentMiB,
                 "MiB of responses clients have not taken yet before no new request is read")
      ->check(CLI::Range(size_t{1}, size_t{1} << 20))
      ->capture_default_str();
  app.add_option("--max-unsent-response-mib-per-client", unsentPerClientMiB,
                 "the same budget for one client's connections")
      ->check(CLI::Range(size_t{1}, size_t{1} << 20))
      ->capture_default_str();
  app.add_option("--drain-timeout-ms", drainTimeoutMs,
                 "on SIGTERM, how long to wait for invocations in flight")
      ->check(CLI::Range(0u, 3600000u))
      ->capture_default_str();
  unsigned coapAckWaitMs = static_cast<unsigned>(cfg.coap.ackWait.count());
  app.add_option("--coap-ack-wait-ms", coapAckWaitMs,
                 "on SIGTERM, once CoAP invocations are done, how long to wait for clients to "
                 "acknowledge separate responses (0: do not wait)")
      ->check(CLI::Range(0u, 600000u))
      ->capture_default_str();
  auto& sc = cfg.streams;
  unsigned topicRetentionS = static_cast<unsigned>(sc.retentionAge.count());
  unsigned streamStallMs = static_cast<unsigned>(sc.stallTimeout.count());
  app.add_option("--topic-retention-messages", sc.retentionMessages,
                 "updates each topic keeps for resuming streams")
      ->check(CLI::Range(uint64_t{1}, uint64_t{100000000}))
      ->capture_default_str();
  app.add_option("--topic-retention-s", topicRetentionS, "the age past which updates are dropped")
      ->check(CLI::Range(1u, 365u * 24 * 3600))
      ->capture_default_str();
  app.add_option("--topic-max-payload", sc.maxPayloadBytes, "bytes of one published update")
      ->check(CLI::Range(size_t{1}, size_t{1} << 20))
      ->capture_default_str();
  app.add_option("--max-streams-per-connection", sc.maxStreamsPerConnection,
                 "streams one device connection may carry")
      ->check(CLI::Range(size_t{1}, size_t{100000}))
      ->capture_default_str();
  app.add_option("--max-device-connections", sc.maxConnections,
                 "device WebSocket connections at /v1/streams (apart from --max-connections)")
      ->check(CLI::Range(size_t{1}, size_t{10000000}))
      ->capture_default_str();
  app.add_option("--max-streams", sc.maxStreams, "device streams on this node")
      ->check(CLI::Range(size_t{1}, size_t{10000000}))
      ->capture_default_str();
  app.add_option("--stream-stall-timeout-ms", streamStallMs,
                 "a device connection that takes none of its frames for this long is closed")
      ->check(CLI::Range(10u, 3600000u))
      ->capture_default_str();
  unsigned providerProbeMs = static_cast<unsigned>(cfg.providers.probePeriod.count());
  unsigned providerCallTimeoutMs = static_cast<unsigned>(cfg.providers.callTimeout.count());
  app.add_option("--provider-probe-ms", providerProbeMs,
                 "a provider idle this long for a routed function is probed")
      ->check(CLI::Range(10u, 3600000u))
      ->capture_default_str();
  app.add_option("--provider-call-timeout-ms", providerCallTimeoutMs,
                 "a routed call's budget over all the providers it tries")
      ->check(CLI::Range(10u, 3600000u))
      ->capture_default_str();
  unsigned providerAttemptTimeoutMs = static_cast<unsigned>(cfg.providers.attemptTimeout.count());
  app.add_option("--provider-attempt-timeout-ms", providerAttemptTimeoutMs,
                 "one provider's share of a routed call; a provider that hangs leaves the rest to "
                 "the next")
      ->check(CLI::Range(10u, 3600000u))
      ->capture_default_str();
  app.add_option("--stream-bridge", sc.mqttBridges,
                 "FILTER=TOPIC: MQTT messages on the topic filter become updates of the stream "
                 "topic (repeatable; needs --mqtt-broker)")
      ->take_all();
  app.add_flag("--stream-mqtt-devices", sc.mqttDevices,
               "serve device connections over MQTT on tern/streams/DEVICE/up and /down (needs "
               "--mqtt-broker)");
  unsigned streamMqttIdleS = static_cast<unsigned>(sc.mqttIdleTimeout.count());
  app.add_option("--stream-mqtt-idle-s", streamMqttIdleS,
                 "a device connection over MQTT that sends no frame for this long is closed")
      ->check(CLI::Range(1u, 7u * 86400))
      ->capture_default_str();
  app.add_option("--stream-mqtt-max-devices", sc.mqttMaxDevices,
                 "device connections over MQTT at once; more are refused (too_many_streams)")
      ->check(CLI::Range(size_t{1}, size_t{1000000}))
      ->capture_default_str();
  std::string mqttPasswordFile;
  std::string missedRuns = "skip";
  app.add_option("--mqtt-broker", cfg.mqtt.broker,
                 "MQTT broker HOST[:PORT] for MQTT triggers and publish (default: none)");
  app.add_option("--mqtt-client-id", cfg.mqtt.clientId,
                 "MQTT client id naming the node's persistent session (default: tern-NODEID)");
  app.add_option("--mqtt-username", cfg.mqtt.username, "MQTT user name");
  app.add_option("--mqtt-password-file", mqttPasswordFile,
                 "file holding the MQTT password (or set TERN_MQTT_PASSWORD)");
  app.add_option("--mqtt-ca-file", cfg.mqtt.caFile, "connect with TLS, trusting this CA bundle");
  app.add_option("--mqtt-cert-file", cfg.mqtt.certFile, "TLS client certificate (PEM)");
  app.add_option("--mqtt-key-file", cfg.mqtt.keyFile, "TLS client key (PEM)");
  app.add_option("--missed-runs", missedRuns,
                 "time triggers after downtime: skip the missed runs, or run-once for the latest")
      ->check(CLI::IsMember({"skip", "run-once"}))
      ->capture_default_str();
  unsigned asyncBackoffMs = static_cast<unsigned>(cfg.async.backoff.count());
  unsigned asyncRetentionS = static_cast<unsigned>(cfg.async.retention.count() / 1000);
  app.add_option("--async-attempts", cfg.async.attempts,
                 "attempts per async invocation, the first included")
      ->check(CLI::Range(1u, 100u))
      ->capture_default_str();
  app.add_option("--async-backoff-ms", asyncBackoffMs,
                 "delay before the first retry of an async invocation; doubles, capped at 5 min")
      ->check(CLI::Range(1u, 300000u))
      ->capture_default_str();
  app.add_option("--async-retention-s", asyncRetentionS,
                 "how long finished async invocations stay readable")
      ->check(CLI::Range(1u, 365u * 86400u))
      ->capture_default_str();
  app.add_option("--async-max-pending", cfg.async.maxPending,
                 "unfinished async invocations before new ones are refused (429)")
      ->check(CLI::Range(uint64_t{1}, uint64_t{100000000}))
      ->capture_default_str();
  app.add_option("--async-concurrency", cfg.async.concurrency,
                 "async invocations running at once (default: the worker slots)")
      ->check(CLI::Range(1u, 1024u));
  // What a deployed module may declare, and the sandbox its compile runs in.
  auto& ml = cfg.moduleLimits;
  auto& cl = cfg.compileLimits;
  app.add_option("--max-module-functions", ml.functions,
                 "functions a module may declare, imported ones included (more: 422)")
      ->check(CLI::Range(1u, 4294967295u))
      ->capture_default_str();
  app.add_option("--max-function-locals", ml.localsPerFunction,
                 "locals one function of a module may declare (more: 422)")
      ->check(CLI::Range(1u, 4294967295u))
      ->capture_default_str();
  app.add_option("--max-block-nesting", ml.blockNesting,
                 "how deeply a module's blocks may nest (deeper: 422)")
      ->check(CLI::Range(1u, 4294967295u))
      ->capture_default_str();
  uint64_t compileMemoryMb = cl.memoryBytes >> 20;
  unsigned compileTimeoutS = static_cast<unsigned>(cl.timeout.count());
  app.add_option("--compile-memory-mb", compileMemoryMb,
                 "address space of each compiler process (wasm2c, cc, cc1, ...)")
      ->check(CLI::Range(uint64_t{64}, uint64_t{1} << 20))
      ->capture_default_str();
  app.add_option("--compile-cpu-s", cl.cpuSeconds, "CPU time of each compiler process")
      ->check(CLI::Range(1u, 86400u))
      ->capture_default_str();
  app.add_option("--compile-timeout-s", compileTimeoutS,
                 "wall-clock time of each compiler run (wasm2c, then cc)")
      ->check(CLI::Range(1u, 86400u))
      ->capture_default_str();
  app.add_option("--cc", cfg.cc,
                 "the C compiler that builds this node's objects from wasm2c's output")
      ->capture_default_str();
  app.add_option("--baseline-cc", cfg.baselineCc,
                 "the baseline tier's compiler (TinyCC): functions are served from its object "
                 "at once and the optimized object is swapped in when built; \"\" turns the "
                 "baseline tier off")
      ->capture_default_str();
  app.add_option("--compile-concurrency", cl.concurrency,
                 "compiles at once; more wait in arrival order")
      ->check(CLI::Range(1u, 256u))
      ->capture_default_str();
  auto& cc = cfg.cluster;
  std::string labels;
  unsigned heartbeatMs = static_cast<unsigned>(cc.heartbeat.count());
  unsigned ttlMs = static_cast<unsigned>(cc.ttl.count());
  unsigned forwardTimeoutMs = static_cast<unsigned>(cc.forwardTimeout.count());
  unsigned asyncAckMarginMs = static_cast<unsigned>(cc.asyncAckMargin.count());
  unsigned tokenMaxStalenessMs = static_cast<unsigned>(cc.tokenMaxStaleness.count());
  app.add_option("--tls-cert", cfg.tls.certFile,
                 "serve HTTPS (API, /fn, /v1/streams) with this certificate chain (PEM); "
                 "needs --tls-key");
  app.add_option("--tls-key", cfg.tls.keyFile, "the private key (PEM) of --tls-cert");
  app.add_option("--peer-ca", cfg.tls.peerCaFile,
                 "the site's CA (PEM): direct links to and from peers use mutual TLS with "
                 "--tls-cert, and a peer's certificate must be signed by this CA (a node with "
                 "--tls-cert and without --peer-ca takes no direct links)");
  app.add_option("--nats-ca", cc.natsCaFile,
                 "connect to NATS over TLS, verifying the server against this CA (PEM)");
  app.add_option("--nats-cert", cc.natsCertFile,
                 "TLS client certificate (PEM) for NATS; needs --nats-key");
  app.add_option("--nats-key", cc.natsKeyFile, "the private key (PEM) of --nats-cert");
  app.add_option("--nats-creds", cc.natsCredsFile,
                 "NATS credentials file (user JWT and NKey seed) to authenticate with");
  app.add_option("--cluster", cc.url,
                 "join a cluster through the NATS server at nats://HOST:PORT (default: standalone)");
  app.add_option("--cluster-secret-file", cc.secretFile,
                 "file with the cluster's shared secret (signs peer messages; required with "
                 "--cluster)");
  app.add_option("--cluster-js-domain", cc.jetStreamDomain,
                 "JetStream domain of the cluster's hub (nodes attached to a leaf node)");
  app.add_option("--node-name", cc.nodeName, "this node's name in the cluster (default: its id)");
  app.add_option("--site", cc.site, "the site this node belongs to")->capture_default_str();
  app.add_option("--tier", cc.tier, "edge or cloud")
      ->check(CLI::IsMember({"edge", "cloud"}))
      ->capture_default_str();
  app.add_option("--labels", labels, "labels of this node for placement, k=v,k=v");
  app.add_option("--advertise", cc.advertise,
                 "HOST:PORT of this node's HTTP API as peers see it (default: --listen)");
  app.add_option("--direct-listen", cc.directListen,
                 "HOST:PORT for direct links from peers of the same site (forwarded calls "
                 "without nats-server in between), or off (default: the --listen host, any "
                 "free port)");
  app.add_option("--heartbeat-ms", heartbeatMs, "interval of membership heartbeats")
      ->check(CLI::Range(10u, 60000u))
      ->capture_default_str();
  app.add_option("--member-ttl-ms", ttlMs, "a node silent this long leaves the cluster view")
      ->check(CLI::Range(50u, 600000u))
      ->capture_default_str();
  app.add_option("--hop-limit", cc.hopLimit, "how many times one call may be forwarded")
      ->check(CLI::Range(1u, 8u))
      ->capture_default_str();
  app.add_option("--forward-timeout-ms", forwardTimeoutMs,
                 "how long a forwarded call may take before it fails")
      ->check(CLI::Range(100u, 3600000u))
      ->capture_default_str();
  app.add_option("--cluster-async-ack-margin-ms", asyncAckMarginMs,
                 "a cluster async job runs again elsewhere when its node has not finished it "
                 "within the function's timeout plus this margin")
      ->check(CLI::Range(100u, 3600000u))
      ->capture_default_str();
  app.add_option("--token-max-staleness-ms", tokenMaxStalenessMs,
                 "in a cluster, token checks answer from this node's copy of the tokens for at "
                 "most this long after it was last known current (the longest a revocation "
                 "made elsewhere may go unseen here), then 503 until it is current again")
      ->check(CLI::Range(2000u, 86400000u))
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : tern::errorKind(tern::ErrorCode::kInvalidArgument).exitStatus;
  }
  if (!parseListen(listen, cfg)) {
    std::cerr << "ternd: invalid argument: --listen expects ADDRESS:PORT, got \"" << listen
              << "\"\n";
    return tern::errorKind(tern::ErrorCode::kInvalidArgument).exitStatus;
  }
  if (!parseCoapListen(coapListen, cfg)) {
    std::cerr << "ternd: invalid argument: --coap-listen expects ADDRESS:PORT or off, got \""
              << coapListen << "\"\n";
    return tern::errorKind(tern::ErrorCode::kInvalidArgument).exitStatus;
  }
  cfg.queueLimit = queue;
  cfg.invokeAuth = invokeAuth == "required" ? tern::triggers::InvokeAuth::kRequired : tern::triggers::InvokeAuth::kOpen;
  cl.memoryBytes = compileMemoryMb << 20;
  cl.timeout = std::chrono::seconds(compileTimeoutS);
  cc.heartbeat = std::chrono::milliseconds(heartbeatMs);
  cc.ttl = std::chrono::milliseconds(ttlMs);
  cc.forwardTimeout = std::chrono::milliseconds(forwardTimeoutMs);
  cc.asyncAckMargin = std::chrono::milliseconds(asyncAckMarginMs);
  cc.tokenMaxStaleness = std::chrono::milliseconds(tokenMaxStalenessMs);
  for (size_t start = 0; start < labels.size();) {
    size_t comma = labels.find(',', start);
    if (comma == std::string::npos) comma = labels.size();
    if (comma > start) cc.labels.push_back(labels.substr(start, comma - start));
    start = comma + 1;
  }
  cfg.scheduling =
      scheduler == "fifo" ? tern::exec::SchedulingPolicy::kFifo : tern::exec::SchedulingPolicy::kDeadline;
  cfg.controlPeriod = std::chrono::milliseconds(controlPeriodMs);
  cfg.async.backoff = std::chrono::milliseconds(asyncBackoffMs);
  cfg.async.retention = std::chrono::seconds(asyncRetentionS);
  cfg.readTimeout = std::chrono::milliseconds(readTimeoutMs);
  cfg.drainTimeout = std::chrono::milliseconds(drainTimeoutMs);
  cfg.idleTimeout = std::chrono::milliseconds(idleTimeoutMs);
  cfg.writeTimeout = std::chrono::milliseconds(writeTimeoutMs);
  sc.retentionAge = std::chrono::seconds(topicRetentionS);
  cfg.providers.probePeriod = std::chrono::milliseconds(providerProbeMs);
  cfg.providers.callTimeout = std::chrono::milliseconds(providerCallTimeoutMs);
  cfg.providers.attemptTimeout = std::chrono::milliseconds(providerAttemptTimeoutMs);
  sc.stallTimeout = std::chrono::milliseconds(streamStallMs);
  sc.mqttIdleTimeout = std::chrono::seconds(streamMqttIdleS);
  cfg.maxUnsentResponseBytes = unsentMiB << 20;
  cfg.maxUnsentResponseBytesPerClient = unsentPerClientMiB << 20;
  cfg.coap.ackWait = std::chrono::milliseconds(coapAckWaitMs);
  if (!dataDir.empty()) cfg.dataDir = dataDir;
  cfg.diskReserveBytes = diskReserveMb << 20;
  // Everything the node creates (databases, modules, compiled objects, and the files its
  // compilers write) is for its own user only, whatever umask it was started with; the
  // store and the compile cache also set their modes explicitly (docs/security-model.md).
  ::umask(0077);
  cfg.catchUpMissedRuns = missedRuns == "run-once";
  if (const char* pw = std::getenv("TERN_MQTT_PASSWORD")) cfg.mqtt.password = pw;
  if (!mqttPasswordFile.empty()) {
    std::ifstream in(mqttPasswordFile);
    if (!in || !std::getline(in, cfg.mqtt.password)) {
      std::cerr << "ternd: invalid argument: cannot read --mqtt-password-file \""
                << mqttPasswordFile << "\"\n";
      return tern::errorKind(tern::ErrorCode::kInvalidArgument).exitStatus;
    }
  }

  spdlog::set_default_logger(spdlog::stderr_color_mt("ternd"));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");

  // Termination signals are taken synchronously by this thread; block them before any
  // other thread exists so none of those receives them.
  sigset_t stopSignals;
  sigemptyset(&stopSignals);
  sigaddset(&stopSignals, SIGTERM);
  sigaddset(&stopSignals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stopSignals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  tern::node::Node node(cfg);
  if (auto ok = node.start(); !ok.ok()) {
    spdlog::error("{}", ok.error().describe());
    return tern::errorKind(ok.error().code()).exitStatus;
  }
  int sig = 0;
  sigwait(&stopSignals, &sig);
  spdlog::info("received {}", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  node.stop();
  return 0;
}
