#include "cluster/token_cache.h"

#include <fmt/format.h>

#include <algorithm>

namespace tern::cluster {

void TokenCache::applyLocked(store::TokenRecord record, uint64_t revision) {
  auto it = records_.find(record.id);
  if (it == records_.end()) {
    std::string id = record.id;
    records_.emplace(std::move(id), Entry{std::move(record), revision});
    return;
  }
  auto& [held, heldRevision] = it->second;
  if (revision <= heldRevision) {
    // An older write arriving late; it may only add a revocation the held one lacks.
    if (held.revokedMs == 0) held.revokedMs = record.revokedMs;
    return;
  }
  int64_t revoked = held.revokedMs;
  held = std::move(record);
  heldRevision = revision;
  if (held.revokedMs == 0) held.revokedMs = revoked;
}

void TokenCache::apply(store::TokenRecord record, uint64_t revision) {
  MutexLock lock(mu_);
  applyLocked(std::move(record), revision);
}

void TokenCache::delivered(uint64_t revision) {
  MutexLock lock(mu_);
  deliveredThrough_ = std::max(deliveredThrough_, revision);
}

void TokenCache::load(std::vector<Entry> records, uint64_t lastSeq, int64_t askedAtMs) {
  MutexLock lock(mu_);
  uint64_t through = lastSeq;
  for (auto& [record, revision] : records) {
    through = std::max(through, revision);
    applyLocked(std::move(record), revision);
  }
  // A new watch counts from its own first delivery: after a bucket was made again its
  // sequences start over, and the old watch's revisions say nothing about it.
  deliveredThrough_ = through;
  loaded_ = true;
  confirmedMs_ = std::max(confirmedMs_, askedAtMs);
  lastFailure_.clear();
}

bool TokenCache::confirm(uint64_t lastSeq, int64_t askedAtMs) {
  MutexLock lock(mu_);
  if (!loaded_ || deliveredThrough_ < lastSeq) return false;
  confirmedMs_ = std::max(confirmedMs_, askedAtMs);
  lastFailure_.clear();
  return true;
}

void TokenCache::noteFailure(std::string why) {
  MutexLock lock(mu_);
  lastFailure_ = std::move(why);
}

Result<void> TokenCache::checkUsable(int64_t nowMs) const {
  std::string why = lastFailure_.empty() ? std::string() : fmt::format(" ({})", lastFailure_);
  if (!loaded_) {
    return Error(ErrorCode::kUnavailable,
                 fmt::format("tokens: this node has not loaded the cluster's tokens yet{}; scoped "
                             "tokens are refused until it has",
                             why));
  }
  int64_t age = nowMs - confirmedMs_;
  if (age > maxStalenessMs_) {
    return Error(ErrorCode::kUnavailable,
                 fmt::format("tokens: this node's copy of the cluster's tokens was last known "
                             "current {} ms ago, more than the {} ms it may be behind{}; scoped "
                             "tokens are refused until it is current again",
                             age, maxStalenessMs_, why));
  }
  return {};
}

bool TokenCache::usable(int64_t nowMs) const {
  MutexLock lock(mu_);
  return checkUsable(nowMs).ok();
}

uint64_t TokenCache::deliveredThrough() const {
  MutexLock lock(mu_);
  return deliveredThrough_;
}

Result<std::optional<store::TokenRecord>> TokenCache::find(std::string_view id, int64_t nowMs) const {
  MutexLock lock(mu_);
  if (auto ok = checkUsable(nowMs); !ok.ok()) return ok.error();
  auto it = records_.find(id);
  if (it == records_.end()) return std::optional<store::TokenRecord>();
  return std::optional<store::TokenRecord>(it->second.first);
}

Result<std::vector<store::TokenRecord>> TokenCache::live(int64_t nowMs) const {
  std::vector<store::TokenRecord> out;
  {
    MutexLock lock(mu_);
    if (auto ok = checkUsable(nowMs); !ok.ok()) return ok.error();
    for (const auto& [id, entry] : records_) {
      if (entry.first.revokedMs == 0) out.push_back(entry.first);
    }
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return out;
}

}  // namespace tern::cluster
