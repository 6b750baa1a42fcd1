#pragma once
// The wire format of every message between tern nodes (docs/design/cluster.md, "Messages"):
// a small binary envelope that names the sending node and the kind of message, carries a
// payload, and ends with an HMAC-SHA256 over everything before it, keyed with the
// cluster secret. Decoding checks every length before reading and names what was wrong;
// nothing in a peer message is trusted before the MAC verifies.
//
//   offset  size  field
//   0       3     magic "TRN"
//   3       1     format version (kEnvelopeVersion)
//   4       1     kind (MessageKind)
//   5       1     sender length S (1..kMaxNodeIdBytes)
//   6       S     sender node id ([a-z0-9-])
//   6+S     8     sent-at, Unix milliseconds, big-endian
//   14+S    4     payload length P, big-endian
//   18+S    P     payload (JSON, or JSON + raw bytes for invocations)
//   18+S+P  32    HMAC-SHA256(secret, bytes 0 .. 18+S+P)

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "util/error.h"
#include "util/metrics.h"
#include "util/names.h"

namespace tern::cluster {

inline constexpr uint8_t kEnvelopeVersion = 1;
inline constexpr size_t kMaxNodeIdBytes = 63;
inline constexpr size_t kMacBytes = 32;

enum class MessageKind : uint8_t {
  kHeartbeat = 1,       // membership and load (node_info.h)
  kFunctionRecord = 2,  // a registry entry (function_record.h)
  kInvokeRequest = 3,   // a forwarded call
  kInvokeReply = 4,     // its answer
  kAsyncJob = 5,        // an async job in the TERN_ASYNC stream (async_job.h)
  kAsyncRecord = 6,     // an async job's record in the tern_jobs bucket (async_job.h)
  kSegmentRequest = 7,  // a fused unit of a workflow, answered by a kInvokeReply
};
inline constexpr uint8_t kMaxMessageKind = 7;

// Why a peer message was refused; each reason is a label of tern_cluster_rejected_total.
enum class Rejection : uint8_t {
  kTruncated,
  kOversized,
  kBadMagic,
  kUnknownVersion,
  kUnknownKind,
  kBadSender,
  kBadSignature,
  kStale,             // sent-at too far from this node's clock (a replay or a bad clock)
  kForgedIdentity,    // the sender is not who the subject or the record says
  kMalformed,         // the payload does not parse or has bad fields
  kHashMismatch,      // module bytes that do not match the registry entry's hash
};
inline constexpr size_t kRejectionKinds = 11;
const char* rejectionName(Rejection r);
// Registers tern_cluster_rejected_total{reason} (one series per Rejection) in `metrics`.
void rejectionCounters(MetricsRegistry& metrics, Counter* (&out)[kRejectionKinds]);

// Node ids follow isNodeName (util/names.h): 1..63 characters a-z, 0-9, '-', usable as a
// NATS subject token.

struct Envelope {
  MessageKind kind = MessageKind::kHeartbeat;
  std::string sender;
  int64_t sentAtMs = 0;
  std::string payload;
};

// The cluster secret: the HMAC key of every envelope.
class ClusterKey {
 public:
  explicit ClusterKey(std::string secret) : secret_(std::move(secret)) {}
  // Reads a key file: at least 16 bytes after trimming whitespace. Errors: kIo,
  // kInvalidArgument.
  static Result<ClusterKey> fromFile(const std::string& path);
  const std::string& bytes() const { return secret_; }

 private:
  std::string secret_;
};

std::string encodeEnvelope(const ClusterKey& key, const Envelope& e);

// A decoding failure: the reason (for the counter) and a message for the log.
struct Refused {
  Rejection reason;
  std::string message;
};

// Decodes and authenticates `bytes` (at most `maxBytes`). Returns the envelope or why it
// was refused. Does not judge the sender or the time: see checkPeer.
struct Decoded {
  bool ok = false;
  Envelope envelope;
  Refused refused{Rejection::kMalformed, ""};
};
Decoded decodeEnvelope(const ClusterKey& key, std::span<const uint8_t> bytes, size_t maxBytes);

}  // namespace tern::cluster
