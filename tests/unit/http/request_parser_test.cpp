// The request parser every connection uses (src/http/request_parser.h): bytes in, a Request
// or a Refusal out, however the bytes are split across reads.

#include "http/request_parser.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace tern::http {
namespace {

size_t oneMiB(std::string_view, std::string_view) { return size_t{1} << 20; }

struct Parsed {
  RequestParser::Status status;
  Request request;
  bool keepAlive = false;
  unsigned version = 0;
  bool head = false;
  bool upgrade = false;
  bool plain = false;  // read without http_parser
  int refusal = 0;
  size_t consumed = 0;  // of all the bytes fed
};

// Feeds `bytes` in pieces of `piece` bytes (0: all at once) until the parser is done or
// refuses.
Parsed parse(const std::string& bytes, size_t piece, size_t maxHeader = 1024) {
  Server::BodyLimit limit = oneMiB;
  RequestParser parser(maxHeader, limit);
  Parsed out{RequestParser::Status::kNeedMore, {}};
  size_t at = 0;
  while (at < bytes.size()) {
    size_t n = piece == 0 ? bytes.size() - at : std::min(piece, bytes.size() - at);
    size_t used = 0;
    out.status = parser.feed(std::string_view(bytes).substr(at, n), used);
    out.consumed = at + used;
    if (out.status == RequestParser::Status::kDone) {
      out.keepAlive = parser.keepAlive();
      out.version = parser.version();
      out.head = parser.isHead();
      out.upgrade = parser.isWebSocketUpgrade();
      out.plain = parser.readPlain();
      out.request = std::move(parser.request());
      return out;
    }
    if (out.status == RequestParser::Status::kRefused) {
      out.refusal = parser.refusal().status;
      return out;
    }
    EXPECT_EQ(used, n) << "a parser that needs more takes every byte";
    at += n;
  }
  return out;
}

TEST(RequestParserTest, TheSameRequestComesOutHoweverTheBytesAreSplit) {
  const std::string bytes =
      "POST /fn/a%20b?x=1&y HTTP/1.1\r\nHost: h\r\nX-Pad:  two spaces \t\r\n"
      "Content-Length: 11\r\n\r\nhello world"
      "GET /next HTTP/1.1\r\nHost: h\r\n\r\n";
  for (size_t piece : {0, 1, 2, 3, 7, 16, 50}) {
    auto p = parse(bytes, piece);
    ASSERT_EQ(p.status, RequestParser::Status::kDone) << "pieces of " << piece;
    EXPECT_EQ(p.request.method, "POST");
    EXPECT_EQ(p.request.target, "/fn/a%20b?x=1&y");
    EXPECT_EQ(p.request.path, "/fn/a b");
    EXPECT_EQ(p.request.query, "x=1&y");
    EXPECT_EQ(p.request.body, "hello world");
    ASSERT_EQ(p.request.headers.size(), 3u);
    EXPECT_EQ(p.request.headers[1].name, "X-Pad");
    EXPECT_EQ(p.request.headers[1].value, "two spaces");  // whitespace around a value goes
    EXPECT_TRUE(p.keepAlive);
    EXPECT_EQ(p.version, 11u);
    // The next request's bytes are left for the next parse.
    EXPECT_EQ(bytes.substr(p.consumed), "GET /next HTTP/1.1\r\nHost: h\r\n\r\n")
        << "pieces of " << piece;
  }
}

// A whole request read at once may take the plain path (parsePlainRequest); one byte at a
// time, it never can (its header is never whole in one call), so http_parser reads it.
// Thousands of generated requests, most in the plain form and the rest off it by one detail,
// must come out the same both ways: every field, the framing, the refusal.
TEST(RequestParserTest, ThePlainPathReadsWhatHttpParserReadsTheSameWay) {
  uint64_t seed = 0x9e3779b97f4a7c15ull;
  auto next = [&seed](size_t n) {
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    return static_cast<size_t>(seed % n);
  };
  auto pick = [&](std::initializer_list<const char*> options) {
    return std::string(*(options.begin() + next(options.size())));
  };
  auto randomText = [&](const std::string& alphabet, size_t maxLength) {
    std::string s;
    for (size_t n = next(maxLength + 1); n > 0; --n) s += alphabet[next(alphabet.size())];
    return s;
  };
  const std::string targetChars = "abcXYZ019-._~!$&'()*+,;=:@/?%";
  const std::string oddTargetChars = "#\"<>[]{}|^` \x7f\x80\xff\t";
  const std::string valueChars = "abc XYZ 0-9 /;=,\"'\t()";
  const std::string oddValueChars = "\x7f\x80\xfe\x01\n\r\0";
  size_t plain = 0, refused = 0;
  for (int i = 0; i < 20000; ++i) {
    bool odd = next(4) == 0;  // one detail off the plain form
    std::string method = odd && next(4) == 0 ? pick({"get", "POST", "DELETE", "GET  ", "OPTIONS"})
                                              : pick({"GET", "HEAD"});
    std::string target = "/" + randomText(targetChars, 20);
    if (odd && next(4) == 0) target.insert(next(target.size() + 1), 1, oddTargetChars[next(oddTargetChars.size())]);
    if (odd && next(8) == 0) target = pick({"*", "http://h/x", "", "x"});
    std::string version = odd && next(4) == 0
                              ? pick({"HTTP/2.0", "HTTP/1.2", "HTTP/1.1 ", "http/1.1", "HTTP/0.9"})
                              : pick({"HTTP/1.1", "HTTP/1.0"});
    std::string eol = odd && next(6) == 0 ? "\n" : "\r\n";
    std::string bytes = method + " " + target + " " + version + eol;
    for (size_t h = next(6); h > 0; --h) {
      std::string name = pick({"Host", "X-A", "Accept", "User-Agent", "x-b", "A1!#$%&'*+-.^_`|~"});
      if (odd && next(3) == 0) {
        name = pick({"Connection", "content-length", "Transfer-Encoding", "Upgrade",
                     "Proxy-Connection", "Bad Name", "", "X\x80", "X(", "Content-Length "});
      }
      std::string value = pick({"", " ", "  ", "\t", " \t "}) + randomText(valueChars, 12) +
                          pick({"", "", " ", "\t", "  "});
      if (odd && next(3) == 0) value.insert(next(value.size() + 1), 1, oddValueChars[next(oddValueChars.size())]);
      if (name == "content-length" || name == "Content-Length ") value = std::to_string(next(3));
      if (name == "Connection" || name == "Proxy-Connection") value = pick({"close", "keep-alive", "upgrade"});
      if (name == "Transfer-Encoding") value = "chunked";
      bytes += name + ":" + value + (odd && next(6) == 0 ? "\n" : "\r\n");
      if (odd && next(20) == 0) bytes += " folded\r\n";
    }
    bytes += eol;
    if (next(3) == 0) bytes += "GET /next HTTP/1.1\r\n\r\n";  // a pipelined next request
    auto whole = parse(bytes, 0);
    auto split = parse(bytes, 1);
    EXPECT_FALSE(split.plain);
    plain += whole.plain;
    std::string what = ::testing::PrintToString(bytes);
    ASSERT_EQ(whole.status, split.status) << what;
    if (whole.status == RequestParser::Status::kRefused) {
      ++refused;
      EXPECT_EQ(whole.refusal, split.refusal) << what;
      continue;
    }
    if (whole.status != RequestParser::Status::kDone) continue;
    EXPECT_EQ(whole.consumed, split.consumed) << what;
    EXPECT_EQ(whole.request.method, split.request.method) << what;
    EXPECT_EQ(whole.request.target, split.request.target) << what;
    EXPECT_EQ(whole.request.path, split.request.path) << what;
    EXPECT_EQ(whole.request.query, split.request.query) << what;
    EXPECT_EQ(whole.request.body, split.request.body) << what;
    ASSERT_EQ(whole.request.headers.size(), split.request.headers.size()) << what;
    for (size_t k = 0; k < whole.request.headers.size(); ++k) {
      EXPECT_EQ(whole.request.headers[k].name, split.request.headers[k].name) << what;
      EXPECT_EQ(whole.request.headers[k].value, split.request.headers[k].value) << what;
    }
    EXPECT_EQ(whole.keepAlive, split.keepAlive) << what;
    EXPECT_EQ(whole.version, split.version) << what;
    EXPECT_EQ(whole.head, split.head) << what;
    EXPECT_EQ(whole.upgrade, split.upgrade) << what;
  }
  // Both paths were exercised, and so were refusals.
  EXPECT_GT(plain, 5000u) << refused << " refused";
  EXPECT_LT(plain, 19000u);
  EXPECT_GT(refused, 100u) << plain << " read plain";
}

TEST(RequestParserTest, AChunkedBodyIsDecoded) {
  auto p = parse("PUT /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
                 4);
  ASSERT_EQ(p.status, RequestParser::Status::kDone);
  EXPECT_EQ(p.request.body, "hello world");
}

TEST(RequestParserTest, KeepAliveVersionHeadAndUpgradeAreRead) {
  struct Case {
    const char* bytes;
    bool keepAlive;
    unsigned version;
    bool head;
    bool upgrade;
  } cases[] = {
      {"GET / HTTP/1.1\r\nHost: h\r\n\r\n", true, 11, false, false},
      {"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", false, 11, false, false},
      {"GET / HTTP/1.0\r\n\r\n", false, 10, false, false},
      {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true, 10, false, false},
      {"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n", true, 11, true, false},
      {"GET /v1/events HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\n"
       "Upgrade: WebSocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
       "Sec-WebSocket-Version: 13\r\n\r\n",
       true, 11, false, true},
      {"GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n", true, 11,
       false, false},
      {"POST / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", true,
       11, false, false},
  };
  for (const auto& c : cases) {
    auto p = parse(c.bytes, 0);
    ASSERT_EQ(p.status, RequestParser::Status::kDone) << c.bytes;
    EXPECT_EQ(p.keepAlive, c.keepAlive) << c.bytes;
    EXPECT_EQ(p.version, c.version) << c.bytes;
    EXPECT_EQ(p.head, c.head) << c.bytes;
    EXPECT_EQ(p.upgrade, c.upgrade) << c.bytes;
  }
}

TEST(RequestParserTest, RefusalsCarryTheirStatus) {
  struct Case {
    std::string bytes;
    int status;
  } cases[] = {
      {"GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505},
      {"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
       400},
      {"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc", 400},
      {"GET / HTTP/1.1\r\nHost: h\r\nBad Name: x\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: h\r\nContent-Length : 3\r\n\r\nabc", 400},
      {"GET / HTTP/1.1\r\nHost: h\r\n: x\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: h\r\nX: " + std::string(2000, 'a') + "\r\n\r\n", 431},
      {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2000000\r\n\r\n", 413},
      {"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400},
  };
  for (const auto& c : cases) {
    for (size_t piece : {0, 1, 5}) {
      auto p = parse(c.bytes, piece);
      EXPECT_EQ(p.status, RequestParser::Status::kRefused) << c.bytes << " in pieces of " << piece;
      EXPECT_EQ(p.refusal, c.status) << c.bytes << " in pieces of " << piece;
    }
  }
}

TEST(RequestParserTest, AHeaderAtItsLimitIsTakenAndOneByteMoreIsNot) {
  std::string head = "GET / HTTP/1.1\r\nHost: h\r\nX: ";
  std::string exact = head + std::string(100 - head.size() - 4, 'a') + "\r\n\r\n";
  ASSERT_EQ(exact.size(), 100u);
  EXPECT_EQ(parse(exact, 0, 100).status, RequestParser::Status::kDone);
  EXPECT_EQ(parse(exact, 3, 100).status, RequestParser::Status::kDone);
  std::string over = head + std::string(100 - head.size() - 3, 'a') + "\r\n\r\n";
  EXPECT_EQ(parse(over, 0, 100).refusal, 431);
  EXPECT_EQ(parse(over, 3, 100).refusal, 431);
}

// One parser, requests of both kinds in turn on a keep-alive connection: each is read whole
// and right, whichever path read the one before it.
TEST(RequestParserTest, PlainAndOtherRequestsAlternateOnOneParser) {
  Server::BodyLimit limit = oneMiB;
  RequestParser parser(1024, limit);
  struct Step {
    std::string bytes;
    bool plain;
    std::string path, body;
  } steps[] = {
      {"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc", false, "/p", "abc"},
      {"GET /g HTTP/1.1\r\nHost: h\r\n\r\n", true, "/g", ""},
      {"GET /c HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\n\r\n", false, "/c", ""},
      {"HEAD /h HTTP/1.1\r\nHost: h\r\n\r\n", true, "/h", ""},
      {"PUT /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
       false, "/u", "hi"},
      {"GET /last HTTP/1.0\r\n\r\n", true, "/last", ""},
  };
  for (const auto& step : steps) {
    size_t used = 0;
    ASSERT_EQ(parser.feed(step.bytes, used), RequestParser::Status::kDone) << step.bytes;
    EXPECT_EQ(used, step.bytes.size()) << step.bytes;
    EXPECT_EQ(parser.readPlain(), step.plain) << step.bytes;
    EXPECT_EQ(parser.request().path, step.path);
    EXPECT_EQ(parser.request().body, step.body);
    parser.reset();
  }
}

TEST(RequestParserTest, AResetParserReadsTheNextRequest) {
  Server::BodyLimit limit = oneMiB;
  RequestParser parser(1024, limit);
  std::string bytes = "GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n";
  size_t used = 0;
  ASSERT_EQ(parser.feed(bytes, used), RequestParser::Status::kDone);
  EXPECT_EQ(parser.request().path, "/a");
  EXPECT_TRUE(parser.begun());
  parser.reset();
  EXPECT_FALSE(parser.begun());
  size_t more = 0;
  ASSERT_EQ(parser.feed(std::string_view(bytes).substr(used), more), RequestParser::Status::kDone);
  EXPECT_EQ(parser.request().path, "/b");
  EXPECT_EQ(used + more, bytes.size());
}

}  // namespace
}  // namespace tern::http
