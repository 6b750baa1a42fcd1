// Compiling untrusted modules: modules beyond the module limits or that could never start
// are refused before any compiler runs, and the compilers run in a sandbox of memory, CPU
// and concurrency limits (docs/security-model.md, "Compiling untrusted modules").

#include <gtest/gtest.h>

#include <random>
#include <thread>
#include <vector>

#include "module_bytes.h"
#include "test_support.h"
#include "wasm/compiler.h"

namespace tern::wasm {
namespace {

// A small module with unique content (a random custom section), so nothing has compiled it.
std::vector<uint8_t> uniqueModule() {
  auto bytes = test::wat(R"((module (memory (export "memory") 1) (func (export "_start"))))");
  std::random_device rd;
  std::vector<uint8_t> section = {0, 9, 4, 'u', 'n', 'i', 'q'};
  for (int i = 0; i < 4; ++i) section.push_back(static_cast<uint8_t>(rd()));
  bytes.insert(bytes.end(), section.begin(), section.end());
  return bytes;
}

bool tmpIsEmpty(const std::filesystem::path& cache) {
  std::error_code ec;
  return !std::filesystem::exists(cache / "tmp", ec) ||
         std::filesystem::is_empty(cache / "tmp", ec);
}

// Issue 10: this module made cc1 grow to 22 GB. It is refused at once, naming the limit,
// and no compiler starts.
TEST(CompileSandboxTest, FiftyMillionLocalsAreRefusedBeforeAnyCompilerStarts) {
  test::TempDir cache;
  Compiler c(test::engineConfig(cache.path()).compiler);
  auto r = c.load(test::moduleOfFunctions(1, test::functionBody(50'000'000)));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidModule);
  EXPECT_EQ(errorKind(r.error().code()).httpStatus, 422);
  EXPECT_NE(r.error().message().find("declares 50000000 locals (the limit is 50000 per function)"),
            std::string::npos)
      << r.error().message();
  EXPECT_EQ(c.stats().compiles, 0u);
  EXPECT_EQ(c.stats().slots.peakRunning, 0u);  // never got as far as a compile slot
}

// With the module limits raised, the same module reaches wasm2c, which needs gigabytes for
// it: the address-space limit stops it quickly, with an error saying the module is too
// large to compile within the node's limits.
TEST(CompileSandboxTest, ACompileNeedingGigabytesStopsAtTheMemoryLimit) {
  test::TempDir cache;
  auto config = test::engineConfig(cache.path()).compiler;
  config.moduleLimits.localsPerFunction = 100'000'000;
  config.compileLimits.memoryBytes = 256ull << 20;
  Compiler c(config);
  auto r = c.load(test::moduleOfFunctions(1, test::functionBody(50'000'000)));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kModuleTooLarge) << r.error().describe();
  EXPECT_EQ(errorKind(r.error().code()).httpStatus, 413);
  EXPECT_NE(r.error().message().find("too large or complex to compile within this node's limits"),
            std::string::npos)
      << r.error().message();
  EXPECT_NE(r.error().message().find("256 MiB of address space"), std::string::npos)
      << r.error().message();
  EXPECT_EQ(c.stats().stoppedByLimits, 1u);
  EXPECT_EQ(c.stats().compiles, 0u);
  EXPECT_TRUE(tmpIsEmpty(cache.path()));
}

// 20,000 functions keep wasm2c 1.0.32 busy for many seconds of CPU (its time grows
// quadratically with functions); a 1 s CPU limit stops it.
TEST(CompileSandboxTest, ACompileBeyondTheCpuLimitIsStopped) {
  test::TempDir cache;
  auto config = test::engineConfig(cache.path()).compiler;
  config.compileLimits.cpuSeconds = 1;
  Compiler c(config);
  auto r = c.load(test::moduleOfFunctions(20'000, test::functionBody(0)));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kModuleTooLarge) << r.error().describe();
  EXPECT_NE(r.error().message().find("limit of 1 s of CPU time per compiler process"),
            std::string::npos)
      << r.error().message();
  EXPECT_EQ(c.stats().stoppedByLimits, 1u);
}

// Issue 10: a 4 GiB initial memory or a 2^32-1 entry table deployed and then failed every
// call. A module that no instance could start under the given limits is refused, before
// compiling.
TEST(CompileSandboxTest, ModulesThatCouldNeverStartAreRefusedBeforeCompiling) {
  test::TempDir cache;
  Compiler c(test::engineConfig(cache.path()).compiler);
  CompileOptions options;
  options.instanceLimits = SandboxLimits{};  // 128 MiB of memory, 2^20 table elements
  auto memory = c.load(test::wat(R"((module (memory 65536) (func (export "_start"))))"), options);
  ASSERT_FALSE(memory.ok());
  EXPECT_EQ(memory.error().code(), ErrorCode::kInvalidModule);
  EXPECT_EQ(memory.error().message(),
            "memory 0 starts at 65536 pages (4096 MiB), more than the memory limit of 128 MiB: "
            "no instance of this module could start");
  auto table = c.load(
      test::wat(R"((module (table 4294967295 funcref) (func (export "_start"))))"), options);
  ASSERT_FALSE(table.ok());
  EXPECT_EQ(table.error().code(), ErrorCode::kInvalidModule);
  EXPECT_EQ(table.error().message(),
            "table 0 starts with 4294967295 elements, more than the limit of 1048576: no "
            "instance of this module could start");
  EXPECT_EQ(c.stats().compiles, 0u);

  // At the limit it compiles; without instance limits (the conformance harness) as well.
  options.instanceLimits->memoryPages = 65536;
  auto fits = c.load(test::wat(R"((module (memory 65536) (func (export "_start"))))"), options);
  EXPECT_TRUE(fits.ok()) << fits.error().describe();
}

TEST(CompileSandboxTest, AtMostTheConfiguredNumberOfCompilesRunAtOnce) {
  test::TempDir cache;
  auto config = test::engineConfig(cache.path()).compiler;
  config.compileLimits.concurrency = 2;
  Compiler c(config);
  std::vector<std::thread> threads;
  for (int i = 0; i < 5; ++i) {
    threads.emplace_back([&c] {
      auto r = c.load(uniqueModule());
      EXPECT_TRUE(r.ok()) << r.error().describe();
    });
  }
  for (auto& t : threads) t.join();
  auto s = c.stats();
  EXPECT_EQ(s.compiles, 5u);
  EXPECT_EQ(s.slots.slots, 2u);
  EXPECT_GE(s.slots.peakRunning, 1u);
  EXPECT_LE(s.slots.peakRunning, 2u);
  EXPECT_EQ(s.slots.running, 0u);
  EXPECT_EQ(s.slots.waiting, 0u);
}

// Waiting compiles get slots in the order they asked for them.
TEST(CompileSlotsTest, WaitersGetSlotsInArrivalOrder) {
  CompileSlots slots(1);
  std::mutex mu;
  std::vector<int> order;
  std::optional<CompileSlots::Held> first(slots.acquire());
  std::vector<std::thread> waiters;
  for (int i = 0; i < 3; ++i) {
    waiters.emplace_back([&, i] {
      auto held = slots.acquire();
      std::lock_guard lock(mu);
      order.push_back(i);
    });
    // The next waiter starts only once this one is queued.
    ASSERT_TRUE(test::eventually([&] { return slots.stats().waiting == uint64_t(i) + 1; }));
  }
  EXPECT_EQ(slots.stats().running, 1u);
  first.reset();
  for (auto& t : waiters) t.join();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(slots.stats().peakRunning, 1u);
  EXPECT_EQ(slots.stats().waited, 3u);
}

}  // namespace
}  // namespace tern::wasm
