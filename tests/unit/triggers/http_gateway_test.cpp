// The CGI response convention: an optional header block at the start of stdout.

#include "triggers/http_gateway.h"

#include <gtest/gtest.h>

namespace tern::triggers {
namespace {

TEST(CgiResponseTest, PlainOutputIsTheWholeBody) {
  for (std::string out : {std::string("Hello from tern!\n"), std::string(""),
                          std::string("no colon here\n\nstill body"),
                          std::string("Status: 99\n\nbad status"), std::string("Status: abc\n\nx"),
                          std::string("Bad Name: v\n\nx"), std::string("X-A: no blank line")}) {
    auto r = HttpGateway::cgiResponse(out);
    EXPECT_EQ(r.status, 200) << out;
    EXPECT_EQ(r.body, out);
    EXPECT_EQ(r.contentType, "application/octet-stream");
    EXPECT_TRUE(r.headers.empty());
  }
}

TEST(CgiResponseTest, HeaderBlockSetsStatusTypeAndHeaders) {
  auto r = HttpGateway::cgiResponse(
      "Status: 404 Not Found\r\nContent-Type: text/plain\r\nX-Trace: abc\r\n\r\nmissing\n");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.contentType, "text/plain");
  ASSERT_EQ(r.headers.size(), 1u);
  EXPECT_EQ(r.headers[0].name, "X-Trace");
  EXPECT_EQ(r.headers[0].value, "abc");
  EXPECT_EQ(r.body, "missing\n");

  auto lf = HttpGateway::cgiResponse("Content-Type: application/json\n\n{}");
  EXPECT_EQ(lf.status, 200);
  EXPECT_EQ(lf.contentType, "application/json");
  EXPECT_EQ(lf.body, "{}");
}

TEST(CgiResponseTest, ErrorBodiesAreJsonWithTheKindsStatus) {
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
