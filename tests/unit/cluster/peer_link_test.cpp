// Direct links between nodes (PeerLinks) on loopback, without NATS: calls and replies
// matched by id, a peer that cannot be reached, a peer that goes away mid-call, oversized
// and refused frames.
#include "cluster/peer_link.h"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "test_support.h"

namespace tern::cluster {
namespace {

// What one side of a link saw: replies and lost calls by id.
struct Seen {
  std::mutex mu;
  std::condition_variable cv;
  std::map<uint64_t, std::string> replies;
  std::map<uint64_t, std::string> lost;

  // Copies taken under the lock: the links' threads keep writing while a test reads.
  std::map<uint64_t, std::string> repliesNow() {
    std::lock_guard lock(mu);
    return replies;
  }
  std::map<uint64_t, std::string> lostNow() {
    std::lock_guard lock(mu);
    return lost;
  }

  bool waitFor(uint64_t id) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, std::chrono::seconds(30),
                       [&] { return replies.count(id) || lost.count(id); });
  }
};

std::unique_ptr<PeerLinks> client(Seen& seen, PeerLinkOptions o = {}) {
  return std::make_unique<PeerLinks>(
      o, [](std::span<const uint8_t>, PeerLinks::Reply) { return false; },
      [&seen](uint64_t id, std::span<const uint8_t> bytes) {
        std::lock_guard lock(seen.mu);
        seen.replies[id] = std::string(bytes.begin(), bytes.end());
        seen.cv.notify_all();
      },
      [&seen](uint64_t id, const std::string& why) {
        std::lock_guard lock(seen.mu);
        seen.lost[id] = why;
        seen.cv.notify_all();
      });
}

// Sends call `id` once the link to `address` is open (the first send only opens it).
bool sendLinked(PeerLinks& c, const std::string& address, uint64_t id, const std::string& env) {
  auto end = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < end) {
    if (c.send(address, id, env)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return false;
}

// Waits until the link to `address` leaves the connecting state; returns that state.
PeerLinks::LinkState settled(PeerLinks& c, const std::string& address) {
  auto end = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (c.state(address) == PeerLinks::LinkState::kConnecting &&
         std::chrono::steady_clock::now() < end) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return c.state(address);
}

// A server that answers "re:" + the request, refuses "refuse", and keeps "hold" waiting.
struct Server {
  std::mutex mu;
  std::vector<PeerLinks::Reply> held;
  PeerLinks links{PeerLinkOptions{64, 64},
                  [this](std::span<const uint8_t> bytes, PeerLinks::Reply reply) {
                    std::string s(bytes.begin(), bytes.end());
                    if (s == "refuse") return false;
                    if (s == "hold") {
                      std::lock_guard lock(mu);
                      held.push_back(std::move(reply));
                      return true;
                    }
                    reply("re:" + s);
                    return true;
                  },
                  [](uint64_t, std::span<const uint8_t>) {},
                  [](uint64_t, const std::string&) {}};
  std::string address() { return "127.0.0.1:" + std::to_string(links.port()); }
};

TEST(PeerLinkTest, RepliesComeBackByIdOnOneLink) {
  Server server;
  ASSERT_TRUE(server.links.listen("127.0.0.1", 0).ok());
  Seen seen;
  auto c = client(seen);
  EXPECT_FALSE(c->send(server.address(), 1, "call 1")) << "the first call only opens the link";
  for (uint64_t id = 1; id <= 50; ++id) {
    ASSERT_TRUE(sendLinked(*c, server.address(), id, "call " + std::to_string(id)));
  }
  EXPECT_EQ(c->state(server.address()), PeerLinks::LinkState::kOpen);
  for (uint64_t id = 1; id <= 50; ++id) {
    ASSERT_TRUE(seen.waitFor(id));
    EXPECT_EQ(seen.repliesNow()[id], "re:call " + std::to_string(id));
  }
  EXPECT_TRUE(seen.lostNow().empty());
}

TEST(PeerLinkTest, AnUnreachablePeerIsNotSentToAndNotRetriedAtOnce) {
  uint16_t port = test::freeLoopbackPort();
  Seen seen;
  PeerLinkOptions o;
  o.retryAfter = std::chrono::hours(1);  // no dependence on how fast the steps below run
  auto c = client(seen, o);
  std::string address = "127.0.0.1:" + std::to_string(port);
  EXPECT_FALSE(c->send(address, 1, "x"));
  EXPECT_EQ(settled(*c, address), PeerLinks::LinkState::kUnreachable);
  // A listener appears, but the peer stays marked unreachable for retryAfter.
  PeerLinks late({}, [](std::span<const uint8_t>, PeerLinks::Reply r) { r("late"); return true; },
                 [](uint64_t, std::span<const uint8_t>) {}, [](uint64_t, const std::string&) {});
  ASSERT_TRUE(late.listen("127.0.0.1", port).ok());
  EXPECT_FALSE(c->send(address, 2, "x"));
  EXPECT_EQ(c->state(address), PeerLinks::LinkState::kUnreachable);
  EXPECT_FALSE(c->send("not-an-ip:1", 3, "x"));
  EXPECT_EQ(settled(*c, "not-an-ip:1"), PeerLinks::LinkState::kUnreachable);
  EXPECT_TRUE(seen.repliesNow().empty());
  EXPECT_TRUE(seen.lostNow().empty());
}

TEST(PeerLinkTest, CallsInFlightAreLostWhenThePeerGoesAway) {
  Seen seen;
  auto c = client(seen);
  std::string address;
  {
    Server server;
    ASSERT_TRUE(server.links.listen("127.0.0.1", 0).ok());
    address = server.address();
    ASSERT_TRUE(sendLinked(*c, address, 1, "hold"));
    ASSERT_TRUE(c->send(address, 2, "ping"));
    ASSERT_TRUE(seen.waitFor(2));
    // The server stops: the held call is never answered and its connection closes.
  }
  // A call made after the peer went away is not sent on the dead link (whether or not the
  // link's thread has noticed yet), so the caller can take another path.
  EXPECT_FALSE(c->send(address, 3, "too late"));
  ASSERT_TRUE(seen.waitFor(1));
  ASSERT_EQ(seen.lostNow().count(1), 1u);
  EXPECT_NE(seen.lostNow()[1].find("direct link to " + address + " lost"), std::string::npos)
      << seen.lostNow()[1];
  EXPECT_EQ(seen.repliesNow().count(1), 0u);
  EXPECT_EQ(seen.lostNow().count(3), 0u);
}

TEST(PeerLinkTest, RefusedAndOversizedFramesCloseTheConnection) {
  Server server;
  ASSERT_TRUE(server.links.listen("127.0.0.1", 0).ok());
  Seen seen;
  auto c = client(seen);
  ASSERT_TRUE(sendLinked(*c, server.address(), 1, "hold"));
  ASSERT_TRUE(c->send(server.address(), 2, "refuse"));
  // The refusal closes the link: the call waiting on it is lost, the refused one too.
  ASSERT_TRUE(seen.waitFor(1));
  ASSERT_TRUE(seen.waitFor(2));
  EXPECT_EQ(seen.lostNow().size(), 2u);
  // The next calls open a new link; one larger than the sender's limit is not sent.
  ASSERT_TRUE(sendLinked(*c, server.address(), 3, "again"));
  ASSERT_TRUE(seen.waitFor(3));
  EXPECT_EQ(seen.repliesNow()[3], "re:again");
  auto small = client(seen, PeerLinkOptions{8});
  ASSERT_TRUE(sendLinked(*small, server.address(), 6, "tiny"));
  EXPECT_FALSE(small->send(server.address(), 4, std::string(9, 'x')));
  // The server's limit is 64 bytes: a larger frame closes the connection.
  ASSERT_TRUE(c->send(server.address(), 5, std::string(65, 'x')));
  ASSERT_TRUE(seen.waitFor(5));
  EXPECT_EQ(seen.lostNow().count(5), 1u);
}

}  // namespace
}  // namespace tern::cluster
