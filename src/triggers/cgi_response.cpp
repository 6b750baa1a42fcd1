#include "triggers/cgi_response.h"

#include "util/ascii.h"

#include <strings.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>

namespace tern::triggers {

namespace {

// End-to-end response headers a function may set. Framing (Content-Length,
// Transfer-Encoding), connection management (Connection, Keep-Alive, Upgrade, TE, Trailer,
// Proxy-*), and headers the node owns (Server, Date, Content-Type through its own field,
// X-Tern-*) are absent on purpose.
constexpr std::array<std::string_view, 30> kAllowed = {
    "Accept-Ranges",
    "Access-Control-Allow-Credentials",
    "Access-Control-Allow-Headers",
    "Access-Control-Allow-Methods",
    "Access-Control-Allow-Origin",
    "Access-Control-Expose-Headers",
    "Access-Control-Max-Age",
    "Age",
    "Allow",
    "Cache-Control",
    "Content-Disposition",
    "Content-Encoding",
    "Content-Language",
    "Content-Location",
    "Content-Security-Policy",
    "Cross-Origin-Opener-Policy",
    "Cross-Origin-Resource-Policy",
    "ETag",
    "Expires",
    "Last-Modified",
    "Link",
    "Location",
    "Permissions-Policy",
    "Referrer-Policy",
    "Retry-After",
    "Set-Cookie",
    "Strict-Transport-Security",
    "Vary",
    "WWW-Authenticate",
    "X-Content-Type-Options",
};

bool istartsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && strncasecmp(s.data(), prefix.data(), prefix.size()) == 0;
}

// A header name as CGI output may write it: a letter, then letters, digits and '-'.
bool isHeaderName(std::string_view s) {
  if (s.empty() || !std::isalpha(static_cast<unsigned char>(s[0]))) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-';
  });
}

}  // namespace

bool guestHeaderAllowed(std::string_view name) {
  if (istartsWith(name, "X-Tern-")) return false;
  if (istartsWith(name, "X-")) return isHeaderName(name);
  return std::any_of(kAllowed.begin(), kAllowed.end(),
                     [name](std::string_view a) { return iequals(a, name); });
}

bool validFieldValue(std::string_view value) {
  return std::all_of(value.begin(), value.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u == '\t' || (u >= 0x20 && u != 0x7f);
  });
}

CgiResponse parseCgiResponse(std::string out) {
  CgiResponse result;
  http::Response& r = result.response;
  // Set once it is known (a default assigned first would be a block of its own whenever
  // the output names its type).
  bool typed = false;
  std::vector<http::Header> headers;
  std::vector<std::string> refused;
  int status = 200;
  bool sawHeader = false;
  size_t pos = 0;
  while (pos < out.size() && pos < 16384) {
    size_t eol = out.find('\n', pos);
    if (eol == std::string::npos) break;
    std::string_view line(out.data() + pos, eol - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) {
      if (!sawHeader) break;
      r.status = status;
      r.headers = std::move(headers);
      if (!typed) r.contentType = "application/octet-stream";
      // The body is what follows, moved to the front of the output's own buffer.
      out.erase(0, eol + 1);
      r.body = std::move(out);
      result.refusedHeaders = std::move(refused);
      return result;
    }
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || !isHeaderName(line.substr(0, colon))) break;
    std::string_view name = line.substr(0, colon);
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    sawHeader = true;
    if (iequals(name, "Status")) {
      int code = 0;
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), code);
      if (ec != std::errc() || code < 200 || code > 599) break;
      status = code;
    } else if (!validFieldValue(value)) {
      refused.emplace_back(name);
    } else if (iequals(name, "Content-Type")) {
      r.contentType.assign(value);
      typed = true;
    } else if (guestHeaderAllowed(name)) {
      headers.push_back({std::string(name), std::string(value)});
    } else {
      refused.emplace_back(name);
    }
    pos = eol + 1;
  }
  // No header block: the whole output is the body (the response's fields are reset in
  // place: a new Response would allocate its content type again).
  r.status = 200;
  r.headers.clear();
  r.contentType = "application/octet-stream";
  r.body = std::move(out);
  return result;
}

}  // namespace tern::triggers
