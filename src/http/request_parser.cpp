#include "http/request_parser.h"

#include "util/ascii.h"

#include <algorithm>
#include <array>
#include <climits>
#include <cstring>

#include <fmt/format.h>

namespace tern::http {

namespace {

// A body's buffer up to this size is kept for the connection's next request.
constexpr size_t kKeptBodyBytes = 64u << 10;

RequestParser& self(http_parser* p) { return *static_cast<RequestParser*>(p->data); }

std::string_view trimmed(std::string_view s) {
  size_t first = s.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(" \t") - first + 1);
}

// A table of the bytes that are ASCII letters, digits or one of `others`.
constexpr std::array<bool, 256> alphanumericAnd(std::string_view others) {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c) t[c] = true;
  for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
  for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
  for (char c : others) t[static_cast<unsigned char>(c)] = true;
  return t;
}

// A token (RFC 9110 §5.6.2): one or more of the visible characters other than delimiters.
constexpr auto kTokenChars = alphanumericAnd("!#$%&'*+-.^_`|~");

bool isToken(std::string_view s) {
  if (s.empty()) return false;
  for (unsigned char c : s) {
    if (!kTokenChars[c]) return false;
  }
  return true;
}

// The bytes of a target parsePlainRequest takes (an origin-form path and query, RFC 9112
// §3.2.1): unreserved, sub-delims, ':', '@', '/', '?' and '%'. Anything else, a fragment
// ('#') or a byte outside ASCII say, goes to http_parser.
constexpr auto kPlainTargetChars = alphanumericAnd("-._~!$&'()*+,;=:@/?%");

// The bytes of a header value parsePlainRequest takes: visible ASCII, space and tab.
constexpr auto kPlainValueChars = [] {
  std::array<bool, 256> t{};
  for (int c = 0x20; c <= 0x7e; ++c) t[c] = true;
  t['\t'] = true;
  return t;
}();

// The headers http_parser acts on itself (framing, keep-alive, upgrade): a request with
// any of them goes to it.
bool framesTheMessage(std::string_view name) {
  switch (name.size()) {
    case 7:
      return iequals(name, "upgrade");
    case 10:
      return iequals(name, "connection");
    case 14:
      return iequals(name, "content-length");
    case 16:
      return iequals(name, "proxy-connection");
    case 17:
      return iequals(name, "transfer-encoding");
    default:
      return false;
  }
}

// Whether a comma-separated header value lists `token` (case-insensitive).
bool listsToken(const std::string* value, std::string_view token) {
  if (!value) return false;
  std::string_view list = *value;
  while (!list.empty()) {
    size_t comma = list.find(',');
    if (iequals(trimmed(list.substr(0, comma)), token)) return true;
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
  }
  return false;
}

}  // namespace

const http_parser_settings RequestParser::kSettings = [] {
  http_parser_settings s{};
  s.on_message_begin = &RequestParser::onMessageBegin;
  s.on_url = &RequestParser::onUrl;
  s.on_header_field = &RequestParser::onHeaderField;
  s.on_header_value = &RequestParser::onHeaderValue;
  s.on_headers_complete = &RequestParser::onHeadersComplete;
  s.on_body = &RequestParser::onBody;
  s.on_message_complete = &RequestParser::onMessageComplete;
  return s;
}();

RequestParser::RequestParser(size_t maxHeaderBytes, const Server::BodyLimit& bodyLimit)
    : maxHeaderBytes_(maxHeaderBytes), bodyLimit_(bodyLimit) {
  reset();
}

void RequestParser::reset() {
  // A request read by parsePlainRequest left http_parser as it was initialised.
  if (parserUsed_) {
    http_parser_init(&parser_, HTTP_REQUEST);
    parser_.data = this;
    parserUsed_ = false;
  }
  // The last request was moved out (or is dropped): its members are emptied in place, and a
  // large body's memory goes back.
  request_.method.clear();
  request_.target.clear();
  request_.path.clear();
  request_.query.clear();
  request_.headers.clear();
  if (request_.body.capacity() > kKeptBodyBytes) {
    std::string().swap(request_.body);
  } else {
    request_.body.clear();
  }
  request_.remoteAddress.clear();
  begun_ = inValue_ = headerDone_ = messageDone_ = headerChecked_ = bodyTooLarge_ = false;
  headerBytes_ = 0;
  bodyLimitBytes_ = 0;
  keepAlive_ = false;
  version_ = 11;
  httpMajor_ = httpMinor_ = 1;
  method_ = HTTP_GET;
  contentLength_ = ULLONG_MAX;
  chunked_ = upgrade_ = readPlain_ = false;
  refusal_.reset();
}

int RequestParser::onMessageBegin(http_parser* p) {
  self(p).begun_ = true;
  return 0;
}

int RequestParser::onUrl(http_parser* p, const char* at, size_t n) {
  self(p).request_.target.append(at, n);
  return 0;
}

int RequestParser::onHeaderField(http_parser* p, const char* at, size_t n) {
  auto& s = self(p);
  if (s.inValue_ || s.request_.headers.empty()) {
    if (s.request_.headers.empty()) s.request_.headers.reserve(8);
    s.request_.headers.emplace_back();
    s.inValue_ = false;
  }
  s.request_.headers.back().name.append(at, n);
  return 0;
}

int RequestParser::onHeaderValue(http_parser* p, const char* at, size_t n) {
  auto& s = self(p);
  s.inValue_ = true;
  s.request_.headers.back().value.append(at, n);
  return 0;
}

// Parsing stops here so that feed() checks the header before any of the body is taken.
int RequestParser::onHeadersComplete(http_parser* p) {
  auto& s = self(p);
  s.headerDone_ = true;
  s.httpMajor_ = p->http_major;
  s.httpMinor_ = p->http_minor;
  s.method_ = p->method;
  s.contentLength_ = p->content_length;
  s.chunked_ = (p->flags & F_CHUNKED) != 0;
  s.upgrade_ = p->upgrade != 0;
  http_parser_pause(p, 1);
  return 0;
}

// The plain form: "GET " or "HEAD ", a target of kPlainTargetChars beginning with '/',
// " HTTP/1.1" or " HTTP/1.0", then header lines of a token, ':', optional spaces or tabs
// and a value of visible ASCII, spaces and tabs, every line ending in CRLF, and none of
// the headers http_parser acts on (so no body, and keep-alive by the version alone). That
// is a subset of what http_parser accepts, and for it http_parser's callbacks would give
// the same method, target, names and values (a value from its first byte that is not a
// space or tab, to the CR). Tested against http_parser on generated requests
// (request_parser_test.cpp); the fuzz target, which feeds its inputs whole, goes through
// this path wherever it applies.
bool RequestParser::parsePlainRequest(std::string_view bytes, size_t& length) {
  // Within 8 KiB, well inside http_parser's own limit on a header (80 KiB).
  constexpr size_t kPlainHeaderBytes = 8192;
  unsigned method;
  size_t at;
  if (bytes.starts_with("GET /")) {
    method = HTTP_GET;
    at = 4;
  } else if (bytes.starts_with("HEAD /")) {
    method = HTTP_HEAD;
    at = 5;
  } else {
    return false;
  }
  // One pass; running out of bytes (a header not yet whole, or too long) is a "no".
  const char* p = bytes.data();
  const size_t n = std::min({bytes.size(), maxHeaderBytes_, kPlainHeaderBytes});
  auto byte = [p](size_t i) { return static_cast<unsigned char>(p[i]); };
  size_t targetEnd = at;
  while (targetEnd < n && kPlainTargetChars[byte(targetEnd)]) ++targetEnd;
  if (targetEnd + 11 > n || p[targetEnd] != ' ') return false;
  unsigned minor;
  if (std::memcmp(p + targetEnd + 1, "HTTP/1.1\r\n", 10) == 0) {
    minor = 1;
  } else if (std::memcmp(p + targetEnd + 1, "HTTP/1.0\r\n", 10) == 0) {
    minor = 0;
  } else {
    return false;
  }
  // Every line is checked before anything is kept.
  struct Field {
    std::string_view name, value;
  };
  Field fields[32];
  size_t count = 0;
  size_t i = targetEnd + 11;
  for (;;) {
    if (i + 2 > n) return false;
    if (p[i] == '\r') {  // the empty line that ends the header
      if (p[i + 1] != '\n') return false;
      i += 2;
      break;
    }
    if (count == std::size(fields)) return false;
    size_t nameStart = i;
    while (i < n && kTokenChars[byte(i)]) ++i;
    if (i == nameStart || i == n || p[i] != ':') return false;
    std::string_view name(p + nameStart, i - nameStart);
    if (framesTheMessage(name)) return false;
    ++i;
    while (i < n && (p[i] == ' ' || p[i] == '\t')) ++i;
    size_t valueStart = i;
    while (i < n && kPlainValueChars[byte(i)]) ++i;
    if (i + 2 > n || p[i] != '\r' || p[i + 1] != '\n') return false;
    fields[count++] = {name, std::string_view(p + valueStart, i - valueStart)};
    i += 2;
  }
  begun_ = true;
  request_.method = method == HTTP_GET ? "GET" : "HEAD";
  request_.target.assign(p + at, targetEnd - at);
  request_.headers.reserve(std::max<size_t>(count, 8));
  for (size_t k = 0; k < count; ++k) {
    request_.headers.push_back({std::string(fields[k].name), std::string(fields[k].value)});
  }
  httpMajor_ = 1;
  httpMinor_ = minor;
  method_ = method;
  contentLength_ = ULLONG_MAX;
  chunked_ = false;
  upgrade_ = false;
  readPlain_ = true;
  length = i;
  return true;
}

int RequestParser::onBody(http_parser* p, const char* at, size_t n) {
  auto& s = self(p);
  if (n > s.bodyLimitBytes_ - s.request_.body.size()) {
    s.bodyTooLarge_ = true;
    return 1;
  }
  s.request_.body.append(at, n);
  return 0;
}

// Parsing stops at the end of each request: bytes after it are the next one's.
int RequestParser::onMessageComplete(http_parser* p) {
  auto& s = self(p);
  s.messageDone_ = true;
  s.keepAlive_ = http_should_keep_alive(p) != 0;
  http_parser_pause(p, 1);
  return 0;
}

RequestParser::Status RequestParser::refuse(int status, const char* code, std::string message) {
  refusal_ = Refusal{status, code, std::move(message)};
  return Status::kRefused;
}

RequestParser::Status RequestParser::feed(std::string_view bytes, size_t& consumed) {
  consumed = 0;
  if (refusal_) return Status::kRefused;
  if (!begun_) {
    size_t length = 0;
    if (parsePlainRequest(bytes, length)) {
      headerBytes_ = length;
      headerChecked_ = true;
      if (!checkHeader()) return Status::kRefused;
      // No body: the request ends with its header.
      consumed = length;
      messageDone_ = true;
      keepAlive_ = httpMinor_ == 1;
      return Status::kDone;
    }
  }
  while (consumed < bytes.size()) {
    size_t give = bytes.size() - consumed;
    // Before the header is complete, no more than one byte past its limit is parsed: enough
    // to know the limit is exceeded, however much the client sent.
    if (!headerChecked_) give = std::min(give, maxHeaderBytes_ + 1 - headerBytes_);
    parserUsed_ = true;
    size_t n = http_parser_execute(&parser_, &kSettings, bytes.data() + consumed, give);
    consumed += n;
    if (!headerChecked_) headerBytes_ += n;
    if (headerDone_) {
      headerDone_ = false;
      // The parser stops before the header's last byte (the final LF), which it takes again.
      if (headerBytes_ + 1 > maxHeaderBytes_) {
        return refuse(431, "headers_too_large",
                      fmt::format("request headers exceed {} bytes", maxHeaderBytes_));
      }
      headerChecked_ = true;
      if (!checkHeader()) return Status::kRefused;
      http_parser_pause(&parser_, 0);
      continue;
    }
    if (messageDone_) return Status::kDone;
    if (auto err = HTTP_PARSER_ERRNO(&parser_); err != HPE_OK) {
      if (bodyTooLarge_) {
        return refuse(413, "body_too_large", "the request body exceeds its limit");
      }
      return refuse(400, "bad_request",
                    fmt::format("malformed HTTP request: {}", http_errno_description(err)));
    }
    if (!headerChecked_ && headerBytes_ > maxHeaderBytes_) {
      return refuse(431, "headers_too_large",
                    fmt::format("request headers exceed {} bytes", maxHeaderBytes_));
    }
  }
  return Status::kNeedMore;
}

bool RequestParser::checkHeader() {
  if (httpMajor_ != 1) {
    refuse(505, "http_version_not_supported",
           fmt::format("HTTP/{}.{} is not supported; this server speaks HTTP/1.1",
                       httpMajor_, httpMinor_));
    return false;
  }
  version_ = httpMinor_ == 0 ? 10 : 11;
  if (request_.method.empty()) request_.method = http_method_str(static_cast<http_method>(method_));
  size_t hosts = 0;
  std::vector<std::string_view> codings;
  for (auto& h : request_.headers) {
    // http_parser lets a space through in a name; a proxy in front might read such a field
    // (say "Content-Length : 5") differently, so it is refused.
    if (!isToken(h.name)) {
      refuse(400, "bad_request", "a header name is empty or not a token (RFC 9110 §5.1)");
      return false;
    }
    // RFC 9110 §5.5: a field value has no leading or trailing whitespace.
    auto blank = [](char c) { return c == ' ' || c == '\t'; };
    if (!h.value.empty() && (blank(h.value.front()) || blank(h.value.back()))) {
      h.value = std::string(trimmed(h.value));
    }
    if (iequals(h.name, "host")) ++hosts;
    if (iequals(h.name, "transfer-encoding")) codings.push_back(h.value);
  }
  if (auto refusal = framingRefusal(version_, hosts, codings)) {
    refusal_ = std::move(*refusal);
    return false;
  }
  if (request_.target.empty()) {
    refuse(400, "bad_request", "the request has no target");
    return false;
  }
  if (request_.target.find("://") != std::string::npos) {
    request_.target = originForm(request_.target);
  }
  std::string_view t = request_.target;
  size_t q = t.find('?');
  auto path = percentDecode(t.substr(0, q));
  if (!path) {
    refuse(400, "bad_request", "malformed percent-encoding in the request path");
    return false;
  }
  // A NUL would end the path wherever it is handed on as a C string (PATH_INFO).
  if (path->find('\0') != std::string::npos) {
    refuse(400, "bad_request", "the request path contains a NUL byte (%00)");
    return false;
  }
  request_.path = std::move(*path);
  if (q != std::string_view::npos) request_.query = std::string(t.substr(q + 1));
  // Without a Content-Length http_parser leaves ULLONG_MAX. A request with neither a length
  // nor chunked coding has no body (RFC 9112 §6.3), and its route's limit is not needed.
  if (contentLength_ == ULLONG_MAX && !chunked_) return true;
  bodyLimitBytes_ = bodyLimit_(request_.method, request_.target);
  // Chunked bodies are counted as they come (onBody).
  if (uint64_t len = contentLength_; len != ULLONG_MAX && !chunked_) {
    if (len > bodyLimitBytes_) {
      refuse(413, "body_too_large",
             fmt::format("the request body is {} bytes, the limit is {} bytes", len,
                         bodyLimitBytes_));
      return false;
    }
    request_.body.reserve(static_cast<size_t>(len));
  }
  return true;
}

bool RequestParser::isWebSocketUpgrade() const {
  // http_parser sets `upgrade` when it saw an Upgrade header and "upgrade" among the
  // Connection header's tokens: without both, the headers need not be looked up.
  return upgrade_ && version_ >= 11 && method_ == HTTP_GET &&
         listsToken(request_.header("connection"), "upgrade") &&
         listsToken(request_.header("upgrade"), "websocket");
}

std::variant<Request, Refusal> parseRequest(std::string_view bytes, size_t maxHeaderBytes,
                                           const Server::BodyLimit& bodyLimit) {
  RequestParser parser(maxHeaderBytes, bodyLimit);
  size_t consumed = 0;
  switch (parser.feed(bytes, consumed)) {
    case RequestParser::Status::kDone:
      return std::move(parser.request());
    case RequestParser::Status::kRefused:
      return parser.refusal();
    case RequestParser::Status::kNeedMore:
      break;
  }
  return Refusal{400, "bad_request", "the request ends before it is complete"};
}

}  // namespace tern::http
