#pragma once
// Connects functions' MQTT and time triggers to their event sources and turns every event
// into a durable async job (see async::AsyncQueue), so events get the queue's guarantees:
// stored before they are acknowledged, run at least once, retried with backoff.
//
//   MQTT message on a topic matching a function's mqtt: filter
//     -> job (stdin = payload, MQTT_TOPIC = topic), origin "mqtt"
//     -> when it succeeded and the function has a reply topic: stdout published there
//     -> when it failed after its retries: a dead letter on tern/dead/NAME
//   cron:/every: schedule firing
//     -> job (empty stdin, TERN_SCHEDULED_AT), origin "cron", deduplicated per scheduled time
//
// The router follows the function table: install and removal of a function (deploy,
// rollback, remove, load at start) update subscriptions and schedules.

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "async/async_queue.h"
#include "events/scheduler.h"
#include "exec/function_table.h"
#include "triggers/mqtt_client.h"
#include "util/error.h"
#include "util/metrics.h"
#include "util/thread_annotations.h"

namespace tern::triggers {

// Dead letters of function NAME are published on kDeadLetterPrefix + NAME.
inline constexpr std::string_view kDeadLetterPrefix = "tern/dead/";

struct EventRouterOptions {
  size_t maxPayloadBytes = 6u << 20;  // larger MQTT payloads go straight to the dead letters
};

class EventRouter {
 public:
  // `mqtt` may be null (no broker configured): MQTT triggers then stay idle, and are
  // reported once per function in the log.
  EventRouter(EventRouterOptions options, async::AsyncQueue& queue, MqttClient* mqtt,
              events::Scheduler& scheduler, MetricsRegistry& metrics);

  // The function was installed (config set) or removed (config null).
  void update(const std::string& function, const exec::FunctionVersionConfig* config);

  // MqttClient::OnMessage: stores one job per matching function. An error leaves the
  // message unacknowledged so that the broker delivers it again.
  Result<void> onMqttMessage(std::string_view topic, std::string_view payload);

  // The async queue's delivery hook for origin "mqtt": the reply or the dead letter.
  Result<void> deliverMqtt(const async::JobRecord& job);
  // Whether a finished "mqtt" job has something to deliver: a failure (its dead letter),
  // or a success of a function with a reply topic.
  static bool wantsDelivery(const async::JobRecord& job);

  // The dead letter of a message that failed for good, as published (JSON).
  static std::string deadLetter(const std::string& function, std::string_view topic,
                                std::string_view payload, const std::string& errorCode,
                                const std::string& errorMessage, uint32_t attempts,
                                const std::string& jobId);

 private:
  struct Binding {
    std::vector<std::string> filters;   // mqtt: triggers
    std::string replyTopic;
    std::set<std::string> scheduleIds;  // ids registered with the scheduler
  };
  void fireSchedule(const std::string& function, const std::string& spec, int64_t scheduledMs);
  void resubscribe() TERN_REQUIRES(mu_);

  const EventRouterOptions options_;
  async::AsyncQueue& queue_;
  MqttClient* mqtt_;
  events::Scheduler& scheduler_;
  Mutex mu_;
  std::map<std::string, Binding> bindings_ TERN_GUARDED_BY(mu_);

  Counter* mqttMessages_;
  Counter* mqttRejected_;
  Counter* deadLetters_;
  Counter* scheduleFired_;
  Counter* scheduleLost_;
};

}  // namespace tern::triggers
