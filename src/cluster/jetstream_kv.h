#pragma once
// What the node's JetStream key-value users share (the cluster's tern_nodes, tern_functions
// and tern_modules, the tokens' tern_tokens, the stream apps' tern_apps): binding a bucket
// that may not exist yet, and turning a failed libnats
// call into tern's error kinds. Included by .cpp files only: it brings nats.h.

#include <nats/nats.h>

#include <cstdint>
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

}  // namespace tern::cluster
