#include "cluster/nats_options.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <string_view>

#include "cluster/nats_text.h"

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

}  // namespace

Result<void> checkNatsSecurity(const NatsSecurity& s) {
  if (s.certFile.empty() != s.keyFile.empty()) {
    return Error(ErrorCode::kInvalidArgument,
                 "--nats-cert and --nats-key go together: the client certificate needs its key");
  }
  if (auto ok = readable("--nats-ca", s.caFile); !ok) return ok;
  if (auto ok = readable("--nats-cert", s.certFile); !ok) return ok;
  if (auto ok = readable("--nats-key", s.keyFile); !ok) return ok;
  return readable("--nats-creds", s.credsFile);
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

}  // namespace tern::cluster
