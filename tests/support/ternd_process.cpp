#include "ternd_process.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <regex>
#include <thread>

#include "raw_http.h"
#include "test_support.h"

extern char** environ;

namespace tern::test {

namespace fs = std::filesystem;

TerndProcess::TerndProcess(fs::path dataDir, std::vector<std::string> extraArgs)
    : dataDir_(std::move(dataDir)), args_(std::move(extraArgs)) {
  start();
}

TerndProcess::~TerndProcess() {
  if (pid_ > 0) kill9();
}

void TerndProcess::start() {
  static int generation = 0;
  logPath_ = dataDir_.parent_path() / (dataDir_.filename().string() + "-ternd-" +
                                       std::to_string(++generation) + ".log");
  std::vector<std::string> argv{(binDir() / "ternd").string(), "--listen", "127.0.0.1:0",
                                "--data", dataDir_.string()};
  if (std::find(args_.begin(), args_.end(), "--coap-listen") == args_.end()) {
    argv.insert(argv.end(), {"--coap-listen", "127.0.0.1:0"});
  }
  argv.insert(argv.end(), args_.begin(), args_.end());
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 2, logPath_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  int rc = posix_spawn(&pid_, cargv[0], &fa, nullptr, cargv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  ASSERT_EQ(rc, 0) << "cannot start ternd";
  std::regex serving(R"(serving on https?://127\.0\.0\.1:(\d+))");
  std::regex servingCoap(R"(serving CoAP on coap://\S+:(\d+))");
  // A deadline for a start that hangs, not a guess at how long one takes: under a
  // sanitizer on a busy machine a node takes several seconds to say it is serving.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(90);
  while (std::chrono::steady_clock::now() < deadline) {
    std::smatch m;
    std::string text = log();
    if (std::regex_search(text, m, serving)) {
      port_ = static_cast<uint16_t>(std::stoi(m[1]));
      coapPort_ = std::regex_search(text, m, servingCoap) ? static_cast<uint16_t>(std::stoi(m[1]))
                                                          : 0;
      return;
    }
    int status;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      FAIL() << "ternd exited early:\n" << text;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  FAIL() << "ternd did not say it was serving within 90 s:\n" << log();
}

std::string TerndProcess::log() const {
  std::ifstream f(logPath_);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

double TerndProcess::metric(const std::string& series) const {
  auto r = request(port_, "GET", "/metrics");
  size_t at = r.body.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(r.body.substr(at + series.size() + 2));
}

std::string TerndProcess::token() const {
  std::ifstream f(dataDir_ / "admin.token");
  std::string t;
  std::getline(f, t);
  return t;
}

std::map<std::string, std::string> TerndProcess::auth() const {
  return {{"Authorization", "Bearer " + token()}};
}

SubprocessResult TerndProcess::cli(const std::vector<std::string>& args) const {
  std::vector<std::string> argv{(binDir() / "tern").string(), "--node",
                                "http://127.0.0.1:" + std::to_string(port_), "--token", token()};
  argv.insert(argv.end(), args.begin(), args.end());
  SubprocessOptions so;
  so.timeout = std::chrono::seconds(120);
  auto r = runSubprocess(argv, so);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().describe());
  return r.ok() ? *r : SubprocessResult{};
}

int TerndProcess::terminate() {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void TerndProcess::kill9() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
}

void TerndProcess::restart() {
  if (pid_ > 0) terminate();
  start();
}

}  // namespace tern::test
