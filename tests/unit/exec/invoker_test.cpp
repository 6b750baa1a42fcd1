// The invoker's invocation ids, from tables of its own output.

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <string>

#include "exec/executor.h"
#include "exec/function_table.h"
#include "exec/invoker.h"
#include "test_support.h"
#include "util/metrics.h"

namespace tern::exec {
namespace {

uint64_t hexValue(const std::string& s) { return std::stoull(s, nullptr, 16); }

TEST(InvokerTest, InvocationIdsAreTheNodePrefixThenACounterInLowerCaseHex) {
  MetricsRegistry metrics;
  wasm::Engine engine{test::engineConfig()};
  FunctionTable table{metrics};
  Executor executor{Executor::Options{}};
  Invoker invoker{engine, executor, table, [](std::function<void()> task) { task(); }};
  std::string first = invoker.nextInvocationId();
  EXPECT_EQ(first.substr(8), "000000000001");
  std::string last = first;
  for (uint64_t n = 2; n <= 300; ++n) {
    std::string id = invoker.nextInvocationId();
    ASSERT_EQ(id.size(), 20u) << id;
    EXPECT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos) << id;
    EXPECT_EQ(id.substr(0, 8), first.substr(0, 8)) << id;  // the node's prefix
    EXPECT_EQ(hexValue(id.substr(8)), n) << id;            // the counter, every digit
    EXPECT_NE(id, last);
    last = id;
  }
}

}  // namespace
}  // namespace tern::exec
