// The CoAP trigger's pure parts: which datagrams reach libcoap, the Reset for the others,
// the limit on libcoap's log lines, and the response code of each error kind. The server itself is tested against a real ternd in
// tests/integration/coap_test.cpp.

#include "triggers/coap_server.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <string>
#include <vector>

namespace tern::triggers {
namespace {

DatagramVerdict check(const std::vector<uint8_t>& bytes) { return checkDatagram(bytes); }

TEST(CoapDatagram, VerdictTable) {
  using V = DatagramVerdict;
  struct Case {
    const char* what;
    std::vector<uint8_t> bytes;
    V want;
  };
  // CON GET /fn/echo, message ID 0x1234, token 0xAB.
  std::vector<uint8_t> get = {0x41, 0x01, 0x12, 0x34, 0xab, 0xb2, 'f', 'n', 0x04, 'e', 'c', 'h', 'o'};
  std::vector<uint8_t> withPayload = get;
  withPayload.insert(withPayload.end(), {0xff, 'h', 'i'});
  const std::vector<Case> cases = {
      {"empty datagram", {}, V::kIgnore},
      {"three bytes", {0x40, 0x01, 0x00}, V::kIgnore},
      {"version 2", {0x80, 0x01, 0x00, 0x01}, V::kIgnore},
      {"version 0", {0x00, 0x01, 0x00, 0x01}, V::kIgnore},
      {"ping (empty CON)", {0x40, 0x00, 0x00, 0x01}, V::kWellFormed},
      {"empty message with a token", {0x41, 0x00, 0x00, 0x01, 0x99}, V::kReset},
      {"empty message with bytes after", {0x40, 0x00, 0x00, 0x01, 0xff, 0x01}, V::kReset},
      {"GET with path", get, V::kWellFormed},
      {"GET with payload", withPayload, V::kWellFormed},
      {"token length 9", {0x49, 0x01, 0x00, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 9}, V::kReset},
      {"token cut short", {0x44, 0x01, 0x00, 0x01, 1, 2}, V::kReset},
      {"payload marker without payload", {0x40, 0x01, 0x00, 0x01, 0xff}, V::kReset},
      {"option value cut short", {0x40, 0x01, 0x00, 0x01, 0xb5, 'f', 'n'}, V::kReset},
      {"delta nibble 15", {0x40, 0x01, 0x00, 0x01, 0xf1, 'x'}, V::kReset},
      {"length nibble 15", {0x40, 0x01, 0x00, 0x01, 0x1f, 'x'}, V::kReset},
      {"one-byte extension missing", {0x40, 0x01, 0x00, 0x01, 0xd0}, V::kReset},
      {"two-byte extension cut", {0x40, 0x01, 0x00, 0x01, 0xe0, 0x01}, V::kReset},
      {"extended length past the end", {0x40, 0x01, 0x00, 0x01, 0x1d, 0x05, 'a'}, V::kReset},
      {"extended option number", {0x40, 0x01, 0x00, 0x01, 0xd1, 0x2f, 0x00}, V::kWellFormed},
      {"malformed NON is ignored", {0x50, 0x01, 0x00, 0x01, 0xff}, V::kIgnore},
      {"malformed ACK is ignored", {0x60, 0x45, 0x00, 0x01, 0x1f}, V::kIgnore},
      {"malformed RST is ignored", {0x71, 0x00, 0x00, 0x01}, V::kIgnore},
  };
  for (const auto& c : cases) EXPECT_EQ(check(c.bytes), c.want) << c.what;
}

// A CON POST /fn/echo whose payload makes the datagram `size` bytes long.
std::vector<uint8_t> postOfSize(size_t size, uint8_t type = 0) {
  const uint8_t head[] = {static_cast<uint8_t>(0x40 | type << 4), 0x02, 0x5a, 0x17, 0xb2, 'f',
                          'n', 0x04, 'e', 'c', 'h', 'o', 0xff};
  std::vector<uint8_t> m(size, 'x');
  std::copy(std::begin(head), std::end(head), m.begin());
  return m;
}

TEST(CoapDatagram, DatagramsLongerThanTheEndpointMtuNeverReachLibcoap) {
  EXPECT_EQ(check(postOfSize(kMaxCoapDatagram)), DatagramVerdict::kWellFormed);
  EXPECT_EQ(check(postOfSize(kMaxCoapDatagram + 1)), DatagramVerdict::kReset);
  EXPECT_EQ(check(postOfSize(9000)), DatagramVerdict::kReset);
  EXPECT_EQ(check(postOfSize(kMaxCoapDatagram + 1, /*NON*/ 1)), DatagramVerdict::kIgnore);
}

TEST(CoapDatagram, TheResetCarriesTheMessageId) {
  auto reset = resetFor(postOfSize(2000));
  EXPECT_EQ(reset, (std::array<uint8_t, 4>{0x70, 0x00, 0x5a, 0x17}));  // RST, 0.00, same ID
}

using Clock = LogLineLimiter::Clock;
constexpr auto kSecond = std::chrono::seconds(1);

TEST(CoapLog, ABurstPassesThenOneLinePerSecond) {
  LogLineLimiter limiter({.burst = 3, .perSecond = 1, .reportEvery = std::chrono::seconds(10)});
  Clock::time_point t0{};
  int admitted = 0;
  for (int i = 0; i < 1000; ++i) admitted += limiter.admit(t0);
  EXPECT_EQ(admitted, 3);
  EXPECT_FALSE(limiter.admit(t0 + kSecond / 2));
  EXPECT_TRUE(limiter.admit(t0 + kSecond));
  EXPECT_FALSE(limiter.admit(t0 + kSecond));
  // A long quiet spell refills the burst, no more.
  admitted = 0;
  for (int i = 0; i < 100; ++i) admitted += limiter.admit(t0 + 60 * kSecond);
  EXPECT_EQ(admitted, 3);
}

TEST(CoapLog, SuppressedLinesAreReportedPeriodically) {
  LogLineLimiter limiter({.burst = 1, .perSecond = 1, .reportEvery = std::chrono::seconds(10)});
  Clock::time_point t0{};
  EXPECT_TRUE(limiter.admit(t0));
  EXPECT_EQ(limiter.takeSuppressed(t0), 0u);  // nothing suppressed yet
  for (int i = 0; i < 500; ++i) limiter.admit(t0 + kSecond / 10);
  EXPECT_EQ(limiter.takeSuppressed(t0 + 5 * kSecond), 0u);  // not due yet
  uint64_t reported = limiter.takeSuppressed(t0 + 11 * kSecond);
  EXPECT_EQ(reported, 500u);
  EXPECT_EQ(limiter.takeSuppressed(t0 + 30 * kSecond), 0u);  // counted once
}

TEST(CoapDatagram, EveryTruncationOfAValidMessageIsHandled) {
  std::vector<uint8_t> m = {0x42, 0x02, 0x00, 0x07, 0x01, 0x02, 0xb2, 'f', 'n', 0x04, 'e',
                            'c', 'h', 'o', 0x41, 'x', 0x13, 'q', '=', '1', 0xff, 'b', 'o', 'd',
                            'y'};
  ASSERT_EQ(check(m), DatagramVerdict::kWellFormed);
  for (size_t n = 0; n < m.size(); ++n) {
    std::vector<uint8_t> cut(m.begin(), m.begin() + static_cast<long>(n));
    auto v = check(cut);
    // Cut at an option boundary it is a shorter valid message; anywhere else malformed.
    EXPECT_TRUE(v == DatagramVerdict::kWellFormed || v == DatagramVerdict::kReset ||
                (n < 4 && v == DatagramVerdict::kIgnore))
        << n;
  }
  EXPECT_EQ(check(std::vector<uint8_t>(m.begin(), m.begin() + 8)), DatagramVerdict::kReset);
  EXPECT_EQ(check(std::vector<uint8_t>(m.begin(), m.begin() + 19)), DatagramVerdict::kReset);
  EXPECT_EQ(check(std::vector<uint8_t>(m.begin(), m.begin() + 20)), DatagramVerdict::kWellFormed);
}

TEST(CoapCodes, InvocationOutcomesMapToResponseCodes) {
  EXPECT_EQ(coapCode(ErrorCode::kNotFound), 404);
  EXPECT_EQ(coapCode(ErrorCode::kBodyTooLarge), 413);
  EXPECT_EQ(coapCode(ErrorCode::kInvalidArgument), 400);
  EXPECT_EQ(coapCode(ErrorCode::kSaturated), 503);
  EXPECT_EQ(coapCode(ErrorCode::kUnavailable), 503);
  EXPECT_EQ(coapCode(ErrorCode::kTimeout), 504);
  EXPECT_EQ(coapCode(ErrorCode::kTrap), 500);
  EXPECT_EQ(coapCode(ErrorCode::kFunctionFailed), 500);
  EXPECT_EQ(coapCode(ErrorCode::kMemoryLimit), 500);
}

}  // namespace
}  // namespace tern::triggers
