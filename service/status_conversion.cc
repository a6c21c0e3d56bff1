#include "service/status_conversion.h"

#include <string>

#include "base/errors.h"
#include "base/utf8.h"
#include "google/rpc/error_details.pb.h"

namespace cloudplane::service {

namespace {

// Error text often quotes a provider (its message, a name it sent): repaired
// here, the one boundary every error crosses, so that no status a client
// gets, or an Operation stores, holds invalid UTF-8 (base/utf8.h).
google::rpc::Status Convert(const absl::Status& status, bool default_retry_info) {
  google::rpc::Status out;
  out.set_code(static_cast<int>(status.code()));
  out.set_message(RepairUtf8(status.message()));
  if (status.ok()) return out;
  auto info = GetErrorInfo(status);
  if (!info.has_value()) {
    info.emplace();
    info->set_reason(DefaultReason(status.code()));
    info->set_domain(std::string(kErrorDomain));
  }
  for (auto& [key, value] : *info->mutable_metadata()) value = RepairUtf8(value);
  out.add_details()->PackFrom(*info);
  if (auto bad_request = GetBadRequest(status); bad_request.has_value()) {
    for (auto& violation : *bad_request->mutable_field_violations()) {
      violation.set_field(RepairUtf8(violation.field()));
      violation.set_description(RepairUtf8(violation.description()));
    }
    out.add_details()->PackFrom(*bad_request);
  }
  if (auto retry_info = GetRetryInfo(status); retry_info.has_value()) {
    out.add_details()->PackFrom(*retry_info);
  } else if (default_retry_info && status.code() == absl::StatusCode::kUnavailable) {
    out.add_details()->PackFrom(*GetRetryInfo(WithRetryInfo(status, kDefaultRetryDelay)));
  }
  return out;
}

}  // namespace

google::rpc::Status ToRpcStatus(const absl::Status& status) {
  return Convert(status, /*default_retry_info=*/false);
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      RepairUtf8(status.message()),
                      Convert(status, /*default_retry_info=*/true).SerializeAsString());
}

}  // namespace cloudplane::service
