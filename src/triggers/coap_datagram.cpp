#include "triggers/coap_datagram.h"

#include <algorithm>
#include <utility>

namespace tern::triggers {

DatagramVerdict checkDatagram(std::span<const uint8_t> d) {
  // Too short for a message ID, or another version: silently ignored (RFC 7252 3, 4.2).
  if (d.size() < 4 || (d[0] >> 6) != 1) return DatagramVerdict::kIgnore;
  unsigned type = (d[0] >> 4) & 3;  // 0 CON, 1 NON, 2 ACK, 3 RST
  // A malformed Confirmable message is rejected with a Reset; any other malformed message
  // is silently ignored (RFC 7252 4.2, 4.3).
  const auto malformed = type == 0 ? DatagramVerdict::kReset : DatagramVerdict::kIgnore;
  // Longer than the endpoint's MTU: libcoap cannot hold it, so it cannot be processed.
  if (d.size() > kMaxCoapDatagram) return malformed;
  size_t tkl = d[0] & 0x0f;
  if (tkl > 8) return malformed;
  if (d[1] == 0) {  // an empty message is exactly the 4-byte header (RFC 7252 4.1)
    return d.size() == 4 && tkl == 0 ? DatagramVerdict::kWellFormed : malformed;
  }
  size_t pos = 4 + tkl;
  if (pos > d.size()) return malformed;
  // Options (RFC 7252 3.1): nibble 13 and 14 take one and two extension bytes; 15 is
  // reserved except as the full payload marker 0xFF, which must be followed by a payload.
  while (pos < d.size()) {
    uint8_t b = d[pos++];
    if (b == 0xff) return pos < d.size() ? DatagramVerdict::kWellFormed : malformed;
    unsigned delta = b >> 4, length = b & 0x0f;
    if (delta == 15 || length == 15) return malformed;
    auto extension = [&](unsigned nibble, size_t& value) {
      if (nibble == 13) {
        if (pos + 1 > d.size()) return false;
        value = 13u + d[pos];
        pos += 1;
      } else if (nibble == 14) {
        if (pos + 2 > d.size()) return false;
        value = 269u + ((size_t{d[pos]} << 8) | d[pos + 1]);
        pos += 2;
      } else {
        value = nibble;
      }
      return true;
    };
    size_t unusedDelta = 0, valueLength = 0;
    if (!extension(delta, unusedDelta) || !extension(length, valueLength)) return malformed;
    if (valueLength > d.size() - pos) return malformed;
    pos += valueLength;
  }
  return DatagramVerdict::kWellFormed;
}

std::array<uint8_t, 4> resetFor(std::span<const uint8_t> d) {
  return {0x70, 0x00, d[2], d[3]};  // version 1, RST, no token, code 0.00, same message ID
}

LogLineLimiter::LogLineLimiter(Options options)
    : options_(options), tokens_(static_cast<double>(options.burst)) {}

bool LogLineLimiter::admit(Clock::time_point now) {
  if (!started_) {
    started_ = true;
    refilled_ = now;
  }
  if (now > refilled_) {
    double seconds = std::chrono::duration<double>(now - refilled_).count();
    tokens_ = std::min(static_cast<double>(options_.burst), tokens_ + seconds * options_.perSecond);
    refilled_ = now;
  }
  if (tokens_ >= 1.0) {
    tokens_ -= 1.0;
    return true;
  }
  if (suppressed_++ == 0) firstSuppressed_ = now;
  return false;
}

uint64_t LogLineLimiter::takeSuppressed(Clock::time_point now) {
  if (suppressed_ == 0 || now - firstSuppressed_ < options_.reportEvery) return 0;
  return std::exchange(suppressed_, 0);
}

}  // namespace tern::triggers
