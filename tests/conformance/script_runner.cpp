#include "script_runner.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include "linker.h"
#include "value_slots.h"

namespace tern::conformance {

namespace {

namespace fs = std::filesystem;
using Module = std::shared_ptr<const wasm::CompiledModule>;
using Clock = std::chrono::steady_clock;

constexpr const char* kSpectestName = "spectest";

double secondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

Result<std::vector<uint8_t>> readBytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error(ErrorCode::kIo, "cannot read " + path.string());
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)),
                              std::istreambuf_iterator<char>());
}

// The traps that count as the failure a script names. wasm2c reports some kinds under one
// code: an out-of-range table index and a null or mistyped entry in call_indirect are both
// WASM_RT_TRAP_CALL_INDIRECT, and bulk table operations report WASM_RT_TRAP_OOB; tern adds
// its own code for loads and stores that hit the guard region. Empty: the text is unknown.
std::vector<int> acceptableTraps(const std::string& text) {
  auto startsWith = [&](std::string_view prefix) { return text.rfind(prefix, 0) == 0; };
  if (startsWith("out of bounds memory access")) {
    return {wasm::kTrapOobMemory, wasm::kTrapOobExplicit};
  }
  if (startsWith("out of bounds table access") || startsWith("undefined element") ||
      startsWith("uninitialized element")) {
    return {wasm::kTrapOobExplicit, wasm::kTrapCallIndirect};
  }
  if (startsWith("indirect call type mismatch")) return {wasm::kTrapCallIndirect};
  if (startsWith("integer divide by zero")) return {wasm::kTrapDivByZero};
  if (startsWith("integer overflow")) return {wasm::kTrapIntOverflow};
  if (startsWith("invalid conversion to integer")) return {wasm::kTrapInvalidConversion};
  if (startsWith("unreachable")) return {wasm::kTrapUnreachable};
  if (startsWith("call stack exhausted")) return {wasm::kTrapExhaustion};
  return {};
}

// Checks a trap against the failure text of assert_trap or assert_uninstantiable; returns
// an empty string when it is acceptable, else what is wrong.
std::string checkTrap(int trap, const std::string& text) {
  if (trap == wasm::kTrapNone) return fmt::format("expected trap \"{}\", none happened", text);
  const std::vector<int> accepted = acceptableTraps(text);
  if (accepted.empty()) {
    return fmt::format("the harness does not know the trap \"{}\" (got: {})", text,
                       wasm::trapName(trap));
  }
  if (std::find(accepted.begin(), accepted.end(), trap) == accepted.end()) {
    return fmt::format("expected trap \"{}\", got \"{}\" (code {})", text, wasm::trapName(trap),
                       trap);
  }
  return {};
}

std::string describeValues(const std::vector<Value>& values) {
  std::string out = "(";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i) out += ", ";
    out += describeValue(values[i]);
  }
  return out + ")";
}

// The result of an invoke or get.
struct ActionOutcome {
  std::string error;  // the action could not be performed (no such module or export, ...)
  int trap = wasm::kTrapNone;
  std::vector<Value> results;
};

// The state of one script while it runs.
class ScriptExecution {
 public:
  ScriptExecution(wasm::Engine& engine, const RunnerOptions& options)
      : engine_(engine),
        options_(options),
        linker_(engine, LinkerOptions{limits(), options.callTimeout}) {}

  ScriptReport run(const Script& script, const std::map<int, std::string>& skipped) {
    ScriptReport report;
    const auto compileStart = Clock::now();
    compileAll(script, skipped);
    report.compileSeconds = secondsSince(compileStart);

    const auto runStart = Clock::now();
    std::optional<CommandResult> spectest = instantiateSpectest();
    std::set<int> skipsUsed;
    for (const Command& c : script.commands) {
      CommandResult r;
      if (auto it = skipped.find(c.line); it != skipped.end()) {
        r = skip("listed in the skip list: " + it->second);
        skipsUsed.insert(c.line);
      } else {
        r = spectest ? *spectest : execute(c);
      }
      r.command = &c;
      switch (r.verdict) {
        case Verdict::kPassed: ++report.passed; break;
        case Verdict::kFailed: ++report.failed; break;
        case Verdict::kSkipped: ++report.skipped; break;
      }
      if (r.verdict != Verdict::kPassed || !r.detail.empty()) {
        report.findings.push_back(std::move(r));
      }
    }
    for (const auto& [line, reason] : skipped) {
      if (!skipsUsed.count(line)) report.unmatchedSkips.push_back(line);
    }
    report.runSeconds = secondsSince(runStart);
    return report;
  }

 private:
  // Spec tests may grow memories to the full 4 GiB.
  static wasm::SandboxLimits limits() {
    wasm::SandboxLimits l;
    l.memoryPages = 65536;
    return l;
  }

  static CommandResult pass(std::string note = {}) {
    return {nullptr, Verdict::kPassed, std::move(note)};
  }
  static CommandResult fail(std::string why) { return {nullptr, Verdict::kFailed, std::move(why)}; }
  static CommandResult skip(std::string why) {
    return {nullptr, Verdict::kSkipped, std::move(why)};
  }

  // Compiles every binary module of the script, and the spectest module, on a few threads,
  // largest first so that the longest compiles start early.
  void compileAll(const Script& script, const std::map<int, std::string>& skipped) {
    struct Job {
      std::string key;
      Result<std::vector<uint8_t>> bytes;
    };
    std::vector<Job> jobs;
    jobs.push_back({kSpectestName, options_.spectestModule});
    std::set<std::string> seen;
    for (const Command& c : script.commands) {
      if (c.moduleFile.empty() || c.format != ModuleFormat::kBinary || skipped.count(c.line)) {
        continue;
      }
      if (std::string key = c.moduleFile.string(); seen.insert(key).second) {
        jobs.push_back({std::move(key), readBytes(c.moduleFile)});
      }
    }
    std::vector<size_t> order(jobs.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    auto size = [&](size_t i) { return jobs[i].bytes.ok() ? jobs[i].bytes->size() : 0; };
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return size(a) > size(b); });

    std::vector<std::optional<Result<Module>>> results(jobs.size());
    std::atomic<size_t> next{0};
    const wasm::CompileOptions compileOptions{options_.opt, wasm::ImportPolicy::kLinkForeign,
                                              std::nullopt, options_.tier};
    auto worker = [&] {
      for (size_t n; (n = next.fetch_add(1)) < order.size();) {
        const Job& job = jobs[order[n]];
        results[order[n]] = job.bytes.ok() ? engine_.load(*job.bytes, compileOptions)
                                           : Result<Module>(job.bytes.error());
      }
    };
    std::vector<std::thread> threads;
    const size_t extra = std::min<size_t>(std::max(options_.compileJobs, 1u), jobs.size()) - 1;
    for (size_t i = 0; i < extra; ++i) threads.emplace_back(worker);
    worker();
    for (auto& t : threads) t.join();

    for (size_t i = 0; i < jobs.size(); ++i) compiled_.emplace(jobs[i].key, std::move(*results[i]));
  }

  // The compiled module of a command; text modules are never compiled.
  const Result<Module>& compiled(const fs::path& file) const {
    static const Result<Module> kNotBinary(
        Error(ErrorCode::kInvalidArgument, "the module is not in binary format"));
    auto it = compiled_.find(file.string());
    return it == compiled_.end() ? kNotBinary : it->second;
  }

  // Instantiates and registers the spectest module; on failure, the result every command
  // of the script gets.
  std::optional<CommandResult> instantiateSpectest() {
    const Result<Module>& m = compiled_.at(kSpectestName);
    if (!m.ok()) return fail("the spectest module does not compile: " + m.error().describe());
    InstantiateFailure failure;
    LinkedInstance* instance = linker_.instantiate(*m, failure);
    if (!instance) return fail("the spectest module does not instantiate: " + failure.message);
    linker_.registerAs(kSpectestName, instance);
    return std::nullopt;
  }

  CommandResult execute(const Command& c) {
    switch (c.kind) {
      case CommandKind::kModule: return defineModule(c);
      case CommandKind::kRegister: return registerModule(c);
      case CommandKind::kAssertTrap:
        // The module form, (assert_trap (module ...) "..."), is a trap while instantiating.
        return c.action ? checkAction(c) : checkInstantiationFails(c);
      case CommandKind::kAction:
      case CommandKind::kAssertReturn:
      case CommandKind::kAssertExhaustion: return checkAction(c);
      case CommandKind::kAssertInvalid:
      case CommandKind::kAssertMalformed: return checkRejected(c);
      case CommandKind::kAssertUnlinkable:
      case CommandKind::kAssertUninstantiable: return checkInstantiationFails(c);
    }
    return fail("unknown command");
  }

  CommandResult defineModule(const Command& c) {
    // Until this module exists, actions without a module name have no target.
    current_ = nullptr;
    if (c.name) named_[*c.name] = nullptr;
    const Result<Module>& m = compiled(c.moduleFile);
    if (!m.ok()) return fail("module does not load: " + m.error().describe());
    InstantiateFailure failure;
    LinkedInstance* instance = linker_.instantiate(*m, failure);
    if (!instance) return fail("module does not instantiate: " + failure.message);
    current_ = instance;
    if (c.name) named_[*c.name] = instance;
    return pass();
  }

  CommandResult registerModule(const Command& c) {
    LinkedInstance* instance = target(c.name);
    if (!instance) return fail(fmt::format("no module {} to register", c.name.value_or("")));
    linker_.registerAs(c.registerAs, instance);
    return pass();
  }

  LinkedInstance* target(const std::optional<std::string>& name) const {
    if (!name) return current_;
    auto it = named_.find(*name);
    return it == named_.end() ? nullptr : it->second;
  }

  ActionOutcome perform(const Action& a) {
    ActionOutcome out;
    LinkedInstance* instance = target(a.module);
    if (!instance) {
      out.error = a.module ? "module " + *a.module + " is not instantiated"
                           : std::string("no module is instantiated");
      return out;
    }
    const tern_export_t* exp = instance->module().findExport(a.field);
    if (!exp) {
      out.error = fmt::format("no export \"{}\"", a.field);
      return out;
    }
    const std::string_view signature = exp->signature;
    if (a.kind == ActionKind::kGet) {
      ValType type;
      void* storage = instance->instance().exportAddress(*exp);
      if (exp->kind != TERN_EXTERN_GLOBAL || !storage || signature.size() != 1 ||
          !typeFromLetter(signature[0], type)) {
        out.error = fmt::format("export \"{}\" is not a readable global", a.field);
        return out;
      }
      out.results.push_back(readGlobal(type, storage));
      return out;
    }

    if (exp->kind != TERN_EXTERN_FUNC || !exp->call) {
      out.error = fmt::format("export \"{}\" is not a callable function", a.field);
      return out;
    }
    const size_t colon = signature.find(':');
    const std::string_view params = signature.substr(0, colon);
    const std::string_view results = signature.substr(colon + 1);
    if (params.size() != a.args.size()) {
      out.error = fmt::format("\"{}\" takes {} arguments ({}), the script passes {}", a.field,
                              params.size(), signature, a.args.size());
      return out;
    }
    std::vector<uint64_t> argSlots(params.size() + 1);
    for (size_t i = 0; i < params.size(); ++i) {
      ValType type;
      if (!typeFromLetter(params[i], type) || type != a.args[i].type) {
        out.error = fmt::format("argument {} of \"{}\" ({}) does not match {}", i, a.field,
                                signature, describeValue(a.args[i]));
        return out;
      }
      argSlots[i] = toSlot(a.args[i]);
    }
    std::vector<ValType> resultTypes(results.size());
    for (size_t i = 0; i < results.size(); ++i) {
      if (!typeFromLetter(results[i], resultTypes[i])) {
        out.error = fmt::format("\"{}\" returns an unsupported type ({})", a.field, signature);
        return out;
      }
    }
    std::vector<uint64_t> resultSlots(results.size() + 1);
    out.trap =
        instance->instance().call(*exp, argSlots.data(), resultSlots.data(), options_.callTimeout);
    if (out.trap == wasm::kTrapNone) {
      for (size_t i = 0; i < resultTypes.size(); ++i) {
        out.results.push_back(fromSlot(resultTypes[i], resultSlots[i]));
      }
    }
    return out;
  }

  CommandResult checkAction(const Command& c) {
    if (c.hasUnsupportedValue) return skip("uses v128 values");
    if (!c.action) return fail("the command has no action");
    ActionOutcome out = perform(*c.action);
    if (!out.error.empty()) return fail(out.error);
    switch (c.kind) {
      case CommandKind::kAction:
      case CommandKind::kAssertReturn:
        if (out.trap != wasm::kTrapNone) {
          return fail(fmt::format("trapped: {} (code {})", wasm::trapName(out.trap), out.trap));
        }
        if (c.kind == CommandKind::kAction) return pass();
        if (out.results.size() != c.expected.size() ||
            !std::equal(c.expected.begin(), c.expected.end(), out.results.begin(), matches)) {
          return fail(fmt::format("expected {}, got {}", describeValues(c.expected),
                                  describeValues(out.results)));
        }
        return pass();
      case CommandKind::kAssertTrap:
      case CommandKind::kAssertExhaustion:
        if (std::string why = checkTrap(out.trap, c.text); !why.empty()) {
          if (out.trap == wasm::kTrapNone) why += ", the result is " + describeValues(out.results);
          return fail(why);
        }
        return pass();
      default: return fail("not an action command");
    }
  }

  CommandResult checkRejected(const Command& c) {
    if (c.format == ModuleFormat::kText) {
      return skip("a module in text format: tern loads binary modules only");
    }
    const Result<Module>& m = compiled(c.moduleFile);
    if (m.ok()) return fail(fmt::format("module was accepted, expected \"{}\"", c.text));
    if (m.error().code() != ErrorCode::kInvalidModule) {
      // Rejected, but not by validation: wasm2c accepted the module and the C compiler (or
      // something else) failed on it.
      return pass(fmt::format("expected \"{}\"; rejected, but not as invalid: {}", c.text,
                              m.error().describe()));
    }
    return pass();
  }

  // assert_unlinkable, assert_uninstantiable and the module form of assert_trap.
  CommandResult checkInstantiationFails(const Command& c) {
    if (c.moduleFile.empty()) return fail("the command has no module");
    const Result<Module>& m = compiled(c.moduleFile);
    if (!m.ok()) return fail("module does not load: " + m.error().describe());
    InstantiateFailure failure;
    if (linker_.instantiate(*m, failure)) {
      return fail(fmt::format("module instantiated, expected \"{}\"", c.text));
    }
    if (c.kind == CommandKind::kAssertUnlinkable) {
      if (failure.stage != FailureStage::kLink) {
        return fail(fmt::format("expected link error \"{}\", instantiation failed: {}", c.text,
                                failure.message));
      }
      if (failure.message.rfind(c.text, 0) != 0) {
        return fail(fmt::format("expected link error \"{}\", got \"{}\"", c.text, failure.message));
      }
      return pass();
    }
    if (failure.stage != FailureStage::kInstantiate) {
      return fail(fmt::format("expected \"{}\" while instantiating, linking failed: {}", c.text,
                              failure.message));
    }
    if (std::string why = checkTrap(failure.trapCode, c.text); !why.empty()) {
      return fail(why + " (" + failure.message + ")");
    }
    return pass();
  }

  wasm::Engine& engine_;
  const RunnerOptions& options_;
  // By module file, and "spectest". Declared before the linker so that every module stays
  // loaded while any instance lives: a module whose instantiation failed may have left
  // functions in another instance's table.
  std::map<std::string, Result<Module>> compiled_;
  Linker linker_;
  std::map<std::string, LinkedInstance*> named_;
  LinkedInstance* current_ = nullptr;
};

}  // namespace

ScriptRunner::ScriptRunner(wasm::Engine& engine, RunnerOptions options)
    : engine_(engine), options_(std::move(options)) {}

ScriptReport ScriptRunner::run(const Script& script, const std::map<int, std::string>& skipped) {
  ScriptExecution execution(engine_, options_);
  return execution.run(script, skipped);
}

}  // namespace tern::conformance
