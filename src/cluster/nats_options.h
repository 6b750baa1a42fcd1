#pragma once
// The one place where ternd's NATS connections are configured (the cluster's, the async
// job stream's and the stream topics' JetStream connection): server URL, name, tern's
// reconnect policy, and the connection's security (docs/design/tls.md, "NATS").
// Included by .cpp files only: it brings nats.h.

#include <nats/nats.h>

#include <string>

#include "cluster/nats_security.h"
#include "util/error.h"

namespace tern::cluster {

// A new natsOptions for one connection to `url` (one URL or several separated by commas)
// named `name`: tern's reconnect policy (forever, every 250 ms; 2 s connect timeout; a ping
// every 2 s, two unanswered close the connection) and `security` applied: TLS required
// with the server's certificate verified against caFile (and its host name, for a URL
// naming the server by name), the client certificate, the credentials file. The caller
// adds its callbacks, connects and destroys the options. Errors: kInvalidArgument saying
// which setting libnats refused and why.
Result<natsOptions*> makeNatsOptions(const std::string& url, const std::string& name,
                                     const NatsSecurity& security);

}  // namespace tern::cluster
