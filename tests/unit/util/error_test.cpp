#include "util/error.h"

#include <gtest/gtest.h>

#include <set>

namespace tern {
namespace {

TEST(ErrorTest, KindsHaveDistinctNamesAndExitStatuses) {
  std::set<int> statuses;
  std::set<std::string_view> names;
  for (int c = 0; c <= static_cast<int>(ErrorCode::kInternal); ++c) {
    const auto& k = errorKind(static_cast<ErrorCode>(c));
    EXPECT_EQ(static_cast<int>(k.code), c);
    statuses.insert(k.exitStatus);
    names.insert(k.name);
    EXPECT_GE(k.exitStatus, 64);  // above the guest exit codes people use
  }
  EXPECT_EQ(statuses.size(), static_cast<size_t>(ErrorCode::kInternal) + 1);
  EXPECT_EQ(names.size(), statuses.size());
}

TEST(ErrorTest, DescribeReadsAsOneLine) {
  EXPECT_EQ(Error(ErrorCode::kTrap, "integer divide by zero").describe(),
            "trap: integer divide by zero");
  EXPECT_EQ(Error(ErrorCode::kTimeout, "").describe(), "timeout");
}

TEST(ErrorTest, ResultCarriesValueOrError) {
  Result<int> ok = 5;
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, 5);
  Result<int> bad = Error(ErrorCode::kIo, "disk");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code(), ErrorCode::kIo);
}

}  // namespace
}  // namespace tern
