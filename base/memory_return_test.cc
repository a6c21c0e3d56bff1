#include "base/memory_return.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "base/event_loop.h"
#include "gtest/gtest.h"

namespace cloudplane {
namespace {

// Resident bytes of this process, from /proc/self/statm.
size_t ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  size_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

constexpr size_t kBlock = 1024;
constexpr size_t kBlocks = 96 * 1024;  // 96 MiB

// What a burst leaves behind: many small blocks freed, with one block
// allocated after them still in use, so free() cannot give the space back
// from the top of the heap. Done on a thread of its own, as gRPC's and the
// transport's threads allocate from arenas other than the main one.
void* BurstLeavingAPin() {
  void* pin = nullptr;
  std::thread burst([&pin] {
    std::vector<char*> blocks;
    blocks.reserve(kBlocks);
    for (size_t i = 0; i < kBlocks; ++i) {
      char* b = static_cast<char*>(std::malloc(kBlock));
      for (size_t j = 0; j < kBlock; j += 512) b[j] = 1;  // touch: resident
      blocks.push_back(b);
    }
    pin = std::malloc(64);
    for (char* b : blocks) std::free(b);
  });
  burst.join();
  return pin;
}

TEST(MemoryReturnTest, FreedBurstIsHeldUntilTrimmedThenReturned) {
  void* pin = BurstLeavingAPin();
  const size_t held = ResidentBytes();
  EXPECT_GT(AllocatorFreeBytes(), 64u << 20);
  // Below the threshold nothing is done.
  EXPECT_FALSE(ReturnFreeMemory(size_t{1} << 40));
  EXPECT_GT(ResidentBytes() + (8u << 20), held);

  // Nor while more is in use than lies free (steady load).
  std::vector<void*> busy;
  for (int i = 0; i < 2048; ++i) busy.push_back(std::malloc(64 * 1024));  // 128 MiB in use
  EXPECT_FALSE(ReturnFreeMemory(16u << 20));
  for (void* b : busy) std::free(b);

  EXPECT_TRUE(ReturnFreeMemory(16u << 20));
  const size_t after = ResidentBytes();
  EXPECT_LT(after + (64u << 20), held) << "resident " << held << " -> " << after;
  std::free(pin);
}

TEST(MemoryReturnTest, RunsOnTheLoopEveryInterval) {
  void* pin = BurstLeavingAPin();
  const size_t held = ResidentBytes();
  EventLoop loop;
  StartMemoryReturn(&loop, absl::Milliseconds(50), 16u << 20);
  size_t now = held;
  const absl::Time give_up = absl::Now() + absl::Seconds(20);
  while (absl::Now() < give_up) {
    now = ResidentBytes();
    if (now + (64u << 20) < held) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_LT(now + (64u << 20), held) << "resident " << held << " -> " << now;
  loop.Shutdown();
  std::free(pin);
}

}  // namespace
}  // namespace cloudplane
