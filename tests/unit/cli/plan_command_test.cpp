// `tern plan capacity`: the printed plan and its errors.

#include "cli/plan_command.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "test_support.h"
#include "util/error.h"

namespace tern::cli {
namespace {


TEST(PlanCommandTest, PrintsSlotsThenWaitingFigures) {
  PlanCapacityOptions o;
  o.ratePerSecond = 40;
  o.serviceMs = 100;
  o.sloMs = 150;
  o.percentile = 95;
  std::ostringstream out, err;
  EXPECT_EQ(planCapacityCommand(o, OutputFormat::kHuman, out, err), 0);
  EXPECT_EQ(out.str().rfind("slots: 7\n", 0), 0u) << out.str();
  EXPECT_NE(out.str().find("P(wait > 50 ms): "), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("mean wait: "), std::string::npos);
  EXPECT_TRUE(err.str().empty());

  o.percentile.reset();
  o.mean = true;
  o.sloMs = 120;
  std::ostringstream out2;
  EXPECT_EQ(planCapacityCommand(o, OutputFormat::kHuman, out2, err), 0);
  EXPECT_EQ(out2.str().rfind("slots: 6\n", 0), 0u) << out2.str();
}

TEST(PlanCommandTest, JsonCarriesTheSameFigures) {
  PlanCapacityOptions o{40, 100, 120, std::nullopt, true};
  std::ostringstream out, err;
  EXPECT_EQ(planCapacityCommand(o, OutputFormat::kJson, out, err), 0);
  EXPECT_NE(out.str().find("\"slots\":6"), std::string::npos) << out.str();
}

TEST(PlanCommandTest, BadInputIsOneLineAndAnExitStatus) {
  struct Case {
    PlanCapacityOptions o;
    const char* says;
  } cases[] = {
      {{0, 10, 50, 95, false}, "arrival rate"},
      {{10, 10, 5, 95, false}, "not longer than the service time"},
      {{10, 10, 50, 100, false}, "percentile"},
      {{10, 10, 50, std::nullopt, false}, "exactly one of"},
      {{10, 10, 50, 95, true}, "exactly one of"},
  };
  for (const auto& c : cases) {
    std::ostringstream out, err;
    int status = planCapacityCommand(c.o, OutputFormat::kHuman, out, err);
    EXPECT_EQ(status, errorKind(ErrorCode::kInvalidArgument).exitStatus);
    EXPECT_TRUE(out.str().empty());
    EXPECT_EQ(err.str().rfind("tern: invalid argument: ", 0), 0u) << err.str();
    EXPECT_NE(err.str().find(c.says), std::string::npos) << err.str();
  }
}

// `tern plan workflow` on examples/costless: the plan, infeasibility, --all, --json, and
// bad input that writes no plan.
PlanWorkflowOptions example(double latencyMs) {
  std::filesystem::path dir = std::filesystem::path(TERN_SOURCE_DIR) / "examples/costless";
  return PlanWorkflowOptions{(dir / "chain.yaml").string(), (dir / "profile.json").string(), latencyMs, false};
}

TEST(PlanWorkflowCommandTest, PrintsTheCheapestPlanWithinTheBound) {
  std::ostringstream out, err;
  EXPECT_EQ(planWorkflowCommand(example(250), OutputFormat::kHuman, out, err), 0) << err.str();
  EXPECT_NE(out.str().find("edge:         Decode Resize\n"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("cloud group 1: Detect Annotate Encode\n"), std::string::npos) << out.str();
  std::ostringstream json, err2;
  EXPECT_EQ(planWorkflowCommand(example(1200), OutputFormat::kJson, json, err2), 0);
  auto doc = nlohmann::json::parse(json.str());
  EXPECT_EQ(doc["feasible"], true);
  EXPECT_EQ(doc["edge"].size(), 5u);
  EXPECT_EQ(doc["cloud_groups"], nlohmann::json::array());
  EXPECT_NEAR(doc["latency_ms"].get<double>(), 1080, 1e-9);
}

TEST(PlanWorkflowCommandTest, BelowTheFastestItIsInfeasible) {
  std::ostringstream out, err;
  EXPECT_EQ(planWorkflowCommand(example(150), OutputFormat::kHuman, out, err),
            errorKind(ErrorCode::kConflict).exitStatus);
  EXPECT_NE(out.str().find("infeasible"), std::string::npos);
  std::ostringstream json;
  EXPECT_NE(planWorkflowCommand(example(150), OutputFormat::kJson, json, err), 0);
  EXPECT_EQ(nlohmann::json::parse(json.str())["feasible"], false);
}

TEST(PlanWorkflowCommandTest, AllListsEveryConfiguration) {
  auto o = example(300);
  o.all = true;
  std::ostringstream out, err;
  EXPECT_EQ(planWorkflowCommand(o, OutputFormat::kJson, out, err), 0);
  auto list = nlohmann::json::parse(out.str());
  ASSERT_EQ(list.size(), 32u);  // 2^5
  for (const auto& p : list) EXPECT_EQ(p["feasible"], p["latency_ms"].get<double>() <= 300);
}

TEST(PlanWorkflowCommandTest, BadInputNamesTheFieldAndPrintsNoPlan) {
  test::TempDir dir;
  auto write = [&](const char* name, const std::string& text) {
    std::ofstream(dir.path() / name) << text;
    return (dir.path() / name).string();
  };
  auto o = example(300);
  o.profile = write("p.json", R"({"functions": {"Decode": {"edge_ms": 1}}, "cloud_group_delay_ms": 0,
                                  "prices": {"gb_second": 1, "request": 1, "transition": 1, "edge_fixed": 1}})");
  std::ostringstream out, err;
  EXPECT_EQ(planWorkflowCommand(o, OutputFormat::kHuman, out, err), errorKind(ErrorCode::kInvalidArgument).exitStatus);
  EXPECT_NE(err.str().find("functions.Decode.cloud_ms is missing"), std::string::npos) << err.str();
  EXPECT_EQ(out.str(), "");
  o = example(300);
  o.file = write("fan.yaml", "name: w\nworkflowBody:\n- parallelFor: {name: P, iterators: [\"3\"], loopBody: [{function: {name: F, type: F}}]}\n");
  std::ostringstream out2, err2;
  EXPECT_NE(planWorkflowCommand(o, OutputFormat::kHuman, out2, err2), 0);
  EXPECT_NE(err2.str().find("only chains"), std::string::npos) << err2.str();
  EXPECT_EQ(out2.str(), "");
}

}  // namespace
}  // namespace tern::cli
