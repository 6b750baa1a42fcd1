#pragma once
// The stream hub (docs/design/streams.md): device connections, each carrying many streams;
// one feed per topic on this node whatever the number of streams that follow it (fan-out
// per host); per stream, the app's processor, a token bucket, credits and the guarantee.
//
// Each stream lives on its own strand of the hub's threads: its updates, processor results,
// credits and timers are handled one at a time and in order, without locks. A best-effort
// stream keeps at most `maxPending` updates and drops the rest (also while its connection
// is congested or it has no credits); an at-least-once stream keeps only a cursor (the last
// sequence it handled) and reads what it has not yet handled back from the topic's log, so
// its memory does not grow with a slow device either.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "exec/invoker.h"
#include "stream/app_store.h"
#include "stream/topic_log.h"
#include "util/metrics.h"

namespace tern::stream {

// One device connection's way out, implemented by a transport (WebSocket, MQTT).
class Outlet {
 public:
  virtual ~Outlet() = default;
  // Queues a frame; false (nothing queued) when the connection's budget of unsent bytes is
  // spent or it is closing. The transport calls Connection::onDrained once it has room again.
  virtual bool send(std::string frame) = 0;
  // Sends `lastFrame` and closes the connection; `reason` is a reason code (frames.h).
  virtual void close(std::string lastFrame, std::string_view reason) = 0;
};

// A device connection as the transport sees it: frames in, and what happened to it.
class Connection {
 public:
  virtual ~Connection() = default;
  virtual void onFrame(std::string text) = 0;
  virtual void onDrained() = 0;
  virtual void onClosed() = 0;  // the last call
};

struct HubOptions {
  unsigned threads = 2;
  size_t maxStreamsPerConnection = 64;
  size_t maxStreams = 200000;        // on this node
  double subscribesPerSecond = 20;   // per connection, after a burst of
  double subscribeBurst = 128;
  size_t maxPending = 64;            // best-effort updates waiting per stream
  size_t catchUpBatch = 128;         // updates read back from the log at a time
  // A saturated processor is tried again after this long (at-least-once streams).
  std::chrono::milliseconds retryAfter{100};
};

struct HubDeps {
  TopicLog& log;
  AppStore& apps;
  exec::Invoker& invoker;
  MetricsRegistry& metrics;
  // Runs a processor's invocation call off the hub's threads (the node's worker pool).
  std::function<void(std::function<void()>)> runProcessor = [](std::function<void()> f) { f(); };
};

class Hub {
 public:
  Hub(HubDeps deps, HubOptions options);
  ~Hub();
  Hub(const Hub&) = delete;
  Hub& operator=(const Hub&) = delete;

  // A new device connection; the hub writes to `outlet` and the transport passes the
  // device's frames to the returned connection.
  std::shared_ptr<Connection> connect(std::shared_ptr<Outlet> outlet);

  // Ends every connection (a terminate frame with reason "shutdown"), drops the feeds and
  // stops the threads. Idempotent; the destructor calls it.
  void stop();

  // GET /v1/streams: connections, streams, and per topic the streams following it here and
  // the updates its feed brought to this node.
  nlohmann::json statsJson() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace tern::stream
