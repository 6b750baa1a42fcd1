// Tiered compilation in the store: the tier policy (a table), the setting kept with a
// version, and the swap from the baseline object to the optimized one while invocations
// run. docs/design/tiers.md.

#include "store/tiers.h"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <thread>

#include "exec/function_table.h"
#include "store/deployments.h"
#include "store/registry.h"
#include "test_support.h"
#include "util/metrics.h"

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

// A node's store with the background service, as Node wires them; the service starts
// when the test says so.
struct TieredStore {
  explicit TieredStore(const fs::path& data)
      : engine(test::engineConfig(data / "cache")), tierUp(engine, table) {
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
  TierUp tierUp;
  std::unique_ptr<Registry> registry;
  std::unique_ptr<Deployments> deployments;
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
// in over the newer version.
TEST(TierUpTest, ANewerDeployIsNotReplacedByAStaleOptimizedObject) {
  test::TempDir dir;
  TieredStore s(dir.path());
  const std::string tag = uniqueTag();
  ASSERT_TRUE(s.deployments->deploy("f", counterModule(tag + "a"), {}).ok());
  FunctionSettings baselineOnly;
  baselineOnly.compileTier = CompileTier::kBaseline;
  ASSERT_TRUE(s.deployments->deploy("f", counterModule(tag + "b"), baselineOnly).ok());
  s.tierUp.start();
  while (s.tierUp.stats().stale == 0) std::this_thread::yield();
  auto active = s.active("f");
  EXPECT_EQ(active->config.version, 2u);
  EXPECT_EQ(active->module->tier(), Tier::kBaseline);
  EXPECT_EQ(active->tierNote, "");
  EXPECT_EQ(s.tierUp.stats().swaps, 0u);
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
