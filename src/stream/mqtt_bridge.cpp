#include "stream/mqtt_bridge.h"

#include <fmt/format.h>

#include <algorithm>

#include "util/quote.h"
#include "util/topic.h"

namespace tern::stream {

namespace {

constexpr std::string_view kTernPrefix = "tern/";
constexpr std::string_view kDevicePrefix = "tern/streams/";

}  // namespace

Result<BridgeRule> parseBridgeRule(std::string_view spec) {
  auto bad = [&](std::string_view why) {
    return Error(ErrorCode::kInvalidArgument,
                 fmt::format("stream bridge rule {}: {}", quoteUntrusted(spec, 200), why));
  };
  size_t eq = spec.rfind('=');
  if (eq == std::string_view::npos) return bad("use FILTER=TOPIC, e.g. sensors/+/temp=temperatures");
  BridgeRule rule{std::string(spec.substr(0, eq)), std::string(spec.substr(eq + 1))};
  if (rule.filter.empty()) return bad("the MQTT topic filter before '=' is empty");
  if (auto ok = checkTopicFilter(rule.filter); !ok.ok()) return bad(ok.error().message());
  if (!isTopicName(rule.topic)) {
    return bad("the stream topic after '=' must be 1 to 64 of A-Z, a-z, 0-9, '_' and '-', "
               "starting with a letter or digit");
  }
  if (rule.filter.starts_with(kDevicePrefix)) {
    return bad("tern/streams/ carries device connections' frames, which are never bridged");
  }
  return rule;
}

bool bridgeReaches(std::string_view filter, std::string_view mqttTopic) {
  if (mqttTopic.starts_with(kDevicePrefix)) return false;
  if (mqttTopic.starts_with(kTernPrefix) && !filter.starts_with(kTernPrefix)) return false;
  return topicMatches(filter, mqttTopic);
}

MqttBridge::MqttBridge(std::vector<BridgeRule> rules, TopicLog& log, MetricsRegistry& metrics)
    : log_(log), metrics_(metrics) {
  for (auto& r : rules) {
    Labels labels{{"topic", r.topic}};
    Counter* bridged = &metrics.counter("tern_stream_bridged_total",
                                        "MQTT messages appended to stream topics by bridge rules",
                                        labels);
    Counter* unaccepted = &metrics.counter(
        "tern_stream_bridge_unaccepted_total",
        "MQTT messages a bridge rule could not append (left unacknowledged for redelivery)",
        labels);
    rules_.push_back(Rule{std::move(r), bridged, unaccepted});
  }
}

std::set<std::string> MqttBridge::filters() const {
  std::set<std::string> out;
  for (const auto& r : rules_) out.insert(r.rule.filter);
  return out;
}

Result<void> MqttBridge::onMqttMessage(std::string_view mqttTopic, std::string_view payload) {
  std::vector<std::string_view> done;  // topics this message went to
  for (const auto& r : rules_) {
    const std::string& topic = r.rule.topic;
    if (!bridgeReaches(r.rule.filter, mqttTopic)) continue;
    if (std::find(done.begin(), done.end(), topic) != done.end()) continue;
    done.push_back(topic);
    auto seq = log_.publish(topic, payload);
    if (seq.ok()) {
      r.bridged->inc();
      continue;
    }
    const Error& e = seq.error();
    if (e.code() == ErrorCode::kInvalidArgument || e.code() == ErrorCode::kBodyTooLarge) {
      // It would be refused again on every redelivery: counted, logged and acknowledged.
      metrics_
          .counter("tern_stream_bridge_refused_total",
                   "MQTT messages a stream topic refused (not UTF-8, too large); acknowledged "
                   "and dropped",
                   {{"topic", topic}, {"reason", std::string(errorKind(e.code()).name)}})
          .inc();
      warnings_.warn(fmt::format("stream bridge {}={}: dropped the message on {}: {}",
                                 r.rule.filter, topic, quoteUntrusted(mqttTopic, 200),
                                 e.message()));
      continue;
    }
    r.unaccepted->inc();
    return Error(e.code(), fmt::format("stream bridge {}={}: {}", r.rule.filter, topic, e.message()));
  }
  return {};
}

}  // namespace tern::stream
