#include "util/openssl_errors.h"

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/x509_vfy.h>

namespace tern {
namespace {

TEST(OpenSslErrorsTest, EachVerdictMeansWhatItSays) {
  struct Case {
    long code;
    CertificateVerdict verdict;
  };
  const Case cases[] = {
      {X509_V_OK, CertificateVerdict::kAccepted},
      {X509_V_ERR_HOSTNAME_MISMATCH, CertificateVerdict::kNameMismatch},
      {X509_V_ERR_IP_ADDRESS_MISMATCH, CertificateVerdict::kNameMismatch},
      {X509_V_ERR_CERT_HAS_EXPIRED, CertificateVerdict::kExpired},
      {X509_V_ERR_CERT_NOT_YET_VALID, CertificateVerdict::kNotYetValid},
      {X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, CertificateVerdict::kUntrusted},
      {X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT, CertificateVerdict::kUntrusted},
      {X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, CertificateVerdict::kUntrusted},
      {X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN, CertificateVerdict::kUntrusted},
      {X509_V_ERR_CERT_UNTRUSTED, CertificateVerdict::kUntrusted},
      {X509_V_ERR_CERT_SIGNATURE_FAILURE, CertificateVerdict::kUntrusted},
      {X509_V_ERR_CERT_REVOKED, CertificateVerdict::kRefused},
      {X509_V_ERR_INVALID_PURPOSE, CertificateVerdict::kRefused},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(certificateVerdict(c.code), c.verdict) << verifyResultText(c.code);
  }
  EXPECT_EQ(verifyResultText(X509_V_ERR_CERT_HAS_EXPIRED), "certificate has expired");
}

TEST(OpenSslErrorsTest, TakesTheLastReasonAndEmptiesTheQueue) {
  ERR_clear_error();
  EXPECT_EQ(takeOpenSslError("nothing went wrong"), "nothing went wrong");
  ERR_raise(ERR_LIB_X509, X509_R_CERT_ALREADY_IN_HASH_TABLE);
  ERR_raise(ERR_LIB_X509, X509_R_KEY_VALUES_MISMATCH);
  EXPECT_EQ(takeOpenSslError(), "key values mismatch");
  EXPECT_EQ(ERR_peek_last_error(), 0u);
  EXPECT_EQ(takeOpenSslError(), "unknown error");
}

}  // namespace
}  // namespace tern
