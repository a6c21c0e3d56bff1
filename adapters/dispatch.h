// Calls a method of a Provider by its full method name, with the request
// packed in an Any: how the operation runner drives a stored request, how
// the gRPC layer runs a validate_only request through the adapter's checks
// (DispatchMutation), and how the observer lists an account's collections
// without a line per collection (DispatchRead). Expanded from
// api_methods.inc, next to the Provider methods it calls.
#ifndef CLOUDPLANE_ADAPTERS_DISPATCH_H_
#define CLOUDPLANE_ADAPTERS_DISPATCH_H_

#include <string>

#include "absl/status/status.h"
#include "adapters/provider.h"
#include "google/protobuf/any.pb.h"

namespace cloudplane::adapters {

// Calls the Provider method named `method` ("cloudplane.v1.<Service>.<Method>")
// with `request` unpacked into its request type. INVALID_ARGUMENT for an
// unknown method or a request of the wrong type; then `done` is not called.
absl::Status DispatchMutation(const std::string& method, Provider& provider,
                              const CallContext& ctx, const google::protobuf::Any& request,
                              Callback<MutationProgress> done);

// Calls the read `method` ("cloudplane.v1.<Service>.<Method>", a CP_READ
// row) with `request` unpacked into its request type; `done` gets the
// response packed in an Any, or the adapter's error. INVALID_ARGUMENT for an
// unknown read (a mutation included) or a request of the wrong type; then
// `done` is not called. Same threading as the Provider method: `done` runs
// on any thread, possibly before this returns.
absl::Status DispatchRead(const std::string& method, Provider& provider, const CallContext& ctx,
                          const google::protobuf::Any& request,
                          Callback<google::protobuf::Any> done);

}  // namespace cloudplane::adapters

#endif  // CLOUDPLANE_ADAPTERS_DISPATCH_H_
