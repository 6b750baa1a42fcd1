#pragma once
// A device's runtime (docs/design/devices.md): runs each call of a function on the device
// itself, in the same sandboxes as a node (the embedded engine), or at an edge node or the
// cloud tier over HTTP, as the decision (decision.h) picks from the measured end-to-end
// latency of each environment. A remote call that fails or times out falls back to a local
// run (unless the function cannot run here, or the call was forced off the device) and is
// charged to that environment. A function that cannot be made ready here (not fetched, a
// stored copy that does not match its hash) is not tried again for 30 s. A function that
// runs here is checked against the nodes when a process first loads it and then every
// minute: a node naming another module (a new version) has it fetched and used.
//
// The state directory keeps what the device learned between processes: the functions it
// fetched (module by SHA-256, checked on every load, and the deployed settings), their
// objects compiled for this machine by a node (each must be for this machine, this module
// ABI and that module's hash, or it is refused and fetched again), and per function each
// environment's recent latencies (history.json):
// each function learns its own, since a light and a heavy one want different places. A state file
// that does not parse is set aside and started afresh; a module whose bytes do not match
// its hash is fetched again.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "device/decision.h"
#include "http/tls.h"
#include "util/error.h"

namespace tern::device {

struct DeviceOptions {
  std::filesystem::path stateDir;
  std::vector<std::string> edges;  // node URLs, http://HOST:PORT
  std::string cloud;               // a cloud-tier node's URL; empty: none
  // A cluster node's URL: when the device opens, the cluster's other edge and cloud nodes
  // (GET /v1/cluster/nodes, what `tern nodes` shows) are added to the ones above. Empty:
  // only those configured. A node that cannot be asked leaves a warning, not an error.
  std::string discover;
  std::string token;               // a node's bearer token, to fetch functions
  // How https:// nodes are verified (http/tls.h); null: the system's trusted CAs.
  std::shared_ptr<const http::ClientTls> tls;
  // A device needs no compiler: a node serves each function's object compiled for this
  // machine (GET /v1/functions/NAME/object?target=...). When no node can, and `cc` names a
  // C compiler (with wasm2c installed), the device compiles the module itself; empty: the
  // function then runs remotely only.
  std::string cc;
  DecisionParams decision;
  std::chrono::milliseconds remoteTimeout{10000};  // a remote call's whole answer
  // Mobility: the round trip to every edge (GET /healthz) is measured before the first
  // call, every `probeEvery` calls, and after a call to the attached edge failed; the
  // device attaches to the nearest (nearestEdge in decision.h).
  uint32_t probeEvery = 50;
  std::chrono::milliseconds probeTimeout{1000};
};

struct CallResult {
  Where where = Where::kLocal;
  std::string node;        // the remote environment's URL (the node that ran it, if it said)
  double ms = 0;           // end to end, fall-back included
  bool ok = false;
  bool fallback = false;   // the chosen remote failed; ran here instead
  std::string attached;    // the edge the device is attached to ("" without edges)
  bool moved = false;      // it attached to another edge before this call
  std::string output;      // the function's stdout (HTTP body)
  std::optional<Error> error;
};

class Device {
 public:
  // Creates the state directory and reads what it holds. Errors: kInvalidArgument (no
  // environment at all, a URL that does not parse), kIo.
  static Result<std::unique_ptr<Device>> open(DeviceOptions options);
  ~Device();

  // One call of `function` with `input` as its stdin (the body of POST /fn/NAME).
  CallResult call(const std::string& function, const std::string& input, Force force = Force::kNone);

  // Writes the learned history to the state directory. Errors: kIo.
  Result<void> save() const;

  const std::vector<Environment>& environments() const;
  // This device's identity (device.id in the state directory), sent with every remote call
  // as X-Tern-Device: a function's state on the nodes is kept per device under it.
  const std::string& id() const;
  // What open() set aside or could not restore, for the user.
  const std::vector<std::string>& warnings() const;
  // Each environment's decision score for `function` now (the same order).
  std::vector<Score> scores(const std::string& function) const;

  struct Impl;

 private:
  explicit Device(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tern::device
