// What operation_runner.cc and operation_runner_start.cc share; internal to
// the operation_runner library.
#ifndef CLOUDPLANE_SERVICE_OPERATION_RUNNER_INTERNAL_H_
#define CLOUDPLANE_SERVICE_OPERATION_RUNNER_INTERNAL_H_

#include "cloudplane/v1/common.pb.h"
#include "google/longrunning/operations.pb.h"

namespace cloudplane::service {

// Packs `metadata` into the Operation's metadata.
inline void SetMetadata(google::longrunning::Operation& op,
                        const v1::OperationMetadata& metadata) {
  op.mutable_metadata()->PackFrom(metadata);
}

}  // namespace cloudplane::service

#endif  // CLOUDPLANE_SERVICE_OPERATION_RUNNER_INTERNAL_H_
