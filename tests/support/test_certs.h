#pragma once
// Throwaway certificates for TLS tests, made at test time with the `openssl` command in the
// test's directory: a CA, a node certificate it signs (localhost, 127.0.0.1), one for a
// host the tests never use, one that expired long ago, a second CA and a node certificate
// it signs, and a NATS client certificate. Nothing is kept between runs.

#include <filesystem>
#include <string>
#include <vector>

namespace tern::test {

struct CertPair {
  std::filesystem::path cert;
  std::filesystem::path key;
};

class TestCerts {
 public:
  // Generates everything under `dir` (created); a failure fails the calling test.
  explicit TestCerts(std::filesystem::path dir);

  std::filesystem::path ca() const { return dir_ / "ca.pem"; }
  std::filesystem::path otherCa() const { return dir_ / "other-ca.pem"; }
  // Signed by ca() for DNS:localhost and IP:127.0.0.1.
  CertPair node() const { return {dir_ / "node.pem", dir_ / "node.key"}; }
  // Signed by ca() for DNS:elsewhere.example only.
  CertPair wrongHost() const { return {dir_ / "wrong-host.pem", dir_ / "wrong-host.key"}; }
  // Signed by ca() for DNS:localhost and IP:127.0.0.1, valid only on 1 January 2020
  // (`openssl ca -startdate -enddate`): expired.
  CertPair expired() const { return {dir_ / "expired.pem", dir_ / "expired.key"}; }
  // Signed by ca(), for a client (NATS client certificates).
  CertPair client() const { return {dir_ / "client.pem", dir_ / "client.key"}; }
  // Like node() (same names and uses) but signed by otherCa(): a node of another site.
  CertPair foreignNode() const { return {dir_ / "foreign-node.pem", dir_ / "foreign-node.key"}; }

 private:
  void run(const std::vector<std::string>& argv);
  void issue(const std::string& name, const std::string& subject, const std::string& extensions,
             const std::string& ca = "ca");
  // Like issue() (signed by ca()), with the validity period fixed (openssl's
  // YYYYMMDDHHMMSSZ times).
  void issueDated(const std::string& name, const std::string& subject,
                  const std::string& extensions, const std::string& start, const std::string& end);

  std::filesystem::path dir_;
};

}  // namespace tern::test
