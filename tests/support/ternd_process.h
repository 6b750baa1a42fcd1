#pragma once
// A real ternd process for integration tests: its own data directory, free ports chosen
// by the kernel (--listen 127.0.0.1:0 and, unless the arguments say otherwise,
// --coap-listen 127.0.0.1:0, read back from the log), stopped with SIGTERM or killed with
// SIGKILL.

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "util/subprocess.h"

namespace tern::test {

class TerndProcess {
 public:
  // Starts ternd with `dataDir` and extra arguments; waits until it serves.
  TerndProcess(std::filesystem::path dataDir, std::vector<std::string> extraArgs = {});
  ~TerndProcess();

  bool running() const { return pid_ > 0; }
  uint16_t port() const { return port_; }
  uint16_t coapPort() const { return coapPort_; }  // 0 when CoAP is off
  std::string token() const;
  std::string log() const;
  // The value of one series of the node's /metrics (e.g. `name{label="x"}`), -1 if absent:
  // the observable state tests wait on.
  double metric(const std::string& series) const;
  std::map<std::string, std::string> auth() const;
  // Runs the tern CLI with this node's URL and token and `args`, to its exit (at most
  // 120 s); its status and output, stdout and stderr together.
  SubprocessResult cli(const std::vector<std::string>& args) const;

  // SIGTERM, then wait; returns the exit status (-1 if killed by a signal).
  int terminate();
  void kill9();
  // Starts again with the same data directory and arguments.
  void restart();

 private:
  void start();
  std::filesystem::path dataDir_;
  std::vector<std::string> args_;
  std::filesystem::path logPath_;
  pid_t pid_ = -1;
  uint16_t port_ = 0;
  uint16_t coapPort_ = 0;
};

}  // namespace tern::test
