// The baseline tier (TinyCC): the same modules, outputs and traps as the optimized tier,
// objects cached under keys of their own, and a clear error without the compiler.
// docs/design/tiers.md.

#include <gtest/gtest.h>

#include <fstream>
#include <random>

#include "test_support.h"
#include "wasm/engine.h"

namespace tern::wasm {
namespace {

using test::wat;

CompileOptions baseline() {
  CompileOptions o;
  o.tier = Tier::kBaseline;
  return o;
}

// A module no earlier run has compiled (a custom section of random bytes).
std::vector<uint8_t> uniqueModule() {
  auto bytes = wat(R"((module (memory (export "memory") 1) (func (export "_start"))))");
  std::random_device rd;
  std::vector<uint8_t> section = {0, 9, 4, 'u', 'n', 'i', 'q'};
  for (int i = 0; i < 4; ++i) section.push_back(static_cast<uint8_t>(rd()));
  bytes.insert(bytes.end(), section.begin(), section.end());
  return bytes;
}

class BaselineTierTest : public ::testing::Test {
 protected:
  Engine engine{test::engineConfig()};

  // The module at both tiers: [optimized, baseline].
  std::array<std::shared_ptr<const CompiledModule>, 2> both(const std::vector<uint8_t>& bytes) {
    auto o = engine.load(bytes);
    auto b = engine.load(bytes, baseline());
    EXPECT_TRUE(o.ok()) << (o.ok() ? "" : o.error().describe());
    EXPECT_TRUE(b.ok()) << (b.ok() ? "" : b.error().describe());
    if (!o.ok() || !b.ok()) return {};
    return {*o, *b};
  }
  std::array<std::shared_ptr<const CompiledModule>, 2> bothFile(const std::filesystem::path& p) {
    return both(test::readFile(p));
  }
};

TEST_F(BaselineTierTest, TheCompilerIsInstalled) {
  // scripts/install-deps.sh installs tcc; without it nodes serve every function optimized.
  EXPECT_TRUE(engine.compiler().baselineAvailable())
      << "tcc is not installed (Debian package tcc)";
}

TEST_F(BaselineTierTest, FunctionsAnswerAsAtTheOptimizedTier) {
  struct Case {
    std::filesystem::path module;
    std::string input;
    std::vector<std::string> env;
  };
  const Case cases[] = {
      {test::examplesDir() / "hello.wasm", "", {}},
      {test::examplesDir() / "echo.wasm", std::string("a\0b\xff z", 6), {}},
      {test::examplesDir() / "hello_rust.wasm", "", {"REQUEST_METHOD=POST"}},
      {test::guestsDir() / "cgi.wasm", "the body", {"REQUEST_METHOD=POST", "PATH_INFO=/x"}},
  };
  for (const auto& c : cases) {
    auto m = bothFile(c.module);
    ASSERT_TRUE(m[0] && m[1]) << c.module;
    EXPECT_EQ(m[0]->tier(), Tier::kOptimized);
    EXPECT_EQ(m[1]->tier(), Tier::kBaseline);
    EXPECT_NE(m[0]->objectPath(), m[1]->objectPath());
    InvocationRequest req;
    req.input = c.input;
    req.env = Environment(c.env);
    auto o = engine.invoke(m[0], req);
    auto b = engine.invoke(m[1], req);
    EXPECT_EQ(b.outcome, Outcome::kOk) << c.module << ": " << b.detail;
    EXPECT_EQ(b.outcome, o.outcome) << c.module;
    EXPECT_EQ(b.stdoutData, o.stdoutData) << c.module;
    EXPECT_FALSE(b.stdoutData.empty()) << c.module;
  }
}

// Traps keep their meaning at the baseline tier: bounds, division, unreachable, indirect
// calls and stack exhaustion (recursion stays recursion).
TEST_F(BaselineTierTest, TrapsAreTheSameAtBothTiers) {
  struct Case {
    const char* name;
    const char* body;
    const char* detail;
  };
  const Case cases[] = {
      {"out of bounds", "(drop (i32.load (i32.const 70000)))", "out-of-bounds memory access"},
      {"division by zero", "(drop (i32.div_s (i32.const 1) (i32.const 0)))",
       "integer divide by zero"},
      {"overflow", "(drop (i64.div_s (i64.const 0x8000000000000000) (i64.const -1)))",
       "integer overflow"},
      {"unreachable", "(unreachable)", "unreachable executed"},
      {"indirect call", "(call_indirect (type $v) (i32.const 7))", "indirect call to a null"},
      {"stack exhaustion", "(call $runaway)", "call stack exhausted"},
      {"conversion", "(drop (i32.trunc_f64_s (f64.const 3e10)))", "integer overflow"},
  };
  for (const auto& c : cases) {
    auto bytes = wat(std::string(R"((module
      (type $v (func))
      (memory 1)
      (table 1 funcref)
      (func $runaway (call $runaway))
      (func (export "_start") )") + c.body + "))");
    auto m = both(bytes);
    ASSERT_TRUE(m[0] && m[1]) << c.name;
    auto o = engine.invoke(m[0], {});
    auto b = engine.invoke(m[1], {});
    EXPECT_EQ(b.outcome, Outcome::kTrap) << c.name;
    EXPECT_EQ(b.outcome, o.outcome) << c.name;
    EXPECT_EQ(b.detail, o.detail) << c.name;
    EXPECT_NE(b.detail.find(c.detail), std::string::npos) << c.name << ": " << b.detail;
  }
}

// The bit-counting instructions, which wasm2c maps to GCC builtins that TinyCC lacks (tern
// defines them for it): every result at the baseline tier equals the optimized one.
TEST_F(BaselineTierTest, BitCountingMatchesTheOptimizedTier) {
  auto bytes = wat(R"((module
    (func (export "clz32") (param i32) (result i32) (i32.clz (local.get 0)))
    (func (export "ctz32") (param i32) (result i32) (i32.ctz (local.get 0)))
    (func (export "popcnt32") (param i32) (result i32) (i32.popcnt (local.get 0)))
    (func (export "clz64") (param i64) (result i64) (i64.clz (local.get 0)))
    (func (export "ctz64") (param i64) (result i64) (i64.ctz (local.get 0)))
    (func (export "popcnt64") (param i64) (result i64) (i64.popcnt (local.get 0)))))");
  auto m = both(bytes);
  ASSERT_TRUE(m[0] && m[1]);
  auto o = engine.instantiate(m[0], {});
  auto b = engine.instantiate(m[1], {});
  ASSERT_TRUE(o.ok() && b.ok());
  const uint64_t values[] = {0,          1,          2,          3,           0x80,
                             0xffff,     0x10000,    0x7fffffff, 0x80000000,  0xffffffff,
                             0x100000000, 0x8000000000000000ull, 0xffffffffffffffffull,
                             0x0123456789abcdefull, 0xf0f0f0f000000000ull};
  for (const char* fn : {"clz32", "ctz32", "popcnt32", "clz64", "ctz64", "popcnt64"}) {
    const tern_export_t* eo = (*o)->module().findExport(fn);
    const tern_export_t* eb = (*b)->module().findExport(fn);
    ASSERT_TRUE(eo && eb) << fn;
    for (uint64_t v : values) {
      uint64_t arg = fn[std::string_view(fn).size() - 2] == '3' ? (v & 0xffffffffu) : v;
      uint64_t ro = 0, rb = 0;
      ASSERT_EQ((*o)->call(*eo, &arg, &ro), kTrapNone);
      ASSERT_EQ((*b)->call(*eb, &arg, &rb), kTrapNone);
      EXPECT_EQ(rb, ro) << fn << "(" << arg << ")";
    }
  }
}

TEST(FlipFloatNegationsTest, RewritesOnlyNegatedFloatStackVariables) {
  struct Case {
    std::string_view in, out;
  };
  const Case cases[] = {
      {"w2c_f0 = -(w2c_f0);", "w2c_f0 = tern_fneg32(w2c_f0);"},
      {"w2c_d12 = -(w2c_d12);", "w2c_d12 = tern_fneg64(w2c_d12);"},
      {"a = -(w2c_f1); b = -(w2c_d2);", "a = tern_fneg32(w2c_f1); b = tern_fneg64(w2c_d2);"},
      // Not a float stack variable: integer variables, calls, names, unfinished text.
      {"w2c_i0 = -(w2c_i0);", "w2c_i0 = -(w2c_i0);"},
      {"x = -(w2c_f3(instance));", "x = -(w2c_f3(instance));"},
      {"x = -(w2c_fx);", "x = -(w2c_fx);"},
      {"x = -(w2c_f);", "x = -(w2c_f);"},
      {"x = -(w2c_d7", "x = -(w2c_d7"},
      {"-(w2c_", "-(w2c_"},
      {"", ""},
  };
  for (const auto& c : cases) EXPECT_EQ(flipFloatNegations(c.in), c.out) << c.in;
}

// The baseline tier flips negations in wasm2c's output as it streams to TinyCC, in pieces
// cut anywhere (inside a negation too): the result is the same as for the whole text.
TEST(FloatNegationFlipperTest, PiecesCutAnywhereGiveTheWholeTextsResult) {
  const std::string text =
      "u32 f(void) {\n  w2c_f0 = -(w2c_f0);\n  w2c_d12 = -(w2c_d12);\n"
      "  w2c_i0 = -(w2c_i0);\n  a = -(w2c_f1); b = -(w2c_d2);\n}\nx = -(w2c_d7)";
  const std::string whole = flipFloatNegations(text);
  ASSERT_NE(whole, text);
  for (size_t piece = 1; piece <= text.size(); ++piece) {
    FloatNegationFlipper flipper;
    std::string out;
    for (size_t at = 0; at < text.size(); at += piece) {
      flipper.add(std::string_view(text).substr(at, piece), out);
    }
    flipper.finish(out);
    EXPECT_EQ(out, whole) << "pieces of " << piece;
  }
}

TEST_F(BaselineTierTest, NegationFlipsOnlyTheSignBitAsAtTheOptimizedTier) {
  // wasm's f32.neg and f64.neg flip the sign bit of any value, NaNs (quiet or signaling,
  // with any payload) included (the spec's f32_bitwise and f64_bitwise scripts).
  auto bytes = wat(R"((module
    (func (export "neg32") (param i32) (result i32)
      (i32.reinterpret_f32 (f32.neg (f32.reinterpret_i32 (local.get 0)))))
    (func (export "neg64") (param i64) (result i64)
      (i64.reinterpret_f64 (f64.neg (f64.reinterpret_i64 (local.get 0)))))))");
  auto m = both(bytes);
  ASSERT_TRUE(m[0] && m[1]);
  auto o = engine.instantiate(m[0], {});
  auto b = engine.instantiate(m[1], {});
  ASSERT_TRUE(o.ok() && b.ok());
  struct Case {
    const char* fn;
    uint64_t arg, sign;
  };
  const Case cases[] = {
      {"neg32", 0x7fc00000, 0x80000000},  {"neg32", 0xffc00000, 0x80000000},
      {"neg32", 0x7fa00000, 0x80000000},  {"neg32", 0x7f800001, 0x80000000},
      {"neg32", 0x00000000, 0x80000000},  {"neg32", 0x3f800000, 0x80000000},
      {"neg64", 0x7ff8000000000000ull, 1ull << 63}, {"neg64", 0xfff8000000000001ull, 1ull << 63},
      {"neg64", 0x7ff4000000000000ull, 1ull << 63}, {"neg64", 0x0000000000000000ull, 1ull << 63},
      {"neg64", 0x3ff0000000000000ull, 1ull << 63},
  };
  for (const auto& c : cases) {
    const tern_export_t* eo = (*o)->module().findExport(c.fn);
    const tern_export_t* eb = (*b)->module().findExport(c.fn);
    ASSERT_TRUE(eo && eb) << c.fn;
    uint64_t arg = c.arg, ro = 0, rb = 0;
    ASSERT_EQ((*o)->call(*eo, &arg, &ro), kTrapNone);
    ASSERT_EQ((*b)->call(*eb, &arg, &rb), kTrapNone);
    const uint64_t mask = c.sign == 0x80000000 ? 0xffffffffull : ~0ull;
    EXPECT_EQ(rb & mask, (c.arg ^ c.sign) & mask) << c.fn << " " << std::hex << c.arg;
    EXPECT_EQ(ro & mask, (c.arg ^ c.sign) & mask) << c.fn << " " << std::hex << c.arg;
  }
}

TEST(BaselineCacheTest, ObjectsAreCachedPerTierAndFoundWithoutCompiling) {
  test::TempDir cache;
  auto bytes = uniqueModule();
  {
    Compiler c(test::engineConfig(cache.path()).compiler);
    auto none = c.loadIfCached(bytes);
    ASSERT_TRUE(none.ok()) << none.error().describe();
    EXPECT_EQ(*none, nullptr);
    auto b = c.load(bytes, baseline());
    ASSERT_TRUE(b.ok()) << b.error().describe();
    EXPECT_EQ(c.stats().baselineCompiles, 1u);
    // The baseline object is not the optimized one.
    auto stillNone = c.loadIfCached(bytes);
    ASSERT_TRUE(stillNone.ok());
    EXPECT_EQ(*stillNone, nullptr);
    auto o = c.load(bytes);
    ASSERT_TRUE(o.ok()) << o.error().describe();
    EXPECT_EQ(c.stats().compiles, 2u);
    EXPECT_NE(c.cacheKey((*o)->hash()), c.cacheKey((*o)->hash(), baseline()));
  }
  // A new compiler (a restarted node) finds both on disk and compiles nothing.
  Compiler c(test::engineConfig(cache.path()).compiler);
  auto o = c.loadIfCached(bytes);
  ASSERT_TRUE(o.ok()) << o.error().describe();
  ASSERT_NE(*o, nullptr);
  EXPECT_EQ((*o)->tier(), Tier::kOptimized);
  auto b = c.loadIfCached(bytes, baseline());
  ASSERT_TRUE(b.ok());
  ASSERT_NE(*b, nullptr);
  EXPECT_EQ((*b)->tier(), Tier::kBaseline);
  EXPECT_EQ(c.stats().compiles, 0u);
}

// At the baseline tier wasm2c and TinyCC run at once, joined through the node; each one's
// failure still reaches the deploy as the optimized tier reports it: wasm2c's refusal as an
// invalid module with wasm2c's message, the compiler's as a failed compile with its own.
TEST(BaselineCacheTest, EachToolsFailureIsReportedWhileTheyRunTogether) {
  test::TempDir dir;
  auto script = [&](const std::string& name, const std::string& text) {
    auto path = dir.path() / name;
    {
      std::ofstream out(path);
      out << "#!/bin/sh\n" << text << "\n";
    }
    std::filesystem::permissions(path, std::filesystem::perms::owner_all);
    return path.string();
  };
  auto config = test::engineConfig(dir.path() / "cache").compiler;
  config.wasm2c = script("wasm2c", "echo 'module.wasm:000001a: error: bad magic in section' >&2; exit 1");
  {
    Compiler c(config);
    auto r = c.load(uniqueModule(), baseline());
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidModule) << r.error().describe();
    EXPECT_NE(r.error().message().find("bad magic in section"), std::string::npos)
        << r.error().message();
  }
  config = test::engineConfig(dir.path() / "cache").compiler;
  config.baselineCc = script("tcc", "cat >/dev/null; echo '<stdin>:12: error: no luck' >&2; exit 1");
  {
    Compiler c(config);
    auto r = c.load(uniqueModule(), baseline());
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), ErrorCode::kCompileFailed) << r.error().describe();
    EXPECT_NE(r.error().message().find("no luck"), std::string::npos) << r.error().message();
  }
  // A compiler that stops reading at once: wasm2c is not blocked, the deploy fails cleanly.
  config.baselineCc = script("tcc-quits", "exit 2");
  {
    Compiler c(config);
    auto r = c.load(uniqueModule(), baseline());
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), ErrorCode::kCompileFailed) << r.error().describe();
  }
}

TEST(BaselineCacheTest, WithoutTheCompilerTheBaselineTierIsUnavailable) {
  test::TempDir cache;
  auto config = test::engineConfig(cache.path()).compiler;
  config.baselineCc = "/nonexistent/tcc";
  Compiler c(config);
  EXPECT_FALSE(c.baselineAvailable());
  auto r = c.load(uniqueModule(), baseline());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(r.error().message().find("/nonexistent/tcc is not installed"), std::string::npos)
      << r.error().message();
  // Objects for devices come from the optimized tier only.
  auto device = c.objectFor(uniqueModule(), std::string(hostTarget()), baseline());
  ASSERT_FALSE(device.ok());
  EXPECT_EQ(device.error().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace tern::wasm
