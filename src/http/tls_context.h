#pragma once
// Internal to src/http: what ServerTls and ClientTls hold (tls.h). Included only by the
// library's Beast translation units.

#include <boost/asio/ssl/context.hpp>

#include <string>

#include "http/tls.h"

namespace tern::http {

struct ServerTls {
  boost::asio::ssl::context ctx{boost::asio::ssl::context::tls_server};
};

struct ClientTls {
  boost::asio::ssl::context ctx{boost::asio::ssl::context::tls_client};
  std::string caFile;  // empty: the system's trusted CAs
};

// Sets SNI and the expected host name (or IP address) of the certificate on `ssl`; false
// when OpenSSL refuses them.
bool expectHost(SSL* ssl, const std::string& host);

// Why a client's TLS handshake failed, for an error message: the certificate check's
// verdict when it failed (untrusted, expired, wrong host name), else OpenSSL's reason.
std::string handshakeFailure(SSL* ssl, const std::string& host, const ClientTls& tls,
                             const std::string& openSslReason);

}  // namespace tern::http
