// Fuzz target: the framed payload of invocation and async-job messages
// (src/cluster/payload): a header length, a JSON header, raw bytes. Unframing never throws;
// what unframes frames back to a payload that unframes to the same header and bytes.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "cluster/payload.h"
#include "fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view payload(reinterpret_cast<const char*>(data), size);
  std::string_view raw;
  auto header = tern::cluster::unframePayload(payload, raw);
  if (!header.ok()) {
    FUZZ_CHECK(!header.error().message().empty());
    return 0;
  }
  FUZZ_CHECK(header->is_object());
  FUZZ_CHECK(raw.data() >= payload.data() && raw.data() + raw.size() == payload.data() + payload.size());
  std::string again = tern::cluster::framePayload(*header, raw);
  std::string_view raw2;
  auto header2 = tern::cluster::unframePayload(again, raw2);
  FUZZ_CHECK(header2.ok());
  FUZZ_CHECK(*header2 == *header);
  FUZZ_CHECK(raw2 == raw);
  return 0;
}
