// A node's copy of the cluster's tokens (cluster/token_cache.h): when it may answer a check
// (loaded, and known current within the maximum staleness), and how writes that arrive out
// of order or twice are merged. Times and revisions are given: no NATS, no clock.

#include "cluster/token_cache.h"

#include <gtest/gtest.h>

namespace tern::cluster {
namespace {

constexpr int64_t kMaxStalenessMs = 30000;

store::TokenRecord record(const std::string& id, const std::string& name, int64_t revokedMs = 0) {
  store::TokenRecord r;
  r.id = id;
  r.name = name;
  r.hash = std::string(64, 'a');
  r.scopes = {"read"};
  r.createdMs = 1;
  r.revokedMs = revokedMs;
  return r;
}

TEST(TokenCacheTest, AnswersOnlyWhileKnownCurrentWithinTheStalenessFromATable) {
  // What the copy went through (-1: never loaded), and when it is asked.
  struct Case {
    int64_t loadedAtMs;                // -1: not loaded
    std::optional<int64_t> confirmAt;  // a confirmation that the watch is complete
    int64_t askAtMs;
    bool answers;
  };
  const Case cases[] = {
      {-1, std::nullopt, 0, false},                      // nothing loaded yet
      {1000, std::nullopt, 1000, true},                  // just loaded
      {1000, std::nullopt, 1000 + kMaxStalenessMs, true},  // at the limit
      {1000, std::nullopt, 1001 + kMaxStalenessMs, false},  // past it: 503, not a stale answer
      {1000, 20000, 20000 + kMaxStalenessMs, true},      // a confirmation moves the limit
      {1000, 20000, 20001 + kMaxStalenessMs, false},
  };
  for (size_t i = 0; i < std::size(cases); ++i) {
    const Case& c = cases[i];
    TokenCache cache{std::chrono::milliseconds(kMaxStalenessMs)};
    if (c.loadedAtMs >= 0) cache.load({{record("00000000000000a1", "ops"), 5}}, 5, c.loadedAtMs);
    if (c.confirmAt) {
      EXPECT_TRUE(cache.confirm(5, *c.confirmAt)) << "case " << i;
    }
    auto found = cache.find("00000000000000a1", c.askAtMs);
    EXPECT_EQ(found.ok(), c.answers) << "case " << i;
    EXPECT_EQ(cache.usable(c.askAtMs), c.answers) << "case " << i;
    EXPECT_EQ(cache.live(c.askAtMs).ok(), c.answers) << "case " << i;
    if (found.ok()) {
      ASSERT_TRUE(found->has_value()) << "case " << i;
      EXPECT_EQ((*found)->name, "ops");
    } else {
      EXPECT_EQ(found.error().code(), ErrorCode::kUnavailable) << "case " << i;
    }
  }
}

TEST(TokenCacheTest, AConfirmationCountsOnlyWhenTheWatchHasDeliveredTheBucketsLastWrite) {
  TokenCache cache{std::chrono::milliseconds(kMaxStalenessMs)};
  EXPECT_FALSE(cache.confirm(0, 0)) << "not loaded: nothing to confirm";
  cache.load({}, 7, 0);
  EXPECT_EQ(cache.deliveredThrough(), 7u);
  // The bucket has write 9, the watch delivered up to 8: not current at 20000.
  cache.delivered(8);
  EXPECT_FALSE(cache.confirm(9, 20000));
  EXPECT_FALSE(cache.usable(kMaxStalenessMs + 1));
  cache.delivered(9);
  EXPECT_TRUE(cache.confirm(9, 20000));
  EXPECT_TRUE(cache.usable(20000 + kMaxStalenessMs));
  // A confirmation asked earlier than the last one does not move the limit back.
  EXPECT_TRUE(cache.confirm(9, 10000));
  EXPECT_TRUE(cache.usable(20000 + kMaxStalenessMs));
}

TEST(TokenCacheTest, TheRefusalSaysWhyTheCopyIsNotUsed) {
  TokenCache cache{std::chrono::milliseconds(kMaxStalenessMs)};
  cache.noteFailure("tokens: JetStream at nats://x does not answer");
  auto notLoaded = cache.find("00000000000000a1", 0);
  ASSERT_FALSE(notLoaded.ok());
  EXPECT_NE(notLoaded.error().message().find("not loaded"), std::string::npos) << notLoaded.error().message();
  EXPECT_NE(notLoaded.error().message().find("does not answer"), std::string::npos);
  cache.load({}, 0, 0);
  cache.noteFailure("tokens: NATS at nats://x is not connected");
  auto stale = cache.find("00000000000000a1", kMaxStalenessMs + 5);
  ASSERT_FALSE(stale.ok());
  EXPECT_NE(stale.error().message().find("last known current 30005 ms ago"), std::string::npos)
      << stale.error().message();
  EXPECT_NE(stale.error().message().find("not connected"), std::string::npos);
}

TEST(TokenCacheTest, WritesMergeByRevisionAndARevocationIsNeverUndoneFromATable) {
  // Two writes of one record in the order they reach the copy: (revoked?, revision) each.
  struct Write {
    bool revoked;
    uint64_t revision;
  };
  struct Case {
    Write first, second;
    bool revoked;        // what the copy says after both
    const char* name;    // which write's name it keeps
  };
  const Case cases[] = {
      {{false, 3}, {true, 5}, true, "second"},   // in order
      {{true, 5}, {false, 3}, true, "first"},    // the revocation arrives first (local write)
      {{false, 5}, {false, 3}, false, "first"},  // an older write is ignored
      {{false, 3}, {false, 5}, false, "second"},
      {{true, 3}, {false, 5}, true, "second"},   // a later write without the revocation keeps it
      {{false, 5}, {true, 3}, true, "first"},    // an older revocation still counts
      {{false, 4}, {false, 4}, false, "first"},  // the same write twice (local, then the watch)
  };
  for (size_t i = 0; i < std::size(cases); ++i) {
    const Case& c = cases[i];
    TokenCache cache{std::chrono::milliseconds(kMaxStalenessMs)};
    cache.load({}, 0, 0);
    cache.apply(record("00000000000000b2", "first", c.first.revoked ? 100 : 0), c.first.revision);
    cache.apply(record("00000000000000b2", "second", c.second.revoked ? 200 : 0), c.second.revision);
    auto found = cache.find("00000000000000b2", 0);
    ASSERT_TRUE(found.ok() && found->has_value()) << "case " << i;
    EXPECT_EQ((*found)->revokedMs != 0, c.revoked) << "case " << i;
    EXPECT_EQ((*found)->name, c.name) << "case " << i;
    EXPECT_EQ(cache.live(0)->size(), c.revoked ? 0u : 1u) << "case " << i;
  }
}

TEST(TokenCacheTest, ALoadKeepsWhatItDoesNotMentionAndListsLiveTokensByName) {
  TokenCache cache{std::chrono::milliseconds(kMaxStalenessMs)};
  cache.load({{record("00000000000000c1", "zeta"), 1}, {record("00000000000000c2", "alpha"), 2}}, 2, 0);
  // A record written here after the watch's first delivery began, not in a later load.
  cache.apply(record("00000000000000c3", "mid"), 9);
  cache.load({{record("00000000000000c1", "zeta"), 1}, {record("00000000000000c2", "alpha", 50), 4}}, 4, 10);
  auto live = cache.live(10);
  ASSERT_TRUE(live.ok());
  ASSERT_EQ(live->size(), 2u);
  EXPECT_EQ((*live)[0].name, "mid");
  EXPECT_EQ((*live)[1].name, "zeta");
  EXPECT_EQ(cache.deliveredThrough(), 4u) << "a load counts from its own watch";
  auto unknown = cache.find("00000000000000ff", 10);
  ASSERT_TRUE(unknown.ok());
  EXPECT_FALSE(unknown->has_value());
}

}  // namespace
}  // namespace tern::cluster
