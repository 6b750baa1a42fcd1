#include "util/openssl_errors.h"

#include <openssl/err.h>
#include <openssl/x509_vfy.h>

namespace tern {

std::string takeOpenSslError(std::string_view none) {
  unsigned long e = ERR_peek_last_error();
  const char* reason = e != 0 ? ERR_reason_error_string(e) : nullptr;
  std::string why = reason ? std::string(reason) : std::string(none);
  ERR_clear_error();
  return why;
}

CertificateVerdict certificateVerdict(long verifyResult) {
  switch (verifyResult) {
    case X509_V_OK:
      return CertificateVerdict::kAccepted;
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
      return CertificateVerdict::kNameMismatch;
    case X509_V_ERR_CERT_HAS_EXPIRED:
      return CertificateVerdict::kExpired;
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return CertificateVerdict::kNotYetValid;
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_CERT_UNTRUSTED:
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
      return CertificateVerdict::kUntrusted;
    default:
      return CertificateVerdict::kRefused;
  }
}

std::string verifyResultText(long verifyResult) {
  return X509_verify_cert_error_string(verifyResult);
}

}  // namespace tern
