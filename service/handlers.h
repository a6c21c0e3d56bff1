// The gRPC services of cloudplaned, on gRPC's callback API.
//
// Adapter-facing RPCs are generated from adapters/api_methods.inc: each one
// validates its request (request_validation.h), finds the account's
// Provider, checks the account supports the RPC, and then either calls the
// Provider (reads) or hands the request to the OperationRunner (mutations).
// No handler waits for a provider: reactors finish from the adapters'
// completion callbacks.
#ifndef CLOUDPLANE_SERVICE_HANDLERS_H_
#define CLOUDPLANE_SERVICE_HANDLERS_H_

#include <memory>
#include <vector>

#include "adapters/provider.h"
#include "base/event_loop.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/impl/codegen/service_type.h"
#include "service/accounts.h"
#include "service/gate.h"
#include "service/operation_runner.h"
#include "service/watch_hub.h"
#include "store/store.h"

namespace cloudplane::service {

// What the handlers share; everything outlives the services.
struct ServiceContext {
  const adapters::AdapterRegistry* registry = nullptr;
  const AccountTable* accounts = nullptr;
  OperationRunner* runner = nullptr;
  WatchHub* hub = nullptr;
  EventLoop* loop = nullptr;
  // Authentication, authorization and the audit log of every call.
  const Gate* gate = nullptr;
  // The state database, for reading the audit log.
  store::Store* store = nullptr;
};

// Every service of the API plus google.longrunning.Operations, ready to be
// registered with a grpc::ServerBuilder.
std::vector<std::unique_ptr<grpc::Service>> MakeServices(const ServiceContext& context);

// The fully qualified names of the services MakeServices returns, for the
// health service.
std::vector<std::string> ServiceNames();

}  // namespace cloudplane::service

#endif  // CLOUDPLANE_SERVICE_HANDLERS_H_
