#pragma once
// A device's identity (docs/design/devices.md): what a device sends as X-Tern-Device and
// nodes key its state by.

#include <string_view>

namespace tern {

// Whether `id` may name a device: 8-64 of A-Z, a-z, 0-9, '-' and '_'.
inline bool isDeviceId(std::string_view id) {
  return id.size() >= 8 && id.size() <= 64 &&
         id.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
             std::string_view::npos;
}

}  // namespace tern
