#pragma once
// A small synchronous HTTP/1.1 client for talking to a tern node: one request per
// connection, plain http:// only, a deadline on connecting and one on the whole response.
// Boost.Beast is confined to http_client.cpp; this header is transport-neutral.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "util/error.h"

namespace tern::http {

// A node's base URL: http://HOST[:PORT][/PREFIX].
struct NodeUrl {
  std::string host;  // name or address; IPv6 without brackets
  uint16_t port = 80;
  std::string prefix;  // path prefix without a trailing '/', usually empty

  // The canonical form, e.g. "http://127.0.0.1:8080" or "http://[::1]:8080/tern".
  std::string text() const;
  // The value of the Host header.
  std::string hostHeader() const;
};

// Parses "http://host[:port][/prefix]" (the scheme may be left out). https:// is refused
// with a message saying tern speaks plain HTTP. Errors: kInvalidArgument.
Result<NodeUrl> parseNodeUrl(std::string_view text);

struct HttpHeader {
  std::string name;
  std::string value;
};

struct HttpRequest {
  std::string method = "GET";
  std::string target = "/";         // path and query, already percent-encoded
  std::vector<HttpHeader> headers;  // Host, Content-Length and User-Agent are added
  std::string body;
};

struct HttpResponse {
  int status = 0;
  std::vector<HttpHeader> headers;
  std::string body;

  // The first header with this name (case-insensitive), or nullptr.
  const std::string* header(std::string_view name) const;
};

struct HttpClientOptions {
  std::chrono::milliseconds connectTimeout{5000};
  // Deadline for writing the request and reading the whole response.
  std::chrono::milliseconds responseTimeout{60000};
  size_t maxResponseBodyBytes = 64u << 20;
  size_t maxResponseHeaderBytes = 64u << 10;
};

// Sends one request to the node and reads the whole response. Errors: kUnavailable (cannot
// resolve or connect, the connection broke, no complete response before the deadline),
// kInvalidArgument (a header or method that cannot be sent), kBodyTooLarge (a response
// above the limits).
Result<HttpResponse> sendHttp(const NodeUrl& node, const HttpRequest& request,
                              const HttpClientOptions& options);

// Percent-encodes everything except RFC 3986 unreserved characters (for one path segment
// or one query key or value).
std::string percentEncode(std::string_view s);

}  // namespace tern::http
