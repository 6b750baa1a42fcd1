// Fuzz target: registry records and module manifests a peer replicates
// (src/cluster/function_record). The first byte chooses the parser. A decoded record or
// manifest encodes to a payload that decodes to the same value.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "cluster/function_record.h"
#include "fuzz_check.h"
#include "util/names.h"

using namespace tern::cluster;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  if (data[0] & 1) {
    uint64_t maxSize = (data[0] & 2) ? 1024 : (uint64_t{64} << 20);
    auto m = decodeManifest(text, maxSize);
    if (!m.ok()) {
      FUZZ_CHECK(!m.error().message().empty());
      return 0;
    }
    FUZZ_CHECK(m->size <= maxSize);
    auto again = decodeManifest(encodeManifest(*m), maxSize);
    FUZZ_CHECK(again.ok() && again->size == m->size && again->chunks == m->chunks);
    return 0;
  }
  auto r = decodeFunctionRecord(text);
  if (!r.ok()) {
    FUZZ_CHECK(!r.error().message().empty());
    return 0;
  }
  FUZZ_CHECK(tern::isFunctionName(r->version.name));
  auto again = decodeFunctionRecord(encodeFunctionRecord(*r));
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(sameVersion(r->version, again->version));
  FUZZ_CHECK(again->version.name == r->version.name);
  FUZZ_CHECK(again->version.moduleSize == r->version.moduleSize);
  FUZZ_CHECK(again->version.createdAtMs == r->version.createdAtMs);
  FUZZ_CHECK(again->deleted == r->deleted && again->origin == r->origin &&
             again->updatedAtMs == r->updatedAtMs);
  return 0;
}
