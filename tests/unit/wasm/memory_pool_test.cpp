#include "wasm/memory_pool.h"

#include <gtest/gtest.h>

#include <cstring>
#include <thread>

namespace tern::wasm {
namespace {

constexpr uint64_t kPage = MemoryPool::kWasmPageSize;

TEST(MemoryPoolTest, SlotsComeZeroedAndAreZeroedAgainAfterUse) {
  MemoryPool pool(4);
  for (uint64_t touched : {uint64_t{3 * 4096}, uint64_t{2} << 20}) {
    uint8_t* m = pool.acquire(40 * kPage);
    ASSERT_TRUE(m);
    for (uint64_t i = 0; i < 40 * kPage; i += 4096) ASSERT_EQ(m[i], 0);
    memset(m, 0xab, touched);
    pool.release(m, 40 * kPage);
    uint8_t* again = pool.acquire(40 * kPage);
    ASSERT_EQ(again, m);  // the most recently released slot is reused
    for (uint64_t i = 0; i < touched; i += 512) ASSERT_EQ(again[i], 0) << i;
    pool.release(again, 40 * kPage);
  }
  EXPECT_EQ(pool.stats().slotsInUse, 0u);
}

TEST(MemoryPoolTest, AccessibleSizeFollowsEachAcquire) {
  MemoryPool pool(1);
  uint8_t* m = pool.acquire(4 * kPage);
  ASSERT_TRUE(m);
  EXPECT_TRUE(pool.contains(m));
  EXPECT_TRUE(pool.contains(m + MemoryPool::kSlotBytes - 1));
  int local = 0;
  EXPECT_FALSE(pool.contains(&local));
  ASSERT_TRUE(pool.grow(m, 4 * kPage, 8 * kPage));
  m[8 * kPage - 1] = 1;
  pool.release(m, 8 * kPage);
  uint8_t* small = pool.acquire(kPage);
  ASSERT_EQ(small, m);
  small[kPage - 1] = 1;  // accessible; beyond is protected again (checked by engine tests)
  pool.release(small, kPage);
}

TEST(MemoryPoolTest, ExhaustionReturnsNull) {
  MemoryPool pool(2);
  uint8_t* a = pool.acquire(kPage);
  uint8_t* b = pool.acquire(kPage);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(pool.acquire(kPage), nullptr);
  EXPECT_EQ(pool.acquire(5ull << 30), nullptr);  // more than 4 GiB
  pool.release(a, kPage);
  EXPECT_NE(pool.acquire(kPage), nullptr);
  EXPECT_EQ(pool.stats().slotsInUse, 2u);
}

TEST(MemoryPoolTest, AThreadTakesBackTheSlotItReleasedLast) {
  MemoryPool pool(8);
  uint8_t* a = pool.acquire(kPage);
  uint8_t* b = pool.acquire(kPage);
  ASSERT_TRUE(a && b);
  pool.release(a, kPage);  // kept by this thread
  pool.release(b, kPage);  // this thread keeps one already: back to the shared list
  EXPECT_EQ(pool.acquire(kPage), a);
  EXPECT_EQ(pool.acquire(kPage), b);
  EXPECT_EQ(pool.stats().slotsInUse, 2u);
  EXPECT_EQ(pool.stats().acquires, 4u);
}

TEST(MemoryPoolTest, ASlotAnotherThreadKeepsIsTakenWhenThePoolIsOtherwiseExhausted) {
  MemoryPool pool(2);
  uint8_t* kept = nullptr;
  std::thread other([&] {
    kept = pool.acquire(kPage);
    ASSERT_TRUE(kept);
    memset(kept, 0xcd, kPage);
    pool.release(kept, kPage);  // kept by the other thread, which then ends
  });
  other.join();
  ASSERT_TRUE(kept);
  uint8_t* first = pool.acquire(kPage);  // the shared list's slot
  ASSERT_TRUE(first);
  EXPECT_NE(first, kept);
  uint8_t* second = pool.acquire(kPage);  // none left there: the one the thread kept
  ASSERT_EQ(second, kept);
  for (uint64_t i = 0; i < kPage; i += 512) ASSERT_EQ(second[i], 0) << i;
  EXPECT_EQ(pool.acquire(kPage), nullptr);
  EXPECT_EQ(pool.stats().slotsInUse, 2u);
  pool.release(first, kPage);
  pool.release(second, kPage);
  EXPECT_EQ(pool.stats().slotsInUse, 0u);
}

}  // namespace
}  // namespace tern::wasm
