// Error responses of the HTTP gateway.

#include "triggers/http_gateway.h"

#include <gtest/gtest.h>

namespace tern::triggers {
namespace {

TEST(ErrorResponseTest, ErrorBodiesAreJsonWithTheKindsStatus) {
  auto r = errorResponse(Error(ErrorCode::kSaturated, "busy"));
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(r.contentType, "application/json");
  EXPECT_EQ(r.body, "{\"error\":{\"code\":\"saturated\",\"message\":\"busy\"}}\n");
  ASSERT_EQ(r.headers.size(), 1u);
  EXPECT_EQ(r.headers[0].name, "Retry-After");
  // Messages carrying guest bytes that are not UTF-8 are escaped, never thrown on.
  auto bad = errorResponse(Error(ErrorCode::kTrap, std::string("\xff\xfe", 2)));
  EXPECT_EQ(bad.status, 500);
}

}  // namespace
}  // namespace tern::triggers
