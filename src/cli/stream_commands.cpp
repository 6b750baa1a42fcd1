#include "cli/stream_commands.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <iterator>

#include "cli/manage_commands.h"
#include "cli/output_format.h"
#include "http/websocket_client.h"
#include "util/names.h"

namespace tern::cli {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

// The node's WebSocket endpoint for device connections.
constexpr std::string_view kStreamsPath = "/v1/streams";

// How long one receive() waits once subscribed; the wait simply starts again, so updates
// may be hours apart.
constexpr std::chrono::minutes kIdleWait{60};

Error invalid(std::string message) {
  return Error(ErrorCode::kInvalidArgument, std::move(message));
}

Result<void> checkAppName(std::string_view name) {
  if (isFunctionName(name)) return {};
  return invalid(fmt::format("invalid app name \"{}\": use 1-63 characters a-z, 0-9 and '-', "
                             "starting with a letter or digit",
                             terminalSafe(name)));
}

// A string field of a frame or answer as sent (callers make it terminal-safe), tolerant of
// what the node sent (it is input).
std::string rawText(const json& j, const char* key) {
  const json* f = answerField(j, key);
  return f && f->is_string() ? f->get<std::string>() : std::string();
}

// A non-negative integer field (sequence numbers, stream ids).
std::optional<uint64_t> unsignedField(const json& j, const char* key) {
  const json* f = answerField(j, key);
  if (!f || !f->is_number_integer()) return std::nullopt;
  if (!f->is_number_unsigned() && f->get<int64_t>() < 0) return std::nullopt;
  return f->get<uint64_t>();
}

// An app's processor ("-" when none) and rate ("-" when unlimited), as the table shows them.
std::string processorText(const json& app) {
  std::string p = rawText(app, "processor");
  return p.empty() ? "-" : terminalSafe(p);
}

std::optional<double> rateOf(const json& app) {
  const json* r = answerField(app, "max_per_second");
  if (!r || !r->is_number()) return std::nullopt;
  double v = r->get<double>();
  if (!(v > 0) || !std::isfinite(v)) return std::nullopt;
  return v;
}

// The Authorization header for the stream endpoint: the admin token when one is found
// (and may be sent to this node), none otherwise, as a device connects.
std::vector<HttpHeader> streamHeaders(const NodeOptions& node, const NodeUrl& url) {
  auto token = discoverToken(node.token);
  if (!token.ok()) return {};
  bool fromLocalFile = token->origin != "--token" && token->origin != "$TERN_TOKEN";
  if (fromLocalFile && !isLocalNode(url)) return {};
  return {{"Authorization", "Bearer " + token->value}};
}

// "tern: stream terminated: <reason>: <message>" and the reason's exit status.
int reportTerminate(std::ostream& err, const json& frame) {
  std::string reason = rawText(frame, "reason");
  std::string message = rawText(frame, "message");
  err << fmt::format("tern: stream terminated: {}: {}\n",
                     terminalSafe(reason.empty() ? "unknown" : reason), terminalSafe(message));
  return errorKind(terminateReasonKind(reason)).exitStatus;
}

}  // namespace

std::string subscribedLine(const json& frame) {
  uint64_t first = unsignedField(frame, "first_seq").value_or(1);
  uint64_t last = unsignedField(frame, "last_seq").value_or(0);
  std::string topic = terminalSafe(rawText(frame, "topic"));
  if (last == 0 || first > last) return fmt::format("subscribed to {} (no retained updates)\n", topic);
  return fmt::format("subscribed to {} (retained updates {}..{})\n", topic, first, last);
}

Result<std::string> publishTarget(std::string_view topic) {
  if (topic.empty()) return invalid("the topic is empty");
  return fmt::format("/v1/topics/{}", percentEncode(topic));
}

int streamPublishCommand(const NodeOptions& node, const PublishOptions& options,
                         std::istream& in, std::ostream& out, std::ostream& err) {
  auto target = publishTarget(options.topic);
  if (!target.ok()) return reportFailure(err, target.error());
  std::string body = options.data
                         ? *options.data
                         : std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  if (in.bad()) return reportFailure(err, Error(ErrorCode::kIo, "cannot read the update from stdin"));
  auto reply = callWithToken(node, "POST", *target, std::move(body));
  if (!reply.ok()) return reportFailure(err, reply.error());
  auto seq = unsignedField(reply->doc, "seq");
  if (!seq) {
    return reportFailure(err, Error(ErrorCode::kInternal, "the node's answer has no sequence number"));
  }
  return printReply(node, *reply, out, fmt::format("{}\n", *seq));
}

Result<std::string> subscribeFrame(const SubscribeOptions& o) {
  if (o.topic.empty()) return invalid("the topic is empty");
  json frame = {{"type", "subscribe"}, {"stream", kSubscribeStreamId}, {"topic", o.topic}};
  if (!o.app.empty()) {
    if (auto ok = checkAppName(o.app); !ok.ok()) return ok.error();
    frame["app"] = o.app;
  }
  if (o.params) {
    json params = json::parse(*o.params, nullptr, /*allow_exceptions=*/false);
    if (!params.is_object()) {
      return invalid(fmt::format("--params must be a JSON object, e.g. '{{\"threshold\":3}}'; got "
                                 "\"{}\"",
                                 terminalSafe(o.params->substr(0, 80))));
    }
    frame["params"] = std::move(params);
  }
  if (o.resumeAfter) frame["resume_after"] = *o.resumeAfter;
  if (!o.guarantee.empty()) {
    if (o.guarantee != "best-effort" && o.guarantee != "at-least-once") {
      return invalid(fmt::format("--guarantee must be best-effort or at-least-once, got \"{}\"",
                                 terminalSafe(o.guarantee)));
    }
    frame["guarantee"] = o.guarantee;
  }
  if (o.count && *o.count == 0) return invalid("--count must be at least 1");
  if (o.credits) {
    if (*o.credits == 0) return invalid("--credits must be at least 1");
    frame["credits"] = *o.credits;
  }
  // Topics and params came from the command line: replace invalid UTF-8 rather than throw.
  return frame.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string dataFrameLine(const json& frame, OutputFormat format) {
  static const json kNull;
  const json* p = answerField(frame, "payload");
  const json& payload = p ? *p : kNull;
  if (format == OutputFormat::kJson) {
    nlohmann::ordered_json line;
    line["seq"] = unsignedField(frame, "seq").value_or(0);
    line["topic"] = rawText(frame, "topic");
    line["payload"] = payload;
    return line.dump(-1, ' ', false, json::error_handler_t::replace);
  }
  if (payload.is_string()) return payload.get<std::string>();
  return payload.dump(-1, ' ', false, json::error_handler_t::replace);
}

ErrorCode terminateReasonKind(std::string_view reason) {
  // The reasons of stream/frames.h. A caller's mistake is an invalid argument, a full node
  // is saturated, a failed processor is the function's failure, the rest is unavailability.
  if (reason == "bad_frame" || reason == "bad_topic" || reason == "duplicate_stream" ||
      reason == "resume_point_expired") {
    return ErrorCode::kInvalidArgument;
  }
  if (reason == "unknown_app") return ErrorCode::kNotFound;
  if (reason == "too_many_streams" || reason == "subscribe_flood" || reason == "slow_consumer") {
    return ErrorCode::kSaturated;
  }
  if (reason == "processor_failed") return ErrorCode::kFunctionFailed;
  return ErrorCode::kUnavailable;  // unavailable, shutdown, cancelled, and reasons not known here
}

int streamSubscribeCommand(const NodeOptions& node, const SubscribeOptions& o, std::ostream& out,
                           std::ostream& err) {
  auto frame = subscribeFrame(o);
  if (!frame.ok()) return reportFailure(err, frame.error());
  auto url = parseNodeUrl(resolveNodeAddress(node.node));
  if (!url.ok()) return reportFailure(err, url.error());

  auto tls = clientTlsFor(node, *url);
  if (!tls.ok()) return reportFailure(err, tls.error());
  http::WebSocketClient ws;
  auto connected =
      ws.connect(*url, kStreamsPath, streamHeaders(node, *url), o.connectTimeout, *tls);
  if (!connected.ok()) return reportFailure(err, connected.error());
  if (auto sent = ws.send(*frame); !sent.ok()) return reportFailure(err, sent.error());

  bool subscribed = false;
  uint64_t printed = 0;
  uint64_t unGranted = 0;  // data frames taken since credits were last granted
  const uint64_t grantEvery = o.credits ? std::max<uint64_t>(1, *o.credits / 2) : 0;
  const auto subscribeDeadline = Clock::now() + o.subscribeTimeout;
  for (;;) {
    auto r = ws.receive(subscribed ? Clock::now() + kIdleWait : subscribeDeadline);
    using Kind = http::WebSocketReceive::Kind;
    if (r.kind == Kind::kTimedOut) {
      if (subscribed) continue;
      return reportFailure(err, Error(ErrorCode::kUnavailable,
                                      fmt::format("{} did not answer the subscribe within {} ms",
                                                  url->text(), o.subscribeTimeout.count())));
    }
    if (r.kind == Kind::kFailed) return reportFailure(err, *r.error);
    if (r.kind == Kind::kClosed) {
      std::string why = fmt::format("code {}", r.closeCode);
      if (!r.closeReason.empty()) why += fmt::format(": {}", terminalSafe(r.closeReason));
      return reportFailure(err, Error(ErrorCode::kUnavailable,
                                      fmt::format("{} closed the stream connection ({})",
                                                  url->text(), why)));
    }

    json f = json::parse(r.text, nullptr, /*allow_exceptions=*/false);
    if (!f.is_object()) {
      return reportFailure(err, Error(ErrorCode::kInternal,
                                      fmt::format("{} sent a frame that is not a JSON object: {}",
                                                  url->text(), terminalSafe(r.text.substr(0, 80)))));
    }
    std::string type = rawText(f, "type");
    auto stream = unsignedField(f, "stream");
    if (type == "terminate" && (!stream || *stream == kSubscribeStreamId)) {
      (void)ws.close();
      return reportTerminate(err, f);
    }
    // Frames of other streams or of types this tern does not know are not for it.
    if (stream != kSubscribeStreamId) continue;
    if (type == "subscribed") {
      subscribed = true;
      err << subscribedLine(f) << std::flush;
      continue;
    }
    if (type != "data") continue;
    subscribed = true;
    out << dataFrameLine(f, node.format) << '\n' << std::flush;
    ++printed;
    if (o.count && printed >= *o.count) {
      (void)ws.close();
      return 0;
    }
    if (grantEvery && ++unGranted >= grantEvery) {
      json credits = {{"type", "credits"}, {"stream", kSubscribeStreamId}, {"credits", unGranted}};
      if (auto sent = ws.send(credits.dump()); !sent.ok()) return reportFailure(err, sent.error());
      unGranted = 0;
    }
  }
}

Result<std::string> appDeployBody(const AppDeployOptions& o) {
  if (auto ok = checkAppName(o.name); !ok.ok()) return ok.error();
  json body = {{"processor", nullptr}, {"max_per_second", nullptr}};
  if (!o.processor.empty()) {
    if (auto ok = checkFunctionName(o.processor); !ok.ok()) {
      return invalid(fmt::format("--processor: {}", ok.error().message()));
    }
    body["processor"] = o.processor;
  }
  if (o.maxPerSecond) {
    if (!std::isfinite(*o.maxPerSecond) || *o.maxPerSecond < 0) {
      return invalid(fmt::format("--max-per-second must be a number >= 0 (0: no limit), got {}",
                                 *o.maxPerSecond));
    }
    body["max_per_second"] = *o.maxPerSecond;
  }
  return body.dump();
}

std::string formatAppDeployed(const json& app) {
  std::string processor = rawText(app, "processor");
  std::string how = processor.empty() ? "no processor"
                                      : fmt::format("processor {}", terminalSafe(processor));
  auto rate = rateOf(app);
  how += rate ? fmt::format(", at most {} updates per second per subscriber", *rate)
              : std::string(", no rate limit");
  return fmt::format("deployed app {} ({})\n", terminalSafe(rawText(app, "name")), how);
}

std::string formatAppList(const json& list) {
  const json* apps = answerField(list, "apps");
  if (!apps || !apps->is_array() || apps->empty()) return "no apps deployed\n";
  std::vector<std::vector<std::string>> rows{{"NAME", "PROCESSOR", "MAX/S"}};
  for (const auto& a : *apps) {
    auto rate = rateOf(a);
    rows.push_back({terminalSafe(rawText(a, "name")), processorText(a),
                    rate ? fmt::format("{}", *rate) : "-"});
  }
  return renderTable(rows);
}

int appDeployCommand(const NodeOptions& node, const AppDeployOptions& options, std::ostream& out,
                     std::ostream& err) {
  auto body = appDeployBody(options);
  if (!body.ok()) return reportFailure(err, body.error());
  auto reply = callWithToken(node, "PUT", "/v1/apps/" + options.name, std::move(*body));
  if (!reply.ok()) return reportFailure(err, reply.error());
  return printReply(node, *reply, out, formatAppDeployed(reply->doc));
}

int appListCommand(const NodeOptions& node, std::ostream& out, std::ostream& err) {
  auto reply = callWithToken(node, "GET", "/v1/apps");
  if (!reply.ok()) return reportFailure(err, reply.error());
  return printReply(node, *reply, out, formatAppList(reply->doc));
}

int appRemoveCommand(const NodeOptions& node, const std::string& name, std::ostream& out,
                     std::ostream& err) {
  if (auto ok = checkAppName(name); !ok.ok()) return reportFailure(err, ok.error());
  auto reply = callWithToken(node, "DELETE", "/v1/apps/" + name);
  if (!reply.ok()) return reportFailure(err, reply.error());
  return printReply(node, *reply, out, fmt::format("removed app {}\n", name));
}

}  // namespace tern::cli
