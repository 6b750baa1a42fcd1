// A cluster's topics and apps on JetStream: JetStreamTopics against a real nats-server with
// JetStream on loopback (its store in the test's directory, so a restart keeps it).

#include "stream/jetstream_topic_log.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nats/nats.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "nats_process.h"
#include "test_support.h"

namespace tern::stream {
namespace {

using namespace std::chrono_literals;

constexpr auto kPatience = std::chrono::seconds(30);
constexpr auto kRequestTimeout = std::chrono::milliseconds(2000);

// The updates a feed delivered, as the feed's thread left them.
class Collector {
 public:
  TopicLog::OnUpdate callback() {
    return [this](std::shared_ptr<const Update> u) {
      std::lock_guard lock(mu_);
      seen_.push_back(*u);
    };
  }
  std::vector<Update> seen() const {
    std::lock_guard lock(mu_);
    return seen_;
  }
  std::vector<uint64_t> seqs() const {
    std::vector<uint64_t> out;
    for (const auto& u : seen()) out.push_back(u.seq);
    return out;
  }
  size_t count() const { return seen().size(); }

 private:
  mutable std::mutex mu_;
  std::vector<Update> seen_;
};

class JetStreamTopicsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    nats_ = std::make_unique<test::NatsProcess>(dir_.path() / "nats");
    node_ = connect("node-a");
    ASSERT_NE(node_, nullptr);
  }

  std::unique_ptr<JetStreamTopics> connect(const std::string& name) {
    JetStreamOptions o;
    o.url = nats_->url();
    o.retention.maxMessages = 10;
    o.requestTimeout = kRequestTimeout;
    o.connectionName = name;
    auto topics = JetStreamTopics::connect(o);
    EXPECT_TRUE(topics.ok()) << topics.error().describe();
    if (!topics.ok()) return nullptr;
    std::unique_ptr<JetStreamTopics> t = std::move(*topics);
    EXPECT_TRUE(test::eventually([&] { return t->connected(); }, kPatience));
    return t;
  }

  uint64_t publish(const std::string& topic, const std::string& payload) {
    auto seq = node_->log().publish(topic, payload);
    EXPECT_TRUE(seq.ok()) << seq.error().describe();
    return seq.ok() ? *seq : 0;
  }

  test::TempDir dir_;
  std::unique_ptr<test::NatsProcess> nats_;
  std::unique_ptr<JetStreamTopics> node_;
};

TEST_F(JetStreamTopicsTest, EachTopicNumbersItsUpdatesFromOne) {
  EXPECT_EQ(publish("alpha", "a1"), 1u);
  EXPECT_EQ(publish("alpha", "a2"), 2u);
  EXPECT_EQ(publish("beta", "b1"), 1u);
  EXPECT_EQ(publish("alpha", "a3"), 3u);
  EXPECT_EQ(publish("beta", "b2"), 2u);

  auto bad = node_->log().publish("no.dots", "x");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidArgument);
  auto follow = node_->log().follow("no*wildcards", [](std::shared_ptr<const Update>) {});
  ASSERT_FALSE(follow.ok());
  EXPECT_EQ(follow.error().code(), ErrorCode::kInvalidArgument);
}

TEST_F(JetStreamTopicsTest, ReadReturnsTheUpdatesAfterASequenceInOrder) {
  int64_t before = test::unixMs();
  for (int i = 1; i <= 5; ++i) publish("temps", fmt::format("t{}", i));
  int64_t after = test::unixMs();

  auto rest = node_->log().read("temps", 2, 100);
  ASSERT_TRUE(rest.ok()) << rest.error().describe();
  ASSERT_EQ(rest->size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ((*rest)[i].topic, "temps");
    EXPECT_EQ((*rest)[i].seq, 3 + i);
    EXPECT_EQ((*rest)[i].payload, fmt::format("t{}", 3 + i));
    // Stamped by the server on this machine: within the publishing calls (+ clock rounding).
    EXPECT_GE((*rest)[i].publishedMs, before - 1);
    EXPECT_LE((*rest)[i].publishedMs, after + 1);
  }

  auto firstTwo = node_->log().read("temps", 0, 2);
  ASSERT_TRUE(firstTwo.ok());
  ASSERT_EQ(firstTwo->size(), 2u);
  EXPECT_EQ((*firstTwo)[0].seq, 1u);
  EXPECT_EQ((*firstTwo)[1].seq, 2u);

  auto none = node_->log().read("temps", 5, 100);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());

  auto unknown = node_->log().read("never-published", 0, 100);
  ASSERT_TRUE(unknown.ok()) << unknown.error().describe();
  EXPECT_TRUE(unknown->empty());
  auto unknownBounds = node_->log().bounds("never-published");
  ASSERT_TRUE(unknownBounds.ok());
  EXPECT_EQ(unknownBounds->first, 1u);
  EXPECT_EQ(unknownBounds->last, 0u);

  auto b = node_->log().bounds("temps");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->first, 1u);
  EXPECT_EQ(b->last, 5u);
}

TEST_F(JetStreamTopicsTest, RetentionKeepsTheNewestMaxMessages) {
  for (int i = 1; i <= 15; ++i) EXPECT_EQ(publish("busy", std::to_string(i)), uint64_t(i));

  auto b = node_->log().bounds("busy");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->first, 6u);
  EXPECT_EQ(b->last, 15u);

  auto all = node_->log().read("busy", 0, 100);
  ASSERT_TRUE(all.ok()) << all.error().describe();
  ASSERT_EQ(all->size(), 10u);
  for (size_t i = 0; i < all->size(); ++i) {
    EXPECT_EQ((*all)[i].seq, 6 + i);
    EXPECT_EQ((*all)[i].payload, std::to_string(6 + i));
  }
}

TEST_F(JetStreamTopicsTest, FeedsSeeEachLaterUpdateOnceInOrderUntilDestroyed) {
  publish("lights", "before-1");
  publish("lights", "before-2");

  Collector a, b;
  auto feedA = node_->log().follow("lights", a.callback());
  auto feedB = node_->log().follow("lights", b.callback());
  ASSERT_TRUE(feedA.ok()) << feedA.error().describe();
  ASSERT_TRUE(feedB.ok()) << feedB.error().describe();

  for (int i = 3; i <= 5; ++i) publish("lights", fmt::format("on-{}", i));
  ASSERT_TRUE(test::eventually([&] { return a.count() >= 3 && b.count() >= 3; }, kPatience));
  for (const Collector* c : {&a, &b}) {
    auto seen = c->seen();
    ASSERT_EQ(seen.size(), 3u);
    for (size_t i = 0; i < 3; ++i) {
      EXPECT_EQ(seen[i].topic, "lights");
      EXPECT_EQ(seen[i].seq, 3 + i);
      EXPECT_EQ(seen[i].payload, fmt::format("on-{}", 3 + i));
    }
  }

  feedB->reset();
  publish("lights", "on-6");
  publish("lights", "on-7");
  ASSERT_TRUE(test::eventually([&] { return a.count() >= 5; }, kPatience));
  EXPECT_EQ(a.seqs(), (std::vector<uint64_t>{3, 4, 5, 6, 7}));
  EXPECT_EQ(b.seqs(), (std::vector<uint64_t>{3, 4, 5}));
}

TEST_F(JetStreamTopicsTest, AFeedMayEndItselfFromItsCallback) {
  std::mutex mu;
  std::unique_ptr<TopicLog::Feed> feed;
  std::vector<uint64_t> seen;
  auto f = node_->log().follow("once", [&](std::shared_ptr<const Update> u) {
    std::lock_guard lock(mu);
    seen.push_back(u->seq);
    feed.reset();
  });
  ASSERT_TRUE(f.ok()) << f.error().describe();
  {
    std::lock_guard lock(mu);
    feed = std::move(*f);
  }
  publish("once", "1");
  ASSERT_TRUE(test::eventually([&] {
    std::lock_guard lock(mu);
    return !seen.empty();
  }, kPatience));
  publish("once", "2");
  // A second follow sees update 3; by then the ended feed would have had update 2.
  Collector later;
  auto other = node_->log().follow("once", later.callback());
  ASSERT_TRUE(other.ok());
  publish("once", "3");
  ASSERT_TRUE(test::eventually([&] { return later.count() >= 1; }, kPatience));
  std::lock_guard lock(mu);
  EXPECT_EQ(seen, (std::vector<uint64_t>{1}));
  EXPECT_EQ(feed, nullptr);
}

TEST_F(JetStreamTopicsTest, TopicsListsEveryTopicWithItsBounds) {
  auto empty = node_->log().topics();
  ASSERT_TRUE(empty.ok()) << empty.error().describe();
  EXPECT_TRUE(empty->empty());

  publish("zeta", "1");
  publish("alpha", "1");
  publish("alpha", "2");
  auto followed = node_->log().follow("quiet", [](std::shared_ptr<const Update>) {});
  ASSERT_TRUE(followed.ok());

  auto all = node_->log().topics();
  ASSERT_TRUE(all.ok()) << all.error().describe();
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].topic, "alpha");
  EXPECT_EQ((*all)[0].bounds.first, 1u);
  EXPECT_EQ((*all)[0].bounds.last, 2u);
  EXPECT_EQ((*all)[1].topic, "quiet");  // followed, never published: empty
  EXPECT_EQ((*all)[1].bounds.first, 1u);
  EXPECT_EQ((*all)[1].bounds.last, 0u);
  EXPECT_EQ((*all)[2].topic, "zeta");
  EXPECT_EQ((*all)[2].bounds.last, 1u);
}

TEST_F(JetStreamTopicsTest, AppsRoundTrip) {
  AppStore& apps = node_->apps();
  auto none = apps.list();
  ASSERT_TRUE(none.ok()) << none.error().describe();
  EXPECT_TRUE(none->empty());

  ASSERT_TRUE(apps.put(App{"thermo", "smooth", 2.5}).ok());
  ASSERT_TRUE(apps.put(App{"plain", "", 0}).ok());

  auto thermo = apps.get("thermo");
  ASSERT_TRUE(thermo.ok()) << thermo.error().describe();
  ASSERT_TRUE(thermo->has_value());
  EXPECT_EQ((*thermo)->name, "thermo");
  EXPECT_EQ((*thermo)->processor, "smooth");
  EXPECT_EQ((*thermo)->maxPerSecond, 2.5);

  auto unknown = apps.get("nobody");
  ASSERT_TRUE(unknown.ok());
  EXPECT_FALSE(unknown->has_value());

  ASSERT_TRUE(apps.put(App{"thermo", "", 1}).ok());
  auto listed = apps.list();
  ASSERT_TRUE(listed.ok()) << listed.error().describe();
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].name, "plain");
  EXPECT_EQ((*listed)[0].processor, "");
  EXPECT_EQ((*listed)[0].maxPerSecond, 0);
  EXPECT_EQ((*listed)[1].name, "thermo");
  EXPECT_EQ((*listed)[1].processor, "");
  EXPECT_EQ((*listed)[1].maxPerSecond, 1);

  auto removed = apps.remove("thermo");
  ASSERT_TRUE(removed.ok());
  EXPECT_TRUE(*removed);
  auto again = apps.remove("thermo");
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);
  auto gone = apps.get("thermo");
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->has_value());
  auto left = apps.list();
  ASSERT_TRUE(left.ok());
  ASSERT_EQ(left->size(), 1u);
  EXPECT_EQ((*left)[0].name, "plain");

  auto bad = apps.put(App{"Not.A.Name", "", 0});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidArgument);
}

TEST_F(JetStreamTopicsTest, TwoNodesShareTopicsAndApps) {
  auto other = connect("node-b");
  ASSERT_NE(other, nullptr);
  Collector seen;
  auto feed = node_->log().follow("shared", seen.callback());
  ASSERT_TRUE(feed.ok());

  auto first = other->log().publish("shared", "from b");
  ASSERT_TRUE(first.ok()) << first.error().describe();
  EXPECT_EQ(*first, 1u);
  EXPECT_EQ(publish("shared", "from a"), 2u);
  ASSERT_TRUE(test::eventually([&] { return seen.count() >= 2; }, kPatience));
  auto got = seen.seen();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].payload, "from b");
  EXPECT_EQ(got[1].payload, "from a");

  ASSERT_TRUE(node_->apps().put(App{"relay", "pass", 0}).ok());
  auto onB = other->apps().get("relay");
  ASSERT_TRUE(onB.ok());
  ASSERT_TRUE(onB->has_value());
  EXPECT_EQ((*onB)->processor, "pass");
}

TEST_F(JetStreamTopicsTest, AStreamDeletedBehindTheNodesBackIsCreatedAgain) {
  EXPECT_EQ(publish("gone", "1"), 1u);
  EXPECT_EQ(publish("gone", "2"), 2u);
  natsConnection* nc = nullptr;
  ASSERT_EQ(natsConnection_ConnectTo(&nc, nats_->url().c_str()), NATS_OK);
  jsCtx* js = nullptr;
  ASSERT_EQ(natsConnection_JetStream(&js, nc, nullptr), NATS_OK);
  EXPECT_EQ(js_DeleteStream(js, "TERN_TOPIC_gone", nullptr, nullptr), NATS_OK);
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);

  EXPECT_EQ(publish("gone", "again"), 1u);
  auto all = node_->log().read("gone", 0, 10);
  ASSERT_TRUE(all.ok()) << all.error().describe();
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].payload, "again");
}

TEST_F(JetStreamTopicsTest, UnreachableNatsIsUnavailableAndFeedsResumeAfterARestart) {
  Collector seen;
  auto feed = node_->log().follow("doors", seen.callback());
  ASSERT_TRUE(feed.ok()) << feed.error().describe();
  publish("doors", "open");
  ASSERT_TRUE(test::eventually([&] { return seen.count() >= 1; }, kPatience));
  // Feeds that saw nothing before the restart: one of a topic with an update, one of an
  // empty topic. Neither may replay the topic when its consumer is re-created.
  Collector late, fresh;
  auto lateFeed = node_->log().follow("doors", late.callback());
  auto freshFeed = node_->log().follow("windows", fresh.callback());
  ASSERT_TRUE(lateFeed.ok() && freshFeed.ok());

  nats_->stop();
  ASSERT_TRUE(test::eventually([&] { return !node_->connected(); }, kPatience));
  auto start = std::chrono::steady_clock::now();
  auto down = node_->log().publish("doors", "closed");
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.error().code(), ErrorCode::kUnavailable) << down.error().describe();
  EXPECT_LE(took, kRequestTimeout + 1s);  // an answer, not a hang
  auto read = node_->log().read("doors", 0, 10);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.error().code(), ErrorCode::kUnavailable);
  auto app = node_->apps().get("any");
  ASSERT_FALSE(app.ok());
  EXPECT_EQ(app.error().code(), ErrorCode::kUnavailable);

  nats_->start();
  ASSERT_TRUE(test::eventually([&] { return node_->connected(); }, kPatience));
  // JetStream may still be recovering its streams when the connection is back.
  uint64_t after = 0;
  ASSERT_TRUE(test::eventually([&] {
    auto seq = node_->log().publish("doors", "open again");
    if (seq.ok()) after = *seq;
    return seq.ok();
  }, kPatience));
  ASSERT_TRUE(test::eventually([&] {
    auto s = seen.seqs();
    return !s.empty() && s.back() >= after;
  }, kPatience)) << "the feed did not resume after the restart";
  ASSERT_TRUE(test::eventually([&] { return late.count() >= 1; }, kPatience));
  EXPECT_EQ(late.seqs(), std::vector<uint64_t>{after});
  uint64_t window = 0;
  ASSERT_TRUE(test::eventually([&] {
    auto seq = node_->log().publish("windows", "open");
    if (seq.ok()) window = *seq;
    return seq.ok();
  }, kPatience));
  ASSERT_TRUE(test::eventually([&] { return fresh.count() >= 1; }, kPatience));
  EXPECT_EQ(fresh.seqs(), std::vector<uint64_t>{window});
  auto seqs = seen.seqs();
  EXPECT_EQ(seqs.front(), 1u);
  for (size_t i = 1; i < seqs.size(); ++i) EXPECT_LT(seqs[i - 1], seqs[i]) << "in order, once";
  auto all = node_->log().read("doors", 0, 10);
  ASSERT_TRUE(all.ok()) << all.error().describe();
  EXPECT_EQ(all->back().seq, after);
}

}  // namespace
}  // namespace tern::stream
