#pragma once
// What the server decides about a request from its text alone: pure functions, kept apart
// from the parser and the sockets so they are tested from tables (tests/unit/http/http_server_test.cpp).
// originForm, percentDecode and queryValues are declared in http_server.h (the gateway uses
// the latter two).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "http/http_server.h"
#include "util/error.h"

namespace tern::http {

// Why a request cannot be served, decided from its header before any of the body is read.
struct Refusal {
  int status;
  const char* code;
  std::string message;
};

// The framing rules of RFC 9112 tern enforces. Host (§3.2): exactly one in an HTTP/1.1
// request, at most one in HTTP/1.0. Transfer-Encoding (§6, the values of every such field
// in order): tern decodes chunked and no other coding, so a body in another coding would be
// taken for something it is not (501), and when chunked is not the final coding the body's
// length is unknown and the request cannot be framed at all (400).
std::optional<Refusal> framingRefusal(unsigned version, size_t hosts,
                                      const std::vector<std::string_view>& transferEncodings);

// Parses one request from `bytes` as a connection does (header limit, framing rules, the
// route's body limit from `bodyLimit`, origin-form target, decoded path), without a socket:
// the request, or the refusal a connection would answer with. Bytes that end before the
// request does are refused here (a connection would wait for more); bytes after it are
// ignored (a connection would read them as the next request). For the fuzz target and tests.
std::variant<Request, Refusal> parseRequest(std::string_view bytes, size_t maxHeaderBytes,
                                           const Server::BodyLimit& bodyLimit);

// An unsigned query parameter (given at most once) within [lo, hi]; `fallback` if absent.
// Errors: kInvalidArgument naming the parameter.
Result<uint32_t> uintParam(std::string_view query, const char* key, uint32_t fallback,
                           uint32_t lo, uint32_t hi);

// Refuses a query parameter a route does not know (`known1` and `known2` together): a
// misspelt setting is an error, never the default silently in its place.
Result<void> checkParamNames(std::string_view query, std::span<const std::string_view> known1,
                             std::span<const std::string_view> known2 = {});

}  // namespace tern::http
