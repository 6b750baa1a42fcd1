#pragma once
// OpenSSL's failures in words: one copy for the HTTPS server and client (src/http/tls.cpp)
// and the direct links between nodes (src/cluster/peer_socket.cpp). Each caller words a
// refused certificate for its own side ("the server's certificate ...", "its certificate
// ..."); what a verdict means is decided here, once.

#include <cstdint>
#include <string>
#include <string_view>

namespace tern {

// The reason of the last error on this thread's OpenSSL error queue, or `none` when the
// queue is empty or the error has no reason text. The queue is emptied either way.
std::string takeOpenSslError(std::string_view none = "unknown error");

// What a certificate check's verdict (SSL_get_verify_result, an X509_V_* code) means.
enum class CertificateVerdict : uint8_t {
  kAccepted,
  kNameMismatch,  // it does not name the host name or IP address that was asked for
  kExpired,
  kNotYetValid,
  kUntrusted,     // it does not chain to a trusted CA (unknown issuer, self-signed, bad signature)
  kRefused,       // any other reason (verifyResultText says which)
};
CertificateVerdict certificateVerdict(long verifyResult);

// OpenSSL's text for a verdict ("certificate has expired", ...).
std::string verifyResultText(long verifyResult);

}  // namespace tern
