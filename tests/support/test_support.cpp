#include "test_support.h"

#include <gtest/gtest.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <mutex>
#include <random>
#include <thread>

#include "util/subprocess.h"

namespace tern::test {

namespace fs = std::filesystem;

namespace {
fs::path envPath(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v && *v ? fs::path(v) : fs::path(fallback);
}
}  // namespace

// The build's own locations are compiled in; the environment can point elsewhere.
fs::path examplesDir() { return envPath("TERN_EXAMPLES_DIR", TERN_TEST_EXAMPLES_DIR); }
fs::path binDir() { return envPath("TERN_BIN_DIR", TERN_TEST_BIN_DIR); }
fs::path guestsDir() { return envPath("TERN_TEST_GUESTS_DIR", TERN_TEST_GUESTS_DIR); }
fs::path cacheDir() { return envPath("TERN_TEST_CACHE_DIR", TERN_TEST_CACHE_DIR); }

std::vector<uint8_t> readFile(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  EXPECT_TRUE(f.good()) << "cannot read " << p;
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

std::string readText(const fs::path& p) {
  auto b = readFile(p);
  return std::string(b.begin(), b.end());
}

bool eventually(const std::function<bool()>& condition, std::chrono::milliseconds patience,
                std::chrono::milliseconds interval) {
  auto end = std::chrono::steady_clock::now() + patience;
  while (std::chrono::steady_clock::now() < end) {
    if (condition()) return true;
    std::this_thread::sleep_for(interval);
  }
  return condition();
}

int64_t unixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

TempDir::TempDir() {
  std::random_device rd;
  path_ = fs::temp_directory_path() / ("tern-test-" + std::to_string(getpid()) + "-" +
                                       std::to_string(rd()));
  fs::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::vector<uint8_t> wat(const std::string& text, WatCheck check) {
  TempDir dir;
  {
    std::ofstream f(dir.path() / "m.wat");
    f << text;
  }
  std::vector<std::string> argv{"wat2wasm", (dir.path() / "m.wat").string(), "-o",
                                (dir.path() / "m.wasm").string()};
  if (check == WatCheck::kNoCheck) argv.push_back("--no-check");
  auto r = runSubprocess(argv);
  EXPECT_TRUE(r.ok() && r->exitStatus == 0) << (r.ok() ? r->output : r.error().message());
  return readFile(dir.path() / "m.wasm");
}

wasm::EngineConfig engineConfig(const fs::path& cache) {
  wasm::EngineConfig config;
  config.compiler.cacheDir = cache;
  return config;
}

std::shared_ptr<const wasm::CompiledModule> loadExample(wasm::Engine& engine,
                                                        const std::string& name) {
  auto m = engine.loadFile(examplesDir() / (name + ".wasm"));
  EXPECT_TRUE(m.ok()) << name << ": " << (m.ok() ? "" : m.error().describe());
  return m.ok() ? *m : nullptr;
}

namespace {
// Whether a server could bind 127.0.0.1:port now (with SO_REUSEADDR, as nats-server and
// mosquitto bind, so a connection of an earlier server in TIME_WAIT does not count).
bool bindableOnLoopback(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}
}  // namespace

uint16_t reservedLoopbackPort() {
  static std::mutex mu;
  std::lock_guard lock(mu);
  int ephemeralLow = 32768;
  std::ifstream("/proc/sys/net/ipv4/ip_local_port_range") >> ephemeralLow;
  constexpr int kFirst = 20000;
  if (ephemeralLow <= kFirst + 1000) {
    ADD_FAILURE() << "the ephemeral port range starts at " << ephemeralLow
                  << ": no room below it for test servers";
    return 0;
  }
  fs::path dir = fs::temp_directory_path() / "tern-test-ports";
  std::error_code ec;
  fs::create_directories(dir, ec);
  fs::permissions(dir, fs::perms::all | fs::perms::sticky_bit, ec);
  std::mt19937 gen(std::random_device{}());
  std::uniform_int_distribution<int> pick(kFirst, ephemeralLow - 1);
  for (int tries = 0; tries < 2000; ++tries) {
    auto port = static_cast<uint16_t>(pick(gen));
    std::string lockFile = (dir / std::to_string(port)).string();
    int fd = ::open(lockFile.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) continue;
    // Another test process (or this one, through another open file) holds it: skip.
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0 || !bindableOnLoopback(port)) {
      ::close(fd);
      continue;
    }
    return port;  // fd stays open, and the port locked, until the process exits
  }
  ADD_FAILURE() << "no free port between " << kFirst << " and " << ephemeralLow;
  return 0;
}

int listenOnLoopback(uint16_t* port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::listen(fd, 128);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  *port = ntohs(a.sin_port);
  return fd;
}

bool acceptingOnLoopback(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

}  // namespace tern::test
