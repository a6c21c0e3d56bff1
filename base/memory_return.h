// Gives memory that malloc holds free back to the kernel after a burst.
//
// glibc's malloc returns freed memory to the kernel only from the top of
// each heap. After a burst (10,000 calls in flight, each with its gRPC call
// state, request, response and provider answer), most of what was freed
// sits below a chunk still in use, so the process keeps its peak RSS long
// after the burst. malloc_trim() releases the free pages inside the heaps
// as well (madvise), at the cost of walking every arena under its lock.
//
// ReturnFreeMemory() does that only when the allocator holds more than a
// threshold free, so an idle or steady server pays one cheap look per
// interval; StartMemoryReturn() repeats it on an EventLoop.
#ifndef CLOUDPLANE_BASE_MEMORY_RETURN_H_
#define CLOUDPLANE_BASE_MEMORY_RETURN_H_

#include <cstddef>

#include "absl/time/time.h"
#include "base/event_loop.h"

namespace cloudplane {

// Bytes malloc holds free (in every arena), as mallinfo2 counts them.
size_t AllocatorFreeBytes();

// malloc_trim(0) if the allocator holds more than `threshold_bytes` free and
// more free than in use (a burst is over; under steady load what is free is
// reused). Returns whether it trimmed.
bool ReturnFreeMemory(size_t threshold_bytes);

// Every `interval` on `loop` (its thread), ReturnFreeMemory(threshold).
// Runs until the loop shuts down.
void StartMemoryReturn(EventLoop* loop, absl::Duration interval, size_t threshold_bytes);

}  // namespace cloudplane

#endif  // CLOUDPLANE_BASE_MEMORY_RETURN_H_
