#include "triggers/token_auth.h"

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "util/names.h"
#include "util/sha256.h"

namespace tern::triggers {

namespace {

constexpr std::string_view kBearer = "Bearer ";
constexpr std::string_view kTokenPrefix = "tern_";
constexpr size_t kIdDigits = 16;
constexpr size_t kSecretDigits = 64;
// A token's lifetime and rate, as far as a request may ask.
constexpr int64_t kMaxExpiresInSeconds = int64_t{10} * 365 * 24 * 3600;
constexpr double kMaxRate = 1e6;

bool isLowerHex(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

Refusal unauthorized(std::string reason, std::string message) {
  return Refusal{Error(ErrorCode::kUnauthorized, std::move(message)), std::move(reason), {}, 0};
}

Result<std::string> randomHex(size_t bytes) {
  std::vector<unsigned char> raw(bytes);
  if (RAND_bytes(raw.data(), static_cast<int>(raw.size())) != 1) {
    return Error(ErrorCode::kInternal, "no randomness for a token");
  }
  std::string out;
  out.reserve(2 * bytes);
  for (unsigned char c : raw) out += fmt::format("{:02x}", c);
  return out;
}

bool sameText(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

TokenClocks systemTokenClocks() {
  return TokenClocks{[] {
                       return std::chrono::duration_cast<std::chrono::milliseconds>(
                                  std::chrono::system_clock::now().time_since_epoch())
                           .count();
                     },
                     [] {
                       return std::chrono::duration_cast<std::chrono::nanoseconds>(
                                  std::chrono::steady_clock::now().time_since_epoch())
                           .count();
                     }};
}

std::optional<std::string> tokenIdOf(std::string_view token) {
  if (token.size() != kTokenPrefix.size() + kIdDigits + 1 + kSecretDigits || !token.starts_with(kTokenPrefix)) {
    return std::nullopt;
  }
  std::string_view id = token.substr(kTokenPrefix.size(), kIdDigits);
  std::string_view secret = token.substr(kTokenPrefix.size() + kIdDigits + 1);
  if (token[kTokenPrefix.size() + kIdDigits] != '_' || !isLowerHex(id) || !isLowerHex(secret)) return std::nullopt;
  return std::string(id);
}

TokenAuth::TokenAuth(store::TokenStore* store, std::string adminToken, TokenClocks clocks)
    : store_(store), adminToken_(std::move(adminToken)), clocks_(std::move(clocks)) {}

bool TokenAuth::isCredential(std::string_view authorization) const {
  if (!authorization.starts_with(kBearer)) return false;
  std::string_view token = authorization.substr(kBearer.size());
  return (!adminToken_.empty() && sameText(token, adminToken_)) || token.starts_with(kTokenPrefix);
}

std::variant<Caller, Refusal> TokenAuth::authenticate(std::optional<std::string_view> token,
                                                      std::optional<store::TokenRecord>& record_out) {
  if (!token) {
    return unauthorized("missing", "a bearer token is required: send Authorization: Bearer TOKEN");
  }
  if (token->empty()) return unauthorized("malformed", "the bearer token is empty");
  if (!adminToken_.empty() && sameText(*token, adminToken_)) return Caller{"admin", {"admin"}};
  auto id = tokenIdOf(*token);
  if (!id) {
    // Another node's admin token has the admin token's shape: unknown here, not malformed.
    if (token->size() == adminToken_.size() && isLowerHex(*token)) {
      return unauthorized("unknown", "the bearer token is not known to this node");
    }
    return unauthorized("malformed",
                        "the bearer token is malformed: a tern token is tern_ followed by 16 and 64 hex "
                        "digits joined by '_', or the node's admin token");
  }
  if (!store_) return unauthorized("unknown", "the bearer token is not known to this node");
  auto record = store_->find(*id);
  if (!record.ok()) return Refusal{record.error(), {}, {}, 0};
  std::string hash = sha256Hex(*token);
  // The id found the record; the hash decides, compared in constant time.
  if (!*record || !sameText(hash, (*record)->hash)) {
    return unauthorized("unknown", "the bearer token is not known to this node");
  }
  const store::TokenRecord& r = **record;
  if (r.revokedMs != 0) return unauthorized("revoked", fmt::format("the token \"{}\" was revoked", r.name));
  if (r.expiresMs != 0 && clocks_.unixMs() >= r.expiresMs) {
    return unauthorized("expired", fmt::format("the token \"{}\" has expired", r.name));
  }
  Caller caller{r.name, r.scopes};
  record_out = std::move(**record);
  return caller;
}

std::optional<Refusal> TokenAuth::takeRate(const store::TokenRecord& r) {
  if (r.rate <= 0) return std::nullopt;
  int64_t now = clocks_.steadyNs();
  MutexLock lock(mu_);
  auto it = buckets_.find(r.id);
  if (it == buckets_.end()) {
    it = buckets_.emplace(r.id, TokenBucket(r.rate, r.burst > 0 ? r.burst : std::max(1.0, r.rate))).first;
  }
  if (it->second.take(now)) return std::nullopt;
  int64_t waitNs = it->second.waitNs(now);
  int64_t seconds = std::max<int64_t>(1, (waitNs + 999999999) / 1000000000);
  return Refusal{Error(ErrorCode::kRateLimited,
                       fmt::format("the token \"{}\" is limited to {} requests per second", r.name, r.rate)),
                 "rate_limited", {}, seconds};
}

AuthResult TokenAuth::authorizeToken(std::optional<std::string_view> token, const Access& need) {
  // The scope is checked before the rate: a refused request takes nothing from the bucket.
  std::optional<store::TokenRecord> record;
  auto who = authenticate(token, record);
  if (auto* refusal = std::get_if<Refusal>(&who)) return std::move(*refusal);
  auto& caller = std::get<Caller>(who);
  bool granted = grants(caller.scopes, need);
  // An invocation's record: a token that may invoke something reaches the route, which
  // checks the invocation's function once it has read the record.
  if (!granted && need.need == Need::kInvocationRecord) {
    granted = std::any_of(caller.scopes.begin(), caller.scopes.end(),
                          [](const std::string& s) { return s.starts_with("invoke:"); });
  }
  if (!granted) {
    std::string scope = accessText(need);
    return Refusal{Error(ErrorCode::kForbidden,
                         fmt::format("the token \"{}\" lacks the scope this request needs: {}", caller.name, scope)),
                   "scope", scope, 0};
  }
  if (record) {
    if (auto limited = takeRate(*record)) return std::move(*limited);
  }
  return who;
}

AuthResult TokenAuth::identify(const std::string* authorization) {
  std::optional<store::TokenRecord> record;
  if (!authorization) return authenticate(std::nullopt, record);
  std::string_view value = *authorization;
  if (!value.starts_with(kBearer)) {
    return unauthorized("malformed", "the Authorization header must be \"Bearer TOKEN\"");
  }
  return authenticate(value.substr(kBearer.size()), record);
}

AuthResult TokenAuth::authorize(const std::string* authorization, const Access& need) {
  if (!authorization) return authorizeToken(std::nullopt, need);
  std::string_view value = *authorization;
  if (!value.starts_with(kBearer)) {
    return unauthorized("malformed", "the Authorization header must be \"Bearer TOKEN\"");
  }
  return authorizeToken(value.substr(kBearer.size()), need);
}

Result<CreatedToken> TokenAuth::create(const TokenRequest& req) {
  auto invalid = [](std::string m) { return Error(ErrorCode::kInvalidArgument, std::move(m)); };
  if (!store_) return Error(ErrorCode::kUnavailable, "this node keeps no tokens");
  if (!isFunctionName(req.name)) {
    return invalid(fmt::format("invalid token name \"{}\": use 1-63 characters a-z, 0-9 and '-', starting "
                               "with a letter or digit",
                               req.name.substr(0, 64)));
  }
  if (req.scopes.empty()) return invalid("a token needs at least one scope");
  std::vector<std::string> scopes;
  for (const auto& s : req.scopes) {
    if (auto ok = checkScope(s); !ok.ok()) return ok.error();
    if (std::find(scopes.begin(), scopes.end(), s) == scopes.end()) scopes.push_back(s);
  }
  if (req.expiresInSeconds < 0 || req.expiresInSeconds > kMaxExpiresInSeconds) {
    return invalid(fmt::format("the expiry must be 1 second to 10 years, got {} seconds", req.expiresInSeconds));
  }
  if (!std::isfinite(req.rate) || req.rate < 0 || req.rate > kMaxRate) {
    return invalid(fmt::format("the rate must be 0 (no limit) to {} requests per second", kMaxRate));
  }
  if (!std::isfinite(req.burst) || req.burst < 0 || req.burst > kMaxRate || (req.burst > 0 && req.rate == 0)) {
    return invalid("the burst must be 1 to 1000000 requests, and needs a rate");
  }
  auto id = randomHex(kIdDigits / 2);
  if (!id.ok()) return id.error();
  auto secret = randomHex(kSecretDigits / 2);
  if (!secret.ok()) return secret.error();
  CreatedToken out;
  out.token = fmt::format("{}{}_{}", kTokenPrefix, *id, *secret);
  store::TokenRecord& r = out.record;
  r.id = std::move(*id);
  r.name = req.name;
  r.hash = sha256Hex(out.token);
  r.scopes = std::move(scopes);
  r.createdMs = clocks_.unixMs();
  r.expiresMs = req.expiresInSeconds > 0 ? r.createdMs + req.expiresInSeconds * 1000 : 0;
  r.rate = req.rate;
  r.burst = req.rate > 0 ? (req.burst > 0 ? req.burst : std::max(1.0, req.rate)) : 0;
  if (auto ok = store_->create(r); !ok.ok()) return ok.error();
  return out;
}

Result<std::vector<store::TokenRecord>> TokenAuth::list() {
  if (!store_) return std::vector<store::TokenRecord>();
  return store_->list();
}

Result<store::TokenRecord> TokenAuth::revoke(std::string_view name) {
  if (!store_) return Error(ErrorCode::kNotFound, "this node keeps no tokens");
  auto revoked = store_->revoke(name, clocks_.unixMs());
  if (!revoked.ok()) return revoked.error();
  if (!*revoked) {
    return Error(ErrorCode::kNotFound, fmt::format("no token named \"{}\"", std::string(name).substr(0, 64)));
  }
  MutexLock lock(mu_);
  buckets_.erase((*revoked)->id);
  return std::move(**revoked);
}

}  // namespace tern::triggers
