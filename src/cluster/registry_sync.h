#pragma once
// The replicated function registry (docs/design/cluster.md): watches the `tern_functions`
// bucket and applies its entries here (Deployments::adopt / withdraw, modules fetched in
// chunks from `tern_modules`), and publishes this node's changes from the registry's
// durable outbox (Registry::unpublished) and the functions the cluster has never had.
// Internal to src/cluster (see cluster_context.h).
//
// One thread does all of it; JetStream calls (bind, watch, get, put) are made with no lock
// held, so a slow JetStream delays only this thread.

#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <thread>

#include "cluster/cluster_context.h"
#include "util/thread_annotations.h"
#include "store/registry.h"

namespace tern::cluster {

class RegistrySync {
 public:
  explicit RegistrySync(ClusterContext& c);
  ~RegistrySync();
  RegistrySync(const RegistrySync&) = delete;
  RegistrySync& operator=(const RegistrySync&) = delete;

  // Turns on the registry's change journal and starts the registry thread.
  void start();
  // Stops the thread (the context's `stopping` is set).
  void stop();
  // Frees the bucket handles; the connection is still open.
  void release();

  // Applies one registry entry as read from the bucket. False when it was refused.
  bool applyRecord(std::string_view key, std::string_view value);

 private:
  bool bindBuckets();
  void loop();
  Result<void> fetchModule(const store::FunctionVersion& v);
  Result<void> uploadModule(const store::FunctionVersion& v);
  Result<void> publishFunction(const std::string& name);
  void flushOutbox();
  void reconcileLocalOnly(const std::set<std::string>& inCluster);

  ClusterContext& c_;
  Counter* recordsApplied_ = nullptr;

  // Functions here that the cluster registry has never had (found at each catch-up),
  // still to be written to it. Changes made through this node's API wait in the
  // registry's durable outbox instead (Registry::unpublished).
  Mutex outboxMu_;
  std::set<std::string> localOnly_ TERN_GUARDED_BY(outboxMu_);

  // Registry thread only (set once bound); freed by release().
  kvStore* functionsKv_ = nullptr;
  kvStore* modulesKv_ = nullptr;
  bool bindWarned_ = false;
  std::thread thread_;
};

}  // namespace tern::cluster
