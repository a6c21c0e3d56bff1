#include "service/field_contract.h"

#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/errors.h"
#include "base/reasons.h"
#include "google/api/field_behavior.pb.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/field_mask.pb.h"

namespace cloudplane::service {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

bool HasBehavior(const FieldDescriptor& field, google::api::FieldBehavior behavior) {
  const auto& options = field.options();
  for (int i = 0; i < options.ExtensionSize(google::api::field_behavior); ++i) {
    if (options.GetExtension(google::api::field_behavior, i) == behavior) return true;
  }
  return false;
}

bool IsServerField(const FieldDescriptor& field) {
  const std::string& n = field.name();
  return n == "parent" || n == "name" || n == "request_id" || n == "validate_only" ||
         n == "provider_options" || n == "update_mask";
}

bool IsSet(const Message& message, const FieldDescriptor& field) {
  const auto* r = message.GetReflection();
  if (field.is_repeated()) return r->FieldSize(message, &field) > 0;
  if (field.has_presence()) return r->HasField(message, &field);
  switch (field.cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING: return !r->GetString(message, &field).empty();
    case FieldDescriptor::CPPTYPE_ENUM: return r->GetEnumValue(message, &field) != 0;
    case FieldDescriptor::CPPTYPE_BOOL: return r->GetBool(message, &field);
    case FieldDescriptor::CPPTYPE_INT32: return r->GetInt32(message, &field) != 0;
    case FieldDescriptor::CPPTYPE_INT64: return r->GetInt64(message, &field) != 0;
    case FieldDescriptor::CPPTYPE_UINT32: return r->GetUInt32(message, &field) != 0;
    case FieldDescriptor::CPPTYPE_UINT64: return r->GetUInt64(message, &field) != 0;
    case FieldDescriptor::CPPTYPE_FLOAT: return r->GetFloat(message, &field) != 0;
    case FieldDescriptor::CPPTYPE_DOUBLE: return r->GetDouble(message, &field) != 0;
    case FieldDescriptor::CPPTYPE_MESSAGE: return r->HasField(message, &field);
  }
  return true;
}

// A message the walk goes into (not a map entry, not a google.protobuf type).
bool IsWalked(const FieldDescriptor& field) {
  return field.cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE && !field.is_map() &&
         !absl::StartsWith(field.message_type()->full_name(), "google.protobuf.");
}

// Adds what `message` sets under `prefix` to `out`; returns whether it set
// anything.
bool Walk(const Message& message, const std::string& prefix, bool top,
          std::set<std::string>& out) {
  const Descriptor* d = message.GetDescriptor();
  const auto* r = message.GetReflection();
  bool any = false;
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor& field = *d->field(i);
    if (top && IsServerField(field)) continue;
    if (!top && (HasBehavior(field, google::api::OUTPUT_ONLY) ||
                 HasBehavior(field, google::api::IDENTIFIER))) {
      continue;
    }
    if (!IsSet(message, field)) continue;
    any = true;
    const std::string path = absl::StrCat(prefix, field.name());
    if (!IsWalked(field)) {
      out.insert(path);
      continue;
    }
    const int n = field.is_repeated() ? r->FieldSize(message, &field) : 1;
    for (int j = 0; j < n; ++j) {
      const Message& inner = field.is_repeated() ? r->GetRepeatedMessage(message, &field, j)
                                                 : r->GetMessage(message, &field);
      if (!Walk(inner, absl::StrCat(path, "."), false, out)) out.insert(path);
    }
  }
  return any;
}

}  // namespace

std::vector<std::string> ContractFieldPaths(const Message& request) {
  std::set<std::string> out;
  const Descriptor* d = request.GetDescriptor();
  const FieldDescriptor* mask = d->FindFieldByName("update_mask");
  if (mask != nullptr && mask->message_type() == google::protobuf::FieldMask::descriptor()) {
    // An update: the mask's paths under the resource field, and the
    // request's other fields as usual.
    const auto* r = request.GetReflection();
    const auto& paths =
        static_cast<const google::protobuf::FieldMask&>(r->GetMessage(request, mask));
    const FieldDescriptor* resource = nullptr;
    for (int i = 0; i < d->field_count(); ++i) {
      const FieldDescriptor& f = *d->field(i);
      if (IsWalked(f) && !f.is_repeated()) resource = &f;
    }
    for (const std::string& p : paths.paths()) {
      out.insert(resource == nullptr ? p : absl::StrCat(resource->name(), ".", p));
    }
    for (int i = 0; i < d->field_count(); ++i) {
      const FieldDescriptor& f = *d->field(i);
      if (&f == resource || IsServerField(f) || !IsSet(request, f)) continue;
      out.insert(f.name());
    }
  } else {
    Walk(request, "", true, out);
  }
  return {out.begin(), out.end()};
}

bool IsHonoured(absl::string_view path, const std::vector<std::string>& honoured) {
  for (const std::string& h : honoured) {
    if (path == h) return true;
    if (absl::StartsWith(path, h) && path.size() > h.size() && path[h.size()] == '.') return true;
    if (absl::StartsWith(h, path) && h.size() > path.size() && h[path.size()] == '.') return true;
  }
  return false;
}

absl::Status CheckFieldContract(const Message& request, const std::vector<std::string>& honoured,
                                absl::string_view provider_kind, absl::string_view method) {
  absl::Status status;
  std::string first;
  for (const std::string& path : ContractFieldPaths(request)) {
    if (IsHonoured(path, honoured)) continue;
    if (first.empty()) first = path;
    AddFieldViolation(
        status, path,
        absl::StrCat("provider ", provider_kind, " does not carry out this field for ", method,
                     " on this account (Account.capabilities lists the fields it does: ",
                     honoured.empty() ? "none" : absl::StrJoin(honoured, ", "), ")"));
  }
  if (status.ok()) return status;
  return WithErrorInfo(std::move(status), reasons::kFieldUnsupported,
                       {{"method", std::string(method)},
                        {"provider", std::string(provider_kind)},
                        {"field", first}});
}

}  // namespace cloudplane::service
