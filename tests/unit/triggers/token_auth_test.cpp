// Tokens at rest (store/token_store.h, SQLite) and their checks (triggers/token_auth.h)
// on clocks the test moves: every reason a token is refused, scopes, rate limits.

#include "triggers/token_auth.h"

#include <gtest/gtest.h>

#include <memory>

#include "store/token_store.h"
#include "test_support.h"
#include "util/sha256.h"

namespace tern::triggers {
namespace {

constexpr int64_t kSecondNs = 1000000000;
const std::string kAdmin(64, 'a');

class TokenAuthTest : public ::testing::Test {
 protected:
  test::TempDir dir;
  std::unique_ptr<store::SqliteTokenStore> store;
  int64_t unixMs = 1700000000000;
  int64_t steadyNs = 5 * kSecondNs;
  std::unique_ptr<TokenAuth> auth;

  void SetUp() override {
    auto s = store::SqliteTokenStore::open(dir.path() / "tokens.db");
    ASSERT_TRUE(s.ok()) << s.error().message();
    store = std::move(*s);
    auth = std::make_unique<TokenAuth>(store.get(), kAdmin,
                                       TokenClocks{[this] { return unixMs; }, [this] { return steadyNs; }});
  }

  std::string make(const std::string& name, std::vector<std::string> scopes, int64_t expiresIn = 0,
                   double rate = 0, double burst = 0) {
    auto t = auth->create(TokenRequest{name, std::move(scopes), expiresIn, rate, burst});
    EXPECT_TRUE(t.ok()) << (t.ok() ? "" : t.error().message());
    return t.ok() ? t->token : std::string();
  }

  // The reason of a refusal ("" when admitted).
  std::string reason(const std::string* header, const Access& need) {
    auto r = auth->authorize(header, need);
    if (auto* refusal = std::get_if<Refusal>(&r)) return refusal->reason;
    return "";
  }
  std::string reasonFor(const std::string& token, const Access& need) {
    std::string header = "Bearer " + token;
    return reason(&header, need);
  }
};

const Access kRead{Need::kRead, ""};

TEST_F(TokenAuthTest, ATokenIsShownOnceAndStoredAsItsHash) {
  std::string token = make("ci", {"deploy", "read", "deploy"});
  ASSERT_EQ(token.size(), 86u);
  EXPECT_TRUE(token.starts_with("tern_"));
  auto id = tokenIdOf(token);
  ASSERT_TRUE(id);
  auto record = store->find(*id);
  ASSERT_TRUE(record.ok() && *record);
  EXPECT_EQ((*record)->hash, sha256Hex(token));
  EXPECT_EQ((*record)->scopes, (std::vector<std::string>{"deploy", "read"}));  // duplicates dropped
  EXPECT_EQ((*record)->createdMs, unixMs);
  EXPECT_EQ(store::tokenRecordJson(**record).find(token.substr(22)), std::string::npos);  // never the secret
  // Two tokens never share a secret or an id.
  std::string other = make("ci2", {"read"});
  EXPECT_NE(other, token);
  EXPECT_NE(tokenIdOf(other), id);
}

TEST_F(TokenAuthTest, EachRefusalNamesItsReason) {
  std::string reader = make("reader", {"read"});
  std::string shortLived = make("short", {"read"}, 60);
  std::string revoked = make("gone", {"read"});
  ASSERT_TRUE(auth->revoke("gone").ok());
  std::string wrongSecret = reader.substr(0, 22) + std::string(64, '0');

  EXPECT_EQ(reason(nullptr, kRead), "missing");
  std::string basic = "Basic dXNlcjpwdw==";
  EXPECT_EQ(reason(&basic, kRead), "malformed");
  EXPECT_EQ(reasonFor("", kRead), "malformed");
  EXPECT_EQ(reasonFor("tern_xyz", kRead), "malformed");
  EXPECT_EQ(reasonFor(reader + "0", kRead), "malformed");
  EXPECT_EQ(reasonFor(std::string(64, 'b'), kRead), "unknown");  // another node's admin token
  EXPECT_EQ(reasonFor(wrongSecret, kRead), "unknown");            // the right id, the wrong secret
  EXPECT_EQ(reasonFor("tern_0123456789abcdef_" + std::string(64, '1'), kRead), "unknown");
  EXPECT_EQ(reasonFor(revoked, kRead), "revoked");
  EXPECT_EQ(reasonFor(shortLived, kRead), "");
  unixMs += 60 * 1000;
  EXPECT_EQ(reasonFor(shortLived, kRead), "expired");
  EXPECT_EQ(reasonFor(reader, kRead), "");
  EXPECT_EQ(reasonFor(kAdmin, kRead), "");
  // Wrong scope: 403 naming the scope needed.
  auto r = auth->authorizeToken(reader, Access{Need::kInvoke, "resize"});
  auto* refusal = std::get_if<Refusal>(&r);
  ASSERT_NE(refusal, nullptr);
  EXPECT_EQ(refusal->error.code(), ErrorCode::kForbidden);
  EXPECT_EQ(refusal->reason, "scope");
  EXPECT_EQ(refusal->scopeNeeded, "invoke:resize");
}

TEST_F(TokenAuthTest, ScopesDecideWhatATokenMayDo) {
  std::string invoker = make("invoker", {"invoke:resize"});
  std::string any = make("any", {"invoke:*"});
  std::string deployer = make("deployer", {"deploy"});
  struct Case {
    const std::string* token;
    Need need;
    const char* target;
    const char* reason;
  };
  const Case cases[] = {
      {&invoker, Need::kInvoke, "resize", ""},
      {&invoker, Need::kInvoke, "other", "scope"},
      {&invoker, Need::kRead, "", "scope"},
      {&invoker, Need::kInvocationRecord, "", ""},  // the route checks the job's function
      {&any, Need::kInvoke, "other", ""},
      {&any, Need::kDeploy, "", "scope"},
      {&deployer, Need::kDeploy, "", ""},
      {&deployer, Need::kAdmin, "", "scope"},
      {&deployer, Need::kInvocationRecord, "", "scope"},
      {&kAdmin, Need::kAdmin, "", ""},
  };
  for (const auto& c : cases) {
    Access access{c.need, c.target};
    EXPECT_EQ(reasonFor(*c.token, access), c.reason) << accessText(access);
  }
}

TEST_F(TokenAuthTest, ARateLimitRefusesAboveItsBurstAndSaysWhenToRetry) {
  std::string limited = make("limited", {"read"}, 0, 2, 3);  // 2/s, burst 3
  std::string free = make("free", {"read"});
  for (int i = 0; i < 3; ++i) EXPECT_EQ(reasonFor(limited, kRead), "") << i;
  auto r = auth->authorizeToken(limited, kRead);
  auto* refusal = std::get_if<Refusal>(&r);
  ASSERT_NE(refusal, nullptr);
  EXPECT_EQ(refusal->error.code(), ErrorCode::kRateLimited);
  EXPECT_EQ(refusal->retryAfterSeconds, 1);
  // Another token is not affected, nor is a refused scope counted.
  for (int i = 0; i < 20; ++i) EXPECT_EQ(reasonFor(free, kRead), "");
  EXPECT_EQ(reasonFor(limited, Access{Need::kDeploy, ""}), "scope");
  steadyNs += kSecondNs / 2;  // one request's worth
  EXPECT_EQ(reasonFor(limited, kRead), "");
  EXPECT_EQ(reasonFor(limited, kRead), "rate_limited");
  // A rate below one per second asks for a longer wait.
  std::string slow = make("slow", {"read"}, 0, 0.25);
  EXPECT_EQ(reasonFor(slow, kRead), "");
  auto s = auth->authorizeToken(slow, kRead);
  ASSERT_NE(std::get_if<Refusal>(&s), nullptr);
  EXPECT_EQ(std::get<Refusal>(s).retryAfterSeconds, 4);
}

TEST_F(TokenAuthTest, NamesAreUniqueAmongLiveTokensAndFreeAgainAfterRevoke) {
  std::string first = make("ci", {"read"});
  auto again = auth->create(TokenRequest{"ci", {"read"}, 0, 0, 0});
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code(), ErrorCode::kConflict);
  auto revoked = auth->revoke("ci");
  ASSERT_TRUE(revoked.ok());
  EXPECT_EQ(revoked->revokedMs, unixMs);
  EXPECT_EQ(auth->revoke("ci").error().code(), ErrorCode::kNotFound);
  std::string second = make("ci", {"deploy"});
  EXPECT_EQ(reasonFor(first, kRead), "revoked");
  EXPECT_EQ(reasonFor(second, Access{Need::kDeploy, ""}), "");
  auto list = auth->list();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].scopes, std::vector<std::string>{"deploy"});
}

TEST_F(TokenAuthTest, BadRequestsAreRefusedAndStoreNothing) {
  struct Case {
    TokenRequest request;
    const char* says;
  };
  const Case cases[] = {
      {{"", {"read"}, 0, 0, 0}, "token name"},
      {{"Bad", {"read"}, 0, 0, 0}, "token name"},
      {{"ok", {}, 0, 0, 0}, "at least one scope"},
      {{"ok", {"write"}, 0, 0, 0}, "unknown scope"},
      {{"ok", {"read"}, -1, 0, 0}, "expiry"},
      {{"ok", {"read"}, 0, -1, 0}, "rate"},
      {{"ok", {"read"}, 0, 0, 3}, "burst"},
  };
  for (const auto& c : cases) {
    auto r = auth->create(c.request);
    ASSERT_FALSE(r.ok()) << c.says;
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(r.error().message().find(c.says), std::string::npos) << r.error().message();
  }
  auto list = auth->list();
  ASSERT_TRUE(list.ok());
  EXPECT_TRUE(list->empty());
}

TEST_F(TokenAuthTest, RecordsSurviveReopeningTheStore) {
  std::string token = make("keep", {"read"}, 3600, 5);
  ASSERT_TRUE(auth->revoke("keep").ok());
  std::string live = make("keep", {"invoke:*"});
  store.reset();
  auth.reset();
  SetUp();
  EXPECT_EQ(reasonFor(token, kRead), "revoked");
  EXPECT_EQ(reasonFor(live, Access{Need::kInvoke, "x"}), "");
}

TEST_F(TokenAuthTest, OnlyTernCredentialsAreKeptFromFunctions) {
  std::string token = make("fn", {"invoke:*"});
  EXPECT_TRUE(auth->isCredential("Bearer " + token));
  EXPECT_TRUE(auth->isCredential("Bearer " + kAdmin));
  EXPECT_TRUE(auth->isCredential("Bearer tern_anything"));
  EXPECT_FALSE(auth->isCredential("Bearer someone-elses-token"));
  EXPECT_FALSE(auth->isCredential("Basic dXNlcjpwdw=="));
}

TEST(TokenRecordTest, RecordsRoundTripAndBadOnesAreRefused) {
  store::TokenRecord r{"0123456789abcdef", "ci", std::string(64, 'f'), {"read", "invoke:*"}, 1, 2, 3.5, 4, 0};
  auto back = store::parseTokenRecord(store::tokenRecordJson(r));
  ASSERT_TRUE(back.ok()) << back.error().message();
  EXPECT_EQ(back->id, r.id);
  EXPECT_EQ(back->scopes, r.scopes);
  EXPECT_EQ(back->rate, 3.5);
  EXPECT_EQ(back->expiresMs, 2);
  for (const char* bad : {"", "[]", "{}", R"({"id":"x"})",
                          R"({"id":"0123456789abcdef","name":"ci","hash":"ff","scopes":["read"],"created_ms":1,"expires_ms":0,"rate":0,"burst":0,"revoked_ms":0})",
                          R"({"id":"0123456789abcdef","name":"ci","hash":"ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff","scopes":[],"created_ms":1,"expires_ms":0,"rate":0,"burst":0,"revoked_ms":0})"}) {
    EXPECT_FALSE(store::parseTokenRecord(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace tern::triggers
