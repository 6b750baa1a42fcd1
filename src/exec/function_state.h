#pragma once
// Functions' durable key-value state as the invocation path uses it (the host API's kv_*
// calls, through HostContext): one namespace per function, or per function and device.
// exec depends only on this interface; store::KvStore (<data>/kv.db) implements it, so
// the dependency points from store down to exec.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/error.h"

namespace tern::exec {

// The namespace of `function`'s state for one device: "FUNCTION@DEVICE". Function names
// have no '@', so it never meets a function's own namespace.
std::string deviceNamespace(std::string_view function, std::string_view device);

class FunctionState {
 public:
  virtual ~FunctionState() = default;

  struct Page {
    std::vector<std::string> keys;  // byte order
    bool more = false;              // further keys match
  };

  // Errors of every call: kInvalidArgument (empty key), kBodyTooLarge (key or value over
  // its limit), kResourceExhausted (quota), kIo (the storage).
  virtual Result<std::optional<std::string>> get(std::string_view ns, std::string_view key) = 0;
  virtual Result<void> set(std::string_view ns, std::string_view key, std::string_view value) = 0;
  // Whether the key existed.
  virtual Result<bool> remove(std::string_view ns, std::string_view key) = 0;
  // Keys starting with `prefix` (empty: all) that sort after `after` (empty: from the
  // first), at most `limit`.
  virtual Result<Page> list(std::string_view ns, std::string_view prefix, std::string_view after,
                            size_t limit) = 0;
};

}  // namespace tern::exec
