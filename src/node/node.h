#pragma once
// A standalone tern node: the object graph behind `ternd`. It owns the engine (compile
// cache in <data>/cache), the registry (<data>/registry.db, <data>/modules), the function
// table, executor, invoker, metrics, the HTTP server and gateway. start() loads every
// deployed function and begins serving; stop() closes every way in, then drains.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "exec/slo_policy.h"
#include "triggers/token_auth.h"
#include "util/error.h"
#include "wasm/compiler.h"

namespace tern::node {

struct NodeConfig {
  std::string listenAddress = "127.0.0.1";
  uint16_t port = 8080;                      // 0: any free port
  // TLS (docs/design/tls.md): with a certificate chain and its key (PEM) the node serves
  // HTTPS (API, /fn, /v1/streams) and advertises an https:// URL to its peers. Its direct
  // links are then mutual TLS with the same certificate, peers verified against
  // `peerCaFile` (the site's CA); without one they are off and forwarded calls take NATS.
  // Both empty: plain HTTP (and plain direct links).
  struct Tls {
    std::string certFile;
    std::string keyFile;
    std::string peerCaFile;  // needs certFile and keyFile
  } tls;
  // The CoAP trigger's UDP endpoint, coap://ADDRESS:PORT/fn/NAME (docs/coap.md).
  struct Coap {
    bool enabled = true;
    std::string address = "127.0.0.1";
    uint16_t port = 5683;  // 0: any free port
    // At stop, how long to wait for acknowledgements of separate responses once the
    // invocations are done (docs/coap.md, "Shutdown"); 0 skips the wait.
    std::chrono::milliseconds ackWait{2000};
  } coap;
  std::filesystem::path dataDir;            // empty: tern::defaultDataDir()
  // Whether /fn, /wf and CoAP invocations need a token that may invoke the function
  // (ternd --invoke-auth; docs/security-model.md). Tokens live in <data>/tokens.db, or in
  // the cluster's tern_tokens bucket with --cluster.
  triggers::InvokeAuth invokeAuth = triggers::InvokeAuth::kOpen;
  // Space kept in <data>/reserve and released when a removal finds the disk full, so the
  // API can still free space (store/disk_reserve.h); 0: none.
  uint64_t diskReserveBytes = 8u << 20;
  unsigned workers = 0;                      // worker slots; 0 = one per core
  unsigned queueLimit = 256;                 // requests waiting for a slot, node-wide
  // How waiting requests get worker slots (docs/design/scheduler.md): the deadline
  // scheduler (objectives, fair shares, early refusal) or plain FIFO for comparison.
  exec::SchedulingPolicy scheduling = exec::SchedulingPolicy::kDeadline;
  std::chrono::milliseconds controlPeriod{250};  // re-planning interval, 1..1000 ms
  size_t maxInvokeBodyBytes = 6u << 20;
  size_t maxModuleBytes = 64u << 20;
  // What a deployed module may declare, and the sandbox its compile runs in
  // (docs/security-model.md, "Compiling untrusted modules").
  wasm::ModuleLimits moduleLimits;
  wasm::CompileLimits compileLimits;
  // The C compiler that builds this node's own objects (a cross compiler when the node runs
  // under emulation, e.g. aarch64-linux-gnu-gcc for an aarch64 ternd under qemu-user).
  std::string cc = "cc";
  // The baseline tier's compiler (docs/design/tiers.md): new functions are served from its
  // object at once while the optimized one is built in the background. "" or a compiler
  // that is not installed: every function is compiled optimized before it is served.
  std::string baselineCc = "tcc";
  size_t maxHeaderBytes = 16u << 10;
  // HTTP connection limits (http::ServerOptions, docs/security-model.md).
  size_t maxConnections = 10000;
  size_t maxConnectionsPerClient = 128;
  std::chrono::milliseconds readTimeout{10000};
  std::chrono::milliseconds idleTimeout{60000};
  std::chrono::milliseconds writeTimeout{30000};  // without progress
  size_t maxUnsentResponseBytes = size_t{64} << 20;
  size_t maxUnsentResponseBytesPerClient = size_t{16} << 20;
  std::chrono::milliseconds drainTimeout{30000};
  // Durable async invocations, <data>/queue.db (docs/design/async.md).
  struct Async {
    uint32_t attempts = 5;                     // per job, the first included
    std::chrono::milliseconds backoff{1000};   // after the first failure; doubles, capped at 5 min
    std::chrono::milliseconds retention{24 * 3600 * 1000};  // finished jobs are kept this long
    uint64_t maxPending = 100000;              // unfinished jobs; more are refused (429)
    unsigned concurrency = 0;                  // jobs in flight at once; 0 = the worker slots
  } async;

  // The MQTT broker of MQTT triggers, replies, dead letters and the host API's publish;
  // an empty broker means none (MQTT triggers stay idle, publish is unavailable).
  struct Mqtt {
    std::string broker;    // HOST[:PORT]
    std::string clientId;  // empty: "tern-" and the node's id (<data>/node.id)
    std::string username;
    std::string password;
    std::string caFile;    // TLS when set
    std::string certFile;
    std::string keyFile;
  } mqtt;
  // Time triggers: after downtime, run once for the latest missed time (true) or skip the
  // missed runs (false).
  bool catchUpMissedRuns = false;
  // Streams to devices (docs/design/streams.md): what each topic retains, and the limits of
  // device connections at /v1/streams.
  struct Streams {
    uint64_t retentionMessages = 10000;
    std::chrono::seconds retentionAge{24 * 3600};
    size_t maxPayloadBytes = 64u << 10;
    size_t maxStreamsPerConnection = 64;
    size_t maxStreams = 200000;
    size_t maxConnections = 100000;  // device WebSockets, apart from --max-connections
    // A device that takes none of its frames for this long is disconnected.
    std::chrono::milliseconds stallTimeout{30000};
    // Over the MQTT broker (docs/design/streams.md, "MQTT"; both need mqtt.broker): bridge
    // rules FILTER=TOPIC, under which MQTT messages become updates of a topic, and device
    // connections on tern/streams/<device>/up and /down (off unless enabled: every node
    // sharing a broker would answer every device).
    std::vector<std::string> mqttBridges;
    bool mqttDevices = false;
    std::chrono::seconds mqttIdleTimeout{600};  // no frame from a device for this long
    size_t mqttMaxDevices = 10000;
  } streams;
  // Providers and routes (docs/design/providers.md): how often an idle (provider, function)
  // of a route is probed, and a routed call's budget over all its attempts.
  struct Providers {
    std::chrono::milliseconds probePeriod{2000};
    std::chrono::milliseconds callTimeout{60000};
    std::chrono::milliseconds attemptTimeout{10000};  // one provider's share
  } providers;
  // Membership in a cluster over NATS (docs/design/cluster.md); an empty url keeps the
  // node standalone.
  struct Cluster {
    std::string url;         // nats://HOST:PORT
    std::string jetStreamDomain;  // the hub's JetStream domain, for nodes behind leaf nodes
    std::string nodeName;    // empty: the node's id (<data>/node.id)
    std::string site = "default";
    std::string tier = "edge";
    std::vector<std::string> labels;  // KEY=VALUE
    std::string secretFile;  // the shared HMAC key of peer messages (required)
    // The NATS connections' security (cluster/nats_options.h): CA to verify the server
    // with, client certificate and key, credentials file. All empty: plain NATS.
    std::string natsCaFile;
    std::string natsCertFile;
    std::string natsKeyFile;
    std::string natsCredsFile;
    std::string advertise;   // HOST:PORT peers are told; empty: the listen address
    // Direct links from peers of the same site (forwarded calls without nats-server in
    // between): HOST:PORT to accept them on, "off", or empty for the listen address on
    // any free port. Peers are told advertise's host (or this host) and the bound port.
    std::string directListen;
    std::chrono::milliseconds heartbeat{1000};
    std::chrono::milliseconds ttl{5000};
    uint32_t hopLimit = 2;
    std::chrono::milliseconds forwardTimeout{60000};
    // Async jobs in the cluster's work queue are delivered again when the node running
    // one has not acked it within the function's timeout plus this margin.
    std::chrono::milliseconds asyncAckMargin{10000};
    // Token checks answer from the node's copy of the cluster's tokens for at most this
    // long after it was last known current (docs/design/tokens.md); then 503 until it is.
    std::chrono::milliseconds tokenMaxStaleness{30000};
  } cluster;
};

class Node {
 public:
  explicit Node(NodeConfig config);
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  Result<void> start();
  // Closes every way in first (HTTP connections and requests, CoAP requests, time
  // triggers, MQTT messages), then finishes invocations in flight (up to the drain
  // timeout) and stops.
  void stop();

  uint16_t port() const;
  uint16_t coapPort() const;  // 0 when CoAP is off
  const std::string& adminToken() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace tern::node
