#include "bench_support.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <numeric>

namespace tern::bench {

namespace fs = std::filesystem;

fs::path examplesDir() { return TERN_BENCH_EXAMPLES_DIR; }
fs::path binDir() { return TERN_BENCH_BIN_DIR; }

Summary summarize(std::vector<int64_t>& samples) {
  Summary s;
  if (samples.empty()) return s;
  std::sort(samples.begin(), samples.end());
  auto rank = [&](double p) {
    // Nearest rank: the smallest sample with at least p of the samples at or below it.
    auto r = static_cast<size_t>(std::ceil(p * static_cast<double>(samples.size())));
    return samples[std::clamp<size_t>(r, 1, samples.size()) - 1];
  };
  s.count = samples.size();
  s.min = samples.front();
  s.median = rank(0.5);
  s.p90 = rank(0.9);
  s.p99 = rank(0.99);
  s.p999 = rank(0.999);
  s.max = samples.back();
  s.mean = static_cast<double>(std::accumulate(samples.begin(), samples.end(), int64_t{0})) /
           static_cast<double>(samples.size());
  return s;
}

double geomean(std::span<const double> values) {
  if (values.empty()) return 0;
  double logSum = 0;
  for (double v : values) logSum += std::log(v);
  return std::exp(logSum / static_cast<double>(values.size()));
}

std::string micros(int64_t ns) { return fmt::format("{:.2f}", static_cast<double>(ns) / 1e3); }
std::string millis(int64_t ns) { return fmt::format("{:.2f}", static_cast<double>(ns) / 1e6); }
std::string mebibytes(uint64_t bytes) {
  return fmt::format("{:.1f}", static_cast<double>(bytes) / (1 << 20));
}
std::string gibibytes(uint64_t bytes) {
  return fmt::format("{:.1f}", static_cast<double>(bytes) / (1 << 30));
}

Result<SpawnResult> spawnCapture(const std::vector<std::string>& argv,
                                 const std::vector<std::string>& env) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    return Error(ErrorCode::kIo, fmt::format("pipe: {}", std::strerror(errno)));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 1);

  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  pid_t pid = 0;
  int rc = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  if (rc != 0) {
    close(fds[0]);
    return Error(ErrorCode::kIo, fmt::format("cannot start {}: {}", argv[0], std::strerror(rc)));
  }
  SpawnResult result;
  char buf[4096];
  for (;;) {
    ssize_t got = read(fds[0], buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    result.stdoutData.append(buf, static_cast<size_t>(got));
  }
  close(fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exitStatus = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

ScratchDir::ScratchDir(const std::string& prefix) {
  std::string pattern = (fs::temp_directory_path() / (prefix + "-XXXXXX")).string();
  if (!mkdtemp(pattern.data())) {
    die("scratch directory", fmt::format("mkdtemp {}: {}", pattern, std::strerror(errno)));
  }
  path_ = pattern;
}

ScratchDir::~ScratchDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

Result<std::vector<uint8_t>> readFileBytes(const fs::path& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return Error(ErrorCode::kIo, "cannot read " + path.string());
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)),
                              std::istreambuf_iterator<char>());
}

void die(const std::string& what, const std::string& message) {
  std::cerr << "tern bench: " << what << ": " << message << "\n";
  std::exit(1);
}

std::string fieldValue(const std::string& line, const std::string& key) {
  std::string needle = " " + key + "=";
  size_t at = line.find(needle);
  if (at == std::string::npos) return {};
  size_t begin = at + needle.size();
  return line.substr(begin, line.find_first_of(" \n", begin) - begin);
}

}  // namespace tern::bench
