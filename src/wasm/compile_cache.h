#pragma once
// The compile cache's files and their upkeep. Layout under the cache directory (all 0700
// directories and 0600 files):
//
//   objects/<key>.so     a compiled module, published by rename (Compiler::load)
//   objects/<key>.lock   the key's flock: held exclusively while the key is compiled or
//                        removed, by any process that shares the directory
//   tmp/<key16>-<pid>-<random>/  a compile's work directory (key16 is the key's first 16
//                        characters); created and removed under the key's lock
//   toolchain/<stamp>    the remembered identity of the C compiler and wasm2c
//
// A work directory exists only while its key's lock is held, so a directory whose key
// nobody holds was left by a process that died (kill -9 during a deploy) and can go. The
// same lock protects an object from removal while it is being compiled.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <set>
#include <string>

#include "util/error.h"

namespace tern::wasm {

// An exclusive flock on a cache key's lock file, held for the object's lifetime. Lock
// files are removed by removeObjectsExcept while held, so after locking, the holder checks
// that the file it locked is still the one at the path (else it locks the new one): two
// holders can never lock different files for one key.
class CacheKeyLock {
 public:
  // Waits for the lock. On a failure to open the file the compile proceeds unlocked
  // (held() is false): a second compile of the same key only wastes work.
  explicit CacheKeyLock(const std::filesystem::path& lockFile);
  // The lock if nobody holds it now, else nullopt. Creates the file when missing.
  static std::optional<CacheKeyLock> tryAcquire(const std::filesystem::path& lockFile);
  ~CacheKeyLock();
  CacheKeyLock(CacheKeyLock&& other) noexcept;
  CacheKeyLock& operator=(CacheKeyLock&&) = delete;
  CacheKeyLock(const CacheKeyLock&) = delete;
  CacheKeyLock& operator=(const CacheKeyLock&) = delete;

  bool held() const { return fd_ >= 0; }

 private:
  CacheKeyLock() = default;
  int fd_ = -1;
};

// Creates the cache directory (mode 0700 when it is new; an existing one is left as it is)
// and its objects/ and tmp/ (0700, tightened if found open). Errors: kIo.
Result<void> prepareCacheDirectories(const std::filesystem::path& cacheDir);

// Stores the toolchain identity `id` in `file` (under toolchain/, see above), atomically
// and mode 0600, creating the cache's directories private. Best effort: a failure only
// means the identity is asked of the tools again next time.
void rememberToolchain(const std::filesystem::path& cacheDir, const std::filesystem::path& file,
                       const std::string& id);

// Makes a compiled object private (0600) and publishes it under its final name by rename,
// so readers see either no object or a complete one. Errors: kIo.
Result<void> publishObject(const std::filesystem::path& built,
                           const std::filesystem::path& object);

// Removes work directories under tmp/ whose key's lock nobody holds (compiles that died).
// Work directories of compiles in progress, in this process or another, stay. Returns how
// many were removed.
size_t removeAbandonedWork(const std::filesystem::path& cacheDir);

struct ObjectSweep {
  size_t removed = 0;      // objects deleted
  uint64_t bytesFreed = 0; // their blocks on disk
};

// Deletes every object and lock file under objects/ whose key is not in `keep` (objects of
// removed modules, of an older toolchain, lock files of failed compiles), each under its
// key's lock taken without waiting: a key being compiled stays.
ObjectSweep removeObjectsExcept(const std::filesystem::path& cacheDir,
                                const std::set<std::string>& keep);

}  // namespace tern::wasm
