// The plan of `tern up` and `tern down` (src/manifest/plan.h) from tables: declared against
// deployed state, with the app's ownership record.

#include "manifest/plan.h"

#include <gtest/gtest.h>

#include <cctype>

namespace tern::manifest {
namespace {

FunctionState fn(std::string sha, uint32_t memoryMb = 128) {
  FunctionState s;
  s.moduleSha256 = std::move(sha);
  s.memoryMb = memoryMb;
  return s;
}

Step step(ObjectKind k, std::string name, Change c, std::string detail = "") {
  return Step{k, std::move(name), c, std::move(detail)};
}

using K = ObjectKind;
using C = Change;

struct UpCase {
  const char* what;
  DeclaredState declared;
  DeployedState deployed;
  std::vector<Step> steps;
  bool writeRecord;
};

class PlanUpTest : public ::testing::TestWithParam<UpCase> {};

// Test names from a case's description.
template <typename Case>
std::string caseName(const ::testing::TestParamInfo<Case>& info) {
  std::string name;
  for (const char* c = info.param.what; *c; ++c) {
    name += std::isalnum(static_cast<unsigned char>(*c)) ? *c : '_';
  }
  return name;
}

TEST_P(PlanUpTest, Steps) {
  const auto& c = GetParam();
  auto plan = planUp(c.declared, c.deployed);
  ASSERT_TRUE(plan.ok()) << plan.error().message();
  EXPECT_EQ(plan->steps, c.steps) << c.what;
  EXPECT_EQ(plan->writeRecord, c.writeRecord) << c.what;
}

AppRecord owning(std::set<std::string> functions, std::map<std::string, std::string> workflows = {},
                 std::set<std::string> routes = {}, std::set<std::string> streams = {}) {
  AppRecord r;
  r.functions = std::move(functions);
  r.workflows = std::move(workflows);
  r.routes = std::move(routes);
  r.streams = std::move(streams);
  return r;
}

INSTANTIATE_TEST_SUITE_P(
    Table, PlanUpTest,
    ::testing::Values(
        UpCase{"a first deploy creates everything, functions first",
               DeclaredState{{{"a", fn("1")}},
                             {{"a", RouteState{{"local"}, "single"}}},
                             {{"s", StreamAppState{"a", 5.0}}},
                             {{"w", "d1"}}},
               DeployedState{},
               {step(K::kFunction, "a", C::kCreate), step(K::kRoute, "a", C::kCreate),
                step(K::kStreamApp, "s", C::kCreate), step(K::kWorkflow, "w", C::kCreate)},
               true},
        UpCase{"the same state again changes nothing, not even the record",
               DeclaredState{{{"a", fn("1")}}, {}, {}, {{"w", "d1"}}},
               DeployedState{{{"a", fn("1")}}, {}, {}, {"w"}, owning({"a"}, {{"w", "d1"}})},
               {step(K::kFunction, "a", C::kUnchanged), step(K::kWorkflow, "w", C::kUnchanged)},
               false},
        UpCase{"an edited setting updates only that function and names the field",
               DeclaredState{{{"a", fn("1", 64)}, {"b", fn("2")}}, {}, {}, {}},
               DeployedState{{{"a", fn("1")}, {"b", fn("2")}}, {}, {}, {}, owning({"a", "b"})},
               {step(K::kFunction, "a", C::kUpdate, "memory_mb changed"),
                step(K::kFunction, "b", C::kUnchanged)},
               false},
        UpCase{"a new module is an update of the module",
               DeclaredState{{{"a", fn("9")}}, {}, {}, {}},
               DeployedState{{{"a", fn("1")}}, {}, {}, {}, owning({"a"})},
               {step(K::kFunction, "a", C::kUpdate, "module changed")}, false},
        UpCase{"a workflow whose definition changed is updated and its digest recorded",
               DeclaredState{{}, {}, {}, {{"w", "d2"}}},
               DeployedState{{}, {}, {}, {"w"}, owning({}, {{"w", "d1"}})},
               {step(K::kWorkflow, "w", C::kUpdate, "definition changed")}, true},
        UpCase{"objects the app owns and no longer declares are deleted, workflows first",
               DeclaredState{{{"a", fn("1")}}, {}, {}, {}},
               DeployedState{{{"a", fn("1")}, {"old", fn("3")}},
                             {{"old", RouteState{{"local"}, "single"}}},
                             {{"s", StreamAppState{"old", std::nullopt}}},
                             {"w"},
                             owning({"a", "old"}, {{"w", "d"}}, {"old"}, {"s"})},
               {step(K::kFunction, "a", C::kUnchanged),
                step(K::kWorkflow, "w", C::kDelete, "no longer declared"),
                step(K::kStreamApp, "s", C::kDelete, "no longer declared"),
                step(K::kRoute, "old", C::kDelete, "no longer declared"),
                step(K::kFunction, "old", C::kDelete, "no longer declared")},
               true},
        UpCase{"objects on the node that the app does not own are left alone",
               DeclaredState{{{"a", fn("1")}}, {}, {}, {}},
               DeployedState{{{"a", fn("1")}, {"other", fn("5")}}, {}, {}, {"foreign"}, owning({"a"})},
               {step(K::kFunction, "a", C::kUnchanged)}, false},
        UpCase{"a recorded object that is gone is created again",
               DeclaredState{{{"a", fn("1")}}, {}, {}, {}},
               DeployedState{{}, {}, {}, {}, owning({"a"})},
               {step(K::kFunction, "a", C::kCreate)}, false},
        UpCase{"a route's provider order is part of the route",
               DeclaredState{{}, {{"a", RouteState{{"cloud", "local"}, "single"}}}, {}, {}},
               DeployedState{{}, {{"a", RouteState{{"local", "cloud"}, "single"}}}, {}, {},
                             owning({}, {}, {"a"})},
               {step(K::kRoute, "a", C::kUpdate, "providers changed")}, false}),
    caseName<UpCase>);

TEST(PlanUpConflictTest, ADeclaredObjectThatTheAppDoesNotOwnIsRefusedBeforeAnyChange) {
  DeclaredState declared{{{"a", fn("1")}, {"b", fn("2")}}, {}, {}, {{"w", "d"}}};
  DeployedState deployed{{{"b", fn("2")}}, {}, {}, {"w"}, owning({})};
  auto plan = planUp(declared, deployed);
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.error().code(), ErrorCode::kConflict);
  EXPECT_EQ(plan.error().message(),
            "function \"b\", workflow \"w\" already on the node and not owned by this app "
            "(deployed by hand or by another app): remove them or rename them in the manifest");
}

TEST(PlanUpRecordTest, TheRecordWrittenFirstOwnsWhatTheStepsMayCreate) {
  DeclaredState declared{{{"a", fn("1")}, {"b", fn("2")}}, {}, {}, {{"w", "new"}, {"v", "d"}}};
  DeployedState deployed{{{"a", fn("1")}, {"gone", fn("7")}}, {}, {}, {"w"},
                         owning({"a", "gone"}, {{"w", "old"}})};
  auto plan = planUp(declared, deployed);
  ASSERT_TRUE(plan.ok()) << plan.error().message();
  // Before: the old objects (still deleted later), the new ones, and the old digest of a
  // workflow not yet redeployed ("" for a new one), so a failure midway redeploys it.
  EXPECT_EQ(plan->recordBefore, owning({"a", "b", "gone"}, {{"v", ""}, {"w", "old"}}));
  EXPECT_EQ(plan->record, owning({"a", "b"}, {{"v", "d"}, {"w", "new"}}));
}

struct DownCase {
  const char* what;
  DeclaredState declared;
  DeployedState deployed;
  std::vector<Step> steps;
  bool removeRecord;
  bool writeRecord;
};

class PlanDownTest : public ::testing::TestWithParam<DownCase> {};

TEST_P(PlanDownTest, Steps) {
  const auto& c = GetParam();
  Plan plan = planDown(c.declared, c.deployed);
  EXPECT_EQ(plan.steps, c.steps) << c.what;
  EXPECT_EQ(plan.removeRecord, c.removeRecord) << c.what;
  EXPECT_EQ(plan.writeRecord, c.writeRecord) << c.what;
}

INSTANTIATE_TEST_SUITE_P(
    Table, PlanDownTest,
    ::testing::Values(
        DownCase{"removes what it owns, workflows before the functions they call",
                 DeclaredState{{{"a", fn("1")}}, {{"a", RouteState{{"local"}, "single"}}}, {}, {{"w", "d"}}},
                 DeployedState{{{"a", fn("1")}}, {{"a", RouteState{{"local"}, "single"}}}, {}, {"w"},
                               owning({"a"}, {{"w", "d"}}, {"a"})},
                 {step(K::kWorkflow, "w", C::kDelete), step(K::kRoute, "a", C::kDelete),
                  step(K::kFunction, "a", C::kDelete)},
                 true, false},
        DownCase{"leaves what it does not own and says why",
                 DeclaredState{{{"a", fn("1")}, {"b", fn("2")}}, {}, {}, {}},
                 DeployedState{{{"a", fn("1")}, {"b", fn("2")}}, {}, {}, {}, owning({"a", "kept"})},
                 {step(K::kFunction, "a", C::kDelete),
                  step(K::kFunction, "b", C::kUnchanged, "not owned by this app: left alone")},
                 false, true},
        DownCase{"an app that is not deployed changes nothing",
                 DeclaredState{{{"a", fn("1")}}, {}, {}, {}}, DeployedState{},
                 {step(K::kFunction, "a", C::kUnchanged, "not on the node")}, false, false}),
    caseName<DownCase>);

TEST(AppRecordTest, RoundTripsAndRefusesMalformedText) {
  AppRecord r = owning({"a", "b"}, {{"w", "d"}}, {"a"}, {"s"});
  auto back = decodeRecord(encodeRecord(r));
  ASSERT_TRUE(back.ok()) << back.error().message();
  EXPECT_EQ(*back, r);
  for (const char* bad : {"", "[]", "{\"functions\": 3}", "{\"functions\": [1]}",
                          "{\"workflows\": {\"w\": 1}}"}) {
    EXPECT_FALSE(decodeRecord(bad).ok()) << bad;
  }
  EXPECT_EQ(recordFunctionName("shop"), "tern-app-shop");
}

TEST(FunctionDifferencesTest, ListsOnlyTheFieldsThatDiffer) {
  FunctionState a = fn("1"), b = fn("1");
  EXPECT_TRUE(functionDifferences(a, b).empty());
  b.env = {"K=V"};
  b.tier = "cloud";
  b.weight = 2;
  EXPECT_EQ(functionDifferences(a, b), (std::vector<std::string>{"env", "objective", "placement"}));
}

TEST(DeclaredFunctionTest, FillsTheNodesDefaultsAndSortsLists) {
  FunctionSpec spec;
  spec.name = "f";
  spec.allow = {Located{"kv", {}}, Located{"invoke:a", {}}};
  FunctionState s = declaredFunction(spec, "abc");
  EXPECT_EQ(s.memoryMb, 128u);
  EXPECT_EQ(s.timeoutMs, 10000u);
  EXPECT_EQ(s.weight, 1.0);
  EXPECT_EQ(s.compileTier, "auto");
  EXPECT_EQ(s.allow, (std::vector<std::string>{"invoke:a", "kv"}));
}

}  // namespace
}  // namespace tern::manifest
