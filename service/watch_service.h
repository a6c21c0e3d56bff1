// WatchService.Watch: a server-streaming RPC fed by the WatchHub.
#ifndef CLOUDPLANE_SERVICE_WATCH_SERVICE_H_
#define CLOUDPLANE_SERVICE_WATCH_SERVICE_H_

#include <memory>

#include "base/event_loop.h"
#include "grpcpp/grpcpp.h"
#include "service/watch_hub.h"

namespace cloudplane::service {

class AccountTable;

// The stream opens with one HEARTBEAT (so a client knows it is subscribed),
// replays the change log after `start_after_sequence` when that is set, then
// sends live changes, and a HEARTBEAT whenever nothing was sent for the
// heartbeat interval. It ends with CANCELLED when the client cancels and with
// UNAVAILABLE when the server shuts down.
std::unique_ptr<grpc::Service> MakeWatchService(WatchHub* hub, EventLoop* loop,
                                                const AccountTable* accounts);

}  // namespace cloudplane::service

#endif  // CLOUDPLANE_SERVICE_WATCH_SERVICE_H_
