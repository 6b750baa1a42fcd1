// Durable async invocations against a real ternd: enqueue over HTTP and with the tern CLI,
// status polling, a callback to a loopback HTTP server run by the test, bad input, and
// kill -9 under load followed by a restart on the same data directory.

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "raw_http.h"
#include "ternd_process.h"
#include "test_support.h"
#include "util/subprocess.h"

namespace tern {
namespace {

using json = nlohmann::json;
using test::HttpReply;
using test::request;

constexpr auto kPatience = std::chrono::seconds(120);

// A loopback HTTP server that records each request body and answers with the next status
// from `statuses` (the last one repeats).
class CallbackServer {
 public:
  explicit CallbackServer(std::vector<int> statuses) : statuses_(std::move(statuses)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(fd_, 16), 0);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~CallbackServer() {
    stopping_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  uint16_t port() const { return port_; }
  std::vector<std::string> bodies() {
    std::lock_guard lock(mu_);
    return bodies_;
  }

 private:
  void serve() {
    while (!stopping_) {
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      std::string in;
      char buf[4096];
      size_t headerEnd = std::string::npos, length = 0;
      for (;;) {
        ssize_t n = ::recv(c, buf, sizeof buf, 0);
        if (n <= 0) break;
        in.append(buf, static_cast<size_t>(n));
        if (headerEnd == std::string::npos && (headerEnd = in.find("\r\n\r\n")) != in.npos) {
          auto p = in.find("Content-Length: ");
          if (p != std::string::npos && p < headerEnd) length = std::stoul(in.substr(p + 16));
        }
        if (headerEnd != std::string::npos && in.size() >= headerEnd + 4 + length) break;
      }
      int status;
      {
        std::lock_guard lock(mu_);
        bodies_.push_back(headerEnd == std::string::npos ? "" : in.substr(headerEnd + 4));
        status = statuses_[std::min(bodies_.size() - 1, statuses_.size() - 1)];
      }
      std::string out = "HTTP/1.1 " + std::to_string(status) +
                        " X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
      (void)!::send(c, out.data(), out.size(), MSG_NOSIGNAL);
      ::close(c);
    }
  }

  std::vector<int> statuses_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::mutex mu_;
  std::vector<std::string> bodies_;
  std::thread thread_;
};

class AsyncTest : public ::testing::Test {
 protected:
  test::TempDir dir;
  std::filesystem::path data() const { return dir.path() / "data"; }

  void deploy(test::TerndProcess& node, const std::string& name, const std::filesystem::path& wasm,
              const std::string& query = "") {
    auto r = request(node.port(), "PUT", "/v1/functions/" + name + query, test::readText(wasm),
                     node.auth());
    ASSERT_EQ(r.status, 201) << r.raw;
  }

  static HttpReply enqueue(test::TerndProcess& node, const std::string& target,
                           const std::string& body = "",
                           std::map<std::string, std::string> headers = {}) {
    auto auth = node.auth();
    headers.insert(auth.begin(), auth.end());
    return request(node.port(), "POST", target, body, headers);
  }

  static json record(test::TerndProcess& node, const std::string& id) {
    auto r = request(node.port(), "GET", "/v1/invocations/" + id, "", node.auth());
    if (r.status != 200) return json{{"http_status", r.status}, {"body", r.body}};
    return json::parse(r.body, nullptr, false);
  }

  // Polls the record until `done` holds; fails the test after kPatience.
  static json waitFor(test::TerndProcess& node, const std::string& id,
                      const std::function<bool(const json&)>& done) {
    auto deadline = std::chrono::steady_clock::now() + kPatience;
    json last;
    while (std::chrono::steady_clock::now() < deadline) {
      last = record(node, id);
      if (done(last)) return last;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ADD_FAILURE() << "invocation " << id << " never reached the awaited state: " << last.dump();
    return last;
  }

  static bool finished(const json& r) {
    return r.value("status", "") == "succeeded" || r.value("status", "") == "failed";
  }

  // Runs the tern CLI against the node; returns exit status and stdout.
  std::pair<int, std::string> tern(test::TerndProcess& node, std::vector<std::string> args) {
    std::vector<std::string> argv{"sh", "-c", "\"$0\" \"$@\" >out 2>err",
                                  (test::binDir() / "tern").string(), "--node",
                                  "http://127.0.0.1:" + std::to_string(node.port()), "--token",
                                  node.token()};
    argv.insert(argv.end(), args.begin(), args.end());
    SubprocessOptions o;
    o.workingDirectory = dir.path().string();
    auto r = runSubprocess(argv, o);
    EXPECT_TRUE(r.ok());
    return {r.ok() ? r->exitStatus : -1, test::readText(dir.path() / "out")};
  }
};

TEST_F(AsyncTest, EnqueueOverHttpPollAndDeduplicate) {
  test::TerndProcess node(data());
  deploy(node, "echo", test::examplesDir() / "echo.wasm");
  auto a = enqueue(node, "/v1/async/echo", "hello later");
  ASSERT_EQ(a.status, 202) << a.raw;
  auto accepted = json::parse(a.body);
  std::string id = accepted["id"];
  EXPECT_FALSE(accepted["duplicate"].get<bool>());
  EXPECT_EQ(a.headers["location"], "/v1/invocations/" + id);
  auto r = waitFor(node, id, finished);
  EXPECT_EQ(r["status"], "succeeded");
  EXPECT_EQ(r["output"], "hello later");
  EXPECT_EQ(r["output_encoding"], "utf-8");
  EXPECT_EQ(r["attempts"], 1);
  EXPECT_EQ(r["exit_code"], 0);
  EXPECT_TRUE(r["error"].is_null());
  EXPECT_TRUE(r["finished_at_ms"].is_number());

  auto k1 = enqueue(node, "/v1/async/echo", "x", {{"Idempotency-Key", "order-1"}});
  ASSERT_EQ(k1.status, 202) << k1.raw;
  auto k2 = enqueue(node, "/v1/async/echo?idempotency_key=order-1", "x");
  ASSERT_EQ(k2.status, 200) << k2.raw;
  EXPECT_EQ(json::parse(k2.body)["id"], json::parse(k1.body)["id"]);
  EXPECT_TRUE(json::parse(k2.body)["duplicate"].get<bool>());

  auto metrics = request(node.port(), "GET", "/metrics").body;
  EXPECT_NE(metrics.find("tern_async_enqueued_total 2\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("tern_async_queue_depth"), std::string::npos);
}

TEST_F(AsyncTest, RetriesAFailingFunctionAndRecordsTheError) {
  test::TerndProcess node(data(), {"--async-backoff-ms", "10", "--async-attempts", "3"});
  deploy(node, "flaky", test::guestsDir() / "flaky.wasm", "?env=SUCCEED_AT=3");
  deploy(node, "never", test::guestsDir() / "flaky.wasm", "?env=SUCCEED_AT=9");
  auto a = enqueue(node, "/v1/async/flaky", "p");
  auto b = enqueue(node, "/v1/async/never");
  ASSERT_EQ(a.status, 202);
  ASSERT_EQ(b.status, 202);
  std::string ida = json::parse(a.body)["id"], idb = json::parse(b.body)["id"];
  auto ra = waitFor(node, ida, finished);
  EXPECT_EQ(ra["status"], "succeeded");
  EXPECT_EQ(ra["attempts"], 3);
  EXPECT_EQ(ra["output"], "attempt=3 id=" + ida + " body=p");
  auto rb = waitFor(node, idb, finished);
  EXPECT_EQ(rb["status"], "failed");
  EXPECT_EQ(rb["attempts"], 3);
  EXPECT_EQ(rb["exit_code"], 1);
  EXPECT_EQ(rb["error"]["code"], "function_failed");
}

TEST_F(AsyncTest, RefusesBadRequests) {
  test::TerndProcess node(data());
  deploy(node, "echo", test::examplesDir() / "echo.wasm");
  EXPECT_EQ(request(node.port(), "POST", "/v1/async/echo", "x").status, 401);
  EXPECT_EQ(request(node.port(), "GET", "/v1/invocations/abc").status, 401);
  auto missing = enqueue(node, "/v1/async/nope");
  EXPECT_EQ(missing.status, 404) << missing.raw;
  auto badUrl = enqueue(node, "/v1/async/echo?callback_url=ftp%3A%2F%2Fhost%2F");
  EXPECT_EQ(badUrl.status, 400) << badUrl.raw;
  EXPECT_NE(badUrl.body.find("callback_url"), std::string::npos);
  auto userInfo = enqueue(node, "/v1/async/echo?callback_url=https%3A%2F%2Fuser%40host%2F");
  EXPECT_EQ(userInfo.status, 400) << userInfo.raw;
  auto longKey = enqueue(node, "/v1/async/echo", "", {{"Idempotency-Key", std::string(200, 'k')}});
  EXPECT_EQ(longKey.status, 400) << longKey.raw;
  auto spaceKey = enqueue(node, "/v1/async/echo?idempotency_key=a%20b");
  EXPECT_EQ(spaceKey.status, 400) << spaceKey.raw;
  auto twoKeys = enqueue(node, "/v1/async/echo?idempotency_key=a", "", {{"Idempotency-Key", "b"}});
  EXPECT_EQ(twoKeys.status, 400) << twoKeys.raw;
  auto badName = enqueue(node, "/v1/async/Bad..Name");
  EXPECT_EQ(badName.status, 400) << badName.raw;
  auto get = request(node.port(), "GET", "/v1/async/echo", "", node.auth());
  EXPECT_EQ(get.status, 405) << get.raw;  // the route table's answer
  EXPECT_EQ(get.headers["allow"], "POST");
  auto big = enqueue(node, "/v1/async/echo", std::string((6u << 20) + 1, 'x'));
  EXPECT_EQ(big.status, 413) << big.status;
  EXPECT_EQ(record(node, "0123456789abcdef01234567")["http_status"], 404);
  EXPECT_EQ(record(node, "not-an-id")["http_status"], 404);
  // The node is still fine.
  EXPECT_EQ(enqueue(node, "/v1/async/echo", "ok").status, 202);
}

TEST_F(AsyncTest, CallbackIsPostedAndRetriedUntilAccepted) {
  CallbackServer receiver({500, 200});
  test::TerndProcess node(data(), {"--async-backoff-ms", "10"});
  deploy(node, "echo", test::examplesDir() / "echo.wasm");
  std::string url = "http%3A%2F%2F127.0.0.1%3A" + std::to_string(receiver.port()) + "%2Fdone";
  auto a = enqueue(node, "/v1/async/echo?callback_url=" + url, "called back");
  ASSERT_EQ(a.status, 202) << a.raw;
  std::string id = json::parse(a.body)["id"];
  auto r = waitFor(node, id, finished);
  EXPECT_EQ(r["status"], "succeeded");
  EXPECT_EQ(r["delivery"]["state"], "delivered");
  EXPECT_EQ(r["delivery"]["attempts"], 2);
  EXPECT_NE(r["delivery"]["error"].get<std::string>().find("500"), std::string::npos) << r;
  auto bodies = receiver.bodies();
  ASSERT_EQ(bodies.size(), 2u);
  auto posted = json::parse(bodies[1], nullptr, false);
  ASSERT_TRUE(posted.is_object()) << bodies[1];
  EXPECT_EQ(posted["id"], id);
  EXPECT_EQ(posted["status"], "succeeded");
  EXPECT_EQ(posted["output"], "called back");
}

TEST_F(AsyncTest, CliEnqueuesAndShowsTheInvocation) {
  test::TerndProcess node(data());
  deploy(node, "echo", test::examplesDir() / "echo.wasm");
  auto [rc, out] = tern(node, {"invoke", "echo", "--async", "--data", "from the cli",
                               "--idempotency-key", "cli-1"});
  ASSERT_EQ(rc, 0) << out;
  std::string id = out.substr(0, out.find('\n'));
  ASSERT_EQ(id.size(), 24u) << out;
  auto again = tern(node, {"invoke", "echo", "--async", "--data", "x", "--idempotency-key", "cli-1"});
  EXPECT_EQ(again.second, id + "\n");
  waitFor(node, id, finished);
  auto shown = tern(node, {"invocation", id, "--json"});
  ASSERT_EQ(shown.first, 0);
  auto doc = json::parse(shown.second);
  EXPECT_EQ(doc["status"], "succeeded");
  EXPECT_EQ(doc["output"], "from the cli");
  auto human = tern(node, {"invocation", id});
  EXPECT_EQ(human.first, 0);
  EXPECT_NE(human.second.find("succeeded"), std::string::npos) << human.second;
  EXPECT_NE(human.second.find("from the cli"), std::string::npos) << human.second;
  EXPECT_EQ(tern(node, {"invocation", "0123456789abcdef01234567"}).first, 76);  // not_found
  EXPECT_EQ(tern(node, {"invoke", "echo", "--async", "--callback-url", "ftp://x"}).first, 64);
  EXPECT_EQ(tern(node, {"invoke", "echo", "--idempotency-key", "k"}).first, 64);
}

TEST_F(AsyncTest, EveryAcceptedInvocationCompletesAfterKill9AndRestart) {
  test::TerndProcess node(data(), {"--workers", "2", "--async-backoff-ms", "10"});
  deploy(node, "nap", test::guestsDir() / "sleeper.wasm", "?env=SLEEP_MS=20");
  constexpr int kJobs = 200;
  std::vector<std::string> accepted;
  std::mutex mu;
  std::atomic<bool> killed{false};
  // Enqueue from a second thread while the node is killed midway: every 202 must complete.
  uint16_t port = node.port();
  auto auth = node.auth();
  std::thread load([&] {
    for (int i = 0; i < kJobs && !killed; ++i) {
      auto r = request(port, "POST", "/v1/async/nap", "job " + std::to_string(i), auth);
      if (r.status != 202) continue;  // refused or cut off by the kill: not accepted
      auto doc = json::parse(r.body, nullptr, false);
      std::lock_guard lock(mu);
      accepted.push_back(doc["id"]);
    }
  });
  auto deadline = std::chrono::steady_clock::now() + kPatience;
  while (std::chrono::steady_clock::now() < deadline) {
    {
      std::lock_guard lock(mu);
      if (accepted.size() >= kJobs / 2) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  node.kill9();
  killed = true;
  load.join();
  ASSERT_GE(accepted.size(), size_t(kJobs / 2));
  node.restart();
  for (const auto& id : accepted) {
    auto r = waitFor(node, id, finished);
    ASSERT_EQ(r["status"], "succeeded") << r;
    EXPECT_EQ(r["output"], "done\n");
  }
}

}  // namespace
}  // namespace tern
