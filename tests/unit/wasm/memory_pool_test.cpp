#include "wasm/memory_pool.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
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

// Each case reads the whole accessible memory after the next acquire: a page left dirty
// fails it. The reset cases run with each way of knowing the resident pages.
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

class MemoryPoolResetTest : public ::testing::TestWithParam<MemoryReset> {
 protected:
  // A pool of `slots` reset as the parameter says; a pool asked to fill its pages where
  // the kernel refuses userfaultfd counts faults, and the case is skipped.
  std::unique_ptr<MemoryPool> makePool(size_t slots) {
    auto pool = std::make_unique<MemoryPool>(slots, GetParam());
    if (GetParam() == MemoryReset::kPageFills && !pool->stats().fillsPages) return nullptr;
    return pool;
  }
  bool fills() const { return GetParam() == MemoryReset::kPageFills; }
};

#define MAKE_POOL(name, slots)                                                     \
  auto name##Owner = makePool(slots);                                              \
  if (!name##Owner) GTEST_SKIP() << "this kernel does not give userfaultfd to tern"; \
  MemoryPool& name = *name##Owner

TEST_P(MemoryPoolResetTest, ASteadyUseIsResetWithoutAScanAndLeavesNothing) {
  MAKE_POOL(pool, 2);
  constexpr int kRounds = 200;
  uint64_t filledByTheFirst = 0;
  for (int r = 0; r < kRounds; ++r) {
    uint8_t* m = pool.acquire(2 * kPage);
    ASSERT_TRUE(m);
    ASSERT_TRUE(allZero(m, 2 * kPage)) << "round " << r;
    memset(m, 0x11, 100);                 // the data
    memset(m + 2 * kPage - 4096, 0x22, 64);  // the stack
    pool.release(m, 2 * kPage, kOwn);
    if (r == 0) filledByTheFirst = pool.stats().pageFills;
  }
  uint64_t scans = pool.stats().residencyScans;
  if (fills()) {
    // The pages the first round read and wrote were filled then, and never again; no
    // release scanned.
    EXPECT_GT(filledByTheFirst, 0u);
    EXPECT_EQ(pool.stats().pageFills, filledByTheFirst);
    EXPECT_EQ(scans, 0u);
    return;
  }
  // The first release scans; later ones scan only when this thread happened to fault.
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

TEST_P(MemoryPoolResetTest, APageTouchedForTheFirstTimeIsFoundAndZeroed) {
  MAKE_POOL(pool, 2);
  settle(pool, 4 * kPage);
  uint8_t* m = pool.acquire(4 * kPage);
  uint64_t scansBefore = pool.stats().residencyScans;
  uint64_t fillsBefore = pool.stats().pageFills;
  memset(m + 3 * kPage + 4096, 0x33, 4096);  // a page never touched before: it faults
  pool.release(m, 4 * kPage, kOwn);
  if (fills()) {
    // That page filled, and no scan.
    EXPECT_EQ(pool.stats().pageFills, fillsBefore + 1);
    EXPECT_EQ(pool.stats().residencyScans, 0u);
  } else {
    EXPECT_EQ(pool.stats().residencyScans, scansBefore + 1);
  }
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

TEST_P(MemoryPoolResetTest, AFaultWhileAnotherSlotWasHeldIsSeenAtItsRelease) {
  MAKE_POOL(pool, 4);
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

TEST_P(MemoryPoolResetTest, PagesPastASmallerUseStayKnownForTheNextLargerOne) {
  MAKE_POOL(pool, 1);
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

TEST_P(MemoryPoolResetTest, WritesFromAnotherThreadAreFoundWhenReleasedForAnyThread) {
  MAKE_POOL(pool, 2);
  settle(pool, 2 * kPage);
  uint8_t* m = pool.acquire(2 * kPage);
  std::thread([m] { memset(m + kPage, 0x99, 4096); }).join();
  pool.release(m, 2 * kPage, SlotUse::kAnyThread);
  uint8_t* again = pool.acquire(2 * kPage);
  EXPECT_TRUE(allZero(again, 2 * kPage));
  pool.release(again, 2 * kPage, kOwn);
}

TEST_P(MemoryPoolResetTest, ReadsOfPagesNeverWrittenAreZeroAndLeaveNothing) {
  MAKE_POOL(pool, 1);
  uint8_t* m = pool.acquire(8 * kPage);
  EXPECT_TRUE(allZero(m, 8 * kPage));  // every page read, none written
  m[5 * kPage + 100] = 1;
  pool.release(m, 8 * kPage, kOwn);
  m = pool.acquire(8 * kPage);
  EXPECT_TRUE(allZero(m, 8 * kPage));
  pool.release(m, 8 * kPage, kOwn);
}

TEST_P(MemoryPoolResetTest, MoreFilledRunsThanASlotRecordsDiscardItWhole) {
  MAKE_POOL(pool, 1);
  constexpr uint64_t kBytes = 64 * kPage;
  // One byte in each of 48 wasm pages: 48 runs, more than a slot records.
  uint8_t* m = pool.acquire(kBytes);
  for (uint64_t p = 0; p < 48; ++p) m[p * kPage + 7] = 0x5a;
  pool.release(m, kBytes, kOwn);
  if (fills()) {
    EXPECT_EQ(pool.stats().warmBytes, 0u);  // discarded, not kept
  }
  m = pool.acquire(kBytes);
  EXPECT_TRUE(allZero(m, kBytes));
  // And the next use starts from nothing known, and is reset as any other.
  for (uint64_t p = 0; p < 4; ++p) m[p * kPage + 9] = 0x5b;
  pool.release(m, kBytes, kOwn);
  m = pool.acquire(kBytes);
  EXPECT_TRUE(allZero(m, kBytes));
  pool.release(m, kBytes, kOwn);
}

INSTANTIATE_TEST_SUITE_P(Modes, MemoryPoolResetTest,
                         ::testing::Values(MemoryReset::kPageFills, MemoryReset::kFaultCount),
                         [](const ::testing::TestParamInfo<MemoryReset>& info) {
                           return info.param == MemoryReset::kPageFills ? "PageFills"
                                                                        : "FaultCount";
                         });

// With its pages filled by tern, a slot's missing page cannot be made resident by the
// kernel behind tern's back: a system call asked to write into one fails, and succeeds
// once tern has filled it.
TEST(MemoryPoolFillTest, ASystemCallCannotWriteAPageTernHasNotFilled) {
  MemoryPool pool(1, MemoryReset::kPageFills);
  if (!pool.stats().fillsPages) GTEST_SKIP() << "this kernel does not give userfaultfd to tern";
  uint8_t* m = pool.acquire(2 * kPage);
  int fd = open("/dev/zero", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  errno = 0;
  EXPECT_EQ(read(fd, m + kPage, 16), -1);
  EXPECT_EQ(errno, EFAULT);
  uint64_t before = pool.stats().pageFills;
  m[kPage] = 1;  // tern fills it
  EXPECT_EQ(pool.stats().pageFills, before + 1);
  EXPECT_EQ(read(fd, m + kPage, 16), 16);
  close(fd);
  pool.release(m, 2 * kPage, kOwn);
  m = pool.acquire(2 * kPage);
  EXPECT_TRUE(allZero(m, 2 * kPage));
  pool.release(m, 2 * kPage, kOwn);
}

// The first fills of a use take one page each; after them a fill takes the rest of its
// wasm page too, so a large memory written in order costs a signal per 16 pages.
TEST(MemoryPoolFillTest, AUseThatKeepsFillingGetsWholeWasmPages) {
  MemoryPool pool(1, MemoryReset::kPageFills);
  if (!pool.stats().fillsPages) GTEST_SKIP() << "this kernel does not give userfaultfd to tern";
  uint8_t* m = pool.acquire(4 * kPage);
  memset(m, 0x3c, 20 * 4096);
  // Pages 0-7 one by one, then 8-15 and 16-31 in two fills.
  EXPECT_EQ(pool.stats().pageFills, 32u);
  pool.release(m, 4 * kPage, kOwn);
  m = pool.acquire(4 * kPage);
  memset(m, 0x3d, 20 * 4096);
  EXPECT_EQ(pool.stats().pageFills, 32u);  // known now: nothing more to fill
  pool.release(m, 4 * kPage, kOwn);
  m = pool.acquire(4 * kPage);
  EXPECT_TRUE(allZero(m, 4 * kPage));
  pool.release(m, 4 * kPage, kOwn);
}

TEST(MemoryPoolFillTest, APoolAskedToCountFaultsFillsNothing) {
  MemoryPool pool(1, MemoryReset::kFaultCount);
  uint8_t* m = pool.acquire(kPage);
  memset(m, 1, kPage);
  pool.release(m, kPage, kOwn);
  EXPECT_FALSE(pool.stats().fillsPages);
  EXPECT_EQ(pool.stats().pageFills, 0u);
}

}  // namespace
}  // namespace tern::wasm
