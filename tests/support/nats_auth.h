#pragma once
// NATS decentralised authentication (operator mode) for tests, made without nsc: Ed25519
// key pairs (OpenSSL) for an operator, accounts and users, encoded as NATS nkeys; JWTs
// signed by their issuer's key; a nats-server configuration that trusts the operator and
// knows its accounts through a memory resolver; and credentials files (user JWT and seed)
// as `ternd --nats-creds` reads them. docs/design/tls.md ("NATS") says what is checked.
//
// The encodings, as NATS documents them:
// - an nkey is base32 (RFC 4648 alphabet, no padding) of a prefix byte, the 32-byte raw key
//   and the CRC-16/XMODEM of both, little-endian. Public keys: operator 14<<3 ('O'),
//   account 0 ('A'), user 20<<3 ('U'). A seed puts two bytes in front of the 32-byte
//   Ed25519 seed: 18<<3 | type>>5 and (type&31)<<3, so it reads "SO...", "SA...", "SU...".
// - a JWT is base64url (no padding) of {"typ":"JWT","alg":"ed25519-nkey"}, "." , base64url
//   of the claims, ".", base64url of the issuer's Ed25519 signature of the first two parts.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace tern::test {

enum class NKeyRole : uint8_t { kOperator = 14 << 3, kAccount = 0, kUser = 20 << 3 };

// base32 (RFC 4648 alphabet) without padding.
std::string base32NoPadding(std::string_view bytes);
// CRC-16/XMODEM (polynomial 0x1021, initial value 0), the checksum of nkeys.
uint16_t nkeyCrc16(std::string_view bytes);
// base64url without padding (RFC 4648 §5), the encoding of JWT parts.
std::string base64UrlNoPadding(std::string_view bytes);

// A new Ed25519 key pair of one NATS role. Copies share the key.
class NKey {
 public:
  // Generates a key pair; a failure fails the calling test (and leaves an empty key).
  static NKey generate(NKeyRole role);

  NKeyRole role() const { return role_; }
  const std::string& publicKey() const { return public_; }  // "O...", "A...", "U..."
  const std::string& seed() const { return seed_; }          // "SO...", "SA...", "SU..."
  // The raw 64-byte Ed25519 signature of `message`.
  std::string sign(std::string_view message) const;

 private:
  NKeyRole role_ = NKeyRole::kUser;
  std::shared_ptr<void> key_;  // EVP_PKEY
  std::string public_;
  std::string seed_;
};

// The claims of one NATS JWT: `nats` is the JSON object of the "nats" claim (type, version
// and the role's fields); iss, iat and jti are added when it is signed.
struct JwtClaims {
  std::string subject;  // the public key the JWT is about
  std::string name;
  std::string nats;
  std::optional<int64_t> expiresAt;  // Unix seconds ("exp")
};

// The JWT of `claims` issued and signed by `issuer`.
std::string signJwt(const JwtClaims& claims, const NKey& issuer);

// The JWT of an account `account` signed by `issuer` (an operator), with JetStream enabled
// (unlimited memory and disk storage, streams and consumers) unless `jetStream` is false.
enum class AccountJetStream { kEnabled, kDisabled };
std::string accountJwt(const NKey& account, const NKey& issuer, AccountJetStream jetStream);
// The JWT of a user `user` signed by `account` (which need not be one the server trusts).
std::string userJwt(const NKey& user, const NKey& account,
                    std::optional<int64_t> expiresAt = std::nullopt);
// Writes a credentials file: the user JWT block, then the user's seed block.
void writeCredsFile(const std::filesystem::path& file, const std::string& jwt,
                    const std::string& seed);

// An operator with a system account and one application account ("TERN", JetStream
// enabled), for a nats-server in operator mode.
class NatsOperator {
 public:
  NatsOperator();

  const NKey& account() const { return account_; }
  // The configuration for NatsProcess(dir, config): the operator JWT (written to
  // dir/operator.jwt), the system account, a memory resolver with both accounts preloaded,
  // and JetStream stored under dir.
  std::string serverConfig(const std::filesystem::path& dir) const;
  // A new user of the account, its credentials written to `file`; with `expiresAt` (Unix
  // seconds) its JWT expires then.
  std::filesystem::path userCreds(const std::filesystem::path& file,
                                  std::optional<int64_t> expiresAt = std::nullopt) const;

 private:
  NKey operator_;
  NKey system_;
  NKey account_;
};

}  // namespace tern::test
