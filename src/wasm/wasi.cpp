// WASI preview 1 for functions: the host side of every wasi_snapshot_preview1 import.
//
// A function's world is its invocation: stdin is the request, stdout the response (bounded),
// stderr its log (bounded), plus args, environment, clocks and randomness. There are no
// files and no sockets: path_* calls are denied with NOTCAPABLE, sock_* calls find no socket
// (NOTSOCK on the three standard descriptors, BADF on any other), and the
// remaining calls that make no sense for a function return NOSYS, so any WASI command module
// links. Every guest pointer and length is checked against linear memory before use; a bad
// one returns FAULT (or INVAL) and the host touches nothing.

#include <sys/random.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <array>
#include <cstdint>
#include <cstring>
#include <vector>

#include "wasm/guest_memory.h"
#include "wasm/host_imports.h"
#include "wasm/runtime.h"

namespace tern::wasm {
namespace {

// WASI errno values.
enum : uint32_t {
  kSuccess = 0,
  kBadf = 8,
  kFault = 21,
  kInval = 28,
  kNosys = 52,
  kNotsock = 57,
  kSpipe = 70,
  kNotcapable = 76,
};

enum : uint8_t { kFiletypeUnknown = 0 };
constexpr uint64_t kRightFdRead = 1 << 1;
constexpr uint64_t kRightFdWrite = 1 << 6;
constexpr uint64_t kRightPollReadwrite = 1 << 27;

struct IoVec {
  uint32_t buf;
  uint32_t len;
};

constexpr size_t kMaxIovecs = 1024;  // the POSIX IOV_MAX; more is INVAL

// Runs a host function body, then delivers any trap it requested (proc_exit, output
// limit) or a preemption that arrived meanwhile. The body's C++ objects are gone by then.
template <typename F>
uint32_t hostCall(void* instance, F&& body) {
  checkHostStack();
  Sandbox* sb = wasiSandbox(instance);
  std::optional<uint32_t> result;
  int trap = 0;
  {
    HostScope scope;
    result = guardedHostCall(*sb, [&] { return body(*sb, trap); });
  }
  if (!result) trapNow(kTrapHostFailure);
  if (trap) trapNow(trap);
  checkPreemption();
  return *result;
}

// An iovec list: up to kInlineIovecs in place (printf and read use one or two), more on the
// heap, so the common call allocates nothing.
class IoVecList {
 public:
  static constexpr size_t kInlineIovecs = 8;
  void resize(size_t n) {
    if (n > kInlineIovecs) more_.resize(n);
    size_ = n;
  }
  IoVec* begin() { return size_ > kInlineIovecs ? more_.data() : inline_.data(); }
  IoVec* end() { return begin() + size_; }
  IoVec& operator[](size_t i) { return begin()[i]; }

 private:
  std::array<IoVec, kInlineIovecs> inline_;
  std::vector<IoVec> more_;
  size_t size_ = 0;
};

// Reads an iovec list and checks every buffer it names, once: the calls use these copies,
// so bytes a call writes into guest memory (fd_read into a buffer that overlaps the list)
// cannot change a buffer after it was checked.
bool loadIovecs(const GuestMemory& mem, uint32_t iovs, uint32_t count, IoVecList& out) {
  if (!mem.contains(iovs, uint64_t{count} * 8)) return false;
  out.resize(count);
  for (uint32_t i = 0; i < count; ++i) {
    IoVec& v = out[i];
    mem.load(iovs + i * 8, v.buf);
    mem.load(iovs + i * 8 + 4, v.len);
    if (!mem.contains(v.buf, v.len)) return false;
  }
  return true;
}

// fd_write to stdout (the response) or stderr (the log). Stdout past its limit stops the
// invocation, since the response could not be delivered whole; stderr keeps its first
// bytes and counts the rest as dropped.
uint32_t writeOut(Sandbox& sb, int& trap, uint32_t fd, uint32_t iovs, uint32_t count,
                  uint32_t nwrittenPtr) {
  if (fd != 1 && fd != 2) return kBadf;
  GuestMemory mem(sb);
  if (count > kMaxIovecs) return kInval;
  // Validate everything before producing any output.
  IoVecList vecs;
  if (!mem.contains(nwrittenPtr, 4) || !loadIovecs(mem, iovs, count, vecs)) return kFault;
  std::string& out = fd == 1 ? sb.stdoutData : sb.stderrData;
  uint64_t limit = fd == 1 ? sb.limits.stdoutBytes : sb.limits.stderrBytes;
  uint64_t written = 0;
  for (const IoVec& v : vecs) {
    uint64_t room = limit > out.size() ? limit - out.size() : 0;
    uint64_t take = std::min<uint64_t>(room, v.len);
    out.append(reinterpret_cast<const char*>(mem.at(v.buf)), take);
    written += take;
    if (take < v.len) {
      if (fd == 1) {
        trap = kTrapOutputLimit;
        break;
      }
      sb.stderrDropped += v.len - take;
      written += v.len - take;
    }
  }
  mem.store(nwrittenPtr, static_cast<uint32_t>(written));
  return kSuccess;
}

uint32_t readIn(Sandbox& sb, uint32_t fd, uint32_t iovs, uint32_t count, uint32_t nreadPtr) {
  if (fd != 0) return kBadf;
  GuestMemory mem(sb);
  if (count > kMaxIovecs) return kInval;
  IoVecList vecs;
  if (!mem.contains(nreadPtr, 4) || !loadIovecs(mem, iovs, count, vecs)) return kFault;
  uint64_t got = 0;
  for (const IoVec& v : vecs) {
    size_t take = std::min<size_t>(sb.stdinData.size() - sb.stdinPos, v.len);
    memcpy(mem.at(v.buf), sb.stdinData.data() + sb.stdinPos, take);
    sb.stdinPos += take;
    got += take;
    if (take < v.len) break;
  }
  mem.store(nreadPtr, static_cast<uint32_t>(got));
  return kSuccess;
}

// args_get: an array of pointers plus the NUL-terminated strings.
uint32_t writeStrings(Sandbox& sb, const std::vector<std::string>& list, uint32_t ptrs,
                      uint32_t buf) {
  GuestMemory mem(sb);
  uint64_t bytes = 0;
  for (const auto& s : list) bytes += s.size() + 1;
  if (!mem.contains(ptrs, uint64_t{list.size()} * 4) || !mem.contains(buf, bytes)) {
    return kFault;
  }
  uint32_t pos = buf;
  for (size_t i = 0; i < list.size(); ++i) {
    mem.store(static_cast<uint32_t>(ptrs + i * 4), pos);
    memcpy(mem.at(pos), list[i].c_str(), list[i].size() + 1);
    pos += static_cast<uint32_t>(list[i].size() + 1);
  }
  return kSuccess;
}

// environ_get: the block's entries are already NUL-terminated and in order, so they are
// copied at once and the pointers found from the NULs.
uint32_t writeEnvironment(Sandbox& sb, const Environment& env, uint32_t ptrs, uint32_t buf) {
  GuestMemory mem(sb);
  std::string_view bytes = env.bytes();
  if (!mem.contains(ptrs, uint64_t{env.size()} * 4) || !mem.contains(buf, bytes.size())) {
    return kFault;
  }
  memcpy(mem.at(buf), bytes.data(), bytes.size());
  uint32_t at = 0;
  for (size_t i = 0; i < env.size(); ++i) {
    mem.store(static_cast<uint32_t>(ptrs + i * 4), buf + at);
    at += static_cast<uint32_t>(strlen(bytes.data() + at) + 1);
  }
  return kSuccess;
}

uint32_t countSizes(Sandbox& sb, uint64_t count, uint64_t bytes, uint32_t countPtr,
                    uint32_t sizePtr) {
  GuestMemory mem(sb);
  if (!mem.contains(countPtr, 4) || !mem.contains(sizePtr, 4)) return kFault;
  mem.store(countPtr, static_cast<uint32_t>(count));
  mem.store(sizePtr, static_cast<uint32_t>(bytes));
  return kSuccess;
}

uint32_t stringSizes(Sandbox& sb, const std::vector<std::string>& list, uint32_t countPtr,
                     uint32_t sizePtr) {
  uint64_t bytes = 0;
  for (const auto& s : list) bytes += s.size() + 1;
  return countSizes(sb, list.size(), bytes, countPtr, sizePtr);
}

bool readClock(const Sandbox& sb, uint32_t id, uint64_t& out) {
  timespec t;
  switch (id) {
    case 0:
      clock_gettime(CLOCK_REALTIME, &t);
      break;
    case 1:
      clock_gettime(CLOCK_MONOTONIC, &t);
      break;
    case 2:
    case 3:
      // CPU time of this invocation only: time since it started (no host CPU time leaks).
      out = static_cast<uint64_t>(monotonicNs() - sb.startNs);
      return true;
    default:
      return false;
  }
  out = static_cast<uint64_t>(t.tv_sec) * 1000000000ull + static_cast<uint64_t>(t.tv_nsec);
  return true;
}

// Sleeps until the monotonic time `untilNs`, never past the invocation's deadline, and
// returns early when a preemption is pending. Returns false when the deadline cut it short.
bool sleepUntil(const Sandbox& sb, int64_t untilNs) {
  ThreadState& ts = currentThread();
  bool cut = sb.deadlineNs && untilNs >= sb.deadlineNs;
  if (cut) untilNs = sb.deadlineNs;
  for (;;) {
    if (ts.preemptPending) return false;
    int64_t now = monotonicNs();
    if (now >= untilNs) return !cut;
    int64_t left = std::min<int64_t>(untilNs - now, 1000000);  // wake each ms to re-check
    timespec req{static_cast<time_t>(left / 1000000000), static_cast<long>(left % 1000000000)};
    nanosleep(&req, nullptr);
  }
}

uint32_t pollOneoff(Sandbox& sb, int& trap, uint32_t in, uint32_t out, uint32_t nsubs,
                    uint32_t neventsPtr) {
  GuestMemory mem(sb);
  if (nsubs == 0) return kInval;
  if (!mem.contains(in, uint64_t{nsubs} * 48) || !mem.contains(out, uint64_t{nsubs} * 32) ||
      !mem.contains(neventsPtr, 4)) {
    return kFault;
  }
  // First pass: fd subscriptions are ready at once (stdin has its data, stdout/stderr take
  // writes); find the earliest clock.
  int64_t now = monotonicNs();
  int64_t earliest = INT64_MAX;
  uint32_t events = 0;
  auto emit = [&](uint64_t userdata, uint16_t error, uint8_t type, uint64_t nbytes) {
    uint32_t e = out + events * 32;
    memset(mem.at(e), 0, 32);
    mem.store(e, userdata);
    mem.store(e + 8, error);
    mem.store(e + 10, type);
    mem.store(e + 16, nbytes);
    ++events;
  };
  for (uint32_t i = 0; i < nsubs; ++i) {
    uint32_t s = in + i * 48;
    uint64_t userdata = 0;
    uint8_t tag = 0;
    mem.load(s, userdata);
    mem.load(s + 8, tag);
    if (tag == 0) {
      uint32_t clockId = 0;
      uint64_t timeout = 0;
      uint16_t flags = 0;
      mem.load(s + 16, clockId);
      mem.load(s + 24, timeout);
      mem.load(s + 40, flags);
      uint64_t clockNow = 0;
      if (!readClock(sb, clockId, clockNow)) {
        emit(userdata, kInval, 0, 0);
        continue;
      }
      uint64_t rel = (flags & 1) ? (timeout > clockNow ? timeout - clockNow : 0) : timeout;
      int64_t at = rel > static_cast<uint64_t>(INT64_MAX - now) ? INT64_MAX
                                                                : now + static_cast<int64_t>(rel);
      earliest = std::min(earliest, at);
    } else if (tag == 1 || tag == 2) {
      uint32_t fd = 0;
      mem.load(s + 16, fd);
      bool valid = (tag == 1 && fd == 0) || (tag == 2 && (fd == 1 || fd == 2));
      uint64_t nbytes = tag == 1 ? sb.stdinData.size() - sb.stdinPos : 0;
      emit(userdata, valid ? kSuccess : kBadf, tag, nbytes);
    } else {
      emit(userdata, kInval, tag, 0);
    }
  }
  if (events == 0 && earliest != INT64_MAX) {
    if (!sleepUntil(sb, earliest)) {
      trap = kTrapTimeout;  // the invocation's time is up before the sleep is
      return kSuccess;
    }
    int64_t after = monotonicNs();
    for (uint32_t i = 0; i < nsubs; ++i) {
      uint32_t s = in + i * 48;
      uint64_t userdata = 0;
      uint8_t tag = 0;
      mem.load(s, userdata);
      mem.load(s + 8, tag);
      if (tag == 0 && after >= earliest) emit(userdata, kSuccess, 0, 0);
    }
  }
  mem.store(neventsPtr, events);
  return kSuccess;
}

}  // namespace
}  // namespace tern::wasm

using tern::wasm::hostCall;
using tern::wasm::Sandbox;
namespace w = tern::wasm;

// The import functions compiled modules link against. Their first argument is the module's
// `struct Z_wasi_snapshot_preview1_instance_t*`: see WasiInstance for what it points to.
extern "C" {

uint32_t Z_wasi_snapshot_preview1Z_args_get(void* inst, uint32_t argv, uint32_t buf) {
  return hostCall(inst, [&](Sandbox& s, int&) { return w::writeStrings(s, *s.args, argv, buf); });
}
uint32_t Z_wasi_snapshot_preview1Z_args_sizes_get(void* inst, uint32_t argc, uint32_t size) {
  return hostCall(inst, [&](Sandbox& s, int&) { return w::stringSizes(s, *s.args, argc, size); });
}
uint32_t Z_wasi_snapshot_preview1Z_environ_get(void* inst, uint32_t env, uint32_t buf) {
  return hostCall(inst,
                  [&](Sandbox& s, int&) { return w::writeEnvironment(s, *s.env, env, buf); });
}
uint32_t Z_wasi_snapshot_preview1Z_environ_sizes_get(void* inst, uint32_t count,
                                                     uint32_t size) {
  return hostCall(inst, [&](Sandbox& s, int&) {
    return w::countSizes(s, s.env->size(), s.env->bytes().size(), count, size);
  });
}
uint32_t Z_wasi_snapshot_preview1Z_clock_res_get(void* inst, uint32_t id, uint32_t out) {
  return hostCall(inst, [&](Sandbox& s, int&) -> uint32_t {
    w::GuestMemory mem(s);
    if (id > 3) return w::kInval;
    if (!mem.store(out, uint64_t{id <= 1 ? 1u : 1000u})) return w::kFault;
    return w::kSuccess;
  });
}
uint32_t Z_wasi_snapshot_preview1Z_clock_time_get(void* inst, uint32_t id, uint64_t,
                                                  uint32_t out) {
  return hostCall(inst, [&](Sandbox& s, int&) -> uint32_t {
    w::GuestMemory mem(s);
    uint64_t now;
    if (!w::readClock(s, id, now)) return w::kInval;
    if (!mem.store(out, now)) return w::kFault;
    return w::kSuccess;
  });
}
uint32_t Z_wasi_snapshot_preview1Z_fd_advise(void*, uint32_t, uint64_t, uint64_t, uint32_t) {
  return w::kNosys;
}
uint32_t Z_wasi_snapshot_preview1Z_fd_allocate(void*, uint32_t, uint64_t, uint64_t) {
  return w::kNosys;
}
uint32_t Z_wasi_snapshot_preview1Z_fd_close(void*, uint32_t fd) {
  return fd <= 2 ? w::kSuccess : w::kBadf;
}
uint32_t Z_wasi_snapshot_preview1Z_fd_datasync(void*, uint32_t) { return w::kNosys; }
uint32_t Z_wasi_snapshot_preview1Z_fd_fdstat_get(void* inst, uint32_t fd, uint32_t out) {
  return hostCall(inst, [&](Sandbox& s, int&) -> uint32_t {
    if (fd > 2) return w::kBadf;
    w::GuestMemory mem(s);
    if (!mem.contains(out, 24)) return w::kFault;
    // Stdio are neither files nor terminals: the guest's libc buffers them fully.
    memset(mem.at(out), 0, 24);
    mem.store(out, w::kFiletypeUnknown);
    uint64_t rights = (fd == 0 ? w::kRightFdRead : w::kRightFdWrite) | w::kRightPollReadwrite;
    mem.store(out + 8, rights);
    return w::kSuccess;
  });
}
uint32_t Z_wasi_snapshot_preview1Z_fd_fdstat_set_flags(void*, uint32_t, uint32_t) {
  return w::kNosys;
}
uint32_t Z_wasi_snapshot_preview1Z_fd_fdstat_set_rights(void*, uint32_t, uint64_t,
                                                        uint64_t) {
  return w::kNosys;
}
uint32_t Z_wasi_snapshot_preview1Z_fd_filestat_get(void*, uint32_t, uint32_t) {
  return w::kNosys;
}
uint32_t Z_wasi_snapshot_preview1Z_fd_filestat_set_size(void*, uint32_t, uint64_t) {
  return w::kNosys;
}
uint32_t Z_wasi_snapshot_preview1Z_fd_filestat_set_times(void*, uint32_t, uint64_t,
                                                         uint64_t, uint32_t) {
  return w::kNosys;
}
uint32_t Z_wasi_snapshot_preview1Z_fd_pread(void*, uint32_t fd, uint32_t, uint32_t,
                                            uint64_t, uint32_t) {
  return fd <= 2 ? w::kSpipe : w::kBadf;
}
uint32_t Z_wasi_snapshot_preview1Z_fd_prestat_get(void*, uint32_t, uint32_t) {
  return w::kBadf;  // no preopened directories
}
uint32_t Z_wasi_snapshot_preview1Z_fd_prestat_dir_name(void*, uint32_t, uint32_t,
                                                       uint32_t) {
  return w::kBadf;
}
uint32_t Z_wasi_snapshot_preview1Z_fd_pwrite(void*, uint32_t fd, uint32_t, uint32_t,
                                             uint64_t, uint32_t) {
  return fd <= 2 ? w::kSpipe : w::kBadf;
}
uint32_t Z_wasi_snapshot_preview1Z_fd_read(void* inst, uint32_t fd, uint32_t iovs,
                                           uint32_t count, uint32_t nread) {
  return hostCall(inst, [&](Sandbox& s, int&) { return w::readIn(s, fd, iovs, count, nread); });
}
uint32_t Z_wasi_snapshot_preview1Z_fd_readdir(void*, uint32_t, uint32_t, uint32_t, uint64_t,
                                              uint32_t) {
  return w::kNotcapable;
}
uint32_t Z_wasi_snapshot_preview1Z_fd_renumber(void*, uint32_t, uint32_t) {
  return w::kNosys;
}
uint32_t Z_wasi_snapshot_preview1Z_fd_seek(void*, uint32_t fd, uint64_t, uint32_t,
                                           uint32_t) {
  return fd <= 2 ? w::kSpipe : w::kBadf;
}
uint32_t Z_wasi_snapshot_preview1Z_fd_sync(void*, uint32_t) { return w::kNosys; }
uint32_t Z_wasi_snapshot_preview1Z_fd_tell(void*, uint32_t fd, uint32_t) {
  return fd <= 2 ? w::kSpipe : w::kBadf;
}
uint32_t Z_wasi_snapshot_preview1Z_fd_write(void* inst, uint32_t fd, uint32_t iovs,
                                            uint32_t count, uint32_t nwritten) {
  return hostCall(inst, [&](Sandbox& s, int& trap) {
    return w::writeOut(s, trap, fd, iovs, count, nwritten);
  });
}
uint32_t Z_wasi_snapshot_preview1Z_path_create_directory(void*, uint32_t, uint32_t,
                                                         uint32_t) {
  return w::kNotcapable;
}
uint32_t Z_wasi_snapshot_preview1Z_path_filestat_get(void*, uint32_t, uint32_t, uint32_t,
                                                     uint32_t, uint32_t) {
  return w::kNotcapable;
}
uint32_t Z_wasi_snapshot_preview1Z_path_filestat_set_times(void*, uint32_t, uint32_t,
                                                           uint32_t, uint32_t, uint64_t,
                                                           uint64_t, uint32_t) {
  return w::kNotcapable;
}
uint32_t Z_wasi_snapshot_preview1Z_path_link(void*, uint32_t, uint32_t, uint32_t, uint32_t,
                                             uint32_t, uint32_t, uint32_t) {
  return w::kNotcapable;
}
uint32_t Z_wasi_snapshot_preview1Z_path_open(void*, uint32_t, uint32_t, uint32_t, uint32_t,
                                             uint32_t, uint64_t, uint64_t, uint32_t,
                                             uint32_t) {
  return w::kNotcapable;
}
uint32_t Z_wasi_snapshot_preview1Z_path_readlink(void*, uint32_t, uint32_t, uint32_t,
                                                 uint32_t, uint32_t, uint32_t) {
  return w::kNotcapable;
}
uint32_t Z_wasi_snapshot_preview1Z_path_remove_directory(void*, uint32_t, uint32_t,
                                                         uint32_t) {
  return w::kNotcapable;
}
uint32_t Z_wasi_snapshot_preview1Z_path_rename(void*, uint32_t, uint32_t, uint32_t,
                                               uint32_t, uint32_t, uint32_t) {
  return w::kNotcapable;
}
uint32_t Z_wasi_snapshot_preview1Z_path_symlink(void*, uint32_t, uint32_t, uint32_t,
                                                uint32_t, uint32_t) {
  return w::kNotcapable;
}
uint32_t Z_wasi_snapshot_preview1Z_path_unlink_file(void*, uint32_t, uint32_t, uint32_t) {
  return w::kNotcapable;
}
uint32_t Z_wasi_snapshot_preview1Z_poll_oneoff(void* inst, uint32_t in, uint32_t out,
                                               uint32_t nsubs, uint32_t nevents) {
  return hostCall(inst, [&](Sandbox& s, int& trap) {
    return w::pollOneoff(s, trap, in, out, nsubs, nevents);
  });
}
void Z_wasi_snapshot_preview1Z_proc_exit(void* inst, uint32_t code) {
  hostCall(inst, [&](Sandbox& s, int& trap) -> uint32_t {
    s.exitCode = static_cast<int>(code);
    trap = w::kTrapExit;
    return 0;
  });
  __builtin_unreachable();
}
uint32_t Z_wasi_snapshot_preview1Z_proc_raise(void*, uint32_t) { return w::kNosys; }
uint32_t Z_wasi_snapshot_preview1Z_sched_yield(void* inst) {
  return hostCall(inst, [](Sandbox&, int&) -> uint32_t { return w::kSuccess; });
}
uint32_t Z_wasi_snapshot_preview1Z_random_get(void* inst, uint32_t buf, uint32_t len) {
  return hostCall(inst, [&](Sandbox& s, int&) -> uint32_t {
    w::GuestMemory mem(s);
    if (!mem.contains(buf, len)) return w::kFault;
    // The kernel writes into a buffer of tern's, which tern copies: no system call writes
    // guest memory, which the memory reset relies on (memory_pool.h, kPageFills).
    uint8_t bytes[256];
    uint32_t done = 0;
    while (done < len) {
      ssize_t n = getrandom(bytes, std::min<size_t>(sizeof bytes, len - done), 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        return 29;  // IO
      }
      memcpy(mem.at(buf + done), bytes, static_cast<size_t>(n));
      done += static_cast<uint32_t>(n);
    }
    return w::kSuccess;
  });
}
// A function has no sockets: its only descriptors are stdin, stdout and stderr, which are
// not sockets, and any other is not open (as the WASI test suite's sock_shutdown cases
// expect).
uint32_t Z_wasi_snapshot_preview1Z_sock_accept(void*, uint32_t fd, uint32_t, uint32_t) {
  return fd <= 2 ? w::kNotsock : w::kBadf;
}
uint32_t Z_wasi_snapshot_preview1Z_sock_recv(void*, uint32_t fd, uint32_t, uint32_t, uint32_t,
                                             uint32_t, uint32_t) {
  return fd <= 2 ? w::kNotsock : w::kBadf;
}
uint32_t Z_wasi_snapshot_preview1Z_sock_send(void*, uint32_t fd, uint32_t, uint32_t, uint32_t,
                                             uint32_t) {
  return fd <= 2 ? w::kNotsock : w::kBadf;
}
uint32_t Z_wasi_snapshot_preview1Z_sock_shutdown(void*, uint32_t fd, uint32_t) {
  return fd <= 2 ? w::kNotsock : w::kBadf;
}

}  // extern "C"

namespace tern::wasm {

namespace {
#define TERN_WASI(name, sig) \
  HostFunction { #name, sig, reinterpret_cast<void (*)()>(&Z_wasi_snapshot_preview1Z_##name) }
const HostFunction kWasiFunctions[] = {
    TERN_WASI(args_get, "ii:i"),
    TERN_WASI(args_sizes_get, "ii:i"),
    TERN_WASI(environ_get, "ii:i"),
    TERN_WASI(environ_sizes_get, "ii:i"),
    TERN_WASI(clock_res_get, "ii:i"),
    TERN_WASI(clock_time_get, "iIi:i"),
    TERN_WASI(fd_advise, "iIIi:i"),
    TERN_WASI(fd_allocate, "iII:i"),
    TERN_WASI(fd_close, "i:i"),
    TERN_WASI(fd_datasync, "i:i"),
    TERN_WASI(fd_fdstat_get, "ii:i"),
    TERN_WASI(fd_fdstat_set_flags, "ii:i"),
    TERN_WASI(fd_fdstat_set_rights, "iII:i"),
    TERN_WASI(fd_filestat_get, "ii:i"),
    TERN_WASI(fd_filestat_set_size, "iI:i"),
    TERN_WASI(fd_filestat_set_times, "iIIi:i"),
    TERN_WASI(fd_pread, "iiiIi:i"),
    TERN_WASI(fd_prestat_get, "ii:i"),
    TERN_WASI(fd_prestat_dir_name, "iii:i"),
    TERN_WASI(fd_pwrite, "iiiIi:i"),
    TERN_WASI(fd_read, "iiii:i"),
    TERN_WASI(fd_readdir, "iiiIi:i"),
    TERN_WASI(fd_renumber, "ii:i"),
    TERN_WASI(fd_seek, "iIii:i"),
    TERN_WASI(fd_sync, "i:i"),
    TERN_WASI(fd_tell, "ii:i"),
    TERN_WASI(fd_write, "iiii:i"),
    TERN_WASI(path_create_directory, "iii:i"),
    TERN_WASI(path_filestat_get, "iiiii:i"),
    TERN_WASI(path_filestat_set_times, "iiiiIIi:i"),
    TERN_WASI(path_link, "iiiiiii:i"),
    TERN_WASI(path_open, "iiiiiIIii:i"),
    TERN_WASI(path_readlink, "iiiiii:i"),
    TERN_WASI(path_remove_directory, "iii:i"),
    TERN_WASI(path_rename, "iiiiii:i"),
    TERN_WASI(path_symlink, "iiiii:i"),
    TERN_WASI(path_unlink_file, "iii:i"),
    TERN_WASI(poll_oneoff, "iiii:i"),
    TERN_WASI(proc_exit, "i:"),
    TERN_WASI(proc_raise, "i:i"),
    TERN_WASI(sched_yield, ":i"),
    TERN_WASI(random_get, "ii:i"),
    TERN_WASI(sock_accept, "iii:i"),
    TERN_WASI(sock_recv, "iiiiii:i"),
    TERN_WASI(sock_send, "iiiii:i"),
    TERN_WASI(sock_shutdown, "ii:i"),
};
#undef TERN_WASI
}  // namespace

std::span<const HostFunction> wasiFunctions() { return kWasiFunctions; }

}  // namespace tern::wasm
