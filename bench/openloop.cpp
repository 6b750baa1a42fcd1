// An open-loop HTTP load generator for tern's scheduler benchmark: each function gets a
// Poisson stream of GET /fn/NAME requests at its own rate, sent at their scheduled times
// whether or not earlier requests have been answered (wrk is closed-loop: a slow server
// slows its clients down and hides the queueing). Latency is measured from the intended
// send time, so a late send counts against the server, not for it (no coordinated
// omission). Talks only to 127.0.0.1.
//
//   tern_bench_openloop --port P --duration-s D --fn NAME:RATE:SLO_MS [--fn ...] [--seed S]
//
// Prints one line per function: requests sent, answered 200, within the objective,
// refused (429), other failures, attainment (within / sent) and latency percentiles of
// the 200s; and, to show the generator itself kept up, how late its sends were against
// their schedule (p99 and max) and the CPU time it used (user + system).

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace {

int64_t nowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct Function {
  std::string name;
  double rate = 0;
  double sloMs = 0;
  std::string request;
  int64_t nextNs = 0;
  uint64_t sent = 0, ok = 0, within = 0, refused = 0, failed = 0;
  std::vector<double> latencyMs;  // of 200 answers
  std::vector<double> sendLagMs;  // actual send time - intended send time
};

struct Conn {
  int fd = -1;
  bool busy = false;
  bool connecting = false;  // request not sent yet: waiting for the handshake
  size_t fn = 0;
  int64_t intendedNs = 0;
  std::string in;
};

// A non-blocking connection to 127.0.0.1:port; `pending` is set while the handshake is
// still in progress (the node's accept backlog is full), so the generator never blocks on
// a slow node and keeps sending on schedule.
int connectTo(uint16_t port, bool& pending) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  pending = false;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    if (errno != EINPROGRESS) {
      ::close(fd);
      return -1;
    }
    pending = true;
  }
  return fd;
}

// A complete response in `in`: its status, and the bytes it took; 0 bytes if incomplete.
size_t parseResponse(const std::string& in, int& status) {
  size_t end = in.find("\r\n\r\n");
  if (end == std::string::npos || in.size() < 12) return 0;
  status = std::atoi(in.c_str() + 9);
  size_t length = 0;
  std::string head = in.substr(0, end);
  std::transform(head.begin(), head.end(), head.begin(), ::tolower);
  if (size_t p = head.find("content-length:"); p != std::string::npos) {
    length = std::strtoul(head.c_str() + p + 15, nullptr, 10);
  }
  return in.size() >= end + 4 + length ? end + 4 + length : 0;
}

double percentile(std::vector<double>& v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())))];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Open-loop Poisson HTTP load against a tern node on 127.0.0.1"};
  uint16_t port = 8080;
  double durationS = 10;
  unsigned seed = 1;
  std::vector<std::string> specs;
  app.add_option("--port", port, "the node's HTTP port on 127.0.0.1")->required();
  app.add_option("--duration-s", durationS, "seconds of load")->check(CLI::Range(0.1, 3600.0));
  app.add_option("--fn", specs, "NAME:RATE:SLO_MS (repeatable)")->required();
  app.add_option("--seed", seed, "random seed");
  CLI11_PARSE(app, argc, argv);

  std::vector<Function> fns;
  for (const auto& s : specs) {
    Function f;
    size_t a = s.find(':'), b = s.rfind(':');
    if (a == std::string::npos || a == b) {
      std::fprintf(stderr, "--fn expects NAME:RATE:SLO_MS, got %s\n", s.c_str());
      return 64;
    }
    f.name = s.substr(0, a);
    f.rate = std::atof(s.substr(a + 1, b - a - 1).c_str());
    f.sloMs = std::atof(s.substr(b + 1).c_str());
    if (!(f.rate > 0) || !(f.sloMs > 0)) {
      std::fprintf(stderr, "--fn %s: rate and objective must be positive\n", s.c_str());
      return 64;
    }
    f.request = "GET /fn/" + f.name + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    fns.push_back(std::move(f));
  }
  std::mt19937_64 rng(seed);
  auto gap = [&](double rate) {
    return static_cast<int64_t>(std::exponential_distribution<double>(rate)(rng) * 1e9);
  };
  std::vector<Conn> conns;
  std::vector<size_t> idle;
  const int64_t start = nowNs();
  const int64_t stopSending = start + static_cast<int64_t>(durationS * 1e9);
  const int64_t giveUp = stopSending + 10'000'000'000;  // answers may take 10 s more
  for (auto& f : fns) f.nextNs = start + gap(f.rate);
  size_t outstanding = 0;
  std::vector<pollfd> pfds;
  std::vector<size_t> pconn;
  char buf[65536];
  // Sends the request of a busy connection; a failure ends the request and the connection.
  auto sendRequest = [&](Conn& k) {
    Function& f = fns[k.fn];
    f.sendLagMs.push_back(static_cast<double>(nowNs() - k.intendedNs) / 1e6);
    ssize_t w = ::send(k.fd, f.request.data(), f.request.size(), MSG_NOSIGNAL);
    if (w != static_cast<ssize_t>(f.request.size())) {
      ++f.failed;
      --outstanding;
      ::close(k.fd);
      k.fd = -1;
      k.busy = false;
    }
  };
  for (;;) {
    int64_t now = nowNs();
    if (now >= giveUp || (now >= stopSending && outstanding == 0)) break;
    // Send everything that is due.
    for (size_t i = 0; i < fns.size(); ++i) {
      Function& f = fns[i];
      while (f.nextNs <= now && f.nextNs < stopSending) {
        size_t c;
        if (!idle.empty()) {
          c = idle.back();
          idle.pop_back();
        } else {
          bool pending = false;
          int fd = connectTo(port, pending);
          if (fd < 0) {
            ++f.sent;
            ++f.failed;
            f.nextNs += gap(f.rate);
            continue;
          }
          conns.emplace_back();
          conns.back().fd = fd;
          conns.back().connecting = pending;
          c = conns.size() - 1;
        }
        Conn& k = conns[c];
        k.busy = true;
        k.fn = i;
        k.intendedNs = f.nextNs;
        k.in.clear();
        ++f.sent;
        ++outstanding;
        if (!k.connecting) sendRequest(k);
        f.nextNs += gap(f.rate);
      }
    }
    int64_t wake = giveUp;
    for (const auto& f : fns) {
      if (f.nextNs < stopSending) wake = std::min(wake, f.nextNs);
    }
    pfds.clear();
    pconn.clear();
    for (size_t c = 0; c < conns.size(); ++c) {
      if (conns[c].busy) {
        pfds.push_back(pollfd{conns[c].fd, static_cast<short>(conns[c].connecting ? POLLOUT : POLLIN), 0});
        pconn.push_back(c);
      }
    }
    int64_t waitNs = std::max<int64_t>(0, wake - nowNs());
    timespec ts{static_cast<time_t>(waitNs / 1'000'000'000), static_cast<long>(waitNs % 1'000'000'000)};
    int n = ::ppoll(pfds.data(), pfds.size(), &ts, nullptr);
    if (n <= 0) continue;
    for (size_t p = 0; p < pfds.size(); ++p) {
      if (!pfds[p].revents) continue;
      Conn& k = conns[pconn[p]];
      Function& f = fns[k.fn];
      if (k.connecting) {
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(k.fd, SOL_SOCKET, SO_ERROR, &err, &len);
        k.connecting = false;
        if (err != 0) {
          ++f.failed;
          --outstanding;
          ::close(k.fd);
          k.fd = -1;
          k.busy = false;
        } else {
          sendRequest(k);
        }
        continue;
      }
      ssize_t r = ::recv(k.fd, buf, sizeof buf, 0);
      if (r <= 0) {
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        ++f.failed;
        --outstanding;
        ::close(k.fd);
        k.fd = -1;
        k.busy = false;
        continue;
      }
      k.in.append(buf, static_cast<size_t>(r));
      int status = 0;
      if (parseResponse(k.in, status) == 0) continue;
      double ms = static_cast<double>(nowNs() - k.intendedNs) / 1e6;
      if (status == 200) {
        ++f.ok;
        f.latencyMs.push_back(ms);
        if (ms <= f.sloMs) ++f.within;
      } else if (status == 429) {
        ++f.refused;
      } else {
        ++f.failed;
      }
      --outstanding;
      k.busy = false;
      idle.push_back(pconn[p]);
    }
  }
  for (auto& k : conns) {
    if (k.fd >= 0) ::close(k.fd);
  }
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  double cpuS = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  for (auto& f : fns) {
    uint64_t unanswered = f.sent - f.ok - f.refused - f.failed;
    std::printf(
        "fn=%s rate=%.1f slo_ms=%g sent=%llu ok=%llu within=%llu refused=%llu failed=%llu "
        "attainment=%.4f p50_ms=%.2f p95_ms=%.2f p99_ms=%.2f send_lag_p99_ms=%.3f "
        "send_lag_max_ms=%.3f gen_cpu_s=%.3f\n",
        f.name.c_str(), f.rate, f.sloMs, (unsigned long long)f.sent, (unsigned long long)f.ok,
        (unsigned long long)f.within, (unsigned long long)f.refused,
        (unsigned long long)(f.failed + unanswered),
        f.sent ? static_cast<double>(f.within) / static_cast<double>(f.sent) : 0.0,
        percentile(f.latencyMs, 0.50), percentile(f.latencyMs, 0.95),
        percentile(f.latencyMs, 0.99), percentile(f.sendLagMs, 0.99),
        f.sendLagMs.empty() ? 0.0 : *std::max_element(f.sendLagMs.begin(), f.sendLagMs.end()),
        cpuS);
  }
  return 0;
}
