#pragma once
// Forwarded calls (docs/design/cluster.md): calls this node sends to peers (routing and
// spill through exec::Invoker::setRemote, workflow tasks and fused units on named nodes)
// with their retries and timeouts, and calls peers send here, over a direct link to a peer
// of the same site (PeerLinks) or NATS request/reply. Internal to src/cluster (see
// cluster_context.h).
//
// Calls waiting for a reply live in a table under one mutex, which is never held while a
// message is sent; a thread of its own fails calls past their deadline.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "cluster/cluster_context.h"
#include "cluster/membership.h"
#include "cluster/peer_link.h"
#include "cluster/policy.h"
#include "exec/invoker.h"
#include "util/thread_annotations.h"

namespace tern::cluster {

class Forwarding {
 public:
  Forwarding(ClusterContext& c, const MemberView& view);
  ~Forwarding();
  Forwarding(const Forwarding&) = delete;
  Forwarding& operator=(const Forwarding&) = delete;

  // Opens the listener for direct links when the options ask for one (before the NATS
  // connection: a bad address fails the start). Errors: kInvalidArgument.
  Result<void> listen();
  // The HOST:PORT announced for direct links; empty when there is none.
  const std::string& directAddress() const { return directAddress_; }
  // Subscribes to calls and replies on NATS and starts the timeout thread. Errors:
  // kInvalidArgument (the library refused a subscription).
  Result<void> start();
  // Takes no more calls from peers (NATS subscription, direct links).
  void stopTaking();
  // Stops the timeout thread, waits (up to 30 s) for the calls running here for peers,
  // and answers the calls still waiting for a peer with kUnavailable. False when calls
  // for peers were still running: their replies need the connection, which then stays.
  bool stop();
  // Frees the subscriptions; the connection is still open. (The destructor only joins
  // the thread: Cluster::stop decides what is freed.)
  void release();

  bool offer(exec::InvokeInput& input, std::function<void(exec::InvokeOutput)>& done,
             exec::Elsewhere why);
  void invokeOn(const std::string& node, exec::InvokeInput input,
                std::function<void(exec::InvokeOutput)> done);
  void segmentOn(const std::string& node, const std::string& first, std::string segment,
                 std::function<void(exec::InvokeOutput)> done);

 private:
  // A call forwarded by this node, waiting for its reply.
  struct Pending {
    std::string function;
    std::shared_ptr<const std::string> request;  // the envelope, sent again to the next peer
    std::vector<std::string> tried;
    std::string target;
    CapacityNeed need = CapacityNeed::kAny;
    std::chrono::steady_clock::time_point deadline;
    std::function<void(exec::InvokeOutput)> done;
    std::optional<Error> lastError;
    bool pinned = false;  // only `target` may take it (a fused unit)
  };
  // Whether a request too large for a cluster message is declined (the local answer
  // stands) or answered with kBodyTooLarge.
  enum class Oversize { kDecline, kAnswer };

  // A segment request (kSegmentRequest: `input.body` is the unit) goes to `target` only.
  bool forward(exec::InvokeInput& input, std::function<void(exec::InvokeOutput)>& done,
               CapacityNeed need, std::string target, Oversize oversize,
               MessageKind kind = MessageKind::kInvokeRequest);
  // Sends call `id` to `target`, or (empty) to the best-ranked peer not tried yet.
  void sendNext(uint64_t id, std::string target = {});
  void complete(uint64_t id, exec::InvokeOutput out);
  // The direct-link address of `target` when calls to it may take one: same site, and it
  // announces links protected as this node's are (both TLS or both plain; a mismatch is
  // logged once per peer). Empty otherwise (NATS).
  std::string directAddressOf(const std::string& target);
  void onReply(natsMsg* msg);
  void acceptReply(uint64_t id, std::span<const uint8_t> bytes);
  void onRequest(natsMsg* msg);
  // Runs a call from a peer (either path) and hands the signed reply to `send`; `replyLimit`
  // is the largest message the path carries. False when the message was refused.
  bool serveCall(std::span<const uint8_t> bytes, std::string_view where,
                 const std::function<bool(const Envelope&)>& checkSender, size_t replyLimit,
                 std::function<void(std::string)> send);
  void reapTimeouts();
  void timeoutLoop();

  ClusterContext& c_;
  const MemberView& view_;

  // Direct links to and from the peers of this site (null without --direct-listen), and
  // the address announced for them.
  std::unique_ptr<PeerLinks> links_;
  std::string directAddress_;
  // Peers whose direct links are not protected as this node's are, already logged.
  Mutex mismatchMu_;
  std::set<std::string> mismatched_ TERN_GUARDED_BY(mismatchMu_);
  natsSubscription* invokeSub_ = nullptr;
  natsSubscription* replySub_ = nullptr;

  Mutex pendingMu_;
  std::map<uint64_t, Pending> pending_ TERN_GUARDED_BY(pendingMu_);
  uint64_t nextRequest_ TERN_GUARDED_BY(pendingMu_) = 1;

  // Calls served for peers whose reply is not yet sent; stop() waits for them.
  Mutex servingMu_;
  std::condition_variable servedAll_;
  uint64_t serving_ TERN_GUARDED_BY(servingMu_) = 0;

  std::thread timeoutThread_;

  Counter* forwardedOk_ = nullptr;
  Counter* sentDirect_ = nullptr;
  Counter* sentNats_ = nullptr;
  Counter* forwardedFailed_ = nullptr;
  Counter* servedForPeers_ = nullptr;
};

}  // namespace tern::cluster
