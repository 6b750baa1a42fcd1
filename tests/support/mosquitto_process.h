#pragma once
// A real mosquitto broker for tests: loopback only, a free port, anonymous access, and
// persistence in its own directory so a restarted broker keeps sessions and queued
// messages. Stopped (SIGTERM) on destruction.

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace tern::test {

class MosquittoProcess {
 public:
  struct Options {
    // Serve TLS only, with a certificate for 127.0.0.1 signed by a CA made for the test
    // (caFile()).
    bool tls = false;
    // Non-empty: anonymous clients are refused; this user and password are accepted.
    std::string username;
    std::string password;
  };
  explicit MosquittoProcess(std::filesystem::path dir) : MosquittoProcess(std::move(dir), Options{}) {}
  MosquittoProcess(std::filesystem::path dir, Options options);
  ~MosquittoProcess();

  uint16_t port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  // The CA certificate clients verify the broker with (options.tls).
  std::filesystem::path caFile() const { return dir_ / "ca.crt"; }
  bool running() const { return pid_ > 0; }
  // SIGTERM and wait (the broker saves its persistence file); start() again on the same port.
  void stop();
  void start();

  // Publishes with mosquitto_pub (QoS 1); `payload` may hold any bytes.
  void publish(const std::string& topic, const std::string& payload) const;

  // A mosquitto_sub process collecting messages on `filter` until count arrived or timeout.
  class Subscription {
   public:
    // The message the broker publishes (QoS 1) when the subscriber vanishes.
    struct Will {
      std::string topic;
      std::string payload;
    };
    Subscription(const MosquittoProcess& broker, const std::string& filter)
        : Subscription(broker, filter, Will{}) {}
    Subscription(const MosquittoProcess& broker, const std::string& filter, const Will& will);
    ~Subscription();
    // Kills the subscriber (SIGKILL): its connection drops without a DISCONNECT, so the
    // broker publishes its will.
    void vanish();
    // Waits until at least `count` messages arrived (or the timeout passed); returns the
    // messages received so far as "topic payload" lines.
    std::vector<std::string> waitFor(size_t count, int timeoutMs = 20000);

   private:
    pid_t pid_ = -1;
    std::filesystem::path out_;
  };

 private:
  // Arguments that connect mosquitto_pub/_sub to this broker.
  std::vector<std::string> clientArgs() const;
  void makeCertificates();

  Options options_;
  std::filesystem::path dir_;
  pid_t pid_ = -1;
  uint16_t port_ = 0;
};

}  // namespace tern::test
