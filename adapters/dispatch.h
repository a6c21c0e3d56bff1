// Calls a mutation of a Provider by its full method name, with the request
// packed in an Any: how the operation runner drives a stored request, and how
// the gRPC layer runs a validate_only request through the adapter's checks.
// Expanded from api_methods.inc, next to the Provider methods it calls.
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

}  // namespace cloudplane::adapters

#endif  // CLOUDPLANE_ADAPTERS_DISPATCH_H_
