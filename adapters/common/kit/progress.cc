#include "adapters/common/kit/progress.h"

#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/errors.h"
#include "base/reasons.h"

namespace cloudplane::adapters::kit {

MutationProgress Finished(const google::protobuf::Message& result) {
  MutationProgress progress;
  progress.done = true;
  progress.result.PackFrom(result);
  return progress;
}

MutationProgress Pending(std::string poll_token, std::string detail,
                         std::string provider_operation) {
  MutationProgress progress;
  progress.poll_token = std::move(poll_token);
  progress.detail = std::move(detail);
  progress.provider_operation = std::move(provider_operation);
  return progress;
}

absl::Status NotFound(absl::string_view what, absl::string_view resource) {
  return WithErrorInfo(absl::NotFoundError(absl::StrCat(what, " ", resource, " does not exist")),
                       reasons::kResourceNotFound, {{"resource", std::string(resource)}});
}

absl::Status WrongState(absl::string_view message, absl::string_view resource,
                        absl::string_view provider_state) {
  return WithErrorInfo(absl::FailedPreconditionError(message), reasons::kWrongState,
                       {{"resource", std::string(resource)},
                        {"providerState", std::string(provider_state)}});
}

bool IsAmbiguous(const absl::Status& status) {
  // The provider's own word that the work failed is final, whatever its code.
  if (std::optional<google::rpc::ErrorInfo> info = GetErrorInfo(status)) {
    if (info->reason() == reasons::kProviderJobFailed ||
        info->reason() == reasons::kProviderFailureState) {
      return false;
    }
  }
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kCancelled:
      return true;
    default:
      return false;
  }
}

}  // namespace cloudplane::adapters::kit
