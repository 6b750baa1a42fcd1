#include "stream/mqtt_devices.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "util/quote.h"
#include "stream/frames.h"
#include "stream/limited_log.h"
#include "util/thread_annotations.h"

namespace tern::stream {

namespace {

constexpr std::string_view kPrefix = "tern/streams/";
constexpr std::string_view kUpSuffix = "/up";

// The frames of this transport alone, which the hub never sees: close (the device is gone,
// or done) and ping (it is still there).
enum class TransportFrame { kNone, kClose, kPing };

TransportFrame transportFrame(std::string_view payload) {
  if (payload.size() > 256) return TransportFrame::kNone;
  auto j = nlohmann::json::parse(payload, nullptr, false);
  if (!j.is_object()) return TransportFrame::kNone;
  auto type = j.find("type");
  if (type == j.end()) return TransportFrame::kNone;
  if (*type == "close") return TransportFrame::kClose;
  if (*type == "ping") return TransportFrame::kPing;
  return TransportFrame::kNone;
}

// The level between tern/streams/ and /up (the caller checked isMqttDeviceUpTopic).
std::string_view deviceOf(std::string_view topic) {
  return topic.substr(kPrefix.size(), topic.size() - kPrefix.size() - kUpSuffix.size());
}

void ignoreAcknowledgement() {}

class DeviceOutlet;

}  // namespace

bool isMqttDeviceUpTopic(std::string_view topic) {
  if (!topic.starts_with(kPrefix) || !topic.ends_with(kUpSuffix)) return false;
  if (topic.size() < kPrefix.size() + kUpSuffix.size()) return false;
  return deviceOf(topic).find('/') == std::string_view::npos;
}

bool isMqttDeviceName(std::string_view name) {
  return !name.empty() && name.size() <= 64 &&
         name.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") ==
             std::string_view::npos;
}

std::string mqttDeviceDownTopic(std::string_view device) {
  return fmt::format("{}{}/down", kPrefix, device);
}

struct MqttDevices::Impl {
  Impl(MqttDeviceOptions o, MqttDeviceDeps d)
      : options(o),
        deps(std::move(d)),
        open(deps.metrics.gauge("tern_stream_mqtt_devices", "Device connections over MQTT")),
        closedByDevice(closed("close")),
        closedIdle(closed("idle")),
        refusedFull(deps.metrics.counter(
            "tern_stream_mqtt_devices_refused_total",
            "Devices over MQTT refused a connection because the node had as many as it takes")),
        badTopics(deps.metrics.counter("tern_stream_mqtt_bad_topics_total",
                                       "Messages on tern/streams/+/up whose device name is invalid")) {}

  Counter& closed(std::string_view why) {
    return deps.metrics.counter("tern_stream_mqtt_devices_closed_total",
                                "Device connections over MQTT ended by the transport",
                                {{"reason", std::string(why)}});
  }

  // Publishes a frame outside any budget (terminate frames); failures are the device's loss.
  void publishUnbudgeted(const std::string& topic, const std::string& frame) {
    (void)deps.publish(topic, frame, ignoreAcknowledgement);
  }
  // Takes the connection of `outlet` off the map (it closed); false if it was not there.
  bool forget(const DeviceOutlet* outlet) TERN_EXCLUDES(mu);
  void updateGauge() TERN_REQUIRES(mu) { open.set(static_cast<double>(devices.size())); }

  const MqttDeviceOptions options;
  const MqttDeviceDeps deps;
  Gauge& open;
  Counter& closedByDevice;
  Counter& closedIdle;
  Counter& refusedFull;
  Counter& badTopics;
  LimitedLog warnings;
  std::atomic<size_t> unackedTotal{0};

  struct Entry {
    std::shared_ptr<DeviceOutlet> outlet;
    std::shared_ptr<Connection> conn;
    std::chrono::steady_clock::time_point lastUp;
  };
  mutable Mutex mu;  // never held across a call into the hub or the publisher
  std::map<std::string, Entry, std::less<>> devices TERN_GUARDED_BY(mu);
  bool stopped TERN_GUARDED_BY(mu) = false;

  Mutex threadMu;
  std::condition_variable wake;
  bool stopping TERN_GUARDED_BY(threadMu) = false;
  std::thread sweeper;
};

namespace {

// One device's way out: its down topic, within its budget of unacknowledged bytes.
class DeviceOutlet : public Outlet, public std::enable_shared_from_this<DeviceOutlet> {
 public:
  DeviceOutlet(std::weak_ptr<MqttDevices::Impl> owner, std::string device, size_t budget)
      : owner_(std::move(owner)), device_(std::move(device)), down_(mqttDeviceDownTopic(device_)), budget_(budget) {}

  const std::string& device() const { return device_; }
  const std::string& downTopic() const { return down_; }
  void attach(std::weak_ptr<Connection> conn) {
    MutexLock lock(mu_);
    conn_ = std::move(conn);
  }

  bool send(std::string frame) override {
    auto owner = owner_.lock();
    if (!owner) return false;
    size_t n = frame.size();
    {
      MutexLock lock(mu_);
      if (closing_) return false;
      // One frame always fits an idle device, however large; the total is strict.
      bool overDevice = unacked_ > 0 && unacked_ + n > budget_;
      bool overTotal = owner->unackedTotal.load() + n > owner->options.maxUnackedBytesTotal;
      if (overDevice || overTotal) {
        congested_ = true;
        return false;
      }
      unacked_ += n;
    }
    owner->unackedTotal.fetch_add(n);
    auto sent = owner->deps.publish(down_, frame, [weakOwner = owner_, self = weak_from_this(), n] {
      if (auto o = weakOwner.lock()) o->unackedTotal.fetch_sub(n);
      if (auto s = self.lock()) s->settled(n);
    });
    if (sent.ok()) return true;
    // Not connected to the broker: congested until the sweep finds it connected again.
    owner->unackedTotal.fetch_sub(n);
    MutexLock lock(mu_);
    unacked_ -= n;
    congested_ = true;
    return false;
  }

  void close(std::string lastFrame, std::string_view) override {
    if (!markClosing()) return;
    if (auto owner = owner_.lock()) {
      owner->publishUnbudgeted(down_, lastFrame);
      owner->forget(this);
    }
  }

  bool closing() {
    MutexLock lock(mu_);
    return closing_;
  }
  // Refuses further frames; false if it was closing already.
  bool markClosing() {
    MutexLock lock(mu_);
    return !std::exchange(closing_, true);
  }

  // Whether a congested device has room again (for the sweep); clears the congestion.
  bool takeRoom(size_t total, size_t totalBudget) {
    MutexLock lock(mu_);
    if (!congested_ || closing_ || unacked_ > budget_ / 2 || total >= totalBudget) return false;
    congested_ = false;
    return true;
  }

 private:
  void settled(size_t n) {
    std::shared_ptr<Connection> conn;
    {
      MutexLock lock(mu_);
      unacked_ -= n;
      if (!congested_ || closing_ || unacked_ > budget_ / 2) return;
      congested_ = false;
      conn = conn_.lock();
    }
    if (conn) conn->onDrained();
  }

  const std::weak_ptr<MqttDevices::Impl> owner_;
  const std::string device_;
  const std::string down_;
  const size_t budget_;
  Mutex mu_;
  std::weak_ptr<Connection> conn_ TERN_GUARDED_BY(mu_);
  size_t unacked_ TERN_GUARDED_BY(mu_) = 0;
  bool congested_ TERN_GUARDED_BY(mu_) = false;
  bool closing_ TERN_GUARDED_BY(mu_) = false;
};

}  // namespace

bool MqttDevices::Impl::forget(const DeviceOutlet* outlet) {
  MutexLock lock(mu);
  auto it = devices.find(outlet->device());
  if (it == devices.end() || it->second.outlet.get() != outlet) return false;
  devices.erase(it);
  updateGauge();
  return true;
}

MqttDevices::MqttDevices(MqttDeviceOptions options, MqttDeviceDeps deps)
    : impl_(std::make_shared<Impl>(options, std::move(deps))) {}

MqttDevices::~MqttDevices() { stop(); }

void MqttDevices::start() {
  Impl& s = *impl_;
  if (s.sweeper.joinable()) return;
  s.sweeper = std::thread([this] {
    Impl& s = *impl_;
    MutexLock lock(s.threadMu);
    while (!lock.waitFor(s.wake, s.options.sweepInterval, [&s]() TERN_REQUIRES(s.threadMu) { return s.stopping; })) {
      lock.unlock();
      sweep();
      lock.lock();
    }
  });
}

void MqttDevices::stop() {
  Impl& s = *impl_;
  {
    MutexLock lock(s.threadMu);
    s.stopping = true;
  }
  s.wake.notify_all();
  if (s.sweeper.joinable()) s.sweeper.join();
  std::map<std::string, Impl::Entry, std::less<>> left;
  {
    MutexLock lock(s.mu);
    s.stopped = true;
    left.swap(s.devices);
    s.updateGauge();
  }
  for (auto& [device, e] : left) {
    e.outlet->markClosing();
    e.conn->onClosed();
  }
}

Result<void> MqttDevices::onMqttMessage(std::string_view topic, std::string_view payload) {
  Impl& s = *impl_;
  if (!isMqttDeviceUpTopic(topic)) return {};
  std::string_view device = deviceOf(topic);
  if (!isMqttDeviceName(device)) {
    s.badTopics.inc();
    s.warnings.warn(fmt::format("MQTT device frame on {} dropped: a device name is one topic "
                                "level of 1 to 64 of A-Z, a-z, 0-9, '_' and '-'",
                                quoteUntrusted(topic, 200)));
    return {};
  }
  auto now = s.deps.now();
  TransportFrame own = transportFrame(payload);
  if (own == TransportFrame::kPing) {
    // Answered while the device has a connection: one that gets no pong has none (the node
    // restarted or closed it) and subscribes again.
    {
      MutexLock lock(s.mu);
      auto it = s.devices.find(device);
      if (it == s.devices.end()) return {};
      it->second.lastUp = now;
    }
    s.publishUnbudgeted(mqttDeviceDownTopic(device), R"({"type":"pong"})");
    return {};
  }
  if (own == TransportFrame::kClose) {
    Impl::Entry e;
    {
      MutexLock lock(s.mu);
      auto it = s.devices.find(device);
      if (it == s.devices.end()) return {};
      e = std::move(it->second);
      s.devices.erase(it);
      s.updateGauge();
    }
    s.closedByDevice.inc();
    e.outlet->markClosing();
    e.conn->onClosed();
    return {};
  }

  std::shared_ptr<Connection> conn;
  bool full = false;
  {
    MutexLock lock(s.mu);
    if (s.stopped) return Error(ErrorCode::kUnavailable, "device connections over MQTT are stopped");
    if (auto it = s.devices.find(device); it != s.devices.end()) {
      it->second.lastUp = now;
      conn = it->second.conn;
    } else {
      full = s.devices.size() >= s.options.maxDevices;
    }
  }
  if (full) {
    s.refusedFull.inc();
    s.publishUnbudgeted(mqttDeviceDownTopic(device),
                        terminateFrame(std::nullopt, reason::kTooManyStreams,
                                       fmt::format("this node serves at most {} devices over MQTT",
                                                   s.options.maxDevices)));
    return {};
  }
  if (!conn) {
    auto outlet = std::make_shared<DeviceOutlet>(impl_, std::string(device), s.options.maxUnackedBytes);
    conn = s.deps.hub.connect(outlet);  // a stopped hub closes it at once (Outlet::close)
    outlet->attach(conn);
    if (outlet->closing()) return {};
    // Frames arrive on one thread, so the device cannot have been added meanwhile.
    MutexLock lock(s.mu);
    if (outlet->closing()) return {};  // closed (a stopping hub) before it could be listed
    s.devices[std::string(device)] = Impl::Entry{outlet, conn, now};
    s.updateGauge();
  }
  // A frame over the limit is cut just past it: the hub refuses it by its size alone.
  conn->onFrame(std::string(payload.substr(0, kMaxFrameBytes + 1)));
  return {};
}

void MqttDevices::sweep() {
  Impl& s = *impl_;
  auto now = s.deps.now();
  std::vector<Impl::Entry> idle, wake;
  {
    MutexLock lock(s.mu);
    size_t total = s.unackedTotal.load();
    for (auto it = s.devices.begin(); it != s.devices.end();) {
      if (now - it->second.lastUp >= s.options.idleTimeout) {
        idle.push_back(std::move(it->second));
        it = s.devices.erase(it);
        continue;
      }
      if (it->second.outlet->takeRoom(total, s.options.maxUnackedBytesTotal)) wake.push_back(it->second);
      ++it;
    }
    s.updateGauge();
  }
  for (auto& e : idle) {
    s.closedIdle.inc();
    if (!e.outlet->markClosing()) continue;
    s.publishUnbudgeted(e.outlet->downTopic(),
                        terminateFrame(std::nullopt, reason::kIdle,
                                       fmt::format("no frame from the device for {} s",
                                                   std::chrono::duration_cast<std::chrono::seconds>(
                                                       s.options.idleTimeout)
                                                       .count())));
    e.conn->onClosed();
  }
  for (auto& e : wake) e.conn->onDrained();
}

size_t MqttDevices::connections() const {
  MutexLock lock(impl_->mu);
  return impl_->devices.size();
}

}  // namespace tern::stream
