#pragma once
// Untrusted text (a requested function name, a module hash) as it appears in an error
// message: in double quotes, with quotes, backslashes and bytes outside printable ASCII
// escaped as \xNN, and cut after `maxChars` input bytes, so a message never carries control
// characters or megabytes of input into logs and HTTP responses.

#include <cstddef>
#include <string>
#include <string_view>

namespace tern::store {

inline std::string quoteUntrusted(std::string_view text, size_t maxChars = 80) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (size_t i = 0; i < text.size() && i < maxChars; ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
  out.push_back('"');
  if (text.size() > maxChars) out += "...";
  return out;
}

}  // namespace tern::store
