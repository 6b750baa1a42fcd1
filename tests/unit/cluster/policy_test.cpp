#include "cluster/policy.h"

#include <gtest/gtest.h>

#include "cluster/function_record.h"
#include "store/deployments.h"

namespace tern::cluster {
namespace {

using Placement = store::FunctionSettings::Placement;

TEST(PlacementTest, MatchesFromATable) {
  NodeIdentity edgeA{"a", Tier::kEdge, {"gpu=yes", "zone=1"}};
  NodeIdentity cloud{"c", Tier::kCloud, {}};
  struct Case {
    Placement placement;
    const NodeIdentity* node;
    bool matches;
  };
  const Case cases[] = {
      {{}, &edgeA, true},
      {{}, &cloud, true},
      {{{"a"}, "", {}}, &edgeA, true},
      {{{"b"}, "", {}}, &edgeA, false},
      {{{"b", "a"}, "", {}}, &edgeA, true},
      {{{}, "edge", {}}, &edgeA, true},
      {{{}, "edge", {}}, &cloud, false},
      {{{}, "cloud", {}}, &cloud, true},
      {{{}, "", {"gpu=yes"}}, &edgeA, true},
      {{{}, "", {"gpu=yes", "zone=1"}}, &edgeA, true},
      {{{}, "", {"gpu=yes", "zone=2"}}, &edgeA, false},
      {{{}, "", {"gpu=no"}}, &edgeA, false},
      {{{}, "", {"gpu=yes"}}, &cloud, false},
      {{{"a"}, "cloud", {}}, &edgeA, false},
  };
  for (size_t i = 0; i < std::size(cases); ++i) {
    EXPECT_EQ(placementMatches(cases[i].placement, *cases[i].node), cases[i].matches) << "case " << i;
  }
}

TEST(PlacementTest, ChecksNames) {
  EXPECT_TRUE(store::checkPlacement({{"site-1"}, "edge", {"k=v"}}).ok());
  EXPECT_FALSE(store::checkPlacement({{"Site"}, "", {}}).ok());
  EXPECT_FALSE(store::checkPlacement({{""}, "", {}}).ok());
  EXPECT_FALSE(store::checkPlacement({{}, "fog", {}}).ok());
  EXPECT_FALSE(store::checkPlacement({{}, "", {"novalue"}}).ok());
  EXPECT_FALSE(store::checkPlacement({{}, "", {"=v"}}).ok());
}

Member member(std::string id, std::string site, Tier tier, uint32_t slots, uint32_t running,
              uint32_t queued, std::vector<std::string> functions,
              MemberState state = MemberState::kAlive) {
  Member m;
  m.info.id = std::move(id);
  m.info.identity = NodeIdentity{std::move(site), tier, {}};
  m.info.load = NodeLoad{slots, running, queued, 0};
  for (auto& f : functions) m.info.functions[f] = 0;
  m.state = state;
  return m;
}

TEST(RoutingTest, RanksPeersFromATable) {
  const std::vector<Member> view = {
      member("self", "a", Tier::kEdge, 2, 0, 0, {"f"}, MemberState::kSelf),
      member("a-busy", "a", Tier::kEdge, 2, 2, 3, {"f"}),
      member("a-free", "a", Tier::kEdge, 2, 0, 0, {"f"}),
      member("a-other", "a", Tier::kEdge, 8, 0, 0, {"g"}),
      member("b-free", "b", Tier::kEdge, 4, 0, 0, {"f"}),
      member("c-free", "c", Tier::kCloud, 64, 0, 0, {"f"}),
      member("a-silent", "a", Tier::kEdge, 8, 0, 0, {"f"}, MemberState::kSuspect),
  };
  struct Case {
    RouteQuery query;
    std::vector<std::string> expected;
  };
  const Case cases[] = {
      // Same site first (most spare first), other edge sites, the cloud, suspects last.
      {{"f", "self", "a", CapacityNeed::kAny, {}},
       {"a-free", "a-busy", "b-free", "c-free", "a-silent"}},
      // Spill: only peers with spare capacity.
      {{"f", "self", "a", CapacityNeed::kSpare, {}}, {"a-free", "b-free", "c-free", "a-silent"}},
      // Peers already tried are skipped.
      {{"f", "self", "a", CapacityNeed::kSpare, {"a-free", "b-free"}}, {"c-free", "a-silent"}},
      // From site b, b is the local site.
      {{"f", "self", "b", CapacityNeed::kAny, {}},
       {"b-free", "a-free", "a-busy", "c-free", "a-silent"}},
      // Nobody serves h.
      {{"h", "self", "a", CapacityNeed::kAny, {}}, {}},
      {{"g", "self", "a", CapacityNeed::kAny, {}}, {"a-other"}},
  };
  for (size_t i = 0; i < std::size(cases); ++i) {
    EXPECT_EQ(rankPeers(view, cases[i].query), cases[i].expected) << "case " << i;
  }
}

TEST(MembershipTest, SilentNodesBecomeSuspectThenLeave) {
  MemberView view("self", /*heartbeatMs=*/100, /*ttlMs=*/500);
  NodeInfo self;
  self.id = "self";
  view.setSelf(self, 0);
  NodeInfo peer;
  peer.id = "peer";
  peer.startedAtMs = 7;
  peer.sequence = 1;
  view.observe(peer, 1000);
  auto at = [&](int64_t now) {
    auto ms = view.members(now);
    return ms.size() == 2 ? memberStateName(ms[1].state) : "gone";
  };
  EXPECT_EQ(std::string(at(1100)), "alive");
  EXPECT_EQ(std::string(at(1250)), "suspect");
  EXPECT_EQ(std::string(at(1600)), "gone");
  EXPECT_TRUE(view.expire(1400).empty());
  EXPECT_EQ(view.expire(1501), std::vector<std::string>{"peer"});
  EXPECT_EQ(view.size(), 1u);  // self stays
  // A late heartbeat of the same run with an older sequence does not go back in time.
  peer.sequence = 5;
  view.observe(peer, 2000);
  peer.sequence = 4;
  peer.load.queued = 99;
  view.observe(peer, 2010);
  EXPECT_EQ(view.members(2020)[1].info.load.queued, 0u);
}

TEST(MembershipTest, HeartbeatPayloadRoundTripsAndRefusesBadFields) {
  NodeInfo n;
  n.id = "n1";
  n.identity = NodeIdentity{"s", Tier::kCloud, {"k=v"}};
  n.httpAddress = "127.0.0.1:80";
  n.load = NodeLoad{4, 1, 2, 3};
  n.functions["f"] = 2.5;
  n.startedAtMs = 11;
  n.sequence = 12;
  auto back = decodeNodeInfo(encodeNodeInfo(n));
  ASSERT_TRUE(back.ok()) << back.error().message();
  EXPECT_EQ(back->identity.tier, Tier::kCloud);
  EXPECT_EQ(back->load.queued, 2u);
  EXPECT_EQ(back->functions.at("f"), 2.5);
  for (const char* bad : {"", "[]", "{}", R"({"id":"N!"})",
                          R"({"id":"n","site":"s","tier":"fog","labels":[],"http":"h","slots":1,)"
                          R"("running":0,"queued":0,"rejected":0,"functions":{},"started_at_ms":1,"seq":1})",
                          R"({"id":"n","site":"s","tier":"edge","labels":[],"http":"h","slots":-1,)"
                          R"("running":0,"queued":0,"rejected":0,"functions":{},"started_at_ms":1,"seq":1})"}) {
    EXPECT_FALSE(decodeNodeInfo(bad).ok()) << bad;
  }
}

TEST(MembershipTest, TheDirectLinkAddressIsOptionalButMustBeHostAndPort) {
  NodeInfo n;
  n.id = "n1";
  n.identity = NodeIdentity{"s", Tier::kEdge, {}};
  n.httpAddress = "127.0.0.1:80";
  n.directAddress = "[::1]:7000";
  auto back = decodeNodeInfo(encodeNodeInfo(n));
  ASSERT_TRUE(back.ok()) << back.error().message();
  EXPECT_EQ(back->directAddress, "[::1]:7000");
  std::string base = R"({"id":"n","site":"s","tier":"edge","labels":[],"http":"h","slots":1,)"
                     R"("running":0,"queued":0,"rejected":0,"functions":{},"started_at_ms":1,)"
                     R"("seq":1)";
  EXPECT_TRUE(decodeNodeInfo(base + "}").ok()) << "a node from before direct links";
  EXPECT_TRUE(decodeNodeInfo(base + R"(,"direct":""})").ok()) << "a node without them";
  for (const char* bad : {R"(,"direct":5})", R"(,"direct":"host"})", R"(,"direct":"h:0"})",
                          R"(,"direct":"h:70000"})", R"(,"direct":"[::1:5"})"}) {
    EXPECT_FALSE(decodeNodeInfo(base + bad).ok()) << bad;
  }
}

TEST(MembershipTest, TlsDirectLinksAreAnnouncedInAFieldOfTheirOwn) {
  NodeInfo n;
  n.id = "n1";
  n.identity = NodeIdentity{"s", Tier::kEdge, {}};
  n.httpAddress = "127.0.0.1:80";
  n.directAddress = "127.0.0.1:7000";
  n.directSecurity = LinkSecurity::kTls;
  std::string text = encodeNodeInfo(n);
  // A node that knows only "direct" sees no address, so it never sends a TLS node plain
  // frames.
  EXPECT_EQ(text.find(R"("direct":)"), std::string::npos) << text;
  EXPECT_NE(text.find(R"("direct_tls":"127.0.0.1:7000")"), std::string::npos) << text;
  auto back = decodeNodeInfo(text);
  ASSERT_TRUE(back.ok()) << back.error().message();
  EXPECT_EQ(back->directAddress, "127.0.0.1:7000");
  EXPECT_EQ(back->directSecurity, LinkSecurity::kTls);
  n.directSecurity = LinkSecurity::kPlain;
  back = decodeNodeInfo(encodeNodeInfo(n));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->directSecurity, LinkSecurity::kPlain);

  std::string base = R"({"id":"n","site":"s","tier":"edge","labels":[],"http":"h","slots":1,)"
                     R"("running":0,"queued":0,"rejected":0,"functions":{},"started_at_ms":1,)"
                     R"("seq":1)";
  EXPECT_TRUE(decodeNodeInfo(base + R"(,"direct":"","direct_tls":"h:1"})").ok());
  for (const char* bad : {R"(,"direct":"h:1","direct_tls":"h:2"})", R"(,"direct_tls":"h:0"})",
                          R"(,"direct_tls":7})"}) {
    EXPECT_FALSE(decodeNodeInfo(base + bad).ok()) << bad;
  }
}

TEST(MembershipTest, SplitsHostAndPort) {
  struct Case {
    const char* in;
    bool ok;
    const char* host;
    uint16_t port;
  } cases[] = {
      {"127.0.0.1:80", true, "127.0.0.1", 80}, {"[::1]:0", true, "::1", 0},
      {"node-a:65535", true, "node-a", 65535}, {"127.0.0.1", false, "", 0},
      {":80", false, "", 0},                   {"h:", false, "", 0},
      {"h:65536", false, "", 0},               {"h:-1", false, "", 0},
      {"[::1:80", false, "", 0},               {"h:8x", false, "", 0},
  };
  for (const auto& c : cases) {
    auto r = splitHostPort(c.in);
    ASSERT_EQ(r.ok(), c.ok) << c.in;
    if (!c.ok) {
      EXPECT_NE(r.error().message().find(c.in), std::string::npos) << r.error().message();
      continue;
    }
    EXPECT_EQ(r->first, c.host) << c.in;
    EXPECT_EQ(r->second, c.port) << c.in;
  }
}

TEST(FunctionRecordTest, RoundTripsAndRefusesBadEntries) {
  FunctionRecord r;
  r.version.name = "f";
  r.version.version = 3;
  r.version.moduleHash = std::string(64, 'b');
  r.version.moduleSize = 10;
  r.version.settings.placement = {{"a"}, "edge", {"k=v"}};
  r.version.settings.env = {"A=1"};
  r.origin = "n1";
  r.updatedAtMs = 5;
  auto back = decodeFunctionRecord(encodeFunctionRecord(r));
  ASSERT_TRUE(back.ok()) << back.error().message();
  EXPECT_TRUE(sameVersion(back->version, r.version));
  EXPECT_EQ(back->origin, "n1");

  auto bad = [&](auto mutate) {
    FunctionRecord x = r;
    mutate(x);
    return !decodeFunctionRecord(encodeFunctionRecord(x)).ok();
  };
  EXPECT_TRUE(bad([](FunctionRecord& x) { x.version.name = "../etc"; }));
  EXPECT_TRUE(bad([](FunctionRecord& x) { x.version.moduleHash = "../../x"; }));
  EXPECT_TRUE(bad([](FunctionRecord& x) { x.version.version = 0; }));
  EXPECT_TRUE(bad([](FunctionRecord& x) { x.version.settings.placement.tier = "fog"; }));
  EXPECT_TRUE(bad([](FunctionRecord& x) { x.version.settings.weight = -1; }));
  EXPECT_FALSE(decodeFunctionRecord("{").ok());
  EXPECT_FALSE(decodeManifest(R"({"size":10,"chunks":1})", 5).ok());
  EXPECT_FALSE(decodeManifest(R"({"size":0,"chunks":1})", 5).ok());
  EXPECT_TRUE(decodeManifest(R"({"size":4,"chunks":1})", 5).ok());
}

}  // namespace
}  // namespace tern::cluster
