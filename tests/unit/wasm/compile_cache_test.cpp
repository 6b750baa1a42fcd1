// The compile cache's upkeep: abandoned work directories and unreferenced objects.

#include "wasm/compile_cache.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "test_support.h"

namespace tern::wasm {
namespace {

namespace fs = std::filesystem;

TEST(CompileCacheTest, AbandonedWorkDirectoriesGoAndOnesInUseStay) {
  test::TempDir dir;
  fs::path cache = dir.path() / "cache";
  ASSERT_TRUE(prepareCacheDirectories(cache).ok());
  std::string dead(64, 'a'), busy(64, 'b'), unlocked(64, 'c');
  auto work = [&](const std::string& key) {
    fs::path p = cache / "tmp" / (key.substr(0, 16) + "-4242-1f");
    fs::create_directories(p);
    FILE* f = std::fopen((p / "module.c").c_str(), "w");
    std::fputs("int x;", f);
    std::fclose(f);
    return p;
  };
  fs::path deadWork = work(dead), busyWork = work(busy), unlockedWork = work(unlocked);
  { CacheKeyLock released(cache / "objects" / (dead + ".lock")); }
  CacheKeyLock compiling(cache / "objects" / (busy + ".lock"));
  ASSERT_TRUE(compiling.held());

  EXPECT_EQ(removeAbandonedWork(cache), 2u);
  EXPECT_FALSE(fs::exists(deadWork));
  EXPECT_FALSE(fs::exists(unlockedWork));
  EXPECT_TRUE(fs::exists(busyWork)) << "a compile in progress keeps its work directory";
}

TEST(CompileCacheTest, ObjectsNotKeptAreRemovedUnlessTheirKeyIsLocked) {
  test::TempDir dir;
  fs::path cache = dir.path() / "cache";
  ASSERT_TRUE(prepareCacheDirectories(cache).ok());
  std::string live(64, '1'), dead(64, '2'), compiling(64, '3');
  for (const auto& key : {live, dead, compiling}) {
    FILE* f = std::fopen((cache / "objects" / (key + ".so")).c_str(), "w");
    std::fputs("object", f);
    std::fclose(f);
  }
  CacheKeyLock busy(cache / "objects" / (compiling + ".lock"));
  auto swept = removeObjectsExcept(cache, {live});
  EXPECT_EQ(swept.removed, 1u);
  EXPECT_TRUE(fs::exists(cache / "objects" / (live + ".so")));
  EXPECT_FALSE(fs::exists(cache / "objects" / (dead + ".so")));
  EXPECT_FALSE(fs::exists(cache / "objects" / (dead + ".lock")));
  EXPECT_TRUE(fs::exists(cache / "objects" / (compiling + ".so")));
}

}  // namespace
}  // namespace tern::wasm
