// Fuzz target: a function's stdout as the gateway turns it into an HTTP response
// (src/triggers/cgi_response). Whatever the guest writes, the response has a status in
// 200-599, only headers a guest may set with valid values, and a body that is the output
// itself or its tail after the header block.

#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_check.h"
#include "triggers/cgi_response.h"

using namespace tern::triggers;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string out(reinterpret_cast<const char*>(data), size);
  CgiResponse r = parseCgiResponse(out);
  FUZZ_CHECK(r.response.status >= 200 && r.response.status <= 599);
  for (const auto& h : r.response.headers) {
    FUZZ_CHECK(guestHeaderAllowed(h.name));
    FUZZ_CHECK(validFieldValue(h.value));
    FUZZ_CHECK(!h.name.empty() && h.name.find_first_of(":\r\n ") == std::string::npos);
  }
  FUZZ_CHECK(validFieldValue(r.response.contentType));
  FUZZ_CHECK(r.response.body.size() <= out.size());
  FUZZ_CHECK(out.ends_with(r.response.body));
  return 0;
}
