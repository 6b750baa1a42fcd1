#pragma once
// Untrusted text (a requested function name, a trigger spec, a topic, a path) as it appears
// in an error message or a log line: in double quotes, with quotes, backslashes and bytes
// outside printable ASCII escaped as \xNN, and cut after `maxBytes` input bytes (then
// "..."), so a message never carries control characters or megabytes of input into logs
// and HTTP responses. The one copy for every layer.

#include <cstddef>
#include <string>
#include <string_view>

namespace tern {

inline std::string quoteUntrusted(std::string_view text, size_t maxBytes = 80) {
  constexpr std::string_view kHex = "0123456789abcdef";
  std::string out = "\"";
  for (size_t i = 0; i < text.size() && i < maxBytes; ++i) {
    auto byte = static_cast<unsigned char>(text[i]);
    if (byte >= 0x20 && byte < 0x7f && byte != '"' && byte != '\\') {
      out.push_back(static_cast<char>(byte));
    } else {
      out += "\\x";
      out.push_back(kHex[byte >> 4]);
      out.push_back(kHex[byte & 0xf]);
    }
  }
  out.push_back('"');
  if (text.size() > maxBytes) out += "...";
  return out;
}

}  // namespace tern
