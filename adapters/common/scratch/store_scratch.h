// The ScratchStore of one account on top of the server's Store: collection
// `<c>` of account `a` is the store's resource collection `scratch/<c>` of
// account `a`, and durable writes run on the EventLoop (see
// adapters/scratch_store.h for the contract).
#ifndef CLOUDPLANE_ADAPTERS_COMMON_SCRATCH_STORE_SCRATCH_H_
#define CLOUDPLANE_ADAPTERS_COMMON_SCRATCH_STORE_SCRATCH_H_

#include <memory>
#include <string>

#include "adapters/scratch_store.h"
#include "base/event_loop.h"

namespace cloudplane {
namespace store {
class Store;
}

namespace adapters {

// `store` and `loop` must outlive the result. A write still queued when the
// ScratchStore is destroyed is still made.
std::unique_ptr<ScratchStore> NewStoreScratch(store::Store* store, EventLoop* loop,
                                              std::string account);

}  // namespace adapters
}  // namespace cloudplane

#endif  // CLOUDPLANE_ADAPTERS_COMMON_SCRATCH_STORE_SCRATCH_H_
