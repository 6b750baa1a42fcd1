#include "mosquitto_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "test_support.h"

extern char** environ;

namespace tern::test {

namespace fs = std::filesystem;

namespace {

pid_t spawn(const std::vector<std::string>& args, const fs::path& stdoutPath,
            const fs::path& stderrPath) {
  std::vector<char*> argv;
  std::vector<std::string> copy = args;
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, stdoutPath.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, stderrPath.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  return rc == 0 ? pid : -1;
}

int run(const std::vector<std::string>& args, const fs::path& log) {
  pid_t pid = spawn(args, "/dev/null", log);
  if (pid <= 0) return -1;
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

MosquittoProcess::MosquittoProcess(fs::path dir, Options options)
    : options_(std::move(options)), dir_(std::move(dir)) {
  fs::create_directories(dir_);
  port_ = reservedLoopbackPort();
  if (options_.tls) makeCertificates();
  if (!options_.username.empty()) {
    EXPECT_EQ(run({"mosquitto_passwd", "-b", "-c", (dir_ / "passwords").string(), options_.username,
                   options_.password},
                  dir_ / "passwd.log"),
              0)
        << "mosquitto_passwd failed";
  }
  start();
}

// A CA and a server certificate for 127.0.0.1 (openssl, valid for a day).
void MosquittoProcess::makeCertificates() {
  auto d = [&](const char* f) { return (dir_ / f).string(); };
  fs::path log = dir_ / "openssl.log";
  ASSERT_EQ(run({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                 "/CN=tern test CA", "-keyout", d("ca.key"), "-out", d("ca.crt")},
                log),
            0);
  ASSERT_EQ(run({"openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
                 "-keyout", d("server.key"), "-out", d("server.csr")},
                log),
            0);
  { std::ofstream(dir_ / "san.ext") << "subjectAltName=IP:127.0.0.1\n"; }
  ASSERT_EQ(run({"openssl", "x509", "-req", "-in", d("server.csr"), "-CA", d("ca.crt"), "-CAkey",
                 d("ca.key"), "-CAcreateserial", "-days", "1", "-extfile", d("san.ext"), "-out",
                 d("server.crt")},
                log),
            0);
}

std::vector<std::string> MosquittoProcess::clientArgs() const {
  std::vector<std::string> a{"-h", "127.0.0.1", "-p", std::to_string(port_)};
  if (options_.tls) a.insert(a.end(), {"--cafile", caFile().string()});
  if (!options_.username.empty()) {
    a.insert(a.end(), {"-u", options_.username, "-P", options_.password});
  }
  return a;
}

MosquittoProcess::~MosquittoProcess() { stop(); }

void MosquittoProcess::start() {
  fs::path conf = dir_ / "mosquitto.conf";
  {
    std::ofstream c(conf);
    c << "listener " << port_ << " 127.0.0.1\n";
    // Started as root, mosquitto would switch to the "mosquitto" user, which cannot read the
    // test's directory (keys, persistence): it stays the user that runs the test.
    if (const passwd* pw = ::getpwuid(::geteuid())) c << "user " << pw->pw_name << "\n";
    if (options_.tls) {
      c << "cafile " << caFile().string() << "\n"
        << "certfile " << (dir_ / "server.crt").string() << "\n"
        << "keyfile " << (dir_ / "server.key").string() << "\n";
    }
    if (options_.username.empty()) {
      c << "allow_anonymous true\n";
    } else {
      c << "allow_anonymous false\n"
        << "password_file " << (dir_ / "passwords").string() << "\n";
    }
    c
      << "persistence true\n"
      << "persistence_location " << dir_.string() << "/\n"
      << "max_queued_messages 100000\n"
      << "log_dest stderr\n";
  }
  pid_ = spawn({"mosquitto", "-c", conf.string()}, "/dev/null", dir_ / "mosquitto.log");
  ASSERT_GT(pid_, 0) << "cannot start mosquitto (is it installed?)";
  for (int i = 0; i < 200 && !acceptingOnLoopback(port_); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  ASSERT_TRUE(acceptingOnLoopback(port_)) << "mosquitto did not start on port " << port_;
}

void MosquittoProcess::stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  int status;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
}

void MosquittoProcess::publish(const std::string& topic, const std::string& payload) const {
  fs::path file = dir_ / "payload.bin";
  {
    std::ofstream f(file, std::ios::binary);
    f << payload;
  }
  std::vector<std::string> args{"mosquitto_pub"};
  auto connect = clientArgs();
  args.insert(args.end(), connect.begin(), connect.end());
  args.insert(args.end(), {"-q", "1", "-t", topic});
  if (payload.empty()) {
    args.push_back("-n");  // a zero-length message
  } else {
    args.insert(args.end(), {"-f", file.string()});
  }
  pid_t pid = spawn(args, "/dev/null", dir_ / "pub.log");
  ASSERT_GT(pid, 0);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "mosquitto_pub failed";
}

MosquittoProcess::Subscription::Subscription(const MosquittoProcess& broker,
                                             const std::string& filter, const Will& will) {
  static int n = 0;
  out_ = broker.dir_ / ("sub-" + std::to_string(++n) + ".out");
  // Line-buffered: mosquitto_sub's stdout is a file, and its protocol steps are not flushed
  // otherwise.
  std::vector<std::string> args{"stdbuf", "-oL", "mosquitto_sub"};
  auto connect = broker.clientArgs();
  args.insert(args.end(), connect.begin(), connect.end());
  // -d: mosquitto_sub reports its protocol steps on stdout, among them the SUBACK, so the
  // subscription is known to be in place before anything is published.
  args.insert(args.end(), {"-d", "-q", "1", "-v", "-t", filter});
  if (!will.topic.empty()) {
    args.insert(args.end(), {"--will-topic", will.topic, "--will-payload", will.payload,
                             "--will-qos", "1"});
  }
  pid_ = spawn(args, out_, broker.dir_ / "sub.log");
  EXPECT_GT(pid_, 0);
  bool subscribed = eventually([&] {
    std::ifstream in(out_);
    std::string line;
    while (std::getline(in, line)) {
      if (line.starts_with("Subscribed (mid: ")) return true;
    }
    return false;
  });
  EXPECT_TRUE(subscribed) << "mosquitto_sub did not subscribe to " << filter;
}

MosquittoProcess::Subscription::~Subscription() {
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    int status;
    ::waitpid(pid_, &status, 0);
  }
}

void MosquittoProcess::Subscription::vanish() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
}

std::vector<std::string> MosquittoProcess::Subscription::waitFor(size_t count, int timeoutMs) {
  std::vector<std::string> lines;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
  while (true) {
    lines.clear();
    std::ifstream in(out_);
    std::string line;
    // Only whole lines: mosquitto_sub may be in the middle of writing a large message.
    while (std::getline(in, line) && !in.eof()) {
      if (line.empty()) continue;  // a payload ending in a newline
      // mosquitto_sub's own protocol steps (-d), not messages.
      if (line.starts_with("Client (null) ") || line.starts_with("Subscribed (mid: ")) continue;
      lines.push_back(line);
    }
    if (lines.size() >= count || std::chrono::steady_clock::now() > deadline) return lines;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

}  // namespace tern::test
