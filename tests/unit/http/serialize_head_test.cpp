// The response head as the server writes it, field by field, from a table of responses.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "http/server_internal.h"

namespace tern::http {
namespace {

TEST(SerializeHeadTest, EachResponseGetsExactlyItsHead) {
  struct Case {
    const char* what;
    Response res;
    unsigned version;
    bool keepAlive;
    bool isHead;
    std::string want;
    bool body;
  };
  Response plain;
  plain.body = "abc";
  Response noContent;
  noContent.status = 204;
  noContent.headers = {{"X-A", "1"}};
  Response headers;
  headers.status = 404;
  headers.contentType = "application/json";
  headers.body = "{}";
  headers.headers = {{"X-First", "1"}, {"X-Split", "a\r\nX-Injected: 1"}, {"", "nameless"},
                     {"X-Nul", std::string("a\0b", 3)}, {"X-Last", "2"}};
  Response badType;
  badType.contentType = "text/html\nX-Injected: 1";
  badType.body = "x";
  Response odd;
  odd.status = 299;
  Response big;
  big.headers = {{"X-Big", std::string(10000, 'v')}};
  Response literal;
  literal.headers = {{"X-Own", "1"}};
  literal.literalHeaders.push_back({"X-Tern-Invocation-Id", std::string(20, 'f')});
  literal.literalHeaders.push_back({"X-Tern-Split", "a\r\nX-Injected: 1"});
  literal.literalHeaders.push_back({"X-Tern-Node", std::string(5000, 'n')});
  const Case cases[] = {
      {"keep-alive 1.1", plain, 11, true, false,
       "HTTP/1.1 200 OK\r\nServer: tern\r\nContent-Type: text/plain; charset=utf-8\r\n"
       "Content-Length: 3\r\n\r\n",
       true},
      {"closing 1.1", plain, 11, false, false,
       "HTTP/1.1 200 OK\r\nServer: tern\r\nContent-Type: text/plain; charset=utf-8\r\n"
       "Content-Length: 3\r\nConnection: close\r\n\r\n",
       true},
      {"keep-alive 1.0", plain, 10, true, false,
       "HTTP/1.0 200 OK\r\nServer: tern\r\nContent-Type: text/plain; charset=utf-8\r\n"
       "Content-Length: 3\r\nConnection: keep-alive\r\n\r\n",
       true},
      {"HEAD: the length, no body", plain, 11, true, true,
       "HTTP/1.1 200 OK\r\nServer: tern\r\nContent-Type: text/plain; charset=utf-8\r\n"
       "Content-Length: 3\r\n\r\n",
       false},
      {"204: neither type nor length", noContent, 11, true, false,
       "HTTP/1.1 204 No Content\r\nServer: tern\r\nX-A: 1\r\n\r\n", false},
      {"fields that could split the head are dropped", headers, 11, true, false,
       "HTTP/1.1 404 Not Found\r\nServer: tern\r\nContent-Type: application/json\r\n"
       "X-First: 1\r\nX-Last: 2\r\nContent-Length: 2\r\n\r\n",
       true},
      {"a content type that could split the head is dropped", badType, 11, true, false,
       "HTTP/1.1 200 OK\r\nServer: tern\r\nContent-Length: 1\r\n\r\n", true},
      {"a status Beast has no reason for gets an empty one", odd, 11, true, false,
       "HTTP/1.1 299 \r\nServer: tern\r\nContent-Type: text/plain; charset=utf-8\r\n"
       "Content-Length: 0\r\n\r\n",
       true},
      {"literal-named headers after the others, checked the same way", literal, 11, true, false,
       "HTTP/1.1 200 OK\r\nServer: tern\r\nContent-Type: text/plain; charset=utf-8\r\n"
       "X-Own: 1\r\nX-Tern-Invocation-Id: " + std::string(20, 'f') + "\r\nX-Tern-Node: " +
           std::string(5000, 'n') + "\r\nContent-Length: 0\r\n\r\n",
       true},
      {"a large header", big, 11, true, false,
       "HTTP/1.1 200 OK\r\nServer: tern\r\nContent-Type: text/plain; charset=utf-8\r\nX-Big: " +
           std::string(10000, 'v') + "\r\nContent-Length: 0\r\n\r\n",
       true},
  };
  std::string out = "left over from the last response";
  for (const auto& c : cases) {
    bool body = serializeHead(out, c.res, c.version, c.keepAlive, c.isHead, "tern");
    EXPECT_EQ(out, c.want) << c.what;
    EXPECT_EQ(body, c.body) << c.what;
  }
}

// A header name or value with CR, LF or NUL anywhere is dropped, whatever its length and the
// byte's place (the check reads sixteen bytes at a time where it can, otherwise eight, the
// last block overlapping the one before it, and a field shorter than eight one byte at a
// time); bytes that differ from those three only in their high bit, or by one, are kept.
TEST(SerializeHeadTest, AFieldWithCrLfOrNulAtAnyPlaceIsDroppedAndNoOtherIs) {
  auto sent = [](const Header& h) {
    Response res;
    res.status = 204;
    res.headers = {h};
    std::string out;
    serializeHead(out, res, 11, true, false, "tern");
    return out != "HTTP/1.1 204 No Content\r\nServer: tern\r\n\r\n";
  };
  for (size_t length = 1; length <= 50; ++length) {
    std::string clean(length, 'a');
    static const char kNear[] = {'\x8d', '\x8a', '\x80', '\x0e', '\x0c', '\x0b', '\x01', '\x09', 'a'};
    for (size_t i = 0; i < length; ++i) clean[i] = kNear[i % std::size(kNear)];
    EXPECT_TRUE(sent({"X-Clean", clean})) << "length " << length;
    EXPECT_TRUE(sent({std::string(length, 'N'), "v"})) << "length " << length;
    for (char bad : {'\r', '\n', '\0'}) {
      for (size_t at = 0; at < length; ++at) {
        std::string field(length, 'x');
        field[at] = bad;
        EXPECT_FALSE(sent({"X-Bad", field})) << "value, length " << length << ", byte " << at
                                              << " is " << int{bad};
        EXPECT_FALSE(sent({field, "v"})) << "name, length " << length << ", byte " << at
                                          << " is " << int{bad};
      }
    }
  }
}

}  // namespace
}  // namespace tern::http
