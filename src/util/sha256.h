#pragma once
// SHA-256 digests (OpenSSL's libcrypto), used to address modules and compiled objects by
// content.

#include <span>
#include <string>
#include <string_view>

namespace tern {

// Lower-case hex SHA-256 of the bytes.
std::string sha256Hex(std::span<const unsigned char> bytes);
std::string sha256Hex(std::string_view text);

}  // namespace tern
