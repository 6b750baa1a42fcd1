// Fuzz target: HTTP/1.1 requests as the server reads them (src/http): RequestParser with
// the server's header limit, framing rules (framingRefusal), body limit by route,
// origin-form target and decoded path (parseRequest), then the query helpers routes use
// (queryValues, uintParam, checkParamNames). A request that parses has a path without NUL,
// a body within its route's limit and a target without a fragment of the absolute form;
// every refusal is a 4xx/5xx with a code and a message.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "fuzz_check.h"
#include "http/http_server.h"
#include "http/request_rules.h"

using namespace tern::http;

namespace {

// The gateway's limits by route, smaller so the fuzzer reaches them.
size_t bodyLimit(std::string_view method, std::string_view target) {
  if (target.starts_with("/fn/")) return 4096;
  if (method == "PUT" && target.starts_with("/v1/functions/")) return 65536;
  return 1024;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto parsed = parseRequest(bytes, 2048, bodyLimit);
  if (auto* refusal = std::get_if<Refusal>(&parsed)) {
    FUZZ_CHECK(refusal->status >= 400 && refusal->status <= 599);
    FUZZ_CHECK(refusal->code && *refusal->code && !refusal->message.empty());
    return 0;
  }
  const Request& req = std::get<Request>(parsed);
  FUZZ_CHECK(!req.method.empty());
  FUZZ_CHECK(req.path.find('\0') == std::string::npos);
  FUZZ_CHECK(req.body.size() <= bodyLimit(req.method, req.target));
  FUZZ_CHECK(originForm(req.target) == req.target);
  FUZZ_CHECK(req.target.find('?') == std::string::npos || req.target.ends_with("?" + req.query));
  for (const auto& h : req.headers) {
    const std::string* found = req.header(h.name);
    FUZZ_CHECK(found != nullptr);
  }
  // What routes do with the query.
  for (const auto& v : queryValues(req.query, "timeout")) (void)v;
  auto n = uintParam(req.query, "limit", 10, 1, 1000);
  if (n.ok()) FUZZ_CHECK(*n >= 1 && *n <= 1000);
  else FUZZ_CHECK(!n.error().message().empty());
  static constexpr std::string_view kKnown[] = {"limit", "after", "timeout"};
  auto names = checkParamNames(req.query, kKnown);
  if (!names.ok()) FUZZ_CHECK(!names.error().message().empty());
  if (auto decoded = percentDecode(req.query, true)) (void)decoded;
  return 0;
}
