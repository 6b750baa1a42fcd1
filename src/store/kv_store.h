#pragma once
// Durable key-value state for functions (the host API's kv_* calls), in
// <data>/kv.db: SQLite in WAL mode with synchronous=FULL on its own connection, so a set
// that returned success survives a crash. Each function has its own namespace (its name);
// nothing here lets one namespace reach another.
//
// Keys are 1 to maxKeyBytes of arbitrary bytes (stored as BLOBs, ordered by memcmp);
// values are 0 to maxValueBytes of arbitrary bytes. Each namespace has a quota on its total
// size (keys plus values) and on its key count; a set that would exceed either is refused
// and changes nothing. Thread-safe: calls serialise on one mutex.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "exec/function_state.h"
#include "util/error.h"
#include "util/thread_annotations.h"

namespace tern {
class Database;
}

namespace tern::store {

using exec::deviceNamespace;

struct KvLimits {
  size_t maxKeyBytes = 512;
  size_t maxValueBytes = 1u << 20;
  uint64_t maxBytesPerFunction = 64u << 20;  // keys plus values
  uint64_t maxKeysPerFunction = 100000;
};

class KvStore final : public exec::FunctionState {
 public:
  // Opens (creating) <dataDir>/kv.db. Errors: kIo.
  static Result<std::unique_ptr<KvStore>> open(const std::filesystem::path& dataDir,
                                               KvLimits limits = {});
  ~KvStore();
  KvStore(const KvStore&) = delete;
  KvStore& operator=(const KvStore&) = delete;

  const KvLimits& limits() const { return limits_; }

  // exec::FunctionState. Errors of every call: kInvalidArgument (empty key), kBodyTooLarge
  // (key or value over its limit), kResourceExhausted (quota), kIo (the database).
  Result<std::optional<std::string>> get(std::string_view ns, std::string_view key) override;
  Result<void> set(std::string_view ns, std::string_view key, std::string_view value) override;
  Result<bool> remove(std::string_view ns, std::string_view key) override;

  // Keys starting with `prefix` (empty: all) that sort after `after` (empty: from the
  // first), at most `limit`.
  Result<Page> list(std::string_view ns, std::string_view prefix, std::string_view after,
                    size_t limit) override;

  struct Usage {
    uint64_t keys = 0;
    uint64_t bytes = 0;  // keys plus values
  };
  Result<Usage> usage(std::string_view ns);

  // Deletes a namespace with everything in it (a removed function's state), and the
  // per-device namespaces of it ("NS@DEVICE", deviceNamespace).
  Result<void> removeNamespace(std::string_view ns);

  // Moving a namespace between nodes (a device's state follows the device).
  struct Entry {
    std::string key;
    std::string value;
  };
  // Every entry of a namespace, in key order. Errors: kIo.
  Result<std::vector<Entry>> exportNamespace(std::string_view ns);
  enum class ImportMode {
    kReplace,       // the namespace becomes exactly `entries`
    kOverwrite,     // `entries` win over the same keys; other keys stay
    kKeepExisting,  // keys already there keep their values; the others are added
  };
  // Writes `entries` into `ns` in one transaction, within the same limits and quotas as
  // set(): on any error nothing changes. Returns how many entries were written.
  Result<size_t> importNamespace(std::string_view ns, const std::vector<Entry>& entries,
                                 ImportMode mode);

  // Cuts the write-ahead log back to zero bytes (after a removal). Errors: kIo.
  Result<void> truncateLog();

 private:
  KvStore(std::unique_ptr<Database> db, KvLimits limits);
  Result<void> checkKey(std::string_view key) const;

  Mutex mu_;
  std::unique_ptr<Database> db_ TERN_PT_GUARDED_BY(mu_);
  const KvLimits limits_;
};

}  // namespace tern::store
