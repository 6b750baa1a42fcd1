#include "cli/async_commands.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "cli/manage_commands.h"
#include "cli/output_format.h"

namespace tern::cli {

using json = nlohmann::json;

namespace {

Result<std::string> readBody(const AsyncInvokeOptions& o, std::istream& in) {
  if (o.data) return *o.data;
  if (!o.dataFile) return std::string();
  if (*o.dataFile == "-") {
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  std::ifstream f(*o.dataFile, std::ios::binary);
  if (!f) {
    return Error(ErrorCode::kIo,
                 fmt::format("cannot read {}: {}", *o.dataFile, std::strerror(errno)));
  }
  std::string body((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (f.bad()) return Error(ErrorCode::kIo, "cannot read " + *o.dataFile);
  return body;
}

// A JSON string field, or `fallback` when it is missing or not a string.
std::string text(const json& doc, const char* key, std::string fallback = "") {
  auto it = doc.find(key);
  return it != doc.end() && it->is_string() ? it->get<std::string>() : fallback;
}

}  // namespace

Result<std::string> asyncInvokeTarget(const AsyncInvokeOptions& o) {
  if (auto ok = checkFunctionName(o.name); !ok.ok()) return ok.error();
  if (o.data && o.dataFile) {
    return Error(ErrorCode::kInvalidArgument, "--data and --data-file exclude each other");
  }
  std::string target = "/v1/async/" + o.name;
  char sep = '?';
  if (!o.idempotencyKey.empty()) {
    target += fmt::format("{}idempotency_key={}", sep, percentEncode(o.idempotencyKey));
    sep = '&';
  }
  if (!o.callbackUrl.empty()) {
    target += fmt::format("{}callback_url={}", sep, percentEncode(o.callbackUrl));
  }
  return target;
}

int asyncInvokeCommand(const NodeOptions& node, const AsyncInvokeOptions& options,
                       std::istream& in, std::ostream& out, std::ostream& err) {
  auto target = asyncInvokeTarget(options);
  if (!target.ok()) return reportFailure(err, target.error());
  auto body = readBody(options, in);
  if (!body.ok()) return reportFailure(err, body.error());
  // /v1/async is a management route: it needs the admin token.
  auto client = NodeClient::open(node, NodeClient::TokenUse::kRequired);
  if (!client.ok()) return reportFailure(err, client.error());
  auto reply = client->call("POST", *target, std::move(*body));
  if (!reply.ok()) return reportFailure(err, reply.error());
  if (node.format == OutputFormat::kJson) {
    out << reply->raw;
    if (!reply->raw.ends_with('\n')) out << "\n";
    return 0;
  }
  std::string id = text(reply->doc, "id");
  if (id.empty()) {
    return reportFailure(err, Error(ErrorCode::kInternal, "the node's answer has no invocation id"));
  }
  out << terminalSafe(id) << "\n";
  return 0;
}

std::string formatInvocation(const json& r) {
  std::vector<std::vector<std::string>> rows;
  auto num = [&](const char* key) -> std::optional<int64_t> {
    auto it = r.find(key);
    if (it == r.end() || !it->is_number_integer()) return std::nullopt;
    return it->get<int64_t>();
  };
  rows.push_back({"id", terminalSafe(text(r, "id"))});
  rows.push_back({"function", terminalSafe(text(r, "function"))});
  rows.push_back({"status", terminalSafe(text(r, "status", "?"))});
  rows.push_back({"attempts", fmt::format("{} of {}", num("attempts").value_or(0),
                                          num("max_attempts").value_or(0))});
  if (auto t = num("created_at_ms")) rows.push_back({"created", formatTimestamp(*t, Millis::kShow)});
  if (auto t = num("next_attempt_at_ms")) {
    rows.push_back({"next attempt", formatTimestamp(*t, Millis::kShow)});
  }
  if (auto t = num("finished_at_ms")) rows.push_back({"finished", formatTimestamp(*t, Millis::kShow)});
  if (auto c = num("exit_code")) rows.push_back({"exit code", std::to_string(*c)});
  auto error = r.find("error");
  if (error != r.end() && error->is_object()) {
    rows.push_back({"last error", terminalSafe(text(*error, "code") + ": " +
                                               text(*error, "message"))});
  }
  auto delivery = r.find("delivery");
  if (delivery != r.end() && delivery->is_object()) {
    std::string d = text(*delivery, "state");
    auto e = delivery->find("error");
    if (e != delivery->end() && e->is_string()) d += " (" + e->get<std::string>() + ")";
    rows.push_back({"delivery", terminalSafe(d)});
  }
  if (!text(r, "callback_url").empty()) {
    rows.push_back({"callback", terminalSafe(text(r, "callback_url"))});
  }
  std::string out = renderTable(rows);
  if (r.contains("output")) {
    bool base64 = text(r, "output_encoding") == "base64";
    out += base64 ? "output (base64):\n" : "output:\n";
    // Line by line, so the output's own line breaks stay line breaks.
    const std::string output = text(r, "output");
    std::string_view o = output;
    while (!o.empty()) {
      size_t eol = o.find('\n');
      out += terminalSafe(o.substr(0, eol)) + "\n";
      o.remove_prefix(eol == std::string_view::npos ? o.size() : eol + 1);
    }
  }
  return out;
}

int invocationCommand(const NodeOptions& node, const std::string& id, std::ostream& out,
                      std::ostream& err) {
  bool hex = !id.empty() && id.size() <= 64 && std::all_of(id.begin(), id.end(), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
             });
  if (!hex) {
    return reportFailure(err, Error(ErrorCode::kInvalidArgument,
                           fmt::format("\"{}\" is not an invocation id (lower-case hex)",
                                       terminalSafe(id.substr(0, 64)))));
  }
  auto client = NodeClient::open(node, NodeClient::TokenUse::kRequired);
  if (!client.ok()) return reportFailure(err, client.error());
  auto reply = client->call("GET", "/v1/invocations/" + id);
  if (!reply.ok()) return reportFailure(err, reply.error());
  if (node.format == OutputFormat::kJson) {
    out << reply->raw;
    if (!reply->raw.ends_with('\n')) out << "\n";
  } else {
    out << formatInvocation(reply->doc);
  }
  return 0;
}

}  // namespace tern::cli
