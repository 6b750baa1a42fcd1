#pragma once
// The one place where ternd's NATS connections are configured (the cluster's, the async
// job stream's and the stream topics' JetStream connection): server URL, name, tern's
// reconnect policy, and the connection's security (docs/design/tls.md, "NATS").

#include <nats/nats.h>

#include <string>

#include "util/error.h"

namespace tern::cluster {

// How ternd authenticates to NATS and verifies it (ternd --nats-ca, --nats-cert,
// --nats-key, --nats-creds). All empty: plain NATS, as a nats:// URL says.
struct NatsSecurity {
  std::string caFile;     // TLS, the server verified against these CAs (PEM)
  std::string certFile;   // TLS client certificate (PEM), with keyFile
  std::string keyFile;
  std::string credsFile;  // NATS credentials file (user JWT and NKey seed)

  bool usesTls() const { return !caFile.empty() || !certFile.empty(); }
};

// Checks that the files named exist and can be read, and that a certificate comes with its
// key. Errors: kInvalidArgument naming the flag and the file.
Result<void> checkNatsSecurity(const NatsSecurity& security);

// A new natsOptions for one connection to `url` (one URL or several separated by commas)
// named `name`: tern's reconnect policy (forever, every 250 ms; 2 s connect timeout; a ping
// every 2 s, two unanswered close the connection) and `security` applied: TLS required
// with the server's certificate verified against caFile (and its host name, for a URL
// naming the server by name), the client certificate, the credentials file. The caller
// adds its callbacks, connects and destroys the options. Errors: kInvalidArgument saying
// which setting libnats refused and why.
Result<natsOptions*> makeNatsOptions(const std::string& url, const std::string& name,
                                     const NatsSecurity& security);

}  // namespace tern::cluster
