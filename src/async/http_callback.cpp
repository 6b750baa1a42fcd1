#include "async/http_callback.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <fmt/format.h>
#include <strings.h>

#include <algorithm>
#include <cctype>
#include <charconv>

#include "async/job_json.h"

namespace tern::async {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr size_t kMaxUrlBytes = 2048;

Error badUrl(std::string_view url, std::string_view why) {
  std::string shown(url.substr(0, 200));
  for (char& c : shown) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  return Error(ErrorCode::kInvalidArgument,
               fmt::format("callback_url \"{}\": {}", shown, why));
}

bool isHostChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
}

}  // namespace

Result<CallbackUrl> parseCallbackUrl(std::string_view url) {
  if (url.size() > kMaxUrlBytes) {
    return badUrl(url, fmt::format("longer than {} bytes", kMaxUrlBytes));
  }
  for (char c : url) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) {
      return badUrl(url, "spaces, control characters and non-ASCII bytes must be "
                         "percent-encoded");
    }
  }
  constexpr std::string_view kScheme = "http://";
  if (url.size() < kScheme.size() || strncasecmp(url.data(), kScheme.data(), kScheme.size()) != 0) {
    if (url.size() >= 8 && strncasecmp(url.data(), "https://", 8) == 0) {
      return badUrl(url, "https is not supported; use an http:// URL");
    }
    return badUrl(url, "must start with http://");
  }
  std::string_view rest = url.substr(kScheme.size());
  size_t end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, end);
  std::string_view target = end == std::string_view::npos ? "" : rest.substr(end);
  if (target.find('#') != std::string_view::npos) {
    target = target.substr(0, target.find('#'));
  }
  if (authority.find('@') != std::string_view::npos) {
    return badUrl(url, "user information in the URL is not supported");
  }
  CallbackUrl out;
  std::string_view portText;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return badUrl(url, "unterminated IPv6 address");
    out.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return badUrl(url, "unexpected text after the IPv6 address");
      portText = after.substr(1);
    }
    if (out.host.empty() || !std::all_of(out.host.begin(), out.host.end(), [](char c) {
          return std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.';
        })) {
      return badUrl(url, "invalid IPv6 address");
    }
  } else {
    size_t colon = authority.find(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) portText = authority.substr(colon + 1);
    if (out.host.empty()) return badUrl(url, "no host");
    if (!std::all_of(out.host.begin(), out.host.end(), isHostChar)) {
      return badUrl(url, "invalid host name");
    }
  }
  if (!portText.empty()) {
    unsigned port = 0;
    auto [p, ec] = std::from_chars(portText.data(), portText.data() + portText.size(), port);
    if (ec != std::errc() || p != portText.data() + portText.size() || port == 0 ||
        port > 65535) {
      return badUrl(url, "the port must be a number in 1..65535");
    }
    out.port = static_cast<uint16_t>(port);
  } else if (authority.ends_with(":")) {
    return badUrl(url, "empty port");
  }
  out.target = target.empty() || target.front() == '?' ? "/" + std::string(target)
                                                       : std::string(target);
  return out;
}

Result<void> checkCallbackUrl(std::string_view url) {
  auto parsed = parseCallbackUrl(url);
  if (!parsed) return parsed.error();
  return {};
}

Result<PostAnswer> post(const CallbackUrl& url, std::string_view body, std::string_view requestId,
                        std::chrono::milliseconds timeout, size_t maxBody) {
  bool v6 = url.host.find(':') != std::string::npos;
  std::string where = fmt::format("http://{}{}{}:{}{}", v6 ? "[" : "", url.host, v6 ? "]" : "",
                                  url.port, url.target);
  auto unavailable = [&](std::string_view why) {
    return Error(ErrorCode::kUnavailable, fmt::format("{}: {}", where, why));
  };
  try {
    asio::io_context io;
    tcp::resolver resolver(io);
    beast::error_code ec;
    auto endpoints = resolver.resolve(url.host, std::to_string(url.port), ec);
    if (ec) return unavailable("cannot resolve the host: " + ec.message());
    // Asynchronous operations on a private io_context: the stream's deadline applies only
    // to them, so a peer that accepts and never answers cannot hold this thread.
    beast::tcp_stream stream(io);
    bhttp::request<bhttp::string_body> req{bhttp::verb::post, url.target, 11};
    req.set(bhttp::field::host, url.port == 80 ? (v6 ? "[" + url.host + "]" : url.host)
                                               : fmt::format("{}{}{}:{}", v6 ? "[" : "",
                                                             url.host, v6 ? "]" : "", url.port));
    req.set(bhttp::field::user_agent, "tern");
    req.set(bhttp::field::content_type, "application/json");
    req.set(bhttp::field::connection, "close");
    req.set("X-Tern-Invocation-Id", std::string(requestId));
    req.body() = std::string(body);
    req.prepare_payload();
    beast::flat_buffer buffer;
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(maxBody);
    std::string failure;
    bool truncated = false;
    stream.expires_after(timeout);
    stream.async_connect(endpoints, [&](beast::error_code e, const tcp::endpoint&) {
      if (e) {
        failure = "cannot connect: " + e.message();
        return;
      }
      bhttp::async_write(stream, req, [&](beast::error_code e2, size_t) {
        if (e2) {
          failure = "cannot send: " + e2.message();
          return;
        }
        bhttp::async_read(stream, buffer, parser, [&](beast::error_code e3, size_t) {
          truncated = e3 == bhttp::error::body_limit;
          if (e3 && !truncated) failure = "no complete answer: " + e3.message();
        });
      });
    });
    io.run();
    if (!failure.empty()) return unavailable(failure);
    stream.socket().shutdown(tcp::socket::shutdown_both, ec);
    return PostAnswer{static_cast<int>(parser.get().result_int()), std::move(parser.get().body()),
                      truncated};
  } catch (const std::exception& e) {
    return unavailable(e.what());
  }
}

Result<void> postJson(const CallbackUrl& url, std::string_view body, std::string_view jobId,
                      std::chrono::milliseconds timeout) {
  // The answer's body is not used; keep it small.
  auto answer = post(url, body, jobId, timeout, 64 * 1024);
  if (!answer.ok()) return Error(ErrorCode::kUnavailable, "callback " + answer.error().message());
  if (answer->status < 200 || answer->status > 299) {
    bool v6 = url.host.find(':') != std::string::npos;
    return Error(ErrorCode::kUnavailable,
                 fmt::format("callback http://{}{}{}:{}{}: answered HTTP {}", v6 ? "[" : "",
                             url.host, v6 ? "]" : "", url.port, url.target, answer->status));
  }
  return {};
}

bool hasCallbackUrl(const JobRecord& job) { return !job.callbackUrl.empty(); }

AsyncQueue::Delivery httpCallbackDelivery(std::chrono::milliseconds timeout) {
  return [timeout](const JobRecord& job) -> Result<void> {
    if (job.callbackUrl.empty()) return {};
    auto url = parseCallbackUrl(job.callbackUrl);
    if (!url) return url.error();
    return postJson(*url, jobJson(job), job.id, timeout);
  };
}

}  // namespace tern::async
