// The web console in a real headless Chromium (Debian's `chromium`) against a real ternd,
// driven over the DevTools protocol with tern's own WebSocket client: a wrong and an
// expired token are refused with a clear message, a read token logs in, a function
// deployed with `tern deploy` and invoked shows up live on its page with its stderr, a
// workflow run is drawn as a graph of its tasks, and a token revoked mid-session sends the
// user back to the login page; in a cluster of three nodes on a real nats-server, the cluster
// page shows its two sites and their nodes. Each page is photographed into docs/console/.
//
// Every wait is for something the page shows (an element, a text), checked in the page;
// the test never sleeps.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "cluster_fixture.h"
#include "http/websocket_client.h"
#include "raw_http.h"
#include "ternd_process.h"
#include "test_support.h"
#include "util/base64.h"
#include "util/subprocess.h"

extern char** environ;

namespace tern {
namespace {

using json = nlohmann::json;
using test::request;

// A headless Chromium with the DevTools protocol on a port of its choosing.
class Chromium {
 public:
  explicit Chromium(const std::filesystem::path& profile) {
    std::vector<std::string> args = {"chromium", "--headless=new", "--disable-gpu", "--no-first-run",
                                     "--no-default-browser-check", "--disable-extensions",
                                     "--disable-background-networking", "--disable-sync",
                                     "--user-data-dir=" + profile.string(), "--remote-debugging-port=0",
                                     "--window-size=1280,860", "--hide-scrollbars", "about:blank"};
    if (geteuid() == 0) args.insert(args.begin() + 1, "--no-sandbox");  // Chromium refuses root otherwise
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    std::string log = (profile.parent_path() / "chromium.log").string();
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&attr, 0);
    int rc = posix_spawnp(&pid_, "chromium", &fa, &attr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) {
      ADD_FAILURE() << "cannot start chromium (" << strerror(rc) << "): install it with scripts/install-deps.sh";
      pid_ = -1;
      return;
    }
    // Chromium writes its port and browser path to DevToolsActivePort once it listens.
    auto portFile = profile / "DevToolsActivePort";
    bool up = test::eventually([&] {
      std::ifstream in(portFile);
      return in >> port_ && port_ > 0;
    }, std::chrono::seconds(30));
    if (!up) ADD_FAILURE() << "chromium did not open its DevTools port: " << test::readText(log);
  }
  ~Chromium() {
    if (pid_ > 0) {
      ::kill(-pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
  }
  uint16_t port() const { return static_cast<uint16_t>(port_); }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
};

// One page of the browser, over the DevTools protocol.
class Page {
 public:
  explicit Page(uint16_t devtoolsPort) {
    // The page Chromium opened with about:blank.
    auto list = request(devtoolsPort, "GET", "/json/list");
    json pages = json::parse(list.body, nullptr, false);
    std::string ws;
    for (const auto& p : pages) {
      if (p.value("type", "") == "page") ws = p.value("webSocketDebuggerUrl", "");
    }
    size_t at = ws.find("/devtools/");
    if (at == std::string::npos) {
      ADD_FAILURE() << "no page in " << list.body;
      return;
    }
    http::NodeUrl url;
    url.host = "127.0.0.1";
    url.port = devtoolsPort;
    auto ok = ws_.connect(url, ws.substr(at), {}, std::chrono::seconds(30));
    if (!ok.ok()) ADD_FAILURE() << ok.error().message();
  }

  // Calls a DevTools method and returns its result (events meanwhile are skipped).
  json call(const std::string& method, json params = json::object()) {
    int id = ++lastId_;
    auto sent = ws_.send(json{{"id", id}, {"method", method}, {"params", std::move(params)}}.dump());
    if (!sent.ok()) {
      ADD_FAILURE() << method << ": " << sent.error().message();
      return json();
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    for (;;) {
      auto r = ws_.receive(deadline);
      if (r.kind != http::WebSocketReceive::Kind::kMessage) {
        ADD_FAILURE() << method << ": no answer from the browser";
        return json();
      }
      json m = json::parse(r.text, nullptr, false);
      if (m.value("id", 0) != id) continue;
      if (m.contains("error")) ADD_FAILURE() << method << ": " << m["error"].dump();
      return m.value("result", json::object());
    }
  }

  // Evaluates `js` (awaiting a promise) and returns its value.
  json eval(const std::string& js) {
    json r = call("Runtime.evaluate", {{"expression", js}, {"awaitPromise", true}, {"returnByValue", true}});
    if (r.contains("exceptionDetails")) ADD_FAILURE() << js << ": " << r["exceptionDetails"].dump();
    return r.contains("result") ? r["result"].value("value", json()) : json();
  }

  // Waits, in the page, until `condition` (a JS expression) is true; fails with `what` and
  // the page's text if it is not within 30 s.
  bool waitFor(const std::string& condition, const std::string& what) {
    std::string js = "new Promise((resolve) => { const end = Date.now() + 30000; const check = () => {"
                     " let ok = false; try { ok = !!(" + condition + "); } catch (e) {}"
                     " if (ok || Date.now() > end) resolve(ok); else setTimeout(check, 25); }; check(); })";
    if (eval(js) == json(true)) return true;
    ADD_FAILURE() << "the page never showed " << what << "; it shows: " << eval("document.body.innerText");
    return false;
  }

  void navigate(const std::string& url) { call("Page.navigate", {{"url", url}}); }
  void go(const std::string& hash) { eval("location.hash = " + json(hash).dump()); }

  void screenshot(const std::filesystem::path& file) {
    json r = call("Page.captureScreenshot", {{"format", "png"}});
    auto png = base64Decode(r.value("data", ""));
    ASSERT_TRUE(png && !png->empty()) << "no screenshot for " << file;
    std::filesystem::create_directories(file.parent_path());
    std::ofstream(file, std::ios::binary) << *png;
  }

 private:
  http::WebSocketClient ws_{http::WebSocketLimits{std::chrono::seconds(10), 32u << 20}};
  int lastId_ = 0;
};

class ConsoleBrowserTest : public ::testing::Test {
 protected:
  test::TempDir dir;
  test::TerndProcess node{dir.path() / "data", {"--coap-listen", "off"}};
  std::filesystem::path shots = TERN_CONSOLE_SCREENSHOTS;

  std::string base() const { return "http://127.0.0.1:" + std::to_string(node.port()); }
  std::string makeToken(const json& body) {
    auto r = request(node.port(), "POST", "/v1/tokens", body.dump(), node.auth());
    EXPECT_EQ(r.status, 201) << r.raw;
    return json::parse(r.body, nullptr, false).value("token", std::string());
  }
  // The tern CLI against the node with the admin token; its exit status and output.
  std::pair<int, std::string> tern(std::vector<std::string> args) {
    std::vector<std::string> argv{(test::binDir() / "tern").string(), "--node", base(), "--token", node.token()};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = runSubprocess(argv);
    EXPECT_TRUE(r.ok());
    return {r.ok() ? r->exitStatus : -1, r.ok() ? r->output : ""};
  }
  // Logs in with `token` through the login form.
  void submitToken(Page& page, const std::string& token) {
    page.go("#/login");
    ASSERT_TRUE(page.waitFor("document.querySelector('#login-token')", "the login form"));
    page.eval("document.querySelector('#login-token').value = " + json(token).dump() +
              "; document.querySelector('#login-submit').click(); true");
  }
};

TEST_F(ConsoleBrowserTest, LogInFollowAnInvocationAndAWorkflowRun) {
  Chromium chromium(dir.path() / "profile");
  ASSERT_GT(chromium.port(), 0);
  Page page(chromium.port());
  page.call("Page.enable");

  // A wrong token and an expired one are refused with a clear message.
  page.navigate(base() + "/ui/");
  ASSERT_TRUE(page.waitFor("document.querySelector('#login-token')", "the login form"));
  submitToken(page, "tern_0123456789abcdef_" + std::string(64, '0'));
  ASSERT_TRUE(page.waitFor("document.querySelector('#login-error')?.textContent.includes('does not know that token')",
                           "the refusal of an unknown token"));
  page.screenshot(shots / "login-refused.png");
  std::string brief = makeToken({{"name", "brief"}, {"scopes", {"read"}}, {"expires_in_s", 1}});
  ASSERT_TRUE(test::eventually([&] {
    return request(node.port(), "GET", "/v1/status", "", {{"Authorization", "Bearer " + brief}})
               .body.find("\"expired\"") != std::string::npos;
  }, std::chrono::seconds(30)));
  submitToken(page, brief);
  ASSERT_TRUE(page.waitFor("document.querySelector('#login-error')?.textContent.includes('expired')",
                           "the refusal of an expired token"));

  // A read token logs in; the functions page shows the function deployed with the CLI.
  std::string reader = makeToken({{"name", "viewer"}, {"scopes", {"read"}}});
  submitToken(page, reader);
  ASSERT_TRUE(page.waitFor("document.body.dataset.page === 'functions' && document.querySelector('#functions-table')",
                           "the functions page"));
  EXPECT_EQ(page.eval("sessionStorage.getItem('tern.token')"), json(reader));
  EXPECT_EQ(page.eval("document.cookie"), json(""));
  auto [deployed, out] = tern({"deploy", "chat", (test::guestsDir() / "chatty.wasm").string(), "--env", "LINES=2",
                               "--env", "WIDTH=8"});
  ASSERT_EQ(deployed, 0) << out;
  ASSERT_TRUE(page.waitFor("document.querySelector('#functions-table tr[data-fn=\"chat\"]')",
                           "the deployed function in the table"));

  // Its page follows invocations live: one made now appears with its stderr.
  page.go("#/function/chat");
  ASSERT_TRUE(page.waitFor("document.querySelector('#feed-state')?.textContent === 'live'", "the live feed"));
  auto call = request(node.port(), "GET", "/fn/chat");
  ASSERT_EQ(call.status, 200);
  std::string id = call.headers["x-tern-invocation-id"];
  ASSERT_TRUE(page.waitFor("document.querySelector('#invocations tr[data-id=\"" + id + "\"]')",
                           "invocation " + id));
  ASSERT_TRUE(page.waitFor("document.querySelectorAll('#stderr .line[data-invocation=\"" + id + "\"]').length === 2",
                           "the stderr of invocation " + id));
  EXPECT_EQ(page.eval("document.querySelector('#stderr .line[data-invocation=\"" + id + "\"]').textContent.endsWith('line 0 abcdefgh')"),
            json(true));
  for (int i = 0; i < 5; ++i) ASSERT_EQ(request(node.port(), "GET", "/fn/chat").status, 200);
  ASSERT_TRUE(page.waitFor("document.querySelectorAll('#invocations tbody tr').length >= 6", "six invocations"));
  page.screenshot(shots / "function.png");

  page.go("#/functions");
  ASSERT_TRUE(page.waitFor("document.querySelectorAll('.card[data-fn=\"chat\"] svg.chart').length === 4",
                           "the function's four charts"));
  page.screenshot(shots / "functions.png");

  // A workflow run, drawn as the graph of its tasks with their timings.
  ASSERT_EQ(request(node.port(), "PUT", "/v1/functions/inc?env=OP=inc",
                    test::readText(test::guestsDir() / "wf_step.wasm"), node.auth()).status, 201);
  json wf{{"afcl", R"(
name: "twice"
dataIns: [{name: "n", type: "number", source: "n"}]
workflowBody:
- function: {name: "First", type: "Inc", dataIns: [{name: "n", type: "number", source: "twice/n"}], dataOuts: [{name: "n", type: "number"}]}
- parallel:
    name: "Both"
    dataIns: [{name: "n", type: "number", source: "First/n"}]
    parallelBody:
    - section:
      - function: {name: "Left", type: "Inc", dataIns: [{name: "n", type: "number", source: "Both/n"}], dataOuts: [{name: "n", type: "number"}]}
    - section:
      - function: {name: "Right", type: "Inc", dataIns: [{name: "n", type: "number", source: "Both/n"}], dataOuts: [{name: "n", type: "number"}]}
    dataOuts: [{name: "l", type: "number", source: "Left/n"}, {name: "r", type: "number", source: "Right/n"}]
- function: {name: "Last", type: "Inc", dataIns: [{name: "n", type: "number", source: "Both/l"}, {name: "m", type: "number", source: "Both/r"}], dataOuts: [{name: "n", type: "number"}]}
dataOuts: [{name: "n", type: "number", source: "Last/n"}]
)"}};
  auto put = request(node.port(), "PUT", "/v1/workflows/twice", wf.dump(), node.auth());
  ASSERT_EQ(put.status, 201) << put.body;
  auto run = request(node.port(), "POST", "/wf/twice", R"({"n": 1})");
  ASSERT_EQ(run.status, 200) << run.raw;
  std::string runId = run.headers["x-tern-run-id"];
  page.go("#/workflows");
  ASSERT_TRUE(page.waitFor("document.querySelector('a[data-run=\"" + runId + "\"]')", "run " + runId));
  page.eval("document.querySelector('a[data-run=\"" + runId + "\"]').click(); true");
  ASSERT_TRUE(page.waitFor("document.querySelectorAll('#run-graph g.task').length === 4 && "
                           "document.querySelectorAll('#run-graph path.edge').length === 4",
                           "the run's four tasks and four edges"));
  EXPECT_EQ(page.eval("document.querySelector('#run-status').textContent.includes('succeeded')"), json(true));
  EXPECT_EQ(page.eval("!!document.querySelector('#run-graph path.edge[data-from=\"First\"][data-to=\"Left\"]')"), json(true));
  page.screenshot(shots / "workflow-run.png");

  page.go("#/cluster");
  ASSERT_TRUE(page.waitFor("document.querySelector('#cluster .node[data-node=\"this node\"]')", "the node"));
  page.go("#/providers");
  ASSERT_TRUE(page.waitFor("document.querySelector('#providers section[data-provider=\"local\"]')", "the local provider"));
  page.go("#/streams");
  ASSERT_TRUE(page.waitFor("document.querySelector('#hub-stats')", "the hub's statistics"));

  // The token is revoked: the next refresh sends the user back to log in, saying why.
  page.go("#/functions");
  ASSERT_TRUE(page.waitFor("document.querySelector('#functions-table')", "the functions page"));
  ASSERT_EQ(request(node.port(), "DELETE", "/v1/tokens/viewer", "", node.auth()).status, 200);
  ASSERT_TRUE(page.waitFor("document.querySelector('#login-error')?.textContent.includes('revoked')",
                           "the login page saying the token was revoked"));
  EXPECT_EQ(page.eval("sessionStorage.getItem('tern.token')"), json(nullptr));
}

// A cluster of three nodes in two sites on a real nats-server: the cluster page groups
// the nodes by site, each with its load.
class ConsoleClusterTest : public test::ClusterFixture {
 protected:
  std::unique_ptr<test::TerndProcess> node(const std::string& name, const std::string& site) {
    return std::make_unique<test::TerndProcess>(
        dir.path() / name,
        std::vector<std::string>{"--coap-listen", "off", "--cluster", nats->url(), "--cluster-secret-file",
                                 secret.string(), "--node-name", name, "--site", site, "--heartbeat-ms", "100"});
  }
};

TEST_F(ConsoleClusterTest, TheClusterPageShowsSitesAndTheirNodes) {
  auto a1 = node("edge-a1", "factory");
  auto a2 = node("edge-a2", "factory");
  auto b1 = node("edge-b1", "warehouse");
  // The first node has heard from all three.
  ASSERT_TRUE(test::eventually([&] {
    auto r = request(a1->port(), "GET", "/v1/cluster/nodes", "", a1->auth());
    json j = json::parse(r.body, nullptr, false);
    return j.is_object() && j.contains("nodes") && j["nodes"].size() == 3;
  }, std::chrono::seconds(60)));
  Chromium chromium(dir.path() / "profile");
  ASSERT_GT(chromium.port(), 0);
  Page page(chromium.port());
  page.navigate("http://127.0.0.1:" + std::to_string(a1->port()) + "/ui/");
  ASSERT_TRUE(page.waitFor("document.querySelector('#login-token')", "the login form"));
  page.eval("document.querySelector('#login-token').value = " + json(a1->token()).dump() +
            "; document.querySelector('#login-submit').click(); true");
  ASSERT_TRUE(page.waitFor("document.body.dataset.page === 'functions'", "the functions page"));
  page.go("#/cluster");
  ASSERT_TRUE(page.waitFor("document.querySelectorAll('#cluster section.site').length === 2 && "
                           "document.querySelectorAll('section.site[data-site=\"factory\"] .node').length === 2 && "
                           "document.querySelectorAll('section.site[data-site=\"warehouse\"] .node').length === 1",
                           "two sites with two and one nodes"))
      << "edge-a1:\n" << a1->log() << "\nedge-a2:\n" << a2->log() << "\nedge-b1:\n" << b1->log();
  EXPECT_EQ(page.eval("document.querySelector('.node[data-node=\"edge-b1\"]').textContent.includes('slots busy')"),
            json(true));
  page.screenshot(std::filesystem::path(TERN_CONSOLE_SCREENSHOTS) / "cluster.png");
}

}  // namespace
}  // namespace tern
