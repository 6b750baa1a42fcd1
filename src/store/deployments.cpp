#include "store/deployments.h"

#include <fmt/format.h>


#include <algorithm>

#include "events/trigger_spec.h"
#include "util/data_dir.h"
#include "util/file.h"
#include "util/sha256.h"
#include "wasm/compile_cache.h"
#include "util/names.h"

namespace tern::store {

namespace {

// A compile that failed with less than this free where the cache is is reported as a full
// disk: wasm2c's C output and the object need about this much for a small module.
constexpr uint64_t kCompileRoomBytes = 1u << 20;

}  // namespace

exec::FunctionVersionConfig toConfig(const FunctionVersion& v) {
  exec::FunctionVersionConfig c;
  c.name = v.name;
  c.version = v.version;
  c.moduleHash = v.moduleHash;
  c.memoryMb = v.settings.memoryMb;
  c.timeoutMs = v.settings.timeoutMs;
  c.concurrency = v.settings.concurrency;
  c.env = v.settings.env;
  c.triggers = v.settings.triggers;
  c.replyTopic = v.settings.replyTopic;
  c.allow = v.settings.allow;
  c.sloMs = v.settings.sloMs;
  c.sloPercentile = v.settings.sloPercentile;
  c.weight = v.settings.weight;
  return c;
}

Result<void> checkObjectiveSettings(const FunctionSettings& s) {
  if (s.sloPercentile != 0 && s.sloMs == 0) {
    return Error(ErrorCode::kInvalidArgument,
                 "slo_percentile needs an objective: give slo_ms as well");
  }
  if (s.sloMs != 0) {
    exec::Objective o{s.sloMs, std::nullopt};
    if (s.sloPercentile != 0) o.percentile = s.sloPercentile;
    if (auto ok = exec::checkObjective(o); !ok.ok()) return ok.error();
  }
  return exec::checkWeight(s.weight);
}

Result<void> checkPlacement(const FunctionSettings::Placement& p) {
  for (const auto& s : p.sites) {
    if (!isNodeName(s)) {
      return Error(ErrorCode::kInvalidArgument,
                   fmt::format("site \"{}\" is not a valid site name: use 1-63 characters a-z, "
                               "0-9 and '-'",
                               s));
    }
  }
  if (!p.tier.empty() && p.tier != "edge" && p.tier != "cloud") {
    return Error(ErrorCode::kInvalidArgument,
                 fmt::format("tier must be edge or cloud, got \"{}\"", p.tier));
  }
  for (const auto& l : p.labels) {
    size_t eq = l.find('=');
    if (eq == 0 || eq == std::string::npos || l.size() > 255) {
      return Error(ErrorCode::kInvalidArgument,
                   fmt::format("label must be KEY=VALUE, got \"{}\"", l));
    }
  }
  return {};
}

Deployments::Deployments(Registry& registry, wasm::Engine& engine, exec::FunctionTable& table,
                         KvStore* kv)
    : registry_(registry), engine_(engine), table_(table), kv_(kv) {}

Mutex& Deployments::lockFor(const std::string& name) {
  MutexLock lock(locksMu_);
  auto& m = locks_[name];
  if (!m) m = std::make_unique<Mutex>();
  return *m;
}

Result<Deployments::Loaded> Deployments::load(std::span<const uint8_t> module,
                                               const exec::FunctionVersionConfig& config,
                                               CompileTier tier) {
  wasm::CompileOptions options;
  options.instanceLimits = exec::sandboxLimits(config);
  wasm::Compiler& compiler = engine_.compiler();
  TierView view;
  view.baselineAvailable = compiler.baselineAvailable();
  view.backgroundAvailable = tierUp_ != nullptr;
  if (tier == CompileTier::kAuto) {
    auto cached = compiler.loadIfCached(module, options);
    if (!cached.ok()) return cached.error();
    if (*cached) return Loaded{*cached, "", false};
  }
  const TierPlan plan = planTiers(tier, view);
  Loaded out;
  if (plan.first == wasm::Tier::kBaseline) {
    options.tier = wasm::Tier::kBaseline;
    auto baseline = engine_.load(module, options);
    if (baseline.ok()) {
      out.module = *baseline;
      out.optimizeLater = plan.optimizeLater;
      if (out.optimizeLater) out.tierNote = "the optimized object is being built in the background";
      return out;
    }
    // Invalid or too costly modules are refused as they are; the optimized compile would
    // refuse them too.
    ErrorCode code = baseline.error().code();
    if (code != ErrorCode::kCompileFailed && code != ErrorCode::kUnavailable) {
      return baseline.error();
    }
    out.tierNote = fmt::format(
        "the baseline compiler could not build this module, so it is served at the optimized "
        "tier: {}",
        baseline.error().describe());
    options.tier = wasm::Tier::kOptimized;
  } else if (tier == CompileTier::kBaseline) {
    out.tierNote = fmt::format(
        "the baseline compiler ({}) is not installed on this node, so it is served at the "
        "optimized tier",
        compiler.config().baselineCc.empty() ? std::string("none configured")
                                             : compiler.config().baselineCc);
  }
  auto optimized = engine_.load(module, options);
  if (!optimized.ok()) return optimized.error();
  out.module = *optimized;
  return out;
}

void Deployments::install(const FunctionVersion& v, std::span<const uint8_t> module,
                          Loaded loaded, exec::Capabilities capabilities) {
  auto active = std::make_shared<exec::ActiveVersion>();
  active->config = toConfig(v);
  active->module = loaded.module;
  active->capabilities = std::move(capabilities);
  active->env = exec::versionEnvironment(active->config);
  active->tierNote = std::move(loaded.tierNote);
  const auto limits = exec::sandboxLimits(active->config);
  table_.install(std::move(active));
  // Queued after the install: the swap replaces only what the table serves.
  if (loaded.optimizeLater && tierUp_) {
    TierUp::Job job;
    job.function = v.name;
    job.wasm.assign(module.begin(), module.end());
    job.options.instanceLimits = limits;
    job.baseline = std::move(loaded.module);
    (void)tierUp_->enqueue(std::move(job));
  }
}

Result<void> Deployments::activate(const FunctionVersion& v) {
  auto caps = exec::parseCapabilities(v.settings.allow);
  if (!caps.ok()) return caps.error();
  auto bytes = registry_.readModule(v.moduleHash);
  if (!bytes.ok()) return bytes.error();
  auto loaded = load(*bytes, toConfig(v), v.settings.compileTier);
  if (!loaded.ok()) return loaded.error();
  install(v, *bytes, std::move(*loaded), std::move(*caps));
  return {};
}

Result<FunctionVersion> Deployments::deploy(const std::string& name,
                                            std::span<const uint8_t> module,
                                            const FunctionSettings& settings) {
  if (!isFunctionName(name)) {
    return Error(ErrorCode::kInvalidArgument,
                 fmt::format("invalid function name \"{}\": use 1-63 characters a-z, 0-9 and "
                             "'-', starting with a letter or digit",
                             name));
  }
  // Capabilities are checked before anything is stored: an invalid one records nothing.
  auto caps = exec::parseCapabilities(settings.allow);
  if (!caps.ok()) return caps.error();
  if (auto ok = events::checkTriggers(settings.triggers, settings.replyTopic); !ok.ok()) {
    return ok.error();
  }
  if (auto ok = checkObjectiveSettings(settings); !ok.ok()) return ok.error();
  if (auto ok = checkPlacement(settings.placement); !ok.ok()) return ok.error();
  MutexLock lock(lockFor(name));
  // Held until the version is recorded: garbage collection leaves the module file and its
  // compiled object alone in between.
  auto hold =
      registry_.holdModule(sha256Hex(std::span<const unsigned char>(module.data(), module.size())));
  // Compile first: a module that cannot run is not recorded at all, nor one that could
  // never start under the function's limits.
  FunctionVersion draft;
  draft.name = name;
  draft.settings = settings;
  auto compiled = load(module, toConfig(draft), settings.compileTier);
  if (!compiled.ok()) {
    // wasm2c and the C compiler report a full disk as their own failure.
    const auto& cacheDir = engine_.compiler().config().cacheDir;
    if (compiled.error().code() != ErrorCode::kModuleTooLarge &&
        compiled.error().code() != ErrorCode::kInvalidModule &&
        availableBytes(cacheDir) < kCompileRoomBytes) {
      return diskFullError("cannot compile the module (" + compiled.error().describe() + ")");
    }
    return compiled.error();
  }
  if (!compiled->module->findExport("_start")) {
    return Error(ErrorCode::kInvalidModule,
                 "module has no `_start` function export: it is not a WASI command");
  }
  auto hash = registry_.putModule(module);
  if (!hash.ok()) return hash.error();
  auto version = registry_.addVersion(name, *hash, module.size(), settings);
  if (!version.ok()) return version.error();
  install(*version, module, std::move(*compiled), std::move(*caps));
  if (listener_) listener_(name, &*version);
  return version;
}

Result<FunctionVersion> Deployments::rollback(const std::string& name) {
  MutexLock lock(lockFor(name));
  auto v = registry_.rollback(name);
  if (!v.ok()) return v.error();
  if (auto ok = activate(*v); !ok.ok()) return ok.error();
  if (listener_) listener_(name, &*v);
  return v;
}

template <typename Write>
auto Deployments::withReserve(const Write& write) -> decltype(write()) {
  auto result = write();
  if (!result.ok() && result.error().code() == ErrorCode::kResourceExhausted && reserve_ &&
      reserve_->release()) {
    result = write();
  }
  return result;
}

Result<void> Deployments::reclaim(const std::string& name, StateOnWithdraw state) {
  // Collect before deleting the key-value state: on a full disk the module files and
  // objects give that write its room.
  (void)collectGarbage();
  // The function's key-value state goes with it: a function deployed later under the same
  // name starts empty.
  if (kv_ && state == StateOnWithdraw::kDelete) {
    auto gone = withReserve([&] { return kv_->removeNamespace(name); });
    if (!gone.ok()) return gone.error();
    (void)kv_->truncateLog();
  }
  // Best effort: another connection reading the database makes a checkpoint wait for the
  // next removal; journal_size_limit bounds the log meanwhile.
  (void)registry_.truncateLog();
  if (reserve_) reserve_->restore();
  return {};
}

Result<void> Deployments::remove(const std::string& name) {
  MutexLock lock(lockFor(name));
  auto removed = withReserve([&] { return registry_.remove(name); });
  if (!removed.ok()) return removed.error();
  if (!*removed) {
    return Error(ErrorCode::kNotFound, fmt::format("no function named \"{}\"", name));
  }
  table_.remove(name);
  if (auto ok = reclaim(name, StateOnWithdraw::kDelete); !ok.ok()) return ok.error();
  if (listener_) listener_(name, nullptr);
  return {};
}

void Deployments::setTierUp(TierUp* tierUp) {
  tierUp_ = tierUp;
  if (tierUp_) tierUp_->onStaleObject([this] { (void)collectGarbage(); });
}

Result<Deployments::DeviceObject> Deployments::objectFor(const std::string& name,
                                                         const std::string& target) {
  auto v = registry_.active(name);
  if (!v.ok()) return v.error();
  if (!*v) return Error(ErrorCode::kNotFound, fmt::format("no function named \"{}\"", name));
  // Held so that a collection running meanwhile keeps the module and its objects.
  auto hold = registry_.holdModule((*v)->moduleHash);
  auto bytes = registry_.readModule((*v)->moduleHash);
  if (!bytes.ok()) return bytes.error();
  auto object = engine_.compiler().objectFor(*bytes, target);
  if (!object.ok()) return object.error();
  auto data = readFile(*object);
  if (!data.ok()) return data.error();
  return DeviceObject{(*v)->moduleHash, (*v)->version, std::move(*data)};
}

GarbageReport Deployments::collectGarbage() {
  GarbageReport report;
  wasm::Compiler& compiler = engine_.compiler();
  auto collected = registry_.collectModules([&](const std::set<std::string>& live) {
    std::set<std::string> keys;
    for (const auto& hash : live) {
      keys.insert(compiler.cacheKey(hash));
      wasm::CompileOptions baseline;
      baseline.tier = wasm::Tier::kBaseline;
      keys.insert(compiler.cacheKey(hash, baseline));
      // Objects built for devices of other machines (GET /v1/functions/NAME/object).
      for (auto target : wasm::kObjectTargets) {
        keys.insert(compiler.cacheKey(hash, {}, std::string(target)));
      }
    }
    auto swept = wasm::removeObjectsExcept(compiler.config().cacheDir, keys);
    report.objects = swept.removed;
    report.bytesFreed += swept.bytesFreed;
  });
  if (!collected.ok()) {
    report.failures.push_back(collected.error().describe());
    return report;
  }
  report.modules = collected->removed.size();
  report.bytesFreed += collected->bytesFreed;
  return report;
}

Result<void> Deployments::adopt(const FunctionVersion& v) {
  auto caps = exec::parseCapabilities(v.settings.allow);
  if (!caps.ok()) return caps.error();
  MutexLock lock(lockFor(v.name));
  auto hold = registry_.holdModule(v.moduleHash);
  auto bytes = registry_.readModule(v.moduleHash);
  if (!bytes.ok()) return bytes.error();
  auto loaded = load(*bytes, toConfig(v), v.settings.compileTier);
  if (!loaded.ok()) return loaded.error();
  if (auto ok = registry_.adoptVersion(v); !ok.ok()) return ok.error();
  install(v, *bytes, std::move(*loaded), std::move(*caps));
  return {};
}

Result<bool> Deployments::withdraw(const std::string& name, StateOnWithdraw state) {
  MutexLock lock(lockFor(name));
  auto removed = withReserve([&] { return registry_.remove(name, ChangeSource::kCluster); });
  if (!removed.ok()) return removed.error();
  table_.remove(name);
  if (auto ok = reclaim(name, state); !ok.ok()) return ok.error();
  return *removed;
}

Deployments::LoadReport Deployments::loadAll() {
  LoadReport report;
  auto list = registry_.list();
  if (!list.ok()) {
    report.failures.push_back("registry: " + list.error().describe());
    return report;
  }
  for (const auto& f : *list) {
    auto v = registry_.active(f.name);
    if (!v.ok() || !*v) {
      report.failures.push_back(f.name + ": " +
                                (v.ok() ? std::string("no active version") : v.error().describe()));
      continue;
    }
    if (auto ok = activate(**v); !ok.ok()) {
      report.failures.push_back(f.name + ": " + ok.error().describe());
      continue;
    }
    ++report.loaded;
  }
  return report;
}

}  // namespace tern::store
