#include "triggers/event_router.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "async/job_json.h"
#include "events/schedule.h"
#include "events/trigger_spec.h"
#include "util/sha256.h"
#include "util/topic.h"
#include "util/clock.h"

namespace tern::triggers {

using json = nlohmann::json;

namespace {

// Dead-letter topics and the frames of device connections over MQTT (tern/streams/) reach
// only filters that name them explicitly: a function subscribed to "#" must not be invoked
// with the dead letters of its own failures, or with every device's frames.
bool reaches(const std::string& filter, std::string_view topic) {
  bool reserved = topic.starts_with(kDeadLetterPrefix) || topic.starts_with("tern/streams/");
  if (reserved && filter.compare(0, 5, "tern/") != 0) return false;
  return topicMatches(filter, topic);
}

std::string utcTime(int64_t ms) {
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

// The scheduler id of one time trigger of one function.
std::string scheduleId(const std::string& function, const std::string& spec) {
  return function + "#" + spec;
}

}  // namespace

EventRouter::EventRouter(EventRouterOptions options, async::AsyncQueue& queue, MqttClient* mqtt,
                         events::Scheduler& scheduler, MetricsRegistry& metrics)
    : options_(options),
      queue_(queue),
      mqtt_(mqtt),
      scheduler_(scheduler),
      mqttMessages_(&metrics.counter("tern_mqtt_messages_total",
                                     "MQTT messages stored as jobs for triggered functions")),
      mqttRejected_(&metrics.counter(
          "tern_mqtt_messages_unaccepted_total",
          "MQTT messages the node could not store (left unacknowledged for redelivery)")),
      deadLetters_(&metrics.counter("tern_mqtt_dead_letters_total",
                                    "Dead letters published for failed MQTT-triggered jobs")),
      scheduleFired_(&metrics.counter("tern_schedule_runs_total",
                                      "Time-trigger runs stored as jobs")),
      scheduleLost_(&metrics.counter("tern_schedule_runs_failed_total",
                                     "Time-trigger runs that could not be stored")) {}

void EventRouter::update(const std::string& function, const exec::FunctionVersionConfig* config) {
  Binding next;
  std::vector<std::pair<std::string, events::Schedule>> schedules;
  if (config) {
    next.replyTopic = config->replyTopic;
    for (const auto& spec : config->triggers) {
      auto t = events::parseTrigger(spec);
      if (!t) {
        // Checked at deploy; a registry written by another tern may still hold one.
        spdlog::error("function {}: ignoring trigger: {}", function, t.error().message());
        continue;
      }
      if (t->kind == events::TriggerKind::kMqtt) {
        next.filters.push_back(t->text);
        continue;
      }
      auto s = events::parseSchedule(spec);
      if (!s) continue;
      next.scheduleIds.insert(scheduleId(function, s->spec()));
      schedules.emplace_back(s->spec(), *s);
    }
  }
  if (!next.filters.empty() && !mqtt_) {
    spdlog::warn("function {} has MQTT triggers but this node has no MQTT broker (--mqtt-broker): "
                 "they stay idle",
                 function);
  }
  MutexLock lock(mu_);
  auto it = bindings_.find(function);
  std::set<std::string> old = it == bindings_.end() ? std::set<std::string>{} : it->second.scheduleIds;
  for (const auto& id : old) {
    if (!next.scheduleIds.count(id)) (void)scheduler_.remove(id);  // kNotFound: already gone
  }
  for (const auto& [spec, schedule] : schedules) {
    std::string id = scheduleId(function, spec);
    if (old.count(id)) continue;  // unchanged: keeps its place in time
    auto added = scheduler_.add(id, schedule, [this, function, spec = spec](int64_t scheduledMs) {
      fireSchedule(function, spec, scheduledMs);
    });
    if (!added) {
      spdlog::error("function {}: cannot schedule {}: {}", function, spec, added.error().message());
      next.scheduleIds.erase(id);
    }
  }
  if (config) {
    bindings_[function] = std::move(next);
  } else if (it != bindings_.end()) {
    bindings_.erase(it);
  }
  resubscribe();
}

void EventRouter::resubscribe() {
  if (!mqtt_) return;
  std::set<std::string> filters;
  for (const auto& [name, b] : bindings_) filters.insert(b.filters.begin(), b.filters.end());
  mqtt_->setSubscriptions("triggers", std::move(filters));
}

Result<void> EventRouter::onMqttMessage(std::string_view topic, std::string_view payload) {
  std::vector<std::pair<std::string, std::string>> targets;  // function, reply topic
  {
    MutexLock lock(mu_);
    for (const auto& [name, b] : bindings_) {
      for (const auto& f : b.filters) {
        if (reaches(f, topic)) {
          targets.emplace_back(name, b.replyTopic);
          break;
        }
      }
    }
  }
  for (const auto& [function, reply] : targets) {
    if (payload.size() > options_.maxPayloadBytes) {
      // Never runs; the dead letter says why. Sent without waiting for the broker: this is
      // the client's own thread.
      auto dl = deadLetter(function, topic, payload,
                           std::string(errorKind(ErrorCode::kBodyTooLarge).name),
                           fmt::format("payload of {} bytes is over the limit of {} bytes",
                                       payload.size(), options_.maxPayloadBytes),
                           0, "");
      if (mqtt_) (void)mqtt_->publish(std::string(kDeadLetterPrefix) + function, dl, PublishWait::kQueued);
      deadLetters_->inc();
      continue;
    }
    async::JobRequest r;
    r.function = function;
    r.body = std::string(payload);
    r.env = {"TERN_TRIGGER=mqtt", "MQTT_TOPIC=" + std::string(topic)};
    r.origin = "mqtt";
    r.meta = json{{"topic", std::string(topic)}, {"reply_topic", reply}}.dump(
        -1, ' ', false, json::error_handler_t::replace);
    auto accepted = queue_.enqueue(std::move(r));
    if (!accepted) {
      if (accepted.error().code() == ErrorCode::kNotFound) continue;  // removed meanwhile
      mqttRejected_->inc();
      return Error(accepted.error().code(),
                   "cannot store the message for function " + function + ": " +
                       accepted.error().message());
    }
    mqttMessages_->inc();
  }
  return {};
}

std::string EventRouter::deadLetter(const std::string& function, std::string_view topic,
                                    std::string_view payload, const std::string& errorCode,
                                    const std::string& errorMessage, uint32_t attempts,
                                    const std::string& jobId) {
  json j{{"function", function},
         {"topic", std::string(topic)},
         {"error", {{"code", errorCode}, {"message", errorMessage}}},
         {"attempts", attempts},
         {"payload_base64", async::base64Encode(payload)},
         {"failed_at_ms", unixMillis()}};
  if (!jobId.empty()) j["id"] = jobId;
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

namespace {

struct MqttMeta {
  std::string topic, reply;
};

MqttMeta mqttMeta(const async::JobRecord& job) {
  MqttMeta m;
  auto meta = json::parse(job.meta, nullptr, /*allow_exceptions=*/false);
  if (meta.is_object()) {
    auto text = [&](const char* key) {
      auto it = meta.find(key);
      return it != meta.end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    m.topic = text("topic");
    m.reply = text("reply_topic");
  }
  return m;
}

}  // namespace

bool EventRouter::wantsDelivery(const async::JobRecord& job) {
  return job.status != async::JobStatus::kSucceeded || !mqttMeta(job).reply.empty();
}

Result<void> EventRouter::deliverMqtt(const async::JobRecord& job) {
  auto [topic, reply] = mqttMeta(job);
  bool succeeded = job.status == async::JobStatus::kSucceeded;
  if (succeeded && reply.empty()) return {};
  if (!mqtt_) {
    return Error(ErrorCode::kUnavailable, "this node has no MQTT broker to publish to");
  }
  if (succeeded) return mqtt_->publish(reply, job.output, PublishWait::kAcknowledged);
  auto dl = deadLetter(job.function, topic, job.body, job.errorCode, job.errorMessage,
                       job.attempts, job.id);
  auto sent = mqtt_->publish(std::string(kDeadLetterPrefix) + job.function, dl,
                             PublishWait::kAcknowledged);
  if (sent) deadLetters_->inc();
  return sent;
}

void EventRouter::fireSchedule(const std::string& function, const std::string& spec,
                               int64_t scheduledMs) {
  async::JobRequest r;
  r.function = function;
  r.env = {"TERN_TRIGGER=" + spec.substr(0, spec.find(':')),
           "TERN_SCHEDULED_AT=" + utcTime(scheduledMs)};
  r.origin = "cron";
  // One job per scheduled time even if the scheduler fires it again around a crash.
  r.idempotencyKey = fmt::format("schedule-{}-{}", sha256Hex(spec).substr(0, 12), scheduledMs);
  auto accepted = queue_.enqueue(std::move(r));
  if (!accepted) {
    scheduleLost_->inc();
    spdlog::error("function {}: the {} run at {} could not be stored: {}", function, spec,
                  utcTime(scheduledMs), accepted.error().message());
    return;
  }
  scheduleFired_->inc();
}

}  // namespace tern::triggers
