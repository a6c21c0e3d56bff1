#include "base/fuzzing/fuzz_checks.h"

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/errors.h"
#include "base/utf8.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/reflection.h"
#include "google/protobuf/util/message_differencer.h"

namespace cloudplane::fuzzing {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

void WalkStrings(const Message& message, const std::string& path) {
  const Reflection* reflection = message.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  reflection->ListFields(message, &fields);
  for (const FieldDescriptor* field : fields) {
    const std::string here = path + "." + field->name();
    if (field->is_repeated()) {
      const int n = reflection->FieldSize(message, field);
      for (int i = 0; i < n; ++i) {
        const std::string item = absl::StrCat(here, "[", i, "]");
        if (field->cpp_type() == FieldDescriptor::CPPTYPE_STRING &&
            field->type() == FieldDescriptor::TYPE_STRING) {
          CheckUtf8(reflection->GetRepeatedString(message, field, i), item);
        } else if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
          WalkStrings(reflection->GetRepeatedMessage(message, field, i), item);
        }
      }
    } else if (field->cpp_type() == FieldDescriptor::CPPTYPE_STRING &&
               field->type() == FieldDescriptor::TYPE_STRING) {
      CheckUtf8(reflection->GetString(message, field), here);
    } else if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      WalkStrings(reflection->GetMessage(message, field), here);
    }
  }
}

}  // namespace

void Fail(absl::string_view what, const char* file, int line) {
  std::fprintf(stderr, "property failed: %.*s (%s:%d)\n", static_cast<int>(what.size()),
               what.data(), file, line);
  std::fflush(stderr);
  std::abort();
}

void CheckUtf8(absl::string_view text, absl::string_view where) {
  if (!IsValidUtf8(text)) {
    Fail(absl::StrCat("invalid UTF-8 in ", where), __FILE__, __LINE__);
  }
}

void CheckMessage(const Message& message, absl::string_view where) {
  // Map fields are repeated entry messages to reflection, and Struct is an
  // ordinary message of maps and oneofs, so one walk covers them all.
  WalkStrings(message, std::string(where));
  std::string wire;
  FUZZ_CHECK(message.SerializeToString(&wire), absl::StrCat(where, ": does not serialise"));
  std::unique_ptr<Message> back(message.New());
  FUZZ_CHECK(back->ParseFromString(wire), absl::StrCat(where, ": a peer cannot parse it"));
  FUZZ_CHECK(google::protobuf::util::MessageDifferencer::Equals(message, *back),
             absl::StrCat(where, ": changes over the wire"));
}

absl::string_view BodyOf(absl::string_view input) {
  if (!absl::StartsWith(input, "HTTP/1.")) return input;
  for (absl::string_view end : {"\r\n\r\n", "\n\n"}) {
    const size_t at = input.find(end);
    if (at != absl::string_view::npos) return input.substr(at + end.size());
  }
  return input;
}

void CheckStatus(const absl::Status& status, absl::string_view where) {
  CheckUtf8(status.message(), absl::StrCat(where, ": status message"));
  if (auto info = GetErrorInfo(status)) CheckMessage(*info, absl::StrCat(where, ": ErrorInfo"));
  if (auto bad = GetBadRequest(status)) CheckMessage(*bad, absl::StrCat(where, ": BadRequest"));
}

}  // namespace cloudplane::fuzzing
