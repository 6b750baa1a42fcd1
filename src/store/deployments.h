#pragma once
// Deploying, rolling back and removing functions: the registry (durable truth) kept in step
// with the function table (what the node serves). A deploy stores the module, compiles it,
// and only then records the new version and makes it active, so a deploy that answers
// success is invocable and durable; a compile error, an invalid capability or a module that
// could never start under the function's limits (its initial memory above memory_mb, a
// table above the table limit) records nothing. Operations on one name are serialised;
// different names proceed in parallel.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "exec/function_table.h"
#include "store/kv_store.h"
#include "store/registry.h"
#include "util/error.h"
#include "wasm/engine.h"

namespace tern::store {

// What happens to a function's key-value state when this node stops serving it.
enum class StateOnWithdraw { kKeep, kDelete };

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
  // Compiles (or finds compiled) a module for a version with this configuration, refusing
  // one that could not start under the version's sandbox limits.
  Result<std::shared_ptr<const wasm::CompiledModule>> load(
      std::span<const uint8_t> module, const exec::FunctionVersionConfig& config);
  std::mutex& lockFor(const std::string& name);

  Registry& registry_;
  wasm::Engine& engine_;
  exec::FunctionTable& table_;
  KvStore* kv_;
  Listener listener_;
  std::mutex locksMu_;
  std::map<std::string, std::unique_ptr<std::mutex>> locks_;
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
