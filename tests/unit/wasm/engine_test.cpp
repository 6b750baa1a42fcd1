// The engine end to end: fresh sandboxes, traps, limits, preemption, WASI.

#include "wasm/engine.h"
#include "wasm/host_api.h"

#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <string>
#include <thread>

#include "test_support.h"
#include "util/sanitizers.h"

namespace tern::wasm {
namespace {

using test::loadExample;
using test::wat;

class EngineTest : public ::testing::Test {
 protected:
  Engine engine{test::engineConfig()};

  std::shared_ptr<const CompiledModule> load(const std::vector<uint8_t>& bytes) {
    auto m = engine.load(bytes);
    EXPECT_TRUE(m.ok()) << (m.ok() ? "" : m.error().describe());
    return m.ok() ? *m : nullptr;
  }

  InvocationResult run(const std::shared_ptr<const CompiledModule>& m, std::string_view input = "",
                       InvocationRequest req = {}) {
    req.input = input;
    return engine.invoke(m, req);
  }
};

// A WASI module whose _start body is `body`, with memory of `pages` pages and helpers:
// $write(fd, ptr, len) and $exit(code).
std::string wasiModule(const std::string& body, int pages = 1, const std::string& extra = "") {
  return R"((module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") )" +
         std::to_string(pages) + R"()
  (global $g (mut i32) (i32.const 0))
  (func $write (param $fd i32) (param $ptr i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (local.get $fd) (i32.const 0) (i32.const 1) (i32.const 8))))
  )" + extra + R"(
  (func (export "_start") )" +
         body + "))";
}

TEST_F(EngineTest, HelloWritesItsGreeting) {
  auto m = loadExample(engine, "hello");
  auto r = run(m);
  EXPECT_EQ(r.outcome, Outcome::kOk);
  EXPECT_EQ(r.stdoutData, "Hello from tern!\n");
  EXPECT_EQ(r.exitCode, 0);
}

TEST_F(EngineTest, EchoIsBinarySafeForEmptySmallAndLargeInputs) {
  auto m = loadExample(engine, "echo");
  std::string binary("a\0b\xff\x00z", 6);
  EXPECT_EQ(run(m, binary).stdoutData, binary);
  EXPECT_EQ(run(m, "").stdoutData, "");
  std::string big(3 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7919 % 251);
  auto r = run(m, big);
  EXPECT_EQ(r.outcome, Outcome::kOk);
  EXPECT_TRUE(r.stdoutData == big);
}

TEST_F(EngineTest, RustFunctionRuns) {
  auto m = loadExample(engine, "hello_rust");
  InvocationRequest req;
  req.env = {"REQUEST_METHOD=POST"};
  auto r = run(m, "12345", req);
  EXPECT_EQ(r.outcome, Outcome::kOk) << r.detail;
  EXPECT_NE(r.stdoutData.find("got 5 bytes"), std::string::npos) << r.stdoutData;
  EXPECT_NE(r.stdoutData.find("POST"), std::string::npos) << r.stdoutData;
}

TEST_F(EngineTest, EachInvocationStartsFromFreshState) {
  // Reads a byte in the first page, one in the second, and a global, then sets all three;
  // the exit code is their sum, so any state surviving an invocation shows up.
  auto m = load(wat(wasiModule(R"(
    (call $exit (i32.add (i32.add (i32.load8_u (i32.const 100)) (i32.load8_u (i32.const 70000)))
                         (global.get $g)))
  )", 2)));
  auto m2 = load(wat(wasiModule(R"(
    (local $v i32)
    (local.set $v (i32.add (i32.load8_u (i32.const 100)) (i32.load8_u (i32.const 70000))))
    (i32.store8 (i32.const 100) (i32.const 1))
    (i32.store8 (i32.const 70000) (i32.const 1))
    (global.set $g (i32.const 1))
    (call $exit (local.get $v))
  )", 2)));
  for (int i = 0; i < 50; ++i) {
    auto r = run(m2);
    ASSERT_EQ(r.exitCode, 0) << "invocation " << i << " saw state from an earlier one";
    ASSERT_EQ(run(m).exitCode, 0);
  }
}

TEST_F(EngineTest, LargeTouchedMemoryIsResetToo) {
  // Fills 2 MiB (more than is zeroed in place) of a 300-page memory (more than is scanned),
  // then checks it starts at zero: exercises both reset paths of the pool.
  for (int pages : {40, 300}) {
    auto m = load(wat(wasiModule(R"(
      (if (i32.or (i32.load8_u (i32.const 1000)) (i32.load8_u (i32.const 2000000)))
        (then (call $exit (i32.const 9))))
      (memory.fill (i32.const 0) (i32.const 7) (i32.const 2097152))
    )", pages)));
    for (int i = 0; i < 5; ++i) {
      auto r = run(m);
      ASSERT_EQ(r.outcome, Outcome::kOk) << pages << " pages, run " << i << ": " << r.detail;
    }
  }
  EXPECT_EQ(engine.pool().stats().slotsInUse, 0u);
}

TEST_F(EngineTest, TrapsAreNamedAndContained) {
  struct Case {
    const char* example;
    int trap;
  } cases[] = {{"oob", kTrapOobMemory},
               {"divzero", kTrapDivByZero},
               {"unreachable", kTrapUnreachable},
               {"recurse", kTrapExhaustion}};
  for (const auto& c : cases) {
    auto m = loadExample(engine, c.example);
    auto r = run(m);
    EXPECT_EQ(r.outcome, Outcome::kTrap) << c.example;
    EXPECT_EQ(r.trapCode, c.trap) << c.example << ": " << r.detail;
    EXPECT_EQ(r.detail, trapName(c.trap));
    ASSERT_TRUE(r.error());
    EXPECT_EQ(r.error()->code(), ErrorCode::kTrap);
  }
  // The process is healthy and nothing leaked.
  EXPECT_EQ(run(loadExample(engine, "hello")).stdoutData, "Hello from tern!\n");
  EXPECT_EQ(engine.pool().stats().slotsInUse, 0u);
}

TEST_F(EngineTest, StackOverflowIsATrapOnAnyThread) {
  auto m = loadExample(engine, "recurse");
  for (int i = 0; i < 3; ++i) {
    InvocationResult r;
    std::thread t([&] { r = run(m); });
    t.join();
    EXPECT_EQ(r.trapCode, kTrapExhaustion) << r.detail;
  }
  // And repeatedly on the same thread.
  for (int i = 0; i < 3; ++i) EXPECT_EQ(run(m).trapCode, kTrapExhaustion);
}

// The spec's runaway recursion (assert_exhaustion ... "call stack exhausted"), direct and
// mutual, traps at the optimisation level functions are served at: the C compiler must not
// turn the calls into a loop that spins until the timeout.
TEST_F(EngineTest, RunawayRecursionExhaustsTheStackAtO2) {
  auto m = load(wat(R"((module
    (memory (export "memory") 1)
    (func $runaway (call $runaway))
    (func $mutual1 (call $mutual2))
    (func $mutual2 (call $mutual1))
    (func (export "_start") (call $runaway))
    (func (export "mutual") (call $mutual1))))"));
  ASSERT_TRUE(m);
  InvocationRequest req;
  req.timeout = std::chrono::minutes(5);
  auto r = run(m, "", req);
  EXPECT_EQ(r.outcome, Outcome::kTrap) << r.detail;
  EXPECT_EQ(r.trapCode, kTrapExhaustion) << r.detail;
  auto inst = engine.instantiate(m, {});
  ASSERT_TRUE(inst.ok()) << inst.error().describe();
  const tern_export_t* mutual = m->findExport("mutual");
  ASSERT_NE(mutual, nullptr);
  EXPECT_EQ((*inst)->call(*mutual, nullptr, nullptr, std::chrono::minutes(5)), kTrapExhaustion);
}

// Arithmetic on a signaling NaN gives a quiet NaN (the spec's nan:arithmetic) at the level
// functions are served at: the C compiler must not fold x * 1, x / 1, x - 0, x / -1, -0 - x
// or -1 * x into x or a sign flip (float_exprs' no_fold cases), and sqrt, floor, min and max
// quiet it too. Each export takes the bits of a float and returns the bits of the result.
TEST_F(EngineTest, SignalingNaNsComeOutQuietAtO2) {
  auto m = load(wat(R"((module
    (memory (export "memory") 1)
    (func $f32 (param i32) (result f32) (f32.reinterpret_i32 (local.get 0)))
    (func $f64 (param i64) (result f64) (f64.reinterpret_i64 (local.get 0)))
    (func (export "f32.mul_one") (param i32) (result i32)
      (i32.reinterpret_f32 (f32.mul (call $f32 (local.get 0)) (f32.const 1))))
    (func (export "f32.div_neg1") (param i32) (result i32)
      (i32.reinterpret_f32 (f32.div (call $f32 (local.get 0)) (f32.const -1))))
    (func (export "f32.neg0_sub") (param i32) (result i32)
      (i32.reinterpret_f32 (f32.sub (f32.const -0) (call $f32 (local.get 0)))))
    (func (export "f32.sqrt") (param i32) (result i32)
      (i32.reinterpret_f32 (f32.sqrt (call $f32 (local.get 0)))))
    (func (export "f64.sub_zero") (param i64) (result i64)
      (i64.reinterpret_f64 (f64.sub (call $f64 (local.get 0)) (f64.const 0))))
    (func (export "f64.neg1_mul") (param i64) (result i64)
      (i64.reinterpret_f64 (f64.mul (f64.const -1) (call $f64 (local.get 0)))))
    (func (export "f64.div_one") (param i64) (result i64)
      (i64.reinterpret_f64 (f64.div (call $f64 (local.get 0)) (f64.const 1))))
    (func (export "f64.floor") (param i64) (result i64)
      (i64.reinterpret_f64 (f64.floor (call $f64 (local.get 0)))))
    (func (export "f64.min") (param i64) (result i64)
      (i64.reinterpret_f64 (f64.min (call $f64 (local.get 0)) (f64.const 1))))))"));
  ASSERT_TRUE(m);
  auto inst = engine.instantiate(m, {});
  ASSERT_TRUE(inst.ok()) << inst.error().describe();
  constexpr uint64_t kSnan32 = 0x7fa00000, kQuiet32 = 0x7fc00000;
  constexpr uint64_t kSnan64 = 0x7ff4000000000000, kQuiet64 = 0x7ff8000000000000;
  for (const char* name : {"f32.mul_one", "f32.div_neg1", "f32.neg0_sub", "f32.sqrt"}) {
    const tern_export_t* e = m->findExport(name);
    ASSERT_NE(e, nullptr) << name;
    uint64_t args[1] = {kSnan32}, results[1] = {0};
    ASSERT_EQ((*inst)->call(*e, args, results, std::chrono::seconds(60)), kTrapNone) << name;
    uint64_t bits = results[0] & 0xffffffff;
    EXPECT_EQ(bits & 0x7fffffff & kQuiet32, kQuiet32) << name << " gave " << std::hex << bits;
    EXPECT_NE(bits & 0x7fffff, 0u) << name << " gave " << std::hex << bits;
  }
  for (const char* name : {"f64.sub_zero", "f64.neg1_mul", "f64.div_one", "f64.floor", "f64.min"}) {
    const tern_export_t* e = m->findExport(name);
    ASSERT_NE(e, nullptr) << name;
    uint64_t args[1] = {kSnan64}, results[1] = {0};
    ASSERT_EQ((*inst)->call(*e, args, results, std::chrono::seconds(60)), kTrapNone) << name;
    EXPECT_EQ(results[0] & kQuiet64, kQuiet64) << name << " gave " << std::hex << results[0];
  }
}

TEST_F(EngineTest, ExitCodeIsReported) {
  auto r = run(loadExample(engine, "exit3"));
  EXPECT_EQ(r.outcome, Outcome::kExited);
  EXPECT_EQ(r.exitCode, 3);
  EXPECT_FALSE(r.error());
}

TEST_F(EngineTest, RunawayLoopIsPreemptedAtItsDeadline) {
  auto m = loadExample(engine, "loop");
  InvocationRequest req;
  req.timeout = std::chrono::milliseconds(50);
  auto r = run(m, "", req);
  EXPECT_EQ(r.outcome, Outcome::kTimeout);
  EXPECT_EQ(r.trapCode, kTrapTimeout);
  EXPECT_GE(r.durationNs, 50'000'000);
  EXPECT_EQ(engine.pool().stats().slotsInUse, 0u);
}

TEST_F(EngineTest, PreemptionDoesNotDisturbConcurrentInvocations) {
  auto loop = loadExample(engine, "loop");
  auto hello = loadExample(engine, "hello");
  std::atomic<int> timeouts{0}, greetings{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&] {
      InvocationRequest req;
      req.timeout = std::chrono::milliseconds(30);
      for (int i = 0; i < 3; ++i) timeouts += run(loop, "", req).outcome == Outcome::kTimeout;
    });
    threads.emplace_back([&] {
      InvocationRequest req;
      req.timeout = std::chrono::milliseconds(5000);
      for (int i = 0; i < 2000; ++i) {
        auto r = run(hello, "", req);
        greetings += r.outcome == Outcome::kOk && r.stdoutData == "Hello from tern!\n";
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(timeouts, 6);
  EXPECT_EQ(greetings, 4000);
}

// A thread registers with the watchdog of the engine it invokes; moving to another engine,
// and that first engine going away, must leave preemption working on the new one.
TEST(EngineWatchdogTest, PreemptionFollowsAThreadFromOneEngineToTheNext) {
  std::thread worker([] {
    InvocationRequest quick;
    quick.timeout = std::chrono::milliseconds(5000);
    {
      Engine first(test::engineConfig());
      auto hello = loadExample(first, "hello");
      EXPECT_EQ(first.invoke(hello, quick).outcome, Outcome::kOk);
    }
    Engine second(test::engineConfig());
    auto hello = loadExample(second, "hello");
    auto loop = loadExample(second, "loop");
    InvocationRequest runaway;
    runaway.timeout = std::chrono::milliseconds(50);
    for (int i = 0; i < 3; ++i) {
      EXPECT_EQ(second.invoke(hello, quick).outcome, Outcome::kOk);
      auto r = second.invoke(loop, runaway);
      EXPECT_EQ(r.outcome, Outcome::kTimeout);
      EXPECT_GE(r.durationNs, 50'000'000);
    }
  });
  worker.join();
}

// Invocations back to back with a far deadline: the watchdog sleeps until that deadline
// instead of waking on a timer (it used to look every millisecond while any invocation had
// a deadline). Each begin publishes a deadline later than the one it sleeps for, so none
// wakes it. A scan may catch the thread between two invocations or in the middle of
// publishing; then the watchdog lingers on its timer and looks again after kLingerNs, or is
// woken by the next begin. So it looks at most twice per linger period, whatever the
// machine's load; a look every millisecond would be 300 over the loop's 300 ms.
TEST(WatchdogTest, SleepsUntilTheEarliestDeadlineWhileInvocationsRun) {
  const int64_t constructed = monotonicNs();
  Watchdog watchdog;
  ThreadState& ts = currentThread();
  const int64_t start = monotonicNs();
  const int64_t minute = 60'000'000'000;
  uint64_t invocations = 0;
  for (int64_t now = start; now - start < 300'000'000; now = monotonicNs()) {
    watchdog.begin(ts, now + minute);
    watchdog.end(ts);
    ++invocations;
  }
  const uint64_t scans = watchdog.scans();
  const int64_t elapsed = monotonicNs() - constructed;
  EXPECT_GT(invocations, 0u);
  // The first look (no thread yet), then at most two per linger period begun since.
  const uint64_t bound = 1 + 2 * static_cast<uint64_t>(elapsed / Watchdog::kLingerNs + 1);
  EXPECT_LE(scans, bound) << "over " << invocations << " invocations in " << elapsed / 1'000'000
                          << " ms";
}

TEST_F(EngineTest, SleepIsCutAtTheDeadline) {
  // poll_oneoff on a 60 s relative clock, with a 50 ms timeout.
  auto m = load(wat(R"((module
    (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
    (memory (export "memory") 1)
    (func (export "_start")
      (i32.store8 (i32.const 8) (i32.const 0))
      (i32.store (i32.const 16) (i32.const 1))
      (i64.store (i32.const 24) (i64.const 60000000000))
      (drop (call $poll (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 128))))))"));
  InvocationRequest req;
  req.timeout = std::chrono::milliseconds(50);
  EXPECT_EQ(run(m, "", req).outcome, Outcome::kTimeout);
}

TEST_F(EngineTest, MemoryGrowReturnsMinusOneBeyondTheLimit) {
  // Traps unless growing by 100 pages (6.25 MiB) fails under a 1 MiB limit; then grows
  // within the limit, which must succeed.
  auto m = load(wat(wasiModule(R"(
    (if (i32.ne (memory.grow (i32.const 100)) (i32.const -1)) (then unreachable))
    (if (i32.ne (memory.grow (i32.const 3)) (i32.const 1)) (then unreachable))
    (i32.store (i32.const 200000) (i32.const 5))
  )")));
  InvocationRequest req;
  req.limits.memoryPages = 16;
  auto r = run(m, "", req);
  EXPECT_EQ(r.outcome, Outcome::kOk) << r.detail;
  EXPECT_EQ(r.peakMemoryBytes, 4u * 65536);
}

TEST_F(EngineTest, MemoryBombHitsTheLimit) {
  auto m = loadExample(engine, "membomb");
  InvocationRequest req;
  req.limits.memoryPages = 16 * 16;  // 16 MiB
  auto r = run(m, "", req);
  EXPECT_EQ(r.outcome, Outcome::kMemoryLimit) << r.detail;
  EXPECT_NE(r.detail.find("the limit is 16 MiB"), std::string::npos) << r.detail;
  ASSERT_TRUE(r.error());
  EXPECT_EQ(r.error()->code(), ErrorCode::kMemoryLimit);
}

TEST_F(EngineTest, InitialMemoryAboveTheLimitIsRefused) {
  auto m = load(wat(wasiModule("", 100)));
  InvocationRequest req;
  req.limits.memoryPages = 16;
  auto r = run(m, "", req);
  EXPECT_EQ(r.outcome, Outcome::kMemoryLimit);
  EXPECT_NE(r.detail.find("6.25 MiB"), std::string::npos) << r.detail;
}

TEST_F(EngineTest, StartFunctionTrapIsATrap) {
  auto m = load(wat(R"((module
    (memory 1)
    (func $init unreachable)
    (start $init)
    (func (export "_start"))))"));
  auto r = run(m);
  EXPECT_EQ(r.outcome, Outcome::kTrap);
  EXPECT_EQ(r.trapCode, kTrapUnreachable);
  EXPECT_EQ(engine.pool().stats().slotsInUse, 0u);
}

TEST_F(EngineTest, ModuleWithoutStartIsNotInvocable) {
  auto m = load(wat("(module (memory 1) (func (export \"main\")))"));
  auto r = run(m);
  EXPECT_EQ(r.outcome, Outcome::kInvalid);
  EXPECT_NE(r.detail.find("_start"), std::string::npos);
}

TEST_F(EngineTest, StdoutFloodStopsAtTheOutputLimit) {
  auto m = loadExample(engine, "flood");
  InvocationRequest req;
  req.limits.stdoutBytes = 1 << 20;
  auto r = run(m, "", req);
  EXPECT_EQ(r.outcome, Outcome::kOutputLimit);
  EXPECT_EQ(r.stdoutData.size(), 1u << 20);
  ASSERT_TRUE(r.error());
  EXPECT_EQ(r.error()->code(), ErrorCode::kOutputLimit);
}

TEST_F(EngineTest, StderrFloodIsTruncatedNotFatal) {
  auto m = load(wat(wasiModule(R"(
    (local $i i32)
    (loop $l
      (call $write (i32.const 2) (i32.const 1024) (i32.const 1000))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 1000))))
  )")));
  InvocationRequest req;
  req.limits.stderrBytes = 4096;
  auto r = run(m, "", req);
  EXPECT_EQ(r.outcome, Outcome::kOk);
  EXPECT_EQ(r.stderrData.size(), 4096u);
  EXPECT_EQ(r.stderrDropped, 1000u * 1000 - 4096);
}

TEST_F(EngineTest, BadPointersToWasiReturnErrnoAndTouchNothing) {
  auto m = loadExample(engine, "badptr");
  auto r = run(m);
  ASSERT_EQ(r.outcome, Outcome::kOk) << r.detail;
  size_t lines = 0;
  size_t pos = 0;
  while (pos < r.stdoutData.size()) {
    size_t end = r.stdoutData.find('\n', pos);
    std::string line = r.stdoutData.substr(pos, end - pos);
    pos = end + 1;
    ++lines;
    auto eq = line.find('=');
    ASSERT_NE(eq, std::string::npos) << line;
    int err = std::stoi(line.substr(eq + 1));
    // FAULT for bad memory, INVAL for bad counts or clock ids, BADF for a bad descriptor.
    EXPECT_TRUE(err == 21 || err == 28 || err == 8) << line;
  }
  EXPECT_GE(lines, 20u);
  EXPECT_EQ(run(loadExample(engine, "hello")).stdoutData, "Hello from tern!\n");
}

TEST_F(EngineTest, WasiWorldOfAFunction) {
  auto m = engine.loadFile(test::guestsDir() / "wasi_probe.wasm");
  ASSERT_TRUE(m.ok()) << m.error().describe();
  InvocationRequest req;
  req.args = {"probe", "first arg", ""};
  req.env = {"PROBE_VAR=some value"};
  auto r = run(*m, std::string(10000, 'x'), req);
  ASSERT_EQ(r.outcome, Outcome::kOk) << r.detail << r.stderrData;
  const std::string& o = r.stdoutData;
  for (const char* want :
       {"argc=3\n", "arg0=probe\n", "arg1=first arg\n", "arg2=\n", "PROBE_VAR=some value\n",
        "stdin_bytes=10000\n", "slept_at_least_2ms=1\n", "realtime_after_2020=1\n",
        "random_differs=1\n", "open_denied=1\n", "sockets_std_notsock=1\n",
        "sockets_unopened_badf=1\n"}) {
    EXPECT_NE(o.find(want), std::string::npos) << "missing " << want << " in:\n" << o;
  }
  EXPECT_EQ(r.stderrData, "probe log line\n");
}

TEST_F(EngineTest, TheGuestSeesTheEnvironmentAsGivenAndEachEntryEndsAtItsFirstNul) {
  auto m = engine.loadFile(test::guestsDir() / "cgi.wasm");
  ASSERT_TRUE(m.ok()) << m.error().describe();
  InvocationRequest req;
  req.env.add("A=1");
  req.env.add("EMPTY", "");
  // What follows a NUL must not become a variable of its own.
  req.env.add(std::string("CUT=a\0HIDDEN=1", 14));
  req.env.add("VALUE", std::string("b\0HIDDEN=2", 10));
  req.env.add(std::string("KEY\0HIDDEN", 10), "3");
  Environment more{"X=y=z"};
  req.env.append(more);
  req.env.add("LAST", std::string(5000, 'v'));
  EXPECT_EQ(req.env.size(), 7u);
  auto r = run(*m, "in", req);
  ASSERT_EQ(r.outcome, Outcome::kOk) << r.detail;
  std::string want = "A=1\nEMPTY=\nCUT=a\nVALUE=b\nKEY\nX=y=z\nLAST=" + std::string(5000, 'v') +
                     "\nbody=in\n";
  auto head = r.stdoutData.find("\r\n\r\n");
  ASSERT_NE(head, std::string::npos) << r.stdoutData;
  EXPECT_EQ(r.stdoutData.substr(head + 4), want);
}

TEST_F(EngineTest, ThousandSandboxesAliveAtOnce) {
  if (kThreadSanitizer) {
    // ThreadSanitizer's memory layout leaves the program room for a few hundred 8 GiB
    // slots (288 here), not a thousand.
    GTEST_SKIP() << "a thousand 8 GiB reservations do not fit under ThreadSanitizer";
  }
  auto m = loadExample(engine, "hello");
  std::vector<std::unique_ptr<Instance>> alive;
  for (int i = 0; i < 1000; ++i) {
    auto inst = engine.instantiate(m, {});
    ASSERT_TRUE(inst.ok()) << i << ": " << inst.error().describe();
    alive.push_back(std::move(*inst));
  }
  EXPECT_EQ(engine.pool().stats().slotsInUse, 1000u);
  alive.clear();
  EXPECT_EQ(engine.pool().stats().slotsInUse, 0u);
}

TEST(EnginePoolTest, ExhaustedPoolIsAnErrorNotACrash) {
  auto config = test::engineConfig();
  config.maxSandboxes = 2;
  Engine engine(config);
  auto m = loadExample(engine, "hello");
  auto a = engine.instantiate(m, {});
  auto b = engine.instantiate(m, {});
  ASSERT_TRUE(a.ok() && b.ok());
  auto r = engine.invoke(m, {});
  EXPECT_EQ(r.outcome, Outcome::kResourceExhausted);
  ASSERT_TRUE(r.error());
  EXPECT_EQ(r.error()->code(), ErrorCode::kResourceExhausted);
  a->reset();
  EXPECT_EQ(engine.invoke(m, {}).outcome, Outcome::kOk);
}

}  // namespace
}  // namespace tern::wasm

namespace tern::wasm {
namespace {

// Every WASI function that takes a guest pointer, called with pointers past the end of
// memory, straddling it, and wrapping around 4 GiB: each returns FAULT and the sandbox
// carries on.
TEST_F(EngineTest, EveryWasiPointerIsBoundsChecked) {
  struct Call {
    const char* name;
    const char* params;  // wasm param types
    const char* args;    // WAT operands, P = the bad pointer
  } calls[] = {
      {"args_get", "i32 i32", "P P"},
      {"args_sizes_get", "i32 i32", "P (i32.const 0)"},
      {"environ_get", "i32 i32", "(i32.const 0) P"},
      {"environ_sizes_get", "i32 i32", "(i32.const 0) P"},
      {"clock_res_get", "i32 i32", "(i32.const 1) P"},
      {"clock_time_get", "i32 i64 i32", "(i32.const 1) (i64.const 0) P"},
      {"fd_fdstat_get", "i32 i32", "(i32.const 1) P"},
      {"fd_read", "i32 i32 i32 i32", "(i32.const 0) P (i32.const 1) (i32.const 0)"},
      {"fd_read", "i32 i32 i32 i32", "(i32.const 0) (i32.const 0) (i32.const 1) P"},
      {"fd_write", "i32 i32 i32 i32", "(i32.const 1) P (i32.const 1) (i32.const 0)"},
      {"fd_write", "i32 i32 i32 i32", "(i32.const 1) (i32.const 0) (i32.const 1) P"},
      {"poll_oneoff", "i32 i32 i32 i32", "P (i32.const 0) (i32.const 1) (i32.const 0)"},
      {"poll_oneoff", "i32 i32 i32 i32", "(i32.const 0) P (i32.const 1) (i32.const 0)"},
      {"poll_oneoff", "i32 i32 i32 i32", "(i32.const 0) (i32.const 64) (i32.const 1) P"},
      {"random_get", "i32 i32", "P (i32.const 16)"},
  };
  const char* badPointers[] = {"(i32.const 65536)", "(i32.const 65534)", "(i32.const -4)",
                               "(i32.const -1)"};
  for (const auto& c : calls) {
    for (const char* p : badPointers) {
      std::string args = c.args;
      for (size_t at; (at = args.find('P')) != std::string::npos;) args.replace(at, 1, p);
      std::string text = std::string(R"((module
        (import "wasi_snapshot_preview1" ")") + c.name + R"(" (func $f (param )" + c.params +
                         R"() (result i32)))
        (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
        (memory (export "memory") 1)
        (func (export "_start")
          ;; a valid iovec at 0 (so only the pointer under test is bad)
          (i32.store (i32.const 0) (i32.const 16))
          (i32.store (i32.const 4) (i32.const 4))
          (call $exit (call $f )" + args + "))))";
      auto m = load(wat(text));
      ASSERT_TRUE(m);
      InvocationRequest req;
      req.args = {"fn", "an argument"};
      req.env = {"KEY=value"};
      auto r = run(m, "input", req);
      EXPECT_EQ(r.outcome, Outcome::kExited) << c.name << " " << args << ": " << r.detail;
      EXPECT_EQ(r.exitCode, 21) << c.name << " " << args;
    }
  }
}

// A function has no sockets: the standard descriptors are not sockets (NOTSOCK, 57) and
// no other descriptor is open (BADF, 8), as the WASI test suite's sock_* cases expect.
TEST_F(EngineTest, SocketCallsFindNoSocket) {
  struct Case {
    const char* call;  // the import and its arguments after the descriptor
    int fd;
    int expected;
  };
  const Case cases[] = {
      {"sock_shutdown", 0, 57}, {"sock_shutdown", 1, 57}, {"sock_shutdown", 2, 57},
      {"sock_shutdown", 3, 8},  {"sock_shutdown", 100, 8}, {"sock_shutdown", -1, 8},
      {"sock_recv", 0, 57},     {"sock_recv", 5, 8},       {"sock_send", 1, 57},
      {"sock_send", 7, 8},      {"sock_accept", 2, 57},    {"sock_accept", 3, 8},
  };
  for (const Case& c : cases) {
    std::string call = c.call;
    std::string params = call == "sock_shutdown" ? "i32 i32"
                         : call == "sock_accept" ? "i32 i32 i32"
                         : call == "sock_send"   ? "i32 i32 i32 i32 i32"
                                                 : "i32 i32 i32 i32 i32 i32";
    std::string args;
    for (size_t k = 1; k < (params.size() + 1) / 4; ++k) args += " (i32.const 0)";
    auto m = load(wat("(module (import \"wasi_snapshot_preview1\" \"" + call + "\" (func $s (param " + params +
                      ") (result i32))) (import \"wasi_snapshot_preview1\" \"proc_exit\" (func $exit (param i32)))"
                      " (memory (export \"memory\") 1) (func (export \"_start\") (call $exit (call $s (i32.const " +
                      std::to_string(c.fd) + ")" + args + "))))"));
    auto r = run(m);
    EXPECT_EQ(r.exitCode, c.expected) << c.call << " fd " << c.fd << ": " << r.detail;
  }
}

// A host handler that throws (a bug in tern, or memory running out) traps the guest with an
// internal error instead of unwinding through the generated code; the engine goes on.
TEST_F(EngineTest, AHostCallThatThrowsTrapsTheGuestWithAnInternalError) {
  struct Throwing : HostHandler {
    HostReply kvGet(std::string_view, std::string&) override { throw std::runtime_error("store gone"); }
    HostReply kvSet(std::string_view, std::string_view) override { throw 42; }
    HostReply kvDelete(std::string_view) override { return HostReply{}; }
    HostReply kvList(std::string_view, std::string_view, size_t, KvListPage&) override { return HostReply{}; }
    HostReply publish(std::string_view, std::string_view) override { return HostReply{}; }
    HostReply streamPublish(std::string_view, std::string_view, uint64_t&) override { return HostReply{}; }
    HostReply invoke(std::string_view, std::string_view, std::string&) override { return HostReply{}; }
  } host;
  auto get = load(wat(R"((module
    (import "tern" "kv_get" (func $get (param i32 i32 i32 i32 i32) (result i32)))
    (memory (export "memory") 1)
    (func (export "_start") (drop (call $get (i32.const 0) (i32.const 1) (i32.const 8) (i32.const 8) (i32.const 16))))))"));
  auto set = load(wat(R"((module
    (import "tern" "kv_set" (func $set (param i32 i32 i32 i32) (result i32)))
    (memory (export "memory") 1)
    (func (export "_start") (drop (call $set (i32.const 0) (i32.const 1) (i32.const 8) (i32.const 1))))))"));
  InvocationRequest req;
  req.host = &host;
  for (int round = 0; round < 3; ++round) {
    auto r = run(get, "", req);
    EXPECT_EQ(r.outcome, Outcome::kTrap);
    EXPECT_EQ(r.detail, "internal error in a host call: store gone");
    r = run(set, "", req);
    EXPECT_EQ(r.outcome, Outcome::kTrap);
    EXPECT_EQ(r.detail, "internal error in a host call: an unknown exception");
  }
  EXPECT_EQ(run(load(wat(wasiModule("(call $write (i32.const 1) (i32.const 0) (i32.const 0))")))).outcome,
            Outcome::kOk);
}

// An iovec list whose length is absurd is refused without reading it.
TEST_F(EngineTest, HugeIovecCountsAreRefused) {
  auto m = load(wat(R"((module
    (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
    (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
    (memory (export "memory") 1)
    (func (export "_start") (call $exit (call $w (i32.const 1) (i32.const 0) (i32.const -1) (i32.const 8))))))"));
  auto r = run(m);
  EXPECT_EQ(r.exitCode, 28);  // INVAL
  EXPECT_EQ(r.stdoutData, "");
}

// fd_read and fd_write take iovec lists of any length up to IOV_MAX: short lists (printf's
// one or two) and lists longer than the few kept in place go through the same checks.
TEST_F(EngineTest, IovecListsOfEveryLength) {
  for (int count : {1, 8, 9, 40}) {
    // iovec i at 8*i names the byte 1000+i; fd_read fills them from stdin, fd_write sends
    // them back, and the exit code is the byte count fd_write reported.
    std::string setup;
    for (int i = 0; i < count; ++i) {
      setup += "(i32.store (i32.const " + std::to_string(8 * i) + ") (i32.const " +
               std::to_string(1000 + i) + ")) (i32.store (i32.const " + std::to_string(8 * i + 4) +
               ") (i32.const 1))\n";
    }
    auto m = load(wat(R"((module
      (import "wasi_snapshot_preview1" "fd_read" (func $r (param i32 i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
      (memory (export "memory") 1)
      (func (export "_start"))" + setup + R"(
        (drop (call $r (i32.const 0) (i32.const 0) (i32.const )" + std::to_string(count) + R"() (i32.const 2000)))
        (drop (call $w (i32.const 1) (i32.const 0) (i32.const )" + std::to_string(count) + R"() (i32.const 2004)))
        (call $exit (i32.load (i32.const 2004))))))"));
    std::string input;
    for (int i = 0; i < count; ++i) input += static_cast<char>('a' + i % 26);
    auto r = run(m, input + "rest");
    EXPECT_EQ(r.exitCode, count) << count << " iovecs";
    EXPECT_EQ(r.stdoutData, input) << count << " iovecs";
  }
}

}  // namespace
}  // namespace tern::wasm

namespace tern::wasm {
namespace {

// Regression: wasm2c 1.0.32 gives a funcref to an imported function the address of the
// importer's instance field instead of the import instance itself. A WASI function called
// through a table used to read the guest's instance struct (its globals) as the sandbox:
// host code followed a guest-chosen pointer. Both call paths must reach the sandbox.
TEST_F(EngineTest, RegressionWasiImportCalledThroughATable) {
  std::string globals;
  for (int i = 0; i < 64; ++i) {
    globals += "(global (mut i64) (i64.const 0x4141414141414141))\n";
  }
  auto m = load(wat(R"((module
    (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
    (type $fd_write_t (func (param i32 i32 i32 i32) (result i32)))
    (memory (export "memory") 1)
    (table 1 funcref) (elem (i32.const 0) $fd_write)
    (data (i32.const 8) "hello\n"))" + globals + R"(
    (func (export "_start")
      (i32.store (i32.const 0) (i32.const 8)) (i32.store (i32.const 4) (i32.const 6))
      (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 20)))
      (drop (call_indirect (type $fd_write_t)
        (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 20) (i32.const 0))))))"));
  auto r = run(m);
  EXPECT_EQ(r.outcome, Outcome::kOk) << r.detail;
  EXPECT_EQ(r.stdoutData, "hello\nhello\n");
}

}  // namespace
}  // namespace tern::wasm
