// The two halves around a user-defined policy function: what it reads on stdin, and the
// ranking made of what it writes (a choice, a ranking, unknown names ignored, anything
// else an error so the router falls back to lowest-latency).

#include "providers/wasm_policy.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace tern::providers {
namespace {

using json = nlohmann::json;
using Names = std::vector<std::string>;

std::vector<ProviderView> route() {
  std::vector<ProviderView> vs(3);
  vs[0].name = "local";
  vs[0].tier = "edge";
  vs[0].samples = 12;
  vs[0].ewmaMs = 41.5;
  vs[0].p95Ms = 60;
  vs[0].inFlight = 2;
  vs[1].name = "edge-b";
  vs[1].tier = "edge";
  vs[1].pricePerCall = 0.5;
  vs[2].name = "faas";
  vs[2].tier = "cloud";
  vs[2].pricePerCall = 2;
  vs[2].samples = 3;
  vs[2].ewmaMs = 90;
  vs[2].p95Ms = 120;
  vs[2].failureRate = 0.25;
  return vs;
}

const Names kFallback = {"edge-b", "local", "faas"};

TEST(WasmPolicyTest, TheInputHoldsTheCallAndEveryProviderInTheRoutesOrder) {
  json in = json::parse(wasmPolicyInput(CallInfo{"resize", 2048}, route()));
  EXPECT_EQ(in["call"], json::parse(R"({"function":"resize","size":2048})"));
  ASSERT_EQ(in["providers"].size(), 3u);
  EXPECT_EQ(in["providers"][0], json::parse(R"({"name":"local","tier":"edge","price_per_call":0,"samples":12,)"
                                             R"("ewma_ms":41.5,"p95_ms":60,"failure_rate":0,"in_flight":2})"));
  EXPECT_EQ(in["providers"][1]["name"], "edge-b");
  EXPECT_EQ(in["providers"][1]["samples"], 0);
  EXPECT_EQ(in["providers"][2], json::parse(R"({"name":"faas","tier":"cloud","price_per_call":2,"samples":3,)"
                                             R"("ewma_ms":90,"p95_ms":120,"failure_rate":0.25,"in_flight":0})"));
  EXPECT_EQ(json::parse(wasmPolicyInput(CallInfo{"f", 0}, {}))["providers"], json::array());
}

TEST(WasmPolicyTest, TheAnswerComesFirstThenTheFallbackOrder) {
  struct Row {
    std::string output;
    Names expected;
  } rows[] = {
      {R"({"provider":"faas"})", {"faas", "edge-b", "local"}},
      {R"({"provider":"local"})" "\n", {"local", "edge-b", "faas"}},
      {R"( {"provider":"edge-b","why":"cheapest"} )", {"edge-b", "local", "faas"}},  // other members ignored
      {R"({"ranking":["faas","local"]})", {"faas", "local", "edge-b"}},
      {R"({"ranking":["local","faas","edge-b"]})", {"local", "faas", "edge-b"}},
      {R"({"ranking":["nowhere","faas","faas","elsewhere"]})", {"faas", "edge-b", "local"}},  // unknown, twice
      {R"({"ranking":["faas"],"provider":"local"})", {"local", "edge-b", "faas"}},  // the choice wins
  };
  for (const auto& r : rows) {
    auto got = parseWasmPolicyOutput(r.output, route(), kFallback);
    ASSERT_TRUE(got.ok()) << r.output << ": " << got.error().message();
    EXPECT_EQ(*got, r.expected) << r.output;
  }
  // A fallback that misses a provider still yields every provider once.
  auto partial = parseWasmPolicyOutput(R"({"provider":"faas"})", route(), {"local"});
  ASSERT_TRUE(partial.ok());
  EXPECT_EQ(*partial, (Names{"faas", "local", "edge-b"}));
}

TEST(WasmPolicyTest, AnythingElseIsAnErrorForTheFallBack) {
  struct Row {
    std::string output;
    std::string says;
  } rows[] = {
      {"", "not a JSON object"},
      {"   \n", "not a JSON object"},
      {"faas", "not a JSON object"},
      {"\x01\xff garbage {", "not a JSON object"},
      {R"({"provider":"faas")", "not a JSON object"},  // truncated
      {R"("faas")", "not a JSON object"},
      {R"(["faas"])", "not a JSON object"},
      {"{}", "neither"},
      {R"({"choice":"faas"})", "neither"},
      {R"({"provider":3})", "\"provider\""},
      {R"({"provider":null})", "\"provider\""},
      {R"({"ranking":"faas"})", "\"ranking\""},
      {R"({"ranking":["faas",1]})", "\"ranking\""},
      {R"({"provider":"nowhere"})", "none of the route's providers (local, edge-b, faas)"},
      {R"({"provider":""})", "none of the route's providers"},
      {R"({"ranking":[]})", "none of the route's providers"},
      {R"({"ranking":["a","b"]})", "none of the route's providers"},
  };
  for (const auto& r : rows) {
    auto got = parseWasmPolicyOutput(r.output, route(), kFallback);
    ASSERT_FALSE(got.ok()) << "accepted " << r.output;
    EXPECT_EQ(got.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(got.error().message().find(r.says), std::string::npos) << r.output << " -> " << got.error().message();
  }
  // Deep nesting is an error, not a crash.
  std::string deep = std::string(100000, '[') + std::string(100000, ']');
  EXPECT_FALSE(parseWasmPolicyOutput(deep, route(), kFallback).ok());
}

}  // namespace
}  // namespace tern::providers
