#pragma once
// Streams to devices from the command line (docs/cli.md, "Streams and apps"):
//   tern stream publish TOPIC [--data S]     POST /v1/topics/TOPIC, prints the update's seq
//   tern stream subscribe TOPIC [--app A] [--params JSON] [--resume-after SEQ]
//                         [--guarantee G] [--count N] [--credits N]
//                                            a device connection on /v1/streams (frames as
//                                            in stream/frames.h), one line per update
//   tern app deploy APP [--processor FN] [--max-per-second N]   PUT /v1/apps/APP
//   tern app ls | rm APP                                        GET /v1/apps, DELETE /v1/apps/APP

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "cli/node_client.h"
#include "util/error.h"

namespace tern::cli {

struct PublishOptions {
  std::string topic;
  std::optional<std::string> data;  // unset: the update is read from stdin
};

// The POST target "/v1/topics/TOPIC". The node checks the topic's name; here it must only
// be non-empty, and it is percent-encoded. Errors: kInvalidArgument.
Result<std::string> publishTarget(std::string_view topic);

int streamPublishCommand(const NodeOptions& node, const PublishOptions& options,
                         std::istream& in, std::ostream& out, std::ostream& err);

// The device's id for the one stream `tern stream subscribe` opens on its connection.
inline constexpr uint64_t kSubscribeStreamId = 1;

struct SubscribeOptions {
  std::string topic;
  std::string app;                      // empty: none
  std::optional<std::string> params;    // a JSON object's text
  std::optional<uint64_t> resumeAfter;  // unset: from the next update on
  std::string guarantee;                // "best-effort", "at-least-once"; empty: the node's
  std::optional<uint64_t> count;        // stop after this many updates; unset: never
  std::optional<uint64_t> credits;      // flow-control window; unset: none
  std::chrono::milliseconds connectTimeout{5000};
  // How long the node has to answer the subscribe frame.
  std::chrono::milliseconds subscribeTimeout{30000};
};

// The subscribe frame's text (stream kSubscribeStreamId) after checking the options: a
// non-empty topic, an app name by the function-name rule, params a JSON object, a known
// guarantee, a count and credits of at least 1. Errors: kInvalidArgument.
Result<std::string> subscribeFrame(const SubscribeOptions& options);

// The line printed for a data frame, without its newline: human, the payload (a JSON
// string as its text, any other value as compact JSON); JSON, {"seq","topic","payload"}.
std::string dataFrameLine(const nlohmann::json& frame, OutputFormat format);

// The note on stderr once the node has answered the subscribe frame, so that a script
// knows when updates it publishes will be seen: "subscribed to T (retained updates F..L)".
std::string subscribedLine(const nlohmann::json& frame);

// The error kind a terminate frame's reason maps to, which gives the exit status.
ErrorCode terminateReasonKind(std::string_view reason);

// Connects to <node>/v1/streams (with the admin token when one is found, without when
// not: devices need none), subscribes, notes the subscription on `err` and prints each
// update on `out`, flushed per line.
// Returns 0 after --count updates; a terminate frame, the end of the connection or an
// error returns its kind's exit status with one line on `err`.
int streamSubscribeCommand(const NodeOptions& node, const SubscribeOptions& options,
                           std::ostream& out, std::ostream& err);

struct AppDeployOptions {
  std::string name;
  std::string processor;              // empty: updates pass unchanged
  std::optional<double> maxPerSecond;  // unset: no limit
};

// The body of PUT /v1/apps/NAME: {"processor": FN|null, "max_per_second": N|null}, after
// checking the names and that the rate is a finite number >= 0. Errors: kInvalidArgument.
Result<std::string> appDeployBody(const AppDeployOptions& options);

// "deployed app NAME (processor FN, at most N updates per second per subscriber)".
std::string formatAppDeployed(const nlohmann::json& app);
// GET /v1/apps: a table NAME PROCESSOR MAX/S.
std::string formatAppList(const nlohmann::json& list);

int appDeployCommand(const NodeOptions& node, const AppDeployOptions& options,
                     std::ostream& out, std::ostream& err);
int appListCommand(const NodeOptions& node, std::ostream& out, std::ostream& err);
int appRemoveCommand(const NodeOptions& node, const std::string& name, std::ostream& out,
                     std::ostream& err);

}  // namespace tern::cli
