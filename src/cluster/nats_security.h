#pragma once
// What secures a NATS connection of ternd (applied by makeNatsOptions, nats_options.h);
// without nats.h, so the services' option structs can hold it.

#include <cstdint>
#include <string>
#include <string_view>

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

// Checks that the files named exist and can be read, that a certificate comes with its
// key, and that the credentials file is one (checkNatsCredentials, at the system clock's
// time). Errors: kInvalidArgument naming the flag and the file.
Result<void> checkNatsSecurity(const NatsSecurity& security);

// Checks the text of a NATS credentials file, read as libnats reads it (blocks between
// "-----BEGIN ...-----" and "------END ...------" lines): the first block is a user JWT
// (three base64url parts; claims a JSON object whose "sub" is a user's public key, "U...",
// and whose "exp", when it has one, is after `nowSeconds`), the second a user's NKey seed
// ("SU...", 58 base32 characters). It checks the form only: whether the JWT's issuer is an
// account the server trusts is for the server to say (checkNatsLogin). Errors:
// kInvalidArgument saying what is wrong, without the file's name.
Result<void> checkNatsCredentials(std::string_view text, int64_t nowSeconds);

// With any security configured, connects once to `url` as the node's connections will
// (makeNatsOptions, no retry) and closes again, so that a server that refuses the node
// stops it at start instead of leaving it retrying for ever: a server that refuses the
// credentials or the client certificate (kUnauthorized, naming --nats-creds or
// --nats-cert and the file), a server certificate the node refuses (kUnavailable, naming
// --nats-ca and saying why: expired, another CA, another host). A server that cannot be
// reached (refused, timed out) is not an error: the node starts and its connections retry.
// Without security, nothing is checked.
Result<void> checkNatsLogin(const std::string& url, const NatsSecurity& security);

}  // namespace tern::cluster
