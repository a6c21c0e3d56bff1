// The vocabulary adapters report progress and common refusals in, so the
// runner sees the same shapes from every provider.
#ifndef CLOUDPLANE_ADAPTERS_COMMON_KIT_PROGRESS_H_
#define CLOUDPLANE_ADAPTERS_COMMON_KIT_PROGRESS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "adapters/provider.h"
#include "google/protobuf/message.h"

namespace cloudplane::adapters::kit {

// The work is finished; `result` is the method's Result type.
MutationProgress Finished(const google::protobuf::Message& result);

// The work goes on: poll again with `poll_token` (kit/poll_token.h).
// `detail` is one line for OperationMetadata.status_detail;
// `provider_operation` the provider's handle for the work (a job id), if any.
MutationProgress Pending(std::string poll_token, std::string detail,
                         std::string provider_operation = "");

// NOT_FOUND "<what> <resource> does not exist", reason RESOURCE_NOT_FOUND,
// metadata {"resource": resource}.
absl::Status NotFound(absl::string_view what, absl::string_view resource);

// FAILED_PRECONDITION with `message`, reason WRONG_STATE, metadata
// {"resource", "providerState"}.
absl::Status WrongState(absl::string_view message, absl::string_view resource,
                        absl::string_view provider_state);

// True when `status`, the answer to a request that changes something, leaves
// open whether the provider applied it: a transport failure or timeout
// (UNAVAILABLE, DEADLINE_EXCEEDED, CANCELLED), a 5xx (UNAVAILABLE), an answer
// that could not be read (INTERNAL). The runner (service/operation_runner.cc)
// uses this same function: it keeps such an operation and calls the mutation
// again with the same CallContext::operation, or polls again; the adapter
// therefore keeps what the request reserved or marked and undoes nothing, and
// the next call looks for the work first. False for OK, for a refusal (the
// provider said no, nothing was done), for UNKNOWN, and for the provider's
// own word that the work failed (reason PROVIDER_JOB_FAILED or
// PROVIDER_FAILURE_STATE, whatever the code).
bool IsAmbiguous(const absl::Status& status);

}  // namespace cloudplane::adapters::kit

#endif  // CLOUDPLANE_ADAPTERS_COMMON_KIT_PROGRESS_H_
