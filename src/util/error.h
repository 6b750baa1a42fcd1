#pragma once
// Error kinds shared by the engine, the CLI and (later) the HTTP API. Each kind is defined
// once, in kErrorKinds (error.cpp): its stable code string, its CLI exit status and its HTTP
// status.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace tern {

enum class ErrorCode : uint8_t {
  kInvalidArgument,  // a caller passed a bad option or value
  kInvalidModule,    // the wasm binary is malformed, invalid or imports something unknown
  kModuleTooLarge,   // the wasm binary exceeds the size limit, or its compile the compile limits
  kCompileFailed,    // wasm2c or the C compiler failed on a valid module
  kTrap,             // the guest trapped (out-of-bounds, unreachable, ...)
  kTimeout,          // the invocation ran past its deadline and was preempted
  kMemoryLimit,      // the guest needed more linear memory than its limit allows
  kOutputLimit,      // the guest wrote more output than its limit allows
  kResourceExhausted,  // a node-wide resource (sandbox slots) is exhausted
  kIo,               // a file or process operation failed
  kNotFound,         // no such function, version or invocation
  kConflict,         // the request conflicts with the current state (e.g. no earlier version)
  kUnauthorized,     // missing, malformed, unknown, revoked or expired bearer token
  kForbidden,        // a valid token without the scope the request needs
  kRateLimited,      // a token's request rate limit is reached; retry later
  kSaturated,        // the node or the function is at capacity; retry later
  kBodyTooLarge,     // a request body exceeds its limit
  kUnavailable,      // the node is unreachable or shutting down
  kFunctionFailed,   // the function exited with a non-zero code
  kInternal,         // a bug in tern
};

struct ErrorKindInfo {
  ErrorCode code;
  std::string_view name;     // stable machine-readable code, e.g. "invalid_module"
  std::string_view summary;  // short human prefix, e.g. "invalid module"
  int exitStatus;            // status of `tern run` and other CLI commands
  int httpStatus;
};

const ErrorKindInfo& errorKind(ErrorCode code);
// The kind whose stable code string is `name` (as errorKind(c).name), if any.
std::optional<ErrorCode> errorCodeByName(std::string_view name);

// An error: a kind plus a message that says what was wrong and where.
class Error {
 public:
  Error(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}

  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "invalid module: unknown import env.foo"
  std::string describe() const;

 private:
  ErrorCode code_;
  std::string message_;
};

// Value-or-error for fallible operations on request paths.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}  // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

// Result without a value.
template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return error_; }

 private:
  Error error_{ErrorCode::kInternal, ""};
  bool ok_ = true;
};

}  // namespace tern
