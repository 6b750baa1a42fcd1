#pragma once
// MQTT topic names and filters (MQTT 3.1.1 section 4.7), used by MQTT triggers, the host
// API's publish call and its capabilities.

#include <string_view>

#include "util/error.h"

namespace tern {

// A topic name as published: 1 to 65535 bytes of UTF-8 without NUL, no wildcards.
Result<void> checkTopicName(std::string_view topic);
// A subscription filter: like a name, and '+' may fill a whole level, '#' only the last.
Result<void> checkTopicFilter(std::string_view filter);
// Whether `topic` (a valid name) matches `filter` (a valid filter). Names starting with
// '$' are not matched by a filter starting with a wildcard.
bool topicMatches(std::string_view filter, std::string_view topic);

}  // namespace tern
