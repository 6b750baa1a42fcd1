#pragma once
// The node's CoAP surface (RFC 7252 over UDP, block-wise transfer per RFC 7959):
// coap://HOST/fn/NAME[/REST][?QUERY] invokes function NAME through the Invoker, like
// /fn over HTTP (with ternd --invoke-auth required, ?token=TOKEN as well). libcoap does the protocol work (deduplication, retransmission, blocks,
// separate responses); it is not thread-safe, so one thread owns it and worker threads
// hand finished invocations back through a completion list and an eventfd. That thread
// also decides every read of the UDP socket: it screens each datagram (coap_datagram.h)
// before libcoap may read it. libcoap's types stay inside coap_server.cpp. See docs/coap.md.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "exec/invoker.h"
#include "triggers/coap_datagram.h"
#include "triggers/token_auth.h"
#include "util/error.h"
#include "util/metrics.h"

namespace tern::triggers {

struct CoapOptions {
  std::string address = "127.0.0.1";
  uint16_t port = 5683;             // 0: any free port
  size_t maxInvokeBody = 6u << 20;  // larger request bodies get 4.13
  // With kRequired, a request carries a token that may invoke the function in a Uri-Query
  // option token=TOKEN (docs/coap.md, "Tokens"); `auth` checks it. The token= option never
  // reaches the function's QUERY_STRING, whatever the setting.
  InvokeAuth invokeAuth = InvokeAuth::kOpen;
  TokenAuth* auth = nullptr;
};

// The CoAP response code for an error kind, as class * 100 + detail (404 for 4.04).
int coapCode(ErrorCode code);

// How long CoapServer::stop() waits, each bound counted from when its wait begins.
struct CoapDrain {
  // For invocations in flight and the sending of their responses.
  std::chrono::milliseconds invocations{0};
  // Then for the acknowledgements of Confirmable separate responses, which libcoap
  // retransmits until they come (RFC 7252 4.2); what is still unacknowledged is dropped.
  std::chrono::milliseconds acknowledgements{0};
};

class CoapServer {
 public:
  CoapServer(exec::Invoker& invoker, MetricsRegistry& metrics, CoapOptions options);
  ~CoapServer();
  CoapServer(const CoapServer&) = delete;
  CoapServer& operator=(const CoapServer&) = delete;

  // Binds the UDP endpoint and starts the CoAP thread.
  Result<void> start();
  // Answers every new request with 5.03 from now on, so no request starts an invocation;
  // returns at once. The CoAP thread keeps reading, for acknowledgements and retransmitted
  // requests of the invocations in flight.
  void refuseNewRequests();
  // Refuses new requests, waits as `drain` says, then stops the CoAP thread and closes
  // the endpoint.
  void stop(CoapDrain drain);
  // The bound port (the kernel's choice when the options asked for 0); 0 before start().
  uint16_t port() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace tern::triggers
