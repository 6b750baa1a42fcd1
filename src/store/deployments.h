#pragma once
// Deploying, rolling back and removing functions: the registry (durable truth) kept in step
// with the function table (what the node serves). A deploy stores the module, compiles it,
// and only then records the new version and makes it active, so a deploy that answers
// success is invocable and durable; a compile error, an invalid capability or a module that
// could never start under the function's limits (its initial memory above memory_mb, a
// table above the table limit) records nothing. Operations on one name are serialised;
// different names proceed in parallel.
//
// Disk: a removal deletes the rows first, then collects garbage (module files and compiled
// objects that no version refers to any more), then the function's key-value state, then
// cuts the databases' write-ahead logs back. A crash between these steps leaves only
// unreferenced files, which collectGarbage (run at start) removes; a version never names a
// missing module. On a full disk a removal releases the node's DiskReserve to get its
// database change written.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "exec/function_table.h"
#include "store/disk_reserve.h"
#include "store/kv_store.h"
#include "store/registry.h"
#include "store/tiers.h"
#include "util/error.h"
#include "wasm/engine.h"
#include "util/thread_annotations.h"

namespace tern::store {

// What happens to a function's key-value state when this node stops serving it.
enum class StateOnWithdraw { kKeep, kDelete };

// What a garbage collection removed.
struct GarbageReport {
  size_t modules = 0;    // module files (<data>/modules/<sha256>.wasm)
  size_t objects = 0;    // compiled objects (<cache>/objects/<key>.so)
  uint64_t bytesFreed = 0;
  std::vector<std::string> failures;  // what could not be collected (tried again next time)
};

class Deployments {
 public:
  // `kv`, when given, loses a function's key-value state when the function is removed.
  Deployments(Registry& registry, wasm::Engine& engine, exec::FunctionTable& table,
              KvStore* kv = nullptr);

  Result<FunctionVersion> deploy(const std::string& name, std::span<const uint8_t> module,
                                 const FunctionSettings& settings);
  Result<FunctionVersion> rollback(const std::string& name);
  Result<void> remove(const std::string& name);

  // Called after every successful deploy, rollback and remove made through the calls above
  // (with the new active version, or null for a removal), on the calling thread while the
  // function's lock is held, so calls for one function arrive in order. adopt() and
  // withdraw() do not call it: they apply changes that were made elsewhere (the cluster).
  // Set before the node serves.
  using Listener = std::function<void(const std::string& name, const FunctionVersion* active)>;
  void setListener(Listener listener) { listener_ = std::move(listener); }

  // Makes `v` the active version as numbered elsewhere (Registry::adoptVersion), compiling
  // it first: a module that does not load records nothing. Its module must be stored.
  Result<void> adopt(const FunctionVersion& v);
  // Stops serving `name` and forgets it here; false if it was not here.
  Result<bool> withdraw(const std::string& name, StateOnWithdraw state);

  // Deletes module files no version refers to and compiled objects of no such module (or of
  // another toolchain), keeping those of deploys in progress (Registry::holdModule) and
  // of keys being compiled. Runs after every removal; the node also runs it at start for
  // what a crash left behind.
  GarbageReport collectGarbage();

  // The space released on a full disk so removals can proceed; null: none. Set before the
  // node serves.
  void setDiskReserve(DiskReserve* reserve) { reserve_ = reserve; }

  // The service that builds optimized objects in the background; null (the default): a
  // function of compile tier auto is compiled optimized before it is served, as if it
  // asked for optimized. Set before the node serves (docs/design/tiers.md). An optimized
  // object the service builds for a function that moved on meanwhile is collected by this
  // store's garbage collection as soon as it is built, on the service's thread: the service
  // stops before this store is destroyed.
  void setTierUp(TierUp* tierUp);

  // The active version's compiled object for a device of `target` (x86_64, aarch64),
  // built by that target's C compiler on first request and cached like the node's own.
  // Errors: kNotFound, kInvalidArgument (unknown target), kUnavailable (no compiler for
  // the target here), and the compiler's.
  struct DeviceObject {
    std::string moduleHash;
    uint32_t version = 0;
    std::string bytes;  // the shared object
  };
  Result<DeviceObject> objectFor(const std::string& name, const std::string& target);

  // Loads every function's active version from the registry into the table (compiled
  // objects come from the on-disk cache). Functions that fail to load are reported and
  // skipped, so one bad entry does not stop the node.
  struct LoadReport {
    size_t loaded = 0;
    std::vector<std::string> failures;  // "name: error"
  };
  LoadReport loadAll();

 private:
  Result<void> activate(const FunctionVersion& v);
  // A module loaded for a version: the object to serve first, why it is at that tier
  // (ActiveVersion::tierNote), and whether the optimized object is still to be built.
  struct Loaded {
    std::shared_ptr<const wasm::CompiledModule> module;
    std::string tierNote;
    bool optimizeLater = false;
  };
  // Compiles (or finds compiled) a module for a version with this configuration at the
  // tier planTiers picks for `tier`, refusing one that could not start under the version's
  // sandbox limits. A baseline compile that fails for a reason other than the module
  // (the baseline compiler's own limits) falls back to the optimized tier.
  Result<Loaded> load(std::span<const uint8_t> module, const exec::FunctionVersionConfig& config,
                      CompileTier tier);
  // Installs a loaded version into the table, then queues its optimized compile if due.
  void install(const FunctionVersion& v, std::span<const uint8_t> module, Loaded loaded,
               exec::Capabilities capabilities);
  Mutex& lockFor(const std::string& name) TERN_EXCLUDES(locksMu_);
  // What follows a removal: garbage collection, the function's key-value state (with
  // StateOnWithdraw::kDelete), shorter write-ahead logs, the reserve taken again.
  Result<void> reclaim(const std::string& name, StateOnWithdraw state);
  // Runs `write`; if it failed because the disk is full and the reserve was held, releases
  // the reserve and runs it once more.
  template <typename Write>
  auto withReserve(const Write& write) -> decltype(write());

  Registry& registry_;
  wasm::Engine& engine_;
  exec::FunctionTable& table_;
  KvStore* kv_;
  DiskReserve* reserve_ = nullptr;
  TierUp* tierUp_ = nullptr;
  Listener listener_;
  Mutex locksMu_;
  std::map<std::string, std::unique_ptr<Mutex>> locks_ TERN_GUARDED_BY(locksMu_);
};

exec::FunctionVersionConfig toConfig(const FunctionVersion& v);

// Checks a deploy's objective and weight (exec/capacity_model.h): an objective must be a
// positive number of milliseconds, a percentile strictly between 0 and 100 and only with
// an objective, a weight positive. Errors: kInvalidArgument.
Result<void> checkObjectiveSettings(const FunctionSettings& settings);

// Checks a deploy's placement: sites are 1-63 characters a-z, 0-9 and '-', the tier is edge
// or cloud, labels are KEY=VALUE. Errors: kInvalidArgument.
Result<void> checkPlacement(const FunctionSettings::Placement& placement);

}  // namespace tern::store
