#pragma once
// Content-addressed module bytes: <dir>/<sha256>.wasm. A file appears under its final name
// only once its bytes are on disk (temp file in the same directory, fsync, rename, fsync of
// the directory), so a name that exists always holds complete bytes unless the disk itself
// corrupted them, which reads detect by re-hashing. Files are immutable and may be shared by
// many versions and functions. Thread-safe: no state beyond the directory path.

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "util/error.h"

namespace tern::store {

// A module hash is exactly 64 lower-case hex characters: the only strings ever turned into
// a path under the modules directory, so no hash can name another file.
bool isValidModuleHash(std::string_view hash);

// fsyncs a directory, making the entries created or renamed in it durable. Errors: kIo.
Result<void> syncDirectory(const std::filesystem::path& dir);

class ModuleFiles {
 public:
  // `dir` must exist (Registry::open creates it).
  explicit ModuleFiles(std::filesystem::path dir) : dir_(std::move(dir)) {}

  // Stores the bytes under their SHA-256 and returns the hash. Idempotent: an existing
  // intact file is kept (and made durable); a corrupt one is replaced. Errors: kIo.
  Result<std::string> put(std::span<const uint8_t> bytes) const;
  // The bytes stored under `hash`, verified against it. Errors: kInvalidArgument (not a
  // hash), kIo (missing, unreadable or corrupt).
  Result<std::vector<uint8_t>> read(std::string_view hash) const;
  // The size of the stored file. Errors: kInvalidArgument (not a hash), kNotFound (not
  // stored), kIo.
  Result<uint64_t> size(std::string_view hash) const;

  // The hashes of the stored modules, in no particular order. Errors: kIo.
  Result<std::vector<std::string>> list() const;
  // Deletes the file stored under `hash` (no error if there is none) and returns the bytes
  // it took on disk. Callers make sure no version refers to it (Registry::collectModules).
  // Errors: kInvalidArgument (not a hash), kIo.
  Result<uint64_t> remove(std::string_view hash) const;

  // Removes temp files left by writes that a crash interrupted. Only files older than
  // `minAge` go, so a write in progress in another process sharing the directory survives.
  void removeStaleTempFiles(std::filesystem::file_time_type::duration minAge) const;

 private:
  std::filesystem::path pathFor(std::string_view hash) const;
  std::filesystem::path dir_;
};

}  // namespace tern::store
