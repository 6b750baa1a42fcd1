#pragma once
// The node's connection to an MQTT broker (libmosquitto, MQTT 3.1.1): one persistent session
// (clean session off, a stable client id) that subscribes with QoS 1 to what its users want
// (the functions' MQTT triggers, the stream bridge's rules, device connections over MQTT)
// and publishes replies, dead letters, the host API's messages and frames to devices.
//
// A broker that is down at start or goes away never blocks the caller: the client runs on
// its own thread and reconnects with exponential backoff, re-subscribing on every connect.
// Received messages are handed to `OnMessage` on that thread. libmosquitto queues the
// PUBACK of a QoS 1 message before the callback but writes it only when the callback has
// returned (the client runs libmosquitto in threaded mode), so a message is acknowledged
// only after `OnMessage` accepted it. When `OnMessage` fails (the node could not store the
// message) the connection is cut at once: the PUBACK never leaves, and the broker delivers
// the message again after the reconnect.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <thread>

#include "util/error.h"
#include "util/thread_annotations.h"

struct mosquitto;
struct mosquitto_message;

namespace tern::triggers {

struct MqttOptions {
  std::string host;
  uint16_t port = 1883;
  std::string clientId;   // stable across restarts: it names the broker's session
  std::string username;   // empty: anonymous
  std::string password;
  std::string caFile;     // non-empty: TLS, verifying the broker against this CA bundle
  std::string certFile;   // client certificate and key for TLS client authentication
  std::string keyFile;
  int keepaliveSeconds = 30;
  std::chrono::milliseconds reconnectMin{250};
  std::chrono::milliseconds reconnectMax{30000};
  // How long publish(..., PublishWait::kAcknowledged) waits for the broker's PUBACK.
  std::chrono::milliseconds publishTimeout{5000};
};

enum class PublishWait {
  kQueued,        // handed to the client; sent when connected
  kAcknowledged,  // the broker acknowledged it (QoS 1)
};

class MqttClient {
 public:
  // Accepts a received message; an error leaves it unacknowledged (see above).
  using OnMessage = std::function<Result<void>(std::string_view topic, std::string_view payload)>;

  MqttClient(MqttOptions options, OnMessage onMessage);
  ~MqttClient();
  MqttClient(const MqttClient&) = delete;
  MqttClient& operator=(const MqttClient&) = delete;

  // Errors: kInvalidArgument (options libmosquitto refuses, such as unreadable TLS files).
  // A broker that cannot be reached is not an error: the client keeps trying.
  Result<void> start();
  // Joins the client's thread. A connection attempt in progress finishes first: at once on
  // loopback or when the broker refuses, but up to the system's TCP connect timeout for a
  // host that does not answer at all.
  void stop();

  // The filters `owner` (a name of its choosing: "triggers", "streams", ...) wants
  // subscribed (QoS 1), replacing what it wanted before; the session subscribes to the
  // union of every owner's filters. Changes apply at once when connected and at every
  // reconnect.
  void setSubscriptions(const std::string& owner, std::set<std::string> filters);

  // Publishes with QoS 1. Errors: kUnavailable (not connected to the broker, or no PUBACK
  // within the publish timeout), kInvalidArgument (bad topic, payload over 256 MiB).
  Result<void> publish(std::string_view topic, std::string_view payload, PublishWait wait);
  // Publishes with QoS 1 like PublishWait::kQueued, and calls `onAcknowledged` once the
  // broker's PUBACK arrived (on the client's thread; it must not block). libmosquitto sends
  // the message again after a reconnect until it is acknowledged; after stop() the call
  // never comes. Errors as above (then `onAcknowledged` is never called).
  Result<void> publish(std::string_view topic, std::string_view payload,
                       std::function<void()> onAcknowledged);

  bool connected() const { return connected_.load(std::memory_order_relaxed); }

  struct Stats {
    uint64_t received = 0;
    uint64_t refused = 0;  // messages OnMessage could not accept (left unacknowledged)
    uint64_t published = 0;
    uint64_t subscribeAcks = 0;  // SUBACKs received (one per filter subscribed)
    uint64_t connects = 0;
    uint64_t connectFailures = 0;  // attempts the broker did not answer or refused
    uint64_t disconnects = 0;
  };
  Stats stats() const;
  const MqttOptions& options() const { return options_; }

 private:
  static void onConnect(mosquitto*, void* self, int rc);
  static void onDisconnect(mosquitto*, void* self, int rc);
  // Logs each acknowledged subscription (operators, and tests waiting for it, see it).
  static void onSubscribe(mosquitto*, void* self, int mid, int count, const int* granted);
  static void onMessageThunk(mosquitto*, void* self, const mosquitto_message* m);
  static void onPublish(mosquitto*, void* self, int mid);
  void run();
  Result<int> send(std::string_view topic, std::string_view payload);
  void syncSubscriptions();
  void sleepFor(std::chrono::milliseconds d);

  const MqttOptions options_;
  OnMessage onMessage_;
  mosquitto* mosq_ = nullptr;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> connected_{false};

  mutable Mutex mu_;
  std::condition_variable changed_;        // stop, or a PUBACK arrived
  // Per owner.
  std::map<std::string, std::set<std::string>> wanted_ TERN_GUARDED_BY(mu_);
  std::set<std::string> subscribed_ TERN_GUARDED_BY(mu_);  // what this connection has
  std::set<int> acked_ TERN_GUARDED_BY(mu_);               // mids whose PUBACK arrived
  std::map<int, std::function<void()>> onAcked_ TERN_GUARDED_BY(mu_);  // mid -> its callback
  Stats stats_ TERN_GUARDED_BY(mu_);
};

// Parses "HOST:PORT" (PORT optional, default 1883; "[v6]:PORT" accepted).
Result<std::pair<std::string, uint16_t>> parseBrokerAddress(std::string_view s);

}  // namespace tern::triggers
