// Async invocations in a cluster on a real nats-server (JetStream) with real ternd
// processes: jobs accepted by a node that is killed with SIGKILL run on another node and
// are readable there; jobs accepted while NATS is down are kept, run, and their records
// reach the cluster later; forged jobs in the stream are refused, counted and never
// delivered again. Ack margins are short (flags); every wait polls for what a user would
// see, up to a generous limit.
#include <gtest/gtest.h>
#include <nats/nats.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "cluster/async_job.h"
#include "cluster/envelope.h"
#include "cluster_fixture.h"
#include "nats_process.h"
#include "raw_http.h"
#include "ternd_process.h"
#include "test_support.h"

namespace tern {
namespace {

using json = nlohmann::json;
using test::request;

class ClusterAsyncTest : public test::ClusterFixture {
 protected:
  std::unique_ptr<test::TerndProcess> node(const std::string& name,
                                           std::vector<std::string> extra = {}) {
    std::vector<std::string> args{
        "--coap-listen", "off", "--cluster", nats->url(), "--cluster-secret-file",
        secret.string(), "--node-name", name, "--site", "s", "--heartbeat-ms", "100",
        "--member-ttl-ms", "1500", "--async-concurrency", "2", "--async-backoff-ms", "100",
        "--cluster-async-ack-margin-ms", "1000"};
    args.insert(args.end(), extra.begin(), extra.end());
    return std::make_unique<test::TerndProcess>(dir.path() / name, args);
  }

  static void deploy(test::TerndProcess& n, const std::string& name,
                     const std::filesystem::path& wasm, const std::string& query = "") {
    auto r = request(n.port(), "PUT", "/v1/functions/" + name + query, test::readText(wasm), n.auth());
    ASSERT_EQ(r.status, 201) << r.raw;
  }

  static bool serves(test::TerndProcess& n, const std::string& name) {
    return request(n.port(), "GET", "/v1/functions/" + name, "", n.auth()).status == 200;
  }

  static std::string enqueue(test::TerndProcess& n, const std::string& fn, const std::string& body) {
    auto r = request(n.port(), "POST", "/v1/async/" + fn, body, n.auth());
    EXPECT_EQ(r.status, 202) << r.raw;
    return json::parse(r.body, nullptr, false).value("id", "");
  }

  static json job(test::TerndProcess& n, const std::string& id) {
    auto r = request(n.port(), "GET", "/v1/invocations/" + id, "", n.auth());
    if (r.status != 200) return json::object();
    return json::parse(r.body, nullptr, false);
  }
};

TEST_F(ClusterAsyncTest, JobsOfANodeKilledMidWorkRunOnAnotherNode) {
  auto a = node("a");
  auto b = node("b");
  deploy(*a, "nap", test::guestsDir() / "sleeper.wasm", "?env=SLEEP_MS%3D1500&timeout_ms=3000");
  ASSERT_TRUE(test::eventually([&] { return serves(*b, "nap"); }));

  std::vector<std::string> ids;
  for (int i = 0; i < 12; ++i) ids.push_back(enqueue(*a, "nap", "job"));
  // Every job is in the cluster's work queue, and a is running some of them.
  ASSERT_TRUE(test::eventually([&] { return metric(*a, "tern_async_handed_off_total") >= 12; }))
      << a->log();
  ASSERT_TRUE(test::eventually([&] { return metric(*a, "tern_async_cluster_runs_total") >= 1; }))
      << a->log();
  a->kill9();

  ASSERT_TRUE(test::eventually([&] {
    for (const auto& id : ids) {
      if (job(*b, id).value("status", "") != "succeeded") return false;
    }
    return true;
  })) << b->log();
  // The jobs a was running when it died ran again on b (a later delivery, a later attempt).
  int redelivered = 0;
  for (const auto& id : ids) {
    json j = job(*b, id);
    EXPECT_EQ(j.value("output", ""), "done\n") << j.dump();
    redelivered += j.value("attempts", 0) >= 2 ? 1 : 0;
  }
  EXPECT_GE(redelivered, 1);
  EXPECT_GE(metric(*b, "tern_async_cluster_runs_total"), 1);
}

TEST_F(ClusterAsyncTest, AJobFetchedWhileTheNodeIsFullWaitsForASlotWithoutUsingAnAttempt) {
  // One slot, no queue, one attempt per job: a job fetched while a call holds the slot
  // would fail if its refusal were sent back to the stream as a used delivery.
  auto n = node("solo", {"--workers", "1", "--queue", "0", "--async-attempts", "1"});
  deploy(*n, "nap", test::guestsDir() / "sleeper.wasm", "?env=SLEEP_MS%3D2000&timeout_ms=5000");
  deploy(*n, "echo", test::examplesDir() / "echo.wasm");
  ASSERT_TRUE(test::eventually([&] { return n->log().find("async work queue") != std::string::npos; }));
  test::HttpReply held;
  std::thread caller([&] { held = request(n->port(), "POST", "/fn/nap", ""); });
  ASSERT_TRUE(test::eventually([&] {
    auto r = request(n->port(), "GET", "/v1/status", "", n->auth());
    return json::parse(r.body, nullptr, false).value("running", 0) == 1;
  }));
  std::string id = enqueue(*n, "echo", "after the nap");
  ASSERT_TRUE(test::eventually([&] { return metric(*n, "tern_async_handed_off_total") >= 1; }));
  caller.join();
  EXPECT_EQ(held.status, 200) << held.raw;
  ASSERT_TRUE(test::eventually([&] {
    auto s = job(*n, id).value("status", "");
    return s == "succeeded" || s == "failed";
  })) << n->log();
  json j = job(*n, id);
  EXPECT_EQ(j.value("status", ""), "succeeded") << j.dump();
  EXPECT_EQ(j.value("attempts", 0), 1) << j.dump();
  EXPECT_EQ(j.value("output", ""), "after the nap") << j.dump();
}

// The rule shared with a standalone node (async::nextStep): a busy node never costs a job
// an attempt, even its last one. Here the slot stays taken for longer than the job's waits
// on this node (20 of at most 200 ms), so its delivery goes back to the stream, recorded as
// handed back; the next delivery is still the job's first and only attempt.
TEST_F(ClusterAsyncTest, AJobHandedBackByABusyNodeKeepsItsLastAttempt) {
  auto n = node("solo", {"--workers", "1", "--queue", "0", "--async-attempts", "1"});
  deploy(*n, "nap", test::guestsDir() / "sleeper.wasm", "?env=SLEEP_MS%3D12000&timeout_ms=15000");
  deploy(*n, "echo", test::examplesDir() / "echo.wasm");
  ASSERT_TRUE(test::eventually([&] { return n->log().find("async work queue") != std::string::npos; }));
  test::HttpReply held;
  // The nap outlasts request()'s 10 s patience: a raw request that waits longer.
  std::thread caller([&] {
    held = test::sendRaw(n->port(),
                         "POST /fn/nap HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                         "Content-Length: 0\r\n\r\n",
                         60000);
  });
  ASSERT_TRUE(test::eventually([&] {
    auto r = request(n->port(), "GET", "/v1/status", "", n->auth());
    return json::parse(r.body, nullptr, false).value("running", 0) == 1;
  }));
  std::string id = enqueue(*n, "echo", "after the long nap");
  caller.join();
  EXPECT_EQ(held.status, 200) << held.raw;
  ASSERT_TRUE(test::eventually([&] {
    auto s = job(*n, id).value("status", "");
    return s == "succeeded" || s == "failed";
  })) << n->log();
  json j = job(*n, id);
  EXPECT_EQ(j.value("status", ""), "succeeded")
      << j.dump() << " (deliveries handed back: "
      << metric(*n, "tern_async_cluster_retries_total") << ")";
  EXPECT_EQ(j.value("attempts", 0), 1) << j.dump();
  EXPECT_EQ(j.value("output", ""), "after the long nap") << j.dump();
}

TEST_F(ClusterAsyncTest, JobsAcceptedWhileNatsIsDownAreKeptRunAndSynchronised) {
  auto n1 = node("n1");
  auto n2 = node("n2");
  deploy(*n1, "echo", test::examplesDir() / "echo.wasm");
  ASSERT_TRUE(test::eventually([&] { return serves(*n2, "echo"); }))
      << "n1:\n" << n1->log() << "\nn2:\n" << n2->log();
  ASSERT_TRUE(test::eventually([&] { return n1->log().find("async work queue") != std::string::npos; }))
      << n1->log();

  nats->stop();
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(enqueue(*n1, "echo", "offline-" + std::to_string(i)));
  // Accepted and run here while disconnected.
  ASSERT_TRUE(test::eventually([&] {
    for (const auto& id : ids) {
      if (job(*n1, id).value("status", "") != "succeeded") return false;
    }
    return true;
  })) << n1->log();

  nats->start();
  // Once reconnected, their records reach the cluster: readable from the other node.
  ASSERT_TRUE(test::eventually([&] {
    for (size_t i = 0; i < ids.size(); ++i) {
      json j = job(*n2, ids[i]);
      if (j.value("status", "") != "succeeded" ||
          j.value("output", "") != "offline-" + std::to_string(i)) {
        return false;
      }
    }
    return true;
  })) << "n1:\n" << n1->log() << "\nn2:\n" << n2->log();
  // New jobs go through the work queue again.
  std::string later = enqueue(*n1, "echo", "later");
  ASSERT_TRUE(test::eventually([&] { return job(*n2, later).value("status", "") == "succeeded"; }));
  EXPECT_EQ(job(*n2, later).value("output", ""), "later");
}

TEST_F(ClusterAsyncTest, RefusesForgedJobsOnceAndKeepsWorking) {
  auto n1 = node("n1");
  deploy(*n1, "echo", test::examplesDir() / "echo.wasm", "?timeout_ms=500");
  ASSERT_TRUE(test::eventually([&] { return n1->log().find("async work queue") != std::string::npos; }));

  natsConnection* conn = nullptr;
  jsCtx* js = nullptr;
  ASSERT_EQ(natsConnection_ConnectTo(&conn, nats->url().c_str()), NATS_OK);
  ASSERT_EQ(natsConnection_JetStream(&js, conn, nullptr), NATS_OK);
  auto publish = [&](const std::string& subject, const std::string& data) {
    jsErrCode err;
    EXPECT_EQ(js_Publish(nullptr, js, subject.c_str(), data.data(), static_cast<int>(data.size()),
                         nullptr, &err),
              NATS_OK);
  };
  cluster::AsyncJob forged;
  forged.id = "abcdef0123456789abcdef01";
  forged.function = "echo";
  forged.origin = "http";
  forged.body = "forged";
  forged.maxAttempts = 3;
  cluster::ClusterKey wrong("ffffffffffffffffffffffffffffffff");
  cluster::ClusterKey key(kSecret);
  publish("tern.v1.async.echo",
          cluster::encodeEnvelope(wrong, cluster::Envelope{cluster::MessageKind::kAsyncJob, "n9",
                                                           test::unixMs(), cluster::encodeAsyncJob(forged)}));
  publish("tern.v1.async.echo", "garbage");
  // Signed, but a job of another function on echo's subject.
  forged.function = "other";
  publish("tern.v1.async.echo",
          cluster::encodeEnvelope(key, cluster::Envelope{cluster::MessageKind::kAsyncJob, "n9",
                                                         test::unixMs(), cluster::encodeAsyncJob(forged)}));

  auto count = [&](const char* reason) {
    return metric(*n1, std::string("tern_cluster_rejected_total{reason=\"") + reason + "\"}");
  };
  ASSERT_TRUE(test::eventually([&] {
    return count("bad_signature") >= 1 && count("bad_magic") >= 1 && count("forged_identity") >= 1;
  })) << n1->log();
  // Terminated, not redelivered: the stream is empty and the counts stay at one each.
  ASSERT_TRUE(test::eventually([&] {
    jsStreamInfo* si = nullptr;
    jsErrCode err;
    if (js_GetStreamInfo(&si, js, "TERN_ASYNC", nullptr, &err) != NATS_OK) return false;
    uint64_t msgs = si->State.Msgs;
    jsStreamInfo_Destroy(si);
    return msgs == 0;
  }));
  std::string id = enqueue(*n1, "echo", "real");
  ASSERT_TRUE(test::eventually([&] { return job(*n1, id).value("status", "") == "succeeded"; }));
  EXPECT_EQ(count("bad_signature"), 1);
  EXPECT_EQ(count("bad_magic"), 1);
  EXPECT_EQ(count("forged_identity"), 1);
  EXPECT_EQ(request(n1->port(), "GET", "/v1/invocations/" + forged.id, "", n1->auth()).status,
            404);
  jsCtx_Destroy(js);
  natsConnection_Destroy(conn);
}

}  // namespace
}  // namespace tern
