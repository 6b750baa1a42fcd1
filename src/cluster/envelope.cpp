#include "cluster/envelope.h"
#include "util/names.h"

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <fstream>
#include <sstream>

namespace tern::cluster {

namespace {

constexpr size_t kHeaderFixed = 6;      // magic, version, kind, sender length
constexpr size_t kAfterSender = 8 + 4;  // sent-at, payload length

void mac(const ClusterKey& key, const uint8_t* data, size_t size, uint8_t out[kMacBytes]) {
  unsigned int len = kMacBytes;
  HMAC(EVP_sha256(), key.bytes().data(), static_cast<int>(key.bytes().size()), data, size, out,
       &len);
}

void putBigEndian(std::string& out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint64_t getBigEndian(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | p[i];
  return v;
}

}  // namespace

void rejectionCounters(MetricsRegistry& metrics, Counter* (&out)[kRejectionKinds]) {
  for (size_t i = 0; i < kRejectionKinds; ++i) {
    out[i] = &metrics.counter("tern_cluster_rejected_total",
                              "Peer messages and registry entries refused, by reason",
                              {{"reason", rejectionName(static_cast<Rejection>(i))}});
  }
}

const char* rejectionName(Rejection r) {
  switch (r) {
    case Rejection::kTruncated: return "truncated";
    case Rejection::kOversized: return "oversized";
    case Rejection::kBadMagic: return "bad_magic";
    case Rejection::kUnknownVersion: return "unknown_version";
    case Rejection::kUnknownKind: return "unknown_kind";
    case Rejection::kBadSender: return "bad_sender";
    case Rejection::kBadSignature: return "bad_signature";
    case Rejection::kStale: return "stale";
    case Rejection::kForgedIdentity: return "forged_identity";
    case Rejection::kMalformed: return "malformed";
    case Rejection::kHashMismatch: return "hash_mismatch";
  }
  return "unknown";
}

Result<ClusterKey> ClusterKey::fromFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error(ErrorCode::kIo, fmt::format("cannot read cluster secret file {}", path));
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t start = 0;
  while (start < s.size() && std::isspace(static_cast<unsigned char>(s[start]))) ++start;
  s.erase(0, start);
  if (s.size() < 16) {
    return Error(ErrorCode::kInvalidArgument,
                 fmt::format("cluster secret file {} holds {} bytes; at least 16 are needed "
                             "(e.g. `openssl rand -hex 32 > FILE`)",
                             path, s.size()));
  }
  return ClusterKey(std::move(s));
}

std::string encodeEnvelope(const ClusterKey& key, const Envelope& e) {
  std::string out;
  out.reserve(kHeaderFixed + e.sender.size() + kAfterSender + e.payload.size() + kMacBytes);
  out.append("TRN");
  out.push_back(static_cast<char>(kEnvelopeVersion));
  out.push_back(static_cast<char>(e.kind));
  out.push_back(static_cast<char>(e.sender.size()));
  out.append(e.sender);
  putBigEndian(out, static_cast<uint64_t>(e.sentAtMs), 8);
  putBigEndian(out, e.payload.size(), 4);
  out.append(e.payload);
  uint8_t m[kMacBytes];
  mac(key, reinterpret_cast<const uint8_t*>(out.data()), out.size(), m);
  out.append(reinterpret_cast<const char*>(m), kMacBytes);
  return out;
}

Decoded decodeEnvelope(const ClusterKey& key, std::span<const uint8_t> b, size_t maxBytes) {
  Decoded d;
  auto refuse = [&](Rejection r, std::string msg) {
    d.refused = Refused{r, std::move(msg)};
    return d;
  };
  if (b.size() > maxBytes) {
    return refuse(Rejection::kOversized,
                  fmt::format("message of {} bytes exceeds the limit of {}", b.size(), maxBytes));
  }
  if (b.size() < 3) return refuse(Rejection::kTruncated, "message shorter than its magic");
  if (b[0] != 'T' || b[1] != 'R' || b[2] != 'N') {
    return refuse(Rejection::kBadMagic, "not a tern cluster message (bad magic)");
  }
  if (b.size() < kHeaderFixed) return refuse(Rejection::kTruncated, "header truncated");
  if (b[3] != kEnvelopeVersion) {
    return refuse(Rejection::kUnknownVersion,
                  fmt::format("format version {} is not supported (this node speaks {})", b[3],
                              kEnvelopeVersion));
  }
  uint8_t kind = b[4];
  if (kind < 1 || kind > kMaxMessageKind) {
    return refuse(Rejection::kUnknownKind, fmt::format("unknown message kind {}", kind));
  }
  size_t senderLen = b[5];
  size_t fixed = kHeaderFixed + senderLen + kAfterSender;
  if (b.size() < fixed + kMacBytes) return refuse(Rejection::kTruncated, "header truncated");
  std::string_view sender(reinterpret_cast<const char*>(b.data() + kHeaderFixed), senderLen);
  if (!isNodeName(sender)) return refuse(Rejection::kBadSender, "invalid sender node id");
  const uint8_t* p = b.data() + kHeaderFixed + senderLen;
  int64_t sentAt = static_cast<int64_t>(getBigEndian(p, 8));
  uint64_t payloadLen = getBigEndian(p + 8, 4);
  if (payloadLen != b.size() - fixed - kMacBytes) {
    return refuse(payloadLen > b.size() - fixed - kMacBytes ? Rejection::kTruncated
                                                            : Rejection::kMalformed,
                  fmt::format("payload length {} does not match the message ({} bytes)",
                              payloadLen, b.size()));
  }
  uint8_t m[kMacBytes];
  mac(key, b.data(), b.size() - kMacBytes, m);
  if (CRYPTO_memcmp(m, b.data() + b.size() - kMacBytes, kMacBytes) != 0) {
    return refuse(Rejection::kBadSignature,
                  fmt::format("signature of a message claiming to be from \"{}\" does not verify "
                              "with the cluster secret",
                              sender));
  }
  d.ok = true;
  d.envelope.kind = static_cast<MessageKind>(kind);
  d.envelope.sender = std::string(sender);
  d.envelope.sentAtMs = sentAt;
  d.envelope.payload.assign(reinterpret_cast<const char*>(b.data() + fixed), payloadLen);
  return d;
}

}  // namespace tern::cluster
