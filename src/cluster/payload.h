#pragma once
// The payload of invocation and async-job messages (docs/design/cluster.md, "Messages"):
// a 4-byte big-endian header length, a JSON object of that length, then raw bytes (the
// request body, the function's output, the job's body).

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "util/error.h"

namespace tern::cluster {

std::string framePayload(const nlohmann::json& header, std::string_view raw);

// The header, with `raw` set to the bytes after it. Errors: kInvalidArgument naming what is
// wrong (too short, a length beyond the payload, a header that is not a JSON object).
Result<nlohmann::json> unframePayload(std::string_view payload, std::string_view& raw);

}  // namespace tern::cluster
