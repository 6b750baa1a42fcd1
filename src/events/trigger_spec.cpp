#include "events/trigger_spec.h"

#include <set>

#include "events/schedule.h"
#include "util/topic.h"
#include "util/quote.h"

namespace tern::events {

namespace {

Error invalid(std::string_view spec, const std::string& why) {
  return Error(ErrorCode::kInvalidArgument, "trigger " + quoteUntrusted(spec, 200) + ": " + why);
}

}  // namespace

Result<TriggerSpec> parseTrigger(std::string_view spec) {
  size_t colon = spec.find(':');
  std::string_view kind = colon == std::string_view::npos ? spec : spec.substr(0, colon);
  if (colon == std::string_view::npos) {
    return invalid(spec, "expected KIND:VALUE with KIND one of mqtt, cron, every "
                         "(HTTP and CoAP serve every function without a trigger)");
  }
  TriggerSpec t;
  t.text = std::string(spec.substr(colon + 1));
  t.spec = std::string(spec);
  if (kind == "mqtt") {
    t.kind = TriggerKind::kMqtt;
    if (auto ok = checkTopicFilter(t.text); !ok) return invalid(spec, ok.error().message());
    return t;
  }
  if (kind == "cron" || kind == "every") {
    t.kind = kind == "cron" ? TriggerKind::kCron : TriggerKind::kEvery;
    auto schedule = parseSchedule(spec);
    if (!schedule) return invalid(spec, schedule.error().message());
    return t;
  }
  return invalid(spec, "unknown trigger kind " + quoteUntrusted(kind, 200) +
                           ": use mqtt:TOPIC_FILTER, cron:\"MIN HOUR DOM MON DOW\" or "
                           "every:DURATION (HTTP and CoAP serve every function without a trigger)");
}

Result<void> checkTriggers(const std::vector<std::string>& triggers, std::string_view replyTopic) {
  if (triggers.size() > kMaxTriggers) {
    return Error(ErrorCode::kInvalidArgument, "a function may have at most " +
                                                  std::to_string(kMaxTriggers) + " triggers, got " +
                                                  std::to_string(triggers.size()));
  }
  std::set<std::string> seen;
  std::vector<std::string> filters;
  for (const auto& spec : triggers) {
    auto t = parseTrigger(spec);
    if (!t) return t.error();
    if (!seen.insert(spec).second) return invalid(spec, "given twice");
    if (t->kind == TriggerKind::kMqtt) filters.push_back(t->text);
  }
  if (replyTopic.empty()) return {};
  if (auto ok = checkTopicName(replyTopic); !ok) {
    return Error(ErrorCode::kInvalidArgument, "reply topic: " + ok.error().message());
  }
  if (filters.empty()) {
    return Error(ErrorCode::kInvalidArgument,
                 "a reply topic needs an MQTT trigger (--trigger mqtt:TOPIC_FILTER)");
  }
  for (const auto& f : filters) {
    if (topicMatches(f, replyTopic)) {
      return Error(ErrorCode::kInvalidArgument,
                   "reply topic " + quoteUntrusted(replyTopic, 200) + " matches the function's own trigger " +
                       quoteUntrusted("mqtt:" + f, 200) + ": every reply would invoke the function again");
    }
  }
  return {};
}

}  // namespace tern::events
