// Streams to devices against a real ternd (docs/design/streams.md): devices connect with
// WebSockets to /v1/streams; updates are published over HTTP. One feed per topic whatever
// the number of streams; the live-comments example's processor filters per viewer; a rate
// limit, credits, at-least-once resume and best-effort skipping; and bad input of every
// kind ends only the stream or connection it came on.

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <sstream>
#include <thread>

#include "raw_http.h"
#include "stream_device.h"
#include "ternd_process.h"
#include "test_support.h"
#include "util/subprocess.h"

namespace tern {
namespace {

using json = nlohmann::json;
using test::StreamDevice;

class StreamTest : public ::testing::Test {
 protected:
  explicit StreamTest(std::vector<std::string> args = {}) : node(dir.path() / "node", std::move(args)) {}

  uint64_t publish(const std::string& topic, const std::string& body) {
    auto r = test::request(node.port(), "POST", "/v1/topics/" + topic, body, node.auth());
    EXPECT_EQ(r.status, 200) << r.body;
    return json::parse(r.body, nullptr, false).value("seq", uint64_t{0});
  }
  json stats() {
    auto r = test::request(node.port(), "GET", "/v1/streams", "", node.auth());
    EXPECT_EQ(r.status, 200) << r.body;
    return json::parse(r.body, nullptr, false);
  }
  uint64_t feedUpdates(const std::string& topic) {
    json s = stats();
    for (const auto& t : s["topics"]) {
      if (t["topic"] == topic) return t["feed_updates"].get<uint64_t>();
    }
    return 0;
  }
  void deploy(const std::string& name, const std::string& module, const std::string& query = "") {
    auto r = test::request(node.port(), "PUT", "/v1/functions/" + name + query, module, node.auth());
    ASSERT_EQ(r.status, 201) << r.body;
  }
  void app(const std::string& name, const json& spec) {
    auto r = test::request(node.port(), "PUT", "/v1/apps/" + name, spec.dump(), node.auth());
    ASSERT_EQ(r.status, 200) << r.body;
  }

  test::TempDir dir;
  test::TerndProcess node;
};

TEST_F(StreamTest, EveryStreamGetsEachUpdateInOrderThroughOneFeed) {
  StreamDevice a(node.port()), b(node.port());
  for (int id : {1, 2}) {
    EXPECT_EQ(a.subscribe({{"stream", id}, {"topic", "news"}})["type"], "subscribed");
    EXPECT_EQ(b.subscribe({{"stream", id}, {"topic", "news"}})["type"], "subscribed");
  }
  EXPECT_EQ(stats()["streams"], 4);
  for (int i = 1; i <= 5; ++i) EXPECT_EQ(publish("news", fmt::format(R"({{"n":{}}})", i)), uint64_t(i));
  EXPECT_EQ(publish("news", "plain text"), 6u);
  for (auto* d : {&a, &b}) {
    for (int id : {1, 2}) {
      auto got = d->data(id, 6);
      ASSERT_EQ(StreamDevice::seqs(got), (std::vector<uint64_t>{1, 2, 3, 4, 5, 6}));
      EXPECT_EQ(got[0]["payload"], json::parse(R"({"n":1})"));
      EXPECT_EQ(got[5]["payload"], "plain text");
      EXPECT_EQ(got[0]["topic"], "news");
    }
  }
  // Four streams, one feed: each update reached the hub once.
  EXPECT_EQ(feedUpdates("news"), 6u);
  auto topics = json::parse(test::request(node.port(), "GET", "/v1/topics", "", node.auth()).body);
  EXPECT_EQ(topics["topics"][0]["last_seq"], 6);
  auto log = json::parse(test::request(node.port(), "GET", "/v1/topics/news?after=4", "", node.auth()).body);
  ASSERT_EQ(log["updates"].size(), 2u);
  EXPECT_EQ(log["updates"][1]["payload"], "plain text");
  // The last stream to leave closes the feed.
  a.close();
  b.close();
  ASSERT_TRUE(test::eventually([&] { return stats()["streams"] == 0 && stats()["topics"].empty(); }));
}

TEST_F(StreamTest, BlockedUsersAreFilteredPerViewer) {
  deploy("comments-filter", test::readText(test::examplesDir() / "comments_filter.wasm"));
  app("comments", {{"processor", "comments-filter"}});
  StreamDevice viewers(node.port());
  EXPECT_EQ(viewers.subscribe({{"stream", 1}, {"topic", "video-42"}, {"app", "comments"},
                               {"params", {{"blocked", {"bob"}}}}, {"guarantee", "at-least-once"}})["type"],
            "subscribed");
  EXPECT_EQ(viewers.subscribe({{"stream", 2}, {"topic", "video-42"}, {"app", "comments"},
                               {"params", {{"blocked", {"eve"}}}}})["type"],
            "subscribed");
  for (const char* user : {"amy", "bob", "carl", "bob", "dan"}) {
    publish("video-42", json{{"user", user}, {"text", fmt::format("hi from {}", user)}}.dump());
  }
  auto first = viewers.data(1, 3);
  EXPECT_EQ(StreamDevice::seqs(first), (std::vector<uint64_t>{1, 3, 5}));
  for (const auto& f : first) EXPECT_NE(f["payload"]["user"], "bob");
  auto second = viewers.data(2, 5);
  EXPECT_EQ(StreamDevice::seqs(second), (std::vector<uint64_t>{1, 2, 3, 4, 5}));
  // Bob's comments were filtered for the first viewer only, and nothing else is on its way.
  viewers.send({{"type", "cancel"}, {"stream", 1}});
  auto end = viewers.next();
  ASSERT_TRUE(end);
  EXPECT_EQ((*end)["type"], "terminate");
  EXPECT_EQ((*end)["reason"], "cancelled");
  auto metrics = test::request(node.port(), "GET", "/metrics").body;
  EXPECT_NE(metrics.find("tern_stream_filtered_total 2"), std::string::npos) << metrics;
}

TEST_F(StreamTest, ARateLimitOfTwoPerSecondHolds) {
  app("calm", {{"max_per_second", 2}});
  StreamDevice d(node.port());
  d.subscribe({{"stream", 1}, {"topic", "burst"}, {"app", "calm"}, {"guarantee", "at-least-once"}});
  d.subscribe({{"stream", 2}, {"topic", "burst"}, {"app", "calm"}});
  // At-least-once: all eight come, in order, at two per second after a burst of two, so
  // the eighth cannot arrive before 3 s after the first, which cannot arrive before the
  // first publish (timed from before it: on a slow machine the publishes themselves take
  // a good part of those 3 s, while deliveries are already going out).
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 8; ++i) publish("burst", std::to_string(i));
  auto ordered = d.data(1, 8);
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(StreamDevice::seqs(ordered), (std::vector<uint64_t>{1, 2, 3, 4, 5, 6, 7, 8}));
  EXPECT_GE(elapsed, 2.9);
  // Best-effort: what exceeded the bucket was dropped, not delayed. The stream got the
  // burst's two right away, and no more than the bucket allowed in the time it took.
  auto dropped = d.data(2, 8, std::chrono::milliseconds(200));
  EXPECT_GE(dropped.size(), 2u);
  EXPECT_LE(static_cast<double>(dropped.size()), 2 + 2 * (elapsed + 0.2) + 1);
  // A subscriber may lower the limit with its params, never raise it.
  d.subscribe({{"stream", 3}, {"topic", "burst"}, {"app", "calm"}, {"params", {{"max_per_second", 100}}}});
  auto before = std::chrono::steady_clock::now();
  for (int i = 0; i < 6; ++i) publish("burst", "again");
  auto raised = d.data(3, 6, std::chrono::milliseconds(300));
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - before).count();
  EXPECT_LE(static_cast<double>(raised.size()), 2 + 2 * took + 1);  // the app's bucket, not 100/s
}

TEST_F(StreamTest, CreditsStopAndResumeDelivery) {
  StreamDevice d(node.port());
  d.subscribe({{"stream", 1}, {"topic", "t"}, {"guarantee", "at-least-once"}, {"credits", 2}});
  d.subscribe({{"stream", 2}, {"topic", "t"}, {"credits", 1}});
  for (int i = 1; i <= 5; ++i) publish("t", std::to_string(i));
  EXPECT_EQ(StreamDevice::seqs(d.data(1, 2)), (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(StreamDevice::seqs(d.data(2, 1)), (std::vector<uint64_t>{1}));
  // Out of credits: nothing more comes on either stream.
  EXPECT_TRUE(d.data(1, 1, std::chrono::milliseconds(500)).empty());
  EXPECT_TRUE(d.data(2, 1, std::chrono::milliseconds(100)).empty());
  d.send({{"type", "credits"}, {"stream", 1}, {"credits", 10}});
  d.send({{"type", "credits"}, {"stream", 2}, {"credits", 10}});
  // At-least-once takes up where it stopped; best-effort dropped what came meanwhile.
  EXPECT_EQ(StreamDevice::seqs(d.data(1, 3)), (std::vector<uint64_t>{3, 4, 5}));
  publish("t", "6");
  EXPECT_EQ(StreamDevice::seqs(d.data(2, 1)), (std::vector<uint64_t>{6}));
  EXPECT_EQ(StreamDevice::seqs(d.data(1, 1)), (std::vector<uint64_t>{6}));
}

TEST_F(StreamTest, AtLeastOnceResumesExactlyAfterTheGivenSequenceAndBestEffortSkips) {
  uint64_t lastSeen = 0;
  {
    StreamDevice d(node.port());
    d.subscribe({{"stream", 1}, {"topic", "feed"}, {"guarantee", "at-least-once"}});
    publish("feed", "1");
    publish("feed", "2");
    auto got = d.data(1, 2);
    ASSERT_EQ(got.size(), 2u);
    lastSeen = got.back()["seq"].get<uint64_t>();
  }
  for (int i = 3; i <= 7; ++i) publish("feed", std::to_string(i));  // missed while away
  StreamDevice d(node.port());
  auto sub = d.subscribe({{"stream", 9}, {"topic", "feed"}, {"guarantee", "at-least-once"}, {"resume_after", lastSeen}});
  EXPECT_EQ(sub["last_seq"], 7);
  d.subscribe({{"stream", 10}, {"topic", "feed"}, {"resume_after", lastSeen}});
  publish("feed", "8");
  EXPECT_EQ(StreamDevice::seqs(d.data(9, 6)), (std::vector<uint64_t>{3, 4, 5, 6, 7, 8}));
  EXPECT_EQ(StreamDevice::seqs(d.data(10, 1)), (std::vector<uint64_t>{8}));
  // A resume point beyond the topic is refused.
  auto ahead = d.subscribe({{"stream", 11}, {"topic", "feed"}, {"guarantee", "at-least-once"}, {"resume_after", 99}});
  EXPECT_EQ(ahead["reason"], "bad_frame");
}

// The CLI as a script uses it: `tern app deploy`, `tern stream subscribe --json --count`
// in the background, `tern stream publish`.
TEST_F(StreamTest, TheCliDeploysAppsPublishesAndSubscribes) {
  auto tern = [&](const std::vector<std::string>& args) { return node.cli(args); };
  deploy("comments-filter", test::readText(test::examplesDir() / "comments_filter.wasm"));
  auto deployed = tern({"app", "deploy", "comments", "--processor", "comments-filter", "--max-per-second", "50"});
  EXPECT_EQ(deployed.exitStatus, 0) << deployed.output;
  auto listed = tern({"--json", "app", "ls"});
  EXPECT_NE(listed.output.find(R"("processor":"comments-filter")"), std::string::npos) << listed.output;

  SubprocessResult subscribed;
  std::thread viewer([&] {
    subscribed = tern({"stream", "subscribe", "video-1", "--app", "comments", "--params", R"({"blocked":["bob"]})",
                       "--count", "2", "--json"});
  });
  ASSERT_TRUE(test::eventually([&] { return stats()["streams"] == 1; }));
  for (const char* user : {"amy", "bob", "cat"}) {
    auto p = tern({"stream", "publish", "video-1", "--data", json{{"user", user}}.dump()});
    EXPECT_EQ(p.exitStatus, 0) << p.output;
  }
  viewer.join();
  EXPECT_EQ(subscribed.exitStatus, 0) << subscribed.output;
  std::vector<json> lines;
  std::istringstream in(subscribed.output);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.front() == '{') lines.push_back(json::parse(line));
  }
  ASSERT_EQ(lines.size(), 2u) << subscribed.output;
  EXPECT_EQ(lines[0], json::parse(R"({"seq":1,"topic":"video-1","payload":{"user":"amy"}})"));
  EXPECT_EQ(lines[1]["seq"], 3);
  // A resume point beyond the topic is refused with the reason.
  auto bad = tern({"stream", "subscribe", "video-1", "--guarantee", "at-least-once", "--resume-after", "99"});
  EXPECT_NE(bad.exitStatus, 0);
  EXPECT_NE(bad.output.find("bad_frame"), std::string::npos) << bad.output;
}

TEST_F(StreamTest, AStoppingNodeTellsItsDevicesWhy) {
  StreamDevice d(node.port());
  d.subscribe({{"stream", 1}, {"topic", "t"}});
  EXPECT_EQ(node.terminate(), 0);
  auto f = d.next();
  ASSERT_TRUE(f);
  EXPECT_EQ((*f)["type"], "terminate");
  EXPECT_FALSE(f->contains("stream"));
  EXPECT_EQ((*f)["reason"], "shutdown");
}

class StreamRetentionTest : public StreamTest {
 protected:
  StreamRetentionTest() : StreamTest({"--topic-retention-messages", "3"}) {}
};

TEST_F(StreamRetentionTest, AResumePointOlderThanTheRetentionIsAnExplicitError) {
  for (int i = 1; i <= 10; ++i) publish("short", std::to_string(i));
  StreamDevice d(node.port());
  auto old = d.subscribe({{"stream", 1}, {"topic", "short"}, {"guarantee", "at-least-once"}, {"resume_after", 2}});
  EXPECT_EQ(old["type"], "terminate");
  EXPECT_EQ(old["reason"], "resume_point_expired");
  EXPECT_NE(old["message"].get<std::string>().find("3 to 7"), std::string::npos) << old;
  // Exactly at the edge of the retention is fine.
  auto edge = d.subscribe({{"stream", 2}, {"topic", "short"}, {"guarantee", "at-least-once"}, {"resume_after", 7}});
  EXPECT_EQ(edge["first_seq"], 8);
  EXPECT_EQ(StreamDevice::seqs(d.data(2, 3)), (std::vector<uint64_t>{8, 9, 10}));
}

TEST_F(StreamTest, BadFramesEndOnlyTheirStreamOrConnection) {
  StreamDevice good(node.port());
  good.subscribe({{"stream", 1}, {"topic", "t"}});

  StreamDevice d(node.port());
  d.subscribe({{"stream", 1}, {"topic", "t"}});
  // A frame naming a stream ends that stream only.
  auto bad = d.subscribe({{"stream", 2}, {"topic", "t"}, {"guarantee", "sometimes"}});
  EXPECT_EQ(bad["reason"], "bad_frame");
  EXPECT_EQ(d.subscribe({{"stream", 3}, {"topic", "no/slash"}})["reason"], "bad_topic");
  EXPECT_EQ(d.subscribe({{"stream", 4}, {"topic", "t"}, {"app", "nope"}})["reason"], "unknown_app");
  d.send({{"type", "subscribe"}, {"stream", 1}, {"topic", "t"}});  // stream 1 is open
  auto dup = d.next();
  ASSERT_TRUE(dup);
  EXPECT_EQ((*dup)["reason"], "duplicate_stream");
  d.subscribe({{"stream", 5}, {"topic", "t"}});
  publish("t", "x");
  EXPECT_EQ(d.data(5, 1).size(), 1u);
  // A frame that names no stream ends the connection.
  d.sendText("{not json");
  auto term = d.next();
  ASSERT_TRUE(term);
  EXPECT_EQ((*term)["reason"], "bad_frame");
  EXPECT_FALSE(d.next(std::chrono::seconds(30)));
  EXPECT_TRUE(d.closed());

  // JSON nested without bound is refused, not recursed into.
  StreamDevice deep(node.port());
  deep.sendText(R"({"type":"subscribe","stream":1,"topic":"t","params":{"a":)" + std::string(30000, '[') +
                std::string(30000, ']') + "}}");
  auto refused = deep.next();
  ASSERT_TRUE(refused);
  EXPECT_EQ((*refused)["reason"], "bad_frame");
  EXPECT_FALSE(deep.next(std::chrono::seconds(30)));
  EXPECT_TRUE(deep.closed());

  // An oversized frame closes its connection (1009). The node refuses it from its header,
  // so the rest of the frame may meet a closed socket: either way the connection ends.
  StreamDevice big(node.port());
  (void)big.trySendText(std::string(70 * 1024, ' '));
  EXPECT_FALSE(big.next(std::chrono::seconds(30)));
  EXPECT_TRUE(big.closed());

  // A subscribe flood ends its connection.
  StreamDevice flood(node.port());
  for (int i = 1; i <= 200 && !flood.closed(); ++i) {
    flood.send({{"type", "subscribe"}, {"stream", i}, {"topic", "t"}, {"guarantee", "best-effort"}});
  }
  bool sawFlood = false;
  while (auto f = flood.next(std::chrono::seconds(30))) {
    sawFlood = sawFlood || (*f)["reason"] == "subscribe_flood";
  }
  EXPECT_TRUE(sawFlood);

  // The well-behaved device noticed nothing.
  publish("t", "y");
  EXPECT_EQ(StreamDevice::seqs(good.data(1, 2)), (std::vector<uint64_t>{1, 2}));
  ASSERT_TRUE(test::eventually([&] { return stats()["connections"] == 1; }));
}

TEST_F(StreamTest, AConnectionCarriesAtMostItsStreams) {
  StreamDevice d(node.port());
  for (int i = 1; i <= 64; ++i) {
    d.send({{"type", "subscribe"}, {"stream", i}, {"topic", fmt::format("t{}", i % 3)}});
  }
  auto refused = d.subscribe({{"stream", 65}, {"topic", "t0"}});
  EXPECT_EQ(refused["reason"], "too_many_streams");
  // A stream counts once it exists; it follows its topic once its strand has started it.
  ASSERT_TRUE(test::eventually([&] {
    json s = stats();
    return s["streams"] == 64 && s["topics"].size() == 3u;
  }));
}

TEST_F(StreamTest, AFailingProcessorEndsOnlyItsOwnStreams) {
  deploy("trap", std::string([] {
           auto b = test::wat(R"((module (memory (export "memory") 1) (func (export "_start") unreachable)))");
           return std::string(b.begin(), b.end());
         }()));
  deploy("spin", test::readText(test::guestsDir() / "burner.wasm"), "?timeout_ms=200&env=BURN_US=100000000");
  deploy("comments-filter", test::readText(test::examplesDir() / "comments_filter.wasm"));
  app("broken", {{"processor", "trap"}});
  app("runaway", {{"processor", "spin"}});
  app("comments", {{"processor", "comments-filter"}});
  StreamDevice d(node.port());
  d.subscribe({{"stream", 1}, {"topic", "c"}, {"app", "broken"}, {"guarantee", "at-least-once"}});
  d.subscribe({{"stream", 2}, {"topic", "c"}, {"app", "runaway"}});
  d.subscribe({{"stream", 3}, {"topic", "c"}, {"app", "comments"}});
  publish("c", R"({"user":"amy","text":"hello"})");
  std::map<uint64_t, json> ends;
  std::vector<json> delivered;
  while (ends.size() < 2 || delivered.empty()) {
    auto f = d.next();
    ASSERT_TRUE(f) << "frames stopped";
    if ((*f)["type"] == "terminate") ends[(*f)["stream"].get<uint64_t>()] = *f;
    if ((*f)["type"] == "data") delivered.push_back(*f);
  }
  EXPECT_EQ(ends[1]["reason"], "processor_failed");
  EXPECT_EQ(ends[2]["reason"], "processor_failed");
  EXPECT_NE(ends[2]["message"].get<std::string>().find("spin"), std::string::npos) << ends[2];
  ASSERT_EQ(delivered.size(), 1u);
  EXPECT_EQ(delivered[0]["stream"], 3);
  publish("c", R"({"user":"bob","text":"still here"})");
  EXPECT_EQ(StreamDevice::seqs(d.data(3, 1)), (std::vector<uint64_t>{2}));
}

class StreamSlowConsumerTest : public StreamTest {
 protected:
  // Long enough that the device that does read, which this test reads between publishes,
  // is never taken for a stalled one when the node runs slowly (a sanitizer build, a busy
  // machine); the one that never reads stalls for good.
  StreamSlowConsumerTest() : StreamTest({"--stream-stall-timeout-ms", "3000"}) {}
};

TEST_F(StreamSlowConsumerTest, ADeviceThatNeverReadsIsDisconnectedAndOthersGoOn) {
  StreamDevice slow(node.port()), fine(node.port());
  slow.subscribe({{"stream", 1}, {"topic", "big"}, {"guarantee", "at-least-once"}});
  fine.subscribe({{"stream", 1}, {"topic", "big"}});
  // The device that reads does so on a thread of its own, all the time, so however slowly
  // the publishes below go (a sanitizer build on a busy machine), it is never the one that
  // stalls.
  std::atomic<bool> sawLast{false};
  std::thread reader([&] {
    while (auto f = fine.next(std::chrono::seconds(120))) {
      if ((*f)["type"] == "data" && (*f)["payload"] == "last") {
        sawLast = true;
        return;
      }
    }
  });
  std::string payload(60 * 1024, 'x');
  // Until the slow device's socket buffers and its budget are full and its connection has
  // stalled for the stall timeout.
  uint64_t published = 0;
  EXPECT_TRUE(test::eventually(
      [&] {
        for (int i = 0; i < 4; ++i) published = publish("big", payload);
        return stats()["connections"] == 1;
      },
      std::chrono::seconds(120), std::chrono::milliseconds(1)));
  EXPECT_GT(published, 4u);
  // The reader is still served. Best-effort may have dropped some under the burst, and may
  // drop "last" too while the reader is still a full queue behind, so it is published until
  // the reader sees it.
  EXPECT_TRUE(test::eventually(
      [&] {
        publish("big", "last");
        return sawLast.load();
      },
      std::chrono::seconds(120), std::chrono::milliseconds(50)));
  reader.join();
  EXPECT_TRUE(sawLast);
  EXPECT_FALSE(fine.closed());
}

}  // namespace
}  // namespace tern
