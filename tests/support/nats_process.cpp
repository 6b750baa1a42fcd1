#include "nats_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <thread>
#include <vector>

#include "test_support.h"

extern char** environ;

namespace tern::test {

namespace fs = std::filesystem;

NatsProcess::NatsProcess(fs::path dir, std::optional<NatsTlsFiles> tls)
    : dir_(std::move(dir)), tls_(std::move(tls)) {
  fs::create_directories(dir_);
  port_ = reservedLoopbackPort();
  start();
}

NatsProcess::NatsProcess(fs::path dir, std::string config)
    : dir_(std::move(dir)), config_(std::move(config)) {
  fs::create_directories(dir_);
  port_ = reservedLoopbackPort();
  for (size_t at = config_.find("{dir}"); at != std::string::npos; at = config_.find("{dir}", at)) {
    config_.replace(at, 5, dir_.string());
  }
  std::ofstream(dir_ / "nats.conf") << "listen: 127.0.0.1:" << port_ << "\n" << config_ << "\n";
  start();
}

NatsProcess::~NatsProcess() { stop(); }

void NatsProcess::pause() {
  if (pid_ > 0 && !paused_ && ::kill(pid_, SIGSTOP) == 0) paused_ = true;
}

void NatsProcess::resume() {
  if (pid_ > 0 && paused_) ::kill(pid_, SIGCONT);
  paused_ = false;
}

void NatsProcess::start() {
  std::vector<std::string> args{"nats-server", "-a", "127.0.0.1", "-p", std::to_string(port_),
                                "-js", "-sd", (dir_ / "jetstream").string()};
  if (!config_.empty()) args = {"nats-server", "-c", (dir_ / "nats.conf").string()};
  else if (tls_) {
    fs::path conf = dir_ / "nats-tls.conf";
    std::ofstream(conf) << "tls {\n  cert_file: \"" << tls_->cert.string() << "\"\n  key_file: \""
                        << tls_->key.string() << "\"\n  ca_file: \"" << tls_->ca.string()
                        << "\"\n  verify: true\n}\n";
    args.insert(args.end(), {"-c", conf.string()});
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  std::string log = (dir_ / "nats.log").string();
  posix_spawn_file_actions_addopen(&fa, 2, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  ASSERT_EQ(rc, 0) << "cannot start nats-server (is it installed? scripts/install-deps.sh)";
  pid_ = pid;
  for (int i = 0; i < 400 && !acceptingOnLoopback(port_); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  ASSERT_TRUE(acceptingOnLoopback(port_)) << "nats-server does not accept connections on " << port_;
  // What accepts is this server, not another process that took the port.
  int status = 0;
  if (::waitpid(pid_, &status, WNOHANG) == pid_) {
    pid_ = -1;
    FAIL() << "nats-server exited at start (port " << port_ << "): " << readText(dir_ / "nats.log");
  }
}

void NatsProcess::stop() {
  if (pid_ <= 0) return;
  resume();
  ::kill(pid_, SIGTERM);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
}

}  // namespace tern::test
