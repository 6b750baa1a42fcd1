#pragma once
// The triggers a deploy may attach to a function besides HTTP and CoAP (which serve every
// function): "mqtt:TOPIC_FILTER", "cron:EXPR" and "every:DURATION", plus the reply topic of
// MQTT triggers. Checked once at deploy, so a bad trigger is refused with a clear error
// instead of failing later in the node.

#include <string>
#include <string_view>
#include <vector>

#include "util/error.h"

namespace tern::events {

enum class TriggerKind { kMqtt, kCron, kEvery };

struct TriggerSpec {
  TriggerKind kind;
  std::string text;  // after "KIND:": the topic filter, cron expression or duration
  std::string spec;  // the whole string as deployed
};

inline constexpr size_t kMaxTriggers = 32;

// Splits and checks one trigger string. Errors: kInvalidArgument naming the trigger.
Result<TriggerSpec> parseTrigger(std::string_view spec);

// Checks a deploy's triggers and reply topic together: each trigger parses, none repeats,
// at most kMaxTriggers, a reply topic is a valid topic name, needs an MQTT trigger, and is
// not matched by the function's own filters (its replies would invoke it again, forever).
Result<void> checkTriggers(const std::vector<std::string>& triggers, std::string_view replyTopic);

}  // namespace tern::events
