#pragma once
// A function's entry in the cluster registry (bucket tern_functions, key = function name):
// the active version as numbered by the cluster, its module's hash and size, its settings
// (placement included), or a tombstone for a deleted function. Module bytes travel
// separately (bucket tern_modules) and are checked against moduleHash on arrival.

#include <cstdint>
#include <string>
#include <string_view>

#include "store/registry.h"
#include "util/error.h"

namespace tern::cluster {

struct FunctionRecord {
  store::FunctionVersion version;  // name, number, module hash and size, settings, created
  bool deleted = false;            // a tombstone: the function was removed
  std::string origin;              // the node where the change was made
  int64_t updatedAtMs = 0;
};

std::string encodeFunctionRecord(const FunctionRecord& r);
// Parses and checks a record (name, hash, sizes, settings types). Errors: kInvalidArgument.
Result<FunctionRecord> decodeFunctionRecord(std::string_view payload);

// Whether two versions have the same number, module and settings (what a node serves).
bool sameVersion(const store::FunctionVersion& a, const store::FunctionVersion& b);

// The module manifest (bucket tern_modules, key = hash): size and chunk count; chunks
// are keys HASH.0, HASH.1, ...
struct ModuleManifest {
  uint64_t size = 0;
  uint32_t chunks = 0;
};
std::string encodeManifest(const ModuleManifest& m);
Result<ModuleManifest> decodeManifest(std::string_view payload, uint64_t maxSize);

}  // namespace tern::cluster
