// Acting on a ScratchStore write only once it is durable.
//
// An adapter that notes what an operation is about to create at the provider
// (Phantom's creation marks, enStratus' launch marks) must send the create
// only after the note survives a crash: otherwise a restart between the send
// and the durable write re-drives the operation without the note, and the
// adapter creates a second resource (or refuses its own as ALREADY_EXISTS).
// ScratchStore::Put changes memory at once and writes on the EventLoop;
// PutDurably waits for that write.
#ifndef CLOUDPLANE_ADAPTERS_COMMON_SCRATCH_DURABLE_PUT_H_
#define CLOUDPLANE_ADAPTERS_COMMON_SCRATCH_DURABLE_PUT_H_

#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "adapters/scratch_store.h"

namespace cloudplane::adapters {

// Puts `bytes` under `collection`/`id` and runs `then` exactly once:
//   OK                  the durable write succeeded;
//   the store's code    the Put was refused or the durable write failed,
//                       "could not mark <what>: ...", reason STATE_STORE_FAILED;
//   UNAVAILABLE         the EventLoop dropped the write (shutting down),
//                       reason STATE_STORE_FAILED.
// `then` runs on the EventLoop (a refused Put: inline, on the caller's
// thread). Memory holds the value as soon as the Put is accepted.
void PutDurably(ScratchStore& scratch, absl::string_view collection, absl::string_view id,
                std::string bytes, std::string what, absl::AnyInvocable<void(absl::Status)> then);

}  // namespace cloudplane::adapters

#endif  // CLOUDPLANE_ADAPTERS_COMMON_SCRATCH_DURABLE_PUT_H_
