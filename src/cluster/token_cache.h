#pragma once
// A node's copy of the cluster's token records (docs/design/tokens.md, "In a cluster"),
// so that a token check is a lookup in memory rather than a JetStream request. A watch of
// the tern_tokens bucket fills it (cluster/jetstream_token_store.h); this class knows
// nothing of NATS: revisions (the bucket's sequence numbers) and times (steady
// milliseconds) are given, so tests drive it from tables.
//
// When the copy may be used: once loaded, for `maxStaleness` after the last moment it was
// known to be current, that is a moment at which the bucket held nothing the watch had not
// delivered (load, confirm). Past that the copy cannot be trusted to know of a
// revocation, and find() and live() refuse with kUnavailable (a 503) instead of answering
// from it. Thread-safe.

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "store/token_store.h"
#include "util/error.h"
#include "util/thread_annotations.h"

namespace tern::cluster {

class TokenCache {
 public:
  // A record and the revision (bucket sequence) it was written at.
  using Entry = std::pair<store::TokenRecord, uint64_t>;

  explicit TokenCache(std::chrono::milliseconds maxStaleness) : maxStalenessMs_(maxStaleness.count()) {}

  // A record written at `revision`. A record held at a later revision stays, and a revoked
  // record stays revoked (tern never un-revokes), whatever order writes arrive in.
  void apply(store::TokenRecord record, uint64_t revision) TERN_EXCLUDES(mu_);
  // The watch delivered the bucket's entry at `revision` (a record or any other key).
  void delivered(uint64_t revision) TERN_EXCLUDES(mu_);
  // A new watch's complete first delivery: every record in the bucket, and `lastSeq`, the
  // bucket's last sequence asked at `askedAtMs` before that watch began. Records held and
  // not in `records` stay (records are never deleted). Current as of `askedAtMs`.
  void load(std::vector<Entry> records, uint64_t lastSeq, int64_t askedAtMs) TERN_EXCLUDES(mu_);
  // The bucket's last sequence was `lastSeq` when asked at `askedAtMs`: the copy is current
  // as of then when the watch has delivered everything up to it. Returns whether it had.
  bool confirm(uint64_t lastSeq, int64_t askedAtMs) TERN_EXCLUDES(mu_);
  // Why the copy could not be loaded or confirmed lately (in the refusals' message).
  void noteFailure(std::string why) TERN_EXCLUDES(mu_);

  // The record with this id, revoked or not; nullopt when the copy has none. Errors:
  // kUnavailable when the copy is not usable at `nowMs`.
  Result<std::optional<store::TokenRecord>> find(std::string_view id, int64_t nowMs) const
      TERN_EXCLUDES(mu_);
  // The records not revoked, by name. Errors: as find.
  Result<std::vector<store::TokenRecord>> live(int64_t nowMs) const TERN_EXCLUDES(mu_);

  // Whether the copy may be used at `nowMs`.
  bool usable(int64_t nowMs) const TERN_EXCLUDES(mu_);
  // The highest revision the watch has delivered or a load accounted for.
  uint64_t deliveredThrough() const TERN_EXCLUDES(mu_);

 private:
  Result<void> checkUsable(int64_t nowMs) const TERN_REQUIRES(mu_);
  void applyLocked(store::TokenRecord record, uint64_t revision) TERN_REQUIRES(mu_);

  const int64_t maxStalenessMs_;
  mutable Mutex mu_;
  std::map<std::string, Entry, std::less<>> records_ TERN_GUARDED_BY(mu_);  // by id
  bool loaded_ TERN_GUARDED_BY(mu_) = false;
  uint64_t deliveredThrough_ TERN_GUARDED_BY(mu_) = 0;
  int64_t confirmedMs_ TERN_GUARDED_BY(mu_) = 0;
  std::string lastFailure_ TERN_GUARDED_BY(mu_);
};

}  // namespace tern::cluster
