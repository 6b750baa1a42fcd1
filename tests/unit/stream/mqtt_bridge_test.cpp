// The stream bridge's rules and what it acknowledges: a committed update or a message the
// topic can never take, but not one its backend could not take now.

#include "stream/mqtt_bridge.h"

#include <gtest/gtest.h>

#include "stream/sqlite_topic_log.h"
#include "test_support.h"

namespace tern::stream {
namespace {

TEST(BridgeRule, ParseTable) {
  struct Case {
    std::string spec;
    bool ok;
    std::string filterOrError;  // the filter when ok, a fragment of the error otherwise
    std::string topic = "";
  };
  const Case cases[] = {
      {"sensors/+/temp=temperatures", true, "sensors/+/temp", "temperatures"},
      {"#=all", true, "#", "all"},
      {"a=b=c", true, "a=b", "c"},  // a filter may hold '='; a topic name may not
      {"tern/dead/#=dead-letters", true, "tern/dead/#", "dead-letters"},
      {"sensors", false, "use FILTER=TOPIC"},
      {"=t", false, "filter before '=' is empty"},
      {"a/#/b=t", false, "stream bridge rule \"a/#/b=t\""},
      {"a/b=", false, "the stream topic after '='"},
      {"a/b=x/y", false, "the stream topic after '='"},
      {"a/b=_x", false, "the stream topic after '='"},
      {"tern/streams/+/up=t", false, "never bridged"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.spec);
    auto r = parseBridgeRule(c.spec);
    ASSERT_EQ(r.ok(), c.ok) << (r.ok() ? r->filter : r.error().message());
    if (c.ok) {
      EXPECT_EQ(r->filter, c.filterOrError);
      EXPECT_EQ(r->topic, c.topic);
    } else {
      EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
      EXPECT_NE(r.error().message().find(c.filterOrError), std::string::npos) << r.error().message();
    }
  }
}

TEST(BridgeRule, ReservedTopicsReachOnlyFiltersThatNameThem) {
  EXPECT_TRUE(bridgeReaches("#", "sensors/k1/temp"));
  EXPECT_TRUE(bridgeReaches("sensors/+/temp", "sensors/k1/temp"));
  EXPECT_FALSE(bridgeReaches("sensors/+/temp", "sensors/k1/humidity"));
  // Device connections' frames never, whatever the filter: that would feed a loop.
  EXPECT_FALSE(bridgeReaches("#", "tern/streams/d1/up"));
  EXPECT_FALSE(bridgeReaches("#", "tern/streams/d1/down"));
  EXPECT_FALSE(bridgeReaches("tern/#", "tern/streams/d1/down"));
  // Dead letters only for a filter under tern/.
  EXPECT_FALSE(bridgeReaches("#", "tern/dead/fn"));
  EXPECT_FALSE(bridgeReaches("+/dead/fn", "tern/dead/fn"));
  EXPECT_TRUE(bridgeReaches("tern/dead/#", "tern/dead/fn"));
}

// A topic log whose publish answers what the test says.
class ScriptedLog : public TopicLog {
 public:
  Result<uint64_t> answer = uint64_t{1};
  std::vector<std::pair<std::string, std::string>> published;

  Result<uint64_t> publish(std::string_view topic, std::string_view payload) override {
    if (answer.ok()) published.emplace_back(std::string(topic), std::string(payload));
    return answer;
  }
  Result<std::vector<Update>> read(std::string_view, uint64_t, size_t) override {
    return std::vector<Update>{};
  }
  Result<TopicBounds> bounds(std::string_view) override { return TopicBounds{}; }
  Result<std::vector<TopicInfo>> topics() override { return std::vector<TopicInfo>{}; }
  Result<std::unique_ptr<Feed>> follow(std::string_view, OnUpdate) override {
    return Error(ErrorCode::kUnavailable, "not here");
  }
};

std::vector<BridgeRule> rules(std::initializer_list<const char*> specs) {
  std::vector<BridgeRule> out;
  for (const char* s : specs) out.push_back(*parseBridgeRule(s));
  return out;
}

TEST(MqttBridge, MessagesBecomeUpdatesOncePerTopic) {
  test::TempDir dir;
  auto store = SqliteStreamStore::open(dir.path() / "streams.db", Retention{});
  ASSERT_TRUE(store.ok()) << store.error().message();
  MetricsRegistry metrics;
  MqttBridge bridge(rules({"sensors/+/temp=temps", "sensors/#=all", "sensors/k1/#=all"}), **store,
                    metrics);
  EXPECT_EQ(bridge.filters(), (std::set<std::string>{"sensors/#", "sensors/+/temp", "sensors/k1/#"}));

  ASSERT_TRUE(bridge.onMqttMessage("sensors/k1/temp", "{\"c\":21.5}").ok());
  ASSERT_TRUE(bridge.onMqttMessage("sensors/k2/humidity", "40").ok());
  ASSERT_TRUE(bridge.onMqttMessage("other/k1/temp", "x").ok());  // no rule
  auto temps = (*store)->read("temps", 0, 10);
  ASSERT_TRUE(temps.ok());
  ASSERT_EQ(temps->size(), 1u);
  EXPECT_EQ((*temps)[0].payload, "{\"c\":21.5}");
  auto all = (*store)->read("all", 0, 10);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);  // two rules for "all" matched the first message: one update
  EXPECT_EQ((*all)[0].payload, "{\"c\":21.5}");
  EXPECT_EQ((*all)[1].payload, "40");
  EXPECT_NE(metrics.render().find("tern_stream_bridged_total{topic=\"all\"} 2"), std::string::npos)
      << metrics.render();
}

TEST(MqttBridge, RefusedMessagesAreAcknowledgedAndUnavailableOnesAreNot) {
  test::TempDir dir;
  Retention small;
  small.maxPayloadBytes = 8;
  auto store = SqliteStreamStore::open(dir.path() / "streams.db", small);
  ASSERT_TRUE(store.ok());
  MetricsRegistry metrics;
  MqttBridge bridge(rules({"in=t"}), **store, metrics);
  // Never acceptable: acknowledged (ok), counted, nothing appended.
  EXPECT_TRUE(bridge.onMqttMessage("in", std::string("\xff\xfe", 2)).ok());
  EXPECT_TRUE(bridge.onMqttMessage("in", "far too large for eight bytes").ok());
  EXPECT_EQ((*store)->bounds("t")->last, 0u);
  std::string text = metrics.render();
  EXPECT_NE(text.find("tern_stream_bridge_refused_total{reason=\"invalid_argument\",topic=\"t\"} 1"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("tern_stream_bridge_refused_total{reason=\"body_too_large\",topic=\"t\"} 1"),
            std::string::npos)
      << text;

  // A backend that cannot take it now: an error, so the message stays unacknowledged.
  ScriptedLog log;
  MqttBridge down(rules({"in=t"}), log, metrics);
  log.answer = Error(ErrorCode::kUnavailable, "JetStream is not reachable");
  auto r = down.onMqttMessage("in", "42");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(r.error().message().find("stream bridge in=t: JetStream is not reachable"), std::string::npos);
  log.answer = Error(ErrorCode::kIo, "disk I/O error");
  EXPECT_FALSE(down.onMqttMessage("in", "42").ok());
  EXPECT_NE(metrics.render().find("tern_stream_bridge_unaccepted_total{topic=\"t\"} 2"), std::string::npos);
  // Redelivered once the backend is back: appended.
  log.answer = uint64_t{7};
  EXPECT_TRUE(down.onMqttMessage("in", "42").ok());
  ASSERT_EQ(log.published.size(), 1u);
  EXPECT_EQ(log.published[0], std::make_pair(std::string("t"), std::string("42")));
}

}  // namespace
}  // namespace tern::stream
