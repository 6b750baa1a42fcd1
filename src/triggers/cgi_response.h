#pragma once
// The CGI response convention for functions called over HTTP: stdout may start with a header
// block ("Status: 201 Created", "Content-Type: ...", other "Name: value" lines, then an empty
// line) that sets the response's status and headers; the rest is the body.
//
// A function's output is untrusted. The framing of the response (Content-Length,
// Transfer-Encoding, Connection and the other hop-by-hop headers) belongs to the node, and
// so does every X-Tern-* header, so a guest header passes only when guestHeaderAllowed says
// so; everything else is refused and reported, never sent.

#include <string>
#include <string_view>
#include <vector>

#include "http/http_server.h"

namespace tern::triggers {

// Whether a function may set the response header `name` (case-insensitive): a fixed list of
// end-to-end headers (caching, content metadata, cookies, redirects, CORS, security
// policies) and any other "X-" header except tern's own "X-Tern-" ones.
bool guestHeaderAllowed(std::string_view name);

// Whether `value` is a valid field value (RFC 9110 5.5): visible characters, obs-text, spaces
// and tabs only; no CR, LF, NUL or other control characters.
bool validFieldValue(std::string_view value);

struct CgiResponse {
  http::Response response;
  // Header lines of the block that were not sent: names not allowed for guests, invalid
  // values. Their names, for the node's count and the function's log.
  std::vector<std::string> refusedHeaders;
};

// Splits a function's stdout into status, headers and body when it starts with a header
// block within its first 16 KiB; otherwise the whole output is the body
// (application/octet-stream). A Status outside 200-599 (an interim 1xx would desynchronise
// the connection) means there is no header block.
CgiResponse parseCgiResponse(std::string stdoutData);

}  // namespace tern::triggers
