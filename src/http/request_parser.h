#pragma once
// Internal to src/http: the incremental HTTP/1.1 request parser every connection uses (plain
// and TLS), on Node.js's http_parser (Debian's libhttp-parser). Bytes are fed as they
// arrive; the request is built in place (method, target, headers, body), the header is
// checked once complete (size limit, framing rules, the route's body limit) before any of
// the body is taken, and parsing stops at the end of each request so that a pipelined
// next one stays unread. A whole GET or HEAD request in the plain form nearly every client
// sends is read without http_parser, with the same result (parsePlainRequest).

#include <http_parser.h>

#include <climits>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "http/http_server.h"
#include "http/request_rules.h"

namespace tern::http {

class RequestParser {
 public:
  enum class Status {
    kNeedMore,  // every byte was taken and the request is not complete yet
    kDone,      // a request is complete: request(), keepAlive(), ...
    kRefused,   // the request cannot be served: refusal()
  };

  // `bodyLimit` must outlive the parser.
  RequestParser(size_t maxHeaderBytes, const Server::BodyLimit& bodyLimit);
  RequestParser(const RequestParser&) = delete;
  RequestParser& operator=(const RequestParser&) = delete;

  // Parses from the start of `bytes`; `consumed` says how many were taken (all of them for
  // kNeedMore; up to the request's end for kDone, the rest belongs to the next request).
  Status feed(std::string_view bytes, size_t& consumed);

  // Whether any byte of a request has been taken since the last reset().
  bool begun() const { return begun_; }
  // For the next request on the same connection. After kRefused, only the connection's
  // close is left: a parser is not reset after a refusal.
  void reset();

  // Valid after kDone.
  Request& request() { return request_; }
  bool keepAlive() const { return keepAlive_; }
  unsigned version() const { return version_; }  // 10 or 11
  bool isHead() const { return method_ == HTTP_HEAD; }
  // GET with "Connection: upgrade" and "Upgrade: websocket" (RFC 6455 §4.2.1).
  bool isWebSocketUpgrade() const;
  // Whether the request was read by parsePlainRequest rather than http_parser (for tests).
  bool readPlain() const { return readPlain_; }

  // Valid after kRefused.
  const Refusal& refusal() const { return *refusal_; }

 private:
  static int onMessageBegin(http_parser* p);
  static int onUrl(http_parser* p, const char* at, size_t n);
  static int onHeaderField(http_parser* p, const char* at, size_t n);
  static int onHeaderValue(http_parser* p, const char* at, size_t n);
  static int onHeadersComplete(http_parser* p);
  static int onBody(http_parser* p, const char* at, size_t n);
  static int onMessageComplete(http_parser* p);
  static const http_parser_settings kSettings;

  // When `bytes` begin with a whole GET or HEAD request whose every line is in the plain
  // form (see request_parser.cpp), reads it into request_ and the fields below, with what
  // http_parser would have given, and sets `length` to its size. False, with nothing
  // changed, for anything else: http_parser reads that.
  bool parsePlainRequest(std::string_view bytes, size_t& length);
  // The header is complete: framing, target, path, body limit. False if refused.
  bool checkHeader();
  Status refuse(int status, const char* code, std::string message);

  http_parser parser_;
  size_t maxHeaderBytes_;
  const Server::BodyLimit& bodyLimit_;
  Request request_;
  bool begun_ = false;
  bool inValue_ = false;      // the last header callback was for a value
  bool headerDone_ = false;   // paused after the header, to check it
  bool messageDone_ = false;  // paused at the end of the request
  bool headerChecked_ = false;
  size_t headerBytes_ = 0;  // bytes of the header taken so far
  size_t bodyLimitBytes_ = 0;
  bool bodyTooLarge_ = false;
  bool keepAlive_ = false;
  unsigned version_ = 11;
  // What the request line and header said, from http_parser or parsePlainRequest.
  unsigned httpMajor_ = 1, httpMinor_ = 1;
  unsigned method_ = HTTP_GET;             // an http_method
  uint64_t contentLength_ = ULLONG_MAX;    // none given
  bool chunked_ = false;
  bool upgrade_ = false;  // an Upgrade header, and "upgrade" in Connection
  bool readPlain_ = false;
  bool parserUsed_ = true;  // http_parser has been fed since it was initialised
  std::optional<Refusal> refusal_;
};

}  // namespace tern::http
