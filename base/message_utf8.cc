#include "base/message_utf8.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "base/utf8.h"
#include "google/protobuf/descriptor.h"

namespace cloudplane {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

bool IsText(const FieldDescriptor* field) { return field->type() == FieldDescriptor::TYPE_STRING; }

// Appends to `path` and returns true at the first invalid string.
bool Find(const Message& message, std::string& path) {
  const auto* reflection = message.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  reflection->ListFields(message, &fields);
  for (const FieldDescriptor* field : fields) {
    const size_t at = path.size();
    absl::StrAppend(&path, path.empty() ? "" : ".", field->name());
    if (field->is_repeated()) {
      for (int i = 0, n = reflection->FieldSize(message, field); i < n; ++i) {
        const size_t item_at = path.size();
        absl::StrAppend(&path, "[", i, "]");
        if (IsText(field) && !IsValidUtf8(reflection->GetRepeatedString(message, field, i))) {
          return true;
        }
        if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE &&
            Find(reflection->GetRepeatedMessage(message, field, i), path)) {
          return true;
        }
        path.resize(item_at);
      }
    } else if (IsText(field)) {
      if (!IsValidUtf8(reflection->GetString(message, field))) return true;
    } else if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      if (Find(reflection->GetMessage(message, field), path)) return true;
    }
    path.resize(at);
  }
  return false;
}

}  // namespace

std::optional<std::string> FindInvalidUtf8(const Message& message) {
  std::string path;
  if (Find(message, path)) return path;
  return std::nullopt;
}

}  // namespace cloudplane
