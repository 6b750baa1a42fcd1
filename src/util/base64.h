#pragma once
// Standard base64 (RFC 4648 §4, with padding), for binary data in JSON documents.

#include <optional>
#include <string>
#include <string_view>

namespace tern {

std::string base64Encode(std::string_view bytes);
// The decoded bytes, or nullopt when `text` is not canonical padded base64.
std::optional<std::string> base64Decode(std::string_view text);

}  // namespace tern
