#include "base/memory_return.h"

#include <malloc.h>

namespace cloudplane {

size_t AllocatorFreeBytes() {
  const struct mallinfo2 info = mallinfo2();
  // fordblks: free chunks in the heaps; fsmblks: free fastbin blocks.
  return info.fordblks + info.fsmblks;
}

bool ReturnFreeMemory(size_t threshold_bytes) {
  const struct mallinfo2 info = mallinfo2();
  const size_t free_bytes = info.fordblks + info.fsmblks;
  // A burst is over when more lies free than is in use; under steady load
  // the free memory is reused at once, and trimming it would only make the
  // next allocations fault their pages in again.
  if (free_bytes <= threshold_bytes || free_bytes <= info.uordblks) return false;
  malloc_trim(0);
  return true;
}

namespace {

void Arm(EventLoop* loop, absl::Duration interval, size_t threshold_bytes) {
  loop->RunAfter(interval, [loop, interval, threshold_bytes] {
    ReturnFreeMemory(threshold_bytes);
    Arm(loop, interval, threshold_bytes);
  });
}

}  // namespace

void StartMemoryReturn(EventLoop* loop, absl::Duration interval, size_t threshold_bytes) {
  Arm(loop, interval, threshold_bytes);
}

}  // namespace cloudplane
