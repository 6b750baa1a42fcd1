#pragma once
// Scoped API tokens at rest (docs/design/tokens.md). A token is `tern_<id>_<secret>`: the
// id (16 hex digits) is public and finds the record, the secret (64 hex digits) is never
// stored; a record keeps the SHA-256 of the whole token, which the node compares in
// constant time. Records are never deleted: a revoked token keeps its record (so that it
// is refused as revoked, not unknown), and its name is free for a new token.
//
// Two implementations: SqliteTokenStore (<data>/tokens.db, a standalone node) and the
// JetStream key-value bucket tern_tokens (cluster/jetstream_token_store.h), so that a token
// made on one node of a cluster is valid on all of them. Both keep a record as the JSON of
// tokenRecordJson.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/error.h"
#include "util/thread_annotations.h"

namespace tern {
class Database;
}

namespace tern::store {

struct TokenRecord {
  std::string id;                   // 16 lower-case hex digits, public
  std::string name;                 // the function-name rule (util/names.h)
  std::string hash;                 // lower-case hex SHA-256 of the whole token
  std::vector<std::string> scopes;  // as given, checked by triggers/access.h
  int64_t createdMs = 0;            // Unix milliseconds
  int64_t expiresMs = 0;            // 0: never
  double rate = 0;                  // requests per second; 0: no limit
  double burst = 0;                 // requests at once above the rate; with rate only
  int64_t revokedMs = 0;            // 0: not revoked
};

// True for 16 lower-case hex digits.
bool isTokenId(std::string_view id);

// {"id", "name", "hash", "scopes", "created_ms", "expires_ms", "rate", "burst",
// "revoked_ms"}: how both stores keep a record.
std::string tokenRecordJson(const TokenRecord& record);
// The record of tokenRecordJson's text. Errors: kInvalidArgument naming the field.
Result<TokenRecord> parseTokenRecord(std::string_view text);

class TokenStore {
 public:
  virtual ~TokenStore() = default;
  // Stores a new record. Errors: kConflict when a token that is not revoked has the name.
  virtual Result<void> create(const TokenRecord& record) = 0;
  // Marks the token named `name` revoked at `nowMs`; the revoked record, or nullopt when no
  // token that is not revoked has the name.
  virtual Result<std::optional<TokenRecord>> revoke(std::string_view name, int64_t nowMs) = 0;
  // The tokens not revoked (expired ones included), by name.
  virtual Result<std::vector<TokenRecord>> list() = 0;
  // The record with this id, revoked or not.
  virtual Result<std::optional<TokenRecord>> find(std::string_view id) = 0;
};

// <data>/tokens.db. Thread-safe (one connection behind a mutex).
class SqliteTokenStore final : public TokenStore {
 public:
  // Errors: kIo.
  static Result<std::unique_ptr<SqliteTokenStore>> open(const std::filesystem::path& file);
  ~SqliteTokenStore() override;

  Result<void> create(const TokenRecord& record) override;
  Result<std::optional<TokenRecord>> revoke(std::string_view name, int64_t nowMs) override;
  Result<std::vector<TokenRecord>> list() override;
  Result<std::optional<TokenRecord>> find(std::string_view id) override;

 private:
  explicit SqliteTokenStore(std::unique_ptr<Database> db);

  Mutex mu_;
  std::unique_ptr<Database> db_ TERN_PT_GUARDED_BY(mu_);
};

}  // namespace tern::store
