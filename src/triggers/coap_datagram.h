#pragma once
// What the CoAP trigger decides before libcoap acts: which datagrams libcoap may read, and
// which of libcoap's log lines are written. Pure functions and a clock-driven limiter, so
// tests drive them with bytes and hand-set times (tests/unit/triggers/coap_server_test.cpp).
// See docs/coap.md, "Bad datagrams".

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>

namespace tern::triggers {

// The largest datagram handed to libcoap: the MTU tern sets on the endpoint (libcoap's
// default). libcoap cannot parse a longer message: it would log it and answer a Reset
// without the message's ID.
inline constexpr size_t kMaxCoapDatagram = 1152;

// What to do with a datagram before libcoap sees it (RFC 7252 sections 3 and 4):
// kWellFormed goes to libcoap; kIgnore is dropped silently (too short to carry a message
// ID, another protocol version, or a malformed or oversized message that may not be
// answered); kReset is a malformed or oversized Confirmable message, rejected with a Reset.
enum class DatagramVerdict { kWellFormed, kIgnore, kReset };
DatagramVerdict checkDatagram(std::span<const uint8_t> datagram);

// The Reset that rejects `datagram` (a kReset verdict): an empty RST message with the
// datagram's message ID (RFC 7252 4.2). `datagram` has at least 4 bytes.
std::array<uint8_t, 4> resetFor(std::span<const uint8_t> datagram);

// A token bucket for log lines: up to `burst` lines at once, refilled at `perSecond`;
// lines beyond it are counted, and the count is reported at most every `reportEvery`.
// Not thread-safe: its owner serialises calls.
class LogLineLimiter {
 public:
  using Clock = std::chrono::steady_clock;
  struct Options {
    unsigned burst = 10;
    unsigned perSecond = 1;
    std::chrono::milliseconds reportEvery{10000};
  };
  explicit LogLineLimiter(Options options);

  // Whether a line may be written at `now`; if not, it counts as suppressed.
  bool admit(Clock::time_point now);
  // The lines suppressed and not yet reported, once `reportEvery` has passed since the
  // first of them; 0 otherwise. A non-zero answer starts a new count.
  uint64_t takeSuppressed(Clock::time_point now);

 private:
  Options options_;
  double tokens_;
  Clock::time_point refilled_{};
  bool started_ = false;
  uint64_t suppressed_ = 0;
  Clock::time_point firstSuppressed_{};
};

}  // namespace tern::triggers
