#include "adapters/common/kit/poll_token.h"

#include "absl/strings/str_cat.h"
#include "base/errors.h"
#include "base/reasons.h"
#include "google/protobuf/descriptor.h"

namespace cloudplane::adapters::kit {

absl::Status UnreadableToken(absl::string_view why) {
  return WithErrorInfo(
      absl::DataLossError(absl::StrCat("the operation's poll token is unreadable: ", why)),
      reasons::kOperationStateUnreadable);
}

std::string PackToken(const google::protobuf::Message& token) {
  google::protobuf::Any any;
  any.PackFrom(token);
  return any.SerializeAsString();
}

absl::Status UnpackToken(absl::string_view bytes, uint32_t current_version,
                         google::protobuf::Message& token) {
  google::protobuf::Any any;
  if (!any.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return UnreadableToken("not a packed message");
  }
  if (!any.UnpackTo(&token)) {
    return UnreadableToken(absl::StrCat("it holds ", any.type_url(), ", not ",
                                   token.GetDescriptor()->full_name()));
  }
  const google::protobuf::FieldDescriptor* version =
      token.GetDescriptor()->FindFieldByName("version");
  if (version == nullptr || version->cpp_type() != google::protobuf::FieldDescriptor::CPPTYPE_UINT32) {
    return UnreadableToken(absl::StrCat(token.GetDescriptor()->full_name(), " has no version field"));
  }
  const uint32_t v = token.GetReflection()->GetUInt32(token, version);
  if (v == 0 || v > current_version) {
    return UnreadableToken(absl::StrCat("version ", v, " of ", token.GetDescriptor()->full_name(),
                                   " is not known to this server"));
  }
  return absl::OkStatus();
}

}  // namespace cloudplane::adapters::kit
