// WatchService.Watch: a server-streaming RPC fed by the WatchHub.
#ifndef CLOUDPLANE_SERVICE_WATCH_SERVICE_H_
#define CLOUDPLANE_SERVICE_WATCH_SERVICE_H_

#include <memory>

#include "base/event_loop.h"
#include "grpcpp/grpcpp.h"
#include "service/watch_hub.h"

namespace cloudplane::service {

class AccountTable;
class Gate;

// The stream opens with one HEARTBEAT (so a client knows it is subscribed),
// replays the change log after `start_after_sequence` when that is set, then
// sends live changes, and a HEARTBEAT whenever nothing was sent for the
// heartbeat interval (measured from the last message). It ends with
// CANCELLED when the client cancels, with UNAVAILABLE when the server shuts
// down, and with ABORTED (reason WATCH_FELL_BEHIND, metadata `lastSequence`)
// when the client reads so slowly that it falls more than the hub's live
// window behind (WatchHub::Options::live_window).
//
// Each stream reads the hub's log through its own subscription, one write in
// flight and a small buffer (32 changes): publishers only wake it. Its
// writes start on the hub's fan-out thread or in OnWriteDone on a gRPC
// thread; its heartbeat timer runs on the hub's fan-out loop, so `loop` is
// not used (kept for the callers' signature).
//
// Callers pass the gate (service/gate.h): a parent account needs VIEWER
// (none at all reads as an account that does not exist), and `accounts/-`
// delivers only changes of accounts the caller has a role on, checked for
// each change against the bindings in force at that moment.
std::unique_ptr<grpc::Service> MakeWatchService(WatchHub* hub, EventLoop* loop,
                                                const AccountTable* accounts, const Gate* gate);

}  // namespace cloudplane::service

#endif  // CLOUDPLANE_SERVICE_WATCH_SERVICE_H_
