#include "triggers/mqtt_client.h"

#include <mosquitto.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <charconv>
#include <cstring>

#include "util/topic.h"

namespace tern::triggers {

namespace {

// libmosquitto's process-wide initialisation (not thread-safe itself): once, on first use.
void initLibrary() {
  static std::once_flag once;
  std::call_once(once, [] { mosquitto_lib_init(); });
}

std::string mosqError(int rc) {
  if (rc == MOSQ_ERR_ERRNO) return std::string("system error: ") + std::strerror(errno);
  return mosquitto_strerror(rc);
}

constexpr size_t kMaxPayload = 256u << 20;  // the MQTT protocol limit, rounded down

}  // namespace

Result<std::pair<std::string, uint16_t>> parseBrokerAddress(std::string_view s) {
  auto bad = [&] {
    return Error(ErrorCode::kInvalidArgument,
                 "MQTT broker address must be HOST or HOST:PORT, got \"" + std::string(s) + "\"");
  };
  if (s.empty()) return bad();
  std::string_view host = s;
  uint16_t port = 1883;
  size_t colon = s.rfind(':');
  bool bracketed = s.front() == '[';
  if (colon != std::string_view::npos && (!bracketed || colon > s.find(']'))) {
    host = s.substr(0, colon);
    std::string_view p = s.substr(colon + 1);
    unsigned v = 0;
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
    if (p.empty() || ec != std::errc() || end != p.data() + p.size() || v == 0 || v > 65535) {
      return bad();
    }
    port = static_cast<uint16_t>(v);
  }
  if (bracketed) {
    if (host.size() < 3 || host.back() != ']') return bad();
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty()) return bad();
  return std::pair<std::string, uint16_t>(std::string(host), port);
}

MqttClient::MqttClient(MqttOptions options, OnMessage onMessage)
    : options_(std::move(options)), onMessage_(std::move(onMessage)) {}

MqttClient::~MqttClient() {
  stop();
  if (mosq_) mosquitto_destroy(mosq_);
}

Result<void> MqttClient::start() {
  initLibrary();
  mosq_ = mosquitto_new(options_.clientId.c_str(), /*clean_session=*/false, this);
  if (!mosq_) {
    return Error(ErrorCode::kInvalidArgument,
                 "cannot create an MQTT client with id \"" + options_.clientId + "\"");
  }
  auto check = [](int rc, const std::string& what) -> Result<void> {
    if (rc == MOSQ_ERR_SUCCESS) return {};
    return Error(ErrorCode::kInvalidArgument, what + ": " + mosqError(rc));
  };
  // Publishes come from other threads: libmosquitto only queues them and wakes this
  // client's thread, which does all socket writes.
  if (auto r = check(mosquitto_threaded_set(mosq_, true), "MQTT client"); !r) return r;
  if (!options_.username.empty()) {
    auto r = check(mosquitto_username_pw_set(mosq_, options_.username.c_str(),
                                             options_.password.empty() ? nullptr
                                                                       : options_.password.c_str()),
                   "MQTT credentials");
    if (!r) return r;
  }
  if (!options_.caFile.empty()) {
    auto r = check(mosquitto_tls_set(mosq_, options_.caFile.c_str(), nullptr,
                                     options_.certFile.empty() ? nullptr : options_.certFile.c_str(),
                                     options_.keyFile.empty() ? nullptr : options_.keyFile.c_str(),
                                     nullptr),
                   "MQTT TLS settings (CA " + options_.caFile + ")");
    if (!r) return r;
  } else if (!options_.certFile.empty() || !options_.keyFile.empty()) {
    return Error(ErrorCode::kInvalidArgument,
                 "an MQTT client certificate needs TLS: give the broker's CA file too");
  }
  mosquitto_connect_callback_set(mosq_, &MqttClient::onConnect);
  mosquitto_disconnect_callback_set(mosq_, &MqttClient::onDisconnect);
  mosquitto_subscribe_callback_set(mosq_, &MqttClient::onSubscribe);
  mosquitto_message_callback_set(mosq_, &MqttClient::onMessageThunk);
  mosquitto_publish_callback_set(mosq_, &MqttClient::onPublish);
  stopping_ = false;
  thread_ = std::thread([this] { run(); });
  return {};
}

void MqttClient::stop() {
  if (!thread_.joinable()) return;
  stopping_ = true;
  changed_.notify_all();
  thread_.join();
  if (connected_) mosquitto_disconnect(mosq_);
  connected_ = false;
}

void MqttClient::sleepFor(std::chrono::milliseconds d) {
  MutexLock lock(mu_);
  lock.waitFor(changed_, d, [&] { return stopping_.load(); });
}

// The client's thread: connect (with backoff while the broker cannot be reached), then run
// libmosquitto's loop until the connection breaks, and again, until stop().
void MqttClient::run() {
  std::chrono::milliseconds backoff = options_.reconnectMin;
  bool everConnected = false;
  while (!stopping_) {
    int rc = everConnected ? mosquitto_reconnect(mosq_)
                           : mosquitto_connect(mosq_, options_.host.c_str(), options_.port,
                                               options_.keepaliveSeconds);
    if (rc != MOSQ_ERR_SUCCESS) {
      {
        MutexLock lock(mu_);
        ++stats_.connectFailures;
      }
      spdlog::warn("MQTT broker {}:{} not reachable ({}); retrying in {} ms", options_.host,
                   options_.port, mosqError(rc), backoff.count());
      sleepFor(backoff);
      backoff = std::min(backoff * 2, options_.reconnectMax);
      continue;
    }
    everConnected = true;
    while (!stopping_) {
      rc = mosquitto_loop(mosq_, 100, 1);
      if (rc != MOSQ_ERR_SUCCESS) break;
      if (connected_) backoff = options_.reconnectMin;
    }
    if (stopping_) break;
    if (connected_.exchange(false)) {
      MutexLock lock(mu_);
      ++stats_.disconnects;
    }
    spdlog::warn("MQTT connection to {}:{} lost ({}); reconnecting in {} ms", options_.host,
                 options_.port, mosqError(rc), backoff.count());
    sleepFor(backoff);
    backoff = std::min(backoff * 2, options_.reconnectMax);
  }
}

void MqttClient::onConnect(mosquitto*, void* self, int rc) {
  auto* c = static_cast<MqttClient*>(self);
  if (rc != 0) {
    {
      MutexLock lock(c->mu_);
      ++c->stats_.connectFailures;
    }
    spdlog::error("MQTT broker {}:{} refused the connection: {}", c->options_.host,
                  c->options_.port, mosquitto_connack_string(rc));
    return;
  }
  {
    MutexLock lock(c->mu_);
    ++c->stats_.connects;
    c->subscribed_.clear();  // a persistent session keeps them; subscribing again is harmless
  }
  c->connected_ = true;
  spdlog::info("MQTT connected to {}:{} as \"{}\"", c->options_.host, c->options_.port,
               c->options_.clientId);
  c->syncSubscriptions();
}

void MqttClient::onSubscribe(mosquitto*, void* self, int mid, int count, const int* granted) {
  auto* c = static_cast<MqttClient*>(self);
  // QoS 0x80 in a SUBACK is the broker's refusal of that filter.
  bool refused = count > 0 && granted && granted[0] == 0x80;
  {
    MutexLock lock(c->mu_);
    ++c->stats_.subscribeAcks;
  }
  if (refused) {
    spdlog::warn("MQTT broker {}:{} refused subscription {}", c->options_.host, c->options_.port,
                 mid);
  } else {
    spdlog::info("MQTT subscription {} acknowledged by {}:{}", mid, c->options_.host,
                 c->options_.port);
  }
}

void MqttClient::onDisconnect(mosquitto*, void* self, int) {
  auto* c = static_cast<MqttClient*>(self);
  if (c->connected_.exchange(false)) {
    MutexLock lock(c->mu_);
    ++c->stats_.disconnects;
  }
}

void MqttClient::onMessageThunk(mosquitto* m, void* self, const mosquitto_message* msg) {
  auto* c = static_cast<MqttClient*>(self);
  std::string_view topic = msg->topic ? msg->topic : "";
  std::string_view payload(static_cast<const char*>(msg->payload),
                           msg->payload ? static_cast<size_t>(msg->payloadlen) : 0);
  auto accepted = c->onMessage_(topic, payload);
  MutexLock lock(c->mu_);
  ++c->stats_.received;
  if (accepted.ok()) return;
  ++c->stats_.refused;
  if (msg->qos == 0) {
    spdlog::error("MQTT message on \"{}\" (QoS 0) dropped: {}", topic, accepted.error().message());
    return;
  }
  // The PUBACK is queued but not yet written: cutting the connection now keeps the message
  // unacknowledged, so the broker delivers it again once the client has reconnected.
  spdlog::error("MQTT message on \"{}\" not accepted ({}); reconnecting so the broker redelivers it",
                topic, accepted.error().message());
  int fd = mosquitto_socket(m);
  if (fd >= 0) ::shutdown(fd, SHUT_RDWR);
}

void MqttClient::onPublish(mosquitto*, void* self, int mid) {
  auto* c = static_cast<MqttClient*>(self);
  std::function<void()> callback;
  {
    MutexLock lock(c->mu_);
    if (auto it = c->onAcked_.find(mid); it != c->onAcked_.end()) {
      callback = std::move(it->second);
      c->onAcked_.erase(it);
    } else {
      // A waiting publish, or one whose caller has not yet recorded its callback.
      c->acked_.insert(mid);
      // Nobody waits for most acknowledgements; keep the set small.
      if (c->acked_.size() > 4096) c->acked_.erase(c->acked_.begin());
    }
  }
  if (callback) callback();
  c->changed_.notify_all();
}

void MqttClient::setSubscriptions(const std::string& owner, std::set<std::string> filters) {
  {
    MutexLock lock(mu_);
    wanted_[owner] = std::move(filters);
  }
  if (connected_) syncSubscriptions();
}

void MqttClient::syncSubscriptions() {
  std::set<std::string> add, drop;
  {
    MutexLock lock(mu_);
    std::set<std::string> wanted;
    for (const auto& [owner, filters] : wanted_) wanted.insert(filters.begin(), filters.end());
    for (const auto& f : wanted) {
      if (!subscribed_.count(f)) add.insert(f);
    }
    for (const auto& f : subscribed_) {
      if (!wanted.count(f)) drop.insert(f);
    }
  }
  for (const auto& f : add) {
    int rc = mosquitto_subscribe(mosq_, nullptr, f.c_str(), 1);
    if (rc != MOSQ_ERR_SUCCESS) {
      spdlog::warn("MQTT subscribe to \"{}\" failed: {} (retried at reconnect)", f, mosqError(rc));
      continue;
    }
    MutexLock lock(mu_);
    subscribed_.insert(f);
  }
  for (const auto& f : drop) {
    int rc = mosquitto_unsubscribe(mosq_, nullptr, f.c_str());
    MutexLock lock(mu_);
    if (rc == MOSQ_ERR_SUCCESS) subscribed_.erase(f);
  }
}

// Checks and hands one QoS 1 message to libmosquitto; returns its message id.
Result<int> MqttClient::send(std::string_view topic, std::string_view payload) {
  if (auto ok = checkTopicName(topic); !ok) return ok.error();
  if (payload.size() > kMaxPayload) {
    return Error(ErrorCode::kInvalidArgument, "MQTT payload of " + std::to_string(payload.size()) +
                                                  " bytes is over the 256 MiB limit");
  }
  if (!mosq_ || !connected_) {
    return Error(ErrorCode::kUnavailable,
                 "not connected to the MQTT broker " + options_.host + ":" +
                     std::to_string(options_.port));
  }
  int mid = 0;
  std::string t(topic);
  int rc = mosquitto_publish(mosq_, &mid, t.c_str(), static_cast<int>(payload.size()),
                             payload.data(), 1, false);
  if (rc != MOSQ_ERR_SUCCESS) {
    return Error(ErrorCode::kUnavailable, "MQTT publish to \"" + t + "\" failed: " + mosqError(rc));
  }
  return mid;
}

Result<void> MqttClient::publish(std::string_view topic, std::string_view payload,
                                 PublishWait wait) {
  auto mid = send(topic, payload);
  if (!mid) return mid.error();
  MutexLock lock(mu_);
  ++stats_.published;
  if (wait == PublishWait::kQueued) return {};
  bool acked = lock.waitFor(changed_, options_.publishTimeout, [&]() TERN_REQUIRES(mu_) {
    return acked_.count(*mid) > 0 || stopping_.load();
  });
  if (!acked || !acked_.erase(*mid)) {
    return Error(ErrorCode::kUnavailable,
                 fmt::format("the MQTT broker did not acknowledge the message to \"{}\" in time",
                             topic));
  }
  return {};
}

Result<void> MqttClient::publish(std::string_view topic, std::string_view payload,
                                 std::function<void()> onAcknowledged) {
  auto mid = send(topic, payload);
  if (!mid) return mid.error();
  std::function<void()> now, displaced;
  {
    MutexLock lock(mu_);
    ++stats_.published;
    if (acked_.erase(*mid)) {
      now = std::move(onAcknowledged);  // the PUBACK came before this thread got here
    } else {
      // A message id still waiting from 65536 publishes ago counts as acknowledged: its
      // caller's budget must not leak.
      auto& slot = onAcked_[*mid];
      displaced = std::move(slot);
      slot = std::move(onAcknowledged);
    }
  }
  if (displaced) displaced();
  if (now) now();
  return {};
}

MqttClient::Stats MqttClient::stats() const {
  MutexLock lock(mu_);
  return stats_;
}

}  // namespace tern::triggers
