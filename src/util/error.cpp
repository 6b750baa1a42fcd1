#include "util/error.h"

#include <array>

namespace tern {

namespace {

// The one table of error kinds. CLI exit statuses are documented in docs/cli.md; they stay
// above the range a guest commonly uses for its own exit codes (0-63).
constexpr std::array<ErrorKindInfo, 20> kErrorKinds{{
    {ErrorCode::kInvalidArgument, "invalid_argument", "invalid argument", 64, 400},
    {ErrorCode::kInvalidModule, "invalid_module", "invalid module", 65, 422},
    {ErrorCode::kModuleTooLarge, "module_too_large", "module too large", 66, 413},
    {ErrorCode::kCompileFailed, "compile_failed", "compile failed", 67, 500},
    {ErrorCode::kTrap, "trap", "trap", 68, 500},
    {ErrorCode::kTimeout, "timeout", "timeout", 69, 504},
    {ErrorCode::kMemoryLimit, "memory_limit", "memory limit", 70, 500},
    {ErrorCode::kOutputLimit, "output_limit", "output limit", 72, 500},
    {ErrorCode::kResourceExhausted, "resource_exhausted", "resource exhausted", 73, 503},
    {ErrorCode::kIo, "io_error", "i/o error", 74, 500},
    {ErrorCode::kNotFound, "not_found", "not found", 76, 404},
    {ErrorCode::kConflict, "conflict", "conflict", 77, 409},
    {ErrorCode::kUnauthorized, "unauthorized", "unauthorized", 78, 401},
    {ErrorCode::kForbidden, "forbidden", "forbidden", 83, 403},
    {ErrorCode::kRateLimited, "rate_limited", "rate limited", 84, 429},
    {ErrorCode::kSaturated, "saturated", "saturated", 79, 429},
    {ErrorCode::kBodyTooLarge, "body_too_large", "body too large", 80, 413},
    {ErrorCode::kUnavailable, "unavailable", "unavailable", 81, 503},
    {ErrorCode::kFunctionFailed, "function_failed", "function failed", 82, 500},
    {ErrorCode::kInternal, "internal", "internal error", 75, 500},
}};

}  // namespace

const ErrorKindInfo& errorKind(ErrorCode code) {
  for (const auto& k : kErrorKinds) {
    if (k.code == code) return k;
  }
  return kErrorKinds.back();
}

std::optional<ErrorCode> errorCodeByName(std::string_view name) {
  for (const auto& k : kErrorKinds) {
    if (k.name == name) return k.code;
  }
  return std::nullopt;
}

std::string Error::describe() const {
  std::string out(errorKind(code_).summary);
  if (!message_.empty()) {
    out += ": ";
    out += message_;
  }
  return out;
}

}  // namespace tern
