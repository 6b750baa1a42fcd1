// The CoAP trigger of a real ternd (UDP on a free loopback port), driven by libcoap's
// coap-client-notls for block-wise transfers and by raw datagrams (tests/support/raw_coap.h)
// where a test needs to see codes, options, message types and duplicates.

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <future>
#include <random>
#include <regex>
#include <set>
#include <thread>

#include "raw_coap.h"
#include "raw_http.h"
#include "ternd_process.h"
#include "test_support.h"
#include "util/subprocess.h"

namespace tern {
namespace {

using test::CoapMessage;
using test::CoapSocket;
using test::CoapType;

constexpr uint8_t kGet = 1, kPost = 2, kPut = 3, kDelete = 4;
constexpr unsigned kMaxAge = 14, kContentFormat = 12;

std::string randomBytes(size_t n) {
  std::mt19937 rng(12345);
  std::string out(n, '\0');
  for (auto& c : out) c = static_cast<char>(rng() & 0xff);
  return out;
}

class CoapTest : public ::testing::Test {
 protected:
  test::TempDir dir;
  std::filesystem::path data() const { return dir.path() / "data"; }

  void deploy(test::TerndProcess& node, const std::string& name, const std::filesystem::path& wasm,
              const std::string& query = "") {
    auto r = test::request(node.port(), "PUT", "/v1/functions/" + name + query, test::readText(wasm),
                           node.auth());
    ASSERT_EQ(r.status, 201) << r.raw;
  }
  static std::filesystem::path example(const char* name) {
    return test::examplesDir() / (std::string(name) + ".wasm");
  }
  static std::filesystem::path guest(const char* name) {
    return test::guestsDir() / (std::string(name) + ".wasm");
  }
  // Waits until the node runs `n` invocations (its worker slots in use).
  static void waitRunning(test::TerndProcess& node, double n) {
    ASSERT_TRUE(test::eventually([&] { return node.metric("tern_worker_slots_busy") == n; }))
        << "the node never ran " << n << " invocations at once:\n" << node.log();
  }
  static uint64_t metric(test::TerndProcess& node, const std::string& series) {
    double v = node.metric(series);
    return v < 0 ? UINT64_MAX : static_cast<uint64_t>(v);
  }
  // coap-client-notls with `args`, then the URI; its output on failure.
  Result<SubprocessResult> coapClient(std::vector<std::string> args, const std::string& uri) {
    std::vector<std::string> argv{"coap-client-notls", "-B", "20"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back(uri);
    return runSubprocess(argv, SubprocessOptions{std::chrono::seconds(60), 1 << 20, ""});
  }
  std::string uri(test::TerndProcess& node, const std::string& path) {
    return "coap://127.0.0.1:" + std::to_string(node.coapPort()) + path;
  }
};

TEST_F(CoapTest, GetAndPostInvokeTheFunction) {
  test::TerndProcess node(data());
  ASSERT_NE(node.coapPort(), 0) << node.log();
  EXPECT_NE(node.log().find("serving CoAP on coap://127.0.0.1:"), std::string::npos);
  deploy(node, "echo", example("echo"));

  auto post = coapClient({"-m", "post", "-e", "hello over coap"}, uri(node, "/fn/echo"));
  ASSERT_TRUE(post.ok());
  EXPECT_EQ(post->exitStatus, 0) << post->output;
  EXPECT_EQ(post->output.substr(0, 15), "hello over coap");

  CoapSocket s(node.coapPort());
  auto get = s.exchange(s.request(kGet, "fn/echo"));
  ASSERT_TRUE(get);
  EXPECT_EQ(get->codeNumber(), 205);  // GET: 2.05 Content
  EXPECT_EQ(get->payload, "");  // GET sends no body to the function
  EXPECT_EQ(get->uintOption(kContentFormat), 42u);  // application/octet-stream

  auto put = s.exchange(s.request(kPut, "fn/echo", "", "put body"));
  ASSERT_TRUE(put);
  EXPECT_EQ(put->codeNumber(), 204);  // POST and PUT: 2.04 Changed with the result
  EXPECT_EQ(put->payload, "put body");
  EXPECT_EQ(metric(node, "tern_coap_requests_total{class=\"2.xx\"}"), 3u);
}

TEST_F(CoapTest, EmptyAndBinaryPayloads) {
  test::TerndProcess node(data());
  deploy(node, "echo", example("echo"));
  CoapSocket s(node.coapPort());
  auto empty = s.exchange(s.request(kPost, "fn/echo"));
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->codeNumber(), 204);
  EXPECT_EQ(empty->payload, "");

  std::string binary;
  for (int i = 0; i < 256; ++i) binary.push_back(static_cast<char>(i));
  auto bin = s.exchange(s.request(kPost, "fn/echo", "", binary));
  ASSERT_TRUE(bin);
  EXPECT_EQ(bin->codeNumber(), 204);
  EXPECT_TRUE(bin->payload == binary);
}

TEST_F(CoapTest, TenKilobytesInAndOutBlockWise) {
  test::TerndProcess node(data());
  deploy(node, "echo", example("echo"));
  std::string body = randomBytes(10 * 1024);
  auto in = dir.path() / "in.bin";
  auto out = dir.path() / "out.bin";
  std::ofstream(in, std::ios::binary) << body;
  auto r = coapClient({"-m", "post", "-f", in.string(), "-o", out.string()}, uri(node, "/fn/echo"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exitStatus, 0) << r->output;
  EXPECT_TRUE(test::readText(out) == body) << "got " << test::readText(out).size() << " bytes";
  // Block1 reassembled into one invocation; the Block2 follow-ups are served by libcoap.
  EXPECT_EQ(metric(node, "tern_invocations_total{function=\"echo\",outcome=\"ok\"}"), 1u);
}

TEST_F(CoapTest, LargeSeparateResponseAfterQueueing) {
  // One worker slot, busy with a slow function: the echo waits in the queue, so its answer
  // is a separate response, sent block-wise.
  test::TerndProcess node(data(), {"--workers", "1"});
  deploy(node, "slow", guest("sleeper"), "?env=SLEEP_MS=1000");
  deploy(node, "echo", example("echo"));
  CoapSocket busy(node.coapPort());
  busy.send(test::encodeCoap(busy.request(kGet, "fn/slow")));
  waitRunning(node, 1);
  std::string body = randomBytes(10 * 1024);
  auto in = dir.path() / "in.bin";
  auto out = dir.path() / "out.bin";
  std::ofstream(in, std::ios::binary) << body;
  auto r = coapClient({"-m", "post", "-f", in.string(), "-o", out.string()}, uri(node, "/fn/echo"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exitStatus, 0) << r->output;
  EXPECT_TRUE(test::readText(out) == body);
  EXPECT_EQ(metric(node, "tern_invocations_total{function=\"echo\",outcome=\"ok\"}"), 1u);
}

TEST_F(CoapTest, ErrorsMapToResponseCodes) {
  test::TerndProcess node(data());
  deploy(node, "loop", example("loop"), "?timeout_ms=100");
  deploy(node, "oob", example("oob"));
  deploy(node, "exit3", example("exit3"));
  CoapSocket s(node.coapPort());
  auto code = [&](uint8_t method, const std::string& path) {
    auto r = s.exchange(s.request(method, path));
    return r ? r->codeNumber() : 0;
  };
  EXPECT_EQ(code(kGet, "fn/nothing"), 404);
  EXPECT_EQ(code(kGet, "elsewhere"), 404);
  EXPECT_EQ(code(kGet, "fn"), 404);
  EXPECT_EQ(code(kDelete, "fn/oob"), 405);
  EXPECT_EQ(code(kGet, "fn/loop"), 504);
  EXPECT_EQ(code(kGet, "fn/exit3"), 500);
  auto trap = s.exchange(s.request(kGet, "fn/oob"));
  ASSERT_TRUE(trap);
  EXPECT_EQ(trap->codeNumber(), 500);
  EXPECT_NE(trap->payload.find("trap"), std::string::npos) << trap->payload;  // diagnostic
  CoapMessage nul = s.request(kGet, "fn/oob");
  nul.options[1].second = std::string("o\0b", 3);
  auto bad = s.exchange(nul);
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->codeNumber(), 400);
  EXPECT_GE(metric(node, "tern_coap_requests_total{class=\"5.xx\"}"), 3u);
  EXPECT_GE(metric(node, "tern_coap_requests_total{class=\"4.xx\"}"), 5u);
}

TEST_F(CoapTest, OversizedPayloadIs413) {
  test::TerndProcess node(data());
  deploy(node, "echo", example("echo"));
  auto in = dir.path() / "big.bin";
  std::ofstream(in, std::ios::binary) << std::string((6u << 20) + 1, 'x');  // limit + 1
  auto r = coapClient({"-m", "post", "-f", in.string()}, uri(node, "/fn/echo"));
  ASSERT_TRUE(r.ok());
  EXPECT_NE(r->output.find("4.13"), std::string::npos) << r->output.substr(0, 500);
  EXPECT_EQ(metric(node, "tern_invocations_total{function=\"echo\",outcome=\"ok\"}"), 0u);
  CoapSocket s(node.coapPort());
  auto ok = s.exchange(s.request(kPost, "fn/echo", "", "still fine"));
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->payload, "still fine");
}

// Lines that libcoap wrote into the node's log.
size_t libcoapLines(const std::string& log) {
  size_t count = 0;
  for (size_t at = log.find("libcoap: "); at != std::string::npos; at = log.find("libcoap: ", at + 1)) {
    ++count;
  }
  return count;
}

// Every message that arrived on `s` and is waiting there now. A datagram the node sent
// before answering a later request on any socket is here once that answer has come: on
// loopback a datagram is queued at the receiver when send() returns.
std::vector<CoapMessage> waiting(CoapSocket& s) {
  std::vector<CoapMessage> out;
  while (auto bytes = s.receive(0)) {
    if (auto m = test::decodeCoap(*bytes)) out.push_back(*m);
  }
  return out;
}

TEST_F(CoapTest, GarbageDatagramsAreCountedAndTheNodeKeepsServing) {
  test::TerndProcess node(data());
  deploy(node, "echo", example("echo"));
  CoapSocket junkSocket(node.coapPort());
  CoapSocket s(node.coapPort());
  std::mt19937 rng(7);
  uint64_t sent = 0;
  std::set<uint16_t> resetIds;  // message IDs of the malformed Confirmable datagrams
  std::vector<CoapMessage> answers;  // what came back to junkSocket
  // Bursts of garbage, each followed by a request on another socket: the node reads its
  // socket in order, so once that request is answered, every datagram of the burst has
  // been screened, and the count is exact however loaded the machine is.
  for (int round = 0; round < 20; ++round) {
    for (int i = 0; i < 10; ++i) {
      std::string junk(1 + rng() % 64, '\0');
      for (auto& c : junk) c = static_cast<char>(rng() & 0xff);
      junk[0] = static_cast<char>((junk[0] & 0x3f) | 0x80);  // version 2: never valid CoAP
      junkSocket.send(junk);
      ++sent;
    }
    // A Confirmable message with a truncated option, and one longer than the endpoint's
    // MTU: each answered with a Reset carrying its message ID.
    uint16_t id = static_cast<uint16_t>(0x3300 + 2 * round);
    junkSocket.send(std::string("\x40\x01", 2) + char(id >> 8) + char(id & 0xff) + "\xb5" "fn");
    CoapMessage big = junkSocket.request(kPost, "fn/echo", "", std::string(2000, 'b'));
    big.messageId = static_cast<uint16_t>(id + 1);
    junkSocket.send(test::encodeCoap(big));
    sent += 2;
    resetIds.insert({id, static_cast<uint16_t>(id + 1)});
    auto ok = s.exchange(s.request(kPost, "fn/echo", "", "round " + std::to_string(round)));
    ASSERT_TRUE(ok) << "round " << round;
    EXPECT_EQ(ok->payload, "round " + std::to_string(round));
    for (auto& m : waiting(junkSocket)) answers.push_back(m);
  }
  EXPECT_EQ(metric(node, "tern_coap_garbage_datagrams_total"), sent);
  // Nothing reached libcoap: it would have answered with Resets of message ID 0 and
  // logged each datagram.
  std::set<uint16_t> got;
  for (const auto& m : answers) {
    EXPECT_EQ(m.type, CoapType::kRst);
    EXPECT_TRUE(got.insert(m.messageId).second) << "a second Reset for " << m.messageId;
  }
  EXPECT_EQ(got, resetIds);
  EXPECT_EQ(libcoapLines(node.log()), 0u) << node.log();
}

TEST_F(CoapTest, OversizedDatagramIsResetWithItsMessageId) {
  test::TerndProcess node(data());
  deploy(node, "echo", example("echo"));
  CoapSocket s(node.coapPort());
  CoapMessage big = s.request(kPost, "fn/echo", "", std::string(1500, 'x'));
  big.messageId = 0x5a17;
  s.send(test::encodeCoap(big));
  auto bytes = s.receive();
  ASSERT_TRUE(bytes);
  auto reset = test::decodeCoap(*bytes);
  ASSERT_TRUE(reset);
  EXPECT_EQ(reset->type, CoapType::kRst);
  EXPECT_EQ(reset->code, 0);
  EXPECT_EQ(reset->messageId, 0x5a17);
  EXPECT_EQ(metric(node, "tern_coap_garbage_datagrams_total"), 1u);
  EXPECT_EQ(metric(node, "tern_invocations_total{function=\"echo\",outcome=\"ok\"}"), 0u);
}

TEST_F(CoapTest, LibcoapLogLinesAreRateLimited) {
  test::TerndProcess node(data());
  deploy(node, "echo", example("echo"));
  CoapSocket s(node.coapPort());
  auto began = std::chrono::steady_clock::now();
  // Well-formed on the wire, so they pass the screen, but If-None-Match (option 5) must be
  // empty: libcoap refuses each and logs it (two lines or more without the limit).
  constexpr int kSent = 100;
  for (int i = 0; i < kSent; ++i) {
    CoapMessage m = s.request(kGet, "fn/echo");
    m.options.insert(m.options.begin(), {5, "x"});
    s.send(test::encodeCoap(m));
  }
  auto ok = s.exchange(s.request(kPost, "fn/echo", "", "still serving"));
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->payload, "still serving");
  ASSERT_TRUE(test::eventually([&] { return node.log().find("log line(s) suppressed") != std::string::npos; }))
      << node.log();
  // The bucket: a burst of 10 lines, then one line per second since the first datagram,
  // and a report of the suppressed lines every 10 s.
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
  size_t lines = libcoapLines(node.log());
  EXPECT_GE(lines, 2u);  // the limited lines and the report
  EXPECT_LE(lines, 10 + static_cast<size_t>(seconds) + 1 + 1 + static_cast<size_t>(seconds / 10))
      << node.log();
  EXPECT_LT(lines, static_cast<size_t>(kSent));
}

TEST_F(CoapTest, NonConfirmableRequestsGetNonConfirmableAnswers) {
  test::TerndProcess node(data());
  deploy(node, "echo", example("echo"));
  deploy(node, "slow", guest("sleeper"), "?env=SLEEP_MS=200");
  CoapSocket s(node.coapPort());
  auto r = s.exchange(s.request(kPost, "fn/echo", "", "non", CoapType::kNon));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->type, CoapType::kNon);
  EXPECT_EQ(r->payload, "non");
  auto slow = s.exchange(s.request(kGet, "fn/slow", "", "", CoapType::kNon));
  ASSERT_TRUE(slow);
  EXPECT_EQ(slow->type, CoapType::kNon);
  EXPECT_EQ(slow->payload, "done\n");
}

TEST_F(CoapTest, RetransmittedRequestsRunTheFunctionOnce) {
  test::TerndProcess node(data());
  deploy(node, "echo", example("echo"));
  deploy(node, "slow", guest("sleeper"), "?env=SLEEP_MS=2000");
  CoapSocket s(node.coapPort());
  // Piggybacked: the duplicate (same message ID) gets the same answer without a new run.
  CoapMessage m = s.request(kPost, "fn/echo", "", "once");
  auto first = s.exchange(m);
  ASSERT_TRUE(first);
  auto again = s.exchange(m);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->payload, "once");
  EXPECT_EQ(metric(node, "tern_invocations_total{function=\"echo\",outcome=\"ok\"}"), 1u);

  // Separate: duplicates while it runs are acknowledged again; one run, one answer.
  CoapMessage slow = s.request(kGet, "fn/slow");
  s.send(test::encodeCoap(slow));
  waitRunning(node, 1);
  s.send(test::encodeCoap(slow));
  auto answer = s.exchange(slow);
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->payload, "done\n");
  // A second run would have started when a duplicate arrived; once nothing runs or waits,
  // every run is counted.
  ASSERT_TRUE(test::eventually([&] {
    return node.metric("tern_worker_slots_busy") == 0 && node.metric("tern_queue_length") == 0;
  }));
  EXPECT_EQ(metric(node, "tern_invocations_total{function=\"slow\",outcome=\"ok\"}"), 1u);
}

TEST_F(CoapTest, CgiLikeEnvironment) {
  test::TerndProcess node(data());
  deploy(node, "cgi", guest("cgi"), "?env=GREETING=hi");
  CoapSocket s(node.coapPort());
  CoapMessage m = s.request(kPost, "fn/cgi/some/path", "q=1&r=2", "payload");
  m.options.insert(m.options.begin() + 4, {kContentFormat, std::string(1, '\x32')});  // json
  auto r = s.exchange(m);
  ASSERT_TRUE(r);
  for (const char* want :
       {"REQUEST_METHOD=POST\n", "PATH_INFO=/some/path\n", "QUERY_STRING=q=1&r=2\n",
        "SCRIPT_NAME=/fn/cgi\n", "CONTENT_TYPE=application/json\n", "CONTENT_LENGTH=7\n",
        "TERN_TRIGGER=coap\n", "GREETING=hi\n", "REMOTE_ADDR=127.0.0.1\n", "body=payload\n"}) {
    EXPECT_NE(r->payload.find(want), std::string::npos) << "missing " << want << " in\n"
                                                        << r->payload;
  }
}

TEST_F(CoapTest, SaturationAnswers503WithMaxAge) {
  test::TerndProcess node(data(), {"--workers", "1", "--queue", "0"});
  deploy(node, "slow", guest("sleeper"), "?env=SLEEP_MS=3000");
  CoapSocket a(node.coapPort());
  CoapMessage running = a.request(kGet, "fn/slow");
  a.send(test::encodeCoap(running));
  waitRunning(node, 1);
  CoapSocket b(node.coapPort());
  auto refused = b.exchange(b.request(kGet, "fn/slow"));
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->codeNumber(), 503);
  EXPECT_EQ(refused->uintOption(kMaxAge), 1u);
  auto done = a.exchange(running);  // the duplicate is acknowledged; the answer follows
  ASSERT_TRUE(done);
  EXPECT_EQ(done->payload, "done\n");
}

TEST_F(CoapTest, SigtermDrainsCoapInvocations) {
  test::TerndProcess node(data());
  deploy(node, "slow", guest("sleeper"), "?env=SLEEP_MS=2000");
  CoapSocket s(node.coapPort());
  CoapMessage m = s.request(kGet, "fn/slow");
  auto answer = std::async(std::launch::async, [&] { return s.exchange(m); });
  waitRunning(node, 1);
  EXPECT_EQ(node.terminate(), 0);
  auto r = answer.get();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->codeNumber(), 205);
  EXPECT_EQ(r->payload, "done\n");
}

// The next message on `s` with `token` and a response code (not an empty ACK).
std::optional<CoapMessage> responseTo(CoapSocket& s, const std::string& token) {
  while (auto bytes = s.receive()) {
    auto m = test::decodeCoap(*bytes);
    if (m && m->code != 0 && m->token == token) return m;
  }
  return std::nullopt;
}

TEST_F(CoapTest, StopClosesEveryWayInBeforeWaitingForAnAcknowledgement) {
  // The acknowledgement wait is long here, so the node is observably still stopping while
  // its separate response goes unacknowledged.
  test::TerndProcess node(data(), {"--coap-ack-wait-ms", "600000", "--drain-timeout-ms", "600000"});
  deploy(node, "slow", guest("sleeper"), "?env=SLEEP_MS=300");
  CoapSocket s(node.coapPort());
  CoapMessage m = s.request(kGet, "fn/slow");
  s.send(test::encodeCoap(m));
  auto separate = responseTo(s, m.token);  // not acknowledged
  ASSERT_TRUE(separate);
  ASSERT_EQ(separate->type, CoapType::kCon);
  EXPECT_EQ(separate->payload, "done\n");

  // A keep-alive HTTP connection, idle after its first request.
  int idle = test::connectTo(node.port());
  ASSERT_GE(idle, 0);
  std::string get = "GET /healthz HTTP/1.1\r\nHost: tern\r\n\r\n";
  ASSERT_EQ(::send(idle, get.data(), get.size(), MSG_NOSIGNAL), static_cast<ssize_t>(get.size()));
  std::string reply;
  ASSERT_TRUE(test::eventually([&] {
    char buf[4096];
    ssize_t n = ::recv(idle, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) reply.append(buf, static_cast<size_t>(n));
    auto r = test::parseReply(reply);
    return r.status == 200 && r.headers.count("content-length") &&
           r.body.size() == std::stoul(r.headers["content-length"]);
  }));

  auto exited = std::async(std::launch::async, [&node] { return node.terminate(); });
  auto stillRunning = [&] { return exited.wait_for(std::chrono::seconds(0)) != std::future_status::ready; };
  // HTTP refuses connections, and closes the idle one, while CoAP still waits for the
  // acknowledgement.
  EXPECT_TRUE(test::eventually([&] { return !test::acceptingOnLoopback(node.port()); },
                               std::chrono::seconds(60)));
  EXPECT_TRUE(test::eventually([&] {
    char c;
    return ::recv(idle, &c, 1, MSG_DONTWAIT) == 0;  // end of stream: closed by the node
  }, std::chrono::seconds(60)));
  ::close(idle);
  EXPECT_TRUE(stillRunning());
  // A new CoAP request starts nothing: 5.03.
  CoapSocket late(node.coapPort());
  auto refused = late.exchange(late.request(kGet, "fn/slow"));
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->codeNumber(), 503);
  EXPECT_NE(refused->payload.find("shutting down"), std::string::npos) << refused->payload;
  EXPECT_TRUE(stillRunning());

  // The acknowledgement ends the wait, and the node exits.
  CoapMessage ack;
  ack.type = CoapType::kAck;
  ack.messageId = separate->messageId;
  s.send(test::encodeCoap(ack));
  EXPECT_EQ(exited.get(), 0);
}

TEST_F(CoapTest, StopDoesNotWaitForAcknowledgementsWhenTheWaitIsZero) {
  test::TerndProcess node(data(), {"--coap-ack-wait-ms", "0", "--drain-timeout-ms", "600000"});
  deploy(node, "slow", guest("sleeper"), "?env=SLEEP_MS=300");
  CoapSocket s(node.coapPort());
  CoapMessage m = s.request(kGet, "fn/slow");
  s.send(test::encodeCoap(m));
  auto separate = responseTo(s, m.token);  // never acknowledged
  ASSERT_TRUE(separate);
  ASSERT_EQ(separate->type, CoapType::kCon);
  EXPECT_EQ(node.terminate(), 0);
  EXPECT_NE(node.log().find("stopped before every separate response was acknowledged"),
            std::string::npos)
      << node.log();
}

TEST_F(CoapTest, CoapCanBeTurnedOff) {
  test::TerndProcess node(data(), {"--coap-listen", "off"});
  EXPECT_EQ(node.coapPort(), 0);
  EXPECT_EQ(node.log().find("serving CoAP"), std::string::npos);
  EXPECT_EQ(test::request(node.port(), "GET", "/healthz").status, 200);
}

}  // namespace
}  // namespace tern
