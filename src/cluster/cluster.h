#pragma once
// A node's membership in a tern cluster on NATS (docs/design/cluster.md): heartbeats with
// its load, the replicated function registry, forwarded calls (routing and spill), and
// the view of the other nodes behind `tern nodes`. Without a reachable NATS server the
// node keeps serving what it has; the cluster side reconnects in the background and
// reconciles the registry when it returns.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "cluster/nats_security.h"
#include "cluster/envelope.h"
#include "cluster/membership.h"
#include "exec/executor.h"
#include "exec/function_table.h"
#include "exec/invoker.h"
#include "http/tls.h"
#include "store/deployments.h"
#include "store/registry.h"
#include "util/error.h"
#include "util/metrics.h"

namespace tern::cluster {

struct ClusterOptions {
  std::string url;  // nats://HOST:PORT, or several separated by commas
  NatsSecurity nats;  // TLS and credentials of the NATS connection (nats_options.h)
  // The JetStream domain of the buckets (the hub's `jetstream { domain }`), so that nodes
  // attached to a leaf node reach the hub's JetStream; empty: the server's own.
  std::string jetStreamDomain;
  std::string nodeId;
  NodeIdentity identity;
  std::string httpAddress;  // HOST:PORT announced to peers
  // HOST:PORT (an IP literal; port 0: any free one) on which peers of the same site open
  // direct links for forwarded calls (peer_link.h); empty: none, calls go through NATS.
  std::string directListen;
  // The host peers are told to reach the direct links at; empty: directListen's host.
  std::string directAdvertiseHost;
  // Mutual TLS on the direct links, both directions (docs/design/tls.md); null: plain.
  std::shared_ptr<const http::LinkTls> directTls;
  std::chrono::milliseconds heartbeat{1000};
  std::chrono::milliseconds ttl{5000};            // a silent node drops out after this
  uint32_t hopLimit = 2;                          // forwards per call
  std::chrono::milliseconds forwardTimeout{60000};
  std::chrono::milliseconds maxClockSkew{60000};  // live messages older or newer are refused
  size_t maxMessageBytes = 8u << 20;              // peer messages larger are refused
  size_t maxModuleBytes = 64u << 20;
};

struct ClusterDeps {
  exec::Invoker& invoker;
  exec::Executor& executor;
  exec::FunctionTable& table;
  store::Registry& registry;
  store::Deployments& deployments;
  MetricsRegistry& metrics;
  // Unix time in milliseconds: heartbeat expiry and message age are judged on it.
  std::function<int64_t()> clock;
  // Runs a fused unit a peer sent (its JSON text, workflow/fusion.h) and answers with an
  // output whose stdout is the unit's result; unset: such calls answer kUnavailable.
  std::function<void(std::string segment, std::function<void(exec::InvokeOutput)> done)> segments;
};

class Cluster {
 public:
  Cluster(ClusterOptions options, ClusterKey key, ClusterDeps deps);
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  // Starts connecting (in the background when the server is not reachable), subscribes,
  // and starts the heartbeat and registry threads. Errors: kInvalidArgument (bad URL or
  // options), kInternal (the NATS library failed).
  Result<void> start();
  // Stops heartbeats and registry work, answers forwarded calls in flight with
  // kUnavailable, and closes the connection.
  void stop();

  // The invoker's remote path (exec::Invoker::setRemote).
  bool offer(exec::InvokeInput& input, std::function<void(exec::InvokeOutput)>& done,
             exec::Elsewhere why);

  // A call on one named node (a workflow task placed there), over the same forwarding as
  // offer(); when that node cannot take it, the next best one does. `done` is called
  // exactly once, with kUnavailable when no node can run it.
  void invokeOn(const std::string& node, exec::InvokeInput input,
                std::function<void(exec::InvokeOutput)> done);
  // A fused unit (its JSON text; `first` its first function) on the named node only: no
  // other node takes it when that one cannot. The answer's stdout is the unit's result.
  void segmentOn(const std::string& node, const std::string& first, std::string segment,
                 std::function<void(exec::InvokeOutput)> done);
  // Every node this one knows of, itself included.
  std::vector<Member> members() const;

  // JSON for GET /v1/cluster/nodes: this node, its connection, and every known node.
  std::string nodesJson() const;
  const std::string& nodeId() const;

  // Applies one registry entry as read from the bucket (exposed for tests of bad input).
  // Returns false when it was refused.
  bool applyRecord(std::string_view key, std::string_view value);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace tern::cluster
