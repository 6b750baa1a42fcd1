#include "device/device.h"

#include <fmt/format.h>

#include <algorithm>
#include <random>
#include <nlohmann/json.hpp>

#include "http/http_client.h"
#include "util/data_dir.h"
#include "util/device_id.h"
#include "util/file.h"
#include "util/names.h"
#include "util/sha256.h"
#include "util/clock.h"
#include "wasm/engine.h"

namespace tern::device {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kHistoryFormat = 2;
constexpr std::chrono::seconds kRetryUnready{30};
// How often a function running here is checked against the nodes for a new version.
constexpr std::chrono::seconds kRecheck{60};

double msSince(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

// Fields of JSON from nodes and from the state directory, which may be anything: the
// default unless the value has the expected type.
std::string textField(const json& j, const char* key) {
  auto it = j.is_object() ? j.find(key) : j.end();
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

uint64_t uintField(const json& j, const char* key, uint64_t fallback) {
  auto it = j.is_object() ? j.find(key) : j.end();
  return it != j.end() && it->is_number_unsigned() ? it->get<uint64_t>() : fallback;
}

bool isSha256Hex(const std::string& s) {
  return s.size() == 64 && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}


}  // namespace

// A function as this device runs it: its module, loaded, and its deployed settings.
struct LocalFunction {
  std::string identity;                // the module's SHA-256 and the version: "HASH@VERSION"
  std::chrono::steady_clock::time_point checked;  // when a node last confirmed it current
  std::shared_ptr<const wasm::CompiledModule> module;
  std::vector<std::string> env;
  uint32_t memoryMb = 128;
  uint32_t timeoutMs = 10000;
};

struct Device::Impl {
  DeviceOptions opt;
  std::vector<Environment> envs;
  std::vector<http::NodeUrl> urls;  // per environment; the local one unused
  std::map<std::string, History> history;  // per function: each learns its own
  std::unique_ptr<wasm::Engine> engine;
  std::map<std::string, std::shared_ptr<LocalFunction>> local;
  // Functions that could not be made ready here, and when: not tried again for a while, so
  // that a remote-only function does not pay for a fetch on every call.
  std::map<std::string, std::pair<Clock::time_point, Error>> unready;
  std::vector<std::string> warnings;
  std::optional<size_t> attached;  // the environment index of the attached edge
  uint32_t sinceProbe = 0;
  bool probed = false;
  std::string deviceId;  // X-Tern-Device on remote calls: the key of this device's state
  // A function's state left at an edge that could not be reached when the device moved
  // away from it: brought to the attached edge when that edge answers again.
  struct PendingMove {
    std::string from;  // the edge's URL
    std::string function;
  };
  std::vector<PendingMove> pendingMoves;

  fs::path historyFile() const { return opt.stateDir / "history.json"; }
  fs::path movesFile() const { return opt.stateDir / "moves.json"; }
  void loadIdentity();
  void loadMoves();
  void saveMoves();
  // Moves this device's state of `function` from the node at `from` to the attached edge:
  // read there, written here with `mode` (the node's import modes), deleted there.
  Result<void> moveState(const std::string& from, const std::string& function, const char* mode);
  // After moving from edge `from` to the attached one: each function's state follows.
  void moveAll(size_t from);
  // Brings what earlier moves left behind to the attached edge, where that edge answers.
  void settleMoves();
  // Sets a state file that does not parse aside, with a warning.
  void setAside(const fs::path& file);
  // Where a node's object of the module `hash` for this machine is kept.
  fs::path objectFile(const std::string& hash) const {
    return opt.stateDir / "objects" / fmt::format("{}-{}.so", hash, wasm::hostTarget());
  }
  void loadHistory();
  Result<std::shared_ptr<LocalFunction>> prepare(const std::string& function);
  Result<std::shared_ptr<LocalFunction>> loadStored(const std::string& function);
  Result<void> fetch(const std::string& function);
  // Fetches the object of module `hash` for this machine, from `first` and then the other
  // nodes; it must be an object for this machine naming that hash.
  Result<void> fetchObject(const std::string& function, const std::string& hash, size_t first);
  // The active version's identity ("HASH@VERSION": a new version may change only the
  // settings) at the attached edge (else the first node that answers), within the probe
  // timeout. Errors: none answers.
  Result<std::string> currentVersion(const std::string& function);
  Result<std::string> runLocal(const LocalFunction& f, const std::string& function, const std::string& input);
  Result<http::HttpResponse> runRemote(size_t env, const std::string& function, const std::string& input);
  // Measures every edge's round trip and attaches to the nearest; true when it moved.
  bool probe();
  // The remote environments to ask for a function, the attached edge first.
  std::vector<size_t> remoteOrder() const {
    std::vector<size_t> order;
    if (attached) order.push_back(*attached);
    for (size_t i = 1; i < envs.size(); ++i) {
      if (i != attached) order.push_back(i);
    }
    return order;
  }
  std::vector<http::HttpHeader> authHeaders() const {
    if (opt.token.empty()) return {};
    return {{"Authorization", "Bearer " + opt.token}};
  }
};

bool Device::Impl::probe() {
  std::vector<size_t> edges;
  std::vector<std::optional<double>> rtts;
  std::optional<size_t> current;
  for (size_t i = 0; i < envs.size(); ++i) {
    if (envs[i].where != Where::kEdge) continue;
    if (attached == i) current = edges.size();
    edges.push_back(i);
    http::HttpClientOptions o;
    o.tls = opt.tls;
    o.connectTimeout = opt.probeTimeout;
    o.responseTimeout = opt.probeTimeout;
    auto start = Clock::now();
    auto r = http::sendHttp(urls[i], {"GET", "/healthz", {}, ""}, o);
    rtts.push_back(r.ok() && r->status == 200 ? std::optional<double>(msSince(start)) : std::nullopt);
  }
  probed = true;
  sinceProbe = 0;
  auto nearest = nearestEdge(rtts, current);
  // With no edge reachable the device stays attached where it was: calls there fail over
  // to local, and the next probe looks again.
  if (!nearest) return false;
  size_t chosen = edges[*nearest];
  bool moved = attached && *attached != chosen;
  attached = chosen;
  return moved;
}

namespace {

Result<ClusterEnvironments> discoverEnvironments(const DeviceOptions& options) {
  auto url = http::parseNodeUrl(options.discover);
  if (!url.ok()) return url.error();
  http::HttpClientOptions o;
  o.tls = options.tls;
  o.connectTimeout = options.probeTimeout;
  o.responseTimeout = options.remoteTimeout;
  std::vector<http::HttpHeader> auth;
  if (!options.token.empty()) auth.push_back({"Authorization", "Bearer " + options.token});
  auto r = http::sendHttp(*url, {"GET", "/v1/cluster/nodes", auth, ""}, o);
  if (!r.ok()) return r.error();
  if (r->status != 200) return Error(ErrorCode::kUnavailable, fmt::format("it answered HTTP {}", r->status));
  return environmentsFromCluster(r->body);
}

}  // namespace

Result<std::unique_ptr<Device>> Device::open(DeviceOptions options) {
  auto impl = std::make_unique<Impl>();
  impl->envs.push_back(Environment{Where::kLocal, "local"});
  impl->urls.emplace_back();
  auto add = [&](Where w, const std::string& text) -> Result<void> {
    auto url = http::parseNodeUrl(text);
    if (!url.ok()) return Error(ErrorCode::kInvalidArgument, fmt::format("{}: {}", text, url.error().message()));
    impl->envs.push_back(Environment{w, url->text()});
    impl->urls.push_back(*url);
    return {};
  };
  if (!options.discover.empty()) {
    auto listed = discoverEnvironments(options);
    if (!listed.ok()) {
      impl->warnings.push_back(fmt::format("cannot learn the cluster's nodes from {}: {}", options.discover,
                                           listed.error().message()));
    } else {
      // A listed address that is no URL leaves that node out, not the device without a
      // cluster: the listing is a peer's word, the options are the user's.
      auto usable = [&](const std::string& e) {
        auto url = http::parseNodeUrl(e);
        if (!url.ok()) {
          impl->warnings.push_back(fmt::format("{} lists a node at {}, left out: {}", options.discover, e,
                                               url.error().message()));
        }
        return url.ok();
      };
      for (auto& e : listed->edges) {
        if (usable(e) && std::find(options.edges.begin(), options.edges.end(), e) == options.edges.end()) {
          options.edges.push_back(e);
        }
      }
      if (options.cloud.empty()) {
        for (auto& c : listed->clouds) {
          if (usable(c)) {
            options.cloud = c;
            break;
          }
        }
      }
    }
  }
  for (const auto& e : options.edges) {
    if (auto ok = add(Where::kEdge, e); !ok.ok()) return ok.error();
  }
  if (!options.cloud.empty()) {
    if (auto ok = add(Where::kCloud, options.cloud); !ok.ok()) return ok.error();
  }
  if (options.stateDir.empty()) return Error(ErrorCode::kInvalidArgument, "a device needs a state directory");
  for (const char* sub : {"", "modules", "functions", "objects", "compiled"}) {
    if (auto ok = createPrivateDirectory(options.stateDir / sub); !ok.ok()) return ok.error();
  }
  wasm::EngineConfig config;
  // Used only when the device compiles a module itself (DeviceOptions::cc).
  config.compiler.cacheDir = options.stateDir / "compiled";
  if (!options.cc.empty()) config.compiler.cc = options.cc;
  impl->engine = std::make_unique<wasm::Engine>(config);
  impl->opt = std::move(options);
  impl->loadIdentity();
  impl->loadHistory();
  impl->loadMoves();
  return std::unique_ptr<Device>(new Device(std::move(impl)));
}

Device::Device(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Device::~Device() = default;

const std::vector<Environment>& Device::environments() const { return impl_->envs; }
const std::string& Device::id() const { return impl_->deviceId; }
const std::vector<std::string>& Device::warnings() const { return impl_->warnings; }

std::vector<Score> Device::scores(const std::string& function) const {
  History h;
  if (auto it = impl_->history.find(function); it != impl_->history.end()) h = it->second;
  h.windows.resize(impl_->envs.size());
  return device::scores(h, impl_->opt.decision);
}

void Device::Impl::setAside(const fs::path& file) {
  std::error_code ec;
  fs::path aside = file;
  aside += fmt::format(".unreadable-{}", unixMillis());
  fs::rename(file, aside, ec);
  warnings.push_back(fmt::format("{} could not be read; set aside as {}, starting afresh", file.string(),
                                 aside.string()));
}

// device.id: this device's identity, 32 random hex digits made on first use. Its state on
// the nodes is keyed by it.
void Device::Impl::loadIdentity() {
  fs::path file = opt.stateDir / "device.id";
  std::error_code ec;
  if (fs::exists(file, ec)) {
    auto text = readFile(file);
    std::string id = text.ok() ? text->substr(0, text->find_last_not_of(" \n") + 1) : std::string();
    if (isDeviceId(id)) {
      deviceId = id;
      return;
    }
    setAside(file);
  }
  std::random_device rd;
  deviceId = fmt::format("{:08x}{:08x}{:08x}{:08x}", rd(), rd(), rd(), rd());
  if (auto ok = writePrivateFile(file, deviceId + "\n"); !ok.ok()) {
    warnings.push_back(fmt::format("cannot keep this device's identity: {}", ok.error().message()));
  }
}

// moves.json: {"format": 1, "moves": [{"from": URL, "function": NAME}]}.
void Device::Impl::loadMoves() {
  std::error_code ec;
  if (!fs::exists(movesFile(), ec)) return;
  auto text = readFile(movesFile());
  json j = text.ok() ? json::parse(*text, nullptr, false) : json();
  if (!j.is_object() || uintField(j, "format", 0) != 1 || !j.contains("moves") || !j["moves"].is_array()) {
    return setAside(movesFile());
  }
  for (const auto& m : j["moves"]) {
    std::string from = textField(m, "from");
    std::string function = textField(m, "function");
    if (http::parseNodeUrl(from).ok() && isFunctionName(function)) pendingMoves.push_back({from, function});
  }
}

void Device::Impl::saveMoves() {
  json moves = json::array();
  for (const auto& m : pendingMoves) moves.push_back(json{{"from", m.from}, {"function", m.function}});
  if (auto ok = writePrivateFile(movesFile(), json{{"format", 1}, {"moves", moves}}.dump()); !ok.ok()) {
    warnings.push_back(fmt::format("cannot record the state left behind: {}", ok.error().message()));
  }
}

Result<void> Device::Impl::moveState(const std::string& from, const std::string& function, const char* mode) {
  if (!attached) return Error(ErrorCode::kUnavailable, "attached to no edge");
  auto source = http::parseNodeUrl(from);
  if (!source.ok()) return source.error();
  http::HttpClientOptions o;
  o.tls = opt.tls;
  o.connectTimeout = opt.probeTimeout;
  o.responseTimeout = opt.remoteTimeout;
  std::string path = fmt::format("/v1/devices/{}/state/{}", deviceId, http::percentEncode(function));
  auto state = http::sendHttp(*source, {"GET", path, authHeaders(), ""}, o);
  if (!state.ok()) return state.error();
  if (state->status != 200) {
    return Error(ErrorCode::kUnavailable, fmt::format("{} answered {} for the state of \"{}\"", from, state->status, function));
  }
  json doc = json::parse(state->body, nullptr, false);
  if (!doc.is_object() || !doc.contains("entries") || !doc["entries"].is_array()) {
    return Error(ErrorCode::kUnavailable, fmt::format("{} sent unreadable state for \"{}\"", from, function));
  }
  if (doc["entries"].empty()) return {};  // nothing stored there
  auto put = http::sendHttp(urls[*attached],
                            {"PUT", fmt::format("{}?mode={}", path, mode), authHeaders(),
                             json{{"entries", doc["entries"]}}.dump()},
                            o);
  if (!put.ok()) return put.error();
  if (put->status != 200) {
    return Error(ErrorCode::kUnavailable, fmt::format("{} answered {} storing the state of \"{}\"", envs[*attached].id,
                                                      put->status, function));
  }
  // Written at the new edge: the copy left behind would only be stale.
  auto gone = http::sendHttp(*source, {"DELETE", path, authHeaders(), ""}, o);
  if (!gone.ok() || gone->status != 200) {
    warnings.push_back(fmt::format("the state of \"{}\" moved from {} but could not be deleted there", function, from));
  }
  return {};
}

void Device::Impl::moveAll(size_t from) {
  for (const auto& entry : history) {
    const std::string& function = entry.first;
    // The edge left behind had every write since the last move: its entries win.
    if (moveState(envs[from].id, function, "overwrite").ok()) continue;
    bool known = std::any_of(pendingMoves.begin(), pendingMoves.end(), [&](const PendingMove& m) {
      return m.from == envs[from].id && m.function == function;
    });
    if (!known) pendingMoves.push_back({envs[from].id, function});
  }
  saveMoves();
}

void Device::Impl::settleMoves() {
  if (pendingMoves.empty() || !attached) return;
  std::vector<PendingMove> left;
  for (const auto& m : pendingMoves) {
    // Back at the edge that holds it: the state is where the calls go.
    if (m.from == envs[*attached].id) continue;
    // Whatever was written at the attached edge since is newer: keys there stay.
    if (!moveState(m.from, m.function, "keep-existing").ok()) left.push_back(m);
  }
  if (left.size() != pendingMoves.size()) {
    pendingMoves = std::move(left);
    saveMoves();
  }
}

// history.json: {"format": 2, "functions": {"NAME": [{"where", "id", "total", "samples":
// [ms or null]}]}}; environments are matched by kind and id, so a device given other nodes
// keeps what it learned of the ones it still has.
void Device::Impl::loadHistory() {
  std::error_code ec;
  if (!fs::exists(historyFile(), ec)) return;
  auto text = readFile(historyFile());
  json j = text.ok() ? json::parse(*text, nullptr, false) : json();
  bool ok = j.is_object() && uintField(j, "format", 0) == kHistoryFormat && j.contains("functions") &&
            j["functions"].is_object();
  std::map<std::string, History> restored;
  for (auto f = ok ? j["functions"].begin() : j.end(); ok && f != j["functions"].end(); ++f) {
    History& h = restored[f.key()];
    h.windows.resize(envs.size());
    if (!f->is_array()) {
      ok = false;
      break;
    }
    for (const auto& e : *f) {
      if (!e.is_object() || !e.contains("samples") || !e["samples"].is_array()) {
        ok = false;
        break;
      }
      for (size_t i = 0; i < envs.size(); ++i) {
        if (textField(e, "where") != whereName(envs[i].where) || textField(e, "id") != envs[i].id) continue;
        Window& w = h.windows[i];
        for (const auto& s : e["samples"]) {
          if (s.is_number() && s.get<double>() > 0 && std::isfinite(s.get<double>())) {
            w.samples.push_back(s.get<double>());
          } else if (s.is_null()) {
            w.samples.push_back(std::nullopt);
          } else {
            ok = false;
          }
        }
        while (w.samples.size() > opt.decision.window) w.samples.pop_front();
        auto total = e.find("total");
        w.total = total != e.end() && total->is_number_unsigned() ? total->get<uint64_t>() : w.samples.size();
      }
    }
  }
  if (!ok) return setAside(historyFile());
  history = std::move(restored);
}

Result<void> Device::save() const {
  json functions = json::object();
  for (const auto& [name, h] : impl_->history) {
    json envs = json::array();
    for (size_t i = 0; i < impl_->envs.size() && i < h.windows.size(); ++i) {
      const Window& w = h.windows[i];
      json samples = json::array();
      for (const auto& s : w.samples) samples.push_back(s ? json(*s) : json());
      envs.push_back(json{{"where", whereName(impl_->envs[i].where)},
                          {"id", impl_->envs[i].id},
                          {"total", w.total},
                          {"samples", samples}});
    }
    functions[name] = std::move(envs);
  }
  return writePrivateFile(impl_->historyFile(), json{{"format", kHistoryFormat}, {"functions", functions}}.dump());
}

// Fetches a function from the first remote environment that has it, the attached edge
// first: its settings and its module, whose SHA-256 must be the one the settings name.
Result<void> Device::Impl::fetch(const std::string& function) {
  std::optional<Error> last;
  for (size_t i : remoteOrder()) {
    http::HttpClientOptions o;
    o.tls = opt.tls;
    o.responseTimeout = opt.remoteTimeout;
    auto auth = authHeaders();
    auto settings = http::sendHttp(urls[i], {"GET", "/v1/functions/" + http::percentEncode(function), auth, ""}, o);
    if (!settings.ok() || settings->status != 200) {
      last = settings.ok() ? Error(ErrorCode::kNotFound, fmt::format("{} answered {} for function \"{}\"",
                                                                   envs[i].id, settings->status, function))
                           : settings.error();
      continue;
    }
    json s = json::parse(settings->body, nullptr, false);
    std::string hash = textField(s, "module_sha256");
    if (!isSha256Hex(hash)) {
      last = Error(ErrorCode::kInvalidArgument, fmt::format("{} described \"{}\" without a module hash", envs[i].id, function));
      continue;
    }
    auto module = http::sendHttp(urls[i], {"GET", "/v1/functions/" + http::percentEncode(function) + "/module", auth, ""}, o);
    if (!module.ok() || module->status != 200) {
      last = module.ok() ? Error(ErrorCode::kNotFound, fmt::format("{} answered {} for the module of \"{}\"",
                                                                 envs[i].id, module->status, function))
                         : module.error();
      continue;
    }
    if (sha256Hex(module->body) != hash) {
      last = Error(ErrorCode::kInvalidModule,
                   fmt::format("{} sent a module for \"{}\" whose SHA-256 is not {}", envs[i].id, function, hash));
      continue;
    }
    json record{{"module_sha256", hash},
                {"version", uintField(s, "version", 0)},
                {"env", s.contains("env") && s["env"].is_array() ? s["env"] : json::array()},
                {"memory_mb", uintField(s, "memory_mb", 128)},
                {"timeout_ms", uintField(s, "timeout_ms", 10000)},
                {"from", envs[i].id}};
    if (auto ok = writePrivateFile(opt.stateDir / "modules" / (hash + ".wasm"), module->body); !ok.ok()) return ok.error();
    if (auto ok = writePrivateFile(opt.stateDir / "functions" / (function + ".json"), record.dump()); !ok.ok()) {
      return ok.error();
    }
    // Without an object the function still runs remotely (or is compiled here, given a
    // compiler): loadStored says why it cannot run here.
    std::error_code ec;
    if (!fs::exists(objectFile(hash), ec)) (void)fetchObject(function, hash, i);
    return {};
  }
  return last ? *last : Error(ErrorCode::kNotFound, fmt::format("no node to fetch function \"{}\" from", function));
}

// How long a node may take to answer for a function's object: a -O2 compile of a large
// module takes tens of seconds on a small machine (docs/benchmarks.md, compile time).
constexpr std::chrono::milliseconds kObjectFetchTimeout{120000};

Result<void> Device::Impl::fetchObject(const std::string& function, const std::string& hash, size_t first) {
  std::vector<size_t> order{first};
  for (size_t i : remoteOrder()) {
    if (i != first) order.push_back(i);
  }
  const std::string target(wasm::hostTarget());
  std::optional<Error> last;
  for (size_t i : order) {
    http::HttpClientOptions o;
    o.tls = opt.tls;
    // The node may compile the object to answer (its optimized tier, for this machine):
    // that is getting a function ready, not a call, so it may take as long as a compile.
    o.responseTimeout = std::max(opt.remoteTimeout, kObjectFetchTimeout);
    auto r = http::sendHttp(urls[i],
                            {"GET", fmt::format("/v1/functions/{}/object?target={}", http::percentEncode(function), target),
                             authHeaders(), ""},
                            o);
    if (!r.ok()) {
      last = r.error();
      continue;
    }
    if (r->status != 200) {
      json e = json::parse(r->body, nullptr, false);
      std::string why = textField(e, "message");
      last = Error(ErrorCode::kUnavailable, fmt::format("{} answered {} for the {} object of \"{}\"{}{}", envs[i].id,
                                                        r->status, target, function, why.empty() ? "" : ": ", why));
      continue;
    }
    const std::string* named = r->header("X-Tern-Module-Sha256");
    std::string built = wasm::objectTarget(std::span(reinterpret_cast<const uint8_t*>(r->body.data()), r->body.size()));
    if (!named || *named != hash || built != target || r->body.find(hash) == std::string::npos) {
      last = Error(ErrorCode::kInvalidArgument,
                   fmt::format("{} sent an object for \"{}\" that is not module {} compiled for {}", envs[i].id,
                               function, hash.substr(0, 12), target));
      continue;
    }
    return writePrivateFile(objectFile(hash), r->body);
  }
  return last ? *last : Error(ErrorCode::kNotFound, "no node to fetch an object from");
}

// The function as stored in the state directory, checked and loaded.
Result<std::shared_ptr<LocalFunction>> Device::Impl::loadStored(const std::string& function) {
  auto text = readFile(opt.stateDir / "functions" / (function + ".json"));
  if (!text.ok()) return text.error();
  json r = json::parse(*text, nullptr, false);
  std::string hash = textField(r, "module_sha256");
  if (!isSha256Hex(hash)) {
    return Error(ErrorCode::kInvalidArgument, fmt::format("the stored record of \"{}\" is unreadable", function));
  }
  auto bytes = readFile(opt.stateDir / "modules" / (hash + ".wasm"));
  if (!bytes.ok()) return bytes.error();
  if (sha256Hex(*bytes) != hash) {
    return Error(ErrorCode::kInvalidModule, fmt::format("the stored module of \"{}\" does not match its SHA-256", function));
  }
  auto f = std::make_shared<LocalFunction>();
  f->identity = fmt::format("{}@{}", hash, uintField(r, "version", 0));
  std::span wasm(reinterpret_cast<const uint8_t*>(bytes->data()), bytes->size());
  std::error_code ec;
  Result<std::shared_ptr<const wasm::CompiledModule>> module = Error(ErrorCode::kInternal, "");
  if (fs::exists(objectFile(hash), ec)) {
    module = engine->compiler().loadPrebuilt(wasm, objectFile(hash));
    if (!module.ok()) {
      // Never run a mismatched object: set it aside, so the next fetch brings the right one.
      fs::remove(objectFile(hash), ec);
      return Error(module.error().code(), fmt::format("the stored object of \"{}\" was refused: {}", function,
                                                      module.error().message()));
    }
  } else if (!opt.cc.empty()) {
    module = engine->load(wasm);
    if (!module.ok()) return module.error();
  } else {
    return Error(ErrorCode::kUnavailable,
                 fmt::format("no object of \"{}\" for {}: no node served one and this device has no compiler",
                             function, wasm::hostTarget()));
  }
  f->module = *module;
  if (r.contains("env") && r["env"].is_array()) {
    for (const auto& e : r["env"]) {
      if (e.is_string()) f->env.push_back(e.get<std::string>());
    }
  }
  f->memoryMb = static_cast<uint32_t>(std::clamp<uint64_t>(uintField(r, "memory_mb", 128), 1, 4096));
  f->timeoutMs = static_cast<uint32_t>(std::clamp<uint64_t>(uintField(r, "timeout_ms", 10000), 1, 900000));
  return f;
}

Result<std::string> Device::Impl::currentVersion(const std::string& function) {
  std::optional<Error> last;
  for (size_t i : remoteOrder()) {
    http::HttpClientOptions o;
    o.tls = opt.tls;
    o.connectTimeout = opt.probeTimeout;
    o.responseTimeout = opt.probeTimeout;
    auto auth = authHeaders();
    auto r = http::sendHttp(urls[i], {"GET", "/v1/functions/" + http::percentEncode(function), auth, ""}, o);
    if (!r.ok()) {
      last = r.error();
      continue;
    }
    json s = r->status == 200 ? json::parse(r->body, nullptr, false) : json();
    std::string hash = textField(s, "module_sha256");
    if (isSha256Hex(hash)) return fmt::format("{}@{}", hash, uintField(s, "version", 0));
    last = Error(ErrorCode::kUnavailable, fmt::format("{} did not describe \"{}\"", envs[i].id, function));
  }
  return last ? *last : Error(ErrorCode::kUnavailable, "no node to ask");
}

// The function ready to run here: in memory, else from the state directory, else fetched
// (and, when the stored copy is unreadable, stale or outdated, fetched again).
Result<std::shared_ptr<LocalFunction>> Device::Impl::prepare(const std::string& function) {
  if (auto it = local.find(function); it != local.end()) {
    std::shared_ptr<LocalFunction> f = it->second;
    if (Clock::now() - f->checked < kRecheck) return f;
    // A new version on the nodes replaces this one; with no node answering, this one runs.
    f->checked = Clock::now();
    auto current = currentVersion(function);
    if (!current.ok() || *current == f->identity) return f;
    local.erase(it);
    if (auto fetched = fetch(function); !fetched.ok()) return f;
    auto fresh = loadStored(function);
    if (!fresh.ok()) return f;
    (*fresh)->checked = Clock::now();
    local[function] = *fresh;
    return *fresh;
  }
  if (auto it = unready.find(function); it != unready.end()) {
    if (Clock::now() - it->second.first < kRetryUnready) return it->second.second;
    unready.erase(it);
  }
  auto stored = loadStored(function);
  if (stored.ok()) {
    // Stored by an earlier process: current unless a node now names another module.
    auto current = currentVersion(function);
    if (current.ok() && *current != (*stored)->identity && fetch(function).ok()) {
      if (auto fresh = loadStored(function); fresh.ok()) stored = fresh;
    }
  } else {
    // What is stored, if anything, could not be used: why, then why fetching failed.
    std::string storedWhy = stored.error().message();
    bool nothingStored = stored.error().code() == ErrorCode::kIo;
    auto fetched = fetch(function);
    if (fetched.ok()) stored = loadStored(function);
    if (!fetched.ok() || !stored.ok()) {
      Error why = fetched.ok() ? stored.error()
                  : nothingStored
                      ? fetched.error()
                      : Error(fetched.error().code(),
                              fmt::format("{}; fetching it again failed: {}", storedWhy, fetched.error().message()));
      unready.insert_or_assign(function, std::make_pair(Clock::now(), why));
      return why;
    }
  }
  (*stored)->checked = Clock::now();
  local[function] = *stored;
  return *stored;
}

Result<std::string> Device::Impl::runLocal(const LocalFunction& f, const std::string& function,
                                           const std::string& input) {
  wasm::InvocationRequest req;
  req.input = input;
  req.args = {function};
  req.env = tern::Environment(f.env);
  req.env.add("TERN_DEVICE=1");
  req.timeout = std::chrono::milliseconds(f.timeoutMs);
  req.limits.memoryPages = f.memoryMb * 16;
  wasm::InvocationResult r = engine->invoke(f.module, req);
  if (auto e = r.error()) return *e;
  if (r.outcome == wasm::Outcome::kExited) {
    return Error(ErrorCode::kFunctionFailed, fmt::format("the function exited with code {}", r.exitCode));
  }
  return std::move(r.stdoutData);
}

Result<http::HttpResponse> Device::Impl::runRemote(size_t env, const std::string& function,
                                                   const std::string& input) {
  http::HttpClientOptions o;
  o.tls = opt.tls;
  o.responseTimeout = opt.remoteTimeout;
  o.connectTimeout = std::min(opt.remoteTimeout, o.connectTimeout);
  auto r = http::sendHttp(urls[env], {"POST", "/fn/" + http::percentEncode(function), {{"X-Tern-Device", deviceId}}, input},
                          o);
  if (!r.ok()) return r.error();
  if (r->status != 200) {
    return Error(ErrorCode::kUnavailable, fmt::format("{} answered HTTP {}", envs[env].id, r->status));
  }
  return r;
}

CallResult Device::call(const std::string& function, const std::string& input, Force force) {
  Impl& d = *impl_;
  CallResult out;
  if (!isFunctionName(function)) {
    out.error = Error(ErrorCode::kInvalidArgument,
                      fmt::format("invalid function name \"{}\": use 1-63 characters a-z, 0-9 and '-'", function));
    return out;
  }
  bool hasEdges = std::any_of(d.envs.begin(), d.envs.end(), [](const Environment& e) { return e.where == Where::kEdge; });
  if (hasEdges && (!d.probed || d.sinceProbe >= d.opt.probeEvery)) {
    std::optional<size_t> before = d.attached;
    out.moved = d.probe();
    // The device's state follows it to the edge it now calls.
    if (out.moved) d.moveAll(*before);
    d.settleMoves();
  }
  ++d.sinceProbe;
  // Getting the function ready here is not part of any call's latency.
  auto local = d.prepare(function);
  History& history = d.history[function];
  history.windows.resize(d.envs.size());
  if (d.attached) out.attached = d.envs[*d.attached].id;
  auto chosen = choose(d.envs, history, d.opt.decision, force, local.ok(), d.attached);
  if (!chosen) {
    out.error = local.ok() ? Error(ErrorCode::kUnavailable, "no environment the policy allows is configured")
                           : Error(local.error().code(),
                                   fmt::format("function \"{}\" cannot run here ({}) and no remote "
                                               "environment the policy allows is configured",
                                               function, local.error().message()));
    return out;
  }
  size_t i = *chosen;
  out.where = d.envs[i].where;
  auto start = Clock::now();
  if (out.where != Where::kLocal) {
    out.node = d.envs[i].id;
    auto r = d.runRemote(i, function, input);
    if (r.ok()) {
      out.ms = msSince(start);
      out.ok = true;
      out.output = std::move(r->body);
      if (const auto* node = r->header("X-Tern-Node")) out.node = *node;
      record(history, i, out.ms, d.opt.decision.window);
      return out;
    }
    // Charged to that environment; the call itself falls back to this device. A failed
    // attached edge has the edges measured again before the next call.
    record(history, i, std::nullopt, d.opt.decision.window);
    if (d.attached == i) d.sinceProbe = d.opt.probeEvery;
    // No fall-back for a function that cannot run here, or a call forced off the device.
    if (!local.ok() || force == Force::kRemote) {
      out.ms = msSince(start);
      out.error = r.error();
      return out;
    }
    out.fallback = true;
    out.where = Where::kLocal;
  }
  auto here = Clock::now();
  auto r = d.runLocal(**local, function, input);
  out.ms = msSince(start);
  record(history, 0, r.ok() ? std::optional<double>(msSince(here)) : std::nullopt, d.opt.decision.window);
  if (!r.ok()) {
    out.error = r.error();
    return out;
  }
  out.ok = true;
  out.output = std::move(*r);
  return out;
}

}  // namespace tern::device
