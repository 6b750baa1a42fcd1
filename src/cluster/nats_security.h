#pragma once
// What secures a NATS connection of ternd (applied by makeNatsOptions, nats_options.h);
// without nats.h, so the services' option structs can hold it.

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

}  // namespace tern::cluster
