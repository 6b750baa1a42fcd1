#pragma once
// The one rule for function names, which every layer checks (the registry, capabilities,
// peer messages, devices): 1 to 63 of a-z, 0-9 and '-', not starting with '-'. Names are
// safe in paths, URLs, metric labels and key-value namespaces ("NAME@DEVICE").

#include <string_view>

namespace tern {

inline bool isFunctionName(std::string_view name) {
  if (name.empty() || name.size() > 63) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c == '-' && i > 0);
    if (!ok) return false;
  }
  return true;
}

}  // namespace tern
