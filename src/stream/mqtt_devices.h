#pragma once
// Device connections over MQTT (docs/design/streams.md, "MQTT"), for devices that speak only
// MQTT: the frames of frames.h travel as MQTT messages through the node's broker session.
// A device <device> publishes its frames to tern/streams/<device>/up and receives the
// node's on tern/streams/<device>/down (QoS 1 both ways). Each <device> is one connection
// of the hub, opened by its first frame and ended by
//   - the transport-only frame {"type":"close"} on its up topic (devices set it as their
//     MQTT last will, so that the broker sends it when they vanish),
//   - no frame from the device for the idle timeout (a terminate frame, reason "idle"),
//   - the hub (a bad frame, a subscribe flood, the node stopping), with its terminate frame.
// The transport-only frame {"type":"ping"} keeps a connection from going idle and is
// answered {"type":"pong"} while the device has one.
// Frames of one device are handled in the order the broker delivers them (the session's
// one thread). At the cap on connections, a new device gets a terminate frame with reason
// "too_many_streams" and no connection.
//
// What the node sends a device counts against a budget of bytes the broker has not yet
// acknowledged, per device and in all; a device over its budget is congested (Outlet::send
// answers false) until acknowledgements bring it back under half of it.

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "stream/hub.h"
#include "util/error.h"
#include "util/metrics.h"

namespace tern::stream {

// What the node subscribes to for device connections.
inline constexpr std::string_view kMqttDeviceUpFilter = "tern/streams/+/up";

// Whether `topic` is one device's up topic (tern/streams/LEVEL/up, whatever LEVEL holds).
bool isMqttDeviceUpTopic(std::string_view topic);
// Whether `name` may name a device over MQTT: one topic level of 1 to 64 of A-Z, a-z, 0-9,
// '_' and '-'.
bool isMqttDeviceName(std::string_view name);
std::string mqttDeviceDownTopic(std::string_view device);

struct MqttDeviceOptions {
  std::chrono::milliseconds idleTimeout{600000};
  size_t maxDevices = 10000;                  // device connections over MQTT at once
  size_t maxUnackedBytes = 256u << 10;        // per device, sent but not acknowledged
  size_t maxUnackedBytesTotal = 64u << 20;    // the same, all devices together
  std::chrono::milliseconds sweepInterval{1000};  // idle and congestion checks
};

struct MqttDeviceDeps {
  Hub& hub;
  MetricsRegistry& metrics;
  // Publishes a frame with QoS 1; `onAcknowledged` runs (on any thread, without blocking)
  // once the broker has it, and never when publishing failed.
  std::function<Result<void>(std::string_view topic, std::string_view payload,
                             std::function<void()> onAcknowledged)>
      publish;
  std::function<std::chrono::steady_clock::time_point()> now = [] {
    return std::chrono::steady_clock::now();
  };
};

class MqttDevices {
 public:
  MqttDevices(MqttDeviceOptions options, MqttDeviceDeps deps);
  ~MqttDevices();
  MqttDevices(const MqttDevices&) = delete;
  MqttDevices& operator=(const MqttDevices&) = delete;

  // Starts the thread that runs sweep() every sweepInterval.
  void start();
  // Ends the connections still open (without frames: stop the hub first, which sends
  // them its "shutdown" terminate frames) and joins the thread. Idempotent.
  void stop();

  // A message on a device's up topic (part of MqttClient::OnMessage). Frames the node
  // cannot use are answered (a terminate frame) or dropped and logged, never left
  // unacknowledged; only a stopped transport answers kUnavailable.
  Result<void> onMqttMessage(std::string_view topic, std::string_view payload);

  // Closes the connections idle for the idle timeout and wakes congested ones that have
  // room again (the broker came back, or the total budget freed up). The thread calls it;
  // tests call it with their own clock.
  void sweep();

  size_t connections() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace tern::stream
