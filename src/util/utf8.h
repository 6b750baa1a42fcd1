#pragma once
// The one UTF-8 check (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF.

#include <string_view>

namespace tern {

bool isValidUtf8(std::string_view s);

}  // namespace tern
