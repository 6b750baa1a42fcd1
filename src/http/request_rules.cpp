#include "http/request_rules.h"

#include <strings.h>

#include <algorithm>
#include <charconv>

#include <string>
#include <string_view>

#include <fmt/format.h>

namespace tern::http {

std::optional<std::string> percentDecode(std::string_view s, bool plusIsSpace) {
  if (s.find('%') == std::string_view::npos && (!plusIsSpace || s.find('+') == std::string_view::npos)) {
    return std::string(s);  // nothing to decode: most paths
  }
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      auto hex = [](char h) -> int {
        if (h >= '0' && h <= '9') return h - '0';
        if (h >= 'a' && h <= 'f') return h - 'a' + 10;
        if (h >= 'A' && h <= 'F') return h - 'A' + 10;
        return -1;
      };
      int hi = hex(s[i + 1]), lo = hex(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plusIsSpace) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::vector<std::string> queryValues(std::string_view query, std::string_view key) {
  std::vector<std::string> out;
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    size_t eq = pair.find('=');
    auto k = percentDecode(pair.substr(0, eq), true);
    if (!k || *k != key) continue;
    auto v = percentDecode(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1),
                           true);
    if (v) out.push_back(std::move(*v));
  }
  return out;
}

std::string originForm(std::string_view target) {
  for (std::string_view scheme : {std::string_view("http://"), std::string_view("https://")}) {
    if (target.size() < scheme.size() ||
        strncasecmp(target.data(), scheme.data(), scheme.size()) != 0) {
      continue;
    }
    std::string_view rest = target.substr(scheme.size());
    size_t end = rest.find_first_of("/?");
    if (end == std::string_view::npos) return "/";
    std::string out(rest.substr(end).front() == '/' ? "" : "/");  // "http://h?q" is "/?q"
    out += rest.substr(end);
    return out;
  }
  return std::string(target);
}

std::optional<Refusal> framingRefusal(unsigned version, size_t hosts,
                                      const std::vector<std::string_view>& transferEncodings) {
  if (hosts > 1) return Refusal{400, "bad_request", "the request has more than one Host header"};
  if (hosts == 0 && version >= 11) {
    return Refusal{400, "bad_request", "an HTTP/1.1 request must have a Host header"};
  }
  if (transferEncodings.empty()) return std::nullopt;
  if (version < 11) {
    return Refusal{400, "bad_request", "Transfer-Encoding is not allowed in an HTTP/1.0 request"};
  }
  std::vector<std::string_view> codings;
  for (std::string_view list : transferEncodings) {
    while (!list.empty()) {
      size_t comma = list.find(',');
      std::string_view coding = list.substr(0, comma);
      list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
      size_t first = coding.find_first_not_of(" \t");
      if (first == std::string_view::npos) continue;
      codings.push_back(coding.substr(first, coding.find_last_not_of(" \t") - first + 1));
    }
  }
  auto isChunked = [](std::string_view c) {
    return c.size() == 7 && strncasecmp(c.data(), "chunked", 7) == 0;
  };
  if (codings.empty() || !isChunked(codings.back())) {
    return Refusal{400, "bad_request",
                   "the body's length cannot be determined: chunked is not the final transfer "
                   "coding"};
  }
  if (codings.size() == 1) return std::nullopt;
  if (isChunked(codings.front())) {
    return Refusal{400, "bad_request", "the chunked transfer coding is applied more than once"};
  }
  return Refusal{501, "not_implemented",
                 fmt::format("the transfer coding \"{}\" is not supported; only chunked is",
                             codings.front())};
}

Result<uint32_t> uintParam(std::string_view query, const char* key, uint32_t fallback,
                           uint32_t lo, uint32_t hi) {
  auto values = http::queryValues(query, key);
  if (values.empty()) return fallback;
  if (values.size() > 1) {
    return Error(ErrorCode::kInvalidArgument, fmt::format("{} may be given once", key));
  }
  const std::string& v = values[0];
  uint32_t out = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (ec != std::errc() || end != v.data() + v.size() || out < lo || out > hi) {
    return Error(ErrorCode::kInvalidArgument,
                 fmt::format("{} must be an integer in {}..{}, got \"{}\"", key, lo, hi, v));
  }
  return out;
}

Result<void> checkParamNames(std::string_view query, std::span<const std::string_view> known1,
                             std::span<const std::string_view> known2) {
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    auto key = http::percentDecode(pair.substr(0, pair.find('=')), true);
    if (!key) return Error(ErrorCode::kInvalidArgument, "malformed percent-encoding in the query");
    auto is = [&](std::string_view k) { return k == *key; };
    if (std::none_of(known1.begin(), known1.end(), is) &&
        std::none_of(known2.begin(), known2.end(), is)) {
      std::string names;
      for (auto k : known1) names += fmt::format("{}{}", names.empty() ? "" : ", ", k);
      for (auto k : known2) names += fmt::format(", {}", k);
      return Error(ErrorCode::kInvalidArgument,
                   fmt::format("unknown parameter \"{}\" (known: {})", *key, names));
    }
  }
  return {};
}

}  // namespace tern::http
