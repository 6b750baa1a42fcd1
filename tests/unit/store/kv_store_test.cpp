#include "store/kv_store.h"

#include <gtest/gtest.h>

#include "test_support.h"
#include "util/device_id.h"

namespace tern::store {
namespace {

std::unique_ptr<KvStore> openStore(const std::filesystem::path& dir, KvLimits limits = {}) {
  auto kv = KvStore::open(dir, limits);
  if (!kv.ok()) ADD_FAILURE() << kv.error().describe();
  return kv.ok() ? std::move(*kv) : nullptr;
}

std::vector<std::string> keysOf(KvStore& kv, std::string_view ns, std::string_view prefix) {
  std::vector<std::string> all;
  std::string after;
  for (;;) {
    auto page = kv.list(ns, prefix, after, 2);
    EXPECT_TRUE(page.ok());
    if (!page.ok()) return all;
    all.insert(all.end(), page->keys.begin(), page->keys.end());
    if (!page->more) return all;
    after = page->keys.back();
  }
}

TEST(KvStore, SetGetDeleteAndDurableAcrossReopen) {
  test::TempDir dir;
  {
    auto kv = openStore(dir.path());
    ASSERT_TRUE(kv);
    ASSERT_TRUE(kv->set("fn", "k", "v1").ok());
    ASSERT_TRUE(kv->set("fn", "k", "value two").ok());
    ASSERT_TRUE(kv->set("fn", "empty", "").ok());
    auto got = kv->get("fn", "k");
    ASSERT_TRUE(got.ok());
    ASSERT_TRUE(got->has_value());
    EXPECT_EQ(**got, "value two");
    auto empty = kv->get("fn", "empty");
    ASSERT_TRUE(empty.ok() && empty->has_value());
    EXPECT_EQ(**empty, "");
    EXPECT_FALSE(kv->get("fn", "missing")->has_value());
    EXPECT_TRUE(*kv->remove("fn", "empty"));
    EXPECT_FALSE(*kv->remove("fn", "empty"));
  }
  auto kv = openStore(dir.path());
  ASSERT_TRUE(kv);
  EXPECT_EQ(**kv->get("fn", "k"), "value two");
  EXPECT_FALSE(kv->get("fn", "empty")->has_value());
  auto usage = kv->usage("fn");
  ASSERT_TRUE(usage.ok());
  EXPECT_EQ(usage->keys, 1u);
  EXPECT_EQ(usage->bytes, 1u + 9u);
}

TEST(KvStore, NamespacesAreIsolated) {
  test::TempDir dir;
  auto kv = openStore(dir.path());
  ASSERT_TRUE(kv);
  ASSERT_TRUE(kv->set("a", "k", "from a").ok());
  ASSERT_TRUE(kv->set("b", "k", "from b").ok());
  EXPECT_EQ(**kv->get("a", "k"), "from a");
  EXPECT_EQ(**kv->get("b", "k"), "from b");
  EXPECT_EQ(keysOf(*kv, "a", ""), std::vector<std::string>{"k"});
  ASSERT_TRUE(kv->removeNamespace("a").ok());
  EXPECT_FALSE(kv->get("a", "k")->has_value());
  EXPECT_EQ(**kv->get("b", "k"), "from b");
  EXPECT_EQ(kv->usage("a")->keys, 0u);
}

TEST(KvStore, KeysAreArbitraryBytesInByteOrder) {
  test::TempDir dir;
  auto kv = openStore(dir.path());
  ASSERT_TRUE(kv);
  const std::vector<std::string> keys = {
      std::string("\x00", 1), std::string("\x00\x00", 2), std::string("a\x00z", 3),
      "a", "ab", "a\xff", std::string("\xff"), std::string("\xff\xff"), "\x7f", "\x80", "b"};
  for (const auto& k : keys) ASSERT_TRUE(kv->set("fn", k, "v:" + k).ok());
  for (const auto& k : keys) EXPECT_EQ(**kv->get("fn", k), "v:" + k);
  auto sorted = keys;
  std::sort(sorted.begin(), sorted.end());  // std::string compares as unsigned bytes
  EXPECT_EQ(keysOf(*kv, "fn", ""), sorted);
  EXPECT_EQ(keysOf(*kv, "fn", "a"),
            (std::vector<std::string>{"a", std::string("a\x00z", 3), "ab", "a\xff"}));
  // A prefix of 0xff bytes has no upper bound.
  EXPECT_EQ(keysOf(*kv, "fn", "\xff"),
            (std::vector<std::string>{std::string("\xff"), std::string("\xff\xff")}));
  EXPECT_EQ(keysOf(*kv, "fn", std::string("\x00", 1)),
            (std::vector<std::string>{std::string("\x00", 1), std::string("\x00\x00", 2)}));
  EXPECT_TRUE(keysOf(*kv, "fn", "zz").empty());
}

TEST(KvStore, ListPagesWithStartAfterAndLimit) {
  test::TempDir dir;
  auto kv = openStore(dir.path());
  ASSERT_TRUE(kv);
  // Keys built with append: GCC 12 misreports "literal" + std::string here (-Wrestrict).
  for (int i = 0; i < 5; ++i) {
    std::string key = "k";
    key.append(std::to_string(i));
    ASSERT_TRUE(kv->set("fn", key, "v").ok());
  }
  ASSERT_TRUE(kv->set("fn", "other", "v").ok());
  auto p1 = kv->list("fn", "k", "", 2);
  ASSERT_TRUE(p1.ok());
  EXPECT_EQ(p1->keys, (std::vector<std::string>{"k0", "k1"}));
  EXPECT_TRUE(p1->more);
  auto p2 = kv->list("fn", "k", "k1", 3);
  EXPECT_EQ(p2->keys, (std::vector<std::string>{"k2", "k3", "k4"}));
  EXPECT_FALSE(p2->more);
  auto p3 = kv->list("fn", "k", "k4", 3);
  EXPECT_TRUE(p3->keys.empty());
  EXPECT_FALSE(p3->more);
  // A start key before the prefix range starts at the prefix.
  EXPECT_EQ(kv->list("fn", "k", "a", 1)->keys, std::vector<std::string>{"k0"});
}

TEST(KvStore, KeyAndValueLimits) {
  test::TempDir dir;
  KvLimits limits;
  limits.maxKeyBytes = 8;
  limits.maxValueBytes = 16;
  auto kv = openStore(dir.path(), limits);
  ASSERT_TRUE(kv);
  auto empty = kv->set("fn", "", "v");
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(kv->set("fn", std::string(8, 'k'), std::string(16, 'v')).ok());
  auto longKey = kv->set("fn", std::string(9, 'k'), "v");
  ASSERT_FALSE(longKey.ok());
  EXPECT_EQ(longKey.error().code(), ErrorCode::kBodyTooLarge);
  EXPECT_EQ(longKey.error().message(), "the key is 9 bytes, the limit is 8");
  auto bigValue = kv->set("fn", "k", std::string(17, 'v'));
  ASSERT_FALSE(bigValue.ok());
  EXPECT_EQ(bigValue.error().code(), ErrorCode::kBodyTooLarge);
  EXPECT_EQ(bigValue.error().message(), "the value is 17 bytes, the limit is 16");
  EXPECT_FALSE(kv->get("fn", "k")->has_value());
  EXPECT_EQ(kv->get("fn", std::string(9, 'k')).error().code(), ErrorCode::kBodyTooLarge);
}

// A device's state moves between nodes whole: exported in key order, imported in one
// transaction under the namespace's quota, in three modes.
TEST(KvStore, NamespacesMoveWholeInThreeImportModes) {
  test::TempDir dir;
  KvLimits limits;
  limits.maxKeysPerFunction = 4;
  auto kv = openStore(dir.path(), limits);
  ASSERT_TRUE(kv);
  std::string ns = deviceNamespace("fn", "device-1");
  EXPECT_EQ(ns, "fn@device-1");
  ASSERT_TRUE(kv->set(ns, "b", "2").ok());
  ASSERT_TRUE(kv->set(ns, std::string("a\0", 2), "1").ok());
  auto out = kv->exportNamespace(ns);
  ASSERT_TRUE(out.ok());
  ASSERT_EQ(out->size(), 2u);
  EXPECT_EQ((*out)[0].key, std::string("a\0", 2));
  EXPECT_EQ((*out)[1].value, "2");

  using Mode = KvStore::ImportMode;
  const std::vector<KvStore::Entry> incoming{{"b", "new"}, {"c", "3"}};
  struct Case {
    Mode mode;
    std::vector<std::pair<std::string, std::string>> expected;  // b, c and whether a stays
    bool aStays;
    size_t written;
  };
  for (const Case& c : {Case{Mode::kOverwrite, {{"b", "new"}, {"c", "3"}}, true, 2},
                        Case{Mode::kKeepExisting, {{"b", "2"}, {"c", "3"}}, true, 1},
                        Case{Mode::kReplace, {{"b", "new"}, {"c", "3"}}, false, 2}}) {
    std::string target = deviceNamespace("fn", "device-2");
    ASSERT_TRUE(kv->importNamespace(target, *out, Mode::kReplace).ok());
    auto written = kv->importNamespace(target, incoming, c.mode);
    ASSERT_TRUE(written.ok()) << written.error().describe();
    EXPECT_EQ(*written, c.written);
    for (const auto& [key, value] : c.expected) EXPECT_EQ(kv->get(target, key)->value_or("-"), value);
    EXPECT_EQ(kv->get(target, std::string("a\0", 2))->has_value(), c.aStays);
    EXPECT_EQ(kv->usage(target)->keys, c.aStays ? 3u : 2u);
  }
  // Over the quota: nothing changes.
  std::vector<KvStore::Entry> many{{"w", ""}, {"x", ""}, {"y", ""}};
  auto over = kv->importNamespace(ns, many, Mode::kOverwrite);
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.error().code(), ErrorCode::kResourceExhausted);
  EXPECT_EQ(kv->exportNamespace(ns)->size(), 2u);
  EXPECT_FALSE(kv->importNamespace(ns, {{"", "empty key"}}, Mode::kOverwrite).ok());
  // Removing the function removes its per-device namespaces, and no other function's.
  ASSERT_TRUE(kv->set("fn", "own", "x").ok());
  ASSERT_TRUE(kv->set("fn2", "k", "x").ok());
  ASSERT_TRUE(kv->set(deviceNamespace("fn2", "device-1"), "k", "x").ok());
  ASSERT_TRUE(kv->removeNamespace("fn").ok());
  EXPECT_TRUE(kv->exportNamespace(ns)->empty());
  EXPECT_EQ(kv->usage(deviceNamespace("fn", "device-2"))->keys, 0u);
  EXPECT_FALSE(kv->get("fn", "own")->has_value());
  EXPECT_TRUE(kv->get("fn2", "k")->has_value());
  EXPECT_TRUE(kv->get(deviceNamespace("fn2", "device-1"), "k")->has_value());
  EXPECT_TRUE(isDeviceId("0123456789abcdef"));
  for (const char* bad : {"", "short", "../../etc/x", "has space here", "with@sign1"}) EXPECT_FALSE(isDeviceId(bad)) << bad;
}

TEST(KvStore, QuotaOnBytesAndKeys) {
  test::TempDir dir;
  KvLimits limits;
  limits.maxBytesPerFunction = 100;
  limits.maxKeysPerFunction = 3;
  auto kv = openStore(dir.path(), limits);
  ASSERT_TRUE(kv);
  ASSERT_TRUE(kv->set("fn", "a", std::string(49, 'x')).ok());  // 50 bytes
  ASSERT_TRUE(kv->set("fn", "b", std::string(49, 'x')).ok());  // 100 bytes: at the quota
  auto over = kv->set("fn", "c", "x");
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.error().code(), ErrorCode::kResourceExhausted);
  EXPECT_NE(over.error().message().find("100 bytes stored"), std::string::npos)
      << over.error().message();
  EXPECT_FALSE(kv->get("fn", "c")->has_value());
  // Overwriting with a smaller value frees room; another namespace has its own quota.
  ASSERT_TRUE(kv->set("fn", "b", "y").ok());
  EXPECT_EQ(kv->usage("fn")->bytes, 52u);
  ASSERT_TRUE(kv->set("fn", "c", "z").ok());
  ASSERT_TRUE(kv->set("other", "a", std::string(90, 'x')).ok());
  auto tooMany = kv->set("fn", "d", "");
  ASSERT_FALSE(tooMany.ok());
  EXPECT_EQ(tooMany.error().code(), ErrorCode::kResourceExhausted);
  EXPECT_NE(tooMany.error().message().find("3 keys stored, the limit is 3"), std::string::npos);
  // Replacing an existing key is not a new key.
  EXPECT_TRUE(kv->set("fn", "c", "zz").ok());
  EXPECT_TRUE(*kv->remove("fn", "a"));
  EXPECT_TRUE(kv->set("fn", "d", "").ok());
  auto usage = kv->usage("fn");
  EXPECT_EQ(usage->keys, 3u);
  EXPECT_EQ(usage->bytes, 2u + 3u + 1u);
}

}  // namespace
}  // namespace tern::store
