// The one boundary where absl::Status becomes a gRPC status.
//
// Every error that leaves the server is a google.rpc.Status carrying an
// ErrorInfo (the status's own, or one derived from its code) and, for
// invalid arguments, the BadRequest field violations attached with
// base/errors.h. Messages are passed through as they are: the code that made
// them is responsible for keeping credentials and bodies out.
#ifndef CLOUDPLANE_SERVICE_STATUS_CONVERSION_H_
#define CLOUDPLANE_SERVICE_STATUS_CONVERSION_H_

#include "absl/status/status.h"
#include "google/rpc/status.pb.h"
#include "grpcpp/support/status.h"

namespace cloudplane::service {

// The google.rpc.Status for `status` (used for Operation.error too).
google::rpc::Status ToRpcStatus(const absl::Status& status);

// The gRPC status, with the google.rpc.Status in its binary details
// (`grpc-status-details-bin`).
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace cloudplane::service

#endif  // CLOUDPLANE_SERVICE_STATUS_CONVERSION_H_
