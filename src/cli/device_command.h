#pragma once
// `tern device call` (docs/cli.md, "Devices"): this process acts as a device
// (device/device.h) and makes N calls of a function, each run here, at an edge node or in
// the cloud tier as the policy decides, printing one line per call and a summary per
// environment:
//   tern device call FN [--edge URL]... [--cloud URL] [--policy local|edge|cloud|adaptive]
//                       [--count N] [--interval-ms M] [--data S | --input-file F]
//                       [--state-dir DIR] [--json]

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

namespace tern::cli {

struct DeviceCallOptions {
  std::string function;
  std::vector<std::string> edges;
  std::string cloud;
  std::string discover;  // a cluster node: its edge and cloud nodes join --edge and --cloud
  std::string policy = "adaptive";
  std::string algorithm = "ucb1";  // ucb1 or bayes-ucb
  uint32_t count = 1;
  uint32_t intervalMs = 0;
  std::string data;
  bool hasData = false;
  std::string inputFile;
  std::string stateDir;  // empty: <default cache dir>/device
  std::string caFile;    // --ca-file: CAs for https:// nodes; empty: $TERN_CA_FILE, else the system's
  std::string token;     // fetches functions from the nodes; empty: $TERN_TOKEN
  uint32_t timeoutMs = 10000;
  std::string cc;  // compiles here when no node serves an object for this machine; empty: never
  bool json = false;
};

// Exit status: 0 when every call succeeded, else the status of the last failure's kind.
int deviceCallCommand(const DeviceCallOptions& options, std::ostream& out, std::ostream& err);

}  // namespace tern::cli
