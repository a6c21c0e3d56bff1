#include "adapters/common/json/json.h"

#include "absl/strings/str_cat.h"
#include "base/errors.h"
#include "base/reasons.h"
#include "rapidjson/error/en.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace cloudplane::json {

namespace rj = rapidjson;

absl::Status Malformed(absl::string_view provider, absl::string_view detail) {
  return WithErrorInfo(
      absl::InternalError(absl::StrCat(provider, " sent malformed JSON: ", detail)),
      reasons::kProviderMalformedResponse);
}

absl::Status Parse(absl::string_view body, absl::string_view provider, rj::Document& doc,
                   ParseOptions options) {
  if (options.trailing_commas) {
    doc.Parse<rj::kParseValidateEncodingFlag | rj::kParseTrailingCommasFlag>(body.data(),
                                                                              body.size());
  } else {
    doc.Parse<rj::kParseValidateEncodingFlag>(body.data(), body.size());
  }
  if (doc.HasParseError()) {
    return Malformed(provider, absl::StrCat(rj::GetParseError_En(doc.GetParseError()),
                                            " at offset ", doc.GetErrorOffset()));
  }
  return absl::OkStatus();
}

const rj::Value* Member(const rj::Value& obj, const char* key) {
  if (!obj.IsObject()) return nullptr;
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd() || it->value.IsNull()) return nullptr;
  return &it->value;
}

std::string Serialize(const rj::Value& value) {
  rj::StringBuffer buffer;
  rj::Writer<rj::StringBuffer> writer(buffer);
  value.Accept(writer);
  return std::string(buffer.GetString(), buffer.GetSize());
}

}  // namespace cloudplane::json
