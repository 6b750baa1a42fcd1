#pragma once
// TLS configurations for tern's HTTP server and client, loaded and checked once (at start-up)
// and shared by every connection. OpenSSL and Asio stay behind this header: callers hold
// them as opaque shared pointers and hand them to ServerOptions or HttpClientOptions.

#include <memory>
#include <string>

#include "util/error.h"

namespace tern::http {

// A server's identity: its certificate chain and private key (PEM), TLS 1.2 at least.
struct ServerTls;
// How a client verifies the servers it talks to: against the system's trusted CAs, or
// only those of one CA file (PEM), always checking the host name (or IP address) of the URL.
struct ClientTls;

// Loads a certificate chain and its private key. Errors: kInvalidArgument naming the file
// that is missing, unreadable or not PEM, or saying that the key does not match the
// certificate.
Result<std::shared_ptr<const ServerTls>> loadServerTls(const std::string& certFile,
                                                       const std::string& keyFile);

// A client configuration trusting the CAs of `caFile` (PEM), or the system's trusted CAs
// when it is empty. Errors: kInvalidArgument naming a CA file that is missing, unreadable
// or holds no certificate.
Result<std::shared_ptr<const ClientTls>> loadClientTls(const std::string& caFile);

}  // namespace tern::http
