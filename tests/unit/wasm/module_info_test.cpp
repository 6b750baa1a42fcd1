// The structural reader must turn any byte string into a module description or a clear
// error, never a crash.

#include "wasm/module_info.h"

#include <gtest/gtest.h>

#include <random>

#include "module_bytes.h"
#include "test_support.h"
#include "wasm/host_imports.h"

namespace tern::wasm {
namespace {

Result<ModuleInfo> read(const std::vector<uint8_t>& b) { return readModuleInfo(b); }

TEST(ModuleInfoTest, ReadsAWasiCommand) {
  auto bytes = test::readFile(test::examplesDir() / "hello.wasm");
  auto info = read(bytes);
  ASSERT_TRUE(info.ok()) << info.error().describe();
  ASSERT_TRUE(info->findExport("_start"));
  EXPECT_EQ(info->functionType(info->findExport("_start")->index)->signature(), ":");
  ASSERT_EQ(info->memories.size(), 1u);
  EXPECT_GE(info->memories[0].initial, 1u);
  for (const auto& im : info->imports) EXPECT_EQ(im.module, kWasiModule);
  EXPECT_TRUE(checkHostImports(*info).ok());
}

TEST(ModuleInfoTest, RejectsEmptyGarbageAndWrongHeaders) {
  struct Case {
    std::vector<uint8_t> bytes;
    const char* message;
  } cases[] = {
      {{}, "empty file"},
      {{0, 'a', 's'}, "truncated header (file is 3 bytes)"},
      {{'G', 'I', 'F', '8', '9', 'a', 0, 0}, "not a WebAssembly binary (bad magic number)"},
      {{0, 'a', 's', 'm', 2, 0, 0, 0}, "unsupported binary format version (expected 1)"},
      {{0, 'a', 's', 'm', 1, 0, 0, 0, 1, 0x80}, "truncated section header: unexpected end in integer at offset 0xa"},
      {{0, 'a', 's', 'm', 1, 0, 0, 0, 99, 0}, "unknown section id 99 at offset 0x8"},
      {{0, 'a', 's', 'm', 1, 0, 0, 0, 1, 10, 1},
       "type section at offset 0x8 declares 10 bytes but the file ends first"},
      {{0, 'a', 's', 'm', 1, 0, 0, 0, 5, 3, 1, 3, 1}, "memory section: shared memories (threads) are not supported at offset 0xc"},
      {{0, 'a', 's', 'm', 1, 0, 0, 0, 5, 3, 1, 0, 0, 1, 1, 0},
       "type section at offset 0xd is out of order or repeated"},
      {{0, 'a', 's', 'm', 1, 0, 0, 0, 5, 2, 0, 0}, "memory section at offset 0x8 has 1 trailing bytes"},
  };
  for (const auto& c : cases) {
    auto r = read(c.bytes);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidModule);
    EXPECT_EQ(r.error().message(), c.message);
  }
}

TEST(ModuleInfoTest, EveryTruncationOfARealModuleIsAnErrorOrParses) {
  auto bytes = test::readFile(test::examplesDir() / "hello.wasm");
  for (size_t n = 0; n < bytes.size(); ++n) {
    std::vector<uint8_t> prefix(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
    auto r = read(prefix);
    if (!r.ok()) {
      EXPECT_FALSE(r.error().message().empty());
    }
  }
}

TEST(ModuleInfoTest, RandomMutationsNeverCrash) {
  auto bytes = test::readFile(test::examplesDir() / "hello.wasm");
  std::mt19937 rng(1234);
  for (int i = 0; i < 3000; ++i) {
    auto m = bytes;
    int flips = 1 + static_cast<int>(rng() % 8);
    for (int f = 0; f < flips; ++f) m[8 + rng() % (m.size() - 8)] = static_cast<uint8_t>(rng());
    auto r = read(m);
    if (!r.ok()) {
      EXPECT_EQ(r.error().code(), ErrorCode::kInvalidModule);
    }
  }
}

TEST(ModuleInfoTest, ExportsOfUnknownThingsAreErrors) {
  // (export "f" (func 3)) with no functions.
  std::vector<uint8_t> b = {0, 'a', 's', 'm', 1, 0, 0, 0, 7, 5, 1, 1, 'f', 0, 3};
  auto r = read(b);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message(), "export \"f\" refers to unknown function 3");
}

// Issue 10: a 55-byte module whose one function declared 50,000,000 i32 locals made the C
// compiler grow to 22 GB. The reader refuses such a module (this one is 41 bytes), naming
// the limit, without any compiler.
TEST(ModuleInfoTest, AFunctionWithFiftyMillionLocalsIsRefusedNamingTheLimit) {
  auto bytes = test::moduleOfFunctions(1, test::functionBody(50'000'000));
  ASSERT_LT(bytes.size(), 64u);
  auto r = read(bytes);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidModule);
  EXPECT_NE(r.error().message().find(
                "function 0 declares 50000000 locals (the limit is 50000 per function)"),
            std::string::npos)
      << r.error().message();
}

// Issue 10: 100,000 nested blocks crashed wasm2c; 100,000 functions ran into its timeout.
TEST(ModuleInfoTest, DeepNestingAndTooManyFunctionsAreRefusedNamingTheLimit) {
  auto nested = read(test::moduleOfFunctions(1, test::functionBody(0, 100'000)));
  ASSERT_FALSE(nested.ok());
  EXPECT_EQ(nested.error().code(), ErrorCode::kInvalidModule);
  EXPECT_NE(nested.error().message().find("function 0 nests blocks deeper than the limit of 5000"),
            std::string::npos)
      << nested.error().message();

  auto many = read(test::moduleOfFunctions(100'000, test::functionBody(0)));
  ASSERT_FALSE(many.ok());
  EXPECT_EQ(many.error().code(), ErrorCode::kInvalidModule);
  EXPECT_NE(many.error().message().find("the module declares 100000 functions (the limit is "
                                        "30000)"),
            std::string::npos)
      << many.error().message();
}

TEST(ModuleInfoTest, ModulesAtTheLimitsAreReadAndOneBeyondIsNot) {
  const ModuleLimits limits{3, 10, 4};
  struct Case {
    uint32_t functions;
    uint64_t locals;
    uint64_t depth;
    bool accepted;
  } cases[] = {
      {3, 10, 4, true},  {4, 0, 0, false}, {1, 11, 0, false},
      {1, 0, 5, false},  {1, 0, 0, true},
  };
  for (const auto& c : cases) {
    auto r = readModuleInfo(test::moduleOfFunctions(c.functions, test::functionBody(c.locals, c.depth)),
                            limits);
    EXPECT_EQ(r.ok(), c.accepted) << c.functions << " functions, " << c.locals << " locals, depth "
                                  << c.depth << ": " << (r.ok() ? "" : r.error().message());
  }
  // Locals declared in several groups count together; imported functions count too.
  std::vector<uint8_t> twoGroups = {2, 6, 0x7f, 5, 0x7e, 0x0b};  // 6 i32 + 5 i64
  auto split = readModuleInfo(test::moduleOfFunctions(1, twoGroups), limits);
  ASSERT_FALSE(split.ok());
  EXPECT_NE(split.error().message().find("declares 11 locals"), std::string::npos)
      << split.error().message();
  auto imports = readModuleInfo(
      test::wat(R"((module (import "a" "b" (func)) (import "a" "c" (func)) (func) (func)))"),
      limits);
  ASSERT_FALSE(imports.ok());
  EXPECT_NE(imports.error().message().find("declares 4 functions"), std::string::npos)
      << imports.error().message();
}

// The reader follows every instruction's immediates to find where blocks open and close: a
// module using every kind of immediate is read, and its nesting counted right.
TEST(ModuleInfoTest, CodeOfEveryInstructionKindIsFollowed) {
  auto bytes = test::wat(R"((module
    (type $t (func (param i32) (result i32)))
    (memory 1) (table 2 funcref) (global $g (mut i64) (i64.const 0))
    (data $d "abc") (elem $e func $f)
    (func $f (param i32) (result i32)
      (local f32 f64 externref)
      (block $out
        (loop $l
          (br_table $l $out $l (local.get 0))))
      (drop (if (result i32) (local.get 0) (then (i32.const 2)) (else (i32.const 3))))
      (drop (select (result i32) (i32.const 1) (i32.const 2) (local.get 0)))
      (drop (call_indirect (type $t) (i32.const 5) (i32.const 0)))
      (drop (i32.load8_u offset=3 align=1 (local.get 0)))
      (i64.store offset=8 (i32.const 0) (global.get $g))
      (global.set $g (i64.const -9223372036854775808))
      (f32.store (i32.const 0) (f32.const 1.5))
      (f64.store (i32.const 0) (f64.const -2.25))
      (local.set 2 (f64.const 0))
      (local.set 3 (ref.null extern))
      (memory.init $d (i32.const 0) (i32.const 0) (i32.const 1))
      (data.drop $d)
      (memory.copy (i32.const 0) (i32.const 1) (i32.const 1))
      (memory.fill (i32.const 0) (i32.const 0) (i32.const 1))
      (table.init $e (i32.const 0) (i32.const 0) (i32.const 1))
      (elem.drop $e)
      (table.copy (i32.const 0) (i32.const 1) (i32.const 1))
      (drop (table.grow 0 (ref.null func) (i32.const 1)))
      (drop (table.size 0))
      (table.fill 0 (i32.const 0) (ref.func $f) (i32.const 1))
      (drop (ref.is_null (table.get 0 (i32.const 0))))
      (drop (i32.trunc_sat_f32_s (f32.const 1)))
      (drop (memory.grow (memory.size)))
      (i32.extend8_s (local.get 0))))
  )");
  auto r = readModuleInfo(bytes, ModuleLimits{10, 10, 2});
  EXPECT_TRUE(r.ok()) << r.error().message();
  auto shallow = readModuleInfo(bytes, ModuleLimits{10, 10, 1});
  ASSERT_FALSE(shallow.ok());
  EXPECT_NE(shallow.error().message().find("nests blocks deeper than the limit of 1"), std::string::npos)
      << shallow.error().message();
}

TEST(ModuleInfoTest, EveryExampleAndTestGuestIsWithinTheDefaultLimits) {
  size_t read = 0;
  for (const auto& dir : {test::examplesDir(), test::guestsDir()}) {
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
      if (entry.path().extension() != ".wasm") continue;
      auto r = readModuleInfo(test::readFile(entry.path()));
      EXPECT_TRUE(r.ok()) << entry.path() << ": " << r.error().message();
      ++read;
    }
  }
  EXPECT_GE(read, 10u);
}

}  // namespace
}  // namespace tern::wasm
