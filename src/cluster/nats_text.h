#pragma once
// Small helpers shared by the cluster's NATS users (cluster.cpp, job_stream.cpp).

#include <fmt/format.h>
#include <nats/nats.h>

#include <string>
#include <string_view>

namespace tern::cluster {

// The text of a libnats status, with the library's last error detail when it adds one.
inline std::string natsText(natsStatus s) {
  const char* last = nats_GetLastError(nullptr);
  std::string text = natsStatus_GetText(s);
  if (last && *last && text != last) text += fmt::format(" ({})", last);
  return text;
}

// The last token of a NATS subject ("tern.v1.hb.NODE" -> "NODE").
inline std::string_view lastToken(std::string_view subject) {
  size_t dot = subject.rfind('.');
  return dot == std::string_view::npos ? subject : subject.substr(dot + 1);
}

// Closes and frees a connection and its options (either may be null), leaving both null.
inline void closeNats(natsConnection*& conn, natsOptions*& options) {
  if (conn) {
    natsConnection_Close(conn);
    natsConnection_Destroy(conn);
    conn = nullptr;
  }
  natsOptions_Destroy(options);
  options = nullptr;
}

}  // namespace tern::cluster
