// A ScratchStore on a private in-memory server Store, for adapter tests that
// need one (an adapter test never includes store/store.h itself).
#ifndef CLOUDPLANE_ADAPTERS_COMMON_SCRATCH_IN_MEMORY_SCRATCH_H_
#define CLOUDPLANE_ADAPTERS_COMMON_SCRATCH_IN_MEMORY_SCRATCH_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "adapters/scratch_store.h"
#include "base/event_loop.h"

namespace cloudplane::adapters {

// NewStoreScratch over a Store that the result owns. Durable writes run on
// `loop` as they do in the server; the loop must finish them (be destroyed or
// drained) before the result is destroyed. The Store's errors when it cannot
// be opened.
absl::StatusOr<std::unique_ptr<ScratchStore>> NewInMemoryScratch(EventLoop* loop,
                                                                  std::string account);

}  // namespace cloudplane::adapters

#endif  // CLOUDPLANE_ADAPTERS_COMMON_SCRATCH_IN_MEMORY_SCRATCH_H_
