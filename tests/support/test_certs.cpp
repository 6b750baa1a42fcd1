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
  issueDated("expired", "/CN=localhost",
             "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n",
             "20200101000000Z", "20200102000000Z");
  issue("foreign-node", "/CN=localhost",
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n",
        "other-ca");
}

void TestCerts::issueDated(const std::string& name, const std::string& subject,
                           const std::string& extensions, const std::string& start,
                           const std::string& end) {
  fs::path key = dir_ / (name + ".key"), csr = dir_ / (name + ".csr"), ext = dir_ / (name + ".ext");
  std::ofstream(ext) << extensions;
  // `openssl x509` takes only a number of days from now; `openssl ca` takes both dates,
  // with a configuration naming its (empty) database.
  fs::path db = dir_ / (name + "-ca");
  fs::create_directories(db);
  std::ofstream(db / "index.txt");
  std::ofstream(db / "serial") << "01\n";
  std::ofstream(db / "ca.cnf") << "[ca]\ndefault_ca = test\n[test]\ndatabase = " << (db / "index.txt").string()
                               << "\nnew_certs_dir = " << db.string() << "\nserial = "
                               << (db / "serial").string()
                               << "\nunique_subject = no\ndefault_md = sha256\npolicy = any\n[any]\ncommonName = supplied\n";
  run({"openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
       "-keyout", key.string(), "-out", csr.string(), "-subj", subject});
  run({"openssl", "ca", "-batch", "-notext", "-config", (db / "ca.cnf").string(), "-cert",
       ca().string(), "-keyfile", (dir_ / "ca.key").string(), "-in", csr.string(), "-out",
       (dir_ / (name + ".pem")).string(), "-startdate", start, "-enddate", end, "-extfile",
       ext.string()});
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
