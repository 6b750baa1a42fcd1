#include "cluster/nats_options.h"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string_view>
#include <vector>

#include "cluster/nats_text.h"
#include "util/base64.h"

namespace tern::cluster {

namespace {

Result<void> readable(std::string_view flag, const std::string& file) {
  if (file.empty()) return {};
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    return Error(ErrorCode::kInvalidArgument,
                 fmt::format("{} \"{}\": cannot read it: {}", flag, file, std::strerror(errno)));
  }
  char c;
  if (!in.get(c)) {
    return Error(ErrorCode::kInvalidArgument, fmt::format("{} \"{}\" is empty", flag, file));
  }
  return {};
}

// The host of the first server of a NATS URL list ("nats://a:4222,nats://b:4222" -> "a").
std::string firstHost(std::string_view url) {
  url = url.substr(0, url.find(','));
  if (size_t scheme = url.find("://"); scheme != std::string_view::npos) {
    url.remove_prefix(scheme + 3);
  }
  if (size_t at = url.rfind('@'); at != std::string_view::npos) url.remove_prefix(at + 1);
  if (url.starts_with('[')) return std::string(url.substr(1, url.find(']') - 1));
  return std::string(url.substr(0, url.find_first_of(":/")));
}

bool isIpLiteral(const std::string& host) {
  return host.find(':') != std::string::npos ||
         (!host.empty() && host.find_first_not_of("0123456789.") == std::string::npos);
}

// A block delimiter line of a credentials file: at least three dashes at each end
// ("-----BEGIN NATS USER JWT-----"), as libnats recognises them.
bool isDelimiter(std::string_view line) {
  return line.size() >= 6 && line.starts_with("---") && line.ends_with("---");
}

// The blocks of a credentials file in order: each the one line between two delimiter lines
// (blank lines between them ignored), as libnats reads the JWT (first) and the seed (second).
std::vector<std::string> credentialBlocks(std::string_view text) {
  std::vector<std::string_view> lines;
  for (size_t start = 0; start <= text.size();) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    if (line.ends_with('\r')) line.remove_suffix(1);
    if (!line.empty()) lines.push_back(line);
    start = end + 1;
  }
  std::vector<std::string> blocks;
  for (size_t i = 0; i + 2 < lines.size(); ++i) {
    if (isDelimiter(lines[i]) && !isDelimiter(lines[i + 1]) && isDelimiter(lines[i + 2])) {
      blocks.emplace_back(lines[i + 1]);
      i += 2;
    }
  }
  return blocks;
}

// base64url without padding (JWT parts), through the one base64 decoder.
std::optional<std::string> base64UrlDecode(std::string_view text) {
  std::string standard(text);
  for (char& c : standard) {
    if (c == '-') c = '+';
    else if (c == '_') c = '/';
    else if (c == '+' || c == '/' || c == '=') return std::nullopt;
  }
  while (standard.size() % 4 != 0) standard.push_back('=');
  return base64Decode(standard);
}

std::string utcText(int64_t unixSeconds) {
  return fmt::format("{:%Y-%m-%d %H:%M:%S} UTC", fmt::gmtime(static_cast<std::time_t>(unixSeconds)));
}

// The one-line reason in libnats's text of a failed TLS handshake.
std::string tlsReason(const std::string& detail) {
  if (detail.find("certificate has expired") != std::string::npos) {
    return "presented a certificate that has expired";
  }
  if (detail.find("not yet valid") != std::string::npos) {
    return "presented a certificate that is not valid yet";
  }
  if (detail.find("ostname mismatch") != std::string::npos) {
    return "presented a certificate that does not match its host name";
  }
  if (detail.find("local issuer") != std::string::npos ||
      detail.find("self-signed") != std::string::npos ||
      detail.find("self signed") != std::string::npos) {
    return "presented a certificate not signed by a trusted CA";
  }
  return "failed the TLS handshake";
}

}  // namespace

Result<void> checkNatsCredentials(std::string_view text, int64_t nowSeconds) {
  auto bad = [](std::string what) { return Error(ErrorCode::kInvalidArgument, std::move(what)); };
  std::vector<std::string> blocks = credentialBlocks(text);
  if (blocks.empty()) {
    return bad("not a NATS credentials file: no \"-----BEGIN NATS USER JWT-----\" block");
  }
  if (blocks.size() < 2) {
    return bad("no NKey seed: a credentials file has the user JWT, then a "
               "\"-----BEGIN USER NKEY SEED-----\" block");
  }
  const std::string& jwt = blocks[0];
  size_t dot1 = jwt.find('.');
  size_t dot2 = dot1 == std::string::npos ? dot1 : jwt.find('.', dot1 + 1);
  if (dot2 == std::string::npos || jwt.find('.', dot2 + 1) != std::string::npos) {
    return bad("the user JWT is malformed: a JWT has three parts separated by dots");
  }
  auto claimsText = base64UrlDecode(std::string_view(jwt).substr(dot1 + 1, dot2 - dot1 - 1));
  if (!claimsText) return bad("the user JWT is malformed: the claims are not base64url");
  auto claims = nlohmann::json::parse(*claimsText, nullptr, false);
  if (!claims.is_object()) return bad("the user JWT is malformed: the claims are not a JSON object");
  auto sub = claims.find("sub");
  if (sub == claims.end() || !sub->is_string() || !sub->get<std::string>().starts_with('U')) {
    return bad("the JWT is not a user's: its subject (\"sub\") is not a user public key (\"U...\")");
  }
  if (auto exp = claims.find("exp"); exp != claims.end()) {
    if (!exp->is_number_integer()) return bad("the user JWT is malformed: \"exp\" is not a number");
    if (int64_t at = exp->get<int64_t>(); at <= nowSeconds) {
      return bad(fmt::format("the user JWT expired at {}", utcText(at)));
    }
  }
  const std::string& seed = blocks[1];
  if (!seed.starts_with("SU") || seed.size() != 58 ||
      seed.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") != std::string::npos) {
    return bad("the NKey seed is malformed: a user's seed is 58 base32 characters beginning \"SU\"");
  }
  return {};
}

Result<void> checkNatsSecurity(const NatsSecurity& s) {
  if (s.certFile.empty() != s.keyFile.empty()) {
    return Error(ErrorCode::kInvalidArgument,
                 "--nats-cert and --nats-key go together: the client certificate needs its key");
  }
  if (auto ok = readable("--nats-ca", s.caFile); !ok) return ok;
  if (auto ok = readable("--nats-cert", s.certFile); !ok) return ok;
  if (auto ok = readable("--nats-key", s.keyFile); !ok) return ok;
  if (auto ok = readable("--nats-creds", s.credsFile); !ok) return ok;
  if (s.credsFile.empty()) return {};
  std::ifstream in(s.credsFile, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  if (auto ok = checkNatsCredentials(text.str(), now); !ok) {
    return Error(ErrorCode::kInvalidArgument,
                 fmt::format("--nats-creds \"{}\": {}", s.credsFile, ok.error().message()));
  }
  return {};
}

Result<natsOptions*> makeNatsOptions(const std::string& url, const std::string& name,
                                     const NatsSecurity& security) {
  if (auto ok = checkNatsSecurity(security); !ok) return ok.error();
  natsOptions* raw = nullptr;
  if (natsStatus s = natsOptions_Create(&raw); s != NATS_OK) {
    return Error(ErrorCode::kInvalidArgument, fmt::format("NATS options: {}", natsText(s)));
  }
  std::unique_ptr<natsOptions, void (*)(natsOptions*)> o(raw, natsOptions_Destroy);
  auto check = [](natsStatus s, std::string_view what) -> Result<void> {
    if (s == NATS_OK) return {};
    return Error(ErrorCode::kInvalidArgument, fmt::format("NATS {}: {}", what, natsText(s)));
  };
  if (auto ok = check(natsOptions_SetURL(o.get(), url.c_str()), "--cluster URL"); !ok) {
    return ok.error();
  }
  natsOptions_SetName(o.get(), name.c_str());
  natsOptions_SetMaxReconnect(o.get(), -1);
  natsOptions_SetReconnectWait(o.get(), 250);
  natsOptions_SetTimeout(o.get(), 2000);
  natsOptions_SetPingInterval(o.get(), 2000);
  natsOptions_SetMaxPingsOut(o.get(), 2);

  if (security.usesTls()) {
    if (auto ok = check(natsOptions_SetSecure(o.get(), true), "TLS"); !ok) return ok.error();
    if (!security.caFile.empty()) {
      auto ok = check(natsOptions_LoadCATrustedCertificates(o.get(), security.caFile.c_str()),
                      fmt::format("--nats-ca \"{}\"", security.caFile));
      if (!ok) return ok.error();
    }
    if (!security.certFile.empty()) {
      auto ok = check(natsOptions_LoadCertificatesChain(o.get(), security.certFile.c_str(),
                                                        security.keyFile.c_str()),
                      fmt::format("--nats-cert \"{}\" / --nats-key \"{}\"", security.certFile,
                                  security.keyFile));
      if (!ok) return ok.error();
    }
    // A server named by host name must present a certificate for that name; one named by
    // address is checked against the CAs only (libnats matches names, not addresses).
    if (std::string host = firstHost(url); !host.empty() && !isIpLiteral(host)) {
      auto ok = check(natsOptions_SetExpectedHostname(o.get(), host.c_str()), "host name");
      if (!ok) return ok.error();
    }
  }
  if (!security.credsFile.empty()) {
    auto ok = check(
        natsOptions_SetUserCredentialsFromFiles(o.get(), security.credsFile.c_str(), nullptr),
        fmt::format("--nats-creds \"{}\"", security.credsFile));
    if (!ok) return ok.error();
  }
  return o.release();
}

Result<void> checkNatsLogin(const std::string& url, const NatsSecurity& security) {
  if (!security.usesTls() && security.credsFile.empty()) return {};
  auto options = makeNatsOptions(url, "tern-login-check", security);
  if (!options.ok()) return options.error();
  natsOptions_SetAllowReconnect(*options, false);
  natsConnection* conn = nullptr;
  natsStatus s = natsConnection_Connect(&conn, *options);
  std::string detail = natsText(s);
  natsConnection_Destroy(conn);
  natsOptions_Destroy(*options);
  switch (s) {
    case NATS_OK:
    // Not reachable now: the node's own connections retry.
    case NATS_NO_SERVER:
    case NATS_TIMEOUT:
    case NATS_IO_ERROR:
    case NATS_CONNECTION_CLOSED:
    case NATS_CONNECTION_DISCONNECTED:
    case NATS_STALE_CONNECTION:
      return {};
    case NATS_SSL_ERROR: {
      std::string trusted = security.caFile.empty()
                                ? std::string("the system's trusted CAs")
                                : fmt::format("--nats-ca \"{}\"", security.caFile);
      return Error(ErrorCode::kUnavailable,
                   fmt::format("the NATS server at {} {} (checked against {}): {}", url,
                               tlsReason(detail), trusted, detail));
    }
    default:
      break;
  }
  bool refused = s == NATS_CONNECTION_AUTH_FAILED || s == NATS_NOT_PERMITTED ||
                 detail.find("uthorization") != std::string::npos ||
                 detail.find("uthentication") != std::string::npos;
  if (refused) {
    std::string who = !security.credsFile.empty()
                          ? fmt::format("--nats-creds \"{}\"", security.credsFile)
                          : fmt::format("--nats-cert \"{}\"", security.certFile);
    return Error(ErrorCode::kUnauthorized,
                 fmt::format("{}: the NATS server at {} refused these credentials: {}", who, url,
                             detail));
  }
  if (!security.credsFile.empty() && (s == NATS_ERR || s == NATS_INVALID_ARG)) {
    return Error(ErrorCode::kInvalidArgument,
                 fmt::format("--nats-creds \"{}\": {}", security.credsFile, detail));
  }
  return Error(ErrorCode::kUnavailable, fmt::format("NATS at {}: {}", url, detail));
}

}  // namespace tern::cluster
