#include "nats_auth.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <chrono>
#include <fstream>

namespace tern::test {

namespace fs = std::filesystem;

namespace {

constexpr uint8_t kSeedPrefix = 18 << 3;

std::string nkeyText(std::string_view prefix, std::string_view raw) {
  std::string bytes(prefix);
  bytes += raw;
  uint16_t crc = nkeyCrc16(bytes);
  bytes.push_back(static_cast<char>(crc & 0xff));
  bytes.push_back(static_cast<char>(crc >> 8));
  return base32NoPadding(bytes);
}

int64_t nowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A JSON string literal of text made of nkey and name characters (no quoting needed
// beyond the quotes; checked).
std::string quoted(const std::string& text) {
  for (char c : text) EXPECT_TRUE(c != '"' && c != '\\' && c >= 0x20) << text;
  return "\"" + text + "\"";
}

// `bytes` as characters of `alphabet`, `bits` (5: base32, 6: base64) per character, most
// significant first, the last character padded with zero bits; no padding characters.
std::string packBits(std::string_view bytes, std::string_view alphabet, int bits) {
  const uint32_t mask = (1u << bits) - 1;
  std::string out;
  uint32_t buffer = 0;
  int held = 0;
  for (unsigned char b : bytes) {
    buffer = (buffer << 8) | b;
    held += 8;
    while (held >= bits) {
      out.push_back(alphabet[(buffer >> (held - bits)) & mask]);
      held -= bits;
    }
  }
  if (held > 0) out.push_back(alphabet[(buffer << (bits - held)) & mask]);
  return out;
}

// A unique JWT id: base32 of 20 random bytes.
std::string newJti() {
  unsigned char bytes[20];
  EXPECT_EQ(RAND_bytes(bytes, sizeof bytes), 1);
  return base32NoPadding(std::string_view(reinterpret_cast<const char*>(bytes), sizeof bytes));
}

}  // namespace

std::string base32NoPadding(std::string_view bytes) {
  return packBits(bytes, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 5);
}

uint16_t nkeyCrc16(std::string_view bytes) {
  uint16_t crc = 0;
  for (unsigned char b : bytes) {
    crc ^= static_cast<uint16_t>(b << 8);
    for (int i = 0; i < 8; ++i) {
      crc = (crc & 0x8000) ? static_cast<uint16_t>((crc << 1) ^ 0x1021)
                           : static_cast<uint16_t>(crc << 1);
    }
  }
  return crc;
}

std::string base64UrlNoPadding(std::string_view bytes) {
  return packBits(bytes, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", 6);
}

NKey NKey::generate(NKeyRole role) {
  NKey k;
  k.role_ = role;
  EVP_PKEY* raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  EXPECT_NE(raw, nullptr) << "OpenSSL cannot make an Ed25519 key";
  if (!raw) return k;
  k.key_ = std::shared_ptr<void>(raw, [](void* p) { EVP_PKEY_free(static_cast<EVP_PKEY*>(p)); });
  unsigned char pub[32], seed[32];
  size_t pubLen = sizeof pub, seedLen = sizeof seed;
  EXPECT_EQ(EVP_PKEY_get_raw_public_key(raw, pub, &pubLen), 1);
  EXPECT_EQ(EVP_PKEY_get_raw_private_key(raw, seed, &seedLen), 1);
  auto type = static_cast<uint8_t>(role);
  const char publicPrefix[] = {static_cast<char>(type)};
  const char seedPrefix[] = {static_cast<char>(kSeedPrefix | (type >> 5)),
                             static_cast<char>((type & 31) << 3)};
  k.public_ = nkeyText(std::string_view(publicPrefix, 1),
                       std::string_view(reinterpret_cast<const char*>(pub), pubLen));
  k.seed_ = nkeyText(std::string_view(seedPrefix, 2),
                     std::string_view(reinterpret_cast<const char*>(seed), seedLen));
  return k;
}

std::string NKey::sign(std::string_view message) const {
  std::string sig(64, '\0');
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> md(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  auto* pkey = static_cast<EVP_PKEY*>(key_.get());
  size_t len = sig.size();
  bool ok = md && pkey && EVP_DigestSignInit(md.get(), nullptr, nullptr, nullptr, pkey) == 1 &&
            EVP_DigestSign(md.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                           reinterpret_cast<const unsigned char*>(message.data()),
                           message.size()) == 1;
  EXPECT_TRUE(ok) << "OpenSSL cannot sign with Ed25519";
  sig.resize(ok ? len : 0);
  return sig;
}

std::string signJwt(const JwtClaims& claims, const NKey& issuer) {
  std::string body = "{\"jti\":" + quoted(newJti()) + ",\"iat\":" + std::to_string(nowSeconds()) +
                     ",\"iss\":" + quoted(issuer.publicKey()) + ",\"name\":" + quoted(claims.name) +
                     ",\"sub\":" + quoted(claims.subject);
  if (claims.expiresAt) body += ",\"exp\":" + std::to_string(*claims.expiresAt);
  body += ",\"nats\":" + claims.nats + "}";
  std::string signedPart = base64UrlNoPadding(R"({"typ":"JWT","alg":"ed25519-nkey"})") + "." +
                           base64UrlNoPadding(body);
  return signedPart + "." + base64UrlNoPadding(issuer.sign(signedPart));
}

std::string accountJwt(const NKey& account, const NKey& issuer, AccountJetStream jetStream) {
  std::string limits = R"("subs":-1,"data":-1,"payload":-1,"imports":-1,"exports":-1,)"
                       R"("wildcards":true,"conn":-1,"leaf":-1)";
  // JetStream is on for an account whose limits allow it storage.
  if (jetStream == AccountJetStream::kEnabled) {
    limits += R"(,"mem_storage":-1,"disk_storage":-1,"streams":-1,"consumer":-1)";
  }
  return signJwt({account.publicKey(), "TERN",
                  R"({"limits":{)" + limits +
                      R"(},"default_permissions":{"pub":{},"sub":{}},"type":"account","version":2})",
                  std::nullopt},
                 issuer);
}

std::string userJwt(const NKey& user, const NKey& account, std::optional<int64_t> expiresAt) {
  return signJwt({user.publicKey(), "tern-node",
                  R"({"pub":{},"sub":{},"subs":-1,"data":-1,"payload":-1,"type":"user","version":2})",
                  expiresAt},
                 account);
}

void writeCredsFile(const fs::path& file, const std::string& jwt, const std::string& seed) {
  std::ofstream out(file);
  out << "-----BEGIN NATS USER JWT-----\n"
      << jwt << "\n------END NATS USER JWT------\n\n"
      << "-----BEGIN USER NKEY SEED-----\n"
      << seed << "\n------END USER NKEY SEED------\n";
  EXPECT_TRUE(out.good()) << "cannot write " << file;
}

NatsOperator::NatsOperator()
    : operator_(NKey::generate(NKeyRole::kOperator)),
      system_(NKey::generate(NKeyRole::kAccount)),
      account_(NKey::generate(NKeyRole::kAccount)) {}

std::string NatsOperator::serverConfig(const fs::path& dir) const {
  fs::create_directories(dir);
  std::string op = signJwt({operator_.publicKey(), "tern-test",
                            R"({"system_account":)" + quoted(system_.publicKey()) +
                                R"(,"type":"operator","version":2})",
                            std::nullopt},
                           operator_);
  std::ofstream(dir / "operator.jwt") << op << "\n";
  return "operator: \"" + (dir / "operator.jwt").string() + "\"\n" +
         "system_account: " + system_.publicKey() + "\n" +
         "resolver: MEMORY\n"
         "resolver_preload: {\n  " +
         system_.publicKey() + ": \"" +
         accountJwt(system_, operator_, AccountJetStream::kDisabled) + "\"\n  " +
         account_.publicKey() + ": \"" +
         accountJwt(account_, operator_, AccountJetStream::kEnabled) + "\"\n}\n" +
         "jetstream: { store_dir: \"" + (dir / "jetstream").string() + "\" }\n";
}

fs::path NatsOperator::userCreds(const fs::path& file, std::optional<int64_t> expiresAt) const {
  NKey user = NKey::generate(NKeyRole::kUser);
  writeCredsFile(file, userJwt(user, account_, expiresAt), user.seed());
  return file;
}

}  // namespace tern::test
