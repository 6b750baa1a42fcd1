#pragma once
// The one rule for the names of stream topics (docs/design/streams.md), which the stream
// layer, the host API's capabilities and the MQTT bridge check: 1 to 64 of A-Z, a-z, 0-9,
// '_' and '-', starting with a letter or digit. Safe in URLs, metric labels, NATS subjects
// and JetStream stream names. Not an MQTT topic (util/topic.h).

#include <string_view>

namespace tern {

inline bool isStreamTopicName(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum && (i == 0 || (c != '_' && c != '-'))) return false;
  }
  return true;
}

}  // namespace tern
