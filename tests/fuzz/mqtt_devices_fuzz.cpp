// Fuzz target: device connections over MQTT (src/stream/mqtt_devices): messages on
// tern/streams/DEVICE/up handled by MqttDevices and the stream Hub of a real node part
// (SQLite topic log and apps in a temporary directory, an invoker without functions). The
// input is a list of NUL-separated fields: a device name (any bytes: the topic level), its
// frame, again and again; a field starting with '!' publishes the rest to the topic
// "temps" (so subscribed streams receive data frames). Each input ends by closing the
// devices it used. Checked: the node answers every message (onMqttMessage succeeds while
// running), and every frame it publishes goes to a device's down topic and is a JSON object
// with a "type".

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "node_core.h"
#include "stream/hub.h"
#include "stream/mqtt_devices.h"
#include "stream/sqlite_topic_log.h"

using namespace tern;
using namespace tern::stream;

namespace {

// The stream parts of a node, over its invocation path (node_core.h).
struct Node {
  std::unique_ptr<fuzz::NodeCore> core;
  std::unique_ptr<SqliteStreamStore> store;
  std::unique_ptr<Hub> hub;
  std::unique_ptr<MqttDevices> devices;
};

// The broker's side of a publish: the frame must be one a device can read.
Result<void> published(std::string_view topic, std::string_view payload,
                       std::function<void()> onAcknowledged) {
  FUZZ_CHECK(topic.starts_with("tern/streams/") && topic.ends_with("/down"));
  auto j = nlohmann::json::parse(payload, nullptr, false);
  FUZZ_CHECK(j.is_object() && j.contains("type") && j["type"].is_string());
  if (onAcknowledged) onAcknowledged();
  return {};
}

Node& node() {
  static Node* n = [] {
    auto* n = new Node;
    n->core = std::make_unique<fuzz::NodeCore>(fuzz::temporaryDirectory("mqtt-devices"),
                                               fuzz::Compiling::kReal);
    fuzz::NodeCore& c = *n->core;
    Retention retention;
    retention.maxMessages = 100;
    auto store = SqliteStreamStore::open(c.dir / "streams.db", retention);
    FUZZ_CHECK(store.ok());
    n->store = std::move(*store);
    HubOptions ho;
    ho.threads = 1;
    n->hub = std::make_unique<Hub>(HubDeps{*n->store, *n->store, *c.invoker, c.metrics}, ho);
    MqttDeviceOptions mo;
    mo.maxDevices = 16;
    n->devices = std::make_unique<MqttDevices>(mo, MqttDeviceDeps{*n->hub, c.metrics, published});
    return n;
  }();
  return *n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Node& n = node();
  std::string_view all(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> fields;
  for (size_t start = 0;;) {
    size_t nul = all.find('\0', start);
    fields.push_back(all.substr(start, nul - start));
    if (nul == std::string_view::npos) break;
    start = nul + 1;
  }
  std::set<std::string> used;
  for (size_t i = 0; i < fields.size(); ++i) {
    if (fields[i].starts_with("!")) {
      (void)n.store->publish("temps", fields[i].substr(1));
      continue;
    }
    if (i + 1 >= fields.size()) break;
    std::string topic = "tern/streams/" + std::string(fields[i]) + "/up";
    FUZZ_CHECK(n.devices->onMqttMessage(topic, fields[i + 1]).ok());
    if (isMqttDeviceUpTopic(topic)) used.insert(std::string(fields[i]));
    ++i;
  }
  for (const auto& device : used) {
    FUZZ_CHECK(n.devices->onMqttMessage("tern/streams/" + device + "/up", R"({"type":"close"})").ok());
  }
  return 0;
}
