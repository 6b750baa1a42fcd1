#include "cli/manage_commands.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <thread>

#include "cli/output_format.h"
#include "exec/capacity_model.h"
#include "util/names.h"
#include "util/clock.h"

namespace tern::cli {

using json = nlohmann::json;

namespace {

std::string functionPath(std::string_view name) { return "/v1/functions/" + percentEncode(name); }

// A compile tier's name (the node parses it as store::parseCompileTier does).
bool isCompileTier(std::string_view word) {
  return word == "auto" || word == "baseline" || word == "optimized";
}

// A member of a JSON object, or null.
const json& member(const json& j, const char* key) {
  static const json kNull;
  if (!j.is_object()) return kNull;
  auto it = j.find(key);
  return it == j.end() ? kNull : *it;
}

// Opens a token-carrying client and makes one call; the shape of every simple command.
Result<ApiReply> callNode(const NodeOptions& node, const std::string& method,
                          const std::string& target) {
  auto client = NodeClient::open(node, NodeClient::TokenUse::kRequired);
  if (!client.ok()) return client.error();
  return client->call(method, target);
}

// Prints the answer: raw JSON, or the human format.
template <typename Format>
int print(const NodeOptions& node, const ApiReply& reply, std::ostream& out, Format format) {
  if (node.format == OutputFormat::kJson) {
    out << reply.raw;
    if (!reply.raw.empty() && reply.raw.back() != '\n') out << '\n';
  } else {
    out << format(reply.doc);
  }
  out.flush();
  return 0;
}

}  // namespace

Result<void> checkFunctionName(std::string_view name) {
  if (!isFunctionName(name)) {
    return Error(ErrorCode::kInvalidArgument,
                 fmt::format("invalid function name \"{}\": use 1-63 characters a-z, 0-9 and "
                             "'-', starting with a letter or digit",
                             terminalSafe(name)));
  }
  return {};
}

Result<std::string> deployTarget(const DeployOptions& o) {
  if (auto ok = checkFunctionName(o.name); !ok.ok()) return ok.error();
  std::vector<std::string> query;
  auto range = [&](const char* flag, const char* key, const std::optional<uint32_t>& v, uint32_t lo,
                   uint32_t hi) -> Result<void> {
    if (!v) return {};
    if (*v < lo || *v > hi) {
      return Error(ErrorCode::kInvalidArgument,
                   fmt::format("{} must be {}..{}, got {}", flag, lo, hi, *v));
    }
    query.push_back(fmt::format("{}={}", key, *v));
    return {};
  };
  if (auto r = range("--memory-mb", "memory_mb", o.memoryMb, 1, 4096); !r.ok()) return r.error();
  if (auto r = range("--timeout-ms", "timeout_ms", o.timeoutMs, 1, 900000); !r.ok()) {
    return r.error();
  }
  if (auto r = range("--concurrency", "concurrency", o.concurrency, 0, 65536); !r.ok()) {
    return r.error();
  }
  for (const auto& kv : o.env) {
    size_t eq = kv.find('=');
    if (eq == 0 || eq == std::string::npos || kv.find('\0') != std::string::npos) {
      return Error(ErrorCode::kInvalidArgument,
                   fmt::format("--env expects KEY=VALUE, got \"{}\"", terminalSafe(kv)));
    }
    query.push_back("env=" + percentEncode(kv));
  }
  // The node checks triggers and capabilities; they are passed as given.
  for (const auto& t : o.triggers) query.push_back("trigger=" + percentEncode(t));
  if (!o.replyTopic.empty()) query.push_back("reply_topic=" + percentEncode(o.replyTopic));
  for (const auto& a : o.allow) query.push_back("allow=" + percentEncode(a));
  if (o.sloPercentile && !o.sloMs) {
    return Error(ErrorCode::kInvalidArgument, "--slo-percentile needs --slo-ms");
  }
  if (o.sloMs) {
    exec::Objective objective{*o.sloMs, o.sloPercentile};
    if (auto ok = exec::checkObjective(objective); !ok.ok()) return ok.error();
    query.push_back(fmt::format("slo_ms={}", *o.sloMs));
    if (o.sloPercentile) query.push_back(fmt::format("slo_percentile={}", *o.sloPercentile));
  }
  if (o.weight) {
    if (auto ok = exec::checkWeight(*o.weight); !ok.ok()) return ok.error();
    query.push_back(fmt::format("weight={}", *o.weight));
  }
  std::string tier = o.tier;
  std::string compileTier = o.compileTier;
  if (!compileTier.empty() && !isCompileTier(compileTier)) {
    return Error(ErrorCode::kInvalidArgument,
                 fmt::format("--compile-tier must be auto, baseline or optimized, got \"{}\"",
                             terminalSafe(compileTier)));
  }
  for (const auto& word : o.tierWords) {
    bool placement = word == "edge" || word == "cloud";
    if (!placement && !isCompileTier(word)) {
      return Error(ErrorCode::kInvalidArgument,
                   fmt::format("--tier must be edge or cloud (where it runs) or auto, baseline or "
                               "optimized (which compiler builds it), got \"{}\"",
                               terminalSafe(word)));
    }
    std::string& setting = placement ? tier : compileTier;
    if (!setting.empty() && setting != word) {
      bool fromFlag = !placement && setting == o.compileTier;
      return Error(ErrorCode::kInvalidArgument,
                   fmt::format("--tier {} contradicts {} {}", word,
                               fromFlag ? "--compile-tier" : "--tier", setting));
    }
    setting = word;
  }
  // The node checks the placement's names.
  for (const auto& site : o.sites) query.push_back("site=" + percentEncode(site));
  if (!tier.empty()) query.push_back("tier=" + percentEncode(tier));
  for (const auto& l : o.labels) query.push_back("label=" + percentEncode(l));
  if (!compileTier.empty()) query.push_back("compile_tier=" + compileTier);
  std::string target = functionPath(o.name);
  for (size_t i = 0; i < query.size(); ++i) target += (i == 0 ? "?" : "&") + query[i];
  return target;
}

int deployCommand(const NodeOptions& node, const DeployOptions& options, std::ostream& out,
                  std::ostream& err) {
  auto target = deployTarget(options);
  if (!target.ok()) return reportFailure(err, target.error());
  std::ifstream f(options.modulePath, std::ios::binary);
  if (!f) {
    return reportFailure(err, Error(ErrorCode::kIo, fmt::format("cannot read {}: {}", options.modulePath,
                                                       std::strerror(errno))));
  }
  std::string module(std::istreambuf_iterator<char>(f), {});
  if (f.bad()) {
    return reportFailure(err, Error(ErrorCode::kIo, "cannot read " + options.modulePath));
  }
  if (module.empty()) {
    return reportFailure(err, Error(ErrorCode::kInvalidModule, options.modulePath + " is empty"));
  }
  auto client = NodeClient::open(node, NodeClient::TokenUse::kRequired);
  if (!client.ok()) return reportFailure(err, client.error());
  size_t size = module.size();
  auto reply = client->call("PUT", *target, std::move(module), kDeployTimeout);
  if (!reply.ok()) {
    if (reply.error().code() == ErrorCode::kBodyTooLarge) {
      // For a deploy, a body above the node's limit is a module too large.
      return reportFailure(err, Error(ErrorCode::kModuleTooLarge,
                             fmt::format("{} is {} ({} bytes), above the node's module limit",
                                         options.modulePath, formatBytes(size), size)));
    }
    return reportFailure(err, reply.error());
  }
  return print(node, *reply, out, [](const json& v) { return formatDeployed(v); });
}

int listCommand(const NodeOptions& node, std::ostream& out, std::ostream& err) {
  auto reply = callNode(node, "GET", "/v1/functions");
  if (!reply.ok()) return reportFailure(err, reply.error());
  int64_t now = unixMillis();
  return print(node, *reply, out, [now](const json& d) { return formatFunctionList(d, now); });
}

int infoCommand(const NodeOptions& node, const std::string& name, std::ostream& out,
                std::ostream& err) {
  if (auto ok = checkFunctionName(name); !ok.ok()) return reportFailure(err, ok.error());
  auto reply = callNode(node, "GET", functionPath(name));
  if (!reply.ok()) return reportFailure(err, reply.error());
  int64_t now = unixMillis();
  return print(node, *reply, out, [now](const json& d) { return formatFunctionInfo(d, now); });
}

int versionsCommand(const NodeOptions& node, const std::string& name, std::ostream& out,
                    std::ostream& err) {
  if (auto ok = checkFunctionName(name); !ok.ok()) return reportFailure(err, ok.error());
  auto reply = callNode(node, "GET", functionPath(name) + "/versions");
  if (!reply.ok()) return reportFailure(err, reply.error());
  int64_t now = unixMillis();
  return print(node, *reply, out, [now](const json& d) { return formatVersions(d, now); });
}

int rollbackCommand(const NodeOptions& node, const std::string& name, std::ostream& out,
                    std::ostream& err) {
  if (auto ok = checkFunctionName(name); !ok.ok()) return reportFailure(err, ok.error());
  auto reply = callNode(node, "POST", functionPath(name) + "/rollback");
  if (!reply.ok()) return reportFailure(err, reply.error());
  return print(node, *reply, out, [](const json& d) { return formatRolledBack(d); });
}

int removeCommand(const NodeOptions& node, const std::string& name, std::ostream& out,
                  std::ostream& err) {
  if (auto ok = checkFunctionName(name); !ok.ok()) return reportFailure(err, ok.error());
  auto reply = callNode(node, "DELETE", functionPath(name));
  if (!reply.ok()) return reportFailure(err, reply.error());
  return print(node, *reply, out, [&name](const json&) {
    return fmt::format("removed {} and all its versions\n", name);
  });
}

int statusCommand(const NodeOptions& node, std::ostream& out, std::ostream& err) {
  auto client = NodeClient::open(node, NodeClient::TokenUse::kRequired);
  if (!client.ok()) return reportFailure(err, client.error());
  auto reply = client->call("GET", "/v1/status");
  if (!reply.ok()) return reportFailure(err, reply.error());
  std::string url = client->url().text();
  return print(node, *reply, out, [&url](const json& d) { return formatStatus(d, url); });
}

std::string logsTarget(std::string_view name, uint64_t after, uint32_t limit) {
  return fmt::format("{}/logs?after={}&limit={}", functionPath(name), after, limit);
}

int logsCommand(const NodeOptions& node, const LogsOptions& options, std::ostream& out,
                std::ostream& err) {
  if (auto ok = checkFunctionName(options.name); !ok.ok()) return reportFailure(err, ok.error());
  auto client = NodeClient::open(node, NodeClient::TokenUse::kRequired);
  if (!client.ok()) return reportFailure(err, client.error());
  // The node keeps a bounded ring of lines (well under this), so one page holds them all.
  constexpr uint32_t kPage = 10000;
  std::function<bool(std::chrono::milliseconds)> wait = options.wait;
  if (!wait) {
    wait = [](std::chrono::milliseconds d) {
      std::this_thread::sleep_for(d);
      return true;
    };
  }
  uint64_t after = 0;
  for (bool first = true;; first = false) {
    auto reply = client->call("GET", logsTarget(options.name, after, kPage));
    if (!reply.ok()) return reportFailure(err, reply.error());
    const json& lines = member(reply->doc, "lines");
    bool any = lines.is_array() && !lines.empty();
    if (!first && any) {
      const json& seq = member(lines.front(), "seq");
      if (seq.is_number_unsigned() && seq.get<uint64_t>() > after + 1) {
        err << fmt::format("tern: [{} log lines were dropped by the node before they were read]\n",
                           seq.get<uint64_t>() - after - 1);
      }
    }
    if (node.format == OutputFormat::kJson) {
      // One JSON document per page: the first always, later ones when they have lines.
      if (first || any) {
        out << reply->raw;
        if (!reply->raw.empty() && reply->raw.back() != '\n') out << '\n';
      }
    } else {
      out << formatLogLines(reply->doc);
    }
    out.flush();
    if (const json& next = member(reply->doc, "next"); next.is_number_unsigned()) {
      after = std::max(after, next.get<uint64_t>());
    }
    if (!options.follow) return 0;
    if (!wait(options.pollInterval)) return 0;
  }
}

}  // namespace tern::cli
