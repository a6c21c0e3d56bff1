// The one boundary where absl::Status becomes a gRPC status.
//
// Every error that leaves the server is a google.rpc.Status carrying an
// ErrorInfo (the status's own, or one derived from its code), then, when
// attached with base/errors.h, the BadRequest field violations and the
// RetryInfo (how long to wait before trying again). Messages are passed
// through as they are: the code that made them is responsible for keeping
// credentials and bodies out.
#ifndef CLOUDPLANE_SERVICE_STATUS_CONVERSION_H_
#define CLOUDPLANE_SERVICE_STATUS_CONVERSION_H_

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "google/rpc/status.pb.h"
#include "grpcpp/support/status.h"

namespace cloudplane::service {

// RetryInfo.retry_delay of a failed call with code UNAVAILABLE whose status
// carries no RetryInfo of its own.
inline constexpr absl::Duration kDefaultRetryDelay = absl::Seconds(1);

// The google.rpc.Status for `status`, as Operation.error stores it: with the
// status's own payloads only. No default RetryInfo here: an operation's error
// is final for its request_id, and a retry with that id returns it again.
google::rpc::Status ToRpcStatus(const absl::Status& status);

// The gRPC status of a failed call, with the google.rpc.Status in its binary
// details (`grpc-status-details-bin`). UNAVAILABLE always carries a RetryInfo
// there: the status's own, else kDefaultRetryDelay; clients retry such a call
// with the same request_id (clients/README.md, "Retries").
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace cloudplane::service

#endif  // CLOUDPLANE_SERVICE_STATUS_CONVERSION_H_
