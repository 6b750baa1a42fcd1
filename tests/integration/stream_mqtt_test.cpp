// Streams over MQTT end to end: a real mosquitto, a real ternd, mosquitto_pub/_sub playing
// the publishers and devices. Bridge rules (--stream-bridge) turn MQTT messages into topic
// updates; devices (--stream-mqtt-devices) speak the frames of frames.h on
// tern/streams/<device>/up and /down.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "mosquitto_process.h"
#include "raw_http.h"
#include "ternd_process.h"
#include "test_support.h"
#include "util/subprocess.h"

namespace tern {
namespace {

using json = nlohmann::json;
using test::request;

class StreamMqttTest : public ::testing::Test {
 protected:
  test::TempDir dir;
  std::filesystem::path data() const { return dir.path() / "data"; }

  // Waits until the node's MQTT session is up and the broker acknowledged its subscription.
  static void waitSubscribed(test::TerndProcess& node) {
    bool ready = test::eventually([&] {
      std::string log = node.log();
      size_t connected = log.find("MQTT connected");
      return connected != std::string::npos && log.find("acknowledged by", connected) != std::string::npos;
    });
    if (!ready) FAIL() << "ternd did not connect and subscribe to the broker:\n" << node.log();
  }

  static json get(test::TerndProcess& node, const std::string& path) {
    auto r = request(node.port(), "GET", path, "", node.auth());
    EXPECT_EQ(r.status, 200) << path << ": " << r.body;
    return json::parse(r.body, nullptr, false);
  }

  // Runs ternd to its exit (it is expected not to start); returns its status and output.
  SubprocessResult runTernd(std::vector<std::string> args) {
    std::vector<std::string> argv{(test::binDir() / "ternd").string(), "--data", data().string(),
                                  "--listen", "127.0.0.1:0", "--coap-listen", "off"};
    argv.insert(argv.end(), args.begin(), args.end());
    SubprocessOptions o;
    o.timeout = std::chrono::seconds(60);
    auto r = runSubprocess(argv, o);
    EXPECT_TRUE(r.ok());
    return r.ok() ? *r : SubprocessResult{};
  }

  // The JSON of a frame as mosquitto_sub -v shows it: "TOPIC FRAME".
  static json frameOf(const std::string& line, const std::string& topic) {
    EXPECT_EQ(line.rfind(topic + " ", 0), 0u) << line;
    return json::parse(line.substr(topic.size() + 1), nullptr, false);
  }
};

TEST_F(StreamMqttTest, BridgeRulesNeedABrokerAndAValidRule) {
  auto r = runTernd({"--stream-bridge", "sensors/+/temp=temps"});
  EXPECT_EQ(r.exitStatus, 64) << r.output;
  EXPECT_NE(r.output.find("--stream-bridge needs --mqtt-broker"), std::string::npos) << r.output;
  r = runTernd({"--stream-mqtt-devices"});
  EXPECT_EQ(r.exitStatus, 64) << r.output;
  EXPECT_NE(r.output.find("--stream-mqtt-devices needs --mqtt-broker"), std::string::npos) << r.output;

  test::MosquittoProcess broker(dir.path() / "broker");
  r = runTernd({"--mqtt-broker", broker.address(), "--stream-bridge", "sensors/#/temp=temps"});
  EXPECT_EQ(r.exitStatus, 64) << r.output;
  EXPECT_NE(r.output.find("stream bridge rule \"sensors/#/temp=temps\""), std::string::npos) << r.output;
  r = runTernd({"--mqtt-broker", broker.address(), "--stream-bridge", "sensors/+/temp=no/slash"});
  EXPECT_EQ(r.exitStatus, 64) << r.output;
  EXPECT_NE(r.output.find("the stream topic after '='"), std::string::npos) << r.output;
}

TEST_F(StreamMqttTest, BridgedMessagesBecomeTopicUpdates) {
  test::MosquittoProcess broker(dir.path() / "broker");
  test::TerndProcess node(data(), {"--mqtt-broker", broker.address(), "--stream-bridge",
                                   "sensors/+/temp=temps", "--topic-max-payload", "64"});
  waitSubscribed(node);

  broker.publish("sensors/k1/temp", R"({"celsius":21.5})");
  broker.publish("sensors/k1/humidity", "40");  // no rule
  // Never acceptable for a topic: acknowledged and dropped, not redelivered forever.
  broker.publish("sensors/k2/temp", std::string("\xff\xfe", 2));
  broker.publish("sensors/k2/temp", std::string(65, 'x'));
  broker.publish("sensors/k2/temp", "22");

  json topic;
  ASSERT_TRUE(test::eventually([&] {
    topic = get(node, "/v1/topics/temps?after=0");
    return topic.is_object() && topic["updates"].size() >= 2;
  })) << topic.dump() << node.log();
  ASSERT_EQ(topic["updates"].size(), 2u) << topic.dump();
  EXPECT_EQ(topic["updates"][0]["seq"], 1);
  EXPECT_EQ(topic["updates"][0]["payload"], json({{"celsius", 21.5}}));
  EXPECT_EQ(topic["updates"][1]["seq"], 2);
  EXPECT_EQ(topic["updates"][1]["payload"], 22);

  std::string metrics = request(node.port(), "GET", "/metrics").body;
  EXPECT_NE(metrics.find("tern_stream_bridged_total{topic=\"temps\"} 2"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("tern_stream_bridge_refused_total{reason=\"invalid_argument\",topic=\"temps\"} 1"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("tern_stream_bridge_refused_total{reason=\"body_too_large\",topic=\"temps\"} 1"),
            std::string::npos)
      << metrics;
  EXPECT_NE(node.log().find("stream bridge sensors/+/temp=temps: dropped the message"), std::string::npos);

  // Messages published while the node is down are bridged when it is back (its session
  // kept them).
  ASSERT_EQ(node.terminate(), 0);
  broker.publish("sensors/k3/temp", "23");
  node.restart();
  ASSERT_TRUE(test::eventually([&] {
    topic = get(node, "/v1/topics/temps?after=2");
    return topic.is_object() && topic["updates"].size() == 1;
  })) << topic.dump() << node.log();
  EXPECT_EQ(topic["updates"][0]["payload"], 23);
}

TEST_F(StreamMqttTest, DevicesSpeakFramesOverMqtt) {
  test::MosquittoProcess broker(dir.path() / "broker");
  test::TerndProcess node(data(), {"--mqtt-broker", broker.address(), "--stream-mqtt-devices"});
  waitSubscribed(node);

  // d1 subscribes and gets an update published over HTTP as a data frame.
  const std::string down1 = "tern/streams/d1/down";
  test::MosquittoProcess::Subscription d1(broker, down1);
  broker.publish("tern/streams/d1/up", R"({"type":"subscribe","stream":1,"topic":"temps"})");
  auto got = d1.waitFor(1);
  ASSERT_EQ(got.size(), 1u) << node.log();
  json f = frameOf(got[0], down1);
  EXPECT_EQ(f["type"], "subscribed");
  EXPECT_EQ(f["stream"], 1);
  EXPECT_EQ(f["topic"], "temps");
  auto posted = request(node.port(), "POST", "/v1/topics/temps", R"({"celsius":21.5})", node.auth());
  ASSERT_EQ(posted.status, 200) << posted.body;
  got = d1.waitFor(2);
  ASSERT_EQ(got.size(), 2u) << node.log();
  f = frameOf(got[1], down1);
  EXPECT_EQ(f["type"], "data");
  EXPECT_EQ(f["stream"], 1);
  EXPECT_EQ(f["seq"], 1);
  EXPECT_EQ(f["payload"], json({{"celsius", 21.5}}));

  // d2 sends something that is not a frame: its connection ends with a terminate frame.
  const std::string down2 = "tern/streams/d2/down";
  test::MosquittoProcess::Subscription d2(broker, down2);
  broker.publish("tern/streams/d2/up", "{oops");
  got = d2.waitFor(1);
  ASSERT_EQ(got.size(), 1u) << node.log();
  f = frameOf(got[0], down2);
  EXPECT_EQ(f["type"], "terminate");
  EXPECT_EQ(f["reason"], "bad_frame");

  // d3 vanishes: the broker publishes its last will, {"type":"close"}, which ends its
  // streams; d1 closes its own.
  test::MosquittoProcess::Subscription d3(broker, "tern/streams/d3/down",
                                          {"tern/streams/d3/up", R"({"type":"close"})"});
  broker.publish("tern/streams/d3/up", R"({"type":"subscribe","stream":7,"topic":"temps"})");
  ASSERT_EQ(d3.waitFor(1).size(), 1u) << node.log();
  json streams;
  ASSERT_TRUE(test::eventually([&] {
    streams = get(node, "/v1/streams");
    return streams["streams"] == 2 && streams["connections"] == 2;
  })) << streams.dump();
  d3.vanish();
  ASSERT_TRUE(test::eventually([&] {
    streams = get(node, "/v1/streams");
    return streams["streams"] == 1 && streams["connections"] == 1;
  })) << streams.dump();
  broker.publish("tern/streams/d1/up", R"({"type":"close"})");
  ASSERT_TRUE(test::eventually([&] {
    streams = get(node, "/v1/streams");
    return streams["streams"] == 0 && streams["connections"] == 0;
  })) << streams.dump();
  std::string metrics = request(node.port(), "GET", "/metrics").body;
  EXPECT_NE(metrics.find("tern_stream_mqtt_devices_closed_total{reason=\"close\"} 2"), std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("tern_stream_mqtt_devices 0"), std::string::npos) << metrics;
}

}  // namespace
}  // namespace tern
