// Fuzz target: WASI preview 1 and the "tern" host API called with fuzzer-chosen arguments
// and memory contents against a live sandbox (src/wasm/wasi.cpp, host_api.cpp). A minimal
// guest (one page of linear memory) is compiled and instantiated once; each input sets the
// first bytes of its memory and its stdin, then makes up to 16 host calls, each a selector
// byte and its arguments (4 bytes per i32, 8 per i64), as guest code inside Engine::runGuest.
// Checked: no call touches memory outside the guest's (that would trap as an out-of-bounds
// access or fail as an internal error); a call ends only by returning, proc_exit or the
// deadline; WASI calls return a WASI errno; output stays within the sandbox's limits.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "fuzz_check.h"
#include "node_core.h"
#include "wasm/engine.h"
#include "wasm/runtime.h"

extern "C" {
uint32_t Z_wasi_snapshot_preview1Z_args_get(void*, uint32_t, uint32_t);
uint32_t Z_wasi_snapshot_preview1Z_args_sizes_get(void*, uint32_t, uint32_t);
uint32_t Z_wasi_snapshot_preview1Z_environ_get(void*, uint32_t, uint32_t);
uint32_t Z_wasi_snapshot_preview1Z_environ_sizes_get(void*, uint32_t, uint32_t);
uint32_t Z_wasi_snapshot_preview1Z_clock_res_get(void*, uint32_t, uint32_t);
uint32_t Z_wasi_snapshot_preview1Z_clock_time_get(void*, uint32_t, uint64_t, uint32_t);
uint32_t Z_wasi_snapshot_preview1Z_fd_advise(void*, uint32_t, uint64_t, uint64_t, uint32_t);
uint32_t Z_wasi_snapshot_preview1Z_fd_allocate(void*, uint32_t, uint64_t, uint64_t);
uint32_t Z_wasi_snapshot_preview1Z_fd_close(void*, uint32_t);
uint32_t Z_wasi_snapshot_preview1Z_fd_datasync(void*, uint32_t);
uint32_t Z_wasi_snapshot_preview1Z_fd_fdstat_get(void*, uint32_t, uint32_t);
uint32_t Z_wasi_snapshot_preview1Z_fd_fdstat_set_flags(void*, uint32_t, uint32_t);
uint32_t Z_wasi_snapshot_preview1Z_fd_fdstat_set_rights(void*, uint32_t, uint64_t, uint64_t);
uint32_t Z_wasi_snapshot_preview1Z_fd_filestat_get(void*, uint32_t, uint32_t);
uint32_t Z_wasi_snapshot_preview1Z_fd_filestat_set_size(void*, uint32_t, uint64_t);
uint32_t Z_wasi_snapshot_preview1Z_fd_filestat_set_times(void*, uint32_t, uint64_t, uint64_t, uint32_t);
uint32_t Z_wasi_snapshot_preview1Z_fd_pread(void*, uint32_t, uint32_t, uint32_t, uint64_t, uint32_t);
uint32_t Z_wasi_snapshot_preview1Z_fd_prestat_get(void*, uint32_t, uint32_t);
uint32_t Z_wasi_snapshot_preview1Z_fd_prestat_dir_name(void*, uint32_t, uint32_t, uint32_t);
uint32_t Z_wasi_snapshot_preview1Z_fd_pwrite(void*, uint32_t, uint32_t, uint32_t, uint64_t, uint32_t);
uint32_t Z_wasi_snapshot_preview1Z_fd_read(void*, uint32_t, uint32_t, uint32_t, uint32_t);
uint32_t Z_wasi_snapshot_preview1Z_fd_readdir(void*, uint32_t, uint32_t, uint32_t, uint64_t, uint32_t);
uint32_t Z_wasi_snapshot_preview1Z_fd_renumber(void*, uint32_t, uint32_t);
uint32_t Z_wasi_snapshot_preview1Z_fd_seek(void*, uint32_t, uint64_t, uint32_t, uint32_t);
uint32_t Z_wasi_snapshot_preview1Z_fd_sync(void*, uint32_t);
uint32_t Z_wasi_snapshot_preview1Z_fd_tell(void*, uint32_t, uint32_t);
uint32_t Z_wasi_snapshot_preview1Z_fd_write(void*, uint32_t, uint32_t, uint32_t, uint32_t);
uint32_t Z_wasi_snapshot_preview1Z_path_create_directory(void*, uint32_t, uint32_t, uint32_t);
uint32_t Z_wasi_snapshot_preview1Z_path_filestat_get(void*, uint32_t, uint32_t, uint32_t, uint32_t, uint32_t);
uint32_t Z_wasi_snapshot_preview1Z_path_filestat_set_times(void*, uint32_t, uint32_t, uint32_t, uint32_t, uint64_t, uint64_t, uint32_t);
uint32_t Z_wasi_snapshot_preview1Z_path_link(void*, uint32_t, uint32_t, uint32_t, uint32_t, uint32_t, uint32_t, uint32_t);
uint32_t Z_wasi_snapshot_preview1Z_path_open(void*, uint32_t, uint32_t, uint32_t, uint32_t, uint32_t, uint64_t, uint64_t, uint32_t, uint32_t);
uint32_t Z_wasi_snapshot_preview1Z_path_readlink(void*, uint32_t, uint32_t, uint32_t, uint32_t, uint32_t, uint32_t);
uint32_t Z_wasi_snapshot_preview1Z_path_remove_directory(void*, uint32_t, uint32_t, uint32_t);
uint32_t Z_wasi_snapshot_preview1Z_path_rename(void*, uint32_t, uint32_t, uint32_t, uint32_t, uint32_t, uint32_t);
uint32_t Z_wasi_snapshot_preview1Z_path_symlink(void*, uint32_t, uint32_t, uint32_t, uint32_t, uint32_t);
uint32_t Z_wasi_snapshot_preview1Z_path_unlink_file(void*, uint32_t, uint32_t, uint32_t);
uint32_t Z_wasi_snapshot_preview1Z_poll_oneoff(void*, uint32_t, uint32_t, uint32_t, uint32_t);
void Z_wasi_snapshot_preview1Z_proc_exit(void*, uint32_t);
uint32_t Z_wasi_snapshot_preview1Z_proc_raise(void*, uint32_t);
uint32_t Z_wasi_snapshot_preview1Z_sched_yield(void*);
uint32_t Z_wasi_snapshot_preview1Z_random_get(void*, uint32_t, uint32_t);
uint32_t Z_wasi_snapshot_preview1Z_sock_accept(void*, uint32_t, uint32_t, uint32_t);
uint32_t Z_wasi_snapshot_preview1Z_sock_recv(void*, uint32_t, uint32_t, uint32_t, uint32_t, uint32_t, uint32_t);
uint32_t Z_wasi_snapshot_preview1Z_sock_send(void*, uint32_t, uint32_t, uint32_t, uint32_t, uint32_t);
uint32_t Z_wasi_snapshot_preview1Z_sock_shutdown(void*, uint32_t, uint32_t);
uint32_t Z_ternZ_host_api_version(void*);
uint32_t Z_ternZ_last_error(void*, uint32_t, uint32_t);
uint32_t Z_ternZ_log(void*, uint32_t, uint32_t, uint32_t);
uint32_t Z_ternZ_kv_get(void*, uint32_t, uint32_t, uint32_t, uint32_t, uint32_t);
uint32_t Z_ternZ_kv_set(void*, uint32_t, uint32_t, uint32_t, uint32_t);
uint32_t Z_ternZ_kv_delete(void*, uint32_t, uint32_t);
uint32_t Z_ternZ_kv_list(void*, uint32_t, uint32_t, uint32_t, uint32_t, uint32_t, uint32_t, uint32_t);
uint32_t Z_ternZ_publish(void*, uint32_t, uint32_t, uint32_t, uint32_t);
uint32_t Z_ternZ_stream_publish(void*, uint32_t, uint32_t, uint32_t, uint32_t, uint32_t);
uint32_t Z_ternZ_invoke(void*, uint32_t, uint32_t, uint32_t, uint32_t, uint32_t, uint32_t, uint32_t);
uint32_t Z_ternZ_last_output(void*, uint32_t, uint32_t, uint32_t);
}

namespace {

using namespace tern::wasm;

struct HostFn {
  const char* signature;  // one letter per argument after the instance: i (u32), I (u64)
  uint32_t (*call)(void* inst, const uint64_t* args);
};

// Every WASI import first, then the "tern" ones (kFirstTern on).
const HostFn kHostFns[] = {
    {"ii", [](void* inst, const uint64_t* a) -> uint32_t { (void)a; return Z_wasi_snapshot_preview1Z_args_get(inst, static_cast<uint32_t>(a[0]), static_cast<uint32_t>(a[1])); }},
    {"ii", [](void* inst, const uint64_t* a) -> uint32_t { (void)a; return Z_wasi_snapshot_preview1Z_args_sizes_get(inst, static_cast<uint32_t>(a[0]), static_cast<uint32_t>(a[1])); }},
    {"ii", [](void* inst, const uint64_t* a) -> uint32_t { (void)a; return Z_wasi_snapshot_preview1Z_environ_get(inst, static_cast<uint32_t>(a[0]), static_cast<uint32_t>(a[1])); }},
    {"ii", [](void* inst, const uint64_t* a) -> uint32_t { (void)a; return Z_wasi_snapshot_preview1Z_environ_sizes_get(inst, static_cast<uint32_t>(a[0]), static_cast<uint32_t>(a[1])); }},
    {"ii", [](void* inst, const uint64_t* a) -> uint32_t { (void)a; return Z_wasi_snapshot_preview1Z_clock_res_get(inst, static_cast<uint32_t>(a[0]), static_cast<uint32_t>(a[1])); }},
    {"iIi", [](void* inst, const uint64_t* a) -> uint32_t { (void)a; return Z_wasi_snapshot_preview1Z_clock_time_get(inst, static_cast<uint32_t>(a[0]), static_cast<uint64_t>(a[1]), static_cast<uint32_t>(a[2])); }},
    {"iIIi", [](void* inst, const uint64_t* a) -> uint32_t { (void)a; return Z_wasi_snapshot_preview1Z_fd_advise(inst, static_cast<uint32_t>(a[0]), static_cast<uint64_t>(a[1]), static_cast<uint64_t>(a[2]), static_cast<uint32_t>(a[3])); }},
    {"iII", [](void* inst, const uint64_t* a) -> uint32_t { (void)a; return Z_wasi_snapshot_preview1Z_fd_allocate(inst, static_cast<uint32_t>(a[0]), static_cast<uint64_t>(a[1]), static_cast<uint64_t>(a[2])); }},
    {"i", [](void* inst, const uint64_t* a) -> uint32_t { (void)a; return Z_wasi_snapshot_preview1Z_fd_close(inst, static_cast<uint32_t>(a[0])); }},
    {"i", [](void* inst, const uint64_t* a) -> uint32_t { (void)a; return Z_wasi_snapshot_preview1Z_fd_datasync(inst, static_cast<uint32_t>(a[0])); }},
    {"ii", [](void* inst, const uint64_t* a) -> uint32_t { (void)a; return Z_wasi_snapshot_preview1Z_fd_fdstat_get(inst, static_cast<uint32_t>(a[0]), static_cast<uint32_t>(a[1])); }},
    {"ii", [](void* inst, const uint64_t* a) -> uint32_t { (void)a; return Z_wasi_snapshot_preview1Z_fd_fdstat_set_flags(inst, static_cast<uint32_t>(a[0]), static_cast<uint32_t>(a[1])); }},
    {"iII", [](void* inst, const uint64_t* a) -> uint32_t { (void)a; return Z_wasi_snapshot_preview1Z_fd_fdstat_set_rights(inst, static_cast<uint32_t>(a[0]), static_cast<uint64_t>(a[1]), static_cast<uint64_t>(a[2])); }},
    {"ii", [](void* inst, const uint64_t* a) -> uint32_t { (void)a; return Z_wasi_snapshot_preview1Z_fd_filestat_get(inst, static_cast<uint32_t>(a[0]), static_cast<uint32_t>(a[1])); }},
    {"iI", [](void* inst, const uint64_t* a) -> uint32_t { (void)a; return Z_wasi_snapshot_preview1Z_fd_filestat_set_size(inst, static_cast<uint32_t>(a[0]), static_cast<uint64_t>(a[1])); }},
    {"iIIi", [](void* inst, const uint64_t* a) -> uint32_t { (void)a; return Z_wasi_snapshot_preview1Z_fd_filestat_set_times(inst, static_cast<uint32_t>(a[0]), static_cast<uint64_t>(a[1]), static_cast<uint64_t>(a[2]), static_cast<uint32_t>(a[3])); }},
    {"iiiIi", [](void* inst, const uint64_t* a) -> uint32_t { (void)a; return Z_wasi_snapshot_preview1Z_fd_pread(inst, static_cast<uint32_t>(a[0]), static_cast<uint32_t>(a[1]), static_cast<uint32_t>(a[2]), static_cast<uint64_t>(a[3]), static_cast<uint32_t>(a[4])); }},
    {"ii", [](void* inst, const uint64_t* a) -> uint32_t { (void)a; return Z_wasi_snapshot_preview1Z_fd_prestat_get(inst, static_cast<uint32_t>(a[0]), static_cast<uint32_t>(a[1])); }},
    {"iii", [](void* inst, const uint64_t* a) -> uint32_t { (void)a; return Z_wasi_snapshot_preview1Z_fd_prestat_dir_name(inst, static_cast<uint32_t>(a[0]), static_cast<uint32_t>(a[1]), static_cast<uint32_t>(a[2])); }},
    {"iiiIi", [](void* inst, const uint64_t* a) -> uint32_t { (void)a; return Z_wasi_snapshot_preview1Z_fd_pwrite(inst, static_cast<uint32_t>(a[0]), static_cast<uint32_t>(a[1]), static_cast<uint32_t>(a[2]), static_cast<uint64_t>(a[3]), static_cast<uint32_t>(a[4])); }},
    {"iiii", [](void* inst, const uint64_t* a) -> uint32_t { (void)a; return Z_wasi_snapshot_preview1Z_fd_read(inst, static_cast<uint32_t>(a[0]), static_cast<uint32_t>(a[1]), static_cast<uint32_t>(a[2]), static_cast<uint32_t>(a[3])); }},
    {"iiiIi", [](void* inst, const uint64_t* a) -> uint32_t { (void)a; return Z_wasi_snapshot_preview1Z_fd_readdir(inst, static_cast<uint32_t>(a[0]), static_cast<uint32_t>(a[1]), static_cast<uint32_t>(a[2]), static_cast<uint64_t>(a[3]), static_cast<uint32_t>(a[4])); }},
    {"ii", [](void* inst, const uint64_t* a) -> uint32_t { (void)a; return Z_wasi_snapshot_preview1Z_fd_renumber(inst, static_cast<uint32_t>(a[0]), static_cast<uint32_t>(a[1])); }},
    {"iIii", [](void* inst, const uint64_t* a) -> uint32_t { (void)a; return Z_wasi_snapshot_preview1Z_fd_seek(inst, static_cast<uint32_t>(a[0]), static_cast<uint64_t>(a[1]), static_cast<uint32_t>(a[2]), static_cast<uint32_t>(a[3])); }},
    {"i", [](void* inst, const uint64_t* a) -> uint32_t { (void)a; return Z_wasi_snapshot_preview1Z_fd_sync(inst, static_cast<uint32_t>(a[0])); }},
    {"ii", [](void* inst, const uint64_t* a) -> uint32_t { (void)a; return Z_wasi_snapshot_preview1Z_fd_tell(inst, static_cast<uint32_t>(a[0]), static_cast<uint32_t>(a[1])); }},
    {"iiii", [](void* inst, const uint64_t* a) -> uint32_t { (void)a; return Z_wasi_snapshot_preview1Z_fd_write(inst, static_cast<uint32_t>(a[0]), static_cast<uint32_t>(a[1]), static_cast<uint32_t>(a[2]), static_cast<uint32_t>(a[3])); }},
    {"iii", [](void* inst, const uint64_t* a) -> uint32_t { (void)a; return Z_wasi_snapshot_preview1Z_path_create_directory(inst, static_cast<uint32_t>(a[0]), static_cast<uint32_t>(a[1]), static_cast<uint32_t>(a[2])); }},
    {"iiiii", [](void* inst, const uint64_t* a) -> uint32_t { (void)a; return Z_wasi_snapshot_preview1Z_path_filestat_get(inst, static_cast<uint32_t>(a[0]), static_cast<uint32_t>(a[1]), static_cast<uint32_t>(a[2]), static_cast<uint32_t>(a[3]), static_cast<uint32_t>(a[4])); }},
    {"iiiiIIi", [](void* inst, const uint64_t* a) -> uint32_t { (void)a; return Z_wasi_snapshot_preview1Z_path_filestat_set_times(inst, static_cast<uint32_t>(a[0]), static_cast<uint32_t>(a[1]), static_cast<uint32_t>(a[2]), static_cast<uint32_t>(a[3]), static_cast<uint64_t>(a[4]), static_cast<uint64_t>(a[5]), static_cast<uint32_t>(a[6])); }},
    {"iiiiiii", [](void* inst, const uint64_t* a) -> uint32_t { (void)a; return Z_wasi_snapshot_preview1Z_path_link(inst, static_cast<uint32_t>(a[0]), static_cast<uint32_t>(a[1]), static_cast<uint32_t>(a[2]), static_cast<uint32_t>(a[3]), static_cast<uint32_t>(a[4]), static_cast<uint32_t>(a[5]), static_cast<uint32_t>(a[6])); }},
    {"iiiiiIIii", [](void* inst, const uint64_t* a) -> uint32_t { (void)a; return Z_wasi_snapshot_preview1Z_path_open(inst, static_cast<uint32_t>(a[0]), static_cast<uint32_t>(a[1]), static_cast<uint32_t>(a[2]), static_cast<uint32_t>(a[3]), static_cast<uint32_t>(a[4]), static_cast<uint64_t>(a[5]), static_cast<uint64_t>(a[6]), static_cast<uint32_t>(a[7]), static_cast<uint32_t>(a[8])); }},
    {"iiiiii", [](void* inst, const uint64_t* a) -> uint32_t { (void)a; return Z_wasi_snapshot_preview1Z_path_readlink(inst, static_cast<uint32_t>(a[0]), static_cast<uint32_t>(a[1]), static_cast<uint32_t>(a[2]), static_cast<uint32_t>(a[3]), static_cast<uint32_t>(a[4]), static_cast<uint32_t>(a[5])); }},
    {"iii", [](void* inst, const uint64_t* a) -> uint32_t { (void)a; return Z_wasi_snapshot_preview1Z_path_remove_directory(inst, static_cast<uint32_t>(a[0]), static_cast<uint32_t>(a[1]), static_cast<uint32_t>(a[2])); }},
    {"iiiiii", [](void* inst, const uint64_t* a) -> uint32_t { (void)a; return Z_wasi_snapshot_preview1Z_path_rename(inst, static_cast<uint32_t>(a[0]), static_cast<uint32_t>(a[1]), static_cast<uint32_t>(a[2]), static_cast<uint32_t>(a[3]), static_cast<uint32_t>(a[4]), static_cast<uint32_t>(a[5])); }},
    {"iiiii", [](void* inst, const uint64_t* a) -> uint32_t { (void)a; return Z_wasi_snapshot_preview1Z_path_symlink(inst, static_cast<uint32_t>(a[0]), static_cast<uint32_t>(a[1]), static_cast<uint32_t>(a[2]), static_cast<uint32_t>(a[3]), static_cast<uint32_t>(a[4])); }},
    {"iii", [](void* inst, const uint64_t* a) -> uint32_t { (void)a; return Z_wasi_snapshot_preview1Z_path_unlink_file(inst, static_cast<uint32_t>(a[0]), static_cast<uint32_t>(a[1]), static_cast<uint32_t>(a[2])); }},
    {"iiii", [](void* inst, const uint64_t* a) -> uint32_t { (void)a; return Z_wasi_snapshot_preview1Z_poll_oneoff(inst, static_cast<uint32_t>(a[0]), static_cast<uint32_t>(a[1]), static_cast<uint32_t>(a[2]), static_cast<uint32_t>(a[3])); }},
    {"i", [](void* inst, const uint64_t* a) -> uint32_t { (void)a; Z_wasi_snapshot_preview1Z_proc_exit(inst, static_cast<uint32_t>(a[0])); return 0; }},
    {"i", [](void* inst, const uint64_t* a) -> uint32_t { (void)a; return Z_wasi_snapshot_preview1Z_proc_raise(inst, static_cast<uint32_t>(a[0])); }},
    {"", [](void* inst, const uint64_t* a) -> uint32_t { (void)a; return Z_wasi_snapshot_preview1Z_sched_yield(inst); }},
    {"ii", [](void* inst, const uint64_t* a) -> uint32_t { (void)a; return Z_wasi_snapshot_preview1Z_random_get(inst, static_cast<uint32_t>(a[0]), static_cast<uint32_t>(a[1])); }},
    {"iii", [](void* inst, const uint64_t* a) -> uint32_t { (void)a; return Z_wasi_snapshot_preview1Z_sock_accept(inst, static_cast<uint32_t>(a[0]), static_cast<uint32_t>(a[1]), static_cast<uint32_t>(a[2])); }},
    {"iiiiii", [](void* inst, const uint64_t* a) -> uint32_t { (void)a; return Z_wasi_snapshot_preview1Z_sock_recv(inst, static_cast<uint32_t>(a[0]), static_cast<uint32_t>(a[1]), static_cast<uint32_t>(a[2]), static_cast<uint32_t>(a[3]), static_cast<uint32_t>(a[4]), static_cast<uint32_t>(a[5])); }},
    {"iiiii", [](void* inst, const uint64_t* a) -> uint32_t { (void)a; return Z_wasi_snapshot_preview1Z_sock_send(inst, static_cast<uint32_t>(a[0]), static_cast<uint32_t>(a[1]), static_cast<uint32_t>(a[2]), static_cast<uint32_t>(a[3]), static_cast<uint32_t>(a[4])); }},
    {"ii", [](void* inst, const uint64_t* a) -> uint32_t { (void)a; return Z_wasi_snapshot_preview1Z_sock_shutdown(inst, static_cast<uint32_t>(a[0]), static_cast<uint32_t>(a[1])); }},
    {"", [](void* inst, const uint64_t* a) -> uint32_t { (void)a; return Z_ternZ_host_api_version(inst); }},
    {"ii", [](void* inst, const uint64_t* a) -> uint32_t { (void)a; return Z_ternZ_last_error(inst, static_cast<uint32_t>(a[0]), static_cast<uint32_t>(a[1])); }},
    {"iii", [](void* inst, const uint64_t* a) -> uint32_t { (void)a; return Z_ternZ_log(inst, static_cast<uint32_t>(a[0]), static_cast<uint32_t>(a[1]), static_cast<uint32_t>(a[2])); }},
    {"iiiii", [](void* inst, const uint64_t* a) -> uint32_t { (void)a; return Z_ternZ_kv_get(inst, static_cast<uint32_t>(a[0]), static_cast<uint32_t>(a[1]), static_cast<uint32_t>(a[2]), static_cast<uint32_t>(a[3]), static_cast<uint32_t>(a[4])); }},
    {"iiii", [](void* inst, const uint64_t* a) -> uint32_t { (void)a; return Z_ternZ_kv_set(inst, static_cast<uint32_t>(a[0]), static_cast<uint32_t>(a[1]), static_cast<uint32_t>(a[2]), static_cast<uint32_t>(a[3])); }},
    {"ii", [](void* inst, const uint64_t* a) -> uint32_t { (void)a; return Z_ternZ_kv_delete(inst, static_cast<uint32_t>(a[0]), static_cast<uint32_t>(a[1])); }},
    {"iiiiiii", [](void* inst, const uint64_t* a) -> uint32_t { (void)a; return Z_ternZ_kv_list(inst, static_cast<uint32_t>(a[0]), static_cast<uint32_t>(a[1]), static_cast<uint32_t>(a[2]), static_cast<uint32_t>(a[3]), static_cast<uint32_t>(a[4]), static_cast<uint32_t>(a[5]), static_cast<uint32_t>(a[6])); }},
    {"iiii", [](void* inst, const uint64_t* a) -> uint32_t { (void)a; return Z_ternZ_publish(inst, static_cast<uint32_t>(a[0]), static_cast<uint32_t>(a[1]), static_cast<uint32_t>(a[2]), static_cast<uint32_t>(a[3])); }},
    {"iiiii", [](void* inst, const uint64_t* a) -> uint32_t { (void)a; return Z_ternZ_stream_publish(inst, static_cast<uint32_t>(a[0]), static_cast<uint32_t>(a[1]), static_cast<uint32_t>(a[2]), static_cast<uint32_t>(a[3]), static_cast<uint32_t>(a[4])); }},
    {"iiiiiii", [](void* inst, const uint64_t* a) -> uint32_t { (void)a; return Z_ternZ_invoke(inst, static_cast<uint32_t>(a[0]), static_cast<uint32_t>(a[1]), static_cast<uint32_t>(a[2]), static_cast<uint32_t>(a[3]), static_cast<uint32_t>(a[4]), static_cast<uint32_t>(a[5]), static_cast<uint32_t>(a[6])); }},
    {"iii", [](void* inst, const uint64_t* a) -> uint32_t { (void)a; return Z_ternZ_last_output(inst, static_cast<uint32_t>(a[0]), static_cast<uint32_t>(a[1]), static_cast<uint32_t>(a[2])); }},
};
constexpr size_t kHostFnCount = sizeof(kHostFns) / sizeof(kHostFns[0]);
constexpr size_t kFirstTern = 46;

// (module (memory (export "memory") 1))
const uint8_t kGuest[] = {0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x05, 0x03, 0x01,
                          0x00, 0x01, 0x07, 0x0a, 0x01, 0x06, 'm',  'e',  'm',  'o',  'r',
                          'y',  0x02, 0x00};

struct Live {
  std::unique_ptr<Engine> engine;
  std::unique_ptr<Instance> instance;
  std::vector<std::string> args{"fuzz", "an argument"};
  tern::Environment env{"REQUEST_METHOD=POST", "PATH_INFO=/x"};
};

Live& live() {
  static Live* l = [] {
    auto* l = new Live;
    l->engine = tern::fuzz::engine(tern::fuzz::temporaryDirectory("wasi"),
                                   tern::fuzz::Compiling::kReal);
    auto module = l->engine->load(std::span<const uint8_t>(kGuest, sizeof kGuest));
    if (!module.ok()) {
      std::fprintf(stderr, "cannot load the guest: %s\n", module.error().describe().c_str());
      std::abort();
    }
    Engine::InstantiateOptions options;
    options.limits.stdoutBytes = 4096;
    options.limits.stderrBytes = 1024;
    auto instance = l->engine->instantiate(*module, options);
    FUZZ_CHECK(instance.ok());
    l->instance = std::move(*instance);
    return l;
  }();
  return *l;
}

// The calls of one input; plain data only, since a call may leave by longjmp.
struct Calls {
  Sandbox* sandbox;
  const uint8_t* data;
  size_t size;
  uint32_t lastResult;
  size_t lastFn;
};

void runCalls(void* arg) {
  auto* c = static_cast<Calls*>(arg);
  size_t pos = 0;
  for (int n = 0; n < 16 && pos < c->size; ++n) {
    const HostFn& fn = kHostFns[c->data[pos++] % kHostFnCount];
    uint64_t a[16] = {};
    size_t k = 0;
    for (const char* s = fn.signature; *s; ++s, ++k) {
      size_t width = *s == 'I' ? 8 : 4;
      uint64_t v = 0;
      for (size_t b = 0; b < width && pos < c->size; ++b) v |= uint64_t{c->data[pos++]} << (8 * b);
      a[k] = v;
    }
    c->lastFn = static_cast<size_t>(&fn - kHostFns);
    c->lastResult = fn.call(&c->sandbox->wasiInstance, a);
    // WASI answers with an errno (the largest is 76, NOTCAPABLE).
    FUZZ_CHECK(c->lastFn >= kFirstTern || c->lastResult <= 76);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 4) return 0;
  Live& l = live();
  Sandbox& sb = l.instance->sandbox();
  FUZZ_CHECK(sb.memory != nullptr && sb.memory->size >= 65536);
  // Memory: zeroed, then the input's first bytes (their count in the first two bytes).
  size_t memBytes = std::min<size_t>((size_t{data[0]} | size_t{data[1]} << 8) % 1024, size - 3);
  size_t stdinBytes = std::min<size_t>(data[2], size - 3 - memBytes);
  std::memset(sb.memory->data, 0, sb.memory->size);
  std::memcpy(sb.memory->data, data + 3, memBytes);
  const uint8_t* rest = data + 3 + memBytes;
  sb.args = &l.args;
  sb.env = &l.env;
  sb.stdinData = std::string_view(reinterpret_cast<const char*>(rest), stdinBytes);
  sb.stdinPos = 0;
  sb.stdoutData.clear();
  sb.stderrData.clear();
  sb.stderrDropped = 0;
  sb.exitCode = 0;
  sb.lastError.clear();
  sb.hostFailure.clear();
  sb.invokeOutput.clear();
  sb.host = nullptr;

  Calls calls{&sb, rest + stdinBytes, size - 3 - memBytes - stdinBytes, 0, 0};
  int trap = l.engine->runGuest(sb, runCalls, &calls, monotonicNs() + 20'000'000);
  if (trap != kTrapNone && trap != kTrapExit && trap != kTrapTimeout && trap != kTrapOutputLimit) {
    std::fprintf(stderr, "host call %zu trapped with %d: %s\n", calls.lastFn, trap,
                 sb.hostFailure.c_str());
    std::abort();
  }
  FUZZ_CHECK(sb.stdoutData.size() <= sb.limits.stdoutBytes);
  FUZZ_CHECK(sb.stderrData.size() <= sb.limits.stderrBytes);
  FUZZ_CHECK(sb.stdinPos <= sb.stdinData.size());
  sb.stdinData = {};
  return 0;
}
