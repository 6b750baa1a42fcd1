#include "test_certs.h"

#include <gtest/gtest.h>

#include <fstream>

#include "util/subprocess.h"

namespace tern::test {

namespace fs = std::filesystem;

TestCerts::TestCerts(fs::path dir) : dir_(std::move(dir)) {
  fs::create_directories(dir_);
  for (const char* ca : {"ca", "other-ca"}) {
    run({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", (dir_ / (std::string(ca) + ".key")).string(), "-out",
         (dir_ / (std::string(ca) + ".pem")).string(), "-days", "2", "-subj",
         std::string("/CN=tern test ") + ca});
  }
  issue("node", "/CN=localhost",
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n");
  issue("wrong-host", "/CN=elsewhere.example",
        "subjectAltName=DNS:elsewhere.example\nextendedKeyUsage=serverAuth\n");
  issue("client", "/CN=tern test client", "extendedKeyUsage=clientAuth\n");
  issue("foreign-node", "/CN=localhost",
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n",
        "other-ca");
}

void TestCerts::issue(const std::string& name, const std::string& subject,
                      const std::string& extensions, const std::string& ca) {
  fs::path key = dir_ / (name + ".key"), csr = dir_ / (name + ".csr"), ext = dir_ / (name + ".ext");
  std::ofstream(ext) << extensions;
  run({"openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
       "-keyout", key.string(), "-out", csr.string(), "-subj", subject});
  run({"openssl", "x509", "-req", "-in", csr.string(), "-CA", (dir_ / (ca + ".pem")).string(),
       "-CAkey", (dir_ / (ca + ".key")).string(), "-CAcreateserial", "-out", (dir_ / (name + ".pem")).string(),
       "-days", "2", "-extfile", ext.string()});
}

void TestCerts::run(const std::vector<std::string>& argv) {
  auto r = runSubprocess(argv);
  ASSERT_TRUE(r.ok()) << "cannot run openssl: " << r.error().message();
  ASSERT_EQ(r->exitStatus, 0) << r->output;
}

}  // namespace tern::test
