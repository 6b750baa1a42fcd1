#pragma once
// The JSON form of a job, shared by GET /v1/invocations/ID and the callback POST so both
// say the same thing (docs/http-api.md). The output is text when it is valid UTF-8, else
// base64 with "output_encoding": "base64".

#include <string>
#include <string_view>

#include "async/async_queue.h"

namespace tern::async {

std::string jobJson(const JobRecord& job);

// Whether `s` is well-formed UTF-8 (no overlongs, surrogates or values above U+10FFFF).
bool isValidUtf8(std::string_view s);

std::string base64Encode(std::string_view bytes);

}  // namespace tern::async
