// Device connections over MQTT against a real hub and topics, with a broker the test plays
// itself: it sees every frame published, decides when the broker acknowledges them and
// whether it is reachable, and drives the idle sweep with its own clock.

#include "stream/mqtt_devices.h"

#include <gtest/gtest.h>

#include <mutex>
#include <nlohmann/json.hpp>

#include "exec/executor.h"
#include "exec/function_table.h"
#include "exec/invoker.h"
#include "stream/frames.h"
#include "stream/sqlite_topic_log.h"
#include "test_support.h"
#include "util/work_queue.h"
#include "wasm/engine.h"

namespace tern::stream {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

TEST(MqttDeviceTopics, UpTopicsAndDeviceNames) {
  EXPECT_TRUE(isMqttDeviceUpTopic("tern/streams/d1/up"));
  EXPECT_TRUE(isMqttDeviceUpTopic("tern/streams/bad.name/up"));  // an up topic, a bad name
  EXPECT_FALSE(isMqttDeviceUpTopic("tern/streams/d1/down"));
  EXPECT_FALSE(isMqttDeviceUpTopic("tern/streams/a/b/up"));
  EXPECT_FALSE(isMqttDeviceUpTopic("tern/streams/up"));
  EXPECT_FALSE(isMqttDeviceUpTopic("x/tern/streams/d1/up"));
  EXPECT_TRUE(isMqttDeviceName("d1"));
  EXPECT_TRUE(isMqttDeviceName("Kitchen_sensor-07"));
  EXPECT_TRUE(isMqttDeviceName(std::string(64, 'a')));
  EXPECT_FALSE(isMqttDeviceName(""));
  EXPECT_FALSE(isMqttDeviceName(std::string(65, 'a')));
  EXPECT_FALSE(isMqttDeviceName("bad.name"));
  EXPECT_FALSE(isMqttDeviceName("a+"));
  EXPECT_EQ(mqttDeviceDownTopic("d1"), "tern/streams/d1/down");
}

// The broker as the devices' transport sees it.
class FakeBroker {
 public:
  Result<void> publish(std::string_view topic, std::string_view payload, std::function<void()> ack) {
    std::lock_guard lock(mu_);
    if (!reachable_) {
      ++refused_;
      return Error(ErrorCode::kUnavailable, "not connected to the MQTT broker");
    }
    sent_.push_back(Sent{std::string(topic), std::string(payload), std::move(ack)});
    return {};
  }
  void setReachable(bool r) {
    std::lock_guard lock(mu_);
    reachable_ = r;
  }
  size_t refused() {
    std::lock_guard lock(mu_);
    return refused_;
  }
  // The frames published to `topic` so far, parsed.
  std::vector<json> frames(const std::string& topic) {
    std::lock_guard lock(mu_);
    std::vector<json> out;
    for (const auto& s : sent_) {
      if (s.topic == topic) out.push_back(json::parse(s.payload));
    }
    return out;
  }
  // Acknowledges every frame not yet acknowledged; returns how many.
  size_t ackAll() {
    std::vector<std::function<void()>> acks;
    {
      std::lock_guard lock(mu_);
      for (auto& s : sent_) {
        if (s.ack) acks.push_back(std::exchange(s.ack, nullptr));
      }
    }
    for (auto& a : acks) a();
    return acks.size();
  }

 private:
  struct Sent {
    std::string topic;
    std::string payload;
    std::function<void()> ack;
  };
  std::mutex mu_;
  bool reachable_ = true;
  size_t refused_ = 0;
  std::vector<Sent> sent_;
};

class MqttDevicesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = SqliteStreamStore::open(dir.path() / "streams.db", Retention{});
    ASSERT_TRUE(opened.ok()) << opened.error().message();
    store = std::move(*opened);
    hub = std::make_unique<Hub>(HubDeps{*store, *store, invoker, metrics}, HubOptions{});
  }
  void TearDown() override {
    if (devices) devices->stop();
    hub->stop();
  }

  void open(MqttDeviceOptions options) {
    devices = std::make_unique<MqttDevices>(
        options, MqttDeviceDeps{*hub, metrics,
                                [this](std::string_view t, std::string_view p, std::function<void()> ack) {
                                  return broker.publish(t, p, std::move(ack));
                                },
                                [this] {
                                  std::lock_guard lock(clockMu);
                                  return now;
                                }});
  }
  void up(const std::string& device, const std::string& frame) {
    ASSERT_TRUE(devices->onMqttMessage("tern/streams/" + device + "/up", frame).ok());
  }
  // Waits until `device` has been sent at least `n` frames; returns them.
  std::vector<json> waitFrames(const std::string& device, size_t n) {
    std::vector<json> got;
    test::eventually([&] {
      got = broker.frames(mqttDeviceDownTopic(device));
      return got.size() >= n;
    }, 20s);
    return got;
  }
  size_t hubStreams() { return hub->statsJson()["streams"].get<size_t>(); }
  void advance(std::chrono::milliseconds d) {
    std::lock_guard lock(clockMu);
    now += d;
  }

  test::TempDir dir;
  MetricsRegistry metrics;
  wasm::Engine engine{test::engineConfig()};
  exec::FunctionTable table{metrics};
  exec::Executor executor{exec::Executor::Options{1, 4}};
  WorkQueue workers{1};
  exec::Invoker invoker{engine, executor, table,
                        [this](std::function<void()> t) { workers.post(std::move(t)); }};
  std::unique_ptr<SqliteStreamStore> store;
  std::unique_ptr<Hub> hub;
  FakeBroker broker;
  std::mutex clockMu;
  std::chrono::steady_clock::time_point now{std::chrono::hours(1)};
  std::unique_ptr<MqttDevices> devices;
};

std::string subscribe(uint64_t stream, const std::string& topic,
                      Guarantee g = Guarantee::kBestEffort) {
  SubscribeFrame f;
  f.stream = stream;
  f.topic = topic;
  f.guarantee = g;
  return subscribeFrameText(f);
}

TEST_F(MqttDevicesTest, FramesInOrderUpdatesOutAndCloseEndsTheConnection) {
  open({});
  // A subscribe, then another and at once its cancel: handled in the order sent, so the
  // second stream is subscribed, then cancelled (a cancel handled first would find no
  // stream and leave it open). Different streams answer independently.
  up("d1", subscribe(1, "temps"));
  up("d1", subscribe(2, "alerts"));
  up("d1", R"({"type":"cancel","stream":2})");
  auto got = waitFrames("d1", 3);
  ASSERT_EQ(got.size(), 3u);
  std::vector<std::string> second;
  for (const auto& f : got) {
    if (f["stream"] == 1) {
      EXPECT_EQ(f["type"], "subscribed");
    } else {
      second.push_back(f["type"].get<std::string>() + " " + f.value("reason", ""));
    }
  }
  EXPECT_EQ(second, (std::vector<std::string>{"subscribed ", "terminate cancelled"}));
  EXPECT_EQ(devices->connections(), 1u);
  EXPECT_TRUE(test::eventually([&] { return hubStreams() == 1; }, 20s)) << hub->statsJson();

  ASSERT_TRUE(store->publish("temps", "{\"c\":21.5}").ok());
  got = waitFrames("d1", 4);
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[3]["type"], "data");
  EXPECT_EQ(got[3]["stream"], 1);
  EXPECT_EQ(got[3]["seq"], 1);
  EXPECT_EQ(got[3]["payload"], json({{"c", 21.5}}));

  // A second device is a second connection; close (its last will) ends the first one's.
  up("d2", subscribe(1, "temps"));
  waitFrames("d2", 1);
  EXPECT_EQ(devices->connections(), 2u);
  EXPECT_TRUE(test::eventually([&] { return hubStreams() == 2; }, 20s)) << hub->statsJson();
  up("d1", R"({"type":"close"})");
  EXPECT_EQ(devices->connections(), 1u);
  EXPECT_TRUE(test::eventually([&] { return hubStreams() == 1; }, 20s)) << hub->statsJson();
  // Nothing more goes to d1: no terminate frame (it is gone), no data.
  ASSERT_TRUE(store->publish("temps", "2").ok());
  waitFrames("d2", 2);
  EXPECT_EQ(broker.frames(mqttDeviceDownTopic("d1")).size(), 4u);
  // A close from a device without a connection changes nothing.
  up("d9", R"({"type":"close"})");
  EXPECT_EQ(devices->connections(), 1u);
}

TEST_F(MqttDevicesTest, BadFramesAndBadNames) {
  open({});
  up("d1", "not json");
  auto got = waitFrames("d1", 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0]["type"], "terminate");
  EXPECT_EQ(got[0]["reason"], "bad_frame");
  EXPECT_FALSE(got[0].contains("stream"));
  EXPECT_TRUE(test::eventually([&] { return devices->connections() == 0; }, 20s));

  // Over the frame limit: refused by its size, without being copied whole.
  up("d2", std::string(kMaxFrameBytes + 100, ' '));
  got = waitFrames("d2", 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0]["reason"], "bad_frame");
  EXPECT_NE(got[0]["message"].get<std::string>().find("at most"), std::string::npos);

  // A topic level that cannot name a device: dropped (acknowledged), nothing sent.
  ASSERT_TRUE(devices->onMqttMessage("tern/streams/bad.name/up", subscribe(1, "t")).ok());
  EXPECT_TRUE(broker.frames("tern/streams/bad.name/down").empty());
  EXPECT_NE(metrics.render().find("tern_stream_mqtt_bad_topics_total 1"), std::string::npos);
}

TEST_F(MqttDevicesTest, IdleDevicesAreClosedAndTheCapRefusesNewOnes) {
  MqttDeviceOptions o;
  o.idleTimeout = 600s;
  o.maxDevices = 1;
  open(o);
  up("d1", subscribe(1, "temps"));
  waitFrames("d1", 1);
  up("d2", subscribe(1, "temps"));
  auto refused = waitFrames("d2", 1);
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_EQ(refused[0]["type"], "terminate");
  EXPECT_EQ(refused[0]["reason"], "too_many_streams");
  EXPECT_EQ(devices->connections(), 1u);

  // A frame keeps d1 alive (a ping too, answered with a pong); 600 s without one closes it.
  advance(599s);
  up("d1", R"({"type":"ping"})");
  EXPECT_EQ(waitFrames("d1", 2)[1], json({{"type", "pong"}}));
  advance(599s);
  devices->sweep();
  EXPECT_EQ(devices->connections(), 1u);
  advance(1s);
  devices->sweep();
  EXPECT_EQ(devices->connections(), 0u);
  auto got = broker.frames(mqttDeviceDownTopic("d1"));
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[2]["type"], "terminate");
  EXPECT_EQ(got[2]["reason"], "idle");
  // Without a connection a ping goes unanswered.
  up("d1", R"({"type":"ping"})");
  EXPECT_EQ(broker.frames(mqttDeviceDownTopic("d1")).size(), 3u);
  EXPECT_TRUE(test::eventually([&] { return hubStreams() == 0; }, 20s));
  // Room again: d2 may connect now.
  up("d2", subscribe(1, "temps"));
  EXPECT_EQ(waitFrames("d2", 2)[1]["type"], "subscribed");
}

// A device's frames wait for the broker's acknowledgements: an at-least-once stream gets
// every update, in order, as the budget frees up, and carries on after the broker was away.
TEST_F(MqttDevicesTest, UnacknowledgedBytesHoldBackFramesUntilTheBrokerHasThem) {
  MqttDeviceOptions o;
  o.maxUnackedBytes = 64;  // less than one data frame: one frame at a time
  open(o);
  up("d1", subscribe(1, "temps", Guarantee::kAtLeastOnce));
  waitFrames("d1", 1);
  broker.ackAll();
  for (int i = 1; i <= 5; ++i) ASSERT_TRUE(store->publish("temps", std::to_string(i)).ok());
  // One frame is out and unacknowledged: nothing more goes until it is acknowledged.
  auto got = waitFrames("d1", 2);
  EXPECT_EQ(got.size(), 2u);
  std::vector<json> all;
  EXPECT_TRUE(test::eventually([&] {
    broker.ackAll();
    all = broker.frames(mqttDeviceDownTopic("d1"));
    return all.size() >= 6;
  }, 20s));
  ASSERT_EQ(all.size(), 6u);
  for (int i = 1; i <= 5; ++i) {
    EXPECT_EQ(all[i]["type"], "data");
    EXPECT_EQ(all[i]["seq"], i);
  }

  // The broker goes away: the frame is held; the sweep finds it back and the stream goes on.
  broker.ackAll();
  broker.setReachable(false);
  ASSERT_TRUE(store->publish("temps", "6").ok());
  ASSERT_TRUE(test::eventually([&] { return broker.refused() >= 1; }, 20s));
  broker.setReachable(true);
  EXPECT_TRUE(test::eventually([&] {
    devices->sweep();
    return broker.frames(mqttDeviceDownTopic("d1")).size() == 7;
  }, 20s));
  EXPECT_EQ(broker.frames(mqttDeviceDownTopic("d1")).back()["seq"], 6);
}

}  // namespace
}  // namespace tern::stream
