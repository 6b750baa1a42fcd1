#include "triggers/mqtt_client.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "mosquitto_process.h"
#include "test_support.h"

namespace tern::triggers {
namespace {

using namespace std::chrono_literals;

// Collects what the client receives.
struct Inbox {
  std::mutex mu;
  std::vector<std::pair<std::string, std::string>> messages;
  std::atomic<int> refuseNext{0};

  MqttClient::OnMessage handler() {
    return [this](std::string_view topic, std::string_view payload) -> Result<void> {
      if (refuseNext > 0) {
        --refuseNext;
        return Error(ErrorCode::kIo, "refused by the test");
      }
      std::lock_guard lock(mu);
      messages.emplace_back(std::string(topic), std::string(payload));
      return {};
    };
  }
  size_t size() {
    std::lock_guard lock(mu);
    return messages.size();
  }
  bool waitFor(size_t n, std::chrono::milliseconds timeout = 20s) {
    return test::eventually([&] { return size() >= n; }, timeout);
  }
};

// Waits until the client is connected and the broker has acknowledged `subscribeAcks`
// subscriptions in all (SUBACKs count across connections: one per filter per connect), so
// that messages published from then on reach the client.
bool waitSubscribed(const MqttClient& c, uint64_t subscribeAcks,
                    std::chrono::milliseconds timeout = 20s) {
  return test::eventually(
      [&] { return c.connected() && c.stats().subscribeAcks >= subscribeAcks; }, timeout);
}

MqttOptions optionsFor(const test::MosquittoProcess& broker, const std::string& id) {
  MqttOptions o;
  o.host = "127.0.0.1";
  o.port = broker.port();
  o.clientId = id;
  o.reconnectMin = 50ms;
  o.reconnectMax = 200ms;
  return o;
}

TEST(MqttClientTest, ReceivesSubscribedTopicsAndPublishesWithAcknowledgement) {
  test::TempDir dir;
  test::MosquittoProcess broker(dir.path() / "broker");
  Inbox inbox;
  MqttClient client(optionsFor(broker, "tern-test-a"), inbox.handler());
  client.setSubscriptions("test", {"sensors/+/temp"});
  ASSERT_TRUE(client.start().ok());
  ASSERT_TRUE(waitSubscribed(client, 1));

  broker.publish("sensors/k1/temp", "21.5");
  broker.publish("sensors/k1/humidity", "40");  // not subscribed
  broker.publish("sensors/k2/temp", std::string("\0\x01\xff", 3));
  // The broker delivers in publish order: once the last message is in, the unsubscribed
  // one would have arrived before it.
  broker.publish("sensors/k3/temp", "last");
  ASSERT_TRUE(inbox.waitFor(3));
  {
    std::lock_guard lock(inbox.mu);
    ASSERT_EQ(inbox.messages.size(), 3u);
    EXPECT_EQ(inbox.messages[0].first, "sensors/k1/temp");
    EXPECT_EQ(inbox.messages[0].second, "21.5");
    EXPECT_EQ(inbox.messages[1].second, std::string("\0\x01\xff", 3));
    EXPECT_EQ(inbox.messages[2].second, "last");
  }

  test::MosquittoProcess::Subscription sub(broker, "replies/#");
  ASSERT_TRUE(client.publish("replies/x", "hello", PublishWait::kAcknowledged).ok());
  auto got = sub.waitFor(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], "replies/x hello");

  EXPECT_FALSE(client.publish("replies/+", "x", PublishWait::kQueued).ok());
  client.stop();
}

TEST(MqttClientTest, BrokerDownAtStartIsRetriedAndPublishSaysUnavailable) {
  test::TempDir dir;
  test::MosquittoProcess broker(dir.path() / "broker");
  broker.stop();
  Inbox inbox;
  MqttClient client(optionsFor(broker, "tern-test-b"), inbox.handler());
  client.setSubscriptions("test", {"a/#"});
  ASSERT_TRUE(client.start().ok());
  // Attempts fail, and the client goes on trying.
  ASSERT_TRUE(test::eventually([&] { return client.stats().connectFailures >= 2; }, 20s));
  EXPECT_FALSE(client.connected());
  auto r = client.publish("a/b", "x", PublishWait::kQueued);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kUnavailable);

  broker.start();
  ASSERT_TRUE(waitSubscribed(client, 1));
  broker.publish("a/b", "after");
  ASSERT_TRUE(inbox.waitFor(1));

  // The broker goes away mid-run and comes back: the client reconnects and resubscribes.
  broker.stop();
  ASSERT_TRUE(test::eventually([&] { return client.stats().disconnects == 1; }, 20s));
  EXPECT_FALSE(client.connected());
  auto down = client.publish("a/b", "x", PublishWait::kQueued);
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.error().code(), ErrorCode::kUnavailable);
  broker.start();
  ASSERT_TRUE(waitSubscribed(client, 2));
  broker.publish("a/c", "again");
  ASSERT_TRUE(inbox.waitFor(2));
  EXPECT_EQ(client.stats().connects, 2u);
  client.stop();
}

TEST(MqttClientTest, RefusedMessageIsRedeliveredAfterReconnect) {
  test::TempDir dir;
  test::MosquittoProcess broker(dir.path() / "broker");
  Inbox inbox;
  inbox.refuseNext = 1;
  MqttClient client(optionsFor(broker, "tern-test-c"), inbox.handler());
  client.setSubscriptions("test", {"jobs"});
  ASSERT_TRUE(client.start().ok());
  ASSERT_TRUE(waitSubscribed(client, 1));
  broker.publish("jobs", "important");
  ASSERT_TRUE(inbox.waitFor(1));
  EXPECT_EQ(inbox.messages[0].second, "important");
  EXPECT_EQ(client.stats().refused, 1u);
  client.stop();
}

TEST(MqttClientTest, PersistentSessionKeepsMessagesSentWhileTheClientWasAway) {
  test::TempDir dir;
  test::MosquittoProcess broker(dir.path() / "broker");
  {
    Inbox inbox;
    MqttClient client(optionsFor(broker, "tern-test-d"), inbox.handler());
    client.setSubscriptions("test", {"q/#"});
    ASSERT_TRUE(client.start().ok());
    ASSERT_TRUE(waitSubscribed(client, 1));
    client.stop();
  }
  broker.publish("q/1", "while away");
  Inbox inbox;
  MqttClient client(optionsFor(broker, "tern-test-d"), inbox.handler());
  client.setSubscriptions("test", {"q/#"});
  ASSERT_TRUE(client.start().ok());
  ASSERT_TRUE(inbox.waitFor(1));
  EXPECT_EQ(inbox.messages[0].second, "while away");
  client.stop();
}

// Two owners' filters are subscribed together; one owner's change leaves the other's alone.
// A publish with a callback hears of its PUBACK. The client's own messages come back to it
// through its subscriptions.
TEST(MqttClientTest, SubscribesToEveryOwnersFiltersAndCallsBackOnAcknowledgement) {
  test::TempDir dir;
  test::MosquittoProcess broker(dir.path() / "broker");
  Inbox inbox;
  MqttClient client(optionsFor(broker, "tern-test-e"), inbox.handler());
  client.setSubscriptions("triggers", {"x/#"});
  client.setSubscriptions("streams", {"y/+"});
  ASSERT_TRUE(client.start().ok());
  ASSERT_TRUE(waitSubscribed(client, 2));

  std::atomic<int> acked{0};
  auto count = [&] { ++acked; };
  ASSERT_TRUE(client.publish("x/1", "one", count).ok());
  ASSERT_TRUE(client.publish("y/2/3", "not subscribed", count).ok());
  ASSERT_TRUE(client.publish("y/2", "two", count).ok());
  ASSERT_TRUE(inbox.waitFor(2));
  EXPECT_TRUE(test::eventually([&] { return acked.load() == 3; }, 20s)) << acked.load();
  {
    std::lock_guard lock(inbox.mu);
    EXPECT_EQ(inbox.messages[0], std::make_pair(std::string("x/1"), std::string("one")));
    EXPECT_EQ(inbox.messages[1], std::make_pair(std::string("y/2"), std::string("two")));
  }

  // "streams" gives up its filter: y/3 no longer arrives, x/4 (published after it) does.
  client.setSubscriptions("streams", {});
  ASSERT_TRUE(client.publish("y/3", "dropped", PublishWait::kQueued).ok());
  ASSERT_TRUE(client.publish("x/4", "four", PublishWait::kAcknowledged).ok());
  ASSERT_TRUE(inbox.waitFor(3));
  std::lock_guard lock(inbox.mu);
  EXPECT_EQ(inbox.messages[2].first, "x/4");
  client.stop();
}

TEST(MqttClientTest, ParsesBrokerAddresses) {
  auto a = parseBrokerAddress("127.0.0.1:1884");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->first, "127.0.0.1");
  EXPECT_EQ(a->second, 1884);
  auto b = parseBrokerAddress("broker.local");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->second, 1883);
  auto c = parseBrokerAddress("[::1]:1999");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->first, "::1");
  for (const char* bad : {"", ":1883", "host:", "host:0", "host:70000", "host:12x", "[::1"}) {
    EXPECT_FALSE(parseBrokerAddress(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace tern::triggers
