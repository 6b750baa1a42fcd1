#pragma once
// Minimal CoAP (RFC 7252) over UDP for tests: single-datagram requests built byte by byte,
// so tests control message IDs, tokens and types, send duplicates and broken datagrams, and
// read response codes and options. Block-wise transfers are tested with coap-client.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tern::test {

enum class CoapType : uint8_t { kCon = 0, kNon = 1, kAck = 2, kRst = 3 };

struct CoapMessage {
  CoapType type = CoapType::kCon;
  uint8_t code = 0;  // class << 5 | detail; requests: 1 GET, 2 POST, 3 PUT, 4 DELETE
  uint16_t messageId = 0;
  std::string token;
  std::vector<std::pair<unsigned, std::string>> options;  // ascending option numbers
  std::string payload;

  int codeNumber() const { return (code >> 5) * 100 + (code & 31); }  // 4.04 -> 404
  std::optional<unsigned> uintOption(unsigned number) const;
};

std::string encodeCoap(const CoapMessage& m);
std::optional<CoapMessage> decodeCoap(std::string_view bytes);

// A UDP socket connected to 127.0.0.1:port.
class CoapSocket {
 public:
  explicit CoapSocket(uint16_t port);
  ~CoapSocket();
  CoapSocket(const CoapSocket&) = delete;
  CoapSocket& operator=(const CoapSocket&) = delete;

  // A request to /PATH (segments split at '/') with Uri-Query parts split at '&', with a
  // message ID and token not used before on this socket.
  CoapMessage request(uint8_t code, const std::string& path, const std::string& query = "",
                      const std::string& payload = "", CoapType type = CoapType::kCon);

  void send(const std::string& bytes);
  // The next datagram, or nothing after `timeoutMs`.
  std::optional<std::string> receive(int timeoutMs = 10000);
  // Sends `request` and returns its response: a piggybacked one, or the separate response
  // that follows an empty ACK (acknowledged when Confirmable). Nothing after `timeoutMs`.
  std::optional<CoapMessage> exchange(const CoapMessage& request, int timeoutMs = 10000);

 private:
  int fd_ = -1;
  uint16_t nextId_;
};

}  // namespace tern::test
