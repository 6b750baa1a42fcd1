#pragma once
// What the node's JetStream key-value users share (the cluster's tern_nodes, tern_functions
// and tern_modules, the tokens' tern_tokens, the stream apps' tern_apps): binding a bucket
// that may not exist yet, and turning a failed libnats
// call into tern's error kinds. Included by .cpp files only: it brings nats.h.

#include <nats/nats.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "util/error.h"
#include "util/thread_annotations.h"

namespace tern::cluster {

// A failed libnats call as an error: an unreachable or silent server is kUnavailable, a
// message larger than the server takes kBodyTooLarge, anything JetStream refused kIo
// (with JetStream's error code when it gave one). `what` starts the message; `url` names
// the server.
Error natsFailure(std::string_view what, std::string_view url, natsStatus s,
                  jsErrCode err = static_cast<jsErrCode>(0));

// How a bucket is made when it does not exist.
struct KvBucketSpec {
  const char* name = nullptr;
  uint8_t history = 1;  // values kept per key
  int64_t ttlMs = 0;    // entries expire this long after their last write (0: never)
};

// Binds the bucket, creating it (file storage, one replica) only when JetStream says it
// has none of that name; any other failure to bind (JetStream silent, permission refused)
// is an error and nothing is created. Errors: natsFailure's, as "<what>: bucket NAME ..."
// ("bucket NAME ..." when `what` is empty).
Result<kvStore*> bindOrCreateBucket(jsCtx* js, const KvBucketSpec& spec, std::string_view what,
                                    std::string_view url);

// A bucket bound on first use and shared by threads from then on; another thread's
// concurrent bind is dropped. No lock is held while binding (a JetStream request).
class LazyBucket {
 public:
  explicit LazyBucket(KvBucketSpec spec) : spec_(spec) {}
  ~LazyBucket();
  LazyBucket(const LazyBucket&) = delete;
  LazyBucket& operator=(const LazyBucket&) = delete;

  // The bucket (bound, or created, now if it was not yet). The caller checks the
  // connection first: a bind while NATS is away waits for the request timeout.
  Result<kvStore*> get(jsCtx* js, std::string_view what, std::string_view url) TERN_EXCLUDES(mu_);
  // The bucket if bound, else null.
  kvStore* bound() TERN_EXCLUDES(mu_);

 private:
  const KvBucketSpec spec_;
  Mutex mu_;
  kvStore* bucket_ TERN_GUARDED_BY(mu_) = nullptr;
};

// One write to a bucket as a watch delivers it.
struct KvChange {
  std::string key;
  std::string value;      // empty for a delete
  bool deleted = false;   // a delete or purge of the key
  uint64_t revision = 0;  // the write's sequence in the bucket's stream
};

// A watch of every key of a bucket: each key's last value, then a marker that says all of
// them have come, then every write as it is made. The consumer is the one libnats's
// kvWatcher uses (ordered, pushed, last value per key), which libnats re-creates by itself
// on every reconnect and after a gap. tern does not use kvWatcher (nor kvStore_Keys, which
// opens one) because closing one deletes its consumer, and libnats 3.4 reads the
// consumer's name for that while the thread re-creating the consumer may free it: a use
// after free when a watch is replaced just as NATS comes back (docs/design/cluster.md,
// "Watching a bucket"). A KvWatch closes without deleting its consumer; the server removes
// an ephemeral consumer that has no subscriber a few seconds later. Used by one thread at
// a time.
class KvWatch {
 public:
  struct Options {
    bool ignoreDeletes = false;  // deletes and purges are not delivered
  };
  // Starts the watch of `kv`, a bucket bound through `js` on the connection `nc`. NATS_OK
  // and the watch in `out`, or libnats's status (`out` empty).
  static natsStatus open(std::unique_ptr<KvWatch>& out, natsConnection* nc, jsCtx* js,
                         kvStore* kv, Options options);
  static natsStatus open(std::unique_ptr<KvWatch>& out, natsConnection* nc, jsCtx* js,
                         kvStore* kv) {
    return open(out, nc, js, kv, Options{});
  }
  ~KvWatch();
  KvWatch(const KvWatch&) = delete;
  KvWatch& operator=(const KvWatch&) = delete;

  // Waits at most `waitMs` for what comes next. NATS_OK with a change in `out`; NATS_OK
  // with `out` empty: every key the bucket held when the watch began has been delivered
  // (once per watch); NATS_TIMEOUT: nothing came; anything else: the watch is broken (the
  // connection closed, say) and a new one is needed.
  natsStatus next(std::optional<KvChange>& out, int64_t waitMs);

 private:
  KvWatch(natsConnection* nc, natsSubscription* sub, std::string prefix, Options options)
      : nc_(nc), sub_(sub), prefix_(std::move(prefix)), options_(options) {}

  natsConnection* nc_;
  natsSubscription* sub_;
  std::string prefix_;  // "$KV.<bucket>.", the subjects' part before the key
  Options options_;
  bool caughtUp_ = false;   // the marker was returned
  bool markerDue_ = false;  // the marker comes next (the bucket was empty, or its last key came)
};

}  // namespace tern::cluster
