// checkNatsCredentials (src/cluster/nats_security.h), the start-up check of `ternd
// --nats-creds` files, from a table: credentials made with real keys (nats_auth.h) and
// files wrong in each way a user can get one wrong. Whether a server accepts the
// credentials is tested against nats-server in operator mode (cluster_test).
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <string>
#include <tuple>
#include <vector>

#include "cluster/nats_security.h"
#include "nats_auth.h"

namespace tern {
namespace {

constexpr int64_t kNow = 1'800'000'000;  // 2027-01-15 08:00:00 UTC

std::string creds(const std::string& jwt, const std::string& seed) {
  return fmt::format(
      "-----BEGIN NATS USER JWT-----\n{}\n------END NATS USER JWT------\n\n"
      "************************* IMPORTANT *************************\n\n"
      "-----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n",
      jwt, seed);
}

TEST(NatsCredentialsTest, AcceptsWellFormedCredentialsAndSaysWhatIsWrongWithOthers) {
  test::NKey account = test::NKey::generate(test::NKeyRole::kAccount);
  test::NKey user = test::NKey::generate(test::NKeyRole::kUser);
  const std::string jwt = test::userJwt(user, account);
  const std::string accountJwt =
      test::accountJwt(account, account, test::AccountJetStream::kDisabled);
  struct Case {
    std::string name;
    std::string text;
    std::string error;  // empty: accepted
  };
  const std::vector<Case> cases{
      {"valid", creds(jwt, user.seed()), ""},
      {"valid with CRLF lines", "-----BEGIN NATS USER JWT-----\r\n" + jwt +
                                    "\r\n------END NATS USER JWT------\r\n"
                                    "-----BEGIN USER NKEY SEED-----\r\n" + user.seed() +
                                    "\r\n------END USER NKEY SEED------\r\n",
       ""},
      {"expires later", creds(test::userJwt(user, account, kNow + 60), user.seed()), ""},
      {"empty", "", "not a NATS credentials file"},
      {"a PEM key", "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n",
       "no NKey seed"},
      {"no seed", "-----BEGIN NATS USER JWT-----\n" + jwt + "\n------END NATS USER JWT------\n",
       "no NKey seed"},
      {"two parts", creds("eyJhIjoxfQ.eyJhIjoxfQ", user.seed()), "three parts"},
      {"claims not base64url", creds("eyJhIjoxfQ.!!!.c2ln", user.seed()), "not base64url"},
      {"claims not an object",
       creds("eyJhIjoxfQ." + test::base64UrlNoPadding("[1,2]") + ".c2ln", user.seed()),
       "not a JSON object"},
      {"an account's JWT", creds(accountJwt, user.seed()), "the JWT is not a user's"},
      {"expired", creds(test::userJwt(user, account, 1'577'836'800), user.seed()),
       "the user JWT expired at 2020-01-01 00:00:00 UTC"},
      {"expires now", creds(test::userJwt(user, account, kNow), user.seed()), "expired at"},
      {"an account's seed", creds(jwt, account.seed()), "the NKey seed is malformed"},
      {"a short seed", creds(jwt, user.seed().substr(0, 40)), "the NKey seed is malformed"},
      {"a seed in lower case", creds(jwt, "su" + user.seed().substr(2)),
       "the NKey seed is malformed"},
  };
  for (const auto& c : cases) {
    auto r = cluster::checkNatsCredentials(c.text, kNow);
    if (c.error.empty()) {
      EXPECT_TRUE(r.ok()) << c.name << ": " << r.error().message();
    } else {
      ASSERT_FALSE(r.ok()) << c.name;
      EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument) << c.name;
      EXPECT_NE(r.error().message().find(c.error), std::string::npos)
          << c.name << ": " << r.error().message();
    }
  }
}

// The nkey encodings the credentials above rest on, checked against values computed by
// hand from RFC 4648 and the CRC-16/XMODEM definition.
TEST(NatsCredentialsTest, NkeyEncodingsFollowTheirDefinitions) {
  EXPECT_EQ(test::base32NoPadding(""), "");
  EXPECT_EQ(test::base32NoPadding("f"), "MY");
  EXPECT_EQ(test::base32NoPadding("foobar"), "MZXW6YTBOI");
  EXPECT_EQ(test::base64UrlNoPadding("\xfb\xff"), "-_8");
  EXPECT_EQ(test::base64UrlNoPadding("foob"), "Zm9vYg");
  EXPECT_EQ(test::nkeyCrc16("123456789"), 0x31C3);  // the XMODEM check value
  for (auto [role, pub, seed] : std::vector<std::tuple<test::NKeyRole, char, std::string>>{
           {test::NKeyRole::kOperator, 'O', "SO"},
           {test::NKeyRole::kAccount, 'A', "SA"},
           {test::NKeyRole::kUser, 'U', "SU"}}) {
    test::NKey k = test::NKey::generate(role);
    EXPECT_EQ(k.publicKey().size(), 56u);
    EXPECT_EQ(k.publicKey()[0], pub);
    EXPECT_EQ(k.seed().size(), 58u);
    EXPECT_EQ(k.seed().substr(0, 2), seed);
  }
}

}  // namespace
}  // namespace tern
