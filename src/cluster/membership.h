#pragma once
// Membership: what a node announces about itself in every heartbeat (NodeInfo), and each
// node's view of the others (MemberView), kept by the time of their last heartbeat on an
// injected clock. A node that stays silent for the TTL drops out of the view.

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "util/error.h"

#include "util/thread_annotations.h"

namespace tern::cluster {

enum class Tier : uint8_t { kEdge, kCloud };
const char* tierName(Tier t);
Result<Tier> parseTier(std::string_view s);

// A node's place: its site, tier and labels ("KEY=VALUE").
struct NodeIdentity {
  std::string site;
  Tier tier = Tier::kEdge;
  std::vector<std::string> labels;
};

struct NodeLoad {
  uint32_t slots = 0;     // worker slots
  uint32_t running = 0;   // slots busy
  uint32_t queued = 0;    // requests waiting for a slot
  uint64_t rejected = 0;  // refused since start
  // Free capacity as peers judge it: slots neither busy nor owed to waiting requests.
  int64_t spare() const { return int64_t{slots} - running - queued; }
};

// What protects a node's direct links (peer_link.h, docs/design/tls.md).
enum class LinkSecurity : uint8_t { kPlain, kTls };

struct NodeInfo {
  std::string id;
  NodeIdentity identity;
  std::string httpAddress;  // HOST:PORT of the node's HTTP API
  // HOST:PORT where the node accepts direct links from peers of its site (peer_link.h);
  // empty when it does not.
  std::string directAddress;
  // Whether those links are mutual TLS (heartbeat field "direct_tls") or plain ("direct").
  // A node opens links only to peers whose links are like its own.
  LinkSecurity directSecurity = LinkSecurity::kPlain;
  NodeLoad load;
  // The functions this node serves and their invocation rate (per second) over the last
  // heartbeat interval.
  std::map<std::string, double> functions;
  int64_t startedAtMs = 0;
  uint64_t sequence = 0;  // heartbeats sent since start
};

// Splits "HOST:PORT" or "[V6]:PORT" into a host and a port (0..65535). Errors:
// kInvalidArgument naming what is wrong.
Result<std::pair<std::string, uint16_t>> splitHostPort(std::string_view address);

std::string encodeNodeInfo(const NodeInfo& info);
// Parses and checks a heartbeat payload. Errors: kInvalidArgument, naming the bad field.
Result<NodeInfo> decodeNodeInfo(std::string_view payload);

enum class MemberState : uint8_t {
  kSelf,
  kAlive,    // heard from within two heartbeat intervals
  kSuspect,  // silent for longer, but not yet for the TTL
};
const char* memberStateName(MemberState s);

struct Member {
  NodeInfo info;
  int64_t lastSeenMs = 0;  // on the view's clock
  MemberState state = MemberState::kAlive;
};

// The nodes a node knows of. Thread-safe. Time is passed in (the caller's clock), so
// expiry is tested without sleeping.
class MemberView {
 public:
  MemberView(std::string selfId, int64_t heartbeatMs, int64_t ttlMs)
      : selfId_(std::move(selfId)), heartbeatMs_(heartbeatMs), ttlMs_(ttlMs) {}

  // Records a heartbeat. A heartbeat older (by sequence, same start) than the last one
  // seen from that node is ignored.
  void observe(NodeInfo info, int64_t nowMs);
  // Forgets nodes silent for the TTL; returns their ids.
  std::vector<std::string> expire(int64_t nowMs);
  // Every known node (self first when set with setSelf), states as of `nowMs`.
  std::vector<Member> members(int64_t nowMs) const;
  void setSelf(NodeInfo info, int64_t nowMs);
  // The node's record as of `nowMs`, when it is in the view (not expired).
  std::optional<Member> find(const std::string& id, int64_t nowMs) const;
  size_t size() const;

 private:
  // A peer's record with its state as of `nowMs`.
  Member asOf(const Member& m, int64_t nowMs) const;

  const std::string selfId_;
  const int64_t heartbeatMs_, ttlMs_;
  mutable Mutex mu_;
  std::map<std::string, Member> members_ TERN_GUARDED_BY(mu_);
};

}  // namespace tern::cluster
