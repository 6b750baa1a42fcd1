// Binding the cluster's JetStream key-value buckets (cluster/jetstream_kv.h and the services'
// bindBucket in cluster/cluster_context.h) against a real nats-server: a missing bucket is
// created as specified, an existing one is bound as it is, and a bind that fails for any
// other reason (here: the server refuses the user the bucket's stream info) is an error
// that creates nothing. And watching a bucket (KvWatch): each key's last value, the marker,
// then each write; closing a watch leaves its consumer to the server.
#include <gtest/gtest.h>
#include <nats/nats.h>

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cluster/cluster_context.h"
#include "cluster/jetstream_kv.h"
#include "nats_process.h"
#include "test_support.h"

namespace tern::cluster {
namespace {

// A user who may do everything, and one who may not ask for any stream's info (so a bind
// fails) but may still create streams (so a bind that fell back to creating would succeed).
constexpr const char* kServerConfig = R"(
jetstream { store_dir: "{dir}/jetstream" }
authorization {
  users = [
    { user: admin, password: admin }
    { user: blind, password: blind,
      permissions: { publish: { deny: ["$JS.API.STREAM.INFO.>"] } } }
  ]
}
)";

// A connection and JetStream context as a user; requests wait at most 1 s for an answer.
class Client {
 public:
  Client(const test::NatsProcess& server, const char* user) {
    std::string url = "nats://" + std::string(user) + ":" + user + "@127.0.0.1:" +
                      std::to_string(server.port());
    EXPECT_EQ(natsConnection_ConnectTo(&conn_, url.c_str()), NATS_OK) << user;
    jsOptions options;
    jsOptions_Init(&options);
    options.Wait = 1000;
    EXPECT_EQ(natsConnection_JetStream(&js_, conn_, &options), NATS_OK) << user;
  }
  ~Client() {
    jsCtx_Destroy(js_);
    natsConnection_Destroy(conn_);
  }
  void close() { natsConnection_Close(conn_); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  jsCtx* js() const { return js_; }
  natsConnection* conn() const { return conn_; }

  // The number of consumers of a stream (-1 when its info cannot be had).
  int64_t consumers(const char* stream) const {
    jsStreamInfo* si = nullptr;
    if (js_GetStreamInfo(&si, js_, stream, nullptr, nullptr) != NATS_OK) return -1;
    int64_t n = static_cast<int64_t>(si->State.Consumers);
    jsStreamInfo_Destroy(si);
    return n;
  }

  // Whether the bucket exists, and its history and TTL (ms) when it does.
  struct Bucket {
    bool exists = false;
    int64_t history = 0;
    int64_t ttlMs = 0;
  };
  Bucket bucket(const char* name) const {
    Bucket out;
    kvStore* kv = nullptr;
    natsStatus s = js_KeyValue(&kv, js_, name);
    if (s == NATS_NOT_FOUND) return out;
    EXPECT_EQ(s, NATS_OK) << name;
    if (s != NATS_OK) return out;
    kvStatus* status = nullptr;
    EXPECT_EQ(kvStore_Status(&status, kv), NATS_OK);
    out.exists = true;
    out.history = kvStatus_History(status);
    out.ttlMs = kvStatus_TTL(status) / 1'000'000;
    kvStatus_Destroy(status);
    kvStore_Destroy(kv);
    return out;
  }

 private:
  natsConnection* conn_ = nullptr;
  jsCtx* js_ = nullptr;
};

class JetStreamKvTest : public ::testing::Test {
 protected:
  test::TempDir dir_;
  test::NatsProcess server_{dir_.path() / "nats", kServerConfig};
};

TEST_F(JetStreamKvTest, AMissingBucketIsCreatedWithItsHistoryAndTtl) {
  Client admin(server_, "admin");
  ASSERT_FALSE(admin.bucket("made").exists);
  auto kv = bindOrCreateBucket(admin.js(), {"made", 8, 90'000}, "test", "nats://test");
  ASSERT_TRUE(kv.ok()) << kv.error().message();
  kvStore_Destroy(*kv);
  Client::Bucket made = admin.bucket("made");
  ASSERT_TRUE(made.exists);
  EXPECT_EQ(made.history, 8);
  EXPECT_EQ(made.ttlMs, 90'000);
}

TEST_F(JetStreamKvTest, AnExistingBucketIsBoundAsItIs) {
  Client admin(server_, "admin");
  kvConfig cfg;
  kvConfig_Init(&cfg);
  cfg.Bucket = "kept";
  cfg.History = 5;
  kvStore* created = nullptr;
  ASSERT_EQ(js_CreateKeyValue(&created, admin.js(), &cfg), NATS_OK);
  kvStore_Destroy(created);

  bool warned = false;
  kvStore* kv = bindBucket(admin.js(), {"kept", 1, 60'000}, "nats://test", warned);
  ASSERT_NE(kv, nullptr);
  kvStore_Destroy(kv);
  EXPECT_FALSE(warned);
  Client::Bucket kept = admin.bucket("kept");
  EXPECT_EQ(kept.history, 5);
  EXPECT_EQ(kept.ttlMs, 0);
}

TEST_F(JetStreamKvTest, ABindThatFailsOtherwiseIsAnErrorAndCreatesNothing) {
  Client admin(server_, "admin");
  Client blind(server_, "blind");

  auto kv = bindOrCreateBucket(blind.js(), {"absent", 1}, "test", "nats://test");
  ASSERT_FALSE(kv.ok());
  EXPECT_NE(kv.error().message().find("test: bucket absent"), std::string::npos)
      << kv.error().message();

  bool warned = false;
  EXPECT_EQ(bindBucket(blind.js(), {"absent", 1}, "nats://test", warned), nullptr);
  EXPECT_TRUE(warned);
  EXPECT_FALSE(admin.bucket("absent").exists) << "a failed bind created the bucket";

  // The same user binds a bucket that exists no better: the failure is not "not found".
  kvConfig cfg;
  kvConfig_Init(&cfg);
  cfg.Bucket = "there";
  kvStore* created = nullptr;
  ASSERT_EQ(js_CreateKeyValue(&created, admin.js(), &cfg), NATS_OK);
  kvStore_Destroy(created);
  EXPECT_EQ(bindBucket(blind.js(), {"there", 1}, "nats://test", warned), nullptr);
}

// A bucket "watched" and the admin's handle on it.
class KvWatchTest : public JetStreamKvTest {
 protected:
  void SetUp() override {
    auto kv = bindOrCreateBucket(admin_.js(), {"watched", 4}, "test", "nats://test");
    ASSERT_TRUE(kv.ok()) << kv.error().message();
    kv_ = *kv;
  }
  void TearDown() override { kvStore_Destroy(kv_); }

  void put(const char* key, const std::string& value) {
    ASSERT_EQ(kvStore_PutString(nullptr, kv_, key, value.c_str()), NATS_OK) << key;
  }

  // What the watch delivers until the marker (or a failure): "key=value", "key deleted".
  static std::vector<std::string> untilMarker(KvWatch& watch) {
    std::vector<std::string> out;
    for (;;) {
      std::optional<KvChange> change;
      natsStatus s = watch.next(change, 10'000);
      if (s != NATS_OK) {
        out.push_back(std::string("failed: ") + natsStatus_GetText(s));
        return out;
      }
      if (!change) return out;
      out.push_back(change->deleted ? change->key + " deleted" : change->key + "=" + change->value);
    }
  }

  Client admin_{server_, "admin"};
  kvStore* kv_ = nullptr;
};

TEST_F(KvWatchTest, AnEmptyBucketGivesTheMarkerFirstThenEachWrite) {
  std::unique_ptr<KvWatch> watch;
  ASSERT_EQ(KvWatch::open(watch, admin_.conn(), admin_.js(), kv_), NATS_OK);
  EXPECT_TRUE(untilMarker(*watch).empty());

  put("a", "1");
  std::optional<KvChange> change;
  ASSERT_EQ(watch->next(change, 10'000), NATS_OK);
  ASSERT_TRUE(change);
  EXPECT_EQ(change->key, "a");
  EXPECT_EQ(change->value, "1");
  EXPECT_FALSE(change->deleted);
  EXPECT_EQ(change->revision, 1u);

  ASSERT_EQ(kvStore_Delete(kv_, "a"), NATS_OK);
  ASSERT_EQ(watch->next(change, 10'000), NATS_OK);
  ASSERT_TRUE(change);
  EXPECT_EQ(change->key, "a");
  EXPECT_TRUE(change->deleted);
  EXPECT_EQ(change->value, "");
  EXPECT_EQ(change->revision, 2u);

  // The marker comes once per watch; with nothing written, the wait ends in a timeout.
  EXPECT_EQ(watch->next(change, 50), NATS_TIMEOUT);
  EXPECT_FALSE(change);
}

TEST_F(KvWatchTest, EachKeysLastValueComesThenTheMarker) {
  put("a", "1");
  put("b", "2");
  put("a", "3");
  put("c", "4");
  ASSERT_EQ(kvStore_Delete(kv_, "c"), NATS_OK);
  put("d.e", "5");

  std::unique_ptr<KvWatch> watch;
  ASSERT_EQ(KvWatch::open(watch, admin_.conn(), admin_.js(), kv_), NATS_OK);
  EXPECT_EQ(untilMarker(*watch),
            (std::vector<std::string>{"b=2", "a=3", "c deleted", "d.e=5"}));

  put("b", "6");
  std::optional<KvChange> change;
  ASSERT_EQ(watch->next(change, 10'000), NATS_OK);
  ASSERT_TRUE(change);
  EXPECT_EQ(change->key, "b");
  EXPECT_EQ(change->value, "6");
  EXPECT_EQ(change->revision, 7u);
}

TEST_F(KvWatchTest, DeletesCanBeLeftOutAndTheMarkerStillComes) {
  put("a", "1");
  put("b", "2");
  ASSERT_EQ(kvStore_Delete(kv_, "b"), NATS_OK);  // the last of the first delivery

  std::unique_ptr<KvWatch> watch;
  ASSERT_EQ(KvWatch::open(watch, admin_.conn(), admin_.js(), kv_, {.ignoreDeletes = true}), NATS_OK);
  EXPECT_EQ(untilMarker(*watch), (std::vector<std::string>{"a=1"}));

  ASSERT_EQ(kvStore_Purge(kv_, "a", nullptr), NATS_OK);
  put("c", "3");
  std::optional<KvChange> change;
  ASSERT_EQ(watch->next(change, 10'000), NATS_OK);
  ASSERT_TRUE(change);
  EXPECT_EQ(change->key, "c") << "the purge of a was delivered";
}

// Closing a watch does not delete its consumer (libnats's kvWatcher_Destroy does, and that
// is where it races with the consumer's re-creation); the server removes the consumer once
// nobody subscribes to it.
// libnats delivers a message to a subscription without holding a reference to it: a watch
// freed while its bucket is being written must leave the connection's reader nothing to
// use (the sanitizer builds see a use after free otherwise).
TEST_F(KvWatchTest, WatchesClosedWhileTheirBucketIsWrittenLeaveNothingInUse) {
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (int i = 0; !done.load(); ++i) {
      kvStore_PutString(nullptr, kv_, i % 2 ? "a" : "b", std::to_string(i).c_str());
    }
  });
  for (int round = 0; round < 100; ++round) {
    std::unique_ptr<KvWatch> watch;
    ASSERT_EQ(KvWatch::open(watch, admin_.conn(), admin_.js(), kv_), NATS_OK) << round;
    std::optional<KvChange> change;
    ASSERT_EQ(watch->next(change, 10'000), NATS_OK) << round;
  }
  done.store(true);
  writer.join();
}

TEST_F(KvWatchTest, AClosedWatchLeavesItsConsumerToTheServer) {
  put("a", "1");
  std::unique_ptr<KvWatch> watch;
  ASSERT_EQ(KvWatch::open(watch, admin_.conn(), admin_.js(), kv_), NATS_OK);
  EXPECT_EQ(untilMarker(*watch), (std::vector<std::string>{"a=1"}));
  EXPECT_GE(admin_.consumers("KV_watched"), 1);  // more when libnats re-created it meanwhile
  watch.reset();
  EXPECT_TRUE(test::eventually([&] { return admin_.consumers("KV_watched") == 0; }));
}

TEST_F(KvWatchTest, AWatchOfAClosedConnectionSaysItIsBroken) {
  Client other(server_, "admin");
  kvStore* kv = nullptr;
  ASSERT_EQ(js_KeyValue(&kv, other.js(), "watched"), NATS_OK);
  std::unique_ptr<KvWatch> watch;
  ASSERT_EQ(KvWatch::open(watch, other.conn(), other.js(), kv), NATS_OK);
  EXPECT_TRUE(untilMarker(*watch).empty());
  other.close();
  std::optional<KvChange> change;
  natsStatus s = watch->next(change, 10'000);
  EXPECT_NE(s, NATS_OK);
  EXPECT_NE(s, NATS_TIMEOUT);
  watch.reset();
  kvStore_Destroy(kv);
}

}  // namespace
}  // namespace tern::cluster
