// Loading and ahead-of-time compilation: policy checks, clear errors, the on-disk cache.

#include "wasm/compiler.h"

#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <thread>

#include "test_support.h"
#include "wasm/engine.h"

namespace tern::wasm {
namespace {

using test::wat;

// A module with a custom section holding random bytes: unique content, so a fresh hash
// that no earlier run has compiled.
std::vector<uint8_t> uniqueModule() {
  auto bytes = wat(R"((module (memory (export "memory") 1) (func (export "_start"))))");
  std::random_device rd;
  std::vector<uint8_t> section = {0, 9, 4, 'u', 'n', 'i', 'q'};
  for (int i = 0; i < 4; ++i) section.push_back(static_cast<uint8_t>(rd()));
  bytes.insert(bytes.end(), section.begin(), section.end());
  return bytes;
}

TEST(CompilerTest, UnknownImportIsRejectedByName) {
  Compiler c(test::engineConfig().compiler);
  auto r = c.load(wat(R"((module (import "env" "foo" (func)) (func (export "_start"))))"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidModule);
  EXPECT_EQ(r.error().describe(), "invalid module: unknown import env.foo");
}

TEST(CompilerTest, UnknownWasiFunctionAndNonFunctionImportsAreRejected) {
  Compiler c(test::engineConfig().compiler);
  auto a = c.load(wat(R"((module (import "wasi_snapshot_preview1" "fd_teleport" (func))))"));
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.error().message(), "unknown import wasi_snapshot_preview1.fd_teleport");
  auto b = c.load(wat(R"((module (import "tern" "sql_query" (func))))"));
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.error().message(), "unknown import tern.sql_query");
  auto t = c.load(wat(R"((module (import "tern" "kv_get" (func))))"));
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().message(), "import tern.kv_get has signature :, the host provides iiiii:i");
  auto m = c.load(wat(R"((module (import "tern" "memory" (memory 1))))"));
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().message(), "unknown import tern.memory");
  auto d = c.load(wat(R"((module (import "wasi_snapshot_preview1" "memory" (memory 1))))"));
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().message(), "unknown import wasi_snapshot_preview1.memory");
}

TEST(CompilerTest, WasiImportWithTheWrongSignatureIsRejected) {
  Compiler c(test::engineConfig().compiler);
  auto r = c.load(wat(R"((module
    (import "wasi_snapshot_preview1" "fd_write" (func (param i32) (result i32)))))"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message(),
            "import wasi_snapshot_preview1.fd_write has signature i:i, the host provides iiii:i");
}

TEST(CompilerTest, InvalidCodeGetsWasm2csMessage) {
  Compiler c(test::engineConfig().compiler);
  auto r = c.load(wat("(module (func (result i32) (i64.const 1)))", test::WatCheck::kNoCheck));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidModule);
  EXPECT_NE(r.error().message().find("type mismatch"), std::string::npos) << r.error().message();
}

TEST(CompilerTest, OversizedModuleIsRejectedBeforeAnyWork) {
  auto config = test::engineConfig().compiler;
  config.maxModuleBytes = 16;
  Compiler c(config);
  auto r = c.load(uniqueModule());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kModuleTooLarge);
  EXPECT_EQ(c.stats().compiles, 0u);
}

TEST(CompilerTest, CompilerFailureIsAnErrorNotACrash) {
  test::TempDir cache;
  auto config = test::engineConfig(cache.path()).compiler;
  config.cc = "false";  // exits 1, like a compiler that rejects its input
  Compiler c(config);
  auto r = c.load(uniqueModule());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kCompileFailed);

  config.wasm2c = "/nonexistent/wasm2c";
  Compiler missing(config);
  auto m = missing.load(uniqueModule());
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error().code(), ErrorCode::kCompileFailed);
  EXPECT_NE(m.error().message().find("cannot start"), std::string::npos) << m.error().message();
}

TEST(CompilerTest, ConcurrentRequestsCompileOnce) {
  test::TempDir cache;
  Compiler c(test::engineConfig(cache.path()).compiler);
  auto bytes = uniqueModule();
  std::vector<std::thread> threads;
  std::vector<const CompiledModule*> got(4);
  std::vector<std::shared_ptr<const CompiledModule>> keep(4);
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      auto r = c.load(bytes);
      ASSERT_TRUE(r.ok()) << r.error().describe();
      keep[i] = *r;
      got[i] = r->get();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(c.stats().compiles, 1u);
  for (int i = 1; i < 4; ++i) EXPECT_EQ(got[i], got[0]);
}

TEST(CompilerTest, CacheIsReusedByAnotherCompiler) {
  test::TempDir cache;
  auto bytes = uniqueModule();
  std::filesystem::path object;
  {
    Compiler first(test::engineConfig(cache.path()).compiler);
    auto r = first.load(bytes);
    ASSERT_TRUE(r.ok()) << r.error().describe();
    EXPECT_EQ(first.stats().compiles, 1u);
    object = (*r)->objectPath();
  }
  Compiler second(test::engineConfig(cache.path()).compiler);
  auto r = second.load(bytes);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(second.stats().compiles, 0u);
  EXPECT_EQ(second.stats().cacheHits, 1u);
  EXPECT_EQ((*r)->objectPath(), object);
}

TEST(CompilerTest, DifferentFlagsUseDifferentCacheEntries) {
  test::TempDir cache;
  Compiler c(test::engineConfig(cache.path()).compiler);
  auto bytes = uniqueModule();
  auto o2 = c.load(bytes);
  auto o0 = c.load(bytes, CompileOptions{OptLevel::kO0, ImportPolicy::kHostOnly});
  ASSERT_TRUE(o2.ok() && o0.ok());
  EXPECT_NE((*o2)->objectPath(), (*o0)->objectPath());
  EXPECT_EQ(c.stats().compiles, 2u);
}

TEST(CompilerTest, ObjectTargetsAreReadFromTheElfHeader) {
  std::vector<uint8_t> elf(64, 0);
  elf[0] = 0x7f, elf[1] = 'E', elf[2] = 'L', elf[3] = 'F', elf[4] = 2, elf[5] = 1;
  struct Case {
    uint16_t machine;
    const char* target;
  };
  for (const Case& c : {Case{62, "x86_64"}, Case{183, "aarch64"}, Case{40, ""}, Case{8, ""}}) {
    elf[18] = static_cast<uint8_t>(c.machine & 0xff);
    elf[19] = static_cast<uint8_t>(c.machine >> 8);
    EXPECT_EQ(objectTarget(elf), c.target) << c.machine;
  }
  auto bigEndian = elf;
  bigEndian[5] = 2;
  EXPECT_EQ(objectTarget(bigEndian), "");
  auto elf32 = elf;
  elf32[4] = 1;
  EXPECT_EQ(objectTarget(elf32), "");
  EXPECT_EQ(objectTarget(std::vector<uint8_t>{0x7f, 'E', 'L', 'F'}), "");
  EXPECT_EQ(objectTarget(wat("(module)")), "");
  EXPECT_TRUE(hostTarget() == "x86_64" || hostTarget() == "aarch64") << hostTarget();
}

// A device loads the object a node built for it, compiling nothing; an object is only ever
// run for the module it names, on the machine it was built for.
TEST(CompilerTest, PrebuiltObjectsRunOnlyForTheirModuleAndMachine) {
  test::TempDir nodeCache, deviceCache;
  Compiler node(test::engineConfig(nodeCache.path()).compiler);
  auto bytes = uniqueModule();
  auto object = node.objectFor(bytes, std::string(hostTarget()));
  ASSERT_TRUE(object.ok()) << object.error().describe();
  EXPECT_EQ(objectTarget(test::readFile(*object)), hostTarget());

  auto config = test::engineConfig(deviceCache.path()).compiler;
  config.cc = "/nonexistent/cc";  // the device has no compiler
  Compiler device(config);
  auto loaded = device.loadPrebuilt(bytes, *object);
  ASSERT_TRUE(loaded.ok()) << loaded.error().describe();
  EXPECT_NE((*loaded)->findExport("_start"), nullptr);
  EXPECT_EQ(device.stats().compiles, 0u);

  // The object of another module is refused, whatever the file is called.
  auto other = device.loadPrebuilt(uniqueModule(), *object);
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(other.error().message().find("another module"), std::string::npos)
      << other.error().message();
  // Not an object at all.
  auto junk = deviceCache.path() / "junk.so";
  {
    std::ofstream(junk) << "not an object";
  }
  auto notElf = device.loadPrebuilt(bytes, junk);
  ASSERT_FALSE(notElf.ok());
  EXPECT_NE(notElf.error().message().find("not a shared object"), std::string::npos)
      << notElf.error().message();
  EXPECT_FALSE(device.loadPrebuilt(bytes, deviceCache.path() / "missing.so").ok());
  // The module itself is checked as for a compile.
  auto bad = device.loadPrebuilt(wat(R"((module (import "env" "foo" (func))))"), *object);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidModule);
}

TEST(CompilerTest, ObjectsForOtherMachinesComeFromTheirCrossCompiler) {
  test::TempDir cache;
  auto config = test::engineConfig(cache.path()).compiler;
  std::string other = hostTarget() == "x86_64" ? "aarch64" : "x86_64";
  config.targetCc[other] = "/nonexistent/" + other + "-gcc";
  Compiler c(config);
  auto bytes = uniqueModule();
  auto missing = c.objectFor(bytes, other);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(missing.error().message().find("not installed"), std::string::npos);
  auto unknown = c.objectFor(bytes, "mips");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code(), ErrorCode::kInvalidArgument);
  // Each target has its own cache key.
  EXPECT_NE(c.cacheKey("ab", {}, other), c.cacheKey("ab"));
  EXPECT_EQ(c.cacheKey("ab", {}, std::string(hostTarget())), c.cacheKey("ab"));

  // With Debian's cross compiler installed (crossbuild-essential-arm64 on x86-64), the
  // object is one for that machine, and this machine refuses to load it.
  Compiler cross(test::engineConfig(cache.path()).compiler);
  auto built = cross.objectFor(bytes, other);
  if (!built.ok() && built.error().code() == ErrorCode::kUnavailable) {
    GTEST_SKIP() << built.error().message();
  }
  ASSERT_TRUE(built.ok()) << built.error().describe();
  EXPECT_EQ(objectTarget(test::readFile(*built)), other);
  auto refused = cross.loadPrebuilt(bytes, *built);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message().find("an object for " + other), std::string::npos)
      << refused.error().message();
}

TEST(CompilerTest, Wasm2cMangling) {
  EXPECT_EQ(wasm2cMangle("add-Z \xc3\xa9"), "addZ2DZ5AZ20ZC3ZA9");
  EXPECT_EQ(wasm2cMangle("_start"), "_start");
  EXPECT_EQ(wasm2cMangle("wasi_snapshot_preview1"), "wasi_snapshot_preview1");
}

TEST(CompilerTest, ExportsCarryTheirSignatures) {
  Compiler c(test::engineConfig().compiler);
  auto r = c.load(wat(R"((module
    (func (export "add") (param i32 i64) (result f64) (f64.const 1))
    (func (export "pair") (result i32 i64) (i32.const 1) (i64.const 2))
    (global (export "g") i64 (i64.const 7))
    (memory (export "mem") 1)))"),
                  CompileOptions{OptLevel::kO0, ImportPolicy::kLinkForeign});
  ASSERT_TRUE(r.ok()) << r.error().describe();
  const auto& m = **r;
  ASSERT_TRUE(m.findExport("add"));
  EXPECT_STREQ(m.findExport("add")->signature, "iI:F");
  EXPECT_STREQ(m.findExport("pair")->signature, ":iI");
  EXPECT_STREQ(m.findExport("g")->signature, "I");
  EXPECT_EQ(m.findExport("mem")->kind, static_cast<uint32_t>(TERN_EXTERN_MEMORY));
  EXPECT_EQ(m.findExport("nope"), nullptr);

  Engine engine(test::engineConfig());
  auto inst = engine.instantiate(*r, {});
  ASSERT_TRUE(inst.ok());
  uint64_t results[2] = {};
  ASSERT_EQ((*inst)->call(*m.findExport("pair"), nullptr, results), kTrapNone);
  EXPECT_EQ(results[0], 1u);
  EXPECT_EQ(results[1], 2u);
  auto* g = static_cast<uint64_t*>((*inst)->exportAddress(*m.findExport("g")));
  ASSERT_TRUE(g);
  EXPECT_EQ(*g, 7u);
}

}  // namespace
}  // namespace tern::wasm

namespace tern::wasm {
namespace {

// The toolchain identity in the cache key is remembered in the cache directory, under a
// stamp of the tool executables, so later processes need not run the tools to learn it.
TEST(CompilerToolchainTest, IdentityIsRememberedPerToolchain) {
  test::TempDir cache;
  {
    Compiler c(test::engineConfig(cache.path()).compiler);
    ASSERT_TRUE(c.load(uniqueModule()).ok());
  }
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(cache.path() / "toolchain")) {
    files.push_back(e.path());
  }
  ASSERT_EQ(files.size(), 1u);
  auto text = test::readFile(files[0]);
  std::string id(text.begin(), text.end());
  EXPECT_NE(id.find("wasm2c:"), std::string::npos) << id;
  // A different compiler executable has a different stamp and its own entry.
  auto config = test::engineConfig(cache.path()).compiler;
  config.cc = "gcc";
  Compiler other(config);
  ASSERT_TRUE(other.load(uniqueModule()).ok());
  size_t entries = 0;
  for ([[maybe_unused]] const auto& e :
       std::filesystem::directory_iterator(cache.path() / "toolchain")) {
    ++entries;
  }
  EXPECT_EQ(entries, 2u);
}

}  // namespace
}  // namespace tern::wasm
