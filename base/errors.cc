#include "base/errors.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <utility>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "base/reasons.h"
#include "base/utf8.h"

namespace cloudplane {
namespace {

constexpr absl::string_view kErrorInfoUrl = "type.googleapis.com/google.rpc.ErrorInfo";
constexpr absl::string_view kBadRequestUrl = "type.googleapis.com/google.rpc.BadRequest";

template <typename T>
std::optional<T> GetPayload(const absl::Status& status, absl::string_view url) {
  auto payload = status.GetPayload(url);  // absl::optional in Debian's abseil
  if (!payload.has_value()) return std::nullopt;
  T message;
  if (!message.ParseFromString(std::string(*payload))) return std::nullopt;
  return message;
}

}  // namespace

absl::Status InvalidField(absl::string_view field, absl::string_view description) {
  absl::Status status;
  AddFieldViolation(status, field, description);
  return status;
}

void AddFieldViolation(absl::Status& status, absl::string_view field,
                       absl::string_view description) {
  google::rpc::BadRequest bad_request =
      GetPayload<google::rpc::BadRequest>(status, kBadRequestUrl).value_or(
          google::rpc::BadRequest());
  auto* violation = bad_request.add_field_violations();
  violation->set_field(RepairUtf8(field));
  violation->set_description(RepairUtf8(description));
  if (status.ok()) {
    status = absl::InvalidArgumentError(absl::StrCat(field, ": ", description));
    status = WithErrorInfo(std::move(status), reasons::kFieldInvalid,
                           {{"field", std::string(field)}});
  }
  status.SetPayload(kBadRequestUrl, absl::Cord(bad_request.SerializeAsString()));
}

absl::Status WithErrorInfo(absl::Status status, absl::string_view reason,
                           const std::map<std::string, std::string>& metadata) {
  if (status.ok()) return status;
#ifndef NDEBUG
  // Clients code against the catalogue: a reason outside it is a bug that
  // every test build turns into a failure of the test that reaches it.
  if (std::find(std::begin(reasons::kAll), std::end(reasons::kAll), reason) ==
      std::end(reasons::kAll)) {
    std::fprintf(stderr, "cloudplane: ErrorInfo reason \"%.*s\" is not in base/reasons.h\n",
                 static_cast<int>(reason.size()), reason.data());
    std::abort();
  }
#endif
  google::rpc::ErrorInfo info;
  info.set_reason(std::string(reason));
  info.set_domain(std::string(kErrorDomain));
  // Values often quote a provider; a string that is not UTF-8 would not
  // even parse back (base/utf8.h).
  for (const auto& [key, value] : metadata) (*info.mutable_metadata())[key] = RepairUtf8(value);
  status.SetPayload(kErrorInfoUrl, absl::Cord(info.SerializeAsString()));
  return status;
}

absl::Status WithRetryInfo(absl::Status status, absl::Duration delay) {
  if (status.ok()) return status;
  if (delay < absl::ZeroDuration()) delay = absl::ZeroDuration();
  google::rpc::RetryInfo info;
  // google.protobuf.Duration: whole seconds plus nanos of the same sign.
  const int64_t seconds = absl::IDivDuration(delay, absl::Seconds(1), &delay);
  info.mutable_retry_delay()->set_seconds(seconds);
  info.mutable_retry_delay()->set_nanos(
      static_cast<int32_t>(absl::ToInt64Nanoseconds(delay)));
  status.SetPayload(kRetryInfoTypeUrl, absl::Cord(info.SerializeAsString()));
  return status;
}

std::optional<google::rpc::ErrorInfo> GetErrorInfo(const absl::Status& status) {
  return GetPayload<google::rpc::ErrorInfo>(status, kErrorInfoUrl);
}

std::optional<google::rpc::BadRequest> GetBadRequest(const absl::Status& status) {
  return GetPayload<google::rpc::BadRequest>(status, kBadRequestUrl);
}

std::optional<google::rpc::RetryInfo> GetRetryInfo(const absl::Status& status) {
  return GetPayload<google::rpc::RetryInfo>(status, kRetryInfoTypeUrl);
}

std::string DefaultReason(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return "";
    case absl::StatusCode::kInvalidArgument:
      return std::string(reasons::kFieldInvalid);
    case absl::StatusCode::kNotFound:
      return std::string(reasons::kResourceNotFound);
    case absl::StatusCode::kAlreadyExists:
      return std::string(reasons::kResourceAlreadyExists);
    case absl::StatusCode::kFailedPrecondition:
      return std::string(reasons::kWrongState);
    case absl::StatusCode::kAborted:
      return std::string(reasons::kConcurrentModification);
    case absl::StatusCode::kUnavailable:
      return std::string(reasons::kProviderUnavailable);
    case absl::StatusCode::kDeadlineExceeded:
      return std::string(reasons::kCallDeadlineExceeded);
    case absl::StatusCode::kCancelled:
      return std::string(reasons::kOperationCancelled);
    case absl::StatusCode::kUnauthenticated:
      return std::string(reasons::kProviderUnauthenticated);
    case absl::StatusCode::kPermissionDenied:
      return std::string(reasons::kProviderPermissionDenied);
    case absl::StatusCode::kUnimplemented:
      return std::string(reasons::kCapabilityUnsupported);
    case absl::StatusCode::kResourceExhausted:
      return std::string(reasons::kLimitExceeded);
    case absl::StatusCode::kOutOfRange:
      return std::string(reasons::kValueOutOfRange);
    case absl::StatusCode::kDataLoss:
      return std::string(reasons::kStateStoreFailed);
    default:
      return std::string(reasons::kInternal);
  }
}

}  // namespace cloudplane
