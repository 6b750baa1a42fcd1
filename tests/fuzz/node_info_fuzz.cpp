// Fuzz target: heartbeat payloads (src/cluster/membership: decodeNodeInfo) and the
// HOST:PORT addresses in them. A decoded record encodes to a payload that decodes to the
// same record.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "cluster/envelope.h"
#include "cluster/membership.h"
#include "fuzz_check.h"
#include "util/names.h"

using namespace tern::cluster;

namespace {

bool same(const NodeInfo& a, const NodeInfo& b) {
  return a.id == b.id && a.identity.site == b.identity.site && a.identity.tier == b.identity.tier &&
         a.identity.labels == b.identity.labels && a.httpAddress == b.httpAddress &&
         a.directAddress == b.directAddress && a.directSecurity == b.directSecurity &&
         a.load.slots == b.load.slots &&
         a.load.running == b.load.running && a.load.queued == b.load.queued &&
         a.load.rejected == b.load.rejected && a.functions == b.functions &&
         a.startedAtMs == b.startedAtMs && a.sequence == b.sequence;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto hostPort = splitHostPort(text);
  if (hostPort.ok()) FUZZ_CHECK(!hostPort->first.empty() || text.starts_with(":"));
  else FUZZ_CHECK(!hostPort.error().message().empty());

  auto info = decodeNodeInfo(text);
  if (!info.ok()) {
    FUZZ_CHECK(!info.error().message().empty());
    return 0;
  }
  FUZZ_CHECK(tern::isNodeName(info->id));
  FUZZ_CHECK(tern::isNodeName(info->identity.site));
  auto again = decodeNodeInfo(encodeNodeInfo(*info));
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(same(*info, *again));
  return 0;
}
