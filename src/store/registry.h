#pragma once
// The node's durable registry: functions, their immutable numbered versions and settings,
// and content-addressed module bytes, in the node's data directory:
//
//   <data>/registry.db        SQLite (WAL): functions and versions
//   <data>/modules/<sha256>.wasm  module bytes, written atomically before they are referenced
//
// Every mutation is one SQLite transaction, durable when the call returns (a deploy that
// answered survives kill -9). Thread-safe: calls serialise on one connection.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "store/compile_tier.h"
#include "util/error.h"

namespace tern::store {

// Settings chosen at deploy; part of an immutable version.
struct FunctionSettings {
  uint32_t memoryMb = 128;
  uint32_t timeoutMs = 10000;
  uint32_t concurrency = 0;  // max invocations at once; 0 = node default
  std::vector<std::string> env;  // "KEY=VALUE"
  // Event sources besides HTTP, as given at deploy and validated by Deployments:
  // "mqtt:TOPIC_FILTER", "cron:MIN HOUR DOM MON DOW", "every:DURATION".
  std::vector<std::string> triggers;
  std::string replyTopic;            // MQTT triggers: stdout is published here when set
  // Host API capabilities granted to the function: "kv", "publish:TOPIC_FILTER",
  // "invoke:NAME", "log" (see docs/design/host-api.md).
  std::vector<std::string> allow;
  // Response-time objective (docs/design/scheduler.md): sloMs 0 is best effort;
  // sloPercentile 0 makes it a mean objective. `weight` is the function's share of the
  // node's worker slots when it is oversubscribed.
  double sloMs = 0;
  double sloPercentile = 0;
  double weight = 1;
  // Where the function runs in a cluster (docs/design/cluster.md): nodes of one of `sites`
  // (empty: any site), of `tier` ("edge" or "cloud"; empty: any tier) and carrying every
  // "KEY=VALUE" of `labels`. A standalone node ignores it.
  struct Placement {
    std::vector<std::string> sites;
    std::string tier;
    std::vector<std::string> labels;
    bool operator==(const Placement&) const = default;
  } placement;
  // Which compiler builds the function's object (store/compile_tier.h).
  CompileTier compileTier = CompileTier::kAuto;
};

struct FunctionVersion {
  std::string name;
  uint32_t version = 0;       // 1, 2, 3, ... per function
  std::string moduleHash;     // lower-case hex SHA-256 of the module bytes
  uint64_t moduleSize = 0;
  FunctionSettings settings;
  int64_t createdAtMs = 0;    // Unix time
};

struct FunctionSummary {
  std::string name;
  uint32_t activeVersion = 0;  // the version invocations run
  uint32_t latestVersion = 0;
  uint32_t versionCount = 0;
  int64_t updatedAtMs = 0;
};

// A function changed on this node whose state the cluster has not acknowledged yet;
// `change` orders the changes and identifies this one.
struct UnpublishedChange {
  std::string name;
  int64_t change = 0;
};

// Whether local changes are recorded as unpublished (a node in a cluster) or not.
enum class ChangeJournal { kOff, kOn };

// Who made a removal: this node's API (recorded as unpublished) or the cluster (mirrored).
enum class ChangeSource { kLocal, kCluster };

class ModuleHold;

// What Registry::collectModules deleted.
struct ModuleCollection {
  std::vector<std::string> removed;  // hashes whose files were deleted
  uint64_t bytesFreed = 0;           // their blocks on disk
};

class Registry {
 public:
  // Opens (creating if needed) the registry in `dataDir`. Errors: kIo.
  static Result<std::unique_ptr<Registry>> open(const std::filesystem::path& dataDir);
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Stores module bytes under their SHA-256 (idempotent) and returns the hash.
  Result<std::string> putModule(std::span<const uint8_t> bytes);
  // The module's bytes; kIo if missing or if the bytes no longer match the hash.
  Result<std::vector<uint8_t>> readModule(const std::string& hash);

  // Creates the next version of `name` (creating the function if new) and makes it active.
  // The module must have been stored with putModule. Errors: kInvalidArgument (bad name).
  Result<FunctionVersion> addVersion(const std::string& name, const std::string& moduleHash,
                                     uint64_t moduleSize, const FunctionSettings& settings);
  // The active version; nullopt if there is no such function.
  Result<std::optional<FunctionVersion>> active(const std::string& name);
  Result<std::vector<FunctionSummary>> list();
  // All versions, oldest first; empty if there is no such function.
  Result<std::vector<FunctionVersion>> versions(const std::string& name);
  // Makes the version before the active one active. Errors: kNotFound (no function),
  // kConflict (no earlier version).
  Result<FunctionVersion> rollback(const std::string& name);
  // Deletes the function and all its versions; false if it did not exist. A local removal
  // that deleted something is recorded as unpublished (with the journal on).
  Result<bool> remove(const std::string& name, ChangeSource source = ChangeSource::kLocal);
  // Makes `v` (its number, module, settings and creation time as given) the active version
  // of `v.name`, creating the function if new; a stored version with the same number is
  // replaced. This is how a cluster's registry, which numbers versions, is mirrored. The
  // module must have been stored with putModule. Errors: kInvalidArgument, kNotFound.
  Result<void> adoptVersion(const FunctionVersion& v);

  // The outbox of a node in a cluster. With the journal on, addVersion, rollback and a
  // local remove also record their function as unpublished, in the same transaction, so
  // the record survives a restart; adoptVersion and a cluster remove do not. Off by
  // default (a standalone node has nothing to publish); set before the node serves.
  void setChangeJournal(ChangeJournal journal);
  // The unpublished changes, oldest first.
  Result<std::vector<UnpublishedChange>> unpublished();
  // Whether `name` has a change not yet acknowledged by the cluster.
  Result<bool> isUnpublished(const std::string& name);
  // Forgets `change` once the cluster acknowledged it; false (and the row stays) when the
  // function changed again meanwhile, so the newer change is still published.
  Result<bool> markPublished(const UnpublishedChange& change);

  // Module garbage collection (README.md, "Disk"). A deploy takes a hold on its module's
  // hash before it compiles or stores anything and keeps it until its version is recorded
  // (or the deploy failed): collectModules keeps held modules, so it never removes a
  // module, or what derives from it, between a deploy's steps. Holds are per process.
  [[nodiscard]] ModuleHold holdModule(const std::string& hash);
  // Deletes every module file that no version refers to and no hold keeps, inside a write
  // transaction (so addVersion and adoptVersion, which check the file inside theirs, never
  // record a version whose file was just deleted). Then calls `alsoWhileHeld` with the
  // hashes that stay, while new holds still wait, so the caller can delete what derives from
  // the other modules (compiled objects) with the same view. Errors: kIo.
  using LiveModulesHook = std::function<void(const std::set<std::string>& live)>;
  Result<ModuleCollection> collectModules(const LiveModulesHook& alsoWhileHeld = {});
  // Cuts the write-ahead log back to zero bytes after its changes are in the database.
  // Errors: kIo (also while another connection reads: the log is cut by a later call).
  Result<void> truncateLog();

 private:
  friend class ModuleHold;
  struct Impl;
  struct HoldTable;
  explicit Registry(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A deploy's claim on a module hash (Registry::holdModule); released when destroyed.
class ModuleHold {
 public:
  ModuleHold(ModuleHold&&) noexcept = default;
  ModuleHold& operator=(ModuleHold&&) = delete;
  ModuleHold(const ModuleHold&) = delete;
  ModuleHold& operator=(const ModuleHold&) = delete;
  ~ModuleHold();

 private:
  friend class Registry;
  ModuleHold(std::shared_ptr<Registry::HoldTable> table, std::string hash);
  std::shared_ptr<Registry::HoldTable> table_;
  std::string hash_;
};

}  // namespace tern::store
