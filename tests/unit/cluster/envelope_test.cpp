#include "cluster/envelope.h"
#include "util/names.h"

#include <gtest/gtest.h>

namespace tern::cluster {
namespace {

const ClusterKey kKey("0123456789abcdef0123456789abcdef");

std::span<const uint8_t> bytes(const std::string& s) {
  return std::span(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

std::string sample() {
  return encodeEnvelope(kKey, Envelope{MessageKind::kHeartbeat, "node-1", 1234567, "{\"a\":1}"});
}

TEST(EnvelopeTest, RoundTrips) {
  Decoded d = decodeEnvelope(kKey, bytes(sample()), 1 << 20);
  ASSERT_TRUE(d.ok) << d.refused.message;
  EXPECT_EQ(d.envelope.kind, MessageKind::kHeartbeat);
  EXPECT_EQ(d.envelope.sender, "node-1");
  EXPECT_EQ(d.envelope.sentAtMs, 1234567);
  EXPECT_EQ(d.envelope.payload, "{\"a\":1}");
}

TEST(EnvelopeTest, EveryTruncationIsRefused) {
  std::string m = sample();
  for (size_t n = 0; n < m.size(); ++n) {
    Decoded d = decodeEnvelope(kKey, bytes(m.substr(0, n)), 1 << 20);
    EXPECT_FALSE(d.ok) << "accepted the first " << n << " bytes";
  }
}

TEST(EnvelopeTest, EveryFlippedByteIsRefused) {
  std::string m = sample();
  for (size_t i = 0; i < m.size(); ++i) {
    std::string bad = m;
    bad[i] = static_cast<char>(bad[i] ^ 0x01);
    EXPECT_FALSE(decodeEnvelope(kKey, bytes(bad), 1 << 20).ok) << "byte " << i;
  }
}

TEST(EnvelopeTest, NamesWhyItRefused) {
  struct Case {
    std::string message;
    Rejection reason;
  };
  std::string m = sample();
  std::string v2 = m;
  v2[3] = 2;
  std::string kind9 = m;
  kind9[4] = 9;
  // One byte more between the payload and the MAC than the length field says.
  std::string longer = m.substr(0, m.size() - kMacBytes) + "x" + m.substr(m.size() - kMacBytes);
  const Case cases[] = {
      {"", Rejection::kTruncated},
      {"TR", Rejection::kTruncated},
      {"HTTP/1.1 200 OK", Rejection::kBadMagic},
      {"TRN", Rejection::kTruncated},
      {v2, Rejection::kUnknownVersion},
      {kind9, Rejection::kUnknownKind},
      {m.substr(0, m.size() - 1), Rejection::kTruncated},
      {longer, Rejection::kMalformed},
      {encodeEnvelope(ClusterKey("another secret of enough bytes"),
                      Envelope{MessageKind::kHeartbeat, "node-1", 1, "{}"}),
       Rejection::kBadSignature},
      {encodeEnvelope(kKey, Envelope{MessageKind::kHeartbeat, "Node_1", 1, "{}"}),
       Rejection::kBadSender},
      {encodeEnvelope(kKey, Envelope{MessageKind::kHeartbeat, "n", 1, std::string(2000, 'x')}),
       Rejection::kOversized},
  };
  for (const auto& c : cases) {
    Decoded d = decodeEnvelope(kKey, bytes(c.message), 1024);
    EXPECT_FALSE(d.ok);
    EXPECT_EQ(d.refused.reason, c.reason)
        << rejectionName(d.refused.reason) << ": " << d.refused.message;
    EXPECT_FALSE(d.refused.message.empty());
  }
}

TEST(EnvelopeTest, NodeIds) {
  EXPECT_TRUE(isNodeName("edge-1"));
  EXPECT_TRUE(isNodeName(std::string(63, 'a')));
  EXPECT_FALSE(isNodeName(""));
  EXPECT_FALSE(isNodeName(std::string(64, 'a')));
  EXPECT_FALSE(isNodeName("a.b"));
  EXPECT_FALSE(isNodeName("a*"));
  EXPECT_FALSE(isNodeName("A"));
}

}  // namespace
}  // namespace tern::cluster
