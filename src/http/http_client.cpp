#include "http/http_client.h"

#include "http/client_connect.h"
#include "http/tls_context.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/ssl/stream.hpp>
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

std::string Url::text() const {
  bool v6 = host.find(':') != std::string::npos;
  return fmt::format("{}://{}{}{}:{}{}", tls ? "https" : "http", v6 ? "[" : "", host,
                     v6 ? "]" : "", port, path);
}

std::string Url::hostHeader() const {
  bool v6 = host.find(':') != std::string::npos;
  std::string h = v6 ? "[" + host + "]" : host;
  return port == (tls ? 443 : 80) ? h : fmt::format("{}:{}", h, port);
}

namespace {

constexpr size_t kMaxRequestUrlBytes = 2048;

Error badUrl(std::string_view text, std::string_view why) {
  std::string shown(text.substr(0, 200));
  for (char& c : shown) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  return Error(ErrorCode::kInvalidArgument, fmt::format("URL \"{}\": {}", shown, why));
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

Result<Url> parseUrl(std::string_view text, UrlUse use) {
  const bool request = use == UrlUse::kRequest;
  if (request) {
    if (text.size() > kMaxRequestUrlBytes) {
      return badUrl(text, fmt::format("longer than {} bytes", kMaxRequestUrlBytes));
    }
    for (char c : text) {
      auto u = static_cast<unsigned char>(c);
      if (u <= 0x20 || u >= 0x7f) {
        return badUrl(text, "spaces, control characters and non-ASCII bytes must be "
                            "percent-encoded");
      }
    }
  }
  Url url;
  std::string_view rest = text;
  if (startsWithNoCase(rest, "https://")) {
    url.tls = true;
    url.port = 443;
    rest.remove_prefix(8);
  } else if (startsWithNoCase(rest, "http://")) {
    rest.remove_prefix(7);
  } else if (size_t scheme = rest.find("://"); scheme != std::string_view::npos) {
    return badUrl(text, fmt::format("unsupported scheme \"{}\": use http:// or https://",
                                    rest.substr(0, scheme)));
  } else if (request) {
    return badUrl(text, "must start with http:// or https://");
  }
  size_t end = rest.find_first_of(request ? "/?#" : "/");
  std::string_view authority = rest.substr(0, end);
  std::string_view path = end == std::string_view::npos ? "" : rest.substr(end);
  if (authority.find('@') != std::string_view::npos) {
    return badUrl(text, request ? "user information in the URL is not supported"
                                : "user information is not supported (pass the token with --token)");
  }
  if (request) {
    path = path.substr(0, path.find('#'));
  } else if (path.find_first_of("?#") != std::string_view::npos) {
    return badUrl(text, "a node URL has no query or fragment");
  }

  std::string_view portText;
  bool portGiven = false;
  if (authority.starts_with('[')) {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return badUrl(text, "unterminated IPv6 address");
    url.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return badUrl(text, "expected :PORT after the IPv6 address");
      portText = after.substr(1);
      portGiven = true;
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
      portGiven = true;
    }
    if (url.host.empty()) return badUrl(text, "no host");
    if (!std::all_of(url.host.begin(), url.host.end(), isHostChar)) {
      return badUrl(text, "invalid host name");
    }
  }
  if (portGiven) {
    if (portText.empty()) return badUrl(text, "empty port");
    unsigned port = 0;
    auto [endp, ec] = std::from_chars(portText.data(), portText.data() + portText.size(), port);
    if (ec != std::errc() || endp != portText.data() + portText.size() || port == 0 ||
        port > 65535) {
      return badUrl(text, fmt::format("port must be 1..65535, got \"{}\"", portText));
    }
    url.port = static_cast<uint16_t>(port);
  }
  if (request) {
    url.path = path.empty() || path.front() == '?' ? "/" + std::string(path) : std::string(path);
  } else {
    while (!path.empty() && path.back() == '/') path.remove_suffix(1);
    url.path = std::string(path);
  }
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


Result<void> openConnection(asio::io_context& ioc, const Url& url, ConnStream& stream,
                            const std::shared_ptr<const ClientTls>& tls,
                            std::chrono::steady_clock::time_point deadline,
                            std::chrono::milliseconds timeout) {
  const std::string where = url.text();
  std::shared_ptr<const ClientTls> verify = tls;
  if (url.tls && !verify) {
    auto system = loadClientTls("");
    if (!system) return system.error();
    verify = std::move(*system);
  }

  // Resolve, bounded by the deadline (getaddrinfo itself has none).
  tcp::resolver resolver(ioc);
  asio::steady_timer timer(ioc, deadline);
  beast::error_code ec;
  bool resolved = false, resolveTimedOut = false;
  tcp::resolver::results_type endpoints;
  timer.async_wait([&](beast::error_code e) {
    if (!e) {
      resolveTimedOut = true;
      resolver.cancel();
    }
  });
  resolver.async_resolve(url.host, std::to_string(url.port),
                         [&](beast::error_code e, tcp::resolver::results_type results) {
                           ec = e;
                           endpoints = std::move(results);
                           resolved = true;
                           timer.cancel();
                         });
  ioc.run();
  ioc.restart();
  if (resolveTimedOut || !resolved) {
    return Error(ErrorCode::kUnavailable, fmt::format("cannot resolve {}: no answer within {} ms",
                                                      url.host, timeout.count()));
  }
  if (ec) {
    return Error(ErrorCode::kUnavailable,
                 fmt::format("cannot resolve {}: {}", url.host, ec.message()));
  }

  auto& tcpStream = stream.transport();
  tcpStream.expires_at(deadline);
  tcpStream.async_connect(endpoints, [&](beast::error_code e, const tcp::endpoint&) { ec = e; });
  ioc.run();
  ioc.restart();
  if (ec == asio::error::connection_refused) {
    return Error(ErrorCode::kUnavailable,
                 fmt::format("cannot connect to {} (is ternd running?)", where));
  }
  if (ec == beast::error::timeout) {
    return Error(ErrorCode::kUnavailable, fmt::format("cannot connect to {}: no answer within {} ms",
                                                      where, timeout.count()));
  }
  if (ec) {
    return Error(ErrorCode::kUnavailable,
                 fmt::format("cannot connect to {}: {}", where, ec.message()));
  }
  if (!url.tls) return {};

  stream.startTls(const_cast<asio::ssl::context&>(verify->ctx), verify);
  SSL* ssl = stream.tls()->native_handle();
  if (!expectHost(ssl, url.host)) {
    return Error(ErrorCode::kInvalidArgument,
                 fmt::format("cannot check certificates for the host \"{}\"", url.host));
  }
  stream.tls()->async_handshake(asio::ssl::stream_base::client,
                                [&](beast::error_code e) { ec = e; });
  ioc.run();
  ioc.restart();
  if (ec == beast::error::timeout) {
    return Error(ErrorCode::kUnavailable, fmt::format("no TLS handshake from {} within {} ms",
                                                      where, timeout.count()));
  }
  if (ec) {
    return Error(ErrorCode::kUnavailable,
                 fmt::format("TLS with {} failed: {}", where,
                             handshakeFailure(ssl, url.host, *verify, ec.message())));
  }
  return {};
}

namespace {

// What a tern node answers to plain HTTP on its HTTPS port (http_server.cpp).
constexpr std::string_view kSpeaksHttps = "this port speaks HTTPS";

// Writes the request and reads the response on an open connection (TCP or TLS).
template <typename Stream>
Result<HttpResponse> exchange(asio::io_context& ioc, Stream& stream, beast::tcp_stream& transport,
                              const Url& url, const HttpRequest& request,
                              const HttpClientOptions& options) {
  const std::string where = url.text();
  // The body is sent from the caller's buffer, not copied (a deploy carries up to 64 MiB).
  bhttp::request<bhttp::span_body<const char>> req;
  req.version(11);
  req.method_string(request.method);
  req.target(url.path + request.target);
  req.set(bhttp::field::host, url.hostHeader());
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
  transport.expires_after(options.responseTimeout);
  bhttp::async_write(stream, req, [&](beast::error_code e, size_t) {
    writeEc = e;
    writeDone = true;
  });
  bhttp::async_read(stream, buffer, parser, [&](beast::error_code e, size_t) {
    readEc = e;
    // A complete answer ends the exchange, whatever is left of the request.
    if (!e && !writeDone) transport.cancel();
  });
  ioc.run();
  beast::error_code ignored;
  transport.socket().shutdown(tcp::socket::shutdown_both, ignored);

  bool truncated = false;
  if (readEc == beast::error::timeout || (readEc && writeEc == beast::error::timeout)) {
    return Error(ErrorCode::kUnavailable, fmt::format("no complete response from {} within {} ms",
                                                      where, options.responseTimeout.count()));
  }
  if (readEc == bhttp::error::body_limit) {
    if (options.bodyOverflow == BodyOverflow::kError) {
      return Error(ErrorCode::kBodyTooLarge, fmt::format("the response from {} exceeds {} bytes",
                                                         where, options.maxResponseBodyBytes));
    }
    truncated = true;
  } else if (readEc == bhttp::error::header_limit) {
    return Error(ErrorCode::kBodyTooLarge,
                 fmt::format("the response headers from {} exceed {} bytes", where,
                             options.maxResponseHeaderBytes));
  } else if (readEc) {
    std::string cause = writeEc && writeEc != asio::error::operation_aborted
                            ? "sending the request failed: " + writeEc.message()
                            : readEc.message();
    return Error(
        ErrorCode::kUnavailable,
        fmt::format("the connection to {} broke before a complete response ({})", where, cause));
  }

  auto& res = parser.get();
  HttpResponse out;
  out.status = static_cast<int>(res.result_int());
  for (const auto& f : res) {
    out.headers.push_back(HttpHeader{std::string(f.name_string()), std::string(f.value())});
  }
  out.body = std::move(res.body());
  out.truncated = truncated;
  if (!url.tls && out.status == 400 && out.body.starts_with(kSpeaksHttps)) {
    Url https = url;
    https.tls = true;
    return Error(ErrorCode::kUnavailable,
                 fmt::format("{} serves HTTPS, not plain HTTP: use {}", where, https.text()));
  }
  return out;
}

}  // namespace

Result<HttpResponse> sendHttp(const Url& url, const HttpRequest& request,
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
  asio::io_context ioc;
  ConnStream stream{tcp::socket(ioc)};
  auto opened = openConnection(ioc, url, stream, options.tls,
                               std::chrono::steady_clock::now() + options.connectTimeout,
                               options.connectTimeout);
  if (!opened) return opened.error();
  if (auto* tls = stream.tls()) return exchange(ioc, *tls, stream.transport(), url, request, options);
  return exchange(ioc, stream.transport(), stream.transport(), url, request, options);
}

}  // namespace tern::http
