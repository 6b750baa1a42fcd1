// Streams to devices against polling (docs/benchmarks.md, "Streams to devices"): a load
// generator for one running ternd (bench/stream_bench.sh starts one), in one process on a
// few threads, each running an io_context with its share of the devices.
//
//   --mode push  N devices each open a WebSocket to /v1/streams and subscribe to one topic.
//                The node's VmRSS (--node-pid) before any device, with half of them and with
//                all of them subscribed and idle gives the idle cost of a device connection.
//                Then K updates are published at --interval-ms (the steady window) and B
//                back to back (the burst). Each payload carries its publish time
//                (CLOCK_MONOTONIC; the node and this program share the machine), so each
//                device's receive time gives the publish-to-device latency of every update.
//   --mode poll  the same devices each keep one HTTP/1.1 keep-alive connection and poll
//                GET /v1/topics/T?after=LAST every --poll-ms, their phases spread uniformly
//                over the period; the same updates. An update's latency runs from its
//                publish to the first poll response that carries it.
// For both: per device and minute of the steady window, the messages it received and sent,
// the bytes both ways and its requests to the node; the node's CPU time in the window; in
// the burst, deliveries per second (its deliveries / the time from its first publish to its
// last delivery). Bytes are counted at the protocol the device speaks: WebSocket frames
// (payload plus the RFC 6455 header: 2 bytes up to 125 bytes of payload, 4 up to 64 KiB, and
// the 4-byte mask on the device's own frames) or HTTP messages (start line, headers and
// body). TCP/IP headers, acknowledgements and the WebSocket handshake (reported once,
// apart) are out of scope for both.
//
// The node allows --max-connections-per-client (128) connections per client address, the
// way devices behind their own addresses meet it. The devices here are spread over the
// source addresses 127.0.0.1 .. 127.0.0.N (all of 127/8 reaches the loopback), 100 per
// address by default, instead of lifting that limit for one address: the node keeps its
// per-client accounting (connections and the unsent-response budget) as deployed.

#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bench_support.h"

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace websocket = boost::beast::websocket;
using tcp = asio::ip::tcp;
using json = nlohmann::json;
using tern::bench::Summary;

int64_t monotonicNs() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

void sleepUntil(int64_t ns) {
  timespec ts{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
  while (::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
  }
}

enum class Mode { kPush, kPoll };

struct Options {
  std::string node = "http://127.0.0.1:8080";
  std::string token;
  size_t devices = 10000;
  Mode mode = Mode::kPush;
  unsigned updates = 12;
  unsigned intervalMs = 5000;
  unsigned burst = 20;
  unsigned pollMs = 2000;
  unsigned sourceAddresses = 0;  // 0: one per 100 devices
  int nodePid = 0;
  unsigned threads = 2;
  unsigned connectWindow = 256;  // connections being opened at once
  size_t payloadBytes = 100;
  std::string topic = "bench";
  unsigned settleMs = 3000;
  unsigned deliveryWaitS = 30;
};

// The node's process: memory and CPU time, from /proc. `field` is a line of
// /proc/PID/status ("VmRSS:", resident; "VmData:", heap and other private mappings).
uint64_t statusBytes(int pid, std::string_view field) {
  if (pid <= 0) return 0;
  std::ifstream in(fmt::format("/proc/{}/status", pid));
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with(field)) return std::stoull(line.substr(field.size())) * 1024;
  }
  return 0;
}
uint64_t residentBytes(int pid) { return statusBytes(pid, "VmRSS:"); }

double cpuSeconds(int pid) {
  if (pid <= 0) return 0;
  std::ifstream in(fmt::format("/proc/{}/stat", pid));
  std::string stat;
  std::getline(in, stat);
  size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return 0;
  std::istringstream fields(stat.substr(paren + 2));  // from field 3, the state
  std::string field;
  unsigned long long ticks = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i >= 14) ticks += std::stoull(field);  // utime, stime
  }
  return static_cast<double>(ticks) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

double ownCpuSeconds() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  auto s = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
  return s(ru.ru_utime) + s(ru.ru_stime);
}

// Raises the soft limit on descriptors (and the hard one when allowed) to `want`.
size_t raiseDescriptorLimit(size_t want) {
  rlimit rl{};
  ::getrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur >= want) return rl.rlim_cur;
  rlimit up{want, std::max<rlim_t>(rl.rlim_max, want)};
  if (::setrlimit(RLIMIT_NOFILE, &up) != 0) {
    up = {rl.rlim_max, rl.rlim_max};
    ::setrlimit(RLIMIT_NOFILE, &up);
  }
  ::getrlimit(RLIMIT_NOFILE, &rl);
  return rl.rlim_cur;
}

// RFC 6455 frame headers: the node's frames are unmasked; a client's carry a 4-byte mask.
size_t serverFrameHeader(size_t payload) { return payload < 126 ? 2 : payload < 65536 ? 4 : 10; }
size_t clientFrameHeader(size_t payload) { return serverFrameHeader(payload) + 4; }

// The integer after `key` in `text` (a JSON member such as "\"idx\":"), if any.
std::optional<int64_t> numberAfter(std::string_view text, std::string_view key) {
  size_t at = text.find(key);
  if (at == std::string_view::npos) return std::nullopt;
  const char* begin = text.data() + at + key.size();
  int64_t v = 0;
  auto [end, ec] = std::from_chars(begin, text.data() + text.size(), v);
  if (ec != std::errc()) return std::nullopt;
  return v;
}

// What the client threads count, read by the main thread (totals, relaxed), and the
// latency table each device writes its own row of.
struct Shared {
  Shared(const Options& o, tcp::endpoint node, std::string host)
      : options(o),
        node(node),
        host(std::move(host)),
        slots(o.updates + o.burst),
        latency(o.devices * slots, 0),
        addresses(o.sourceAddresses ? o.sourceAddresses
                                    : static_cast<unsigned>((o.devices + 99) / 100)) {}

  const Options& options;
  const tcp::endpoint node;
  const std::string host;  // the Host header
  const size_t slots;      // updates per device: steady and burst
  // [device * slots + update index]: publish-to-receipt in ns, 0 while not received.
  std::vector<int64_t> latency;
  const unsigned addresses;

  std::atomic<uint64_t> ready{0}, failed{0}, lost{0}, deliveries{0}, duplicates{0},
      terminated{0}, errors{0}, latePolls{0};
  std::atomic<uint64_t> messagesIn{0}, bytesIn{0}, messagesOut{0}, bytesOut{0}, requests{0},
      handshakeBytes{0};
  std::atomic<bool> stopping{false};

  std::mutex notesMu;
  std::vector<std::string> notes;  // the first few failures, for the report

  void note(std::string text) {
    std::lock_guard lock(notesMu);
    if (notes.size() < 8) notes.push_back(std::move(text));
  }
  tcp::endpoint sourceFor(size_t device) const {
    return {asio::ip::address_v4(0x7F000001u + static_cast<uint32_t>(device % addresses)), 0};
  }
  void record(size_t device, int64_t index, int64_t ns) {
    if (index < 0 || static_cast<size_t>(index) >= slots) return;
    int64_t& slot = latency[device * slots + static_cast<size_t>(index)];
    if (slot != 0) {
      duplicates.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    slot = std::max<int64_t>(ns, 1);
    deliveries.fetch_add(1, std::memory_order_relaxed);
  }
};

// One thread's io_context and its devices, opened at most `window` at a time, up to the
// number the main thread allows so far.
struct Lane {
  asio::io_context io{1};
  std::vector<std::function<void()>> starts;
  size_t next = 0;
  size_t allowed = 0;
  size_t opening = 0;
  unsigned window = 1;

  void openMore() {
    while (opening < window && next < std::min(allowed, starts.size())) {
      ++opening;
      starts[next++]();
    }
  }
  // A device finished opening (ready or failed).
  void opened() {
    --opening;
    openMore();
  }
};

// Binds a new socket to the device's source address; the port is picked at connect time
// (IP_BIND_ADDRESS_NO_PORT), so ports are shared across destinations.
beast::error_code openFrom(tcp::socket& socket, const tcp::endpoint& source) {
  beast::error_code ec;
  socket.open(tcp::v4(), ec);
  int one = 1;
  if (!ec) ::setsockopt(socket.native_handle(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
  if (!ec) socket.bind(source, ec);
  return ec;
}

// A device with a stream: a WebSocket to /v1/streams and one subscription.
class PushDevice {
 public:
  PushDevice(Shared& shared, Lane& lane, size_t id) : s_(shared), lane_(lane), id_(id), ws_(lane.io) {}

  void start() {
    if (auto ec = openFrom(ws_.next_layer(), s_.sourceFor(id_))) return fail("bind", ec);
    ws_.next_layer().async_connect(s_.node, [this](beast::error_code ec) {
      if (ec) return fail("connect", ec);
      ws_.next_layer().set_option(tcp::no_delay(true), ec);
      ws_.set_option(websocket::stream_base::decorator([this](websocket::request_type& req) {
        std::ostringstream out;
        out << req;
        handshakeOut_ = out.str().size();
      }));
      ws_.read_message_max(64u << 10);
      ws_.async_handshake(response_, s_.host, "/v1/streams", [this](beast::error_code ec) {
        if (ec) return fail("handshake", ec);
        std::ostringstream in;
        in << response_;
        s_.handshakeBytes.fetch_add(handshakeOut_ + in.str().size(), std::memory_order_relaxed);
        response_ = {};
        subscribe_ = fmt::format(R"({{"type":"subscribe","stream":1,"topic":"{}"}})", s_.options.topic);
        ws_.text(true);
        ws_.async_write(asio::buffer(subscribe_), [this](beast::error_code ec, size_t n) {
          if (ec) return fail("subscribe", ec);
          s_.requests.fetch_add(1, std::memory_order_relaxed);
          s_.messagesOut.fetch_add(1, std::memory_order_relaxed);
          s_.bytesOut.fetch_add(n + clientFrameHeader(n), std::memory_order_relaxed);
          std::string().swap(subscribe_);
          read();
        });
      });
    });
  }

 private:
  void read() {
    ws_.async_read(buffer_, [this](beast::error_code ec, size_t n) {
      if (ec) return fail(subscribed_ ? "read" : "subscribed", ec);
      int64_t now = monotonicNs();
      s_.messagesIn.fetch_add(1, std::memory_order_relaxed);
      s_.bytesIn.fetch_add(n + serverFrameHeader(n), std::memory_order_relaxed);
      auto data = buffer_.cdata();
      onFrame(std::string_view(static_cast<const char*>(data.data()), data.size()), now);
      buffer_.consume(buffer_.size());
      read();
    });
  }

  void onFrame(std::string_view text, int64_t now) {
    if (text.starts_with(R"({"type":"data")")) {
      auto index = numberAfter(text, R"("idx":)");
      auto published = numberAfter(text, R"("pub_ns":)");
      if (index && published) s_.record(id_, *index, now - *published);
      return;
    }
    if (text.find(R"("type":"subscribed")") != std::string_view::npos && !subscribed_) {
      subscribed_ = true;
      s_.ready.fetch_add(1);
      return lane_.opened();
    }
    if (text.find(R"("type":"terminate")") != std::string_view::npos) {
      s_.terminated.fetch_add(1);
      s_.note(fmt::format("device {}: {}", id_, text));
    }
  }

  void fail(const char* stage, beast::error_code ec) {
    if (s_.stopping.load()) return;
    if (subscribed_) {
      s_.lost.fetch_add(1);
    } else {
      s_.failed.fetch_add(1);
    }
    s_.note(fmt::format("device {} from {}: {}: {}", id_, s_.sourceFor(id_).address().to_string(), stage, ec.message()));
    if (!subscribed_) {
      subscribed_ = true;  // counted once
      lane_.opened();
    }
  }

  Shared& s_;
  Lane& lane_;
  const size_t id_;
  websocket::stream<tcp::socket> ws_;
  websocket::response_type response_;
  beast::flat_buffer buffer_;
  std::string subscribe_;
  size_t handshakeOut_ = 0;
  bool subscribed_ = false;
};

// A device that polls: one keep-alive HTTP/1.1 connection, GET /v1/topics/T?after=LAST on a
// fixed schedule.
class PollDevice {
 public:
  PollDevice(Shared& shared, Lane& lane, size_t id)
      : s_(shared), lane_(lane), id_(id), socket_(lane.io), timer_(lane.io) {}

  struct Sample {
    int64_t sentNs;
    int64_t tookNs;
  };
  std::vector<Sample> samples;  // each poll's round trip (read once the lane stopped)

  void start() {
    if (auto ec = openFrom(socket_, s_.sourceFor(id_))) return fail("bind", ec);
    socket_.async_connect(s_.node, [this](beast::error_code ec) {
      if (ec) return fail("connect", ec);
      socket_.set_option(tcp::no_delay(true), ec);
      request_.version(11);
      request_.method(bhttp::verb::get);
      request_.set(bhttp::field::host, s_.host);
      request_.set(bhttp::field::authorization, "Bearer " + s_.options.token);
      poll();
    });
  }

  // Polls every `periodNs` from `firstNs` on (called on the lane's thread), if it opened.
  void schedule(int64_t firstNs, int64_t periodNs) {
    if (!open_) return;
    period_ = periodNs;
    due_ = firstNs;
    arm();
  }

 private:
  void arm() {
    timer_.expires_at(asio::steady_timer::time_point(std::chrono::nanoseconds(due_)));
    timer_.async_wait([this](beast::error_code ec) {
      if (ec || s_.stopping.load()) return;
      poll();
    });
  }

  void poll() {
    request_.target(fmt::format("/v1/topics/{}?after={}", s_.options.topic, after_));
    sent_ = monotonicNs();
    bhttp::async_write(socket_, request_, [this](beast::error_code ec, size_t n) {
      if (ec) return fail("write", ec);
      if (ready_) s_.requests.fetch_add(1, std::memory_order_relaxed);
      s_.messagesOut.fetch_add(1, std::memory_order_relaxed);
      s_.bytesOut.fetch_add(n, std::memory_order_relaxed);
      response_ = {};
      bhttp::async_read(socket_, buffer_, response_, [this](beast::error_code ec, size_t n) {
        if (ec) return fail("read", ec);
        int64_t now = monotonicNs();
        s_.messagesIn.fetch_add(1, std::memory_order_relaxed);
        s_.bytesIn.fetch_add(n, std::memory_order_relaxed);
        onResponse(now);
        if (!ready_) {
          ready_ = true;
          open_ = true;
          s_.ready.fetch_add(1);
          return lane_.opened();
        }
        samples.push_back({sent_, now - sent_});
        if (s_.stopping.load()) return;
        due_ += period_;
        if (due_ < now) {  // the answer came after the next poll was due: poll now
          s_.latePolls.fetch_add(1, std::memory_order_relaxed);
          due_ = now;
        }
        arm();
      });
    });
  }

  void onResponse(int64_t now) {
    if (response_.result_int() != 200) {
      s_.errors.fetch_add(1);
      s_.note(fmt::format("device {}: HTTP {}: {}", id_, response_.result_int(), response_.body()));
      return;
    }
    json body = json::parse(response_.body(), nullptr, false);
    if (!body.is_object()) {
      s_.errors.fetch_add(1);
      return;
    }
    if (!ready_) {  // the first poll only finds where the topic stands
      after_ = body.value("last_seq", uint64_t{0});
      return;
    }
    auto updates = body.find("updates");
    if (updates == body.end() || !updates->is_array()) return;
    for (const auto& u : *updates) {
      auto seq = u.value("seq", uint64_t{0});
      if (seq <= after_) continue;
      after_ = seq;
      auto payload = u.find("payload");
      if (payload == u.end() || !payload->is_object()) continue;
      s_.record(id_, payload->value("idx", int64_t{-1}), now - payload->value("pub_ns", now));
    }
  }

  void fail(const char* stage, beast::error_code ec) {
    if (s_.stopping.load()) return;
    s_.note(fmt::format("device {} from {}: {}: {}", id_, s_.sourceFor(id_).address().to_string(), stage, ec.message()));
    if (ready_) {
      if (open_) s_.lost.fetch_add(1);
      open_ = false;
      return;
    }
    s_.failed.fetch_add(1);
    ready_ = true;  // counted once
    lane_.opened();
  }

  Shared& s_;
  Lane& lane_;
  const size_t id_;
  tcp::socket socket_;
  asio::steady_timer timer_;
  bhttp::request<bhttp::empty_body> request_;
  bhttp::response<bhttp::string_body> response_;
  beast::flat_buffer buffer_;
  uint64_t after_ = 0;
  int64_t sent_ = 0;
  int64_t due_ = 0;
  int64_t period_ = 0;
  bool ready_ = false;  // opened or failed: counted
  bool open_ = false;   // connected and answered its first poll
};

// One blocking keep-alive connection from 127.0.0.1: the publisher, and the node's
// statistics. It connects at its first call, and connects again once when the node closed
// it in between (a connection that sends nothing has the node's read timeout, 10 s, to
// begin its first request, and its idle timeout after that).
class Publisher {
 public:
  Publisher(const tcp::endpoint& node, std::string host, std::string token)
      : node_(node), socket_(io_), host_(std::move(host)), token_(std::move(token)) {}

  std::pair<int, std::string> call(bhttp::verb method, const std::string& target, std::string body = {}) {
    bhttp::request<bhttp::string_body> req{method, target, 11};
    req.set(bhttp::field::host, host_);
    req.set(bhttp::field::authorization, "Bearer " + token_);
    if (method == bhttp::verb::post) req.set(bhttp::field::content_type, "application/json");
    req.body() = std::move(body);
    req.prepare_payload();
    for (int attempt = 0;; ++attempt) {
      try {
        if (!socket_.is_open()) {
          socket_.connect(node_);
          socket_.set_option(tcp::no_delay(true));
          buffer_.clear();
        }
        bhttp::write(socket_, req);
        bhttp::response<bhttp::string_body> res;
        bhttp::read(socket_, buffer_, res);
        return {res.result_int(), std::move(res.body())};
      } catch (const beast::system_error&) {
        beast::error_code ignored;
        socket_.close(ignored);
        if (attempt > 0) throw;
      }
    }
  }

 private:
  asio::io_context io_;
  tcp::endpoint node_;
  tcp::socket socket_;
  beast::flat_buffer buffer_;
  std::string host_;
  std::string token_;
};

struct Snapshot {
  int64_t at = 0;
  double nodeCpu = 0, ownCpu = 0;
  uint64_t messagesIn = 0, bytesIn = 0, messagesOut = 0, bytesOut = 0, requests = 0;
};

Snapshot snapshot(const Shared& s, int pid) {
  return Snapshot{monotonicNs(),
                  cpuSeconds(pid),
                  ownCpuSeconds(),
                  s.messagesIn.load(),
                  s.bytesIn.load(),
                  s.messagesOut.load(),
                  s.bytesOut.load(),
                  s.requests.load()};
}

double ms(int64_t ns) { return static_cast<double>(ns) / 1e6; }

json summaryJson(std::vector<int64_t>& samples) {
  Summary s = tern::bench::summarize(samples);
  return json{{"count", s.count}, {"p50_ms", ms(s.median)}, {"p90_ms", ms(s.p90)},
              {"p99_ms", ms(s.p99)}, {"max_ms", ms(s.max)}, {"mean_ms", s.mean / 1e6}};
}

std::string describe(const json& s) {
  if (s["count"].get<size_t>() == 0) return "none";
  return fmt::format("p50 {:.2f} ms, p90 {:.2f} ms, p99 {:.2f} ms, max {:.2f} ms ({} samples)",
                     s["p50_ms"].get<double>(), s["p90_ms"].get<double>(), s["p99_ms"].get<double>(),
                     s["max_ms"].get<double>(), s["count"].get<size_t>());
}

// The lines of the node's /metrics that say what went wrong, if anything.
json metricsOfInterest(const std::string& text) {
  json out = json::object();
  std::istringstream in(text);
  std::string line;
  for (const char* prefix : {"tern_stream_dropped_total", "tern_stream_terminated_total",
                             "tern_http_connections_refused_total", "tern_http_idle_connections_closed_total",
                             "tern_http_bad_requests_total", "tern_stream_deliveries_total",
                             "tern_http_connections_open"}) {
    in.clear();
    in.seekg(0);
    while (std::getline(in, line)) {
      if (line.rfind(prefix, 0) != 0) continue;
      size_t space = line.rfind(' ');
      if (space == std::string::npos) continue;
      out[line.substr(0, space)] = std::stod(line.substr(space + 1));
    }
  }
  return out;
}

int run(const Options& o) {
  // The node's address, from http://HOST:PORT (an IPv4 literal).
  std::string_view url = o.node;
  if (url.starts_with("http://")) url.remove_prefix(7);
  while (url.ends_with("/")) url.remove_suffix(1);
  size_t colon = url.rfind(':');
  beast::error_code ec;
  auto address = asio::ip::make_address_v4(std::string(url.substr(0, colon)), ec);
  uint16_t port = 0;
  if (colon == std::string_view::npos || ec ||
      std::from_chars(url.data() + colon + 1, url.data() + url.size(), port).ec != std::errc()) {
    std::cerr << "tern_bench_stream: --node expects http://IPV4:PORT, got " << o.node << "\n";
    return 2;
  }
  const tcp::endpoint node(address, port);
  size_t limit = raiseDescriptorLimit(o.devices + 1024);
  if (limit < o.devices + 64) {
    std::cerr << fmt::format("tern_bench_stream: {} devices need about {} descriptors, the limit is {}\n",
                             o.devices, o.devices + 64, limit);
    return 2;
  }

  Shared s(o, node, std::string(url));
  const bool push = o.mode == Mode::kPush;
  const size_t n = o.devices;
  std::vector<std::unique_ptr<Lane>> lanes;
  for (unsigned t = 0; t < std::max(1u, o.threads); ++t) {
    lanes.push_back(std::make_unique<Lane>());
    lanes.back()->window = std::max(1u, o.connectWindow / std::max(1u, o.threads));
  }
  std::vector<std::unique_ptr<PushDevice>> pushers;
  std::vector<std::unique_ptr<PollDevice>> pollers;
  for (size_t d = 0; d < n; ++d) {
    Lane& lane = *lanes[d % lanes.size()];
    if (push) {
      pushers.push_back(std::make_unique<PushDevice>(s, lane, d));
      lane.starts.push_back([dev = pushers.back().get()] { dev->start(); });
    } else {
      pollers.push_back(std::make_unique<PollDevice>(s, lane, d));
      lane.starts.push_back([dev = pollers.back().get()] { dev->start(); });
    }
  }
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::vector<std::thread> threads;
  for (auto& lane : lanes) {
    work.push_back(asio::make_work_guard(lane->io));
    threads.emplace_back([io = &lane->io] { io->run(); });
  }
  // Stops the lanes' threads before anything they use goes, also when a call throws.
  auto stopLanes = [&] {
    s.stopping.store(true);
    work.clear();
    for (auto& lane : lanes) lane->io.stop();
    for (auto& t : threads) {
      if (t.joinable()) t.join();
    }
  };
  struct StopAtExit {
    std::function<void()> stop;
    ~StopAtExit() { stop(); }
  } stopAtExit{stopLanes};

  Publisher publisher(node, s.host, o.token);
  const uint64_t rss0 = residentBytes(o.nodePid);
  const uint64_t data0 = statusBytes(o.nodePid, "VmData:");
  std::cerr << fmt::format("{} mode: {} devices from {} source addresses; node RSS {:.1f} MiB\n",
                           push ? "push" : "poll", n, s.addresses, static_cast<double>(rss0) / (1 << 20));

  // Opens the devices up to `target` and waits until each is ready or failed.
  auto openUpTo = [&](size_t target) {
    for (size_t i = 0; i < lanes.size(); ++i) {
      // Device d is on lane d % lanes: lane i has the devices below target that are i mod lanes.
      size_t share = target / lanes.size() + (i < target % lanes.size() ? 1 : 0);
      asio::post(lanes[i]->io, [l = lanes[i].get(), share] {
        l->allowed = share;
        l->openMore();
      });
    }
    int64_t deadline = monotonicNs() + int64_t{300} * 1000000000;
    int64_t report = monotonicNs() + int64_t{5} * 1000000000;
    while (s.ready.load() + s.failed.load() < target && monotonicNs() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      if (monotonicNs() > report) {
        report += int64_t{5} * 1000000000;
        std::cerr << fmt::format("  {} ready, {} failed\n", s.ready.load(), s.failed.load());
      }
    }
  };
  const int64_t openStart = monotonicNs();
  openUpTo(n / 2);
  const int64_t halfOpened = monotonicNs();
  std::this_thread::sleep_for(std::chrono::milliseconds(o.settleMs));
  const uint64_t rssHalf = residentBytes(o.nodePid);
  const size_t readyHalf = s.ready.load();
  const int64_t secondStart = monotonicNs();
  openUpTo(n);
  const int64_t allOpened = monotonicNs();
  std::this_thread::sleep_for(std::chrono::milliseconds(o.settleMs));
  const uint64_t rssAll = residentBytes(o.nodePid);
  const uint64_t dataAll = statusBytes(o.nodePid, "VmData:");
  const size_t ready = s.ready.load();
  json hubBefore;
  if (push) {
    auto [status, body] = publisher.call(bhttp::verb::get, "/v1/streams");
    hubBefore = json::parse(body, nullptr, false);
    hubBefore.erase("topics");
  }
  std::cerr << fmt::format("  {} ready, {} failed in {:.1f} s; node RSS {:.1f} MiB\n", ready, s.failed.load(),
                           ms(halfOpened - openStart + allOpened - secondStart) / 1000,
                           static_cast<double>(rssAll) / (1 << 20));

  // Polling devices start their schedules, spread uniformly over one period, and run one
  // whole period before the first update.
  const int64_t period = int64_t{o.pollMs} * 1000000;
  if (!push) {
    int64_t first = monotonicNs() + 100000000;
    for (size_t d = 0; d < n; ++d) {
      asio::post(lanes[d % lanes.size()]->io, [dev = pollers[d].get(), at = first + period * static_cast<int64_t>(d) / static_cast<int64_t>(n), period] {
        dev->schedule(at, period);
      });
    }
    sleepUntil(first + period);
  }

  // The steady window: K updates at the interval; then the burst.
  const size_t k = o.updates;
  std::vector<int64_t> publishedNs(s.slots, 0);
  std::vector<int64_t> publishRtt;
  auto publish = [&](size_t index) {
    int64_t t = monotonicNs();
    publishedNs[index] = t;
    // The update as published is also what its data frame carries (the node renders JSON
    // payloads compactly, and these keys are already in its order).
    std::string update = fmt::format(R"({{"idx":{},"pad":"","pub_ns":{}}})", index, t);
    if (update.size() < o.payloadBytes) update.insert(update.find(R"(","pub_ns")"), o.payloadBytes - update.size(), 'x');
    auto [status, body] = publisher.call(bhttp::verb::post, "/v1/topics/" + o.topic, std::move(update));
    publishRtt.push_back(monotonicNs() - t);
    if (status != 200) s.note(fmt::format("publish {}: HTTP {}: {}", index, status, body));
  };
  const int64_t interval = int64_t{o.intervalMs} * 1000000;
  const Snapshot w0 = snapshot(s, o.nodePid);
  for (size_t i = 0; i < k; ++i) {
    sleepUntil(w0.at + static_cast<int64_t>(i) * interval);
    publish(i);
  }
  sleepUntil(w0.at + static_cast<int64_t>(k) * interval);
  const Snapshot w1 = snapshot(s, o.nodePid);
  const uint64_t rssWindow = residentBytes(o.nodePid);
  for (size_t i = k; i < s.slots; ++i) publish(i);
  const int64_t lastPublish = monotonicNs();
  const uint64_t expected = static_cast<uint64_t>(ready) * s.slots;
  int64_t wait = int64_t{o.deliveryWaitS} * 1000000000 + (push ? 0 : 2 * period);
  while (s.deliveries.load() < expected && monotonicNs() < lastPublish + wait) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const Snapshot b1 = snapshot(s, o.nodePid);
  const uint64_t rssBurst = residentBytes(o.nodePid);
  auto [hubStatus, hubText] = publisher.call(bhttp::verb::get, "/v1/streams");
  json hubAfter = json::parse(hubText, nullptr, false);
  if (hubAfter.is_object()) hubAfter.erase("topics");
  json nodeMetrics = metricsOfInterest(publisher.call(bhttp::verb::get, "/metrics").second);

  stopLanes();

  // Latencies: the steady window and the burst apart; per steady update, the time until
  // its last device had it.
  std::vector<int64_t> steady, burst, fanout;
  uint64_t missingSteady = 0, missingBurst = 0;
  int64_t lastBurstReceipt = 0;
  std::vector<int64_t> lastReceipt(s.slots, 0);
  for (size_t d = 0; d < n; ++d) {
    for (size_t i = 0; i < s.slots; ++i) {
      int64_t l = s.latency[d * s.slots + i];
      if (l == 0) {
        (i < k ? missingSteady : missingBurst) += 1;
        continue;
      }
      (i < k ? steady : burst).push_back(l);
      lastReceipt[i] = std::max(lastReceipt[i], publishedNs[i] + l);
      if (i >= k) lastBurstReceipt = std::max(lastBurstReceipt, publishedNs[i] + l);
    }
  }
  for (size_t i = 0; i < k; ++i) {
    if (lastReceipt[i] != 0) fanout.push_back(lastReceipt[i] - publishedNs[i]);
  }
  const size_t burstDelivered = burst.size();
  const double burstSeconds =
      lastBurstReceipt > 0 ? static_cast<double>(lastBurstReceipt - publishedNs[k]) / 1e9 : 0;
  std::vector<int64_t> pollRtt;
  for (auto& p : pollers) {
    for (const auto& sample : p->samples) {
      if (sample.sentNs >= w0.at && sample.sentNs < w1.at) pollRtt.push_back(sample.tookNs);
    }
  }

  const double windowS = static_cast<double>(w1.at - w0.at) / 1e9;
  const double perDeviceMinute = static_cast<double>(ready) * windowS / 60;
  auto rate = [&](uint64_t a, uint64_t b) { return perDeviceMinute > 0 ? static_cast<double>(b - a) / perDeviceMinute : 0; };
  json out{
      {"mode", push ? "push" : "poll"},
      {"devices", n},
      {"source_addresses", s.addresses},
      {"ready", ready},
      {"failed", s.failed.load()},
      {"lost_after_ready", s.lost.load()},
      {"open_seconds", ms(halfOpened - openStart + allOpened - secondStart) / 1000},
      {"node_rss_bytes", {{"before", rss0}, {"half", rssHalf}, {"all_idle", rssAll},
                          {"after_window", rssWindow}, {"after_burst", rssBurst}}},
      {"node_vmdata_bytes", {{"before", data0}, {"all_idle", dataAll}}},
      {"idle_bytes_per_connection",
       ready > 0 ? (static_cast<double>(rssAll) - static_cast<double>(rss0)) / static_cast<double>(ready) : 0},
      {"idle_bytes_per_connection_second_half",
       ready > readyHalf ? (static_cast<double>(rssAll) - static_cast<double>(rssHalf)) /
                               static_cast<double>(ready - readyHalf)
                         : 0},
      {"updates", k},
      {"interval_ms", o.intervalMs},
      {"poll_ms", push ? 0 : o.pollMs},
      {"payload_bytes", o.payloadBytes},
      {"window_s", windowS},
      {"latency", summaryJson(steady)},
      {"missing", missingSteady},
      {"fanout", summaryJson(fanout)},
      {"burst",
       {{"updates", o.burst},
        {"deliveries", burstDelivered},
        {"missing", missingBurst},
        {"seconds", burstSeconds},
        {"deliveries_per_s", burstSeconds > 0 ? static_cast<double>(burstDelivered) / burstSeconds : 0},
        {"node_cpu_pct", 100 * (b1.nodeCpu - w1.nodeCpu) / (static_cast<double>(b1.at - w1.at) / 1e9)},
        {"client_cpu_pct", 100 * (b1.ownCpu - w1.ownCpu) / (static_cast<double>(b1.at - w1.at) / 1e9)},
        {"latency", summaryJson(burst)}}},
      {"per_device_per_minute",
       {{"messages_in", rate(w0.messagesIn, w1.messagesIn)},
        {"bytes_in", rate(w0.bytesIn, w1.bytesIn)},
        {"messages_out", rate(w0.messagesOut, w1.messagesOut)},
        {"bytes_out", rate(w0.bytesOut, w1.bytesOut)},
        {"requests", rate(w0.requests, w1.requests)}}},
      {"subscribes_per_device", push && ready > 0 ? static_cast<double>(s.requests.load()) / static_cast<double>(ready) : 0},
      {"handshake_bytes_per_device", push && ready > 0 ? static_cast<double>(s.handshakeBytes.load()) / static_cast<double>(ready) : 0},
      {"node_cpu_pct", windowS > 0 ? 100 * (w1.nodeCpu - w0.nodeCpu) / windowS : 0},
      {"client_cpu_pct", windowS > 0 ? 100 * (w1.ownCpu - w0.ownCpu) / windowS : 0},
      {"publish_rtt", summaryJson(publishRtt)},
      {"poll_rtt", summaryJson(pollRtt)},
      {"late_polls", s.latePolls.load()},
      {"duplicates", s.duplicates.load()},
      {"terminated", s.terminated.load()},
      {"errors", s.errors.load()},
      {"hub_before", hubBefore},
      {"hub_after", hubAfter},
      {"node_metrics", nodeMetrics},
      {"notes", s.notes}};

  const auto& rss = out["node_rss_bytes"];
  const auto& pm = out["per_device_per_minute"];
  const auto& b = out["burst"];
  auto mib = [](const json& v) { return static_cast<double>(v.get<uint64_t>()) / (1 << 20); };
  std::cout << fmt::format("## {} mode: {} devices ({} ready, {} failed, {} lost later; {} source addresses)\n",
                           push ? "push" : "poll", n, ready, s.failed.load(), s.lost.load(), s.addresses);
  std::cout << fmt::format("opened in {:.1f} s; node RSS {:.1f} MiB before, {:.1f} MiB with {}, {:.1f} MiB with {} idle, "
                           "{:.1f} MiB after the window, {:.1f} MiB after the burst\n",
                           out["open_seconds"].get<double>(), mib(rss["before"]), mib(rss["half"]), readyHalf,
                           mib(rss["all_idle"]), ready, mib(rss["after_window"]), mib(rss["after_burst"]));
  std::cout << fmt::format("idle cost per {}: {:.0f} bytes of node RSS (second half alone: {:.0f}); "
                           "VmData {:.0f} bytes\n",
                           push ? "device connection (WebSocket + one stream)" : "keep-alive connection",
                           out["idle_bytes_per_connection"].get<double>(),
                           out["idle_bytes_per_connection_second_half"].get<double>(),
                           ready > 0 ? (static_cast<double>(dataAll) - static_cast<double>(data0)) / static_cast<double>(ready) : 0);
  std::cout << fmt::format("steady window: {} updates every {} ms over {:.1f} s{}\n", k, o.intervalMs, windowS,
                           push ? "" : fmt::format(", devices polling every {} ms", o.pollMs));
  std::cout << fmt::format("  publish-to-device latency: {}; missing {}\n", describe(out["latency"]), missingSteady);
  std::cout << fmt::format("  time until the last device had an update: {}\n", describe(out["fanout"]));
  std::cout << fmt::format("  per device per minute: {:.2f} messages in, {:.0f} bytes in; {:.2f} messages out, "
                           "{:.0f} bytes out; {:.2f} requests to the node\n",
                           pm["messages_in"].get<double>(), pm["bytes_in"].get<double>(),
                           pm["messages_out"].get<double>(), pm["bytes_out"].get<double>(),
                           pm["requests"].get<double>());
  if (push) {
    std::cout << fmt::format("  requests: {:.2f} subscribe per connection, once; the WebSocket handshake "
                             "{:.0f} bytes per connection, once\n",
                             out["subscribes_per_device"].get<double>(), out["handshake_bytes_per_device"].get<double>());
  } else {
    std::cout << fmt::format("  poll round trip: {}; late polls {}\n", describe(out["poll_rtt"]), s.latePolls.load());
  }
  std::cout << fmt::format("  node CPU {:.1f}% of one core, this load generator {:.1f}%\n",
                           out["node_cpu_pct"].get<double>(), out["client_cpu_pct"].get<double>());
  std::cout << fmt::format("burst: {} updates back to back: {} deliveries in {:.3f} s = {:.0f} deliveries/s; "
                           "latency {}; missing {}; node CPU {:.0f}%, this load generator {:.0f}%\n",
                           o.burst, burstDelivered, burstSeconds, b["deliveries_per_s"].get<double>(),
                           describe(b["latency"]), missingBurst, b["node_cpu_pct"].get<double>(),
                           b["client_cpu_pct"].get<double>());
  std::cout << fmt::format("publish call (POST /v1/topics): {}\n", describe(out["publish_rtt"]));
  if (!hubAfter.is_null()) std::cout << "node /v1/streams after: " << hubAfter.dump() << "\n";
  std::cout << "node metrics: " << nodeMetrics.dump() << "\n";
  for (const auto& note : s.notes) std::cout << "note: " << note << "\n";
  std::cout << out.dump() << std::endl;
  // The devices' sockets close with the process, without tearing down 10,000 objects.
  std::fflush(stdout);
  std::_Exit(0);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  std::string mode = "push";
  CLI::App app{"Streams to devices: N devices on WebSockets (push) or polling over HTTP (poll) "
               "against one ternd; latency, deliveries per second, idle memory per connection, "
               "messages, bytes and requests per device per minute"};
  app.add_option("--node", o.node, "the node, http://IPV4:PORT")->capture_default_str();
  app.add_option("--token", o.token, "the node's admin token (publish, and the poll route)")->required();
  app.add_option("--devices", o.devices, "devices, one connection each")->capture_default_str();
  app.add_option("--mode", mode, "push (WebSocket streams) or poll (GET /v1/topics)")
      ->check(CLI::IsMember({"push", "poll"}))
      ->capture_default_str();
  app.add_option("--updates", o.updates, "updates in the steady window")->capture_default_str();
  app.add_option("--interval-ms", o.intervalMs, "between updates in the steady window")->capture_default_str();
  app.add_option("--burst", o.burst, "updates published back to back after the window")
      ->check(CLI::Range(1u, 100u))
      ->capture_default_str();
  app.add_option("--poll-ms", o.pollMs, "poll period of each device (poll mode)")->capture_default_str();
  app.add_option("--source-addresses", o.sourceAddresses,
                 "spread the devices over 127.0.0.1 .. 127.0.0.N (default: one per 100 devices)");
  app.add_option("--node-pid", o.nodePid, "the node's pid, for its RSS and CPU time");
  app.add_option("--threads", o.threads, "client threads")->capture_default_str();
  app.add_option("--connect-window", o.connectWindow, "connections being opened at once")->capture_default_str();
  app.add_option("--payload-bytes", o.payloadBytes, "bytes of each published update")
      ->check(CLI::Range(size_t{64}, size_t{60000}))
      ->capture_default_str();
  app.add_option("--topic", o.topic, "the topic")->capture_default_str();
  app.add_option("--settle-ms", o.settleMs, "wait before reading the node's RSS")->capture_default_str();
  app.add_option("--delivery-wait-s", o.deliveryWaitS, "wait for missing deliveries after the burst")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  o.mode = mode == "push" ? Mode::kPush : Mode::kPoll;
  if (o.devices == 0 || o.updates == 0 || o.pollMs == 0) {
    std::cerr << "tern_bench_stream: --devices, --updates and --poll-ms must be positive\n";
    return 2;
  }
  try {
    return run(o);
  } catch (const std::exception& e) {  // the publisher's blocking calls throw
    std::cerr << "tern_bench_stream: " << e.what() << "\n";
    return 1;
  }
}
