// Tiered compilation in the store: the tier policy (a table), the setting kept with a
// version, and the swap from the baseline object to the optimized one while invocations
// run. docs/design/tiers.md.

#include "store/tiers.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <memory>
#include <thread>

#include "exec/function_table.h"
#include "store/deployments.h"
#include "store/registry.h"
#include "test_support.h"
#include "util/metrics.h"
#include "util/sha256.h"

namespace tern::store {
namespace {

namespace fs = std::filesystem;
using wasm::Tier;

TEST(TierPolicyTest, PlansFromTheTable) {
  struct Case {
    CompileTier setting;
    TierView view;  // optimizedCached, baselineAvailable, backgroundAvailable
    TierPlan plan;
  };
  const Case cases[] = {
      // auto: baseline then optimized, unless the optimized object exists or cannot wait.
      {CompileTier::kAuto, {false, true, true}, {Tier::kBaseline, true}},
      {CompileTier::kAuto, {true, true, true}, {Tier::kOptimized, false}},
      {CompileTier::kAuto, {false, false, true}, {Tier::kOptimized, false}},
      {CompileTier::kAuto, {false, true, false}, {Tier::kOptimized, false}},
      {CompileTier::kAuto, {true, false, false}, {Tier::kOptimized, false}},
      // baseline: never optimized later; without the compiler, optimized.
      {CompileTier::kBaseline, {false, true, true}, {Tier::kBaseline, false}},
      {CompileTier::kBaseline, {true, true, true}, {Tier::kBaseline, false}},
      {CompileTier::kBaseline, {false, false, true}, {Tier::kOptimized, false}},
      {CompileTier::kBaseline, {false, true, false}, {Tier::kBaseline, false}},
      // optimized: always, at once.
      {CompileTier::kOptimized, {false, true, true}, {Tier::kOptimized, false}},
      {CompileTier::kOptimized, {true, false, false}, {Tier::kOptimized, false}},
  };
  for (const auto& c : cases) {
    TierPlan got = planTiers(c.setting, c.view);
    EXPECT_EQ(got, c.plan) << compileTierName(c.setting) << " cached=" << c.view.optimizedCached
                           << " baseline=" << c.view.baselineAvailable
                           << " background=" << c.view.backgroundAvailable;
  }
}

TEST(TierPolicyTest, SettingsParseByName) {
  for (auto t : {CompileTier::kAuto, CompileTier::kBaseline, CompileTier::kOptimized}) {
    auto p = parseCompileTier(compileTierName(t));
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(*p, t);
  }
  for (const char* bad : {"", "Auto", "O2", "fast", "baseline "}) {
    auto p = parseCompileTier(bad);
    ASSERT_FALSE(p.ok()) << bad;
    EXPECT_EQ(p.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(p.error().message().find("auto, baseline or optimized"), std::string::npos);
  }
}

wasm::EngineConfig engineConfig(const fs::path& data, const std::string& cc) {
  auto config = test::engineConfig(data / "cache");
  if (!cc.empty()) config.compiler.cc = cc;
  return config;
}

// A node's store with the background service, as Node wires them; the service starts
// when the test says so. `cc`: the optimized tier's C compiler, when not the default.
struct TieredStore {
  explicit TieredStore(const fs::path& data, const std::string& cc = "")
      : engine(engineConfig(data, cc)), tierUp(engine, table) {
    auto r = Registry::open(data);
    EXPECT_TRUE(r.ok()) << r.error().describe();
    registry = std::move(*r);
    deployments = std::make_unique<Deployments>(*registry, engine, table);
    deployments->setTierUp(&tierUp);
  }
  std::shared_ptr<const exec::ActiveVersion> active(const std::string& name) {
    auto fn = table.find(name);
    return fn ? fn->active() : nullptr;
  }

  MetricsRegistry metrics;
  wasm::Engine engine;
  exec::FunctionTable table{metrics};
  std::unique_ptr<Registry> registry;
  std::unique_ptr<Deployments> deployments;
  // Last, as in Node: it stops (and with it any collection it runs) before the store goes.
  TierUp tierUp;
};

// A module of its own per test (the engine's cache is shared between test runs).
std::vector<uint8_t> counterModule(const std::string& tag) {
  return test::wat(R"((module
    (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
    (memory 1)
    (data (i32.const 16) "ok)" + tag + R"(")
    (func (export "_start")
      (i32.store (i32.const 0) (i32.const 16))
      (i32.store (i32.const 4) (i32.const )" + std::to_string(2 + tag.size()) + R"())
      (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))))");
}

// A C compiler that holds each build (a command with -o) until the test lets it go: it
// reads a FIFO first, so the test's open of the FIFO for writing returns once a build has
// started, and the build goes on when the test closes it.
class HeldCompiler {
 public:
  explicit HeldCompiler(const fs::path& dir) : fifo_(dir / "hold"), path_(dir / "held-cc") {
    EXPECT_EQ(mkfifo(fifo_.c_str(), 0600), 0);
    std::ofstream(path_) << "#!/bin/sh\n"
                         << "case \" $* \" in *\" -o \"*) cat '" << fifo_.string()
                         << "' >/dev/null ;; esac\n"
                         << "exec cc \"$@\"\n";
    fs::permissions(path_, fs::perms::owner_all);
  }
  const std::string path() const { return path_.string(); }
  // Returns once a build is held.
  void waitForBuild() {
    fd_ = open(fifo_.c_str(), O_WRONLY | O_CLOEXEC);
    ASSERT_GE(fd_, 0);
  }
  void release() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }
  ~HeldCompiler() { release(); }

 private:
  fs::path fifo_;
  fs::path path_;
  int fd_ = -1;
};

std::string uniqueTag() {
  return std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
}

// The swap under load: a thread invokes without pause while the optimized object is built
// and swapped in; every invocation succeeds, some ran each tier, and invocations that
// started on the baseline object finished on it.
TEST(TierUpTest, InvocationsNeverFailWhileTheOptimizedObjectIsSwappedIn) {
  test::TempDir dir;
  TieredStore s(dir.path());
  const std::string tag = uniqueTag();
  auto module = counterModule(tag);
  auto v = s.deployments->deploy("f", module, {});
  ASSERT_TRUE(v.ok()) << v.error().describe();
  auto first = s.active("f");
  ASSERT_TRUE(first);
  ASSERT_EQ(first->module->tier(), Tier::kBaseline);
  EXPECT_EQ(first->tierNote, "the optimized object is being built in the background");

  std::atomic<bool> done{false};
  std::atomic<uint64_t> ok{0}, failed{0}, onBaseline{0}, onOptimized{0};
  std::thread invoker([&] {
    while (!done.load()) {
      auto active = s.active("f");  // what the invoker holds for one invocation
      auto r = s.engine.invoke(active->module, {});
      bool right = r.outcome == wasm::Outcome::kOk && r.stdoutData == "ok" + tag;
      (right ? ok : failed).fetch_add(1);
      (active->module->tier() == Tier::kBaseline ? onBaseline : onOptimized).fetch_add(1);
    }
  });
  // Only once the baseline object has served does the background compile start.
  while (onBaseline.load() < 20) std::this_thread::yield();
  s.tierUp.start();
  while (s.active("f")->module->tier() != Tier::kOptimized) std::this_thread::yield();
  const uint64_t atSwap = onOptimized.load();
  while (onOptimized.load() < atSwap + 20) std::this_thread::yield();
  done = true;
  invoker.join();

  EXPECT_EQ(failed.load(), 0u);
  EXPECT_GT(onOptimized.load(), 0u);
  auto now = s.active("f");
  EXPECT_EQ(now->config.version, first->config.version);
  EXPECT_EQ(now->tierNote, "");
  EXPECT_EQ(s.tierUp.stats().swaps, 1u);
  // The version that started on the baseline object still holds it.
  EXPECT_EQ(first->module->tier(), Tier::kBaseline);
}

// A deploy made while the optimized object is built wins: the stale object is not swapped
// in over the newer version, and it stays in the cache, since version 1 still uses its
// module.
TEST(TierUpTest, ANewerDeployIsNotReplacedByAStaleOptimizedObject) {
  test::TempDir dir;
  HeldCompiler held(dir.path());
  TieredStore s(dir.path(), held.path());
  const std::string tag = uniqueTag();
  auto first = counterModule(tag + "a");
  ASSERT_TRUE(s.deployments->deploy("f", first, {}).ok());
  s.tierUp.start();
  held.waitForBuild();
  FunctionSettings baselineOnly;
  baselineOnly.compileTier = CompileTier::kBaseline;
  ASSERT_TRUE(s.deployments->deploy("f", counterModule(tag + "b"), baselineOnly).ok());
  held.release();
  while (s.tierUp.stats().stale == 0) std::this_thread::yield();
  auto active = s.active("f");
  EXPECT_EQ(active->config.version, 2u);
  EXPECT_EQ(active->module->tier(), Tier::kBaseline);
  EXPECT_EQ(active->tierNote, "");
  EXPECT_EQ(s.tierUp.stats().swaps, 0u);
  auto& compiler = s.engine.compiler();
  std::string key = compiler.cacheKey(sha256Hex(first));
  EXPECT_TRUE(fs::exists(compiler.config().cacheDir / "objects" / (key + ".so")));
}

// An optimized object built for a function removed during the compile is collected as soon
// as it is built, not left in the cache until the node's next start.
TEST(TierUpTest, AnObjectBuiltForARemovedFunctionIsCollected) {
  test::TempDir dir;
  HeldCompiler held(dir.path());
  TieredStore s(dir.path(), held.path());
  auto module = counterModule(uniqueTag());
  ASSERT_TRUE(s.deployments->deploy("f", module, {}).ok());
  s.tierUp.start();
  held.waitForBuild();
  ASSERT_TRUE(s.deployments->remove("f").ok());
  held.release();
  while (s.tierUp.stats().stale == 0) std::this_thread::yield();
  auto& compiler = s.engine.compiler();
  EXPECT_EQ(compiler.stats().compiles - compiler.stats().baselineCompiles, 1u);
  std::string key = compiler.cacheKey(sha256Hex(module));
  EXPECT_FALSE(fs::exists(compiler.config().cacheDir / "objects" / (key + ".so")));
  EXPECT_FALSE(s.active("f"));
}

// A job whose function moved on before its turn (here: a newer deploy at the baseline
// tier) is dropped without compiling.
TEST(TierUpTest, AJobForAFunctionThatMovedOnIsNotCompiled) {
  test::TempDir dir;
  TieredStore s(dir.path());
  const std::string tag = uniqueTag();
  ASSERT_TRUE(s.deployments->deploy("f", counterModule(tag + "a"), {}).ok());
  FunctionSettings baselineOnly;
  baselineOnly.compileTier = CompileTier::kBaseline;
  ASSERT_TRUE(s.deployments->deploy("f", counterModule(tag + "b"), baselineOnly).ok());
  s.tierUp.start();
  while (s.tierUp.stats().dropped == 0) std::this_thread::yield();
  auto stats = s.tierUp.stats();
  EXPECT_EQ(stats.stale, 0u);
  EXPECT_EQ(stats.swaps, 0u);
  auto& compiler = s.engine.compiler();
  EXPECT_EQ(compiler.stats().compiles, compiler.stats().baselineCompiles);
  EXPECT_EQ(s.active("f")->config.version, 2u);
}

// Settings: optimized compiles before the deploy answers; the setting is kept with the
// version and a restart serves an optimized object already built without compiling.
TEST(TierUpTest, OptimizedSettingAndRestartsServeTheOptimizedObjectAtOnce) {
  test::TempDir dir;
  const std::string tag = uniqueTag();
  {
    TieredStore s(dir.path());
    FunctionSettings optimized;
    optimized.compileTier = CompileTier::kOptimized;
    ASSERT_TRUE(s.deployments->deploy("o", counterModule(tag + "o"), optimized).ok());
    EXPECT_EQ(s.active("o")->module->tier(), Tier::kOptimized);
    auto stored = s.registry->active("o");
    ASSERT_TRUE(stored.ok() && *stored);
    EXPECT_EQ((*stored)->settings.compileTier, CompileTier::kOptimized);

    ASSERT_TRUE(s.deployments->deploy("a", counterModule(tag + "a"), {}).ok());
    EXPECT_EQ(s.active("a")->module->tier(), Tier::kBaseline);
    s.tierUp.start();
    while (s.active("a")->module->tier() != Tier::kOptimized) std::this_thread::yield();
  }
  TieredStore again(dir.path());
  auto report = again.deployments->loadAll();
  EXPECT_EQ(report.loaded, 2u);
  EXPECT_EQ(again.active("a")->module->tier(), Tier::kOptimized);
  EXPECT_EQ(again.active("o")->module->tier(), Tier::kOptimized);
  EXPECT_EQ(again.engine.compiler().stats().compiles, 0u);
  EXPECT_EQ(again.tierUp.stats().waiting, 0u);
}

// Without the baseline compiler every setting is served optimized, and a baseline setting
// says why.
TEST(TierUpTest, WithoutTheBaselineCompilerFunctionsAreServedOptimized) {
  test::TempDir dir;
  auto config = test::engineConfig(dir.path() / "cache");
  config.compiler.baselineCc = "";
  MetricsRegistry metrics;
  wasm::Engine engine(config);
  exec::FunctionTable table(metrics);
  TierUp tierUp(engine, table);
  auto registry = Registry::open(dir.path());
  ASSERT_TRUE(registry.ok());
  Deployments deployments(**registry, engine, table);
  deployments.setTierUp(&tierUp);
  const std::string tag = uniqueTag();
  ASSERT_TRUE(deployments.deploy("a", counterModule(tag + "a"), {}).ok());
  EXPECT_EQ(table.find("a")->active()->module->tier(), Tier::kOptimized);
  EXPECT_EQ(table.find("a")->active()->tierNote, "");
  FunctionSettings baselineOnly;
  baselineOnly.compileTier = CompileTier::kBaseline;
  ASSERT_TRUE(deployments.deploy("b", counterModule(tag + "b"), baselineOnly).ok());
  auto b = table.find("b")->active();
  EXPECT_EQ(b->module->tier(), Tier::kOptimized);
  EXPECT_NE(b->tierNote.find("is not installed on this node"), std::string::npos) << b->tierNote;
  EXPECT_EQ(tierUp.stats().waiting, 0u);
}

}  // namespace
}  // namespace tern::store
