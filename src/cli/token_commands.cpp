#include "cli/token_commands.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <charconv>
#include <chrono>
#include <cmath>
#include <iostream>

#include "cli/manage_commands.h"
#include "cli/output_format.h"
#include "util/names.h"

namespace tern::cli {

using json = nlohmann::json;

namespace {

Error invalid(std::string message) { return Error(ErrorCode::kInvalidArgument, std::move(message)); }

int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string scopesText(const json& t) {
  std::vector<std::string> scopes;
  if (const json* s = answerField(t, "scopes"); s && s->is_array()) {
    for (const auto& v : *s) scopes.push_back(v.is_string() ? terminalSafe(v.get<std::string>()) : "?");
  }
  return scopes.empty() ? "-" : fmt::format("{}", fmt::join(scopes, ","));
}

std::string expiresText(const json& t, int64_t now) {
  auto at = answerNumber(t, "expires_ms");
  if (!at) return "never";
  const json* expired = answerField(t, "expired");
  if (expired && expired->is_boolean() && expired->get<bool>()) return "expired";
  (void)now;
  return formatTimestamp(static_cast<int64_t>(*at));
}

std::string rateText(const json& t) {
  auto rate = answerNumber(t, "rate");
  if (!rate) return "-";
  auto burst = answerNumber(t, "burst");
  return burst ? fmt::format("{}/s burst {}", *rate, *burst) : fmt::format("{}/s", *rate);
}

}  // namespace

Result<int64_t> parseDurationSeconds(std::string_view s) {
  auto bad = [&] {
    return invalid(fmt::format("--expires-in must be a whole number and a unit (90s, 15m, 12h, 30d), got \"{}\"",
                               terminalSafe(s)));
  };
  if (s.size() < 2) return bad();
  int64_t unit = 0;
  switch (s.back()) {
    case 's': unit = 1; break;
    case 'm': unit = 60; break;
    case 'h': unit = 3600; break;
    case 'd': unit = 86400; break;
    default: return bad();
  }
  int64_t n = 0;
  std::string_view digits = s.substr(0, s.size() - 1);
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  if (ec != std::errc() || end != digits.data() + digits.size() || n <= 0 || n > 3650 * 86400 / unit) return bad();
  return n * unit;
}

Result<std::string> tokenCreateBody(const TokenCreateOptions& o) {
  if (!isFunctionName(o.name)) {
    return invalid(fmt::format("invalid token name \"{}\": use 1-63 characters a-z, 0-9 and '-', starting with a "
                               "letter or digit",
                               terminalSafe(o.name)));
  }
  if (o.scopes.empty()) {
    return invalid("--scope is required: admin, deploy, read, invoke:FUNCTION, invoke:wf/WORKFLOW or invoke:*");
  }
  json body = {{"name", o.name}, {"scopes", o.scopes}};
  if (!o.expiresIn.empty()) {
    auto seconds = parseDurationSeconds(o.expiresIn);
    if (!seconds.ok()) return seconds.error();
    body["expires_in_s"] = *seconds;
  }
  if (o.rate) {
    if (!std::isfinite(*o.rate) || *o.rate <= 0) return invalid("--rate must be a number of requests per second > 0");
    body["rate"] = *o.rate;
  }
  if (o.burst) {
    if (!o.rate) return invalid("--burst needs --rate");
    if (!std::isfinite(*o.burst) || *o.burst < 1) return invalid("--burst must be a number of requests >= 1");
    body["burst"] = *o.burst;
  }
  return body.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string formatTokenCreated(const json& t, int64_t now) {
  std::string token = answerText(t, "token");
  return fmt::format("created token {} ({}; expires {}; rate {})\n"
                     "{}\n"
                     "This is the only time the token is shown: keep it now.\n",
                     answerText(t, "name"), scopesText(t), expiresText(t, now), rateText(t), token);
}

std::string formatTokenList(const json& list, int64_t now) {
  const json* tokens = answerField(list, "tokens");
  if (!tokens || !tokens->is_array() || tokens->empty()) return "no tokens\n";
  std::vector<std::vector<std::string>> rows{{"NAME", "SCOPES", "CREATED", "EXPIRES", "RATE"}};
  for (const auto& t : *tokens) {
    auto created = answerNumber(t, "created_ms");
    rows.push_back({answerText(t, "name"), scopesText(t), created ? formatAge(static_cast<int64_t>(*created), now) : "-",
                    expiresText(t, now), rateText(t)});
  }
  return renderTable(rows);
}

int tokenCreateCommand(const NodeOptions& node, const TokenCreateOptions& options, std::ostream& out,
                       std::ostream& err) {
  auto body = tokenCreateBody(options);
  if (!body.ok()) return reportFailure(err, body.error());
  auto reply = callWithToken(node, "POST", "/v1/tokens", std::move(*body));
  if (!reply.ok()) return reportFailure(err, reply.error());
  return printReply(node, *reply, out, formatTokenCreated(reply->doc, nowMs()));
}

int tokenListCommand(const NodeOptions& node, std::ostream& out, std::ostream& err) {
  auto reply = callWithToken(node, "GET", "/v1/tokens");
  if (!reply.ok()) return reportFailure(err, reply.error());
  return printReply(node, *reply, out, formatTokenList(reply->doc, nowMs()));
}

int tokenRevokeCommand(const NodeOptions& node, const std::string& name, std::ostream& out, std::ostream& err) {
  if (!isFunctionName(name)) {
    return reportFailure(err, invalid(fmt::format("invalid token name \"{}\"", terminalSafe(name))));
  }
  auto reply = callWithToken(node, "DELETE", fmt::format("/v1/tokens/{}", name));
  if (!reply.ok()) return reportFailure(err, reply.error());
  return printReply(node, *reply, out, fmt::format("revoked token {}\n", name));
}

}  // namespace tern::cli
