#pragma once
// How `tern` reaches a node: the node URL and admin token from options, environment or the
// local data directory, and calls to the node's HTTP API (docs/http-api.md) whose JSON
// errors become tern Errors with the kind's exit status.

#include <chrono>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "http/http_client.h"
#include "util/error.h"

namespace tern::cli {

// The node client's transport (http/http_client.h), as the commands name it.
using http::HttpClientOptions;
using http::HttpHeader;
using http::HttpRequest;
using http::HttpResponse;
using http::NodeUrl;
using http::parseNodeUrl;
using http::percentEncode;
using http::sendHttp;

inline constexpr std::string_view kDefaultNode = "http://127.0.0.1:8080";

enum class OutputFormat { kHuman, kJson };

// The options every node command shares (`tern --node URL --token T --json ...`).
struct NodeOptions {
  std::string node;   // empty: $TERN_NODE, else kDefaultNode
  std::string token;  // empty: $TERN_TOKEN, else the local node's admin.token
  // CA certificates (PEM) that https:// nodes are verified against; empty: $TERN_CA_FILE,
  // else the system's trusted CAs.
  std::string caFile;
  OutputFormat format = OutputFormat::kHuman;
};

// The node address to use: the option, else $TERN_NODE, else kDefaultNode.
std::string resolveNodeAddress(std::string_view option);

// How an https:// node is verified: the CAs of --ca-file, else of $TERN_CA_FILE, else the
// system's; null for an http:// node. Errors: kInvalidArgument naming a CA file that
// cannot be used.
Result<std::shared_ptr<const http::ClientTls>> clientTlsFor(const NodeOptions& options,
                                                            const NodeUrl& url);

// An admin token and where it came from ("--token", "$TERN_TOKEN" or the file's path), so
// a refused token can be traced.
struct AdminToken {
  std::string value;
  std::string origin;
};

// The option, else $TERN_TOKEN, else the first line of <defaultDataDir()>/admin.token.
// Errors: kUnauthorized when none of them gives a token.
Result<AdminToken> discoverToken(std::string_view option);

// Whether the local node's admin.token may be sent to `url`: only to a node on this machine
// (localhost, 127.0.0.0/8, ::1). Tokens for other nodes come from --token or $TERN_TOKEN.
bool isLocalNode(const NodeUrl& url);

// The error kind for an error code in a node's JSON answer. Besides the kinds' own names
// it knows the transport codes of the HTTP server (bad_request, request_timeout,
// headers_too_large).
std::optional<ErrorCode> errorCodeFromName(std::string_view name);

// The tern error JSON of a response, if its body is one: {"error": {"code", "message"}}.
std::optional<Error> errorFromJsonBody(std::string_view body);

// The error for a non-2xx answer of the node: its JSON error when there is one, else a
// kind chosen by HTTP status with the start of the body as the message.
Error errorFromResponse(const HttpResponse& response, std::string_view where);

// One management call's answer: the raw body (for --json) and the parsed document.
struct ApiReply {
  std::string raw;
  nlohmann::json doc;
};

// Prints a management call's answer: the raw JSON with --json, else `human`. Returns 0.
int printReply(const NodeOptions& node, const ApiReply& reply, std::ostream& out,
               const std::string& human);

// Opens a client with the token (NodeClient::TokenUse::kRequired) and makes one /v1 call.
Result<ApiReply> callWithToken(const NodeOptions& node, const std::string& method,
                               const std::string& target, std::string body = {});

// A resolved connection to a node.
class NodeClient {
 public:
  // Resolves the URL (and the token when `token` is kRequired) from the options. With
  // kIfAvailable a token is used when one is found and may be sent to the node (invocations,
  // which a node started with --invoke-auth required refuses without one).
  enum class TokenUse { kRequired, kIfAvailable, kNotNeeded };
  static Result<NodeClient> open(const NodeOptions& options, TokenUse token);

  const NodeUrl& url() const { return url_; }

  // A /v1 call with the bearer token. A non-2xx answer becomes its Error; a 2xx answer
  // that is not JSON is kInternal.
  Result<ApiReply> call(std::string method, std::string target, std::string body = {},
                        std::chrono::milliseconds timeout = kManagementTimeout) const;

  // A plain request, for /fn invocations; the caller interprets the status.
  Result<HttpResponse> send(const HttpRequest& request, std::chrono::milliseconds timeout) const;
  // Adds Authorization: Bearer TOKEN when the client has a token and `request` carries no
  // Authorization header of its own. The node keeps a tern token out of the function's
  // environment.
  void authorize(HttpRequest& request) const;

  // Most management calls answer at once; a deploy compiles first and may take minutes.
  static constexpr std::chrono::milliseconds kManagementTimeout{60000};

 private:
  NodeClient(NodeUrl url, AdminToken token, std::shared_ptr<const http::ClientTls> tls)
      : url_(std::move(url)), token_(std::move(token)), tls_(std::move(tls)) {}

  NodeUrl url_;
  AdminToken token_;
  std::shared_ptr<const http::ClientTls> tls_;
};

}  // namespace tern::cli
