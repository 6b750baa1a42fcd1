#pragma once
// Checking bearer tokens (docs/design/tokens.md): the node's admin token
// (<data>/admin.token, scope admin) and the scoped tokens of a store::TokenStore. Every
// request that needs a token goes through authorize(): who is calling (401 naming why
// not: missing, malformed, unknown, revoked, expired), whether the token's scopes grant
// what the request needs (403 naming the scope), and the token's request rate (429 with
// Retry-After). Also makes, lists and revokes tokens for the /v1/tokens routes.
//
// Thread-safe. Checks take no lock across the store's calls (a JetStream store's may be
// network calls); the rate buckets are this node's own.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "store/token_store.h"
#include "triggers/access.h"
#include "util/error.h"
#include "util/thread_annotations.h"
#include "util/token_bucket.h"

namespace tern::triggers {

// Who a request comes from.
struct Caller {
  std::string name;                 // the token's name; "admin" for the node's admin token
  std::vector<std::string> scopes;  // {"admin"} for the admin token
};

// Why a request is refused.
struct Refusal {
  Error error;  // kUnauthorized, kForbidden, kRateLimited; the store's error otherwise
  // kUnauthorized: missing, malformed, unknown, revoked or expired; kForbidden: scope;
  // kRateLimited: rate_limited.
  std::string reason;
  std::string scopeNeeded;        // kForbidden
  int64_t retryAfterSeconds = 0;  // kRateLimited
};

using AuthResult = std::variant<Caller, Refusal>;

// Whether the node demands tokens of invocations (ternd --invoke-auth).
enum class InvokeAuth : uint8_t { kOpen, kRequired };

struct TokenClocks {
  std::function<int64_t()> unixMs;     // expiry and creation times
  std::function<int64_t()> steadyNs;   // rate buckets
};
// The system's clocks.
TokenClocks systemTokenClocks();

// What `tern token create` asks for (POST /v1/tokens).
struct TokenRequest {
  std::string name;
  std::vector<std::string> scopes;
  int64_t expiresInSeconds = 0;  // 0: never
  double rate = 0;               // requests per second; 0: no limit
  double burst = 0;              // 0: max(1, rate)
};

struct CreatedToken {
  store::TokenRecord record;
  std::string token;  // shown once
};

class TokenAuth {
 public:
  // `store` may be null: only the admin token is known then.
  TokenAuth(store::TokenStore* store, std::string adminToken, TokenClocks clocks);

  // The caller behind an Authorization header's value (null: no header) if its token
  // grants `need`, within its rate.
  AuthResult authorize(const std::string* authorization, const Access& need);
  // The same for a bare token (CoAP's token= query; nullopt: none given).
  AuthResult authorizeToken(std::optional<std::string_view> token, const Access& need);

  // The caller behind an Authorization header's value whatever its scopes, without taking
  // from its rate (for the 404 and 405 answers, given to callers with a valid token only).
  AuthResult identify(const std::string* authorization);

  // Whether an Authorization header's value carries a tern credential (the admin token or
  // anything shaped like a tern token): such a header never reaches a function.
  bool isCredential(std::string_view authorization) const;

  // Makes a token. Errors: kInvalidArgument naming the field, kConflict (the name is taken),
  // the store's.
  Result<CreatedToken> create(const TokenRequest& request);
  Result<std::vector<store::TokenRecord>> list();
  // Errors: kNotFound when no token that is not revoked has the name; the store's.
  Result<store::TokenRecord> revoke(std::string_view name) TERN_EXCLUDES(mu_);
  int64_t nowMs() const { return clocks_.unixMs(); }

 private:
  // The caller of `token`, and its record (not for the admin token).
  std::variant<Caller, Refusal> authenticate(std::optional<std::string_view> token,
                                             std::optional<store::TokenRecord>& record);
  std::optional<Refusal> takeRate(const store::TokenRecord& record) TERN_EXCLUDES(mu_);

  store::TokenStore* store_;
  std::string adminToken_;
  TokenClocks clocks_;
  Mutex mu_;
  std::unordered_map<std::string, TokenBucket> buckets_ TERN_GUARDED_BY(mu_);  // by token id
};

// "tern_<id>_<secret>" split into the id and the whole token; nullopt if not that shape.
std::optional<std::string> tokenIdOf(std::string_view token);

}  // namespace tern::triggers
