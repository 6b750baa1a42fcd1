#pragma once
// The "tern" host module (host API version 2): the calls a function makes to its node
// beyond WASI: durable key-value state, MQTT publish, updates to stream topics, synchronous
// invoke of another function, structured log, and the text of the last failure. The ABI (signatures, memory contract,
// statuses, limits) is specified in docs/design/host-api.md; sdk/guest has the guest side.
//
// This file is the engine's half: host_api.cpp reads and writes guest memory (every
// pointer checked first) and turns each call into a HostHandler call. The handler, which
// applies capabilities and reaches the node's services, belongs to exec (HostContext).

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "wasm/host_imports.h"

namespace tern::wasm {

// Version 2 added stream_publish; a version only adds functions.
inline constexpr uint32_t kHostApiVersion = 2;

// The i32 every tern host call returns (last_error and host_api_version excepted). Stable:
// part of the ABI.
enum class HostStatus : uint32_t {
  kOk = 0,
  kNotFound = 1,         // no such key / function
  kDenied = 2,           // outside the function's capabilities
  kTooLarge = 3,         // a key, value, topic or payload exceeds its limit
  kBufferTooSmall = 4,   // the result does not fit; the needed size is reported
  kUnavailable = 5,      // the service is not available (no MQTT broker, no node)
  kDepthExceeded = 6,    // nested invokes deeper than the limit
  kTimeout = 7,          // the callee ran out of time
  kInvalidArgument = 8,  // a malformed key, topic, name or level
  kFailed = 9,           // the callee exited non-zero, trapped or hit a limit
  kIo = 10,              // the node's storage failed
  kQuotaExceeded = 11,   // the function's key-value quota (bytes or keys) is used up
  kFault = 12,           // a pointer range lies outside linear memory; nothing was touched
};

// Stable lower-case name: "ok", "not_found", "buffer_too_small", ...
const char* hostStatusName(HostStatus status);

// The outcome of a HostHandler call: kOk, or a failure status and the text the guest
// reads with last_error.
struct HostReply {
  HostStatus status = HostStatus::kOk;
  std::string error;

  static HostReply ok() { return {}; }
  static HostReply fail(HostStatus s, std::string message) { return {s, std::move(message)}; }
};

struct KvListPage {
  std::vector<std::string> keys;  // in byte order
  bool more = false;              // keys beyond these match the prefix
};

// The services behind the host calls for one invocation. Views passed in point into guest
// memory and are valid only during the call. Called on the invocation's thread inside a
// host call: implementations should not throw (an exception traps the guest with an
// internal error; it never unwinds through generated code), and may run another guest
// (invoke) since Engine::runGuest nests.
class HostHandler {
 public:
  virtual ~HostHandler() = default;
  virtual HostReply kvGet(std::string_view key, std::string& value) = 0;
  virtual HostReply kvSet(std::string_view key, std::string_view value) = 0;
  virtual HostReply kvDelete(std::string_view key) = 0;
  // Keys starting with `prefix` and greater than `after` (empty: from the first), at most
  // `limit` of them.
  virtual HostReply kvList(std::string_view prefix, std::string_view after, size_t limit,
                           KvListPage& page) = 0;
  virtual HostReply publish(std::string_view topic, std::string_view payload) = 0;
  // Appends an update to the stream topic `topic`; `seq` is its sequence number.
  virtual HostReply streamPublish(std::string_view topic, std::string_view payload,
                                  uint64_t& seq) = 0;
  // Runs `function` with `input` as stdin; `output` is its stdout (also when it failed).
  virtual HostReply invoke(std::string_view function, std::string_view input,
                           std::string& output) = 0;
};

// ABI limits enforced by the engine side (the services enforce their own on top).
inline constexpr uint32_t kHostLogMessageMax = 4096;  // longer messages are truncated
inline constexpr uint32_t kHostListKeysMax = 1000;     // keys per kv_list call
inline constexpr uint32_t kHostLastErrorMax = 4096;    // last_error texts are cut to this

// Every function of the "tern" module with its signature (defined in host_api.cpp).
std::span<const HostFunction> ternFunctions();

}  // namespace tern::wasm
