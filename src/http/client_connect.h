#pragma once
// Internal to src/http: how the HTTP client and the WebSocket client open a connection.

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <memory>

#include "http/conn_stream.h"
#include "http/http_client.h"

namespace tern::http {

// Resolves the URL's host (bounded by `deadline`: getaddrinfo has none of its own),
// connects and, for an https:// URL, does the TLS handshake, the server's certificate
// checked against `tls` (the system's trusted CAs when null) and the URL's host name.
// Runs `ioc` until done; `timeout` is only for messages. The stream's deadline is left
// at `deadline`. Errors: kUnavailable saying which step failed and why, kInvalidArgument
// when the system's CAs cannot be loaded.
Result<void> openConnection(boost::asio::io_context& ioc, const Url& url, ConnStream& stream,
                            const std::shared_ptr<const ClientTls>& tls,
                            std::chrono::steady_clock::time_point deadline,
                            std::chrono::milliseconds timeout);

}  // namespace tern::http
