/* badptr: calls WASI imports directly with pointers and lengths outside linear
 * memory, and prints each call's errno as a line `call.case=ERRNO`, then exits 0.
 *
 * A correct host rejects every call with a non-zero errno instead of trapping or
 * touching memory outside the module. tern's expected answers are 21 (EFAULT) for
 * bad pointers and lengths (other runtimes use 61, EOVERFLOW, or 28, EINVAL, for
 * oversized counts), 28 (EINVAL) for the bad clock id and 8 (EBADF) for the bad
 * descriptor.
 * "straddle" cases start inside memory and end past it, and "wrap" cases wrap
 * around 2^32, to catch off-by-one and 32-bit overflow in bounds checks. */
#include <stdint.h>
#include <stdio.h>

#define WASI_IMPORT(name) \
  __attribute__((import_module("wasi_snapshot_preview1"), import_name(#name)))

/* Raw preview-1 signatures: every pointer and size is an i32, the result an errno. */
WASI_IMPORT(fd_write) int32_t raw_fd_write(int32_t fd, int32_t iovs, int32_t iovs_len,
                                           int32_t nwritten);
WASI_IMPORT(fd_read) int32_t raw_fd_read(int32_t fd, int32_t iovs, int32_t iovs_len,
                                         int32_t nread);
WASI_IMPORT(args_sizes_get) int32_t raw_args_sizes_get(int32_t argc, int32_t argv_buf_size);
WASI_IMPORT(args_get) int32_t raw_args_get(int32_t argv, int32_t argv_buf);
WASI_IMPORT(environ_sizes_get) int32_t raw_environ_sizes_get(int32_t count, int32_t buf_size);
WASI_IMPORT(environ_get) int32_t raw_environ_get(int32_t environ, int32_t environ_buf);
WASI_IMPORT(random_get) int32_t raw_random_get(int32_t buf, int32_t buf_len);
WASI_IMPORT(clock_time_get) int32_t raw_clock_time_get(int32_t id, int64_t precision,
                                                       int32_t time);

/* A WASI iovec/ciovec as laid out in guest memory. */
struct iovec32 {
  uint32_t buf;
  uint32_t len;
};

#define BAD 0xfffffff0u /* far past the end of any linear memory below 4 GiB */
#define CLOCK_MONOTONIC_ID 1

static unsigned char data[64];
static struct iovec32 iov;
static uint32_t result;
static uint64_t timestamp;

/* The address as a wasm i32 argument. */
static int32_t addr(const volatile void *p) {
  return (int32_t)(uintptr_t)p;
}

/* The current size of linear memory in bytes. */
static uint32_t memory_end(void) {
  return (uint32_t)__builtin_wasm_memory_size(0) * 65536u;
}

/* Points the shared iovec at [buf, buf + len). */
static int32_t set_iov(uint32_t buf, uint32_t len) {
  iov.buf = buf;
  iov.len = len;
  return addr(&iov);
}

static void report(const char *name, int32_t err) {
  printf("%s=%d\n", name, (int)err);
}

int main(void) {
  int32_t ok_buf = addr(data), ok_out = addr(&result);

  report("fd_write.iovs_oob", raw_fd_write(1, (int32_t)BAD, 1, ok_out));
  report("fd_write.iovs_straddle", raw_fd_write(1, (int32_t)(memory_end() - 4), 1, ok_out));
  report("fd_write.iovs_len_huge", raw_fd_write(1, set_iov((uint32_t)ok_buf, 0), 0x7fffffff, ok_out));
  report("fd_write.buf_oob", raw_fd_write(1, set_iov(0xfffff000u, 4096), 1, ok_out));
  report("fd_write.buf_straddle", raw_fd_write(1, set_iov(memory_end() - 8, 16), 1, ok_out));
  report("fd_write.buf_wrap", raw_fd_write(1, set_iov(BAD, 0x20), 1, ok_out));
  report("fd_write.buf_len_huge", raw_fd_write(1, set_iov((uint32_t)ok_buf, 0xffffffffu), 1, ok_out));
  report("fd_write.nwritten_oob", raw_fd_write(1, set_iov((uint32_t)ok_buf, 0), 1, (int32_t)BAD));
  report("fd_write.nwritten_straddle",
         raw_fd_write(1, set_iov((uint32_t)ok_buf, 0), 1, (int32_t)(memory_end() - 2)));
  report("fd_write.bad_fd", raw_fd_write(1234, set_iov((uint32_t)ok_buf, 1), 1, ok_out));

  report("fd_read.iovs_oob", raw_fd_read(0, (int32_t)BAD, 1, ok_out));
  report("fd_read.iovs_len_huge", raw_fd_read(0, set_iov((uint32_t)ok_buf, 0), 0x7fffffff, ok_out));
  report("fd_read.buf_oob", raw_fd_read(0, set_iov(BAD, 64), 1, ok_out));
  report("fd_read.buf_wrap", raw_fd_read(0, set_iov(BAD, 0x20), 1, ok_out));
  report("fd_read.nread_oob", raw_fd_read(0, set_iov((uint32_t)ok_buf, sizeof data), 1, (int32_t)BAD));

  report("args_sizes_get.oob", raw_args_sizes_get((int32_t)BAD, (int32_t)(BAD + 4)));
  report("args_get.oob", raw_args_get((int32_t)BAD, (int32_t)(BAD + 8)));
  report("environ_sizes_get.oob", raw_environ_sizes_get((int32_t)BAD, (int32_t)(BAD + 4)));
  report("environ_get.oob", raw_environ_get((int32_t)BAD, (int32_t)(BAD + 8)));

  report("random_get.oob", raw_random_get((int32_t)BAD, 4096));
  report("random_get.straddle", raw_random_get((int32_t)(memory_end() - 8), 16));
  report("random_get.len_huge", raw_random_get(ok_buf, (int32_t)0xffffffffu));

  report("clock_time_get.oob", raw_clock_time_get(CLOCK_MONOTONIC_ID, 0, (int32_t)BAD));
  report("clock_time_get.straddle",
         raw_clock_time_get(CLOCK_MONOTONIC_ID, 0, (int32_t)(memory_end() - 4)));
  report("clock_time_get.bad_id", raw_clock_time_get(99, 0, addr(&timestamp)));
  return 0;
}
