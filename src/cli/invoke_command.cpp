#include "cli/invoke_command.h"

#include <fmt/format.h>
#include <strings.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>

#include "cli/manage_commands.h"
#include "cli/output_format.h"

namespace tern::cli {

namespace {

Error invalid(std::string message) {
  return Error(ErrorCode::kInvalidArgument, std::move(message));
}

// Keeps the characters a request target may hold as they are (so a query and
// percent-escapes pass through) and percent-encodes the rest.
std::string encodeTarget(std::string_view s) {
  static constexpr std::string_view kAllowed = "-._~!$&'()*+,;=:@/?%";
  std::string out;
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || kAllowed.find(c) != std::string_view::npos) {
      out.push_back(c);
    } else {
      out += fmt::format("%{:02X}", u);
    }
  }
  return out;
}

bool isTokenChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool isToken(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), isTokenChar);
}

}  // namespace

Result<HttpRequest> invokeRequest(const InvokeOptions& o) {
  if (auto ok = checkFunctionName(o.name); !ok.ok()) return ok.error();
  if (o.data && o.dataFile) return invalid("--data and --data-file exclude each other");
  if (!o.path.empty() && o.path.front() != '/' && o.path.front() != '?') {
    return invalid(fmt::format("--path must start with '/' (or '?' for a query only), got \"{}\"",
                               terminalSafe(o.path)));
  }
  HttpRequest req;
  bool hasBody = o.data || o.dataFile;
  req.method = o.method.empty() ? (hasBody ? "POST" : "GET") : o.method;
  if (!isToken(req.method)) {
    return invalid(fmt::format("--method \"{}\" is not an HTTP method", terminalSafe(req.method)));
  }
  req.target = "/fn/" + o.name + encodeTarget(o.path);
  for (const auto& h : o.headers) {
    size_t colon = h.find(':');
    std::string_view name = std::string_view(h).substr(0, colon);
    if (colon == std::string::npos || !isToken(name)) {
      return invalid(fmt::format("--header expects NAME:VALUE, got \"{}\"", terminalSafe(h)));
    }
    std::string_view value = std::string_view(h).substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
      value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    if (value.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos) {
      return invalid(fmt::format("--header {}: the value must be one line", name));
    }
    for (const char* framing : {"Content-Length", "Transfer-Encoding", "Connection"}) {
      if (strcasecmp(std::string(name).c_str(), framing) == 0) {
        return invalid(fmt::format("--header {}: tern sets this header itself", name));
      }
    }
    req.headers.push_back({std::string(name), std::string(value)});
  }
  return req;
}

InvokeVerdict judgeInvocation(const HttpResponse& response) {
  InvokeVerdict v;
  if (response.status < 400) return v;
  if (auto e = errorFromJsonBody(response.body)) {
    v.error = std::move(*e);
    v.bodyIsOutput = false;
    return v;
  }
  v.error = Error(ErrorCode::kFunctionFailed,
                  fmt::format("the function answered HTTP {}", response.status));
  return v;
}

int invokeCommand(const NodeOptions& node, const InvokeOptions& options, std::istream& in,
                  std::ostream& out, std::ostream& err) {
  auto req = invokeRequest(options);
  if (!req.ok()) return reportFailure(err, req.error());
  if (options.data) {
    req->body = *options.data;
  } else if (options.dataFile && *options.dataFile == "-") {
    req->body.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  } else if (options.dataFile) {
    std::ifstream f(*options.dataFile, std::ios::binary);
    if (!f) {
      return reportFailure(err, Error(ErrorCode::kIo, fmt::format("cannot read {}: {}", *options.dataFile,
                                                         std::strerror(errno))));
    }
    req->body.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
    if (f.bad()) return reportFailure(err, Error(ErrorCode::kIo, "cannot read " + *options.dataFile));
  }
  // A node with --invoke-auth required wants a token; the node keeps it out of the
  // function's environment.
  auto client = NodeClient::open(node, NodeClient::TokenUse::kIfAvailable);
  if (!client.ok()) return reportFailure(err, client.error());
  client->authorize(*req);
  auto res = client->send(*req, kInvokeTimeout);
  if (!res.ok()) return reportFailure(err, res.error());
  InvokeVerdict verdict = judgeInvocation(*res);
  if (verdict.bodyIsOutput) {
    out.write(res->body.data(), static_cast<std::streamsize>(res->body.size()));
    out.flush();
  }
  if (verdict.error) return reportFailure(err, *verdict.error);
  return 0;
}

}  // namespace tern::cli
