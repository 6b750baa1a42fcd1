#pragma once
// A cluster's tokens (docs/design/tokens.md) in the JetStream key-value bucket tern_tokens,
// so that a token made on any node is valid on every node, and a revocation anywhere is
// seen everywhere at the next request. Keys: tok.<id> = tokenRecordJson(record), and
// name.<name> = <id> for each token not revoked, created with the bucket's create (which
// fails when the key exists), so that two nodes cannot give one name to two live tokens.
//
// On a NATS connection of its own, made in the background while NATS is unreachable. Each
// call makes a few key-value requests bounded by the request timeout; while NATS is not
// connected they fail at once with kUnavailable, except find(), which then answers from the
// records it last read (a node keeps admitting the tokens it has seen through an outage;
// revocations made meanwhile reach it when NATS is back).

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "cluster/nats_security.h"
#include "store/token_store.h"

namespace tern::cluster {

struct JetStreamTokenOptions {
  std::string url;              // nats://HOST:PORT
  std::string jetStreamDomain;  // empty: the account's own JetStream
  std::chrono::milliseconds requestTimeout{5000};
  NatsSecurity nats;            // TLS, client certificate, credentials (--nats-*)
};

class JetStreamTokenStore final : public store::TokenStore {
 public:
  // Errors: kInvalidArgument (URL, timeout), kUnavailable.
  static Result<std::unique_ptr<JetStreamTokenStore>> connect(JetStreamTokenOptions options);
  ~JetStreamTokenStore() override;

  Result<void> create(const store::TokenRecord& record) override;
  Result<std::optional<store::TokenRecord>> revoke(std::string_view name, int64_t nowMs) override;
  Result<std::vector<store::TokenRecord>> list() override;
  Result<std::optional<store::TokenRecord>> find(std::string_view id) override;

  struct Connection;  // the libnats handles, in the .cpp

 private:
  explicit JetStreamTokenStore(std::unique_ptr<Connection> nats);

  std::unique_ptr<Connection> nats_;
  std::mutex mu_;
  std::map<std::string, store::TokenRecord, std::less<>> seen_;  // by id, as last read (mu_)
};

}  // namespace tern::cluster
