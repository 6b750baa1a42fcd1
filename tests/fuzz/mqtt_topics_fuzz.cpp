// Fuzz target: what the node decides from MQTT topics and bridge rules (src/util/topic,
// src/stream/mqtt_bridge, src/stream/mqtt_devices). The input is split at the first NUL
// into a filter and a topic. Checked: a filter matches only valid topic names; '#' matches
// every topic and a topic name as a filter matches exactly itself; a device's up topic is
// never bridged; a parsed bridge rule's parts are a valid filter and topic.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "stream/mqtt_bridge.h"
#include "stream/mqtt_devices.h"
#include "util/topic.h"

using namespace tern;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view all(reinterpret_cast<const char*>(data), size);
  size_t cut = all.find('\0');
  std::string_view filter = all.substr(0, cut);
  std::string_view topic = cut == std::string_view::npos ? std::string_view() : all.substr(cut + 1);

  bool filterOk = checkTopicFilter(filter).ok();
  bool topicOk = checkTopicName(topic).ok();
  if (topicOk) {
    FUZZ_CHECK(checkTopicFilter(topic).ok());  // a topic name is a filter matching itself
    FUZZ_CHECK(topicMatches(topic, topic));
    if (!topic.starts_with("$")) FUZZ_CHECK(topicMatches("#", topic));
  }
  if (filterOk && topicOk) (void)topicMatches(filter, topic);
  if (filterOk && topicOk && stream::isMqttDeviceUpTopic(topic)) {
    FUZZ_CHECK(!stream::bridgeReaches(filter, topic));
  }
  if (stream::isMqttDeviceName(filter)) {
    std::string down = stream::mqttDeviceDownTopic(filter);
    FUZZ_CHECK(checkTopicName(down).ok());
    FUZZ_CHECK(!stream::isMqttDeviceUpTopic(down));
  }
  auto rule = stream::parseBridgeRule(all);
  if (rule.ok()) {
    FUZZ_CHECK(checkTopicFilter(rule->filter).ok());
  } else {
    FUZZ_CHECK(!rule.error().message().empty());
  }
  return 0;
}
