// Direct links between nodes (PeerLinks) on loopback, without NATS: calls and replies
// matched by id, a peer that cannot be reached, a peer that goes away mid-call, oversized
// and refused frames; mutual TLS links (certificates made with `openssl`, test_certs.h):
// calls from several threads and large frames, certificates from another CA or for another
// address refused, and plain and TLS ends refusing each other, each with its log line.
#include "cluster/peer_link.h"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <vector>

#include "http/tls.h"
#include "test_certs.h"
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
  explicit Server(PeerLinkOptions o = PeerLinkOptions{64, 64}) : options(std::move(o)) {}
  PeerLinkOptions options;
  std::mutex mu;
  std::vector<PeerLinks::Reply> held;
  PeerLinks links{options,
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
  uint16_t port = test::reservedLoopbackPort();
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


// The log lines of the process (spdlog's default logger) while it lives. Made before the
// links of a test and destroyed after them, so no link thread logs while it is swapped.
class LogCapture {
 public:
  LogCapture() : sink_(std::make_shared<Sink>()), previous_(spdlog::default_logger()) {
    spdlog::set_default_logger(std::make_shared<spdlog::logger>("capture", sink_));
  }
  ~LogCapture() { spdlog::set_default_logger(previous_); }
  // Waits until a line containing `text` was logged (true), or 30 s (false).
  bool waitFor(const std::string& text) { return sink_->waitFor(text); }
  std::string text() { return sink_->text(); }

 private:
  class Sink : public spdlog::sinks::base_sink<std::mutex> {
   public:
    bool waitFor(const std::string& text) {
      std::unique_lock lock(mutex_);
      return cv_.wait_for(lock, std::chrono::seconds(30),
                          [&] { return lines_.find(text) != std::string::npos; });
    }
    std::string text() {
      std::lock_guard lock(mutex_);
      return lines_;
    }

   protected:
    void sink_it_(const spdlog::details::log_msg& m) override {
      lines_.append(m.payload.data(), m.payload.size());
      lines_ += '\n';
      cv_.notify_all();
    }
    void flush_() override {}

   private:
    std::condition_variable cv_;
    std::string lines_;
  };
  std::shared_ptr<Sink> sink_;
  std::shared_ptr<spdlog::logger> previous_;
};

class PeerLinkTlsTest : public ::testing::Test {
 protected:
  test::TempDir dir;
  test::TestCerts certs{dir.path() / "certs"};

  // Link options with mutual TLS: `pair` as this end's certificate, peers checked against
  // the CA of the test certificates.
  PeerLinkOptions withTls(const test::CertPair& pair, PeerLinkOptions o = {}) {
    auto tls = http::loadLinkTls(pair.cert.string(), pair.key.string(), certs.ca().string());
    EXPECT_TRUE(tls.ok()) << tls.error().message();
    if (tls.ok()) o.tls = *tls;
    o.retryAfter = std::chrono::hours(1);  // a refused peer stays refused during the test
    return o;
  }
};

TEST_F(PeerLinkTlsTest, TlsLinksCarryCallsFromSeveralThreadsAndLargeFrames) {
  LogCapture log;
  PeerLinkOptions so{4u << 20, 64};
  Server server(withTls(certs.node(), so));
  ASSERT_TRUE(server.links.listen("127.0.0.1", 0).ok());
  Seen seen;
  auto c = client(seen, withTls(certs.node(), PeerLinkOptions{4u << 20}));
  ASSERT_TRUE(sendLinked(*c, server.address(), 1, "hold"));
  EXPECT_EQ(c->state(server.address()), PeerLinks::LinkState::kOpen);
  // Calls from four threads on the one link while its thread reads replies; a call held
  // by the server does not stop the others.
  std::vector<std::thread> callers;
  for (uint64_t t = 0; t < 4; ++t) {
    callers.emplace_back([&, t] {
      for (uint64_t i = 0; i < 50; ++i) {
        uint64_t id = 100 + t * 50 + i;
        EXPECT_TRUE(c->send(server.address(), id, "call " + std::to_string(id)));
      }
    });
  }
  for (auto& t : callers) t.join();
  for (uint64_t id = 100; id < 300; ++id) {
    ASSERT_TRUE(seen.waitFor(id));
    EXPECT_EQ(seen.repliesNow()[id], "re:call " + std::to_string(id));
  }
  // Frames of many TLS records, in both directions, while the other direction is busy.
  std::string big(3u << 20, 'b');
  ASSERT_TRUE(c->send(server.address(), 2, big));
  ASSERT_TRUE(c->send(server.address(), 3, "after"));
  ASSERT_TRUE(seen.waitFor(2));
  ASSERT_TRUE(seen.waitFor(3));
  EXPECT_EQ(seen.repliesNow()[2], "re:" + big);
  EXPECT_EQ(seen.repliesNow()[3], "re:after");
  // The held call is answered last.
  {
    std::lock_guard lock(server.mu);
    ASSERT_EQ(server.held.size(), 1u);
    server.held.front()("held");
  }
  ASSERT_TRUE(seen.waitFor(1));
  EXPECT_EQ(seen.repliesNow()[1], "held");
  EXPECT_TRUE(seen.lostNow().empty());
  EXPECT_EQ(log.text().find("refused"), std::string::npos) << log.text();
}

TEST_F(PeerLinkTlsTest, APeerWithACertificateFromAnotherCaIsRefused) {
  LogCapture log;
  Server server(withTls(certs.node(), PeerLinkOptions{64, 64}));
  ASSERT_TRUE(server.links.listen("127.0.0.1", 0).ok());
  Seen seen;
  // The connecting node's certificate is not from the site's CA: the accepting node ends
  // the link, and the connecting node sends nothing on it (its call takes the other path).
  auto foreign = client(seen, withTls(certs.foreignNode()));
  EXPECT_FALSE(foreign->send(server.address(), 1, "x"));
  EXPECT_EQ(settled(*foreign, server.address()), PeerLinks::LinkState::kUnreachable);
  EXPECT_FALSE(foreign->send(server.address(), 2, "x"));
  EXPECT_TRUE(log.waitFor("refused: its certificate is not signed by the site's CA"))
      << log.text();
  EXPECT_TRUE(log.waitFor("no direct link to " + server.address() +
                          ": the peer did not accept the link"))
      << log.text();

  // The accepting node's certificate is from another CA, or does not name the address:
  // the connecting node refuses it.
  for (const auto& [pair, says] : std::vector<std::pair<test::CertPair, std::string>>{
           {certs.foreignNode(), "its certificate is not signed by the site's CA"},
           {certs.wrongHost(), "its certificate does not name the address connected to"}}) {
    Server impostor(withTls(pair, PeerLinkOptions{64, 64}));
    ASSERT_TRUE(impostor.links.listen("127.0.0.1", 0).ok());
    auto c = client(seen, withTls(certs.node()));
    EXPECT_FALSE(c->send(impostor.address(), 3, "x"));
    EXPECT_EQ(settled(*c, impostor.address()), PeerLinks::LinkState::kUnreachable);
    EXPECT_TRUE(log.waitFor("no direct link to " + impostor.address() + ": TLS handshake: " + says))
        << log.text();
  }
  EXPECT_TRUE(seen.repliesNow().empty());
  EXPECT_TRUE(seen.lostNow().empty());
}

TEST_F(PeerLinkTlsTest, PlainAndTlsEndsRefuseEachOther) {
  LogCapture log;
  Seen seen;
  // A TLS node connecting to a plain one: refused there; nothing is sent.
  Server plain;
  ASSERT_TRUE(plain.links.listen("127.0.0.1", 0).ok());
  auto tlsClient = client(seen, withTls(certs.node()));
  EXPECT_FALSE(tlsClient->send(plain.address(), 1, "x"));
  EXPECT_EQ(settled(*tlsClient, plain.address()), PeerLinks::LinkState::kUnreachable);
  EXPECT_TRUE(log.waitFor("begins a TLS handshake and this node's direct links are plain"))
      << log.text();
  EXPECT_TRUE(log.waitFor("no direct link to " + plain.address()));

  // A plain node connecting to a TLS one: its first frame is refused and the connection
  // closed, so the call is lost (nodes avoid this: a TLS node announces its links in a
  // heartbeat field plain nodes do not use, membership.h).
  Server tls(withTls(certs.node(), PeerLinkOptions{64, 64}));
  ASSERT_TRUE(tls.links.listen("127.0.0.1", 0).ok());
  auto plainClient = client(seen);
  ASSERT_TRUE(sendLinked(*plainClient, tls.address(), 2, "x"));
  ASSERT_TRUE(seen.waitFor(2));
  EXPECT_EQ(seen.lostNow().count(2), 1u);
  EXPECT_TRUE(log.waitFor("sends plain frames and this node's direct links use TLS")) << log.text();
  EXPECT_TRUE(seen.repliesNow().empty());
}

}  // namespace
}  // namespace tern::cluster
