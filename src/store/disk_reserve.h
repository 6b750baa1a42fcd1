#pragma once
// Space set aside in the data directory so that a full disk can be recovered through the
// API. The node keeps <data>/reserve, a file of `bytes` allocated blocks. When a removal
// (the only way the API frees space) cannot write its database change because the file
// system is full, Deployments releases the reserve and tries once more; the removal then
// deletes module files and compiled objects and the reserve is taken again once the space
// is there (at least twice its size free). Everything else fails on a full disk with
// "disk full" (kResourceExhausted, HTTP 503) and changes nothing. Thread-safe.

#include <cstdint>
#include <filesystem>
#include <mutex>

#include "util/thread_annotations.h"

namespace tern::store {

class DiskReserve {
 public:
  // `bytes` 0 keeps no reserve (restore() deletes an earlier one). Call restore() to
  // allocate it.
  DiskReserve(std::filesystem::path file, uint64_t bytes);

  // Allocates the reserve unless it is held, when the file system has at least twice its
  // size free (a nearly full disk is not filled by the reserve itself). Returns whether it
  // is held afterwards.
  bool restore();
  // Deletes the reserve file, freeing its space; false if there was none.
  bool release();
  bool held() const;
  uint64_t bytes() const { return bytes_; }

 private:
  const std::filesystem::path file_;
  const uint64_t bytes_;
  mutable Mutex mu_;
  bool held_ TERN_GUARDED_BY(mu_) = false;
};

}  // namespace tern::store
