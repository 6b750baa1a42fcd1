#pragma once
// Topics: append-only logs of updates, each with its own sequence numbers (1, 2, ...), kept
// within a bounded retention (docs/design/streams.md). Two implementations: SQLite on a
// standalone node (sqlite_topic_log.h) and one JetStream stream per topic in a cluster
// (jetstream_topic_log.h). The stream hub sits on top and never knows which one it has.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "util/error.h"

namespace tern::stream {

// A topic's name: 1 to 64 of A-Z, a-z, 0-9, '_' and '-', starting with a letter or digit.
// Safe in URLs, metric labels, NATS subjects and JetStream stream names.
bool isTopicName(std::string_view name);

struct Update {
  std::string topic;
  uint64_t seq = 0;
  std::string payload;      // the published bytes (valid UTF-8; checked at publish)
  int64_t publishedMs = 0;  // wall clock of the publishing node
};

// What a topic retains: updates 'first' to 'last'. An empty topic has first == last + 1;
// a topic nobody has published to has last == 0.
struct TopicBounds {
  uint64_t first = 1;
  uint64_t last = 0;
};

struct TopicInfo {
  std::string topic;
  TopicBounds bounds;
};

// How much each topic keeps: the newest `maxMessages`, none older than `maxAge`.
struct Retention {
  uint64_t maxMessages = 10000;
  std::chrono::seconds maxAge{24 * 3600};
  size_t maxPayloadBytes = 64u << 10;  // larger publishes are refused
};

// Checks a publish before it is stored: the topic's name, the payload's size and UTF-8.
// Errors: kInvalidArgument, kBodyTooLarge.
Result<void> checkPublish(std::string_view topic, std::string_view payload, const Retention& r);

class TopicLog {
 public:
  virtual ~TopicLog() = default;

  // Appends an update and returns its sequence number. Errors: kInvalidArgument (name,
  // UTF-8), kBodyTooLarge (payload), kUnavailable (the backend cannot be reached), kIo.
  virtual Result<uint64_t> publish(std::string_view topic, std::string_view payload) = 0;

  // Retained updates of `topic` with seq > after, oldest first, at most `max` of them. An
  // unknown topic has none.
  virtual Result<std::vector<Update>> read(std::string_view topic, uint64_t after, size_t max) = 0;

  virtual Result<TopicBounds> bounds(std::string_view topic) = 0;
  virtual Result<std::vector<TopicInfo>> topics() = 0;

  // A live feed of one topic: ends when destroyed; once the destructor has returned no
  // further call is made.
  class Feed {
   public:
    virtual ~Feed() = default;
  };
  using OnUpdate = std::function<void(std::shared_ptr<const Update>)>;
  // Calls `onUpdate` for each update of `topic` published after it returns, in sequence
  // order, one call at a time, from the log's own thread; the callback must not block.
  // The hub holds one feed per topic however many streams follow it (fan-out per node);
  // an update the feed missed (a reconnect) is read back with read().
  virtual Result<std::unique_ptr<Feed>> follow(std::string_view topic, OnUpdate onUpdate) = 0;
};

}  // namespace tern::stream
