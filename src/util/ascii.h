#pragma once
// ASCII helpers for protocol text (header names, tokens), where case is ASCII's alone.

#include <strings.h>

#include <string_view>

namespace tern {

// Equal ignoring ASCII case (header names, tokens); the lengths first, so most unequal
// pairs cost one comparison.
inline bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace tern
