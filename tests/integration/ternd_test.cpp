// A real ternd on a free loopback port with its own data directory, driven over real HTTP.

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <set>

#include <atomic>
#include <future>
#include <regex>
#include <thread>

#include "module_bytes.h"
#include "raw_http.h"
#include "ternd_process.h"
#include "test_support.h"
#include "util/subprocess.h"

namespace tern {
namespace {

using test::HttpReply;
using test::request;

class TerndTest : public ::testing::Test {
 protected:
  test::TempDir dir;
  std::filesystem::path data() const { return dir.path() / "data"; }

  static std::string module(const char* name) {
    return test::readText(test::examplesDir() / (std::string(name) + ".wasm"));
  }
  static std::string guest(const char* name) {
    return test::readText(test::guestsDir() / (std::string(name) + ".wasm"));
  }

  HttpReply deploy(test::TerndProcess& node, const std::string& name, const std::string& wasm,
                   const std::string& query = "") {
    return request(node.port(), "PUT", "/v1/functions/" + name + query, wasm, node.auth());
  }
};

TEST_F(TerndTest, DeployInvokeVersionsRollbackDelete) {
  test::TerndProcess node(data());
  auto d1 = deploy(node, "greet", module("hello"));
  ASSERT_EQ(d1.status, 201) << d1.raw;
  EXPECT_NE(d1.body.find("\"version\":1"), std::string::npos) << d1.body;

  auto r = request(node.port(), "GET", "/fn/greet");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "Hello from tern!\n");
  EXPECT_FALSE(r.headers["x-tern-invocation-id"].empty());
  EXPECT_EQ(r.headers["x-tern-function-version"], "1");

  ASSERT_EQ(deploy(node, "greet", module("echo")).status, 201);
  r = request(node.port(), "POST", "/fn/greet", "echo me");
  EXPECT_EQ(r.body, "echo me");
  EXPECT_EQ(r.headers["x-tern-function-version"], "2");

  auto versions = request(node.port(), "GET", "/v1/functions/greet/versions", "", node.auth());
  EXPECT_EQ(versions.status, 200);
  EXPECT_NE(versions.body.find("\"active_version\":2"), std::string::npos) << versions.body;

  auto rb = request(node.port(), "POST", "/v1/functions/greet/rollback", "", node.auth());
  EXPECT_EQ(rb.status, 200) << rb.body;
  EXPECT_EQ(request(node.port(), "GET", "/fn/greet").body, "Hello from tern!\n");
  auto again = request(node.port(), "POST", "/v1/functions/greet/rollback", "", node.auth());
  EXPECT_EQ(again.status, 409) << again.body;

  auto ls = request(node.port(), "GET", "/v1/functions", "", node.auth());
  EXPECT_NE(ls.body.find("\"name\":\"greet\""), std::string::npos) << ls.body;

  EXPECT_EQ(request(node.port(), "DELETE", "/v1/functions/greet", "", node.auth()).status, 200);
  auto gone = request(node.port(), "GET", "/fn/greet");
  EXPECT_EQ(gone.status, 404);
  EXPECT_NE(gone.body.find("\"code\":\"not_found\""), std::string::npos);
  EXPECT_EQ(request(node.port(), "DELETE", "/v1/functions/greet", "", node.auth()).status, 404);
}

TEST_F(TerndTest, FunctionsSurviveRestartAndKill9WithoutRecompiling) {
  {
    test::TerndProcess node(data());
    ASSERT_EQ(deploy(node, "a", module("hello")).status, 201);
    ASSERT_EQ(deploy(node, "b", module("echo"), "?env=X=1").status, 201);
    ASSERT_EQ(deploy(node, "b", module("hello_rust")).status, 201);
    EXPECT_EQ(node.terminate(), 0);

    node.restart();
    EXPECT_EQ(request(node.port(), "GET", "/fn/a").body, "Hello from tern!\n");
    ASSERT_EQ(deploy(node, "c", module("echo")).status, 201);
    // Served at the baseline tier at once; the optimized objects are built in the
    // background (those a SIGTERM left unbuilt, again after the restart).
    for (const char* fn : {"a", "b", "c"}) {
      EXPECT_TRUE(test::eventually([&] {
        return request(node.port(), "GET", std::string("/v1/functions/") + fn, "", node.auth())
                   .body.find("\"tier\":\"optimized\"") != std::string::npos;
      })) << fn;
    }
    node.kill9();  // the deploy above answered: it must survive
  }
  test::TerndProcess node(data());
  EXPECT_EQ(request(node.port(), "GET", "/fn/a").body, "Hello from tern!\n");
  EXPECT_NE(request(node.port(), "GET", "/fn/b").body.find("Hello from Rust"), std::string::npos);
  EXPECT_EQ(request(node.port(), "POST", "/fn/c", "still here").body, "still here");
  auto metrics = request(node.port(), "GET", "/metrics").body;
  EXPECT_NE(metrics.find("tern_compiles_total{tier=\"baseline\"} 0\n"), std::string::npos)
      << "a restart must reuse compiled objects:\n"
      << metrics.substr(0, 2000);
  EXPECT_NE(metrics.find("tern_compiles_total{tier=\"optimized\"} 0\n"), std::string::npos)
      << "a restart must reuse compiled objects:\n"
      << metrics.substr(0, 2000);
  EXPECT_NE(metrics.find("tern_function_tier{function=\"c\",tier=\"optimized\"} 1\n"),
            std::string::npos)
      << metrics;
  // Three invocations: where tern fills guest pages itself, it filled some.
  auto value = [&](const std::string& name) {
    size_t at = metrics.find("\n" + name + " ");
    return at == std::string::npos ? -1.0 : std::stod(metrics.substr(at + name.size() + 2));
  };
  double fills = value("tern_memory_reset_fills_pages");
  ASSERT_TRUE(fills == 0 || fills == 1) << metrics;
  if (fills == 1) {
    EXPECT_GT(value("tern_memory_pages_filled_total"), 0) << metrics;
  }
}

// Tiered compilation (docs/design/tiers.md): a deploy answers once the baseline object
// is built; requests keep succeeding while the optimized object is built and swapped in;
// the tier shows in the function's info and the metrics; --compile-tier overrides it.
TEST_F(TerndTest, DeploysServeAtOnceAndTheOptimizedObjectTakesOverUnderLoad) {
  test::TerndProcess node(data());
  auto d = deploy(node, "cgi", guest("cgi"));
  ASSERT_EQ(d.status, 201) << d.raw;
  EXPECT_NE(d.body.find("\"compile_tier\":\"auto\""), std::string::npos) << d.body;
  auto metrics = request(node.port(), "GET", "/metrics").body;
  EXPECT_NE(metrics.find("tern_compiles_total{tier=\"baseline\"} 1\n"), std::string::npos)
      << metrics;

  std::atomic<bool> done{false};
  std::atomic<int> ok{0}, failed{0};
  std::string firstFailure;
  std::thread client([&] {
    while (!done.load()) {
      auto r = request(node.port(), "POST", "/fn/cgi", "payload");
      if (r.status == 201 && r.body.find("body=payload") != std::string::npos) {
        ++ok;
      } else if (failed++ == 0) {
        firstFailure = r.raw;
      }
    }
  });
  EXPECT_TRUE(test::eventually([&] {
    return request(node.port(), "GET", "/v1/functions/cgi", "", node.auth())
               .body.find("\"tier\":\"optimized\"") != std::string::npos;
  }));
  const int atSwap = ok.load();
  EXPECT_TRUE(test::eventually([&] { return ok.load() >= atSwap + 20; }));
  done = true;
  client.join();
  EXPECT_EQ(failed.load(), 0) << firstFailure;
  metrics = request(node.port(), "GET", "/metrics").body;
  EXPECT_NE(metrics.find("tern_function_tier{function=\"cgi\",tier=\"optimized\"} 1\n"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("tern_tier_swaps_total 1\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("tern_compiles_total{tier=\"optimized\"} 1\n"), std::string::npos)
      << metrics;

  // baseline: never optimized; the setting is kept with the version.
  ASSERT_EQ(deploy(node, "quick", module("hello"), "?compile_tier=baseline").status, 201);
  auto info = request(node.port(), "GET", "/v1/functions/quick", "", node.auth()).body;
  EXPECT_NE(info.find("\"tier\":\"baseline\""), std::string::npos) << info;
  EXPECT_NE(info.find("\"compile_tier\":\"baseline\""), std::string::npos) << info;
  EXPECT_EQ(info.find("tier_note"), std::string::npos) << info;
  metrics = request(node.port(), "GET", "/metrics").body;
  EXPECT_NE(metrics.find("tern_tier_ups_pending 0\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("tern_tier_up_stale_total 0\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("tern_tier_up_dropped_total 0\n"), std::string::npos) << metrics;
  EXPECT_EQ(request(node.port(), "GET", "/fn/quick").body, "Hello from tern!\n");

  // optimized: compiled before the deploy answers.
  ASSERT_EQ(deploy(node, "steady", module("echo"), "?compile_tier=optimized").status, 201);
  info = request(node.port(), "GET", "/v1/functions/steady", "", node.auth()).body;
  EXPECT_NE(info.find("\"tier\":\"optimized\""), std::string::npos) << info;

  auto bad = deploy(node, "odd", module("hello"), "?compile_tier=fast");
  EXPECT_EQ(bad.status, 400) << bad.raw;
  EXPECT_NE(bad.body.find("compile tier must be auto, baseline or optimized, got \\\"fast\\\""),
            std::string::npos)
      << bad.body;
  EXPECT_EQ(request(node.port(), "GET", "/fn/odd").status, 404);
}

// `ternd --version` names the allocator that serves malloc as the process runs: the one the
// build chose (TERN_MALLOC), or the mimalloc it linked would not be in front of the C library.
TEST_F(TerndTest, VersionNamesTheAllocatorThatServesMalloc) {
  auto r = runSubprocess({(test::binDir() / "ternd").string(), "--version"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exitStatus, 0) << r->output;
  EXPECT_TRUE(r->output.starts_with("ternd ")) << r->output;
  EXPECT_NE(r->output.find(std::string("(allocator: ") + TERN_TEST_ALLOCATOR), std::string::npos)
      << r->output;
}

TEST_F(TerndTest, ManagementNeedsTheToken) {
  test::TerndProcess node(data());
  auto none = request(node.port(), "GET", "/v1/functions");
  EXPECT_EQ(none.status, 401);
  EXPECT_NE(none.body.find("unauthorized"), std::string::npos);
  auto wrong = request(node.port(), "PUT", "/v1/functions/x", module("hello"),
                       {{"Authorization", "Bearer 0000"}});
  EXPECT_EQ(wrong.status, 401);
  EXPECT_EQ(request(node.port(), "GET", "/fn/x").status, 404);  // nothing was deployed
  auto perms = std::filesystem::status(data() / "admin.token").permissions();
  EXPECT_EQ(perms & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
}

TEST_F(TerndTest, BadNamesBadModulesBadSettings) {
  test::TerndProcess node(data());
  for (const char* name : {"Upper", "-lead", "a_b", "%2E%2E", "..%2Fx", "%C3%A9",
                           "a123456789012345678901234567890123456789012345678901234567890123"}) {
    auto r = deploy(node, name, module("hello"));
    EXPECT_TRUE(r.status == 400 || r.status == 404) << name << ": " << r.raw;
  }
  auto notWasm = deploy(node, "x", "#!/bin/sh\necho hi\n");
  EXPECT_EQ(notWasm.status, 422);
  EXPECT_NE(notWasm.body.find("invalid_module"), std::string::npos) << notWasm.body;
  auto bad = deploy(node, "x", module("hello"), "?memory_mb=0");
  EXPECT_EQ(bad.status, 400) << bad.body;
  EXPECT_EQ(deploy(node, "x", module("hello"), "?env=NOEQUALS").status, 400);
  auto unknown = deploy(node, "x", test::readText(test::examplesDir() / "hello.wasm").substr(0, 100));
  EXPECT_EQ(unknown.status, 422);
  EXPECT_EQ(request(node.port(), "GET", "/fn/x").status, 404);  // nothing recorded
}

// Issue 10: a 55-byte module declaring 50,000,000 locals made cc1 grow to 22 GB and the
// deploy answered 500 after 439 s; a 4 GiB initial memory and a 2^32-1 entry table deployed
// with 201 and then failed every call. Now each is refused with a clear 4xx and nothing is
// recorded; with the module limit raised, the compile sandbox stops the compile instead.
TEST_F(TerndTest, ModulesTooCostlyToCompileOrThatCouldNeverStartAreRefused) {
  auto text = [](const std::vector<uint8_t>& b) { return std::string(b.begin(), b.end()); };
  const std::string locals = text(test::moduleOfFunctions(1, test::functionBody(50'000'000)));
  {
    test::TerndProcess node(data());
    auto r = deploy(node, "big", locals);
    EXPECT_EQ(r.status, 422) << r.raw;
    EXPECT_NE(r.body.find("invalid_module"), std::string::npos) << r.body;
    EXPECT_NE(r.body.find("declares 50000000 locals (the limit is 50000 per function)"),
              std::string::npos)
        << r.body;
    auto memory = deploy(node, "big", text(test::wat(R"((module (memory 65536)
        (func (export "_start"))))")));
    EXPECT_EQ(memory.status, 422) << memory.raw;
    EXPECT_NE(memory.body.find("memory 0 starts at 65536 pages (4096 MiB), more than the memory "
                               "limit of 128 MiB"),
              std::string::npos)
        << memory.body;
    auto table = deploy(node, "big", text(test::wat(R"((module (table 4294967295 funcref)
        (func (export "_start"))))")));
    EXPECT_EQ(table.status, 422) << table.raw;
    EXPECT_NE(table.body.find("table 0 starts with 4294967295 elements"), std::string::npos)
        << table.body;
    EXPECT_EQ(request(node.port(), "GET", "/fn/big").status, 404);  // nothing recorded
    auto metrics = request(node.port(), "GET", "/metrics").body;
    EXPECT_NE(metrics.find("tern_compiles_total{tier=\"baseline\"} 0\n"), std::string::npos)
        << metrics;
    EXPECT_NE(metrics.find("tern_compiles_total{tier=\"optimized\"} 0\n"), std::string::npos)
        << metrics;
    ASSERT_EQ(deploy(node, "greet", module("hello")).status, 201);
    EXPECT_EQ(request(node.port(), "GET", "/fn/greet").body, "Hello from tern!\n");
  }
  test::TerndProcess node(dir.path() / "data2",
                          {"--max-function-locals", "100000000", "--compile-memory-mb", "256"});
  auto r = deploy(node, "big", locals);
  EXPECT_EQ(r.status, 413) << r.raw;
  EXPECT_NE(r.body.find("module_too_large"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("too large or complex to compile within this node's limits: wasm2c ran "
                        "out of the 256 MiB of address space"),
            std::string::npos)
      << r.body;
  auto metrics = request(node.port(), "GET", "/metrics").body;
  EXPECT_NE(metrics.find("tern_compiles_stopped_by_limits_total 1\n"), std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("tern_compiles_running 0\n"), std::string::npos) << metrics;
}

TEST_F(TerndTest, ErrorsMapToStatuses) {
  test::TerndProcess node(data());
  ASSERT_EQ(deploy(node, "oob", module("oob")).status, 201);
  ASSERT_EQ(deploy(node, "loop", module("loop"), "?timeout_ms=100").status, 201);
  ASSERT_EQ(deploy(node, "exit3", module("exit3")).status, 201);
  auto trap = request(node.port(), "GET", "/fn/oob");
  EXPECT_EQ(trap.status, 500);
  EXPECT_NE(trap.body.find("\"code\":\"trap\""), std::string::npos) << trap.body;
  EXPECT_NE(trap.body.find("out-of-bounds memory access"), std::string::npos);
  auto timeout = request(node.port(), "GET", "/fn/loop");
  EXPECT_EQ(timeout.status, 504);
  EXPECT_NE(timeout.body.find("\"code\":\"timeout\""), std::string::npos);
  auto exited = request(node.port(), "GET", "/fn/exit3");
  EXPECT_EQ(exited.status, 500);
  EXPECT_NE(exited.body.find("function_failed"), std::string::npos);
  EXPECT_EQ(request(node.port(), "GET", "/fn/nothing").status, 404);
  EXPECT_EQ(request(node.port(), "GET", "/elsewhere").status, 404);
}

TEST_F(TerndTest, CgiEnvironmentAndHeaderBlock) {
  test::TerndProcess node(data());
  ASSERT_EQ(deploy(node, "cgi", guest("cgi"), "?env=GREETING=hi").status, 201);
  auto r = request(node.port(), "POST", "/fn/cgi/some/path?q=1&r=2", "payload",
                   {{"X-Custom", "value"},
                    {"Content-Type", "text/x-test"},
                    {"authorization", "Basic dXNlcg=="},
                    {"Proxy-Authorization", "Basic cHJveHk="}});
  EXPECT_EQ(r.status, 201) << r.raw;
  // Content-Type and Content-Length are CONTENT_TYPE and CONTENT_LENGTH only; a proxy's
  // credentials are not passed on; a credential that is not the node's token is.
  EXPECT_NE(r.body.find("HTTP_AUTHORIZATION=Basic dXNlcg==\n"), std::string::npos) << r.body;
  for (const char* absent : {"HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH", "HTTP_PROXY_AUTHORIZATION",
                             "cHJveHk="}) {
    EXPECT_EQ(r.body.find(absent), std::string::npos) << absent << " in\n" << r.body;
  }
  EXPECT_EQ(r.headers["content-type"], "text/plain");
  EXPECT_EQ(r.headers["x-test"], "yes");
  for (const char* want :
       {"REQUEST_METHOD=POST\n", "PATH_INFO=/some/path\n", "QUERY_STRING=q=1&r=2\n",
        "SCRIPT_NAME=/fn/cgi\n", "CONTENT_TYPE=text/x-test\n", "CONTENT_LENGTH=7\n",
        "HTTP_X_CUSTOM=value\n", "GREETING=hi\n", "REMOTE_ADDR=127.0.0.1\n", "body=payload\n"}) {
    EXPECT_NE(r.body.find(want), std::string::npos) << "missing " << want << " in\n" << r.body;
  }
}

TEST_F(TerndTest, FunctionHeadersCannotSplitTheResponse) {
  test::TerndProcess node(data());
  ASSERT_EQ(deploy(node, "echo", module("echo")).status, 201);
  // echo returns its input: a header block whose value smuggles a CR.
  auto r = request(node.port(), "POST", "/fn/echo",
                   "X-Good: yes\nX-Evil: a\rSet-Cookie: stolen=1\n\nbody");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers["x-good"], "yes");
  EXPECT_EQ(r.headers.count("set-cookie"), 0u);
  EXPECT_EQ(r.headers.count("x-evil"), 0u);
  EXPECT_EQ(r.body, "body");
}

// The probe that found response splitting, as an outsider sends it to the shipped echo
// example: the function's framing headers are not sent, the response has exactly one length
// (the node's), and the forged response is only the body.
TEST_F(TerndTest, GuestFramingHeadersCannotForgeAResponse) {
  test::TerndProcess node(data());
  ASSERT_EQ(deploy(node, "echo", module("echo")).status, 201);
  std::string forged = "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nPWNED\n";
  std::string body = "Content-Length: 0\r\nTransfer-Encoding: chunked\r\n"
                     "Connection: keep-alive\r\nX-Tern-Invocation-Id: forged\r\n\r\n" + forged;
  auto r = test::sendRaw(node.port(), "POST /fn/echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                                      "Content-Length: " + std::to_string(body.size()) +
                                      "\r\n\r\n" + body);
  ASSERT_EQ(r.status, 200) << r.raw;
  std::string head = r.raw.substr(0, r.raw.find("\r\n\r\n"));
  std::string lower = head;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  auto count = [&](const std::string& s) {
    size_t n = 0;
    for (size_t p = lower.find(s); p != std::string::npos; p = lower.find(s, p + 1)) ++n;
    return n;
  };
  EXPECT_EQ(count("\r\ncontent-length:"), 1u) << head;
  EXPECT_EQ(count("\r\ntransfer-encoding:"), 0u) << head;
  EXPECT_EQ(count("\r\nx-tern-invocation-id:"), 1u) << head;
  EXPECT_EQ(r.headers["content-length"], std::to_string(forged.size()));
  EXPECT_NE(r.headers["x-tern-invocation-id"], "forged");
  // The node's own head: status line, server, and an invocation id of 20 lowercase hex
  // digits (the node's 8-digit prefix and a 12-digit counter).
  EXPECT_EQ(head.substr(0, head.find("\r\n")), "HTTP/1.1 200 OK");
  EXPECT_EQ(r.headers["server"], "tern");
  const std::string& id = r.headers["x-tern-invocation-id"];
  EXPECT_EQ(id.size(), 20u) << id;
  EXPECT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos) << id;
  EXPECT_EQ(r.headers["connection"], "close");
  EXPECT_EQ(r.body, forged);
  auto metrics = request(node.port(), "GET", "/metrics");
  EXPECT_NE(metrics.body.find("tern_guest_headers_refused_total 4"), std::string::npos);
}

// A misspelt or repeated deploy setting is refused, never replaced by the default or by the
// last value, and nothing is deployed.
TEST_F(TerndTest, UnknownOrRepeatedDeployParametersAreRefused) {
  test::TerndProcess node(data());
  for (const char* query : {"?memroy_mb=64", "?memory_mb=64&memory_mb=128",
                            "?timeout_ms=100&timeout_ms=100", "?concurrency=1&concurrency=2",
                            "?weight=1&weight=2", "?tier=edge&tier=cloud", "?allow=kv&alow=kv"}) {
    auto r = deploy(node, "hello", module("hello"), query);
    EXPECT_EQ(r.status, 400) << query << " " << r.body;
    EXPECT_NE(r.body.find("invalid_argument"), std::string::npos) << r.body;
  }
  auto unknown = deploy(node, "hello", module("hello"), "?memroy_mb=64");
  EXPECT_NE(unknown.body.find("unknown parameter \\\"memroy_mb\\\""), std::string::npos)
      << unknown.body;
  auto twice = deploy(node, "hello", module("hello"), "?memory_mb=64&memory_mb=128");
  EXPECT_NE(twice.body.find("memory_mb may be given once"), std::string::npos) << twice.body;
  EXPECT_EQ(request(node.port(), "GET", "/v1/functions/hello", "", node.auth()).status, 404);
  // Parameters that may repeat still do.
  EXPECT_EQ(deploy(node, "hello", module("hello"), "?env=A=1&env=B=2&memory_mb=64").status, 201);
}

TEST_F(TerndTest, OversizedAndMalformedRequestsAreRefusedAndTheNodeKeepsServing) {
  test::TerndProcess node(data(), {"--read-timeout-ms", "300"});
  ASSERT_EQ(deploy(node, "echo", module("echo")).status, 201);
  auto big = request(node.port(), "POST", "/fn/echo", std::string(7u << 20, 'x'));
  EXPECT_EQ(big.status, 413);
  std::string large(5u << 20, 'y');  // under the 6 MiB invoke limit
  auto fits = request(node.port(), "POST", "/fn/echo", large);
  EXPECT_EQ(fits.status, 200);
  EXPECT_TRUE(fits.body == large);
  auto headers = request(node.port(), "GET", "/fn/echo", "", {{"X-Big", std::string(20000, 'h')}});
  EXPECT_EQ(headers.status, 431) << headers.raw.substr(0, 200);
  auto garbage = test::sendRaw(node.port(), "\x01\x02 not http at all\r\n\r\n");
  EXPECT_EQ(garbage.status, 400);
  // What begins like a TLS handshake is closed without an answer (and logged).
  auto tlsHello = test::sendRaw(node.port(), "\x16\x03\x01 not http at all\r\n\r\n");
  EXPECT_EQ(tlsHello.status, 0);
  EXPECT_TRUE(test::eventually([&] { return node.log().find("began a TLS handshake") != std::string::npos; }));
  // A client that sends half a request and stalls is cut off; others are served meanwhile.
  int stalled = test::connectTo(node.port());
  ASSERT_GE(stalled, 0);
  std::string partial = "POST /fn/echo HTTP/1.1\r\nHost: x\r\nContent-Len";
  ASSERT_GT(::send(stalled, partial.data(), partial.size(), 0), 0);
  EXPECT_EQ(request(node.port(), "POST", "/fn/echo", "fine").body, "fine");
  // The node closes it once the read timeout passes (long before the 60 s idle timeout).
  pollfd p{stalled, POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 10000), 1) << "the stalled connection was not closed";
  char buf[512];
  EXPECT_EQ(::recv(stalled, buf, sizeof buf, 0), 0);
  ::close(stalled);
  EXPECT_EQ(request(node.port(), "GET", "/healthz").status, 200);
}

TEST_F(TerndTest, SaturationAnswers429WithRetryAfter) {
  test::TerndProcess node(data(), {"--workers", "1", "--queue", "1"});
  ASSERT_EQ(deploy(node, "slow", guest("sleeper"), "?env=SLEEP_MS=3000").status, 201);
  auto a = std::async(std::launch::async, [&] { return request(node.port(), "GET", "/fn/slow"); });
  ASSERT_TRUE(test::eventually([&] { return node.metric("tern_worker_slots_busy") == 1; }))
      << node.log();
  auto b = std::async(std::launch::async, [&] { return request(node.port(), "GET", "/fn/slow"); });
  ASSERT_TRUE(test::eventually([&] { return node.metric("tern_queue_length") == 1; }))
      << node.log();
  auto c = request(node.port(), "GET", "/fn/slow");  // one running, one queued: refused
  EXPECT_EQ(c.status, 429) << c.raw;
  EXPECT_EQ(c.headers["retry-after"], "1");
  EXPECT_EQ(a.get().body, "done\n");
  EXPECT_EQ(b.get().body, "done\n");  // the queued one ran after the first
}

TEST_F(TerndTest, SigtermDrainsInFlightInvocations) {
  test::TerndProcess node(data());
  ASSERT_EQ(deploy(node, "slow", guest("sleeper"), "?env=SLEEP_MS=2000").status, 201);
  auto inflight =
      std::async(std::launch::async, [&] { return request(node.port(), "GET", "/fn/slow"); });
  ASSERT_TRUE(test::eventually([&] { return node.metric("tern_worker_slots_busy") == 1; }))
      << node.log();
  EXPECT_EQ(node.terminate(), 0);
  auto r = inflight.get();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "done\n");
}

TEST_F(TerndTest, ConcurrentDeploysOfOneNameGetDistinctVersions) {
  test::TerndProcess node(data());
  std::vector<std::future<HttpReply>> deploys;
  for (int i = 0; i < 4; ++i) {
    deploys.push_back(std::async(std::launch::async, [&, i] {
      return deploy(node, "same", module(i % 2 ? "hello" : "echo"));
    }));
  }
  std::set<std::string> versions;
  std::regex v(R"("version":(\d+))");
  for (auto& f : deploys) {
    auto r = f.get();
    ASSERT_EQ(r.status, 201) << r.body;
    std::smatch m;
    ASSERT_TRUE(std::regex_search(r.body, m, v));
    versions.insert(m[1]);
  }
  EXPECT_EQ(versions, (std::set<std::string>{"1", "2", "3", "4"}));
  auto info = request(node.port(), "GET", "/v1/functions/same", "", node.auth());
  EXPECT_NE(info.body.find("\"active_version\":4"), std::string::npos) << info.body;
}

TEST_F(TerndTest, ConnectionsBeyondAClientsLimitAreRefusedAndCounted) {
  test::TerndProcess node(data(), {"--max-connections-per-client", "2"});
  int held[2] = {test::connectTo(node.port()), test::connectTo(node.port())};
  ASSERT_GE(held[0], 0);
  ASSERT_GE(held[1], 0);
  // The third is accepted after them and closed before anything is read.
  auto refused = test::sendRaw(node.port(), "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(refused.status, 0) << refused.raw;
  for (int fd : held) close(fd);
  // Until the node has seen the two close, a new connection from this client is refused
  // too, so the count is at least the one refusal above.
  std::string metrics;
  EXPECT_TRUE(test::eventually([&] {
    auto r = request(node.port(), "GET", "/metrics");
    metrics = r.body;
    return r.status == 200;
  }));
  std::smatch m;
  ASSERT_TRUE(std::regex_search(metrics, m, std::regex(R"(tern_http_connections_refused_total\{limit="client"\} (\d+))")))
      << metrics;
  EXPECT_GE(std::stoi(m[1]), 1) << metrics;
  EXPECT_NE(metrics.find("tern_http_connections_refused_total{limit=\"node\"} 0"), std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("tern_http_response_bytes_unsent"), std::string::npos);
}

TEST_F(TerndTest, LogsAndMetricsShowInvocations) {
  test::TerndProcess node(data());
  ASSERT_EQ(deploy(node, "slow", guest("sleeper"), "?env=SLEEP_MS=1").status, 201);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(request(node.port(), "GET", "/fn/slow").status, 200);
  auto logs = request(node.port(), "GET", "/v1/functions/slow/logs", "", node.auth());
  EXPECT_EQ(logs.status, 200);
  EXPECT_NE(logs.body.find("sleeping 1 ms"), std::string::npos) << logs.body;
  EXPECT_NE(logs.body.find("\"outcome\":\"ok\""), std::string::npos) << logs.body;
  auto later = request(node.port(), "GET", "/v1/functions/slow/logs?after=6", "", node.auth());
  EXPECT_NE(later.body.find("\"lines\":[]"), std::string::npos) << later.body;
  auto metrics = request(node.port(), "GET", "/metrics").body;
  EXPECT_NE(metrics.find("tern_invocations_total{function=\"slow\",outcome=\"ok\"} 3"),
            std::string::npos)
      << metrics.substr(0, 3000);
  EXPECT_NE(metrics.find("tern_invocation_duration_seconds_count{function=\"slow\"} 3"),
            std::string::npos);
  EXPECT_NE(metrics.find("tern_process_resident_memory_bytes"), std::string::npos);
  auto status = request(node.port(), "GET", "/v1/status", "", node.auth());
  EXPECT_NE(status.body.find("\"functions\":1"), std::string::npos) << status.body;
}

}  // namespace
}  // namespace tern
