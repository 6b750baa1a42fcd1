#include "store/registry.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <thread>

#include "test_support.h"
#include "util/sha256.h"
#include "util/names.h"

namespace tern::store {
namespace {

namespace fs = std::filesystem;

std::vector<uint8_t> bytesOf(std::string_view text) {
  return std::vector<uint8_t>(text.begin(), text.end());
}

std::string hashOf(const std::vector<uint8_t>& bytes) {
  return sha256Hex(std::span<const unsigned char>(bytes.data(), bytes.size()));
}

// Files in the modules directory whose names are not <hash>.wasm (temp files left behind).
std::vector<std::string> strayModuleFiles(const fs::path& dataDir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dataDir / "modules")) {
    std::string name = e.path().filename().string();
    if (!name.ends_with(".wasm") || name.size() != 64 + 5) out.push_back(name);
  }
  return out;
}

class RegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    registry_ = openRegistry();
    ASSERT_NE(registry_, nullptr);
    auto hash = registry_->putModule(module_);
    ASSERT_TRUE(hash.ok()) << hash.error().describe();
    hash_ = *hash;
  }

  std::unique_ptr<Registry> openRegistry() {
    auto r = Registry::open(dir_.path());
    EXPECT_TRUE(r.ok()) << r.error().describe();
    return r.ok() ? std::move(*r) : nullptr;
  }

  // Deploys the fixture's module as the next version of `name`.
  Result<FunctionVersion> deploy(Registry& registry, const std::string& name,
                                 const FunctionSettings& settings = {}) {
    return registry.addVersion(name, hash_, module_.size(), settings);
  }
  Result<FunctionVersion> deploy(const std::string& name, const FunctionSettings& settings = {}) {
    return deploy(*registry_, name, settings);
  }

  uint32_t activeVersion(const std::string& name) {
    auto a = registry_->active(name);
    EXPECT_TRUE(a.ok()) << a.error().describe();
    return a.ok() && a->has_value() ? (*a)->version : 0;
  }

  std::vector<uint32_t> versionNumbers(Registry& registry, const std::string& name) {
    auto vs = registry.versions(name);
    EXPECT_TRUE(vs.ok()) << vs.error().describe();
    std::vector<uint32_t> out;
    if (vs.ok()) {
      for (const auto& v : *vs) out.push_back(v.version);
    }
    return out;
  }

  test::TempDir dir_;
  std::vector<uint8_t> module_ = bytesOf("\0asm\1\0\0\0 pretend module");
  std::string hash_;
  std::unique_ptr<Registry> registry_;
};

TEST_F(RegistryTest, DeploysNumberVersionsFromOneAndActivateTheLatest) {
  FunctionSettings settings;
  settings.memoryMb = 64;
  settings.timeoutMs = 2500;
  settings.concurrency = 3;
  settings.env = {"GREETING=hello=world", "EMPTY=", "UNICODE=h\xc3\xa9llo"};
  for (uint32_t expected = 1; expected <= 3; ++expected) {
    auto v = deploy("hello", settings);
    ASSERT_TRUE(v.ok()) << v.error().describe();
    EXPECT_EQ(v->version, expected);
    EXPECT_EQ(v->name, "hello");
    EXPECT_EQ(activeVersion("hello"), expected);
  }
  auto active = registry_->active("hello");
  ASSERT_TRUE(active.ok() && active->has_value());
  const FunctionVersion& v = **active;
  EXPECT_EQ(v.moduleHash, hash_);
  EXPECT_EQ(v.moduleSize, module_.size());
  EXPECT_EQ(v.settings.memoryMb, 64u);
  EXPECT_EQ(v.settings.timeoutMs, 2500u);
  EXPECT_EQ(v.settings.concurrency, 3u);
  EXPECT_EQ(v.settings.env, settings.env);
  EXPECT_GT(v.createdAtMs, 1'600'000'000'000);  // a Unix time in milliseconds
  EXPECT_EQ(versionNumbers(*registry_, "hello"), (std::vector<uint32_t>{1, 2, 3}));
}

TEST_F(RegistryTest, RollbackActivatesThePreviousVersionAndDeployKeepsCounting) {
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(deploy("fn").ok());
  auto back = registry_->rollback("fn");
  ASSERT_TRUE(back.ok()) << back.error().describe();
  EXPECT_EQ(back->version, 2u);
  EXPECT_EQ(activeVersion("fn"), 2u);

  auto next = deploy("fn");
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->version, 4u);  // not 3 again: numbers are never reused
  EXPECT_EQ(activeVersion("fn"), 4u);
  EXPECT_EQ(versionNumbers(*registry_, "fn"), (std::vector<uint32_t>{1, 2, 3, 4}));

  // From 4 back to 3, 2, 1, then there is nothing earlier.
  for (uint32_t expected : {3u, 2u, 1u}) {
    auto r = registry_->rollback("fn");
    ASSERT_TRUE(r.ok()) << r.error().describe();
    EXPECT_EQ(r->version, expected);
  }
  auto none = registry_->rollback("fn");
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code(), ErrorCode::kConflict);
  EXPECT_EQ(none.error().message(), "function \"fn\" has no version before 1");
  EXPECT_EQ(activeVersion("fn"), 1u);
}

TEST_F(RegistryTest, RollbackWithOneVersionIsAConflict) {
  ASSERT_TRUE(deploy("solo").ok());
  auto r = registry_->rollback("solo");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kConflict);
  EXPECT_EQ(activeVersion("solo"), 1u);
}

TEST_F(RegistryTest, UnknownFunctionsAreAbsentAndRollbackIsNotFound) {
  auto r = registry_->rollback("ghost");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(r.error().message().find("\"ghost\""), std::string::npos);

  auto a = registry_->active("ghost");
  ASSERT_TRUE(a.ok());
  EXPECT_FALSE(a->has_value());
  EXPECT_TRUE(versionNumbers(*registry_, "ghost").empty());
  auto removed = registry_->remove("ghost");
  ASSERT_TRUE(removed.ok());
  EXPECT_FALSE(*removed);
}

TEST_F(RegistryTest, ListSummarisesEveryFunctionByName) {
  auto empty = registry_->list();
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());

  for (int i = 0; i < 3; ++i) ASSERT_TRUE(deploy("zeta").ok());
  ASSERT_TRUE(registry_->rollback("zeta").ok());
  ASSERT_TRUE(deploy("alpha").ok());

  auto list = registry_->list();
  ASSERT_TRUE(list.ok()) << list.error().describe();
  ASSERT_EQ(list->size(), 2u);
  const FunctionSummary& a = (*list)[0];
  const FunctionSummary& z = (*list)[1];
  EXPECT_EQ(a.name, "alpha");
  EXPECT_EQ(a.activeVersion, 1u);
  EXPECT_EQ(a.latestVersion, 1u);
  EXPECT_EQ(a.versionCount, 1u);
  EXPECT_EQ(z.name, "zeta");
  EXPECT_EQ(z.activeVersion, 2u);
  EXPECT_EQ(z.latestVersion, 3u);
  EXPECT_EQ(z.versionCount, 3u);
  EXPECT_GT(z.updatedAtMs, 0);
}

TEST_F(RegistryTest, RemoveDeletesTheFunctionAndItsVersionsButKeepsModules) {
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(deploy("gone").ok());
  ASSERT_TRUE(deploy("kept").ok());

  auto removed = registry_->remove("gone");
  ASSERT_TRUE(removed.ok());
  EXPECT_TRUE(*removed);
  auto a = registry_->active("gone");
  ASSERT_TRUE(a.ok());
  EXPECT_FALSE(a->has_value());
  EXPECT_TRUE(versionNumbers(*registry_, "gone").empty());
  auto list = registry_->list();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].name, "kept");

  auto again = registry_->remove("gone");
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);

  // The module is shared with "kept" and stays.
  EXPECT_TRUE(registry_->readModule(hash_).ok());
  EXPECT_EQ(activeVersion("kept"), 1u);

  // A function deployed again after removal starts a new history.
  auto fresh = deploy("gone");
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ(fresh->version, 1u);
}

TEST_F(RegistryTest, AReopenedRegistrySeesEverything) {
  FunctionSettings settings;
  settings.env = {"A=1"};
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(deploy("one", settings).ok());
  ASSERT_TRUE(registry_->rollback("one").ok());
  ASSERT_TRUE(deploy("two").ok());
  ASSERT_TRUE(deploy("three").ok());
  ASSERT_TRUE(registry_->remove("three").ok());
  auto before = registry_->list();
  ASSERT_TRUE(before.ok());
  registry_.reset();

  auto reopened = openRegistry();
  ASSERT_NE(reopened, nullptr);
  auto after = reopened->list();
  ASSERT_TRUE(after.ok()) << after.error().describe();
  ASSERT_EQ(after->size(), 2u);
  for (size_t i = 0; i < after->size(); ++i) {
    EXPECT_EQ((*after)[i].name, (*before)[i].name);
    EXPECT_EQ((*after)[i].activeVersion, (*before)[i].activeVersion);
    EXPECT_EQ((*after)[i].latestVersion, (*before)[i].latestVersion);
    EXPECT_EQ((*after)[i].updatedAtMs, (*before)[i].updatedAtMs);
  }
  auto active = reopened->active("one");
  ASSERT_TRUE(active.ok() && active->has_value());
  EXPECT_EQ((*active)->version, 2u);
  EXPECT_EQ((*active)->settings.env, settings.env);
  EXPECT_EQ(versionNumbers(*reopened, "one"), (std::vector<uint32_t>{1, 2, 3}));
  auto bytes = reopened->readModule(hash_);
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ(*bytes, module_);
  // Numbering continues from what is on disk.
  auto next = deploy(*reopened, "one");
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->version, 4u);
}

TEST(RegistryNameTest, AcceptsOnlyLowerCaseLettersDigitsAndInnerDashes) {
  for (const std::string& good : std::vector<std::string>{"a", "0", "hello", "hello-world", "a-",
                                                          "9lives", "a--b", std::string(63, 'x')}) {
    EXPECT_TRUE(isFunctionName(good)) << good;
  }
  for (const std::string& bad : std::vector<std::string>{
           "", "Hello", "HELLO", "-a", "a_b", "a.b", "a b", "../x", "a/b", "/a", "..", ".",
           "caf\xc3\xa9", "\xe2\x98\x83", std::string("a\0b", 3), "a\n", std::string(64, 'x')}) {
    EXPECT_FALSE(isFunctionName(bad)) << bad;
  }
}

TEST_F(RegistryTest, EveryCallRejectsInvalidNames) {
  for (const std::string& bad : std::vector<std::string>{"", "Upper", "-lead", std::string(64, 'a'),
                                                         "../x", "a/b", "\xc3\xa9t\xc3\xa9"}) {
    SCOPED_TRACE(bad);
    auto add = deploy(bad);
    ASSERT_FALSE(add.ok());
    EXPECT_EQ(add.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(add.error().message().find("invalid function name"), std::string::npos);
    auto active = registry_->active(bad);
    ASSERT_FALSE(active.ok());
    EXPECT_EQ(active.error().code(), ErrorCode::kInvalidArgument);
    auto versions = registry_->versions(bad);
    ASSERT_FALSE(versions.ok());
    EXPECT_EQ(versions.error().code(), ErrorCode::kInvalidArgument);
    auto rollback = registry_->rollback(bad);
    ASSERT_FALSE(rollback.ok());
    EXPECT_EQ(rollback.error().code(), ErrorCode::kInvalidArgument);
    auto remove = registry_->remove(bad);
    ASSERT_FALSE(remove.ok());
    EXPECT_EQ(remove.error().code(), ErrorCode::kInvalidArgument);
  }
  auto list = registry_->list();
  ASSERT_TRUE(list.ok());
  EXPECT_TRUE(list->empty());
}

TEST_F(RegistryTest, ErrorMessagesEscapeUntrustedNames) {
  auto r = deploy(std::string("bad\nname\x1b[31m") + std::string(500, 'x'));
  ASSERT_FALSE(r.ok());
  const std::string& m = r.error().message();
  EXPECT_EQ(m.find('\n'), std::string::npos);
  EXPECT_EQ(m.find('\x1b'), std::string::npos);
  EXPECT_LT(m.size(), 300u);
}

TEST_F(RegistryTest, PutModuleIsIdempotentAndReadModuleRoundTrips) {
  EXPECT_EQ(hash_, hashOf(module_));
  EXPECT_TRUE(fs::is_regular_file(dir_.path() / "modules" / (hash_ + ".wasm")));
  auto again = registry_->putModule(module_);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, hash_);

  std::vector<uint8_t> big(3 << 20);
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<uint8_t>(i * 7919 >> 3);
  auto bigHash = registry_->putModule(big);
  ASSERT_TRUE(bigHash.ok());
  auto read = registry_->readModule(*bigHash);
  ASSERT_TRUE(read.ok()) << read.error().describe();
  EXPECT_EQ(*read, big);

  auto emptyHash = registry_->putModule({});
  ASSERT_TRUE(emptyHash.ok());
  auto empty = registry_->readModule(*emptyHash);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());

  EXPECT_TRUE(strayModuleFiles(dir_.path()).empty());
}

TEST_F(RegistryTest, ACorruptModuleFileIsDetectedAndRepairedByPuttingItAgain) {
  fs::path file = dir_.path() / "modules" / (hash_ + ".wasm");
  {
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(2);
    f.put('X');  // same size, one byte flipped
  }
  auto read = registry_->readModule(hash_);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.error().code(), ErrorCode::kIo);
  EXPECT_EQ(read.error().message(), "module " + hash_ + " is corrupt");

  fs::resize_file(file, 3);  // truncated
  read = registry_->readModule(hash_);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.error().code(), ErrorCode::kIo);

  auto put = registry_->putModule(module_);
  ASSERT_TRUE(put.ok());
  read = registry_->readModule(hash_);
  ASSERT_TRUE(read.ok()) << read.error().describe();
  EXPECT_EQ(*read, module_);
}

TEST_F(RegistryTest, AMissingModuleIsAnIoError) {
  std::string absent = hashOf(bytesOf("never stored"));
  auto read = registry_->readModule(absent);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.error().code(), ErrorCode::kIo);
}

TEST_F(RegistryTest, StringsThatAreNotHashesAreRejected) {
  std::string upper = hash_;
  std::transform(upper.begin(), upper.end(), upper.begin(), ::toupper);
  // A file these could reach if they were used as paths.
  { std::ofstream(dir_.path() / "secret.wasm") << "secret"; }
  for (const std::string& bad : std::vector<std::string>{
           std::string(), std::string("abc"), upper, hash_ + "0", hash_.substr(1),
           std::string("../secret"), std::string("../../etc/passwd"), "../" + hash_.substr(3),
           hash_.substr(0, 63) + "/", hash_.substr(0, 63) + "g",
           hash_.substr(0, 32) + std::string(1, '\0') + hash_.substr(33)}) {
    SCOPED_TRACE(bad);
    auto read = registry_->readModule(bad);
    ASSERT_FALSE(read.ok());
    EXPECT_EQ(read.error().code(), ErrorCode::kInvalidArgument);
    auto add = registry_->addVersion("fn", bad, module_.size(), {});
    ASSERT_FALSE(add.ok());
    EXPECT_EQ(add.error().code(), ErrorCode::kInvalidArgument);
  }
}

TEST_F(RegistryTest, AddVersionRequiresTheStoredModuleAndItsSize) {
  auto unstored = registry_->addVersion("fn", hashOf(bytesOf("other")), 5, {});
  ASSERT_FALSE(unstored.ok());
  EXPECT_EQ(unstored.error().code(), ErrorCode::kNotFound);

  auto wrongSize = registry_->addVersion("fn", hash_, module_.size() + 1, {});
  ASSERT_FALSE(wrongSize.ok());
  EXPECT_EQ(wrongSize.error().code(), ErrorCode::kInvalidArgument);

  auto a = registry_->active("fn");
  ASSERT_TRUE(a.ok());
  EXPECT_FALSE(a->has_value());
}

TEST_F(RegistryTest, EnvironmentEntriesMustBeKeyValueText) {
  for (const std::string& bad :
       std::vector<std::string>{"NOEQUALS", "=value", std::string("A=b\0c", 5), "A=\xff\xfe"}) {
    SCOPED_TRACE(bad);
    FunctionSettings settings;
    settings.env = {"OK=1", bad};
    auto r = deploy("fn", settings);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  }
  EXPECT_TRUE(versionNumbers(*registry_, "fn").empty());
}

TEST_F(RegistryTest, ConcurrentDeploysGetDistinctConsecutiveVersions) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 25;
  std::vector<std::vector<uint32_t>> got(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        auto v = deploy("busy");
        if (v.ok()) got[t].push_back(v->version);
      }
    });
  }
  for (auto& th : threads) th.join();

  std::vector<uint32_t> all;
  for (const auto& g : got) {
    EXPECT_EQ(g.size(), size_t{kPerThread});
    EXPECT_TRUE(std::is_sorted(g.begin(), g.end()));  // each thread sees its own increase
    all.insert(all.end(), g.begin(), g.end());
  }
  std::sort(all.begin(), all.end());
  std::vector<uint32_t> expected(kThreads * kPerThread);
  for (size_t i = 0; i < expected.size(); ++i) expected[i] = static_cast<uint32_t>(i + 1);
  EXPECT_EQ(all, expected);
  EXPECT_EQ(versionNumbers(*registry_, "busy"), expected);
}

TEST_F(RegistryTest, DeploysThroughTwoConnectionsToOneDirectoryDoNotCollide) {
  auto second = openRegistry();
  ASSERT_NE(second, nullptr);
  constexpr int kPerThread = 20;
  std::vector<uint32_t> got[4];
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    Registry& r = t % 2 == 0 ? *registry_ : *second;
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        auto v = deploy(r, "shared");
        if (v.ok()) got[t].push_back(v->version);
      }
    });
  }
  for (auto& th : threads) th.join();
  std::vector<uint32_t> all;
  for (const auto& g : got) {
    EXPECT_EQ(g.size(), size_t{kPerThread});
    all.insert(all.end(), g.begin(), g.end());
  }
  std::sort(all.begin(), all.end());
  EXPECT_EQ(std::adjacent_find(all.begin(), all.end()), all.end());  // no duplicates
  EXPECT_EQ(all.front(), 1u);
  EXPECT_EQ(all.back(), 4u * kPerThread);
}

// kill -9 right after addVersion returned: the version is in the database when it is opened
// again. The child holds its connection open when it dies, so nothing but the commit itself
// (no checkpoint, no close) can have put the version on disk.
TEST_F(RegistryTest, AVersionThatAddVersionReturnedSurvivesKill9) {
  ASSERT_TRUE(deploy("survivor").ok());
  ASSERT_TRUE(deploy("survivor").ok());
  registry_.reset();  // no connection is open across fork()
  std::vector<uint8_t> childModule = bytesOf("module deployed by the child");

  int pipeFds[2];
  ASSERT_EQ(::pipe2(pipeFds, O_CLOEXEC), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // The child: no gtest assertions, and it never returns into the test.
    ::close(pipeFds[0]);
    auto reg = Registry::open(dir_.path());
    if (!reg.ok()) ::_exit(10);
    auto hash = (*reg)->putModule(childModule);
    if (!hash.ok()) ::_exit(11);
    auto v = (*reg)->addVersion("survivor", *hash, childModule.size(), {});
    if (!v.ok()) ::_exit(12);
    auto report = static_cast<uint8_t>(v->version);
    if (::write(pipeFds[1], &report, 1) != 1) ::_exit(13);
    for (;;) ::pause();
  }
  ::close(pipeFds[1]);
  uint8_t reported = 0;
  pollfd p{pipeFds[0], POLLIN, 0};
  ssize_t n = ::poll(&p, 1, 60'000) == 1 ? ::read(pipeFds[0], &reported, 1) : -1;
  ::kill(pid, SIGKILL);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ::close(pipeFds[0]);
  ASSERT_EQ(n, 1) << "the child did not report a version; exit status "
                  << (WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  EXPECT_EQ(reported, 3);

  registry_ = openRegistry();
  ASSERT_NE(registry_, nullptr);
  auto active = registry_->active("survivor");
  ASSERT_TRUE(active.ok() && active->has_value());
  EXPECT_EQ((*active)->version, 3u);
  EXPECT_EQ((*active)->moduleHash, hashOf(childModule));
  auto bytes = registry_->readModule((*active)->moduleHash);
  ASSERT_TRUE(bytes.ok()) << bytes.error().describe();
  EXPECT_EQ(*bytes, childModule);
  EXPECT_EQ(versionNumbers(*registry_, "survivor"), (std::vector<uint32_t>{1, 2, 3}));
}

// Direct access to registry.db, to check what open() configured and how it treats a file
// written by a newer tern.
class RawDatabase {
 public:
  explicit RawDatabase(const fs::path& file) { sqlite3_open(file.c_str(), &db_); }
  ~RawDatabase() { sqlite3_close(db_); }
  std::string text(const std::string& sql) {
    sqlite3_stmt* s = nullptr;
    std::string out;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &s, nullptr) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW) {
      out = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
    }
    sqlite3_finalize(s);
    return out;
  }

 private:
  sqlite3* db_ = nullptr;
};

// A node in a cluster: local changes wait in the durable outbox until the cluster
// acknowledged them; changes mirrored from the cluster are not recorded.
TEST_F(RegistryTest, JournaledLocalChangesSurviveAReopenUntilMarkedPublished) {
  ASSERT_TRUE(deploy("before").ok());  // journal off: a standalone change
  registry_->setChangeJournal(ChangeJournal::kOn);
  ASSERT_TRUE(deploy("kept").ok());
  ASSERT_TRUE(deploy("gone").ok());
  ASSERT_TRUE(deploy("kept").ok());
  ASSERT_TRUE(registry_->rollback("kept").ok());
  ASSERT_TRUE(registry_->remove("gone").ok());
  ASSERT_TRUE(registry_->remove("never-there").ok());
  FunctionVersion adopted;
  adopted.name = "mirrored";
  adopted.version = 7;
  adopted.moduleHash = hash_;
  adopted.moduleSize = module_.size();
  ASSERT_TRUE(registry_->adoptVersion(adopted).ok());
  ASSERT_TRUE(deploy("withdrawn").ok());
  auto first = registry_->unpublished();
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->size(), 3u);
  ASSERT_TRUE(registry_->markPublished(first->back()).ok());  // "withdrawn"
  ASSERT_TRUE(registry_->remove("withdrawn", ChangeSource::kCluster).ok());
  registry_.reset();

  registry_ = openRegistry();  // the journal is off again until set: reading still works
  auto pending = registry_->unpublished();
  ASSERT_TRUE(pending.ok()) << pending.error().describe();
  std::vector<std::string> names;
  for (const auto& c : *pending) names.push_back(c.name);
  // Oldest change first: "kept" changed last (rollback) before "gone" was removed.
  EXPECT_EQ(names, (std::vector<std::string>{"kept", "gone"}));
  EXPECT_TRUE(*registry_->isUnpublished("gone"));
  EXPECT_FALSE(*registry_->isUnpublished("mirrored"));
  EXPECT_FALSE(*registry_->isUnpublished("before"));

  // A change made while the older one was being published keeps the row.
  registry_->setChangeJournal(ChangeJournal::kOn);
  ASSERT_TRUE(deploy("kept").ok());
  auto stale = registry_->markPublished((*pending)[0]);
  ASSERT_TRUE(stale.ok());
  EXPECT_FALSE(*stale);
  EXPECT_TRUE(*registry_->isUnpublished("kept"));
  auto now = registry_->unpublished();
  ASSERT_TRUE(now.ok());
  for (const auto& c : *now) {
    auto done = registry_->markPublished(c);
    ASSERT_TRUE(done.ok());
    EXPECT_TRUE(*done);
  }
  EXPECT_TRUE(registry_->unpublished()->empty());
}

TEST_F(RegistryTest, TheDatabaseUsesWalAndRecordsItsSchemaVersion) {
  RawDatabase raw(dir_.path() / "registry.db");
  EXPECT_EQ(raw.text("PRAGMA journal_mode"), "wal");
  EXPECT_EQ(raw.text("PRAGMA user_version"), "3");
}

TEST_F(RegistryTest, TriggersReplyTopicAndCapabilitiesRoundTrip) {
  FunctionSettings s;
  s.triggers = {"mqtt:sensors/+/t", "cron:0 6 * * 1-5"};
  s.replyTopic = "out/t";
  s.allow = {"kv", "publish:alerts/#"};
  ASSERT_TRUE(deploy("fn", s).ok());
  registry_.reset();
  registry_ = openRegistry();
  auto v = registry_->active("fn");
  ASSERT_TRUE(v.ok() && *v);
  EXPECT_EQ((*v)->settings.triggers, s.triggers);
  EXPECT_EQ((*v)->settings.replyTopic, "out/t");
  EXPECT_EQ((*v)->settings.allow, s.allow);
}

// A registry written by a tern with schema version 1 (no options column) opens, keeps its
// versions, and is migrated to the current schema.
TEST(RegistryMigrationTest, SchemaVersionOneIsMigrated) {
  test::TempDir dir;
  fs::create_directories(dir.path() / "modules");
  std::string bytes("\0asm\1\0\0\0", 8);
  std::string hash = sha256Hex(bytes);
  { std::ofstream(dir.path() / "modules" / (hash + ".wasm"), std::ios::binary) << bytes; }
  {
    RawDatabase raw(dir.path() / "registry.db");
    raw.text("CREATE TABLE functions (name TEXT NOT NULL PRIMARY KEY, active_version INTEGER "
             "NOT NULL, updated_at_ms INTEGER NOT NULL) STRICT");
    raw.text("CREATE TABLE versions (name TEXT NOT NULL REFERENCES functions(name) ON DELETE "
             "CASCADE, version INTEGER NOT NULL CHECK (version >= 1), module_hash TEXT NOT NULL, "
             "module_size INTEGER NOT NULL, memory_mb INTEGER NOT NULL, timeout_ms INTEGER NOT "
             "NULL, concurrency INTEGER NOT NULL, env TEXT NOT NULL, created_at_ms INTEGER NOT "
             "NULL, PRIMARY KEY (name, version)) STRICT");
    raw.text("INSERT INTO functions VALUES ('old', 1, 1)");
    raw.text("INSERT INTO versions VALUES ('old', 1, '" + hash + "', " +
             std::to_string(bytes.size()) + ", 64, 500, 0, '[\"A=1\"]', 1)");
    raw.text("PRAGMA user_version = 1");
  }
  auto r = Registry::open(dir.path());
  ASSERT_TRUE(r.ok()) << r.error().describe();
  auto v = (*r)->active("old");
  ASSERT_TRUE(v.ok() && *v) << (v.ok() ? "missing" : v.error().describe());
  EXPECT_EQ((*v)->settings.memoryMb, 64u);
  EXPECT_EQ((*v)->settings.env, std::vector<std::string>{"A=1"});
  EXPECT_TRUE((*v)->settings.triggers.empty());
  r->reset();
  RawDatabase raw(dir.path() / "registry.db");
  EXPECT_EQ(raw.text("PRAGMA user_version"), "3");
}

TEST_F(RegistryTest, ADatabaseFromANewerTernIsRefused) {
  registry_.reset();
  {
    RawDatabase raw(dir_.path() / "registry.db");
    raw.text("PRAGMA user_version = 99");
  }
  auto r = Registry::open(dir_.path());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kIo);
  EXPECT_NE(r.error().message().find("schema version 99"), std::string::npos);
}

TEST(RegistryOpenTest, ADataDirectoryThatIsAFileIsAnIoError) {
  test::TempDir dir;
  { std::ofstream(dir.path() / "file") << "x"; }
  auto r = Registry::open(dir.path() / "file");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kIo);
}

}  // namespace
}  // namespace tern::store
