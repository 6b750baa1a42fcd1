#include "raw_coap.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <random>

namespace tern::test {

namespace {

void putNibbleExtension(std::string& out, unsigned value) {
  if (value >= 269) {
    out.push_back(static_cast<char>((value - 269) >> 8));
    out.push_back(static_cast<char>((value - 269) & 0xff));
  } else if (value >= 13) {
    out.push_back(static_cast<char>(value - 13));
  }
}

unsigned nibble(unsigned value) { return value >= 269 ? 14 : value >= 13 ? 13 : value; }

}  // namespace

std::optional<unsigned> CoapMessage::uintOption(unsigned number) const {
  for (const auto& [n, v] : options) {
    if (n != number) continue;
    unsigned out = 0;
    for (unsigned char c : v) out = out << 8 | c;
    return out;
  }
  return std::nullopt;
}

std::string encodeCoap(const CoapMessage& m) {
  std::string out;
  out.push_back(static_cast<char>(0x40 | static_cast<unsigned>(m.type) << 4 | m.token.size()));
  out.push_back(static_cast<char>(m.code));
  out.push_back(static_cast<char>(m.messageId >> 8));
  out.push_back(static_cast<char>(m.messageId & 0xff));
  out += m.token;
  unsigned last = 0;
  for (const auto& [number, value] : m.options) {
    unsigned delta = number - last;
    last = number;
    out.push_back(static_cast<char>(nibble(delta) << 4 | nibble(static_cast<unsigned>(value.size()))));
    putNibbleExtension(out, delta);
    putNibbleExtension(out, static_cast<unsigned>(value.size()));
    out += value;
  }
  if (!m.payload.empty()) {
    out.push_back(static_cast<char>(0xff));
    out += m.payload;
  }
  return out;
}

std::optional<CoapMessage> decodeCoap(std::string_view b) {
  if (b.size() < 4 || (static_cast<unsigned char>(b[0]) >> 6) != 1) return std::nullopt;
  CoapMessage m;
  auto byte = [&](size_t i) { return static_cast<unsigned>(static_cast<unsigned char>(b[i])); };
  m.type = static_cast<CoapType>((byte(0) >> 4) & 3);
  size_t tkl = byte(0) & 15;
  m.code = static_cast<uint8_t>(byte(1));
  m.messageId = static_cast<uint16_t>(byte(2) << 8 | byte(3));
  if (tkl > 8 || 4 + tkl > b.size()) return std::nullopt;
  m.token = std::string(b.substr(4, tkl));
  size_t pos = 4 + tkl;
  unsigned number = 0;
  while (pos < b.size()) {
    unsigned head = byte(pos++);
    if (head == 0xff) {
      m.payload = std::string(b.substr(pos));
      return m;
    }
    auto ext = [&](unsigned n) -> std::optional<unsigned> {
      if (n == 13) {
        if (pos >= b.size()) return std::nullopt;
        return 13 + byte(pos++);
      }
      if (n == 14) {
        if (pos + 1 >= b.size()) return std::nullopt;
        unsigned v = 269 + (byte(pos) << 8 | byte(pos + 1));
        pos += 2;
        return v;
      }
      if (n == 15) return std::nullopt;
      return n;
    };
    auto delta = ext(head >> 4);
    auto length = ext(head & 15);
    if (!delta || !length || pos + *length > b.size()) return std::nullopt;
    number += *delta;
    m.options.emplace_back(number, std::string(b.substr(pos, *length)));
    pos += *length;
  }
  return m;
}

CoapMessage CoapSocket::request(uint8_t code, const std::string& path, const std::string& query,
                                const std::string& payload, CoapType type) {
  CoapMessage m;
  m.type = type;
  m.code = code;
  m.messageId = ++nextId_;
  m.token = {static_cast<char>(0x7a), static_cast<char>(nextId_ >> 8),
             static_cast<char>(nextId_ & 0xff)};
  auto split = [&](const std::string& s, char sep, unsigned option) {
    size_t start = 0;
    while (start <= s.size() && !s.empty()) {
      size_t end = s.find(sep, start);
      if (end == std::string::npos) end = s.size();
      if (end > start) m.options.emplace_back(option, s.substr(start, end - start));
      start = end + 1;
    }
  };
  split(path, '/', 11);
  split(query, '&', 15);
  m.payload = payload;
  return m;
}

CoapSocket::CoapSocket(uint16_t port) : nextId_(static_cast<uint16_t>(std::random_device{}())) {
  fd_ = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd_ >= 0 && connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd_);
    fd_ = -1;
  }
}

CoapSocket::~CoapSocket() {
  if (fd_ >= 0) close(fd_);
}

void CoapSocket::send(const std::string& bytes) {
  if (fd_ >= 0) ::send(fd_, bytes.data(), bytes.size(), 0);
}

std::optional<std::string> CoapSocket::receive(int timeoutMs) {
  if (fd_ < 0) return std::nullopt;
  pollfd p{fd_, POLLIN, 0};
  if (poll(&p, 1, timeoutMs) != 1) return std::nullopt;
  std::string buf(65536, '\0');
  ssize_t n = recv(fd_, buf.data(), buf.size(), 0);
  if (n < 0) return std::nullopt;
  buf.resize(static_cast<size_t>(n));
  return buf;
}

std::optional<CoapMessage> CoapSocket::exchange(const CoapMessage& request, int timeoutMs) {
  send(encodeCoap(request));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
  for (;;) {
    int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                    deadline - std::chrono::steady_clock::now())
                                    .count());
    if (left <= 0) return std::nullopt;
    auto bytes = receive(left);
    if (!bytes) return std::nullopt;
    auto m = decodeCoap(*bytes);
    if (!m) continue;
    if (m->code == 0) continue;  // the empty ACK of a separate response
    if (m->token != request.token) continue;
    if (m->type == CoapType::kCon) {
      CoapMessage ack;
      ack.type = CoapType::kAck;
      ack.messageId = m->messageId;
      send(encodeCoap(ack));
    }
    return m;
  }
}

}  // namespace tern::test
