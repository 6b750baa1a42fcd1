// The structural reader must turn any byte string into a module description or a clear
// error, never a crash.

#include "wasm/module_info.h"

#include <gtest/gtest.h>

#include <random>

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

}  // namespace
}  // namespace tern::wasm
