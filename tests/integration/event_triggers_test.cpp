// MQTT and time triggers end to end: a real mosquitto, a real ternd, mosquitto_pub/_sub.

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>

#include "mosquitto_process.h"
#include "raw_http.h"
#include "ternd_process.h"
#include "test_support.h"

namespace tern {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;
using test::request;

std::string percent(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char b[4];
      snprintf(b, sizeof b, "%%%02X", c);
      out += b;
    }
  }
  return out;
}

class EventTriggersTest : public ::testing::Test {
 protected:
  test::TempDir dir;
  std::filesystem::path data() const { return dir.path() / "data"; }

  static std::string example(const char* name) {
    return test::readText(test::examplesDir() / (std::string(name) + ".wasm"));
  }

  // Deploys `wasm` as `name` with the given triggers, reply topic and extra query.
  test::HttpReply deploy(test::TerndProcess& node, const std::string& name, const std::string& wasm,
                         const std::vector<std::string>& triggers, const std::string& reply = "",
                         const std::string& extra = "") {
    std::string q;
    auto add = [&q](const std::string& key, const std::string& value) {
      q.append(q.empty() ? "?" : "&").append(key).append(value);
    };
    for (const auto& t : triggers) add("trigger=", percent(t));
    if (!reply.empty()) add("reply_topic=", percent(reply));
    if (!extra.empty()) add("", extra);
    return request(node.port(), "PUT", "/v1/functions/" + name + q, wasm, node.auth());
  }

  std::vector<std::string> nodeArgs(const test::MosquittoProcess& broker) {
    return {"--mqtt-broker", broker.address(), "--async-backoff-ms", "50", "--async-attempts", "3"};
  }

  // Waits until the node's MQTT session is up and the broker has acknowledged its
  // subscription (each test deploys its triggers before it waits).
  static void waitConnected(test::TerndProcess& node) {
    bool ready = test::eventually([&] {
      std::string log = node.log();
      size_t connected = log.find("MQTT connected");
      return connected != std::string::npos &&
             log.find("acknowledged by", connected) != std::string::npos;
    });
    if (!ready) FAIL() << "ternd did not connect and subscribe to the broker:\n" << node.log();
  }
};

TEST_F(EventTriggersTest, MessagesInvokeTheFunctionAndRepliesArePublished) {
  test::MosquittoProcess broker(dir.path() / "broker");
  test::TerndProcess node(data(), nodeArgs(broker));
  auto d = deploy(node, "echo", example("echo"), {"mqtt:in/+/data"}, "out/echo");
  ASSERT_EQ(d.status, 201) << d.body;
  EXPECT_NE(d.body.find("\"triggers\":[\"mqtt:in/+/data\"]"), std::string::npos) << d.body;
  waitConnected(node);

  test::MosquittoProcess::Subscription replies(broker, "out/#");
  broker.publish("in/k1/data", "reading 1");
  broker.publish("in/k2/other", "not for echo");
  broker.publish("in/k2/data", "reading 2");
  broker.publish("in/k3/data", "reading 3");
  auto got = replies.waitFor(3);
  ASSERT_EQ(got.size(), 3u) << node.log();
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got[0], "out/echo reading 1");
  EXPECT_EQ(got[1], "out/echo reading 2");
  EXPECT_EQ(got[2], "out/echo reading 3");
  // The node stores each message as a job when it arrives, in publish order: once the last
  // one has been answered, the one on another topic would have been counted before it.
  EXPECT_EQ(node.metric("tern_mqtt_messages_total"), 3) << node.log();

  // Binary and empty payloads arrive intact.
  test::MosquittoProcess::Subscription raw(broker, "out/#");
  broker.publish("in/k3/data", std::string("\x01\x02\xfe", 3));
  auto bin = raw.waitFor(1);
  ASSERT_EQ(bin.size(), 1u);
  EXPECT_EQ(bin[0], std::string("out/echo \x01\x02\xfe", 12));
  broker.publish("in/k4/data", "");
  auto empty = raw.waitFor(2);
  ASSERT_EQ(empty.size(), 2u) << node.log();
  EXPECT_EQ(empty[1], "out/echo (null)");  // how mosquitto_sub -v shows a zero-length message

  EXPECT_EQ(node.metric("tern_mqtt_messages_total"), 5);
}

TEST_F(EventTriggersTest, MessagesSentWhileTheNodeWasDownAreProcessedAfterItReturns) {
  test::MosquittoProcess broker(dir.path() / "broker");
  test::TerndProcess node(data(), nodeArgs(broker));
  ASSERT_EQ(deploy(node, "echo", example("echo"), {"mqtt:jobs/#"}, "done/echo").status, 201);
  waitConnected(node);
  ASSERT_EQ(node.terminate(), 0);

  test::MosquittoProcess::Subscription replies(broker, "done/#");
  for (int i = 0; i < 5; ++i) broker.publish("jobs/" + std::to_string(i), "job " + std::to_string(i));
  node.restart();
  auto got = replies.waitFor(5);
  EXPECT_EQ(got.size(), 5u) << node.log();
}

TEST_F(EventTriggersTest, FailuresAreRetriedThenDeadLettered) {
  test::MosquittoProcess broker(dir.path() / "broker");
  test::TerndProcess node(data(), nodeArgs(broker));
  ASSERT_EQ(deploy(node, "fails", example("exit3"),
                   {"mqtt:work"}).status,
            201);
  waitConnected(node);
  test::MosquittoProcess::Subscription dead(broker, "tern/dead/#");
  broker.publish("work", "payload that fails");
  auto got = dead.waitFor(1);
  ASSERT_EQ(got.size(), 1u) << node.log();
  ASSERT_EQ(got[0].rfind("tern/dead/fails ", 0), 0u) << got[0];
  auto letter = json::parse(got[0].substr(16));
  EXPECT_EQ(letter["function"], "fails");
  EXPECT_EQ(letter["topic"], "work");
  EXPECT_EQ(letter["attempts"], 3);
  EXPECT_FALSE(letter["error"]["code"].get<std::string>().empty());
  EXPECT_EQ(letter["payload_base64"], "cGF5bG9hZCB0aGF0IGZhaWxz");
  // The function ran once per attempt.
  auto info = request(node.port(), "GET", "/v1/functions/fails/logs", "", node.auth());
  EXPECT_EQ(json::parse(info.body)["invocations"].size(), 3u) << info.body;
}

TEST_F(EventTriggersTest, OversizedPayloadGoesStraightToTheDeadLetters) {
  test::MosquittoProcess broker(dir.path() / "broker");
  test::TerndProcess node(data(), nodeArgs(broker));
  ASSERT_EQ(deploy(node, "echo", example("echo"), {"mqtt:big"}, "out").status, 201);
  waitConnected(node);
  test::MosquittoProcess::Subscription dead(broker, "tern/dead/#");
  broker.publish("big", std::string(7u << 20, 'x'));
  auto got = dead.waitFor(1);
  ASSERT_EQ(got.size(), 1u) << node.log();
  auto letter = json::parse(got[0].substr(got[0].find(' ') + 1));
  EXPECT_EQ(letter["error"]["code"], "body_too_large");
  // The node keeps serving triggers.
  test::MosquittoProcess::Subscription out(broker, "out");
  broker.publish("big", "small");
  EXPECT_EQ(out.waitFor(1).size(), 1u);
}

TEST_F(EventTriggersTest, BrokerDownAtStartOrLostMidRunNeverStopsHttpServing) {
  test::MosquittoProcess broker(dir.path() / "broker");
  broker.stop();
  test::TerndProcess node(data(), nodeArgs(broker));
  ASSERT_EQ(deploy(node, "echo", example("echo"), {"mqtt:in"}, "out").status, 201);
  EXPECT_EQ(request(node.port(), "POST", "/fn/echo", "over http").body, "over http");

  broker.start();
  waitConnected(node);
  {
    test::MosquittoProcess::Subscription out(broker, "out");
    broker.publish("in", "first");
    EXPECT_EQ(out.waitFor(1).size(), 1u) << node.log();
  }
  broker.stop();
  EXPECT_EQ(request(node.port(), "POST", "/fn/echo", "still").body, "still");
  broker.start();
  test::MosquittoProcess::Subscription out(broker, "out");
  // The node reconnects with backoff; a message published meanwhile waits in its session.
  broker.publish("in", "second");
  auto got = out.waitFor(1, 30000);
  ASSERT_EQ(got.size(), 1u) << node.log();
  EXPECT_EQ(got[0], "out second");
}

TEST_F(EventTriggersTest, ConnectsOverTlsWithAPassword) {
  test::MosquittoProcess::Options o;
  o.tls = true;
  o.username = "tern-node";
  o.password = "s3cret pass";
  test::MosquittoProcess broker(dir.path() / "broker", o);
  { std::ofstream(dir.path() / "mqtt.password") << o.password << "\n"; }
  { std::ofstream(dir.path() / "wrong.password") << "not the password\n"; }

  // A wrong password is refused by the broker; the node keeps serving HTTP and retrying.
  {
    test::TerndProcess wrong(dir.path() / "wrong",
                             {"--mqtt-broker", broker.address(), "--mqtt-username", "tern-node",
                              "--mqtt-password-file", (dir.path() / "wrong.password").string(),
                              "--mqtt-ca-file", broker.caFile().string()});
    ASSERT_TRUE(test::eventually(
        [&] { return wrong.log().find("refused the connection") != std::string::npos; }))
        << wrong.log();
    EXPECT_EQ(wrong.log().find("MQTT connected"), std::string::npos) << wrong.log();
    EXPECT_EQ(request(wrong.port(), "GET", "/healthz").status, 200);
  }

  test::TerndProcess node(data(), {"--mqtt-broker", broker.address(), "--mqtt-username",
                                   "tern-node", "--mqtt-password-file",
                                   (dir.path() / "mqtt.password").string(), "--mqtt-ca-file",
                                   broker.caFile().string()});
  ASSERT_EQ(deploy(node, "echo", example("echo"), {"mqtt:secure/in"}, "secure/out").status, 201);
  waitConnected(node);
  test::MosquittoProcess::Subscription out(broker, "secure/out");
  broker.publish("secure/in", "over tls");
  auto got = out.waitFor(1);
  ASSERT_EQ(got.size(), 1u) << node.log();
  EXPECT_EQ(got[0], "secure/out over tls");
}

TEST_F(EventTriggersTest, TimeTriggersRunTheFunction) {
  test::TerndProcess node(data());
  ASSERT_EQ(deploy(node, "tick", example("hello"), {"every:1s"}).status, 201);
  EXPECT_EQ(node.metric("tern_schedules"), 1);
  auto runs = [&] {
    auto logs = request(node.port(), "GET", "/v1/functions/tick/logs", "", node.auth());
    return json::parse(logs.body)["invocations"].size();
  };
  EXPECT_TRUE(test::eventually([&] { return runs() >= 2; })) << node.log();
  // Removing the function removes its schedule: nothing is left to fire. (The scheduler's
  // own tests show that a removed schedule never fires again.)
  ASSERT_EQ(request(node.port(), "DELETE", "/v1/functions/tick", "", node.auth()).status, 200);
  EXPECT_TRUE(test::eventually([&] { return node.metric("tern_schedules") == 0; }));
  ASSERT_EQ(deploy(node, "tick", example("hello"), {}).status, 201);
  EXPECT_EQ(node.metric("tern_schedules"), 0);
  // Runs stored before the removal have ended; none of them ran the new version.
  ASSERT_TRUE(test::eventually([&] {
    return node.metric("tern_async_queue_depth") == 0 && node.metric("tern_async_in_flight") == 0;
  })) << node.log();
  EXPECT_EQ(runs(), 0u);
}

TEST_F(EventTriggersTest, BadTriggersAreRefusedAtDeploy) {
  test::TerndProcess node(data());
  struct Case {
    std::vector<std::string> triggers;
    std::string reply;
    std::string says;
  };
  const std::vector<Case> cases = {
      {{"kafka:orders"}, "", "unknown trigger kind"},
      {{"cron:61 * * * *"}, "", "minute"},
      {{"cron:not a cron"}, "", "cron"},
      {{"every:0s"}, "", "every"},
      {{"mqtt:a/#/b"}, "", "'#' must be the last level"},
      {{"mqtt:data/#"}, "data/out", "would invoke the function again"},
      {{}, "out", "needs an MQTT trigger"},
  };
  for (const auto& c : cases) {
    auto r = deploy(node, "bad", example("echo"), c.triggers, c.reply);
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_NE(r.body.find(c.says), std::string::npos) << r.body;
  }
  auto ls = request(node.port(), "GET", "/v1/functions", "", node.auth());
  EXPECT_EQ(ls.body.find("\"bad\""), std::string::npos) << ls.body;
}

}  // namespace
}  // namespace tern

namespace tern {
namespace {

// The IoT pipeline of examples/iot-pipeline: readings over MQTT, a rolling mean in KV,
// alerts published by the function itself.
TEST_F(EventTriggersTest, IotPipelineExampleRaisesAnAlertForAnAnomalousReading) {
  test::MosquittoProcess broker(dir.path() / "broker");
  test::TerndProcess node(data(), nodeArgs(broker));
  auto d = deploy(node, "detector", example("detector"), {"mqtt:sensors/+/temperature"},
                  "processed/detector", "allow=kv&allow=" + percent("publish:alerts/#"));
  ASSERT_EQ(d.status, 201) << d.body;
  waitConnected(node);

  test::MosquittoProcess::Subscription alerts(broker, "alerts/#");
  test::MosquittoProcess::Subscription processed(broker, "processed/#");
  const std::vector<std::string> readings = {"20.0", "20.3", "19.8", "20.1", "{\"celsius\": 20.2}",
                                             "19.9", "35.5"};
  for (size_t i = 0; i < readings.size(); ++i) {
    broker.publish("sensors/k1/temperature", readings[i]);
    // One at a time, so the rolling mean sees them in order.
    ASSERT_EQ(processed.waitFor(i + 1).size(), i + 1) << node.log();
  }
  auto got = alerts.waitFor(1);
  ASSERT_EQ(got.size(), 1u) << node.log();
  ASSERT_EQ(got[0].rfind("alerts/k1 ", 0), 0u) << got[0];
  auto alert = json::parse(got[0].substr(10));
  EXPECT_EQ(alert["device"], "k1");
  EXPECT_DOUBLE_EQ(alert["celsius"].get<double>(), 35.5);
  EXPECT_NEAR(alert["mean"].get<double>(), 20.0, 0.5);
  auto lines = processed.waitFor(readings.size());
  EXPECT_NE(lines.back().find("k1 35.50 ANOMALY"), std::string::npos) << lines.back();

  // A reading that is not a number fails (after its retries) into the dead letters.
  test::MosquittoProcess::Subscription dead(broker, "tern/dead/#");
  broker.publish("sensors/k1/temperature", "warm-ish");
  auto letters = dead.waitFor(1);
  ASSERT_EQ(letters.size(), 1u) << node.log();
  EXPECT_NE(letters[0].find("\"function\":\"detector\""), std::string::npos) << letters[0];

  // Without the publish capability the alert is refused and the run fails with the reason.
  auto d2 = deploy(node, "detector", example("detector"), {"mqtt:sensors/+/temperature"},
                   "processed/detector", "allow=kv");
  ASSERT_EQ(d2.status, 201) << d2.body;
  broker.publish("sensors/k1/temperature", "40.0");
  auto letters2 = dead.waitFor(2);
  ASSERT_EQ(letters2.size(), 2u) << node.log();
  auto logs = request(node.port(), "GET", "/v1/functions/detector/logs", "", node.auth());
  EXPECT_NE(logs.body.find("publish:"), std::string::npos) << logs.body;
}

}  // namespace
}  // namespace tern
