#pragma once
// The rules for names that every layer checks, one copy each.
//
// Function names (the registry, capabilities, peer messages, providers, devices, the CLI):
// 1 to 63 of a-z, 0-9 and '-', not starting with '-'. They are safe in paths, URLs, metric
// labels and key-value namespaces ("NAME@DEVICE").
//
// Node and site names (the cluster's node ids, sites in placements): 1 to 63 of a-z, 0-9
// and '-'. They are safe as NATS subject tokens.

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

inline bool isNodeName(std::string_view name) {
  if (name.empty() || name.size() > 63) return false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return true;
}

}  // namespace tern
