// Streams in a cluster of two real nodes on a real nats-server (docs/design/streams.md):
// each topic is a JetStream stream, so both nodes see the same sequence numbers; each node
// follows a topic once however many of its devices do; an app deployed on one node serves
// devices on the other; an at-least-once device that goes away for 2 s and comes back on
// the other node gets exactly what it missed, in order, and a best-effort one skips it.

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include <nlohmann/json.hpp>

#include "cluster_fixture.h"
#include "stream_device.h"

namespace tern {
namespace {

using json = nlohmann::json;
using test::StreamDevice;

class StreamClusterTest : public test::ClusterFixture {
 protected:
  void SetUp() override {
    ClusterFixture::SetUp();
    a = node("a", "east");
    b = node("b", "west");
  }
  std::unique_ptr<test::TerndProcess> node(const std::string& name, const std::string& site) {
    return std::make_unique<test::TerndProcess>(
        dir.path() / name,
        std::vector<std::string>{"--coap-listen", "off", "--cluster", nats->url(), "--cluster-secret-file",
                                 secret.string(), "--node-name", name, "--site", site, "--heartbeat-ms",
                                 "100", "--member-ttl-ms", "1500"});
  }
  static uint64_t publish(test::TerndProcess& n, const std::string& topic, const std::string& body) {
    test::HttpReply r;
    // The node's JetStream connection is made in the background just after it starts.
    EXPECT_TRUE(test::eventually([&] {
      r = test::request(n.port(), "POST", "/v1/topics/" + topic, body, n.auth());
      return r.status != 503;
    }));
    EXPECT_EQ(r.status, 200) << r.body;
    return json::parse(r.body, nullptr, false).value("seq", uint64_t{0});
  }
  static json stats(test::TerndProcess& n) {
    return json::parse(test::request(n.port(), "GET", "/v1/streams", "", n.auth()).body, nullptr, false);
  }
  static uint64_t feedUpdates(test::TerndProcess& n, const std::string& topic) {
    json s = stats(n);
    for (const auto& t : s["topics"]) {
      if (t["topic"] == topic) return t["feed_updates"].get<uint64_t>();
    }
    return 0;
  }
  // Subscribes, retrying while the node's JetStream connection is still being made.
  static json subscribe(StreamDevice& d, json frame) {
    json answer;
    EXPECT_TRUE(test::eventually([&] {
      answer = d.subscribe(frame);
      return answer["type"] == "subscribed" || answer.value("reason", "") != "unavailable";
    }));
    EXPECT_EQ(answer["type"], "subscribed") << answer;
    return answer;
  }

  std::unique_ptr<test::TerndProcess> a, b;
};

TEST_F(StreamClusterTest, EachUpdateCrossesToEachNodeOnceWhateverItsSubscribers) {
  // Node a's devices: three streams over two connections; node b's: two over one.
  StreamDevice a1(a->port()), a2(a->port()), b1(b->port());
  subscribe(a1, {{"stream", 1}, {"topic", "scores"}});
  subscribe(a1, {{"stream", 2}, {"topic", "scores"}});
  subscribe(a2, {{"stream", 1}, {"topic", "scores"}});
  subscribe(b1, {{"stream", 1}, {"topic", "scores"}});
  subscribe(b1, {{"stream", 2}, {"topic", "scores"}});
  std::vector<uint64_t> all;
  for (int i = 1; i <= 6; ++i) {
    auto& n = i % 2 ? *a : *b;  // published on either node, one sequence
    all.push_back(publish(n, "scores", fmt::format(R"({{"goal":{}}})", i)));
  }
  EXPECT_EQ(all, (std::vector<uint64_t>{1, 2, 3, 4, 5, 6}));
  for (auto [d, id] : {std::pair{&a1, 1}, {&a1, 2}, {&a2, 1}, {&b1, 1}, {&b1, 2}}) {
    auto got = d->data(id, 6);
    EXPECT_EQ(StreamDevice::seqs(got), all);
    if (!got.empty()) {
      EXPECT_EQ(got[0]["payload"]["goal"], 1);
    }
  }
  // Each node's one feed brought each update once: 6 on a (3 streams), 6 on b (2 streams).
  EXPECT_EQ(feedUpdates(*a, "scores"), 6u);
  EXPECT_EQ(feedUpdates(*b, "scores"), 6u);
  EXPECT_EQ(stats(*a)["streams"], 3);
  EXPECT_EQ(stats(*b)["streams"], 2);
}

TEST_F(StreamClusterTest, AnAppDeployedOnOneNodeFiltersOnTheOther) {
  auto r = test::request(a->port(), "PUT", "/v1/functions/comments-filter",
                         test::readText(test::examplesDir() / "comments_filter.wasm"), a->auth());
  ASSERT_EQ(r.status, 201) << r.body;
  ASSERT_TRUE(test::eventually([&] {
    return test::request(a->port(), "PUT", "/v1/apps/comments", R"({"processor":"comments-filter"})", a->auth())
               .status == 200;
  }));
  // The function reaches b through the registry, the app through the apps bucket.
  ASSERT_TRUE(test::eventually([&] {
    return test::request(b->port(), "GET", "/v1/functions/comments-filter", "", b->auth()).status == 200;
  }));
  EXPECT_EQ(test::request(b->port(), "GET", "/v1/apps/comments", "", b->auth()).status, 200);
  StreamDevice viewer(b->port());
  subscribe(viewer, {{"stream", 1}, {"topic", "video-7"}, {"app", "comments"}, {"params", {{"blocked", {"bob"}}}}});
  for (const char* user : {"bob", "amy", "bob", "cat"}) publish(*a, "video-7", json{{"user", user}, {"text", "."}}.dump());
  EXPECT_EQ(StreamDevice::seqs(viewer.data(1, 2)), (std::vector<uint64_t>{2, 4}));
}

TEST_F(StreamClusterTest, AtLeastOnceResumesOnTheOtherNodeAndBestEffortSkips) {
  uint64_t lastSeen = 0;
  {
    StreamDevice d(a->port());
    subscribe(d, {{"stream", 1}, {"topic", "orders"}, {"guarantee", "at-least-once"}});
    subscribe(d, {{"stream", 2}, {"topic", "orders"}});
    for (int i = 1; i <= 3; ++i) publish(*a, "orders", std::to_string(i));
    auto got = d.data(1, 3);
    ASSERT_EQ(StreamDevice::seqs(got), (std::vector<uint64_t>{1, 2, 3}));
    EXPECT_EQ(d.data(2, 3).size(), 3u);
    lastSeen = got.back()["seq"].get<uint64_t>();
    d.close();
  }
  // Away for 2 s while updates keep coming (published on both nodes).
  auto away = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  std::vector<uint64_t> missed;
  for (int i = 0; std::chrono::steady_clock::now() < away || missed.size() < 4; ++i) {
    missed.push_back(publish(i % 2 ? *a : *b, "orders", fmt::format("missed {}", i)));
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the publisher's pace
  }
  StreamDevice d(b->port());
  auto sub = subscribe(d, {{"stream", 1}, {"topic", "orders"}, {"guarantee", "at-least-once"}, {"resume_after", lastSeen}});
  EXPECT_EQ(sub["last_seq"], missed.back());
  subscribe(d, {{"stream", 2}, {"topic", "orders"}, {"resume_after", lastSeen}});
  uint64_t live = publish(*b, "orders", "back");
  auto expected = missed;
  expected.push_back(live);
  EXPECT_EQ(StreamDevice::seqs(d.data(1, expected.size())), expected);
  // Best-effort: only what was published after it subscribed.
  EXPECT_EQ(StreamDevice::seqs(d.data(2, 1)), (std::vector<uint64_t>{live}));
}

}  // namespace
}  // namespace tern
