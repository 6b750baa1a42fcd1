// The CGI response convention: an optional header block at the start of stdout, of which only
// allowed headers with valid values are sent.

#include "triggers/cgi_response.h"

#include <gtest/gtest.h>

namespace tern::triggers {
namespace {

TEST(CgiResponseTest, PlainOutputIsTheWholeBody) {
  for (std::string out : {std::string("Hello from tern!\n"), std::string(""),
                          std::string("no colon here\n\nstill body"),
                          std::string("Status: 99\n\nbad status"), std::string("Status: abc\n\nx"),
                          std::string("Bad Name: v\n\nx"), std::string("X-A: no blank line"),
                          std::string("\nX-A: b\n\nleading blank line")}) {
    auto c = parseCgiResponse(out);
    EXPECT_EQ(c.response.status, 200) << out;
    EXPECT_EQ(c.response.body, out);
    EXPECT_EQ(c.response.contentType, "application/octet-stream");
    EXPECT_TRUE(c.response.headers.empty());
    EXPECT_TRUE(c.refusedHeaders.empty());
  }
}

TEST(CgiResponseTest, HeaderBlockSetsStatusTypeAndHeaders) {
  auto c = parseCgiResponse(
      "Status: 404 Not Found\r\nContent-Type: text/plain\r\nX-Trace: abc\r\n\r\nmissing\n");
  EXPECT_EQ(c.response.status, 404);
  EXPECT_EQ(c.response.contentType, "text/plain");
  ASSERT_EQ(c.response.headers.size(), 1u);
  EXPECT_EQ(c.response.headers[0].name, "X-Trace");
  EXPECT_EQ(c.response.headers[0].value, "abc");
  EXPECT_EQ(c.response.body, "missing\n");

  auto lf = parseCgiResponse("Content-Type: application/json\n\n{}");
  EXPECT_EQ(lf.response.status, 200);
  EXPECT_EQ(lf.response.contentType, "application/json");
  EXPECT_EQ(lf.response.body, "{}");
}

// An interim or protocol-switching status from a guest would desynchronise the connection.
TEST(CgiResponseTest, InterimStatusesAreNotAHeaderBlock) {
  for (const char* out : {"Status: 100\n\nx", "Status: 101 Switching Protocols\n\nx",
                          "Status: 199\n\nx", "Status: 600\n\nx"}) {
    auto c = parseCgiResponse(out);
    EXPECT_EQ(c.response.status, 200) << out;
    EXPECT_EQ(c.response.body, out);
  }
  EXPECT_EQ(parseCgiResponse("Status: 200\n\nx").response.status, 200);
  EXPECT_EQ(parseCgiResponse("Status: 599\n\nx").response.status, 599);
}

TEST(CgiResponseTest, GuestHeaderAllowList) {
  struct Case {
    const char* name;
    bool allowed;
  };
  const Case cases[] = {
      // Framing and hop-by-hop headers belong to the node.
      {"Content-Length", false}, {"content-length", false}, {"Transfer-Encoding", false},
      {"Connection", false}, {"Keep-Alive", false}, {"Upgrade", false}, {"TE", false},
      {"Trailer", false}, {"Proxy-Authenticate", false}, {"Proxy-Connection", false},
      {"Server", false}, {"Date", false}, {"Host", false},
      // tern's own headers.
      {"X-Tern-Invocation-Id", false}, {"x-tern-node", false}, {"X-TERN-FUNCTION-VERSION", false},
      {"X-Tern-", false},
      // End-to-end headers applications set.
      {"Cache-Control", true}, {"cache-control", true}, {"ETag", true}, {"Location", true},
      {"Set-Cookie", true}, {"Vary", true}, {"Content-Disposition", true},
      {"Content-Encoding", true}, {"Access-Control-Allow-Origin", true}, {"Retry-After", true},
      {"WWW-Authenticate", true}, {"X-Trace", true}, {"x-request-id", true}, {"X-Ternary", true},
      {"X-", true},
      // Anything else is not sent.
      {"Content-Range", false}, {"Foo", false}, {"", false},
  };
  for (const auto& c : cases) EXPECT_EQ(guestHeaderAllowed(c.name), c.allowed) << c.name;
}

TEST(CgiResponseTest, FieldValues) {
  EXPECT_TRUE(validFieldValue(""));
  EXPECT_TRUE(validFieldValue("text/plain; charset=utf-8"));
  EXPECT_TRUE(validFieldValue("a\tb"));
  EXPECT_TRUE(validFieldValue("caf\xc3\xa9"));  // obs-text
  EXPECT_FALSE(validFieldValue("a\rb"));
  EXPECT_FALSE(validFieldValue(std::string("a\0b", 3)));
  EXPECT_FALSE(validFieldValue("a\x01"));
  EXPECT_FALSE(validFieldValue("a\x7f"));
}

// The probe that found response splitting: a header block that sets the framing and puts a
// whole forged response in the body. The framing headers are refused; the forged response
// stays an opaque body framed by the node.
TEST(CgiResponseTest, FramingFromTheGuestIsRefused) {
  std::string forged = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nPWNED\n";
  auto c = parseCgiResponse("Content-Length: 0\r\nTransfer-Encoding: chunked\r\n"
                            "Connection: keep-alive\r\nX-Tern-Invocation-Id: fake\r\n"
                            "X-App: kept\r\n\r\n" + forged);
  EXPECT_EQ(c.response.status, 200);
  ASSERT_EQ(c.response.headers.size(), 1u);
  EXPECT_EQ(c.response.headers[0].name, "X-App");
  EXPECT_EQ(c.response.body, forged);
  EXPECT_EQ(c.refusedHeaders, (std::vector<std::string>{"Content-Length", "Transfer-Encoding",
                                                        "Connection", "X-Tern-Invocation-Id"}));
  // A value with a control character is refused, the rest of the block still applies.
  auto v = parseCgiResponse("X-A: ok\nX-B: bad\x01value\nContent-Type: text/x\x7f\n\nbody");
  ASSERT_EQ(v.response.headers.size(), 1u);
  EXPECT_EQ(v.response.headers[0].name, "X-A");
  EXPECT_EQ(v.response.contentType, "application/octet-stream");
  EXPECT_EQ(v.refusedHeaders, (std::vector<std::string>{"X-B", "Content-Type"}));
  EXPECT_EQ(v.response.body, "body");
}

}  // namespace
}  // namespace tern::triggers
