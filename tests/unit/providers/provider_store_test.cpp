// The providers and routes of a node in SQLite: what is put comes back whole, replacing
// by name, removal and its refusal while a route names the provider, a damaged row, and
// everything surviving a reopen.

#include "providers/provider_store.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "util/sqlite.h"
#include "test_support.h"

namespace tern::providers {
namespace {

Provider edge2() {
  Provider p;
  p.name = "edge2";
  p.kind = Kind::kTern;
  p.url = "http://10.0.0.2:8080";
  p.tokenFile = "/etc/tern/edge2.token";
  p.tier = "edge";
  p.pricePerCall = 0;
  return p;
}

Provider cloud() {
  Provider p;
  p.name = "cloud";
  p.kind = Kind::kHttp;
  p.url = "http://gateway.example:8080/function/{function}";
  p.tier = "cloud";
  p.pricePerCall = 0.0002;
  return p;
}

Route route(std::string function, std::vector<std::string> providers,
            PolicySpec::Kind kind = PolicySpec::Kind::kLowestLatency) {
  Route r;
  r.function = std::move(function);
  r.providers = std::move(providers);
  r.policy.kind = kind;
  return r;
}

void expectSameProvider(const Provider& got, const Provider& want) {
  EXPECT_EQ(got.name, want.name);
  EXPECT_EQ(got.kind, want.kind);
  EXPECT_EQ(got.url, want.url);
  EXPECT_EQ(got.tokenFile, want.tokenFile);
  EXPECT_EQ(got.tier, want.tier);
  EXPECT_DOUBLE_EQ(got.pricePerCall, want.pricePerCall);
}

void expectSameRoute(const Route& got, const Route& want) {
  EXPECT_EQ(got.function, want.function);
  EXPECT_EQ(got.providers, want.providers);
  EXPECT_EQ(got.policy.kind, want.policy.kind);
  EXPECT_DOUBLE_EQ(got.policy.boundMs, want.policy.boundMs);
  EXPECT_EQ(got.policy.function, want.policy.function);
}

class ProviderStoreTest : public ::testing::Test {
 protected:
  std::filesystem::path file() const { return dir_.path() / "providers.db"; }
  std::unique_ptr<ProviderStore> open() {
    auto s = ProviderStore::open(file());
    EXPECT_TRUE(s.ok()) << s.error().describe();
    return s.ok() ? std::move(*s) : nullptr;
  }
  test::TempDir dir_;
};

TEST_F(ProviderStoreTest, ProvidersComeBackWholeInNameOrderAndAreReplacedByName) {
  auto s = open();
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->providers()->empty());
  ASSERT_TRUE(s->putProvider(edge2()).ok());
  ASSERT_TRUE(s->putProvider(cloud()).ok());

  auto got = s->provider("edge2");
  ASSERT_TRUE(got.ok()) << got.error().describe();
  ASSERT_TRUE(got->has_value());
  expectSameProvider(**got, edge2());
  auto all = s->providers();
  ASSERT_TRUE(all.ok()) << all.error().describe();
  ASSERT_EQ(all->size(), 2u);
  expectSameProvider((*all)[0], cloud());
  expectSameProvider((*all)[1], edge2());

  Provider moved = edge2();
  moved.url = "http://10.0.0.9:8080";
  moved.tokenFile.clear();
  moved.pricePerCall = 0.5;
  ASSERT_TRUE(s->putProvider(moved).ok());
  expectSameProvider(**s->provider("edge2"), moved);
  EXPECT_EQ(s->providers()->size(), 2u);

  auto none = s->provider("nobody");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
}

TEST_F(ProviderStoreTest, LocalIsNeverStored) {
  auto s = open();
  ASSERT_TRUE(s);
  Provider local = edge2();
  local.name = "local";
  auto put = s->putProvider(local);
  ASSERT_FALSE(put.ok());
  EXPECT_EQ(put.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(s->providers()->empty());
}

TEST_F(ProviderStoreTest, RoutesComeBackWholeAndAreReplacedAndRemovedByFunction) {
  auto s = open();
  ASSERT_TRUE(s);
  Route resize = route("resize", {"local", "edge2", "cloud"});
  Route thumb = route("thumb", {"cloud"}, PolicySpec::Kind::kCheapestWithin);
  thumb.policy.boundMs = 50;
  Route ranked = route("ranked", {"edge2", "local"}, PolicySpec::Kind::kWasm);
  ranked.policy.function = "chooser";
  for (const auto& r : {resize, thumb, ranked}) ASSERT_TRUE(s->putRoute(r).ok());

  auto got = s->route("thumb");
  ASSERT_TRUE(got.ok()) << got.error().describe();
  ASSERT_TRUE(got->has_value());
  expectSameRoute(**got, thumb);
  auto all = s->routes();
  ASSERT_TRUE(all.ok()) << all.error().describe();
  ASSERT_EQ(all->size(), 3u);
  expectSameRoute((*all)[0], ranked);
  expectSameRoute((*all)[1], resize);
  expectSameRoute((*all)[2], thumb);

  Route single = route("resize", {"local"}, PolicySpec::Kind::kSingle);
  ASSERT_TRUE(s->putRoute(single).ok());
  expectSameRoute(**s->route("resize"), single);
  EXPECT_EQ(s->routes()->size(), 3u);

  EXPECT_TRUE(*s->removeRoute("resize"));
  EXPECT_FALSE(*s->removeRoute("resize"));
  EXPECT_FALSE(s->route("resize")->has_value());
  EXPECT_EQ(s->routes()->size(), 2u);
}

TEST_F(ProviderStoreTest, AProviderARouteNamesIsNotRemovedAndTheRoutesAreNamed) {
  auto s = open();
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->putProvider(edge2()).ok());
  ASSERT_TRUE(s->putProvider(cloud()).ok());
  ASSERT_TRUE(s->putRoute(route("resize", {"local", "edge2"})).ok());
  ASSERT_TRUE(s->putRoute(route("thumb", {"edge2", "cloud"})).ok());
  ASSERT_TRUE(s->putRoute(route("echo", {"local"})).ok());

  auto refused = s->removeProvider("edge2");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), ErrorCode::kConflict);
  EXPECT_NE(refused.error().message().find("resize"), std::string::npos) << refused.error().message();
  EXPECT_NE(refused.error().message().find("thumb"), std::string::npos) << refused.error().message();
  EXPECT_EQ(refused.error().message().find("echo"), std::string::npos) << refused.error().message();
  EXPECT_TRUE(s->provider("edge2")->has_value());

  // Once no route names it, it goes; a second removal finds nothing.
  ASSERT_TRUE(s->putRoute(route("resize", {"local"})).ok());
  ASSERT_TRUE(*s->removeRoute("thumb"));
  auto removed = s->removeProvider("edge2");
  ASSERT_TRUE(removed.ok()) << removed.error().describe();
  EXPECT_TRUE(*removed);
  EXPECT_FALSE(s->provider("edge2")->has_value());
  EXPECT_FALSE(*s->removeProvider("edge2"));
  EXPECT_TRUE(*s->removeProvider("cloud"));
  EXPECT_FALSE(*s->removeProvider("never-there"));
}

TEST_F(ProviderStoreTest, EverythingSurvivesReopening) {
  {
    auto s = open();
    ASSERT_TRUE(s);
    ASSERT_TRUE(s->putProvider(edge2()).ok());
    ASSERT_TRUE(s->putProvider(cloud()).ok());
    ASSERT_TRUE(s->putRoute(route("resize", {"local", "edge2"}, PolicySpec::Kind::kRoundRobin)).ok());
    ASSERT_TRUE(*s->removeProvider("cloud"));
  }
  auto s = open();
  ASSERT_TRUE(s);
  auto all = s->providers();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 1u);
  expectSameProvider((*all)[0], edge2());
  auto r = s->route("resize");
  ASSERT_TRUE(r.ok() && r->has_value());
  expectSameRoute(**r, route("resize", {"local", "edge2"}, PolicySpec::Kind::kRoundRobin));
  // The conflict rule holds across the reopen too.
  auto refused = s->removeProvider("edge2");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code(), ErrorCode::kConflict);
}

TEST_F(ProviderStoreTest, ADamagedRowIsAnInternalErrorForItselfAndHidesNoOtherRow) {
  {
    auto s = open();
    ASSERT_TRUE(s);
    ASSERT_TRUE(s->putProvider(edge2()).ok());
    ASSERT_TRUE(s->putRoute(route("resize", {"local"})).ok());
  }
  {
    auto db = Database::open(file());
    ASSERT_TRUE(db.ok()) << db.error().describe();
    ASSERT_TRUE((*db)->exec("INSERT INTO providers (name, json) VALUES ('broken', '{not json')").ok());
    ASSERT_TRUE((*db)->exec("INSERT INTO routes (function, json) VALUES ('bad', '[1, 2]')").ok());
  }
  auto s = open();
  ASSERT_TRUE(s);
  auto broken = s->provider("broken");
  ASSERT_FALSE(broken.ok());
  EXPECT_EQ(broken.error().code(), ErrorCode::kInternal);
  EXPECT_NE(broken.error().message().find("broken"), std::string::npos) << broken.error().message();
  auto all = s->providers();
  ASSERT_TRUE(all.ok()) << all.error().describe();
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].name, "edge2");
  auto routes = s->routes();
  ASSERT_TRUE(routes.ok());
  ASSERT_EQ(routes->size(), 1u);
  EXPECT_EQ((*routes)[0].function, "resize");
  EXPECT_EQ(s->route("bad").error().code(), ErrorCode::kInternal);
  // Damaged rows stay removable by name.
  EXPECT_TRUE(*s->removeProvider("broken"));
  EXPECT_TRUE(*s->removeRoute("bad"));
}

TEST_F(ProviderStoreTest, AnUnusableFileIsAnError) {
  std::filesystem::create_directory(dir_.path() / "dir.db");
  auto s = ProviderStore::open(dir_.path() / "dir.db");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code(), ErrorCode::kIo);
}

}  // namespace
}  // namespace tern::providers
