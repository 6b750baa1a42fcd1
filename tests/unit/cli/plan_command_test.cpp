// `tern plan capacity`: the printed plan and its errors.

#include "cli/plan_command.h"

#include <gtest/gtest.h>

#include <sstream>

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

}  // namespace
}  // namespace tern::cli
