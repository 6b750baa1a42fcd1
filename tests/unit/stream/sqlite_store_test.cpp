#include "stream/sqlite_topic_log.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <mutex>
#include <thread>
#include <vector>

#include "test_support.h"

namespace tern::stream {
namespace {

class SqliteStreamStoreTest : public ::testing::Test {
 protected:
  std::unique_ptr<SqliteStreamStore> open(Retention r = {}) {
    auto s = SqliteStreamStore::open(dir_.path() / "streams.db", r);
    EXPECT_TRUE(s.ok()) << s.error().message();
    return std::move(*s);
  }
  test::TempDir dir_;
};

TEST_F(SqliteStreamStoreTest, NumbersEachTopicOnItsOwnAndReadsBackInOrder) {
  auto s = open();
  EXPECT_EQ(*s->publish("a", "1"), 1u);
  EXPECT_EQ(*s->publish("a", "2"), 2u);
  EXPECT_EQ(*s->publish("b", "x"), 1u);
  EXPECT_EQ(*s->publish("a", "3"), 3u);
  auto after1 = s->read("a", 1, 100);
  ASSERT_TRUE(after1.ok());
  ASSERT_EQ(after1->size(), 2u);
  EXPECT_EQ((*after1)[0].seq, 2u);
  EXPECT_EQ((*after1)[0].payload, "2");
  EXPECT_EQ((*after1)[1].seq, 3u);
  EXPECT_EQ(s->read("a", 0, 2)->size(), 2u);
  EXPECT_TRUE(s->read("unknown", 0, 10)->empty());
  auto b = s->bounds("a");
  EXPECT_EQ(b->first, 1u);
  EXPECT_EQ(b->last, 3u);
  auto none = s->bounds("unknown");
  EXPECT_EQ(none->first, 1u);
  EXPECT_EQ(none->last, 0u);
  auto all = s->topics();
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].topic, "a");
  EXPECT_EQ((*all)[1].bounds.last, 1u);
  EXPECT_FALSE(s->publish("no/slash", "x").ok());
  EXPECT_FALSE(s->publish("a", "\xc0\x80").ok());
  EXPECT_EQ(s->bounds("a")->last, 3u);  // refusals take no number
}

TEST_F(SqliteStreamStoreTest, KeepsTheRetentionAndSurvivesReopening) {
  Retention r;
  r.maxMessages = 5;
  {
    auto s = open(r);
    for (int i = 1; i <= 12; ++i) ASSERT_TRUE(s->publish("t", std::to_string(i)).ok());
    auto b = s->bounds("t");
    EXPECT_EQ(b->first, 8u);
    EXPECT_EQ(b->last, 12u);
    auto all = s->read("t", 0, 100);
    ASSERT_EQ(all->size(), 5u);
    EXPECT_EQ(all->front().seq, 8u);
  }
  auto s = open(r);
  EXPECT_EQ(*s->publish("t", "13"), 13u);
  EXPECT_EQ(s->bounds("t")->first, 9u);
}

TEST_F(SqliteStreamStoreTest, FollowersSeeNewUpdatesInOrderUntilTheirFeedEnds) {
  auto s = open();
  ASSERT_TRUE(s->publish("t", "before").ok());
  std::mutex mu;
  std::vector<uint64_t> first, second;
  auto f1 = s->follow("t", [&](std::shared_ptr<const Update> u) {
    std::lock_guard lock(mu);
    first.push_back(u->seq);
  });
  auto f2 = s->follow("t", [&](std::shared_ptr<const Update> u) {
    std::lock_guard lock(mu);
    second.push_back(u->seq);
  });
  ASSERT_TRUE(f1.ok());
  ASSERT_TRUE(f2.ok());
  ASSERT_TRUE(s->publish("other", "x").ok());
  std::vector<std::thread> publishers;
  for (int t = 0; t < 4; ++t) {
    publishers.emplace_back([&] {
      for (int i = 0; i < 25; ++i) ASSERT_TRUE(s->publish("t", "u").ok());
    });
  }
  for (auto& t : publishers) t.join();
  f2->reset();
  ASSERT_TRUE(s->publish("t", "after").ok());
  std::lock_guard lock(mu);
  ASSERT_EQ(first.size(), 101u);
  for (size_t i = 0; i < first.size(); ++i) EXPECT_EQ(first[i], i + 2);
  ASSERT_EQ(second.size(), 100u);
}

TEST_F(SqliteStreamStoreTest, StoresApps) {
  auto s = open();
  EXPECT_FALSE(s->get("chat")->has_value());
  ASSERT_TRUE(s->put(App{"chat", "filter", 2}).ok());
  ASSERT_TRUE(s->put(App{"alerts", "", 0}).ok());
  ASSERT_TRUE(s->put(App{"chat", "filter2", 0}).ok());
  auto chat = s->get("chat");
  ASSERT_TRUE(chat->has_value());
  EXPECT_EQ((*chat)->processor, "filter2");
  EXPECT_EQ((*chat)->maxPerSecond, 0);
  auto all = s->list();
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].name, "alerts");
  EXPECT_TRUE(*s->remove("chat"));
  EXPECT_FALSE(*s->remove("chat"));
}

}  // namespace
}  // namespace tern::stream
