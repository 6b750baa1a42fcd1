#pragma once
// TLS configurations for tern's HTTP server and client, loaded and checked once (at start-up)
// and shared by every connection. OpenSSL and Asio stay behind this header: callers hold
// them as opaque shared pointers and hand them to ServerOptions or HttpClientOptions.

#include <memory>
#include <string>

#include "util/error.h"

struct ssl_ctx_st;  // OpenSSL's SSL_CTX

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

// Mutual TLS between the nodes of a site, on their direct links (cluster/peer_link.h,
// docs/design/tls.md): the node's certificate chain and key serve it as server and as
// client, and the other node's certificate must chain to a CA of `caFile` (the site's CA).
// TLS 1.3 only: both ends are tern nodes.
struct LinkTls {
  LinkTls();
  ~LinkTls();
  LinkTls(const LinkTls&) = delete;
  LinkTls& operator=(const LinkTls&) = delete;

  ssl_ctx_st* ctx;  // SSL_CTX, used by the link's code to make one SSL per connection
  std::string caFile;
};

// Loads the identity (as loadServerTls) and the CAs (as loadClientTls, but a CA file is
// required). Errors: kInvalidArgument naming the file and what is wrong with it.
Result<std::shared_ptr<const LinkTls>> loadLinkTls(const std::string& certFile,
                                                   const std::string& keyFile,
                                                   const std::string& caFile);

}  // namespace tern::http
