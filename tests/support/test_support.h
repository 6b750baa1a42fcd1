#pragma once
// Shared helpers for tern's tests: where the build put things, WAT -> wasm, engines with a
// test cache directory.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "wasm/engine.h"

namespace tern::test {

std::filesystem::path examplesDir();  // $TERN_EXAMPLES_DIR
std::filesystem::path binDir();       // $TERN_BIN_DIR
std::filesystem::path guestsDir();    // $TERN_TEST_GUESTS_DIR: test-only guest modules
std::filesystem::path cacheDir();     // $TERN_TEST_CACHE_DIR

std::vector<uint8_t> readFile(const std::filesystem::path& p);
std::string readText(const std::filesystem::path& p);  // the same, as a string

// Polls `condition` until it holds or `patience` has passed; returns its last value. Tests
// wait for the state a user would see this way, never for a fixed time.
bool eventually(const std::function<bool()>& condition,
                std::chrono::milliseconds patience = std::chrono::seconds(90),
                std::chrono::milliseconds interval = std::chrono::milliseconds(50));

// Unix time in milliseconds (the clock peer messages are stamped with).
int64_t unixMs();

// A TCP port on 127.0.0.1 for a server that cannot bind port 0 and report it, and that keeps
// its port across restarts (nats-server, mosquitto, a leaf node's listener), or for a port
// nothing listens on (a connection that is refused). It lies below
// the kernel's ephemeral range, so no socket bound to port 0 and no outgoing connection of
// any test takes it while the server is down; it was free when chosen; and it is this test
// process's until it exits (a lock on a file named after it in the temporary directory,
// tern-test-ports/), so test processes running side by side never choose the same one.
uint16_t reservedLoopbackPort();
// A listening TCP socket on 127.0.0.1 at a port of the kernel's choosing (in *port), for
// the servers tests run themselves.
int listenOnLoopback(uint16_t* port);
// Whether something accepts TCP connections on 127.0.0.1:port.
bool acceptingOnLoopback(uint16_t port);

// Assembles WebAssembly text with wabt's wat2wasm; fails the test on error. With
// `check = false` the module is not validated (to build invalid modules on purpose).
enum class WatCheck { kValidate, kNoCheck };
std::vector<uint8_t> wat(const std::string& text, WatCheck check = WatCheck::kValidate);

// A fresh temporary directory, removed with the object.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

wasm::EngineConfig engineConfig(const std::filesystem::path& cache = cacheDir());

// Loads an example function (examplesDir()/NAME.wasm), failing the test on error.
std::shared_ptr<const wasm::CompiledModule> loadExample(wasm::Engine& engine,
                                                        const std::string& name);

}  // namespace tern::test
