#pragma once
// The JSON form of a job, shared by GET /v1/invocations/ID and the callback POST so both
// say the same thing (docs/http-api.md). The output is text when it is valid UTF-8, else
// base64 with "output_encoding": "base64".

#include <string>
#include <string_view>

#include "async/async_queue.h"
#include "util/base64.h"
#include "util/utf8.h"

namespace tern::async {

std::string jobJson(const JobRecord& job);

using tern::isValidUtf8;  // util/utf8.h

using tern::base64Encode;  // util/base64.h

}  // namespace tern::async
