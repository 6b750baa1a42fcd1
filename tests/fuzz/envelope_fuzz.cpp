// Fuzz target: peer envelopes (src/cluster/envelope). The first byte chooses whether the
// rest is decoded as it is, or first signed with the fuzzer's cluster key (so the fields
// after the MAC check are reached too). A decoded envelope encodes back to the same bytes,
// and every refusal says why.

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "cluster/envelope.h"
#include "fuzz_check.h"
#include "util/names.h"

using namespace tern::cluster;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static const ClusterKey key("fuzz-cluster-secret-0123456789");
  std::string bytes(reinterpret_cast<const char*>(data + 1), size - 1);
  if (data[0] & 1) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    HMAC(EVP_sha256(), key.bytes().data(), static_cast<int>(key.bytes().size()),
         reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), mac, &len);
    bytes.append(reinterpret_cast<const char*>(mac), len);
  }
  size_t maxBytes = (data[0] & 2) ? 64 : (1u << 20);
  auto span = std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  Decoded d = decodeEnvelope(key, span, maxBytes);
  if (!d.ok) {
    FUZZ_CHECK(!d.refused.message.empty());
    FUZZ_CHECK(rejectionName(d.refused.reason) != nullptr);
    return 0;
  }
  FUZZ_CHECK(bytes.size() <= maxBytes);
  FUZZ_CHECK(tern::isNodeName(d.envelope.sender));
  FUZZ_CHECK(encodeEnvelope(key, d.envelope) == bytes);
  // Another key never verifies it.
  static const ClusterKey other("another-cluster-secret-987654321");
  FUZZ_CHECK(!decodeEnvelope(other, span, maxBytes).ok);
  return 0;
}
