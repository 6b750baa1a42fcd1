#include "http/http_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <optional>
#include <strings.h>

namespace tern::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;

std::string NodeUrl::text() const {
  bool v6 = host.find(':') != std::string::npos;
  return fmt::format("http://{}{}{}:{}{}", v6 ? "[" : "", host, v6 ? "]" : "", port, prefix);
}

std::string NodeUrl::hostHeader() const {
  bool v6 = host.find(':') != std::string::npos;
  std::string h = v6 ? "[" + host + "]" : host;
  return port == 80 ? h : fmt::format("{}:{}", h, port);
}

namespace {

Error badUrl(std::string_view text, std::string_view why) {
  return Error(ErrorCode::kInvalidArgument, fmt::format("--node \"{}\": {}", text, why));
}

bool startsWithNoCase(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && strncasecmp(s.data(), prefix.data(), prefix.size()) == 0;
}

bool isHostChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
}

// RFC 7230 token characters (header names, methods).
bool isToken(std::string_view s) {
  if (s.empty()) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
  });
}

bool isFieldValue(std::string_view s) {
  return std::none_of(s.begin(), s.end(),
                      [](char c) { return c == '\r' || c == '\n' || c == '\0'; });
}

}  // namespace

Result<NodeUrl> parseNodeUrl(std::string_view text) {
  std::string_view rest = text;
  if (startsWithNoCase(rest, "https://")) {
    return badUrl(text,
                  "https:// is not supported: tern talks plain http:// to a node; "
                  "reach a TLS endpoint through a local proxy or tunnel");
  }
  if (startsWithNoCase(rest, "http://")) {
    rest.remove_prefix(7);
  } else if (size_t scheme = rest.find("://"); scheme != std::string_view::npos) {
    return badUrl(text, fmt::format("unsupported scheme \"{}\": use http://HOST:PORT",
                                    rest.substr(0, scheme)));
  }
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? "" : rest.substr(slash);
  if (authority.find('@') != std::string_view::npos) {
    return badUrl(text, "user information is not supported (pass the token with --token)");
  }
  if (path.find_first_of("?#") != std::string_view::npos) {
    return badUrl(text, "a node URL has no query or fragment");
  }

  NodeUrl url;
  std::string_view portText;
  if (authority.starts_with('[')) {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return badUrl(text, "unterminated IPv6 address");
    url.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return badUrl(text, "expected :PORT after the IPv6 address");
      portText = after.substr(1);
      if (portText.empty()) return badUrl(text, "empty port");
    }
    bool ok = !url.host.empty() && std::all_of(url.host.begin(), url.host.end(), [](char c) {
      return std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.';
    });
    if (!ok) return badUrl(text, "invalid IPv6 address");
  } else {
    size_t colon = authority.find(':');
    url.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      portText = authority.substr(colon + 1);
      if (portText.empty()) return badUrl(text, "empty port");
    }
    if (url.host.empty()) return badUrl(text, "no host");
    if (!std::all_of(url.host.begin(), url.host.end(), isHostChar)) {
      return badUrl(text, "invalid host name");
    }
  }
  if (!portText.empty()) {
    unsigned port = 0;
    auto [end, ec] = std::from_chars(portText.data(), portText.data() + portText.size(), port);
    if (ec != std::errc() || end != portText.data() + portText.size() || port == 0 ||
        port > 65535) {
      return badUrl(text, fmt::format("port must be 1..65535, got \"{}\"", portText));
    }
    url.port = static_cast<uint16_t>(port);
  }
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  url.prefix = std::string(path);
  return url;
}

const std::string* HttpResponse::header(std::string_view name) const {
  for (const auto& h : headers) {
    if (h.name.size() == name.size() && strncasecmp(h.name.data(), name.data(), name.size()) == 0) {
      return &h.value;
    }
  }
  return nullptr;
}

std::string percentEncode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(c);
    } else {
      out += fmt::format("%{:02X}", u);
    }
  }
  return out;
}

Result<HttpResponse> sendHttp(const NodeUrl& node, const HttpRequest& request,
                              const HttpClientOptions& options) {
  if (!isToken(request.method)) {
    return Error(ErrorCode::kInvalidArgument,
                 fmt::format("invalid HTTP method \"{}\"", request.method));
  }
  for (const auto& h : request.headers) {
    if (!isToken(h.name) || !isFieldValue(h.value)) {
      return Error(ErrorCode::kInvalidArgument, fmt::format("invalid HTTP header \"{}\"", h.name));
    }
  }
  const std::string where = node.text();

  asio::io_context ioc;

  // Resolve, bounded by the connect timeout (getaddrinfo itself has no deadline).
  tcp::resolver resolver(ioc);
  asio::steady_timer timer(ioc, options.connectTimeout);
  beast::error_code ec;
  bool resolveTimedOut = false;
  tcp::resolver::results_type endpoints;
  timer.async_wait([&](beast::error_code e) {
    if (!e) {
      resolveTimedOut = true;
      resolver.cancel();
    }
  });
  resolver.async_resolve(node.host, std::to_string(node.port),
                         [&](beast::error_code e, tcp::resolver::results_type results) {
                           ec = e;
                           endpoints = std::move(results);
                           timer.cancel();
                         });
  ioc.run();
  ioc.restart();
  if (resolveTimedOut) {
    return Error(ErrorCode::kUnavailable, fmt::format("cannot resolve {}: no answer within {} ms",
                                                      node.host, options.connectTimeout.count()));
  }
  if (ec) {
    return Error(ErrorCode::kUnavailable,
                 fmt::format("cannot resolve {}: {}", node.host, ec.message()));
  }

  beast::tcp_stream stream(ioc);
  stream.expires_after(options.connectTimeout);
  stream.async_connect(endpoints, [&](beast::error_code e, const tcp::endpoint&) { ec = e; });
  ioc.run();
  ioc.restart();
  if (ec == asio::error::connection_refused) {
    return Error(ErrorCode::kUnavailable,
                 fmt::format("cannot connect to {} (is ternd running?)", where));
  }
  if (ec == beast::error::timeout) {
    return Error(ErrorCode::kUnavailable,
                 fmt::format("cannot connect to {}: no answer within {} ms", where,
                             options.connectTimeout.count()));
  }
  if (ec) {
    return Error(ErrorCode::kUnavailable,
                 fmt::format("cannot connect to {}: {}", where, ec.message()));
  }

  // The body is sent from the caller's buffer, not copied (a deploy carries up to 64 MiB).
  bhttp::request<bhttp::span_body<const char>> req;
  req.version(11);
  req.method_string(request.method);
  req.target(node.prefix + request.target);
  req.set(bhttp::field::host, node.hostHeader());
  req.set(bhttp::field::user_agent, "tern/0.1.0");
  for (const auto& h : request.headers) {
    if (strcasecmp(h.name.c_str(), "Host") == 0) {
      req.set(bhttp::field::host, h.value);
    } else {
      req.insert(h.name, h.value);
    }
  }
  req.keep_alive(false);
  req.body() = beast::span<const char>(request.body.data(), request.body.size());
  req.prepare_payload();

  // The write and the read run together: a node refuses an oversized body before reading
  // it, and its answer must still be read even though the write then fails.
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(options.maxResponseBodyBytes);
  parser.header_limit(static_cast<uint32_t>(options.maxResponseHeaderBytes));
  if (req.method() == bhttp::verb::head) parser.skip(true);
  beast::flat_buffer buffer;
  beast::error_code writeEc, readEc;
  bool writeDone = false;
  stream.expires_after(options.responseTimeout);
  bhttp::async_write(stream, req, [&](beast::error_code e, size_t) {
    writeEc = e;
    writeDone = true;
  });
  bhttp::async_read(stream, buffer, parser, [&](beast::error_code e, size_t) {
    readEc = e;
    // A complete answer ends the exchange, whatever is left of the request.
    if (!e && !writeDone) stream.cancel();
  });
  ioc.run();
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);

  if (readEc == beast::error::timeout || (readEc && writeEc == beast::error::timeout)) {
    return Error(ErrorCode::kUnavailable, fmt::format("no complete response from {} within {} ms",
                                                      where, options.responseTimeout.count()));
  }
  if (readEc == bhttp::error::body_limit) {
    return Error(ErrorCode::kBodyTooLarge, fmt::format("the response from {} exceeds {} bytes",
                                                       where, options.maxResponseBodyBytes));
  }
  if (readEc == bhttp::error::header_limit) {
    return Error(ErrorCode::kBodyTooLarge,
                 fmt::format("the response headers from {} exceed {} bytes", where,
                             options.maxResponseHeaderBytes));
  }
  if (readEc) {
    std::string cause = writeEc && writeEc != asio::error::operation_aborted
                            ? "sending the request failed: " + writeEc.message()
                            : readEc.message();
    return Error(
        ErrorCode::kUnavailable,
        fmt::format("the connection to {} broke before a complete response ({})", where, cause));
  }

  auto res = parser.release();
  HttpResponse out;
  out.status = static_cast<int>(res.result_int());
  for (const auto& f : res) {
    out.headers.push_back(HttpHeader{std::string(f.name_string()), std::string(f.value())});
  }
  out.body = std::move(res.body());
  return out;
}

}  // namespace tern::http
