#pragma once
// Scoped tokens from the command line (docs/cli.md, "Tokens"), behind the admin scope:
//   tern token create NAME --scope SCOPE[,SCOPE]... [--expires-in DURATION] [--rate N]
//                          [--burst B]                       POST /v1/tokens
//   tern token ls                                            GET /v1/tokens
//   tern token revoke NAME                                   DELETE /v1/tokens/NAME
// `create` prints the new token once (the node keeps only its hash). The node checks the
// scopes; here the name, the duration and the numbers are checked before connecting.

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/node_client.h"
#include "util/error.h"

namespace tern::cli {

struct TokenCreateOptions {
  std::string name;
  std::vector<std::string> scopes;
  std::string expiresIn;        // DURATION: 90s, 15m, 12h, 30d; empty: never
  std::optional<double> rate;   // requests per second
  std::optional<double> burst;  // requests at once; needs a rate
};

// Seconds of a DURATION: a whole number followed by s, m, h or d. Errors: kInvalidArgument.
Result<int64_t> parseDurationSeconds(std::string_view text);

// The body of POST /v1/tokens: {"name", "scopes", "expires_in_s"?, "rate"?, "burst"?}.
// Errors: kInvalidArgument naming the option.
Result<std::string> tokenCreateBody(const TokenCreateOptions& options);

// The new token on its own line, then what it may do, on stderr-worthy lines kept apart:
// "token NAME (SCOPES, expires ..., N/s)\nTOKEN\n".
std::string formatTokenCreated(const nlohmann::json& created, int64_t nowMs);
// GET /v1/tokens: NAME SCOPES CREATED EXPIRES RATE.
std::string formatTokenList(const nlohmann::json& list, int64_t nowMs);

int tokenCreateCommand(const NodeOptions& node, const TokenCreateOptions& options, std::ostream& out,
                       std::ostream& err);
int tokenListCommand(const NodeOptions& node, std::ostream& out, std::ostream& err);
int tokenRevokeCommand(const NodeOptions& node, const std::string& name, std::ostream& out, std::ostream& err);

}  // namespace tern::cli
