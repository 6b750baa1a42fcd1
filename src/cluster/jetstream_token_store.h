#pragma once
// A cluster's tokens (docs/design/tokens.md) in the JetStream key-value bucket tern_tokens,
// so that a token made on any node is valid on every node. Keys: tok.<id> =
// tokenRecordJson(record), and name.<name> = <id> for each token not revoked, created with
// the bucket's create (which fails when the key exists), so that two nodes cannot give one
// name to two live tokens.
//
// Checks never wait for NATS: find() and list() answer from this node's copy of the
// records (cluster/token_cache.h), loaded when the node connects and kept current by a
// watch of the bucket on a thread of its own, which also confirms once per
// `confirmInterval` that the copy has everything the bucket holds (one stream-info
// request). A copy not confirmed for `maxStaleness` is not used: checks of scoped tokens are
// refused with kUnavailable until it is current again. After a reconnect, a broken watch or
// one that falls behind, the thread loads the whole bucket again with a new watch.
//
// create() and revoke() write the bucket (a few key-value requests, each bounded by the
// request timeout; kUnavailable at once while NATS is not connected) and update the copy.
// On a NATS connection of its own, made in the background while NATS is unreachable.

#include <chrono>
#include <condition_variable>
#include <memory>
#include <string>
#include <thread>

#include "cluster/nats_security.h"
#include "cluster/token_cache.h"
#include "store/token_store.h"
#include "util/metrics.h"
#include "util/thread_annotations.h"

namespace tern::cluster {

struct JetStreamTokenOptions {
  std::string url;              // nats://HOST:PORT
  std::string jetStreamDomain;  // empty: the account's own JetStream
  std::chrono::milliseconds requestTimeout{5000};
  NatsSecurity nats;            // TLS, client certificate, credentials (--nats-*)
  // How long after the copy was last known current it still answers (ternd
  // --token-max-staleness-ms): the longest a revocation made elsewhere may go unseen here.
  std::chrono::milliseconds maxStaleness{30000};
  // How often the copy is confirmed current.
  std::chrono::milliseconds confirmInterval{1000};
};

class JetStreamTokenStore final : public store::TokenStore {
 public:
  // Connects (in the background while NATS is unreachable) and starts the watch thread.
  // Metrics: tern_tokens_copy_loads_total{result}, tern_tokens_copy_confirms_total{result},
  // tern_tokens_copy_usable. Errors: kInvalidArgument (URL, timeouts), kUnavailable.
  static Result<std::unique_ptr<JetStreamTokenStore>> connect(JetStreamTokenOptions options,
                                                              MetricsRegistry& metrics);
  ~JetStreamTokenStore() override;

  Result<void> create(const store::TokenRecord& record) override;
  Result<std::optional<store::TokenRecord>> revoke(std::string_view name, int64_t nowMs) override;
  // From the copy. Errors: kUnavailable while the copy may not be used.
  Result<std::vector<store::TokenRecord>> list() override;
  Result<std::optional<store::TokenRecord>> find(std::string_view id) override;

  // Stops the watch thread and closes the connection; calls after it fail. Idempotent.
  void stop() TERN_EXCLUDES(mu_);

  struct Connection;  // the libnats handles, in the .cpp

 private:
  JetStreamTokenStore(std::unique_ptr<Connection> nats, MetricsRegistry& metrics);

  // The watch thread: load, follow, confirm, load again when needed.
  void watchLoop();
  bool stopping() TERN_EXCLUDES(mu_);
  // Waits up to `d`, or until stop().
  void pause(std::chrono::milliseconds d) TERN_EXCLUDES(mu_);

  std::unique_ptr<Connection> nats_;
  TokenCache cache_;
  Counter& loadsOk_;
  Counter& loadsFailed_;
  Counter& confirmsCurrent_;
  Counter& confirmsBehind_;
  Counter& confirmsFailed_;
  Gauge& usable_;

  Mutex mu_;
  std::condition_variable wake_;
  bool stopping_ TERN_GUARDED_BY(mu_) = false;
  std::thread watcher_;
};

}  // namespace tern::cluster
