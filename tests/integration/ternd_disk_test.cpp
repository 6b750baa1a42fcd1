// ternd's data directory on disk (issue 10, items 6 and 7): removed functions' files are
// reclaimed, crashed compiles leave nothing behind after a restart, a full disk can be
// recovered through the API, and nothing in the directory is readable by other users.

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <filesystem>
#include <string>

#include "raw_http.h"
#include "ternd_process.h"
#include "test_support.h"
#include "tmpfs_mount.h"
#include "util/sha256.h"

namespace tern {
namespace {

namespace fs = std::filesystem;
using test::request;

std::string example(const char* name) {
  return test::readText(test::examplesDir() / (std::string(name) + ".wasm"));
}

fs::path moduleFile(const fs::path& data, const std::string& wasm) {
  return data / "modules" / (sha256Hex(wasm) + ".wasm");
}

uint64_t freeBytes(const fs::path& p) {
  struct statvfs vfs {};
  EXPECT_EQ(::statvfs(p.c_str(), &vfs), 0);
  return static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
}

size_t countObjects(const fs::path& data) {
  size_t n = 0;
  std::error_code ec;
  for (fs::directory_iterator it(data / "cache" / "objects", ec), end; !ec && it != end;
       it.increment(ec)) {
    n += it->path().extension() == ".so" ? 1 : 0;
  }
  return n;
}

// Deployed at the optimized tier: the deploy answers once the function's one object is in
// the cache. (With the default tier a background compile would add the optimized object at
// a moment of its own, and the objects counted here would depend on when it finished.)
test::HttpReply deploy(test::TerndProcess& node, const std::string& name, const std::string& wasm) {
  return request(node.port(), "PUT", "/v1/functions/" + name + "?compile_tier=optimized", wasm,
                 node.auth());
}

test::HttpReply remove(test::TerndProcess& node, const std::string& name) {
  return request(node.port(), "DELETE", "/v1/functions/" + name, "", node.auth());
}

TEST(TerndDiskTest, RemovedFunctionsFilesAreReclaimedAndCrashLeftoversGoAtStart) {
  test::TempDir dir;
  fs::path data = dir.path() / "data";
  std::string hello = example("hello"), echo = example("echo");
  test::TerndProcess node(data);
  ASSERT_EQ(deploy(node, "a", hello).status, 201);
  ASSERT_EQ(deploy(node, "b", echo).status, 201);
  ASSERT_EQ(countObjects(data), 2u);

  ASSERT_EQ(remove(node, "a").status, 200);
  EXPECT_FALSE(fs::exists(moduleFile(data, hello)));
  EXPECT_TRUE(fs::exists(moduleFile(data, echo)));
  EXPECT_EQ(countObjects(data), 1u);

  // What kill -9 leaves: a compile's work directory and a module stored for a version that
  // was never recorded.
  node.kill9();
  fs::path work = data / "cache" / "tmp" / "0123456789abcdef-999999-dead";
  fs::create_directories(work);
  { std::FILE* f = std::fopen((work / "module.c").c_str(), "w"); std::fputs("/* */", f); std::fclose(f); }
  { std::FILE* f = std::fopen(moduleFile(data, hello).c_str(), "w"); std::fputs(hello.c_str(), f); std::fclose(f); }

  node.restart();
  EXPECT_FALSE(fs::exists(work));
  EXPECT_FALSE(fs::exists(moduleFile(data, hello)));
  EXPECT_TRUE(fs::exists(moduleFile(data, echo)));
  EXPECT_EQ(countObjects(data), 1u);
  EXPECT_EQ(request(node.port(), "POST", "/fn/b", "kept").body, "kept");
}

TEST(TerndDiskTest, TheDataDirectoryIsPrivateUnderUmask022) {
  test::TempDir dir;
  fs::path data = dir.path() / "data";
  // A directory an older tern left open, with a file of the operator's that is not tern's.
  fs::create_directories(data / "modules");
  ASSERT_EQ(::chmod(data.c_str(), 0755), 0);
  ASSERT_EQ(::chmod((data / "modules").c_str(), 0755), 0);
  fs::path notes = data / "operator-notes";
  { std::FILE* f = std::fopen(notes.c_str(), "w"); std::fputs("mine", f); std::fclose(f); }
  ASSERT_EQ(::chmod(notes.c_str(), 0644), 0);
  mode_t old = ::umask(022);  // inherited by ternd
  {
    test::TerndProcess node(data);
    ASSERT_EQ(deploy(node, "echo", example("echo")).status, 201);
    ASSERT_EQ(request(node.port(), "POST", "/fn/echo", "x").status, 200);
    ASSERT_EQ(request(node.port(), "POST", "/v1/async/echo", "x", node.auth()).status, 202);
    EXPECT_EQ(node.terminate(), 0);
  }
  ::umask(old);
  struct stat st {};
  ASSERT_EQ(::stat(data.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  size_t files = 0;
  for (const auto& e : fs::recursive_directory_iterator(data)) {
    ASSERT_EQ(::lstat(e.path().c_str(), &st), 0);
    if (e.path() == notes) {
      EXPECT_EQ(st.st_mode & 0777, 0644u) << "only tern's own entries are changed";
      continue;
    }
    EXPECT_EQ(st.st_mode & 077, 0u) << e.path() << " is open to others";
    files += S_ISREG(st.st_mode) ? 1 : 0;
  }
  for (const char* name : {"registry.db", "kv.db", "queue.db", "admin.token"}) {
    EXPECT_TRUE(fs::exists(data / name)) << name;
  }
  EXPECT_GT(files, 5u);
}

// On a full file system DELETE still works (its database change uses the reserve), frees
// the function's module and object, and the node keeps serving.
TEST(TerndDiskTest, RemovingAFunctionOnAFullDiskFreesSpaceAndTheNodeKeepsServing) {
  test::TempDir dir;
  fs::path mnt = dir.path() / "mnt";
  test::TmpfsMount mount(mnt, 48u << 20);
  if (!mount.mounted()) GTEST_SKIP() << mount.why();
  fs::path data = mnt / "data";
  std::string hello = example("hello"), echo = example("echo");
  test::TerndProcess node(data, {"--disk-reserve-mb", "2"});
  ASSERT_EQ(deploy(node, "a", hello).status, 201);
  ASSERT_EQ(deploy(node, "b", echo).status, 201);
  ASSERT_GT(test::fillFileSystem(mnt / "filler"), 0u);
  uint64_t before = freeBytes(data);

  auto refused = deploy(node, "c", example("hello_rust"));
  EXPECT_EQ(refused.status, 503) << refused.body;
  EXPECT_NE(refused.body.find("disk full"), std::string::npos) << refused.body;

  auto removed = remove(node, "a");
  ASSERT_EQ(removed.status, 200) << removed.body;
  EXPECT_FALSE(fs::exists(moduleFile(data, hello)));
  EXPECT_EQ(countObjects(data), 1u);
  EXPECT_GT(freeBytes(data), before);
  EXPECT_EQ(request(node.port(), "GET", "/healthz").status, 200);
  EXPECT_EQ(request(node.port(), "POST", "/fn/b", "still serving").body, "still serving");
  EXPECT_EQ(request(node.port(), "GET", "/fn/a").status, 404);

  // With the filler gone the node deploys again.
  fs::remove(mnt / "filler");
  EXPECT_EQ(deploy(node, "c", hello).status, 201);
}

}  // namespace
}  // namespace tern
