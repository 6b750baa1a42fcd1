#pragma once
// The stream bridge (docs/design/streams.md, "MQTT"): rules FILTER=TOPIC under which MQTT
// messages on the node's broker session become updates of a stream topic, so that devices
// that publish over MQTT feed the topics devices follow.
//
// A message is acknowledged to the broker only once its updates are committed: a topic
// whose backend is unavailable (or whose storage failed) leaves it unacknowledged, and the
// broker delivers it again. A message the topic refuses (not UTF-8, over the payload
// limit) can never succeed: it is counted, logged (rate-limited) and acknowledged.

#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "stream/limited_log.h"
#include "stream/topic_log.h"
#include "util/error.h"
#include "util/metrics.h"

namespace tern::stream {

struct BridgeRule {
  std::string filter;  // an MQTT topic filter (util/topic.h)
  std::string topic;   // a stream topic name (isTopicName)
};

// Parses "FILTER=TOPIC", split at the last '=' (a topic name has none; a filter may).
// Errors: kInvalidArgument naming the rule and what is wrong with it.
Result<BridgeRule> parseBridgeRule(std::string_view spec);

// Whether a message on the MQTT topic `mqttTopic` reaches a bridge rule's `filter`. Device
// connections' topics (tern/streams/...) reach none: bridging a device's frames, or the
// node's own frames to it, into a topic that device follows would feed a loop. Other
// topics under tern/ (dead letters) reach only filters that start with tern/ themselves.
bool bridgeReaches(std::string_view filter, std::string_view mqttTopic);

class MqttBridge {
 public:
  MqttBridge(std::vector<BridgeRule> rules, TopicLog& log, MetricsRegistry& metrics);

  // The filters to subscribe to.
  std::set<std::string> filters() const;

  // An MQTT message (part of MqttClient::OnMessage): one update in each topic whose rule
  // reaches it (one per topic, however many of its rules do). An error leaves the message
  // unacknowledged; updates committed before it are committed again on redelivery (at
  // least once).
  Result<void> onMqttMessage(std::string_view mqttTopic, std::string_view payload);

 private:
  struct Rule {
    BridgeRule rule;
    Counter* bridged;
    Counter* unaccepted;
  };
  std::vector<Rule> rules_;
  TopicLog& log_;
  MetricsRegistry& metrics_;
  LimitedLog warnings_;
};

}  // namespace tern::stream
