#pragma once
// The node's CoAP surface (RFC 7252 over UDP, block-wise transfer per RFC 7959):
// coap://HOST/fn/NAME[/REST][?QUERY] invokes function NAME through the Invoker, like
// /fn over HTTP. libcoap does the protocol work (deduplication, retransmission, blocks,
// separate responses); it is not thread-safe, so one thread owns it and worker threads
// hand finished invocations back through a completion list and an eventfd. libcoap's
// types stay inside coap_server.cpp. See docs/coap.md.

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "exec/invoker.h"
#include "util/error.h"
#include "util/metrics.h"

namespace tern::triggers {

struct CoapOptions {
  std::string address = "127.0.0.1";
  uint16_t port = 5683;             // 0: any free port
  size_t maxInvokeBody = 6u << 20;  // larger request bodies get 4.13
};

// The CoAP response code for an error kind, as class * 100 + detail (404 for 4.04).
int coapCode(ErrorCode code);

// What to do with a datagram before libcoap sees it (RFC 7252 sections 3 and 4):
// kWellFormed goes to libcoap; kIgnore is dropped silently (too short to carry a message
// ID, another protocol version, or a malformed message that may not be answered);
// kReset is a malformed Confirmable message, rejected with a Reset.
enum class DatagramVerdict { kWellFormed, kIgnore, kReset };
DatagramVerdict checkDatagram(std::span<const uint8_t> datagram);

class CoapServer {
 public:
  CoapServer(exec::Invoker& invoker, MetricsRegistry& metrics, CoapOptions options);
  ~CoapServer();
  CoapServer(const CoapServer&) = delete;
  CoapServer& operator=(const CoapServer&) = delete;

  // Binds the UDP endpoint and starts the CoAP thread.
  Result<void> start();
  // Answers new requests with 5.03, waits up to `drainTimeout` for invocations in flight
  // and their responses, then stops the CoAP thread and closes the endpoint.
  void stop(std::chrono::milliseconds drainTimeout);
  // The bound port (the kernel's choice when the options asked for 0); 0 before start().
  uint16_t port() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace tern::triggers
