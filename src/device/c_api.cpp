// The C boundary of the device runtime (include/tern/device.h): every entry point catches
// everything, so no exception crosses into C.

#include <cstdlib>
#include <cstring>
#include <exception>
#include <new>

#include "device/device.h"
#include "tern/device.h"

struct tern_device {
  std::unique_ptr<tern::device::Device> device;
};

namespace {

using tern::ErrorCode;

void message(char* buf, size_t len, const std::string& text) {
  if (!buf || len == 0) return;
  size_t n = std::min(len - 1, text.size());
  std::memcpy(buf, text.data(), n);
  buf[n] = '\0';
}

tern_status statusOf(ErrorCode c) {
  switch (c) {
    case ErrorCode::kInvalidArgument: return TERN_INVALID_ARGUMENT;
    case ErrorCode::kNotFound: return TERN_NOT_FOUND;
    case ErrorCode::kUnavailable: return TERN_UNAVAILABLE;
    case ErrorCode::kFunctionFailed:
    case ErrorCode::kTrap:
    case ErrorCode::kTimeout:
    case ErrorCode::kMemoryLimit:
    case ErrorCode::kOutputLimit: return TERN_FUNCTION_FAILED;
    case ErrorCode::kIo: return TERN_IO;
    default: return TERN_ERROR;
  }
}

template <class F>
tern_status guarded(char* error, size_t errorLen, F&& f) {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    message(error, errorLen, "out of memory");
  } catch (const std::exception& e) {
    message(error, errorLen, e.what());
  } catch (...) {
    message(error, errorLen, "unknown error");
  }
  return TERN_ERROR;
}

}  // namespace

extern "C" {

tern_status tern_device_open(const tern_device_config* config, tern_device** out, char* error, size_t errorLen) {
  return guarded(error, errorLen, [&]() -> tern_status {
    if (!config || !out || !config->state_dir || (config->edge_count && !config->edges)) {
      message(error, errorLen, "config, out and config->state_dir are required");
      return TERN_INVALID_ARGUMENT;
    }
    *out = nullptr;
    tern::device::DeviceOptions o;
    o.stateDir = config->state_dir;
    for (size_t i = 0; i < config->edge_count; ++i) {
      if (!config->edges[i]) {
        message(error, errorLen, "an edge URL is NULL");
        return TERN_INVALID_ARGUMENT;
      }
      o.edges.emplace_back(config->edges[i]);
    }
    if (config->cloud) o.cloud = config->cloud;
    if (config->token) o.token = config->token;
    if (config->cc) o.cc = config->cc;
    switch (config->policy) {
      case TERN_POLICY_ADAPTIVE: o.decision.policy = tern::device::Policy::kAdaptive; break;
      case TERN_POLICY_LOCAL: o.decision.policy = tern::device::Policy::kLocal; break;
      case TERN_POLICY_EDGE: o.decision.policy = tern::device::Policy::kEdge; break;
      case TERN_POLICY_CLOUD: o.decision.policy = tern::device::Policy::kCloud; break;
      default:
        message(error, errorLen, "unknown policy");
        return TERN_INVALID_ARGUMENT;
    }
    if (config->remote_timeout_ms) o.remoteTimeout = std::chrono::milliseconds(config->remote_timeout_ms);
    auto d = tern::device::Device::open(std::move(o));
    if (!d.ok()) {
      message(error, errorLen, d.error().message());
      return statusOf(d.error().code());
    }
    *out = new tern_device{std::move(*d)};
    return TERN_OK;
  });
}

tern_status tern_device_call(tern_device* device, const char* function, const void* input, size_t inputLen,
                             tern_force force, tern_call_result* result, char* error, size_t errorLen) {
  return guarded(error, errorLen, [&]() -> tern_status {
    if (!device || !function || !result || (inputLen && !input)) {
      message(error, errorLen, "device, function and result are required (and input when input_len > 0)");
      return TERN_INVALID_ARGUMENT;
    }
    *result = tern_call_result{};
    tern::device::Force f = force == TERN_FORCE_LOCAL    ? tern::device::Force::kLocal
                             : force == TERN_FORCE_REMOTE ? tern::device::Force::kRemote
                                                          : tern::device::Force::kNone;
    auto r = device->device->call(function, std::string(static_cast<const char*>(input), inputLen), f);
    result->where = r.where == tern::device::Where::kLocal  ? TERN_WHERE_LOCAL
                    : r.where == tern::device::Where::kEdge ? TERN_WHERE_EDGE
                                                            : TERN_WHERE_CLOUD;
    result->fallback = r.fallback ? 1 : 0;
    result->ms = r.ms;
    if (!r.ok) {
      message(error, errorLen, r.error ? r.error->message() : "the call failed");
      return r.error ? statusOf(r.error->code()) : TERN_ERROR;
    }
    result->output = static_cast<char*>(std::malloc(r.output.size() + 1));
    if (!result->output) throw std::bad_alloc();
    std::memcpy(result->output, r.output.data(), r.output.size());
    result->output[r.output.size()] = '\0';
    result->output_len = r.output.size();
    return TERN_OK;
  });
}

void tern_call_result_free(tern_call_result* result) {
  if (!result) return;
  std::free(result->output);
  result->output = nullptr;
  result->output_len = 0;
}

tern_status tern_device_save(tern_device* device, char* error, size_t errorLen) {
  return guarded(error, errorLen, [&]() -> tern_status {
    if (!device) {
      message(error, errorLen, "device is NULL");
      return TERN_INVALID_ARGUMENT;
    }
    auto ok = device->device->save();
    if (!ok.ok()) {
      message(error, errorLen, ok.error().message());
      return statusOf(ok.error().code());
    }
    return TERN_OK;
  });
}

void tern_device_close(tern_device* device) {
  if (!device) return;
  try {
    (void)device->device->save();
  } catch (...) {
  }
  delete device;
}

const char* tern_status_name(tern_status status) {
  switch (status) {
    case TERN_OK: return "ok";
    case TERN_INVALID_ARGUMENT: return "invalid_argument";
    case TERN_NOT_FOUND: return "not_found";
    case TERN_UNAVAILABLE: return "unavailable";
    case TERN_FUNCTION_FAILED: return "function_failed";
    case TERN_IO: return "io";
    case TERN_ERROR: return "error";
  }
  return "error";
}

}  // extern "C"
