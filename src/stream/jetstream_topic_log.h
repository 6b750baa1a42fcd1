#pragma once
// A cluster's topics and apps on JetStream (docs/design/streams.md), on a NATS connection
// of their own, so that every node sees the same updates with the same sequence numbers.
//
// Mapping:
// - Topic T is the stream TERN_TOPIC_<T> with the one subject tern.topic.<T>; the topic's
//   sequence numbers are the stream's. A node creates the stream (or brings its limits to
//   its own Retention) the first time it publishes to or follows T: limits retention,
//   max_msgs = maxMessages (0: no limit), max_age = maxAge (0: no limit), max_msg_size =
//   maxPayloadBytes, discard old, file storage, one replica. read, bounds and topics never
//   create a stream: a topic without one has no updates.
// - publish is a JetStream publish; the stream's acknowledgement gives the sequence number.
// - read is an ephemeral pull consumer (memory storage, no acks) that starts at after+1,
//   fetched without waiting for updates not yet published; the server drops it once idle.
// - follow is one ordered push consumer per feed (ephemeral, memory storage, flow control,
//   idle heartbeats). libnats re-creates an ordered consumer after a reconnect, a gap or
//   missed heartbeats, from the last sequence it delivered + 1. A feed starts at the
//   topic's last update (which it delivers to no one), so that point is never 0 and a
//   re-created consumer resumes after what the feed saw instead of replaying the topic.
// - Apps are the key-value bucket tern_apps: key = the app's name, value = appJson(app).
//
// Threads: all calls are safe from any thread; each makes at most a few JetStream
// requests, each bounded by the request timeout. While NATS is not connected they fail at
// once with kUnavailable. A feed's callback runs on a libnats thread of its own.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/nats_security.h"
#include "stream/app_store.h"
#include "stream/topic_log.h"
#include "util/error.h"
#include "util/thread_annotations.h"

namespace tern::stream {

struct JetStreamOptions {
  std::string url;              // nats://HOST:PORT
  cluster::NatsSecurity nats;  // TLS and credentials of the NATS connection
  std::string jetStreamDomain;  // empty: the account's own JetStream
  Retention retention;          // the limits of the streams this node creates or follows
  std::chrono::milliseconds requestTimeout{5000};  // each JetStream request
  std::string connectionName;   // as the NATS server lists the connection
};

// The libnats handles (connection, JetStream context, bucket); defined in the .cpp so that
// nats.h stays out of headers.
struct JetStreamConnection;

class JetStreamTopicLog final : public TopicLog {
 public:
  explicit JetStreamTopicLog(JetStreamConnection& nats) : nats_(nats) {}

  Result<uint64_t> publish(std::string_view topic, std::string_view payload) override;
  Result<std::vector<Update>> read(std::string_view topic, uint64_t after, size_t max) override;
  Result<TopicBounds> bounds(std::string_view topic) override;
  Result<std::vector<TopicInfo>> topics() override;
  // Errors: kInvalidArgument (name), kUnavailable, kIo.
  Result<std::unique_ptr<Feed>> follow(std::string_view topic, OnUpdate onUpdate) override;

 private:
  // Creates the topic's stream or updates its limits; returns its bounds.
  Result<TopicBounds> ensureStream(std::string_view topic);

  JetStreamConnection& nats_;
  Mutex mu_;
  // Topics whose stream this node set up.
  std::set<std::string, std::less<>> ensured_ TERN_GUARDED_BY(mu_);
};

class JetStreamAppStore final : public AppStore {
 public:
  explicit JetStreamAppStore(JetStreamConnection& nats) : nats_(nats) {}

  Result<void> put(const App& app) override;
  Result<std::optional<App>> get(std::string_view name) override;
  // Sorted by name; a record that does not decode is logged and left out.
  Result<std::vector<App>> list() override;
  Result<bool> remove(std::string_view name) override;

 private:
  JetStreamConnection& nats_;
};

// Owns the connection and hands out the two interfaces on it. Destroy it after the users
// of log() and apps(); feeds still open then stop receiving and stay safe to destroy.
class JetStreamTopics {
 public:
  // Connects, in the background while NATS is unreachable, and reconnects forever.
  // Errors: kInvalidArgument (URL, timeout), kUnavailable.
  static Result<std::unique_ptr<JetStreamTopics>> connect(JetStreamOptions options);
  ~JetStreamTopics();
  JetStreamTopics(const JetStreamTopics&) = delete;
  JetStreamTopics& operator=(const JetStreamTopics&) = delete;

  TopicLog& log() { return log_; }
  AppStore& apps() { return apps_; }
  bool connected() const;

 private:
  explicit JetStreamTopics(std::unique_ptr<JetStreamConnection> nats);

  std::unique_ptr<JetStreamConnection> nats_;
  JetStreamTopicLog log_;
  JetStreamAppStore apps_;
};

}  // namespace tern::stream
