#pragma once
// Membership on NATS: this node's heartbeats (NodeInfo with its load, on
// `tern.v1.hb.NODE`), the peers' heartbeats into the MemberView, and the node's record in
// the `tern_nodes` bucket, from which a starting node learns who is there before the
// first heartbeats arrive. Internal to src/cluster (see cluster_context.h).
//
// Two threads: the beat thread publishes a heartbeat every interval (a core NATS publish,
// buffered by the library) and expires silent peers; the record thread binds the bucket
// and writes the latest heartbeat to it. A slow or absent JetStream delays only the
// record thread: heartbeats keep their interval.

#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>

#include "cluster/cluster_context.h"
#include "cluster/membership.h"
#include "util/thread_annotations.h"

namespace tern::cluster {

class Heartbeats {
 public:
  explicit Heartbeats(ClusterContext& c);
  ~Heartbeats();
  Heartbeats(const Heartbeats&) = delete;
  Heartbeats& operator=(const Heartbeats&) = delete;

  // Subscribes to the peers' heartbeats and starts both threads; `directAddress` is
  // announced for direct links (empty: none). Errors: kInvalidArgument (the library
  // refused the subscription).
  Result<void> start(std::string directAddress);
  // Stops both threads (the context's `stopping` is set). The subscription and the bucket
  // handle stay until release().
  void stop();
  // Frees the subscription and the bucket handle; the connection is still open.
  void release();

  // A peer's heartbeat (`live`: as published; otherwise read from the bucket).
  void onHeartbeat(std::string_view subject, std::span<const uint8_t> bytes, bool live);

  const MemberView& view() const { return view_; }

 private:
  NodeInfo selfInfo(int64_t nowMs);
  void beatLoop();
  void recordLoop();
  void loadMembersFromBucket(kvStore* nodes);

  ClusterContext& c_;
  MemberView view_;
  std::string directAddress_;
  Gauge* membersGauge_ = nullptr;
  Counter* recordsWritten_ = nullptr;
  Counter* recordsFailed_ = nullptr;
  natsSubscription* sub_ = nullptr;

  // Beat thread only.
  uint64_t sequence_ = 0;
  int64_t startedAtMs_ = 0;
  std::map<std::string, uint64_t> lastTotals_;  // invocations per function at the last beat
  int64_t lastTotalsMs_ = 0;

  // The latest heartbeat not yet written to the bucket, handed from the beat thread to
  // the record thread.
  Mutex recordMu_;
  std::condition_variable recordReady_;
  std::string record_ TERN_GUARDED_BY(recordMu_);  // empty: nothing new

  kvStore* nodesKv_ = nullptr;  // record thread only; freed by release()
  std::thread beatThread_, recordThread_;
};

}  // namespace tern::cluster
