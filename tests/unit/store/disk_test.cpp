// The node's disk: garbage collection of module files and compiled objects, the data
// directory's permissions, and removals on a full disk (issue 10, items 6 and 7).

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "exec/function_table.h"
#include "store/deployments.h"
#include "store/disk_reserve.h"
#include "store/kv_store.h"
#include "store/registry.h"
#include "test_support.h"
#include "tmpfs_mount.h"
#include "util/data_dir.h"
#include "util/metrics.h"
#include "util/sha256.h"

namespace tern::store {
namespace {

namespace fs = std::filesystem;

// A distinct, tiny WASI command per `n`.
std::vector<uint8_t> command(int n) {
  return test::wat("(module (func (export \"_start\") (drop (i32.const " + std::to_string(n) +
                   "))))");
}

std::string hashOf(const std::vector<uint8_t>& bytes) {
  return sha256Hex(std::span<const unsigned char>(bytes.data(), bytes.size()));
}

mode_t modeOf(const fs::path& p) {
  struct stat st {};
  EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
  return st.st_mode & 07777;
}

// A node's store on `data`: registry, key-value state, engine with its cache in
// <data>/cache, and the deployments over them, as Node wires them.
struct Store {
  explicit Store(const fs::path& data, DiskReserve* reserve = nullptr)
      : data(data), engine(test::engineConfig(data / "cache")) {
    auto r = Registry::open(data);
    EXPECT_TRUE(r.ok()) << r.error().describe();
    registry = std::move(*r);
    auto k = KvStore::open(data);
    EXPECT_TRUE(k.ok()) << k.error().describe();
    kv = std::move(*k);
    deployments = std::make_unique<Deployments>(*registry, engine, table, kv.get());
    deployments->setDiskReserve(reserve);
  }

  void deploy(const std::string& name, const std::vector<uint8_t>& module) {
    auto v = deployments->deploy(name, module, {});
    ASSERT_TRUE(v.ok()) << v.error().describe();
  }
  fs::path moduleFile(const std::vector<uint8_t>& module) const {
    return data / "modules" / (hashOf(module) + ".wasm");
  }
  fs::path objectFile(const std::vector<uint8_t>& module) {
    return data / "cache" / "objects" / (engine.compiler().cacheKey(hashOf(module)) + ".so");
  }
  bool stored(const std::vector<uint8_t>& module) {
    return fs::exists(moduleFile(module)) && fs::exists(objectFile(module));
  }
  bool gone(const std::vector<uint8_t>& module) {
    return !fs::exists(moduleFile(module)) && !fs::exists(objectFile(module));
  }

  fs::path data;
  MetricsRegistry metrics;
  wasm::Engine engine;
  exec::FunctionTable table{metrics};
  std::unique_ptr<Registry> registry;
  std::unique_ptr<KvStore> kv;
  std::unique_ptr<Deployments> deployments;
};

TEST(GarbageTest, RemovingTheLastFunctionOfAModuleDeletesItsFileAndCompiledObject) {
  test::TempDir dir;
  Store s(dir.path() / "data");
  auto a = command(1), b = command(2);
  s.deploy("first", a);
  s.deploy("second", b);
  s.deploy("same-as-first", a);
  ASSERT_TRUE(s.stored(a));
  ASSERT_TRUE(s.stored(b));

  ASSERT_TRUE(s.deployments->remove("first").ok());
  EXPECT_TRUE(s.stored(a)) << "still used by same-as-first";
  ASSERT_TRUE(s.deployments->remove("same-as-first").ok());
  EXPECT_TRUE(s.gone(a));
  EXPECT_TRUE(s.stored(b));
  EXPECT_FALSE(fs::exists(s.objectFile(a).replace_extension(".lock")));
}

TEST(GarbageTest, ModulesOfEarlierVersionsStayForRollback) {
  test::TempDir dir;
  Store s(dir.path() / "data");
  auto v1 = command(1), v2 = command(2);
  s.deploy("fn", v1);
  s.deploy("fn", v2);
  auto report = s.deployments->collectGarbage();
  EXPECT_EQ(report.modules, 0u);
  EXPECT_TRUE(s.stored(v1));
  ASSERT_TRUE(s.deployments->rollback("fn").ok());
  ASSERT_TRUE(s.deployments->remove("fn").ok());
  EXPECT_TRUE(s.gone(v1));
  EXPECT_TRUE(s.gone(v2));
}

TEST(GarbageTest, LeftoversOfACrashAreCollectedByTheNextStore) {
  test::TempDir dir;
  auto kept = command(1), orphan = command(2);
  {
    Store s(dir.path() / "data");
    s.deploy("kept", kept);
    // A deploy that stored and compiled its module, then died before recording the version.
    ASSERT_TRUE(s.registry->putModule(orphan).ok());
    ASSERT_TRUE(s.engine.load(orphan).ok());
    ASSERT_TRUE(s.stored(orphan));
  }
  Store restarted(dir.path() / "data");
  auto report = restarted.deployments->collectGarbage();
  EXPECT_TRUE(report.failures.empty());
  EXPECT_EQ(report.modules, 1u);
  EXPECT_EQ(report.objects, 1u);
  EXPECT_GT(report.bytesFreed, 0u);
  EXPECT_TRUE(restarted.gone(orphan));
  EXPECT_TRUE(restarted.stored(kept));
}

TEST(GarbageTest, AModuleHeldByADeployInProgressIsKept) {
  test::TempDir dir;
  Store s(dir.path() / "data");
  auto m = command(7);
  {
    // What a deploy holds between storing the module and recording its version.
    auto hold = s.registry->holdModule(hashOf(m));
    ASSERT_TRUE(s.engine.load(m).ok());
    ASSERT_TRUE(s.registry->putModule(m).ok());
    (void)s.deployments->collectGarbage();
    EXPECT_TRUE(s.stored(m));
    ASSERT_TRUE(s.registry->addVersion("held", hashOf(m), m.size(), {}).ok());
  }
  (void)s.deployments->collectGarbage();
  EXPECT_TRUE(s.stored(m)) << "referenced by its version now";
}

// A removal's collection racing a deploy of the same module under another name: whichever
// comes first, the deploy ends with its module file and compiled object in place.
TEST(GarbageTest, ACollectionRacingADeployOfTheSameModuleLeavesTheDeployWhole) {
  test::TempDir dir;
  Store s(dir.path() / "data");
  auto m = command(9);
  for (int i = 0; i < 20; ++i) {
    s.deploy("old", m);
    std::thread remover([&] { EXPECT_TRUE(s.deployments->remove("old").ok()); });
    auto v = s.deployments->deploy("new", m, {});
    remover.join();
    ASSERT_TRUE(v.ok()) << v.error().describe();
    ASSERT_TRUE(s.stored(m)) << "round " << i;
    ASSERT_TRUE(s.deployments->remove("new").ok());
    ASSERT_TRUE(s.gone(m));
  }
}

TEST(PermissionsTest, StoreFilesArePrivateUnderUmask022) {
  test::TempDir dir;
  mode_t old = ::umask(022);
  {
    Store s(dir.path() / "data");
    s.deploy("fn", command(1));
    ASSERT_TRUE(s.kv->set("fn", "k", "v").ok());
    EXPECT_EQ(modeOf(s.data), 0700u);
    EXPECT_EQ(modeOf(s.data / "modules"), 0700u);
    EXPECT_EQ(modeOf(s.moduleFile(command(1))), 0600u);
    for (const char* db : {"registry.db", "kv.db"}) {
      for (const char* suffix : {"", "-wal", "-shm"}) {
        fs::path p = s.data / (std::string(db) + suffix);
        if (fs::exists(p)) {
          EXPECT_EQ(modeOf(p), 0600u) << p;
        }
      }
    }
    for (const char* sub : {"cache", "cache/objects", "cache/tmp"}) {
      EXPECT_EQ(modeOf(s.data / sub), 0700u) << sub;
    }
    EXPECT_EQ(modeOf(s.objectFile(command(1))), 0600u);
  }
  ::umask(old);
}

TEST(PermissionsTest, AnOpenDataDirectoryIsTightened) {
  test::TempDir dir;
  fs::path data = dir.path() / "data";
  fs::create_directories(data / "modules");
  ASSERT_EQ(::chmod(data.c_str(), 0755), 0);
  ASSERT_EQ(::chmod((data / "modules").c_str(), 0775), 0);
  { FILE* f = std::fopen((data / "kv.db").c_str(), "w"); std::fclose(f); }
  ASSERT_EQ(::chmod((data / "kv.db").c_str(), 0644), 0);
  auto changed = makePrivate(data);
  ASSERT_TRUE(changed.ok()) << changed.error().describe();
  EXPECT_EQ(*changed, 3u);
  EXPECT_EQ(modeOf(data), 0700u);
  EXPECT_EQ(modeOf(data / "modules"), 0700u);
  EXPECT_EQ(modeOf(data / "kv.db"), 0600u);
}

// Fills a small tmpfs, then removes a function: the removal must succeed (the reserve gives
// its database write room), free the module and object, and leave the store usable.
TEST(FullDiskTest, RemovingAFunctionOnAFullDiskSucceedsAndFreesSpace) {
  test::TempDir dir;
  test::TmpfsMount mount(dir.path() / "mnt", 16u << 20);
  if (!mount.mounted()) GTEST_SKIP() << mount.why();
  fs::path data = dir.path() / "mnt" / "data";
  ASSERT_TRUE(createPrivateDirectory(data).ok());
  DiskReserve reserve(data / "reserve", 1u << 20);
  ASSERT_TRUE(reserve.restore());
  Store s(data, &reserve);
  auto keep = command(1), drop = command(2);
  s.deploy("keep", keep);
  s.deploy("drop", drop);
  ASSERT_TRUE(s.kv->set("drop", "state", std::string(64 << 10, 's')).ok());
  // Empty write-ahead logs, so every further database change needs new blocks.
  ASSERT_TRUE(s.registry->truncateLog().ok());
  ASSERT_TRUE(s.kv->truncateLog().ok());
  ASSERT_GT(test::fillFileSystem(dir.path() / "mnt" / "filler"), 0u);
  uint64_t before = availableBytes(data);

  auto refused = s.deployments->deploy("new", command(3), {});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), ErrorCode::kResourceExhausted) << refused.error().describe();
  EXPECT_NE(refused.error().message().find("disk full"), std::string::npos)
      << refused.error().describe();

  auto removed = s.deployments->remove("drop");
  ASSERT_TRUE(removed.ok()) << removed.error().describe();
  EXPECT_FALSE(fs::exists(data / "reserve")) << "the removal needed the reserve's room";
  EXPECT_TRUE(s.gone(drop));
  EXPECT_TRUE(s.stored(keep));
  EXPECT_GT(availableBytes(data), before);
  auto state = s.kv->get("drop", "state");
  ASSERT_TRUE(state.ok()) << state.error().describe();
  EXPECT_FALSE(state->has_value());
  auto active = s.registry->active("keep");
  ASSERT_TRUE(active.ok() && active->has_value());
}

}  // namespace
}  // namespace tern::store
