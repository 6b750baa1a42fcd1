// The host side of every "tern" import (host API version 2; docs/design/host-api.md).
//
// Each call checks every guest pointer range against linear memory before anything is read
// or written (a bad one is kFault and nothing is touched), passes views of guest memory to
// the sandbox's HostHandler, and copies results back only after checking the destination.
// A failure's text is kept in the sandbox for last_error; a denial is also written to the
// function's log.

#include "wasm/host_api.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "wasm/guest_memory.h"
#include "wasm/runtime.h"

namespace tern::wasm {

const char* hostStatusName(HostStatus status) {
  switch (status) {
    case HostStatus::kOk: return "ok";
    case HostStatus::kNotFound: return "not_found";
    case HostStatus::kDenied: return "denied";
    case HostStatus::kTooLarge: return "too_large";
    case HostStatus::kBufferTooSmall: return "buffer_too_small";
    case HostStatus::kUnavailable: return "unavailable";
    case HostStatus::kDepthExceeded: return "depth_exceeded";
    case HostStatus::kTimeout: return "timeout";
    case HostStatus::kInvalidArgument: return "invalid_argument";
    case HostStatus::kFailed: return "failed";
    case HostStatus::kIo: return "io";
    case HostStatus::kQuotaExceeded: return "quota_exceeded";
    case HostStatus::kFault: return "fault";
  }
  return "?";
}

namespace {

enum LogLevel : uint32_t { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

const char* levelName(uint32_t level) {
  switch (level) {
    case kDebug: return "debug";
    case kInfo: return "info";
    case kWarn: return "warn";
    case kError: return "error";
  }
  return nullptr;
}

// Appends one line to the function's log (its stderr stream, which the node splits into
// the lines `tern logs` shows), within the stderr limit like any stderr output. Control
// characters become spaces, so one call is one line.
void appendLogLine(Sandbox& sb, std::string_view prefix, std::string_view message) {
  std::string line;
  line.reserve(prefix.size() + message.size() + 1);
  line.append(prefix);
  for (char c : message) {
    auto u = static_cast<unsigned char>(c);
    line.push_back(u < 0x20 || u == 0x7f ? ' ' : c);
  }
  line.push_back('\n');
  uint64_t room = sb.limits.stderrBytes > sb.stderrData.size()
                      ? sb.limits.stderrBytes - sb.stderrData.size()
                      : 0;
  size_t take = static_cast<size_t>(std::min<uint64_t>(room, line.size()));
  sb.stderrData.append(line, 0, take);
  sb.stderrDropped += line.size() - take;
}

// Records a failure for last_error (and the log, for denials) and returns its status.
uint32_t failWith(Sandbox& sb, HostStatus status, std::string message) {
  if (message.size() > kHostLastErrorMax) message.resize(kHostLastErrorMax);
  if (status == HostStatus::kDenied) appendLogLine(sb, "[tern] denied: ", message);
  sb.lastError = std::move(message);
  return static_cast<uint32_t>(status);
}

uint32_t reply(Sandbox& sb, HostReply r) {
  if (r.status == HostStatus::kOk) return 0;
  return failWith(sb, r.status, std::move(r.error));
}

uint32_t fault(Sandbox& sb, std::string_view what, uint32_t ptr, uint64_t len) {
  GuestMemory mem(sb);
  return failWith(sb, HostStatus::kFault,
                  fmt::format("{}: bytes [{}, {}) lie outside linear memory ({} bytes)", what, ptr,
                              uint64_t{ptr} + len, mem.size()));
}

uint32_t noServices(Sandbox& sb) {
  return failWith(sb, HostStatus::kUnavailable,
                  "the tern host services are not available here: only a node (ternd) "
                  "provides key-value state, publish, stream_publish and invoke");
}

// Runs a host call's body with preemption deferred, then delivers a preemption that
// arrived meanwhile. A call that returns past the invocation's deadline (an invoke whose
// callee ran into it) ends the invocation at once rather than at the watchdog's next tick.
// The body's C++ objects are gone by then.
template <typename F>
uint32_t hostCall(void* instance, F&& body) {
  checkHostStack();
  Sandbox* sb = wasiSandbox(instance);
  std::optional<uint32_t> result;
  {
    HostScope scope;
    result = guardedHostCall(*sb, [&] { return body(*sb); });
  }
  if (!result) trapNow(kTrapHostFailure);
  checkPreemption();
  if (sb->deadlineNs && monotonicNs() >= sb->deadlineNs) trapNow(kTrapTimeout);
  return *result;
}

}  // namespace
}  // namespace tern::wasm

using tern::wasm::GuestMemory;
using tern::wasm::hostCall;
using tern::wasm::HostStatus;
using tern::wasm::Sandbox;
namespace w = tern::wasm;

// The import functions compiled modules link against. Their first argument is the module's
// `struct Z_tern_instance_t*`: see WasiInstance for what it points to.
extern "C" {

uint32_t Z_ternZ_host_api_version(void*) { return w::kHostApiVersion; }

// Copies min(len, cap) bytes of the last failure's text; returns its full length, or
// 0xFFFFFFFF (-1) when [buf, buf + cap) is outside memory.
uint32_t Z_ternZ_last_error(void* inst, uint32_t buf, uint32_t cap) {
  return hostCall(inst, [&](Sandbox& s) -> uint32_t {
    GuestMemory mem(s);
    if (!mem.contains(buf, cap)) return UINT32_MAX;
    size_t n = std::min<size_t>(cap, s.lastError.size());
    memcpy(mem.at(buf), s.lastError.data(), n);
    return static_cast<uint32_t>(s.lastError.size());
  });
}

uint32_t Z_ternZ_log(void* inst, uint32_t level, uint32_t msg, uint32_t msgLen) {
  return hostCall(inst, [&](Sandbox& s) -> uint32_t {
    GuestMemory mem(s);
    if (!mem.contains(msg, msgLen)) return w::fault(s, "log message", msg, msgLen);
    const char* name = w::levelName(level);
    if (!name) {
      return w::failWith(s, HostStatus::kInvalidArgument,
                         fmt::format("log level {} is not one of 0 (debug), 1 (info), "
                                     "2 (warn), 3 (error)",
                                     level));
    }
    std::string_view text = mem.view(msg, std::min(msgLen, w::kHostLogMessageMax));
    std::string prefix = fmt::format("[{}] ", name);
    w::appendLogLine(s, prefix, text);
    return 0;
  });
}

uint32_t Z_ternZ_kv_get(void* inst, uint32_t key, uint32_t keyLen, uint32_t buf, uint32_t cap,
                        uint32_t lenOut) {
  return hostCall(inst, [&](Sandbox& s) -> uint32_t {
    GuestMemory mem(s);
    if (!mem.contains(key, keyLen)) return w::fault(s, "kv_get key", key, keyLen);
    if (!mem.contains(buf, cap)) return w::fault(s, "kv_get buffer", buf, cap);
    if (!mem.contains(lenOut, 4)) return w::fault(s, "kv_get length", lenOut, 4);
    if (!s.host) return w::noServices(s);
    std::string value;
    auto r = s.host->kvGet(mem.view(key, keyLen), value);
    if (r.status != HostStatus::kOk) return w::reply(s, std::move(r));
    // kvGet runs no guest code: memory is still as checked above.
    mem.store(lenOut, static_cast<uint32_t>(value.size()));
    if (value.size() > cap) {
      return w::failWith(s, HostStatus::kBufferTooSmall,
                         fmt::format("the value is {} bytes, the buffer holds {}", value.size(),
                                     cap));
    }
    memcpy(mem.at(buf), value.data(), value.size());
    return 0;
  });
}

uint32_t Z_ternZ_kv_set(void* inst, uint32_t key, uint32_t keyLen, uint32_t val,
                        uint32_t valLen) {
  return hostCall(inst, [&](Sandbox& s) -> uint32_t {
    GuestMemory mem(s);
    if (!mem.contains(key, keyLen)) return w::fault(s, "kv_set key", key, keyLen);
    if (!mem.contains(val, valLen)) return w::fault(s, "kv_set value", val, valLen);
    if (!s.host) return w::noServices(s);
    return w::reply(s, s.host->kvSet(mem.view(key, keyLen), mem.view(val, valLen)));
  });
}

uint32_t Z_ternZ_kv_delete(void* inst, uint32_t key, uint32_t keyLen) {
  return hostCall(inst, [&](Sandbox& s) -> uint32_t {
    GuestMemory mem(s);
    if (!mem.contains(key, keyLen)) return w::fault(s, "kv_delete key", key, keyLen);
    if (!s.host) return w::noServices(s);
    return w::reply(s, s.host->kvDelete(mem.view(key, keyLen)));
  });
}

// Writes records [u32 little-endian key length][key bytes] into the buffer, as many whole
// records as fit, and {used bytes, record count, more} as three u32 at `result`.
uint32_t Z_ternZ_kv_list(void* inst, uint32_t prefix, uint32_t prefixLen, uint32_t after,
                         uint32_t afterLen, uint32_t buf, uint32_t cap, uint32_t result) {
  return hostCall(inst, [&](Sandbox& s) -> uint32_t {
    GuestMemory mem(s);
    if (!mem.contains(prefix, prefixLen)) return w::fault(s, "kv_list prefix", prefix, prefixLen);
    if (!mem.contains(after, afterLen)) return w::fault(s, "kv_list after", after, afterLen);
    if (!mem.contains(buf, cap)) return w::fault(s, "kv_list buffer", buf, cap);
    if (!mem.contains(result, 12)) return w::fault(s, "kv_list result", result, 12);
    if (!s.host) return w::noServices(s);
    // Every record takes at least 5 bytes; one more key than fits tells a full buffer
    // (more = 1) from the end of the keys.
    size_t limit = std::min<size_t>(w::kHostListKeysMax, cap / 5 + 1);
    w::KvListPage page;
    auto r = s.host->kvList(mem.view(prefix, prefixLen), mem.view(after, afterLen), limit, page);
    if (r.status != HostStatus::kOk) return w::reply(s, std::move(r));
    uint64_t used = 0;
    uint32_t count = 0;
    bool more = page.more;
    for (const auto& k : page.keys) {
      uint64_t need = 4 + uint64_t{k.size()};
      if (used + need > cap || count == w::kHostListKeysMax) {
        more = true;
        break;
      }
      auto len = static_cast<uint32_t>(k.size());
      memcpy(mem.at(static_cast<uint32_t>(buf + used)), &len, 4);
      memcpy(mem.at(static_cast<uint32_t>(buf + used + 4)), k.data(), k.size());
      used += need;
      ++count;
    }
    if (count == 0 && !page.keys.empty()) {
      mem.store(result, static_cast<uint32_t>(4 + page.keys[0].size()));
      mem.store(result + 4, uint32_t{0});
      mem.store(result + 8, uint32_t{1});
      return w::failWith(s, HostStatus::kBufferTooSmall,
                         fmt::format("the next key needs {} bytes, the buffer holds {}",
                                     4 + page.keys[0].size(), cap));
    }
    mem.store(result, static_cast<uint32_t>(used));
    mem.store(result + 4, count);
    mem.store(result + 8, uint32_t{more ? 1u : 0u});
    return 0;
  });
}

uint32_t Z_ternZ_publish(void* inst, uint32_t topic, uint32_t topicLen, uint32_t payload,
                         uint32_t payloadLen) {
  return hostCall(inst, [&](Sandbox& s) -> uint32_t {
    GuestMemory mem(s);
    if (!mem.contains(topic, topicLen)) return w::fault(s, "publish topic", topic, topicLen);
    if (!mem.contains(payload, payloadLen)) {
      return w::fault(s, "publish payload", payload, payloadLen);
    }
    if (!s.host) return w::noServices(s);
    return w::reply(s, s.host->publish(mem.view(topic, topicLen), mem.view(payload, payloadLen)));
  });
}

// Appends an update to a stream topic; its sequence number goes to `seqOut` as a u64.
uint32_t Z_ternZ_stream_publish(void* inst, uint32_t topic, uint32_t topicLen, uint32_t payload,
                                uint32_t payloadLen, uint32_t seqOut) {
  return hostCall(inst, [&](Sandbox& s) -> uint32_t {
    GuestMemory mem(s);
    if (!mem.contains(topic, topicLen)) return w::fault(s, "stream_publish topic", topic, topicLen);
    if (!mem.contains(payload, payloadLen)) {
      return w::fault(s, "stream_publish payload", payload, payloadLen);
    }
    if (!mem.contains(seqOut, 8)) return w::fault(s, "stream_publish sequence", seqOut, 8);
    if (!s.host) return w::noServices(s);
    uint64_t seq = 0;
    auto r = s.host->streamPublish(mem.view(topic, topicLen), mem.view(payload, payloadLen), seq);
    if (r.status != HostStatus::kOk) return w::reply(s, std::move(r));
    // streamPublish runs no guest code: memory is still as checked above.
    mem.store(seqOut, seq);
    return 0;
  });
}

// Runs another function; its stdout is kept for last_output and copied to the buffer when
// it fits.
uint32_t Z_ternZ_invoke(void* inst, uint32_t name, uint32_t nameLen, uint32_t input,
                        uint32_t inputLen, uint32_t buf, uint32_t cap, uint32_t lenOut) {
  return hostCall(inst, [&](Sandbox& s) -> uint32_t {
    GuestMemory mem(s);
    if (!mem.contains(name, nameLen)) return w::fault(s, "invoke name", name, nameLen);
    if (!mem.contains(input, inputLen)) return w::fault(s, "invoke input", input, inputLen);
    if (!mem.contains(buf, cap)) return w::fault(s, "invoke buffer", buf, cap);
    if (!mem.contains(lenOut, 4)) return w::fault(s, "invoke length", lenOut, 4);
    if (!s.host) return w::noServices(s);
    s.invokeOutput.clear();
    auto r = s.host->invoke(mem.view(name, nameLen), mem.view(input, inputLen), s.invokeOutput);
    // The callee ran in its own sandbox: this memory is unchanged and still as checked.
    mem.store(lenOut, static_cast<uint32_t>(s.invokeOutput.size()));
    if (r.status != HostStatus::kOk) return w::reply(s, std::move(r));
    if (s.invokeOutput.size() > cap) {
      return w::failWith(s, HostStatus::kBufferTooSmall,
                         fmt::format("the output is {} bytes, the buffer holds {}; read it with "
                                     "last_output",
                                     s.invokeOutput.size(), cap));
    }
    memcpy(mem.at(buf), s.invokeOutput.data(), s.invokeOutput.size());
    return 0;
  });
}

// The stdout of the last invoke that ran a function, without running it again.
uint32_t Z_ternZ_last_output(void* inst, uint32_t buf, uint32_t cap, uint32_t lenOut) {
  return hostCall(inst, [&](Sandbox& s) -> uint32_t {
    GuestMemory mem(s);
    if (!mem.contains(buf, cap)) return w::fault(s, "last_output buffer", buf, cap);
    if (!mem.contains(lenOut, 4)) return w::fault(s, "last_output length", lenOut, 4);
    mem.store(lenOut, static_cast<uint32_t>(s.invokeOutput.size()));
    if (s.invokeOutput.size() > cap) {
      return w::failWith(s, HostStatus::kBufferTooSmall,
                         fmt::format("the output is {} bytes, the buffer holds {}",
                                     s.invokeOutput.size(), cap));
    }
    memcpy(mem.at(buf), s.invokeOutput.data(), s.invokeOutput.size());
    return 0;
  });
}

}  // extern "C"

namespace tern::wasm {

namespace {
#define TERN_HOST(name, sig) \
  HostFunction { #name, sig, reinterpret_cast<void (*)()>(&Z_ternZ_##name) }
const HostFunction kTernFunctions[] = {
    TERN_HOST(host_api_version, ":i"),
    TERN_HOST(last_error, "ii:i"),
    TERN_HOST(log, "iii:i"),
    TERN_HOST(kv_get, "iiiii:i"),
    TERN_HOST(kv_set, "iiii:i"),
    TERN_HOST(kv_delete, "ii:i"),
    TERN_HOST(kv_list, "iiiiiii:i"),
    TERN_HOST(publish, "iiii:i"),
    TERN_HOST(stream_publish, "iiiii:i"),
    TERN_HOST(invoke, "iiiiiii:i"),
    TERN_HOST(last_output, "iii:i"),
};
#undef TERN_HOST
}  // namespace

std::span<const HostFunction> ternFunctions() { return kTernFunctions; }

}  // namespace tern::wasm
