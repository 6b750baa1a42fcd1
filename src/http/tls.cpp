#include "http/tls_context.h"

#include <boost/asio/ip/address.hpp>
#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "util/openssl_errors.h"

namespace tern::http {

namespace asio = boost::asio;

namespace {

Error badFile(std::string_view what, const std::string& file, std::string_view why) {
  return Error(ErrorCode::kInvalidArgument, fmt::format("{} \"{}\": {}", what, file, why));
}

// The file opened for reading, or the error naming it.
Result<std::shared_ptr<FILE>> openFile(std::string_view what, const std::string& file) {
  if (file.empty()) return badFile(what, file, "no file given");
  FILE* f = std::fopen(file.c_str(), "re");
  if (!f) return badFile(what, file, fmt::format("cannot read it: {}", std::strerror(errno)));
  return std::shared_ptr<FILE>(f, [](FILE* p) { std::fclose(p); });
}

bool isIpAddress(const std::string& host) {
  boost::system::error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

// Gives `ctx` the certificate chain of `certFile` and the private key of `keyFile`.
Result<void> useIdentity(SSL_CTX* ctx, const std::string& certFile, const std::string& keyFile) {
  ERR_clear_error();
  auto cert = openFile("certificate file", certFile);
  if (!cert) return cert.error();
  X509* leaf = PEM_read_X509(cert->get(), nullptr, nullptr, nullptr);
  if (!leaf) {
    return badFile("certificate file", certFile,
                   fmt::format("holds no PEM certificate ({})", takeOpenSslError()));
  }
  X509_free(leaf);
  if (SSL_CTX_use_certificate_chain_file(ctx, certFile.c_str()) != 1) {
    return badFile("certificate file", certFile,
                   fmt::format("cannot use its certificate chain ({})", takeOpenSslError()));
  }

  auto key = openFile("key file", keyFile);
  if (!key) return key.error();
  EVP_PKEY* pkey = PEM_read_PrivateKey(key->get(), nullptr, nullptr, nullptr);
  if (!pkey) {
    return badFile("key file", keyFile,
                   fmt::format("holds no unencrypted PEM private key ({})", takeOpenSslError()));
  }
  int used = SSL_CTX_use_PrivateKey(ctx, pkey);
  EVP_PKEY_free(pkey);
  if (used != 1 || SSL_CTX_check_private_key(ctx) != 1) {
    ERR_clear_error();
    return badFile("key file", keyFile,
                   fmt::format("does not match the certificate in \"{}\"", certFile));
  }
  return {};
}

// Makes `ctx` trust the CAs of `caFile` (PEM, at least one certificate).
Result<void> trustCaFile(SSL_CTX* ctx, const std::string& caFile) {
  ERR_clear_error();
  auto file = openFile("CA file", caFile);
  if (!file) return file.error();
  X509* first = PEM_read_X509(file->get(), nullptr, nullptr, nullptr);
  if (!first) {
    return badFile("CA file", caFile,
                   fmt::format("holds no PEM certificate ({})", takeOpenSslError()));
  }
  X509_free(first);
  if (SSL_CTX_load_verify_locations(ctx, caFile.c_str(), nullptr) != 1) {
    return badFile("CA file", caFile,
                   fmt::format("cannot load its certificates ({})", takeOpenSslError()));
  }
  return {};
}

}  // namespace

Result<std::shared_ptr<const ServerTls>> loadServerTls(const std::string& certFile,
                                                       const std::string& keyFile) {
  auto tls = std::make_shared<ServerTls>();
  SSL_CTX* ctx = tls->ctx.native_handle();
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  if (auto ok = useIdentity(ctx, certFile, keyFile); !ok.ok()) return ok.error();
  return std::shared_ptr<const ServerTls>(std::move(tls));
}

Result<std::shared_ptr<const ClientTls>> loadClientTls(const std::string& caFile) {
  auto tls = std::make_shared<ClientTls>();
  tls->caFile = caFile;
  SSL_CTX* ctx = tls->ctx.native_handle();
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  ERR_clear_error();
  if (caFile.empty()) {
    if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
      return Error(ErrorCode::kInvalidArgument,
                   fmt::format("cannot load the system's trusted CAs ({})", takeOpenSslError()));
    }
    return std::shared_ptr<const ClientTls>(std::move(tls));
  }
  if (auto ok = trustCaFile(ctx, caFile); !ok.ok()) return ok.error();
  return std::shared_ptr<const ClientTls>(std::move(tls));
}

LinkTls::LinkTls() : ctx(SSL_CTX_new(TLS_method())) {}
LinkTls::~LinkTls() { SSL_CTX_free(ctx); }

Result<std::shared_ptr<const LinkTls>> loadLinkTls(const std::string& certFile,
                                                   const std::string& keyFile,
                                                   const std::string& caFile) {
  auto tls = std::make_shared<LinkTls>();
  tls->caFile = caFile;
  SSL_CTX* ctx = tls->ctx;
  if (!ctx) {
    return Error(ErrorCode::kInternal,
                 fmt::format("cannot make a TLS context ({})", takeOpenSslError()));
  }
  SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
  // Both sides present a certificate; one that is missing or does not chain to the CA ends
  // the handshake. Session tickets are not sent: links are long-lived and never resumed.
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  SSL_CTX_set_num_tickets(ctx, 0);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (auto ok = useIdentity(ctx, certFile, keyFile); !ok.ok()) return ok.error();
  if (caFile.empty()) return badFile("CA file", caFile, "no file given");
  if (auto ok = trustCaFile(ctx, caFile); !ok.ok()) return ok.error();
  return std::shared_ptr<const LinkTls>(std::move(tls));
}

bool expectHost(SSL* ssl, const std::string& host) {
  if (isIpAddress(host)) {
    // No SNI for an address (RFC 6066); the certificate must name it as an IP address.
    return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host.c_str()) == 1;
  }
  SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  return SSL_set_tlsext_host_name(ssl, host.c_str()) == 1 && SSL_set1_host(ssl, host.c_str()) == 1;
}

std::string handshakeFailure(SSL* ssl, const std::string& host, const ClientTls& tls,
                             const std::string& openSslReason) {
  long verdict = SSL_get_verify_result(ssl);
  std::string trusted =
      tls.caFile.empty() ? std::string("the system's trusted CAs")
                         : fmt::format("the CA file \"{}\"", tls.caFile);
  switch (certificateVerdict(verdict)) {
    case CertificateVerdict::kAccepted:
      break;
    case CertificateVerdict::kNameMismatch:
      return fmt::format("the server's certificate does not match the host name \"{}\"", host);
    case CertificateVerdict::kExpired:
      return "the server's certificate has expired";
    case CertificateVerdict::kNotYetValid:
      return "the server's certificate is not valid yet";
    case CertificateVerdict::kUntrusted:
      return fmt::format("the server's certificate is not signed by a CA in {} ({})", trusted,
                         verifyResultText(verdict));
    case CertificateVerdict::kRefused:
      return fmt::format("the server's certificate was refused: {}", verifyResultText(verdict));
  }
  if (openSslReason.find("wrong version number") != std::string::npos ||
      openSslReason.find("packet length too long") != std::string::npos ||
      openSslReason.find("stream truncated") != std::string::npos ||
      openSslReason.find("unexpected eof") != std::string::npos ||
      openSslReason.find("End of file") != std::string::npos) {
    return fmt::format("the server does not speak TLS on this port (a plain http:// node?): {}",
                       openSslReason);
  }
  return openSslReason;
}

}  // namespace tern::http
