#pragma once
// Minimal HTTP/1.1 over raw TCP for tests: well-formed requests and deliberately broken
// ones, against a server on loopback.

#include <cstdint>
#include <map>
#include <string>

namespace tern::test {

struct HttpReply {
  int status = 0;              // 0: no reply (connection closed or failed)
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  std::string raw;
};

// Sends `raw` bytes to 127.0.0.1:port and reads until the server closes the connection or
// `timeoutMs` passes.
HttpReply sendRaw(uint16_t port, const std::string& raw, int timeoutMs = 10000);

// A well-formed request with "Connection: close". Waits up to 10 s for the answer, or 180 s
// for a PUT (a deploy compiles before it answers) and for a function's object for a device
// (compiled on first request).
HttpReply request(uint16_t port, const std::string& method, const std::string& target,
                  const std::string& body = "", const std::map<std::string, std::string>& headers = {});

// Parses a response (status line, headers, Content-Length body).
HttpReply parseReply(const std::string& raw);

// Opens a TCP connection to 127.0.0.1:port; -1 on failure.
int connectTo(uint16_t port);

}  // namespace tern::test
