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

// Releases that know only this thread used the slot zero the pages the last release found
// resident, without asking the kernel, unless the thread took a page fault meanwhile.
// Each case reads the whole accessible memory after the next acquire: a page left dirty
// fails it.
bool allZero(const uint8_t* m, uint64_t bytes) {
  for (uint64_t i = 0; i < bytes; i += 8) {
    uint64_t v;
    memcpy(&v, m + i, 8);
    if (v != 0) return false;
  }
  return true;
}

constexpr SlotUse kOwn = SlotUse::kThisThreadOnly;

// A few uses of one slot writing the same page, so that the next release knows its pages.
void settle(MemoryPool& pool, uint64_t bytes) {
  for (int r = 0; r < 3; ++r) {
    uint8_t* m = pool.acquire(bytes);
    memset(m, 0x11, 100);
    pool.release(m, bytes, kOwn);
  }
}

TEST(MemoryPoolResetTest, ASteadyUseIsResetWithoutAScanAndLeavesNothing) {
  MemoryPool pool(2);
  constexpr int kRounds = 200;
  for (int r = 0; r < kRounds; ++r) {
    uint8_t* m = pool.acquire(2 * kPage);
    ASSERT_TRUE(m);
    ASSERT_TRUE(allZero(m, 2 * kPage)) << "round " << r;
    memset(m, 0x11, 100);                 // the data
    memset(m + 2 * kPage - 4096, 0x22, 64);  // the stack
    pool.release(m, 2 * kPage, kOwn);
  }
  // The first release scans; later ones scan only when this thread happened to fault.
  uint64_t scans = pool.stats().residencyScans;
  EXPECT_GE(scans, 1u);
  EXPECT_LE(scans, uint64_t{kRounds / 2});
  // Released for any thread, every release scans.
  for (int r = 0; r < 3; ++r) {
    uint8_t* m = pool.acquire(2 * kPage);
    memset(m, 0x11, 100);
    pool.release(m, 2 * kPage, SlotUse::kAnyThread);
  }
  EXPECT_EQ(pool.stats().residencyScans, scans + 3);
}

TEST(MemoryPoolResetTest, APageTouchedForTheFirstTimeIsFoundAndZeroed) {
  MemoryPool pool(2);
  settle(pool, 4 * kPage);
  uint8_t* m = pool.acquire(4 * kPage);
  uint64_t before = pool.stats().residencyScans;
  memset(m + 3 * kPage + 4096, 0x33, 4096);  // a page never touched before: it faults
  pool.release(m, 4 * kPage, kOwn);
  EXPECT_EQ(pool.stats().residencyScans, before + 1);
  uint8_t* again = pool.acquire(4 * kPage);
  ASSERT_EQ(again, m);
  EXPECT_TRUE(allZero(again, 4 * kPage));
  // And it is one of the known pages from then on.
  memset(again + 3 * kPage + 4096, 0x44, 4096);
  pool.release(again, 4 * kPage, kOwn);
  uint8_t* third = pool.acquire(4 * kPage);
  EXPECT_TRUE(allZero(third, 4 * kPage));
  pool.release(third, 4 * kPage, kOwn);
}

TEST(MemoryPoolResetTest, AFaultWhileAnotherSlotWasHeldIsSeenAtItsRelease) {
  MemoryPool pool(4);
  settle(pool, 2 * kPage);
  uint8_t* outer = pool.acquire(2 * kPage);
  memset(outer + kPage, 0x55, 4096);  // new: faults now
  // A nested invocation on the same thread reads the fault count first.
  uint8_t* nested = pool.acquire(2 * kPage);
  ASSERT_NE(nested, outer);
  memset(nested, 0x66, 100);
  pool.release(nested, 2 * kPage, kOwn);
  pool.release(outer, 2 * kPage, kOwn);
  // The thread keeps the nested slot; the outer one went back to the pool.
  uint8_t* a = pool.acquire(2 * kPage);
  uint8_t* b = pool.acquire(2 * kPage);
  ASSERT_TRUE(a == outer || b == outer);
  EXPECT_TRUE(allZero(a, 2 * kPage));
  EXPECT_TRUE(allZero(b, 2 * kPage));
  pool.release(b, 2 * kPage, kOwn);
  pool.release(a, 2 * kPage, kOwn);
}

TEST(MemoryPoolResetTest, PagesPastASmallerUseStayKnownForTheNextLargerOne) {
  MemoryPool pool(1);
  constexpr uint64_t kLarge = 16 * kPage, kSmall = 2 * kPage;
  uint8_t* m = pool.acquire(kLarge);
  memset(m + 14 * kPage, 0x77, 4096);
  pool.release(m, kLarge, kOwn);
  // A smaller use leaves that page resident (zeroed) but inaccessible.
  m = pool.acquire(kSmall);
  memset(m, 0x11, 100);
  pool.release(m, kSmall, kOwn);
  m = pool.acquire(kSmall);
  memset(m, 0x11, 100);
  pool.release(m, kSmall, kOwn);
  // Larger again: the page is written without a fault, and must still be zeroed.
  m = pool.acquire(kLarge);
  ASSERT_TRUE(allZero(m, kLarge));
  memset(m + 14 * kPage, 0x88, 4096);
  pool.release(m, kLarge, kOwn);
  m = pool.acquire(kLarge);
  EXPECT_TRUE(allZero(m, kLarge));
  pool.release(m, kLarge, kOwn);
}

TEST(MemoryPoolResetTest, WritesFromAnotherThreadAreFoundWhenReleasedForAnyThread) {
  MemoryPool pool(2);
  settle(pool, 2 * kPage);
  uint8_t* m = pool.acquire(2 * kPage);
  std::thread([m] { memset(m + kPage, 0x99, 4096); }).join();
  pool.release(m, 2 * kPage, SlotUse::kAnyThread);
  uint8_t* again = pool.acquire(2 * kPage);
  EXPECT_TRUE(allZero(again, 2 * kPage));
  pool.release(again, 2 * kPage, kOwn);
}

}  // namespace
}  // namespace tern::wasm
