#include "cli/node_client.h"

#include <strings.h>

#include <fmt/format.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <system_error>

#include "cli/output_format.h"
#include "util/data_dir.h"

namespace tern::cli {

using json = nlohmann::json;

std::string resolveNodeAddress(std::string_view option) {
  if (!option.empty()) return std::string(option);
  if (const char* n = std::getenv("TERN_NODE"); n && *n) return n;
  return std::string(kDefaultNode);
}

namespace {

std::string trimmed(std::string s) {
  const char* ws = " \t\r\n";
  size_t b = s.find_first_not_of(ws);
  if (b == std::string::npos) return {};
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

}  // namespace

Result<AdminToken> discoverToken(std::string_view option) {
  if (!option.empty()) return AdminToken{std::string(option), "--token"};
  if (const char* t = std::getenv("TERN_TOKEN"); t && *t) {
    return AdminToken{trimmed(t), "$TERN_TOKEN"};
  }
  std::filesystem::path path = defaultDataDir() / "admin.token";
  const std::string hint = "pass --token or set TERN_TOKEN";
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return Error(
        ErrorCode::kUnauthorized,
        fmt::format("no admin token: {} (no local node token at {})", hint, path.string()));
  }
  std::ifstream in(path);
  std::string line;
  if (!in) {
    return Error(ErrorCode::kUnauthorized,
                 fmt::format("no admin token: cannot read {}; {}", path.string(), hint));
  }
  std::getline(in, line);
  line = trimmed(line);
  if (line.empty()) {
    return Error(ErrorCode::kUnauthorized,
                 fmt::format("no admin token: {} is empty; {}", path.string(), hint));
  }
  return AdminToken{line, path.string()};
}

std::optional<ErrorCode> errorCodeFromName(std::string_view name) {
  for (int c = 0; c <= static_cast<int>(ErrorCode::kInternal); ++c) {
    const auto& kind = errorKind(static_cast<ErrorCode>(c));
    if (kind.name == name) return kind.code;
  }
  // Codes of the HTTP transport that are not error kinds of their own.
  if (name == "bad_request" || name == "headers_too_large") return ErrorCode::kInvalidArgument;
  if (name == "request_timeout") return ErrorCode::kUnavailable;
  return std::nullopt;
}

std::optional<Error> errorFromJsonBody(std::string_view body) {
  json doc = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object()) return std::nullopt;
  auto e = doc.find("error");
  if (e == doc.end() || !e->is_object()) return std::nullopt;
  auto code = e->find("code");
  if (code == e->end() || !code->is_string()) return std::nullopt;
  std::string message;
  if (auto m = e->find("message"); m != e->end() && m->is_string()) message = m->get<std::string>();
  std::string name = code->get<std::string>();
  if (auto kind = errorCodeFromName(name)) return Error(*kind, std::move(message));
  // A code this tern does not know (a newer node): keep it visible in the message.
  return Error(ErrorCode::kInternal, message.empty() ? name : fmt::format("{}: {}", name, message));
}

Error errorFromResponse(const HttpResponse& response, std::string_view where) {
  if (auto e = errorFromJsonBody(response.body)) return *e;
  ErrorCode code = ErrorCode::kInternal;
  switch (response.status) {
    case 400: code = ErrorCode::kInvalidArgument; break;
    case 401: code = ErrorCode::kUnauthorized; break;
    case 404: code = ErrorCode::kNotFound; break;
    case 409: code = ErrorCode::kConflict; break;
    case 413: code = ErrorCode::kBodyTooLarge; break;
    case 429: code = ErrorCode::kSaturated; break;
    case 502:
    case 503:
    case 504: code = ErrorCode::kUnavailable; break;
    default: break;
  }
  std::string_view body = response.body;
  body = body.substr(0, std::min(body.find('\n'), size_t{200}));
  std::string message = fmt::format("{} answered HTTP {}", where, response.status);
  if (!body.empty()) message += ": " + terminalSafe(body);
  return Error(code, std::move(message));
}

bool isLocalNode(const NodeUrl& url) {
  const std::string& h = url.host;
  return h == "localhost" || h == "::1" || h.rfind("127.", 0) == 0;
}

Result<std::shared_ptr<const http::ClientTls>> clientTlsFor(const NodeOptions& options,
                                                            const NodeUrl& url) {
  if (!url.tls) return std::shared_ptr<const http::ClientTls>();
  std::string caFile = options.caFile;
  std::string origin = "--ca-file";
  if (caFile.empty()) {
    const char* env = std::getenv("TERN_CA_FILE");
    if (env && *env) {
      caFile = env;
      origin = "$TERN_CA_FILE";
    }
  }
  auto tls = http::loadClientTls(caFile);
  if (!tls.ok()) return Error(tls.error().code(), origin + ": " + tls.error().message());
  return std::move(*tls);
}

Result<NodeClient> NodeClient::open(const NodeOptions& options, TokenUse token) {
  auto url = parseNodeUrl(resolveNodeAddress(options.node));
  if (!url.ok()) return url.error();
  auto tls = clientTlsFor(options, *url);
  if (!tls.ok()) return tls.error();
  AdminToken admin;
  if (token == TokenUse::kRequired) {
    auto t = discoverToken(options.token);
    if (!t.ok()) return t.error();
    bool fromLocalFile = t->origin != "--token" && t->origin != "$TERN_TOKEN";
    if (fromLocalFile && !isLocalNode(*url)) {
      return Error(ErrorCode::kUnauthorized,
                   fmt::format("the local node's admin token ({}) is only sent to a node on this "
                               "machine; for {} pass --token or set TERN_TOKEN",
                               t->origin, url->text()));
    }
    admin = std::move(*t);
  } else if (token == TokenUse::kIfAvailable) {
    auto t = discoverToken(options.token);
    bool fromLocalFile = t.ok() && t->origin != "--token" && t->origin != "$TERN_TOKEN";
    if (t.ok() && (!fromLocalFile || isLocalNode(*url))) admin = std::move(*t);
  }
  return NodeClient(std::move(*url), std::move(admin), std::move(*tls));
}

Result<ApiReply> NodeClient::call(std::string method, std::string target, std::string body,
                                  std::chrono::milliseconds timeout) const {
  HttpRequest req;
  req.method = std::move(method);
  req.target = std::move(target);
  req.body = std::move(body);
  req.headers.push_back({"Authorization", "Bearer " + token_.value});
  req.headers.push_back({"Accept", "application/json"});
  if (!req.body.empty()) req.headers.push_back({"Content-Type", "application/wasm"});
  auto res = send(req, timeout);
  if (!res.ok()) return res.error();
  if (res->status < 200 || res->status > 299) {
    Error e = errorFromResponse(*res, url_.text());
    if (e.code() == ErrorCode::kUnauthorized) {
      // Say which token was refused: a stale $TERN_TOKEN is the usual cause.
      return Error(e.code(),
                   fmt::format("{} (the token came from {})", e.message(), token_.origin));
    }
    return e;
  }
  ApiReply reply;
  reply.doc = json::parse(res->body, nullptr, /*allow_exceptions=*/false);
  if (reply.doc.is_discarded()) {
    return Error(ErrorCode::kInternal, fmt::format("{} answered {} with a body that is not JSON",
                                                   url_.text(), res->status));
  }
  reply.raw = std::move(res->body);
  return reply;
}

void NodeClient::authorize(HttpRequest& request) const {
  if (token_.value.empty()) return;
  for (const auto& h : request.headers) {
    if (strcasecmp(h.name.c_str(), "Authorization") == 0) return;
  }
  request.headers.push_back({"Authorization", "Bearer " + token_.value});
}

Result<HttpResponse> NodeClient::send(const HttpRequest& request,
                                      std::chrono::milliseconds timeout) const {
  HttpClientOptions options;
  options.responseTimeout = timeout;
  options.tls = tls_;
  return sendHttp(url_, request, options);
}

int printReply(const NodeOptions& node, const ApiReply& reply, std::ostream& out,
               const std::string& human) {
  if (node.format == OutputFormat::kJson) {
    out << reply.raw;
    if (!reply.raw.ends_with('\n')) out << '\n';
  } else {
    out << human;
  }
  return 0;
}

Result<ApiReply> callWithToken(const NodeOptions& node, const std::string& method,
                               const std::string& target, std::string body) {
  auto client = NodeClient::open(node, NodeClient::TokenUse::kRequired);
  if (!client.ok()) return client.error();
  return client->call(method, target, std::move(body));
}

}  // namespace tern::cli
