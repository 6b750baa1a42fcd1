// The deadline scheduler through a real ternd: objectives checked at deploy (400 naming the
// problem), the scheduler's figures in /v1/status and /metrics, and early refusal of a
// request that cannot meet its objective while the only slot is held (FIFO queues it).

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "raw_http.h"
#include "ternd_process.h"
#include "test_support.h"

namespace tern {
namespace {

using nlohmann::json;
using test::HttpReply;
using test::request;

std::string burner() {
  auto b = test::readFile(test::guestsDir() / "burner.wasm");
  return std::string(b.begin(), b.end());
}

class SchedulerApiTest : public ::testing::Test {
 protected:
  test::TempDir dir;

  HttpReply deploy(test::TerndProcess& node, const std::string& name, const std::string& query) {
    std::string target = "/v1/functions/";
    target += name;
    target += '?';
    target += query;
    return request(node.port(), "PUT", target, burner(), node.auth());
  }
  json status(test::TerndProcess& node) {
    auto r = request(node.port(), "GET", "/v1/status", "", node.auth());
    EXPECT_EQ(r.status, 200) << r.body;
    return json::parse(r.body);
  }
  // Starts one request of `fn` in the background and returns once the node reports it
  // running (it holds the node's only slot until it ends).
  std::future<HttpReply> hold(test::TerndProcess& node, const std::string& fn) {
    uint16_t port = node.port();
    std::string target = "/fn/";
    target += fn;
    auto held =
        std::async(std::launch::async, [port, target] { return request(port, "GET", target); });
    bool running = test::eventually(
        [&] { return status(node)["scheduler"]["functions"][fn].value("running", 0) == 1; });
    if (!running) ADD_FAILURE() << "the node never reported " << fn << " running";
    return held;
  }
};

TEST_F(SchedulerApiTest, BadObjectivesAreRefusedAtDeployNamingTheProblem) {
  test::TerndProcess node(dir.path() / "data", {"--workers", "1"});
  struct Case {
    const char* query;
    const char* mentions;
  } cases[] = {
      {"slo_ms=-5", "the objective must be a positive number of milliseconds, got -5"},
      {"slo_ms=0", "the objective must be a positive number of milliseconds, got 0"},
      {"slo_ms=abc", "slo_ms must be a number"},
      {"slo_ms=25&slo_percentile=150", "the percentile must be strictly between 0 and 100"},
      {"slo_ms=25&slo_percentile=0", "the percentile must be strictly between 0 and 100"},
      {"slo_ms=25&slo_percentile=100", "the percentile must be strictly between 0 and 100"},
      {"slo_percentile=95", "slo_percentile needs an objective"},
      {"weight=0", "the weight must be a positive number, got 0"},
      {"slo_ms=25&weight=-1", "the weight must be a positive number, got -1"},
  };
  for (const auto& c : cases) {
    auto r = deploy(node, "f", c.query);
    EXPECT_EQ(r.status, 400) << c.query << ": " << r.body;
    EXPECT_NE(r.body.find(c.mentions), std::string::npos) << c.query << ": " << r.body;
  }
  // Nothing was deployed by the refused attempts.
  EXPECT_EQ(request(node.port(), "GET", "/v1/functions/f", "", node.auth()).status, 404);
  // A sound objective is accepted and kept.
  auto ok = deploy(node, "f", "slo_ms=40&slo_percentile=99.9&weight=2.5");
  ASSERT_EQ(ok.status, 201) << ok.body;
  auto info = json::parse(ok.body);
  EXPECT_EQ(info["slo_ms"], 40.0);
  EXPECT_EQ(info["slo_percentile"], 99.9);
  EXPECT_EQ(info["weight"], 2.5);
}

TEST_F(SchedulerApiTest, StatusAndMetricsShowTheSchedulersFigures) {
  test::TerndProcess node(dir.path() / "data",
                          {"--workers", "1", "--scheduler", "deadline", "--control-period-ms",
                           "100"});
  ASSERT_EQ(deploy(node, "burn", "env=BURN_US%3D1000&slo_ms=50&slo_percentile=95&weight=2").status,
            201);
  ASSERT_EQ(deploy(node, "hold", "env=BURN_US%3D3000000").status, 201);  // best effort
  for (int i = 0; i < 20; ++i) ASSERT_EQ(request(node.port(), "GET", "/fn/burn").status, 200);
  ASSERT_EQ(request(node.port(), "GET", "/fn/hold").status, 200);  // its service time is known

  // While `hold` has the only slot for 3 s, a request of `burn` (50 ms objective)
  // cannot finish in time: refused on arrival, not run late.
  auto held = hold(node, "hold");
  auto refused = request(node.port(), "GET", "/fn/burn");
  EXPECT_EQ(refused.status, 429) << refused.body;
  EXPECT_NE(refused.body.find("refused on arrival (deadline)"), std::string::npos)
      << refused.body;
  json s = status(node)["scheduler"];
  EXPECT_EQ(held.get().status, 200);

  EXPECT_EQ(s["policy"], "deadline");
  EXPECT_EQ(s["control_period_ms"], 100);
  EXPECT_GE(s["replans"].get<int>(), 1);
  const json& burn = s["functions"]["burn"];
  EXPECT_EQ(burn["objective"]["slo_ms"], 50.0);
  EXPECT_EQ(burn["objective"]["percentile"], 95.0);
  EXPECT_EQ(burn["weight"], 2.0);
  EXPECT_EQ(burn["service_ms"]["samples"], 20);
  // The guest burns at least 1 ms of the monotonic clock per request.
  EXPECT_GE(burn["service_ms"]["p50"].get<double>(), 1.0);
  EXPECT_EQ(burn["refused_total"]["deadline"], 1);
  EXPECT_EQ(burn["refused_total"]["expired"], 0);
  EXPECT_EQ(burn["refused_total"]["queue_full"], 0);
  const json& h = s["functions"]["hold"];
  EXPECT_TRUE(h["objective"].is_null());
  EXPECT_TRUE(h["attainment"].is_null());
  EXPECT_EQ(h["running"], 1);  // read while it held the slot
  EXPECT_LE(h["allocated_slots"].get<double>(), 1.0);

  auto metrics = request(node.port(), "GET", "/metrics").body;
  for (const char* line : {
           "tern_function_objective_seconds{function=\"burn\"} 0.05\n",
           "tern_function_objective_seconds{function=\"hold\"} 0\n",
           "tern_function_refusals_total{function=\"burn\",reason=\"deadline\"} 1\n",
           "tern_function_refusals_total{function=\"burn\",reason=\"expired\"} 0\n",
           "tern_function_refusals_total{function=\"burn\",reason=\"queue_full\"} 0\n",
       }) {
    EXPECT_NE(metrics.find(line), std::string::npos) << line << metrics.substr(0, 3000);
  }
  for (const char* name :
       {"tern_function_arrival_rate{function=\"burn\"}",
        "tern_function_service_seconds{function=\"burn\",quantile=\"0.95\"}",
        "tern_function_target_slots{function=\"burn\"}",
        "tern_function_allocated_slots{function=\"burn\"}",
        "tern_function_used_slots{function=\"burn\"}",
        "tern_function_attainment_ratio{function=\"burn\"}", "tern_scheduler_replans_total ",
        "tern_scheduler_sharp_replans_total ", "tern_scheduler_replan_seconds "}) {
    EXPECT_NE(metrics.find(name), std::string::npos) << name;
  }
}

TEST_F(SchedulerApiTest, FifoQueuesWhatTheDeadlineSchedulerRefuses) {
  test::TerndProcess node(dir.path() / "data", {"--workers", "1", "--scheduler", "fifo"});
  ASSERT_EQ(deploy(node, "burn", "env=BURN_US%3D1000&slo_ms=50&slo_percentile=95").status, 201);
  ASSERT_EQ(deploy(node, "hold", "env=BURN_US%3D1500000").status, 201);
  for (int i = 0; i < 5; ++i) ASSERT_EQ(request(node.port(), "GET", "/fn/burn").status, 200);
  ASSERT_EQ(request(node.port(), "GET", "/fn/hold").status, 200);
  auto held = hold(node, "hold");
  // No early refusal: the request waits for the slot and runs, late.
  EXPECT_EQ(request(node.port(), "GET", "/fn/burn").status, 200);
  EXPECT_EQ(held.get().status, 200);
  json s = status(node)["scheduler"];
  EXPECT_EQ(s["policy"], "fifo");
  EXPECT_EQ(s["functions"]["burn"]["refused_total"]["deadline"], 0);
}

}  // namespace
}  // namespace tern
