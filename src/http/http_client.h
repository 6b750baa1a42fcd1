#pragma once
// tern's one HTTP/1.1 client, for everything tern sends over HTTP: `tern` to its node,
// devices to their nodes, a node to providers and to async callback URLs. One request per
// connection, http:// or https:// (TLS with the certificate and host name verified, tls.h),
// a deadline on resolving and connecting and one on the whole response. Also tern's one
// URL parser. Boost.Beast is confined to http_client.cpp; this header is transport-neutral.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "http/tls.h"
#include "util/error.h"

namespace tern::http {

// An http:// or https:// URL.
struct Url {
  bool tls = false;  // https://
  std::string host;  // name or address; IPv6 without brackets
  uint16_t port = 80;
  // A node URL's path prefix without a trailing '/' (usually empty); a request URL's path
  // and query ("/" at least).
  std::string path;

  // The canonical form, e.g. "http://127.0.0.1:8080" or "https://[::1]:8443/tern".
  std::string text() const;
  // The value of the Host header.
  std::string hostHeader() const;
};

// A node's base URL: http[s]://HOST[:PORT][/PREFIX].
using NodeUrl = Url;

// What a URL is for, which decides what it may hold.
enum class UrlUse {
  // A node (or provider) base URL: the scheme may be left out (http://), no query or
  // fragment, trailing '/' dropped from the prefix.
  kNode,
  // A URL requests are sent to (async callbacks, serverless functions): the scheme is
  // required, a query is kept, a fragment dropped, at most 2048 printable ASCII bytes.
  kRequest,
};

// Parses an http:// or https:// URL (the default port is 80 or 443). Errors:
// kInvalidArgument saying what is wrong.
Result<Url> parseUrl(std::string_view text, UrlUse use);
inline Result<NodeUrl> parseNodeUrl(std::string_view text) { return parseUrl(text, UrlUse::kNode); }

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
  bool truncated = false;  // the body was cut at the limit (BodyOverflow::kTruncate)

  // The first header with this name (case-insensitive), or nullptr.
  const std::string* header(std::string_view name) const;
};

// What a response body above HttpClientOptions::maxResponseBodyBytes does.
enum class BodyOverflow { kError, kTruncate };

struct HttpClientOptions {
  // Bounds resolving the host name and connecting (and the TLS handshake).
  std::chrono::milliseconds connectTimeout{5000};
  // Deadline for writing the request and reading the whole response.
  std::chrono::milliseconds responseTimeout{60000};
  size_t maxResponseBodyBytes = 64u << 20;
  size_t maxResponseHeaderBytes = 64u << 10;
  BodyOverflow bodyOverflow = BodyOverflow::kError;
  // How https:// servers are verified (loadClientTls); null: against the system's
  // trusted CAs, loaded for the request.
  std::shared_ptr<const ClientTls> tls;
};

// Sends one request to `url` (its path prefixes the request's target) and reads the whole
// response. Errors: kUnavailable (cannot resolve or connect, the TLS handshake or the
// certificate check failed, the server speaks TLS to a plain request or not to an https://
// one, the connection broke, no complete response before the deadline), kInvalidArgument
// (a header or method that cannot be sent), kBodyTooLarge (a response above the limits).
Result<HttpResponse> sendHttp(const Url& url, const HttpRequest& request,
                              const HttpClientOptions& options);

// Percent-encodes everything except RFC 3986 unreserved characters (for one path segment
// or one query key or value).
std::string percentEncode(std::string_view s);

}  // namespace tern::http
