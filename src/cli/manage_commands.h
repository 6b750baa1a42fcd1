#pragma once
// The management commands of `tern`, talking to a node's /v1 API (docs/http-api.md):
// deploy, ls, info, versions, rollback, rm, logs and status. Each prints the human format
// (or, with --json, the node's raw JSON answer) on `out`, and on failure one line
// `tern: <kind>: <message>` on `err`; each returns 0 or the error kind's exit status
// (docs/cli.md).

#include <chrono>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cli/node_client.h"
#include "util/error.h"

namespace tern::cli {

// Function names as the node accepts them: [a-z0-9][a-z0-9-]{0,62}. Checked before
// connecting so a typo gets a clear message and a name never alters a request path.
Result<void> checkFunctionName(std::string_view name);

struct DeployOptions {
  std::string name;
  std::string modulePath;
  std::optional<uint32_t> memoryMb;  // unset: the node's default
  std::optional<uint32_t> timeoutMs;
  std::optional<uint32_t> concurrency;
  std::vector<std::string> env;  // KEY=VALUE
  std::vector<std::string> triggers;  // mqtt:FILTER, cron:"EXPR", every:DURATION
  std::string replyTopic;             // for MQTT triggers
  std::vector<std::string> allow;     // host API capabilities
  std::optional<double> sloMs;        // response-time objective; unset: best effort
  std::optional<double> sloPercentile;  // unset: a mean objective
  std::optional<double> weight;       // share under overload; unset: 1
  // Placement in a cluster: sites (any when empty), tier (edge, cloud; any when empty),
  // labels KEY=VALUE a node must carry.
  std::vector<std::string> sites;
  std::string tier;
  std::vector<std::string> labels;
  // Which compiler builds the function's object: auto, baseline or optimized (unset: the
  // node's default, auto; docs/design/tiers.md).
  std::string compileTier;
  // The words of `--tier`, which takes either kind of tier (their words differ): edge or
  // cloud sets `tier`, auto, baseline or optimized sets `compileTier`.
  std::vector<std::string> tierWords;
};

// The PUT target for a deploy, "/v1/functions/NAME?memory_mb=...&env=K%3DV", after
// checking every option. Errors: kInvalidArgument.
Result<std::string> deployTarget(const DeployOptions& options);

// Deploys a compile can take minutes for a large module; the node answers after it.
inline constexpr std::chrono::milliseconds kDeployTimeout{15 * 60 * 1000};

int deployCommand(const NodeOptions& node, const DeployOptions& options, std::ostream& out,
                  std::ostream& err);
int listCommand(const NodeOptions& node, std::ostream& out, std::ostream& err);
int infoCommand(const NodeOptions& node, const std::string& name, std::ostream& out,
                std::ostream& err);
int versionsCommand(const NodeOptions& node, const std::string& name, std::ostream& out,
                    std::ostream& err);
int rollbackCommand(const NodeOptions& node, const std::string& name, std::ostream& out,
                    std::ostream& err);
int removeCommand(const NodeOptions& node, const std::string& name, std::ostream& out,
                  std::ostream& err);
int statusCommand(const NodeOptions& node, std::ostream& out, std::ostream& err);

struct LogsOptions {
  std::string name;
  bool follow = false;
  std::chrono::milliseconds pollInterval{500};
  // With `follow`: waits between polls and returns false to stop. Unset: sleeps, so
  // following ends only when the process is interrupted.
  std::function<bool(std::chrono::milliseconds)> wait;
};

// The GET target for a page of log lines after sequence number `after`.
std::string logsTarget(std::string_view name, uint64_t after, uint32_t limit);

int logsCommand(const NodeOptions& node, const LogsOptions& options, std::ostream& out,
                std::ostream& err);

}  // namespace tern::cli
