#include "cli/device_command.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <ostream>
#include <thread>

#include "cli/output_format.h"
#include "device/device.h"
#include "wasm/engine.h"

namespace tern::cli {

using json = nlohmann::json;

namespace {

struct Tally {
  uint32_t calls = 0;
  uint32_t ok = 0;
  uint32_t fallbacks = 0;
  std::vector<double> ms;
};

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int deviceCallCommand(const DeviceCallOptions& o, std::ostream& out, std::ostream& err) {
  auto policy = device::parsePolicy(o.policy);
  if (!policy.ok()) return reportFailure(err, policy.error());
  if (o.algorithm != "ucb1" && o.algorithm != "bayes-ucb") {
    return reportFailure(err, Error(ErrorCode::kInvalidArgument,
                                    fmt::format("unknown --algorithm \"{}\" (ucb1, bayes-ucb)", o.algorithm)));
  }
  if (o.hasData && !o.inputFile.empty()) {
    return reportFailure(err, Error(ErrorCode::kInvalidArgument, "give --data or --input-file, not both"));
  }
  std::string input = o.data;
  if (!o.inputFile.empty()) {
    std::ifstream f(o.inputFile, std::ios::binary);
    if (!f) return reportFailure(err, Error(ErrorCode::kIo, "cannot read " + o.inputFile));
    input.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  }
  device::DeviceOptions d;
  d.stateDir = o.stateDir.empty() ? wasm::defaultCacheDir() / "device" : std::filesystem::path(o.stateDir);
  d.edges = o.edges;
  d.cloud = o.cloud;
  d.discover = o.discover;
  d.token = o.token;
  if (d.token.empty()) {
    if (const char* t = std::getenv("TERN_TOKEN")) d.token = t;
  }
  d.decision.policy = *policy;
  d.decision.algorithm = o.algorithm == "ucb1" ? device::Algorithm::kUcb1 : device::Algorithm::kBayesUcb;
  d.remoteTimeout = std::chrono::milliseconds(o.timeoutMs);
  d.cc = o.cc;
  std::string caFile = o.caFile;
  if (const char* env = std::getenv("TERN_CA_FILE"); caFile.empty() && env && *env) caFile = env;
  if (!caFile.empty()) {
    auto tls = http::loadClientTls(caFile);
    if (!tls.ok()) return reportFailure(err, Error(tls.error().code(), "--ca-file: " + tls.error().message()));
    d.tls = std::move(*tls);
  }
  auto dev = device::Device::open(std::move(d));
  if (!dev.ok()) return reportFailure(err, dev.error());
  for (const auto& w : (*dev)->warnings()) err << "tern: " << w << "\n";

  std::map<std::string, Tally> tally;  // by "where node"
  std::optional<Error> lastError;
  for (uint32_t seq = 1; seq <= o.count; ++seq) {
    if (seq > 1 && o.intervalMs) std::this_thread::sleep_for(std::chrono::milliseconds(o.intervalMs));
    device::CallResult r = (*dev)->call(o.function, input);
    const char* where = device::whereName(r.where);
    Tally& t = tally[fmt::format("{} {}", where, r.where == device::Where::kLocal ? "-" : r.node)];
    ++t.calls;
    t.ok += r.ok;
    t.fallbacks += r.fallback;
    t.ms.push_back(r.ms);
    if (o.json) {
      json line{{"seq", seq}, {"where", where}, {"node", r.node}, {"ms", r.ms}, {"ok", r.ok}, {"fallback", r.fallback}};
      if (!r.attached.empty()) line["attached"] = r.attached;
      if (r.moved) line["moved"] = true;
      if (r.error) line["error"] = r.error->message();
      out << line.dump() << "\n";
    } else {
      out << fmt::format("{:>5} {:<6} {:<28} {:>9.3f} ms  {}{}\n", seq, where, r.node.empty() ? "-" : r.node, r.ms,
                         r.ok ? "ok" : "failed: " + (r.error ? r.error->message() : std::string()),
                         r.fallback ? " (fell back to local)" : "");
    }
    if (!o.json && r.moved) out << fmt::format("      attached to {}\n", r.attached);
    if (!r.ok) lastError = r.error.value_or(Error(ErrorCode::kInternal, "failed"));
  }
  if (auto saved = (*dev)->save(); !saved.ok()) err << "tern: " << saved.error().message() << "\n";
  if (o.json) {
    json summary = json::array();
    for (const auto& [key, t] : tally) {
      summary.push_back(json{{"where", key.substr(0, key.find(' '))},
                             {"node", key.substr(key.find(' ') + 1) == "-" ? "" : key.substr(key.find(' ') + 1)},
                             {"calls", t.calls},
                             {"ok", t.ok},
                             {"fallbacks", t.fallbacks},
                             {"median_ms", median(t.ms)}});
    }
    out << json{{"summary", summary}}.dump() << "\n";
  } else {
    out << fmt::format("{:<6} {:<28} {:>6} {:>6} {:>9} {:>11}\n", "WHERE", "NODE", "CALLS", "OK", "FALLBACK", "MEDIAN");
    for (const auto& [key, t] : tally) {
      out << fmt::format("{:<6} {:<28} {:>6} {:>6} {:>9} {:>8.3f} ms\n", key.substr(0, key.find(' ')),
                         key.substr(key.find(' ') + 1), t.calls, t.ok, t.fallbacks, median(t.ms));
    }
  }
  if (lastError) return errorKind(lastError->code()).exitStatus;
  return 0;
}

}  // namespace tern::cli
