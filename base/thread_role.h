// Which threads may block on the disk.
//
// cloudplane's threads have jobs: gRPC's pool answers calls, the EventLoop
// runs timers and the durable writes of operations and the change log, and
// the transport threads (the libcurl thread of adapters/common/http, the
// io_context thread of adapters/common/websocket) move provider bytes. A
// transport thread serves every account at once, so it must never wait on
// an fsync: completions that need the store are posted to the EventLoop.
//
// The rule is enforced, not only written down: a transport thread marks
// itself with MarkTransportThread(), and the store calls
// CheckNotOnTransportThread() on entry. In builds without NDEBUG (every
// test build) a violation aborts the process with the thread's name, so a
// test that drives the code path fails; in optimised builds it is logged
// once per thread and the call proceeds.
//
// Thread-safety: every function acts on the calling thread only.
#ifndef CLOUDPLANE_BASE_THREAD_ROLE_H_
#define CLOUDPLANE_BASE_THREAD_ROLE_H_

#include "absl/strings/string_view.h"

namespace cloudplane {

// Marks the calling thread as a transport thread named `name` ("http",
// "websocket"). `name` must outlive the thread (a literal).
void MarkTransportThread(const char* name);

// The name given to MarkTransportThread on this thread, or nullptr.
const char* TransportThreadName();

// Aborts (logs, with NDEBUG) when called on a transport thread. `what`
// names the caller in the message ("store::Store::GetOperation").
void CheckNotOnTransportThread(absl::string_view what);

}  // namespace cloudplane

#endif  // CLOUDPLANE_BASE_THREAD_ROLE_H_
