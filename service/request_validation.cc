#include "service/request_validation.h"

#include <map>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/errors.h"
#include "google/api/field_behavior.pb.h"
#include "google/api/resource.pb.h"

namespace cloudplane::service {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

// Resource type ("cloudplane.dev/Instance") → its name pattern, read from
// the google.api.resource options of every message in the referencing file
// and the files it imports.
const std::string* PatternOf(const FieldDescriptor& field, absl::string_view type) {
  static absl::Mutex mu;
  static auto* patterns = new std::map<std::string, std::string, std::less<>>();
  absl::MutexLock lock(&mu);
  if (auto it = patterns->find(type); it != patterns->end()) return &it->second;
  std::vector<const google::protobuf::FileDescriptor*> files = {field.file()};
  for (size_t i = 0; i < files.size(); ++i) {
    for (int d = 0; d < files[i]->dependency_count(); ++d) {
      files.push_back(files[i]->dependency(d));
    }
    for (int m = 0; m < files[i]->message_type_count(); ++m) {
      const auto& options = files[i]->message_type(m)->options();
      if (!options.HasExtension(google::api::resource)) continue;
      const auto& resource = options.GetExtension(google::api::resource);
      if (resource.pattern_size() > 0) patterns->emplace(resource.type(), resource.pattern(0));
    }
  }
  auto it = patterns->find(type);
  return it == patterns->end() ? nullptr : &it->second;
}

bool HasBehavior(const FieldDescriptor& field, google::api::FieldBehavior behavior) {
  const auto& options = field.options();
  for (int i = 0; i < options.ExtensionSize(google::api::field_behavior); ++i) {
    if (options.GetExtension(google::api::field_behavior, i) == behavior) return true;
  }
  return false;
}

bool IsSet(const Message& message, const FieldDescriptor& field) {
  const auto* reflection = message.GetReflection();
  if (field.is_repeated()) return reflection->FieldSize(message, &field) > 0;
  if (field.has_presence()) return reflection->HasField(message, &field);
  switch (field.cpp_type()) {
    case FieldDescriptor::CPPTYPE_STRING:
      return !reflection->GetString(message, &field).empty();
    case FieldDescriptor::CPPTYPE_ENUM:
      // Every API enum's 0 is *_UNSPECIFIED.
      return reflection->GetEnumValue(message, &field) != 0;
    default:
      // A proto3 number or bool without presence cannot be told apart from
      // its zero, which is often meaningful (`target_size: 0`); the adapter
      // checks the value's range instead.
      return true;
  }
}

class Validator {
 public:
  explicit Validator(bool is_create) : is_create_(is_create) {}

  // Checks `message` at `path` ("" at the top); `depth` 0 is the request.
  void Check(const Message& message, const std::string& path, int depth) {
    const Descriptor* descriptor = message.GetDescriptor();
    const auto* reflection = message.GetReflection();
    if (is_create_ && depth > 0 && descriptor->full_name() == "cloudplane.v1.FirewallRule") {
      CheckRuleFarEnd(message, path);
    }
    for (int i = 0; i < descriptor->field_count(); ++i) {
      const FieldDescriptor& field = *descriptor->field(i);
      std::string field_path = path.empty() ? field.name() : absl::StrCat(path, ".", field.name());
      if (depth > 0 && (HasBehavior(field, google::api::OUTPUT_ONLY) ||
                        HasBehavior(field, google::api::IDENTIFIER))) {
        continue;
      }
      bool set = IsSet(message, field);
      if (HasBehavior(field, google::api::REQUIRED) && !set) {
        AddFieldViolation(status_, field_path, "is required");
        continue;
      }
      if (!set) continue;
      if (field.cpp_type() == FieldDescriptor::CPPTYPE_STRING && !field.is_repeated() &&
          field.options().HasExtension(google::api::resource_reference)) {
        CheckName(field, field_path, reflection->GetString(message, &field));
      }
      if (depth == 0 && field.name() == "request_id") {
        CheckRequestId(reflection->GetString(message, &field));
      }
      // Resources nested in a request are checked for their own REQUIRED
      // fields only when they are being created.
      if (field.cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE && is_create_ &&
          absl::StartsWith(field.message_type()->full_name(), "cloudplane.")) {
        if (field.is_repeated()) {
          for (int j = 0; j < reflection->FieldSize(message, &field); ++j) {
            Check(reflection->GetRepeatedMessage(message, &field, j),
                  absl::StrCat(field_path, "[", j, "]"), depth + 1);
          }
        } else {
          Check(reflection->GetMessage(message, &field), field_path, depth + 1);
        }
      }
      // Update requests carry the resource's name inside it.
      if (depth == 0 && !is_create_ && !field.is_repeated() &&
          field.cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
        const Message& inner = reflection->GetMessage(message, &field);
        const FieldDescriptor* name = inner.GetDescriptor()->FindFieldByName("name");
        if (name != nullptr && HasBehavior(*name, google::api::IDENTIFIER)) {
          std::string value = inner.GetReflection()->GetString(inner, name);
          std::string name_path = absl::StrCat(field_path, ".name");
          const auto& resource = inner.GetDescriptor()->options().GetExtension(google::api::resource);
          if (value.empty()) {
            AddFieldViolation(status_, name_path, "is required");
          } else if (resource.pattern_size() > 0 && !MatchesPattern(value, resource.pattern(0))) {
            AddFieldViolation(status_, name_path,
                              absl::StrCat("must look like ", resource.pattern(0)));
          } else {
            Route(name_path, value);
          }
        }
      }
    }
  }

  absl::StatusOr<RoutedRequest> Result() {
    if (status_.ok() && routed_.account.empty()) {
      AddFieldViolation(status_, "name", "the request names no account");
    }
    if (!status_.ok()) return status_;
    return routed_;
  }

 private:
  void CheckName(const FieldDescriptor& field, const std::string& path, const std::string& value) {
    const auto& reference = field.options().GetExtension(google::api::resource_reference);
    // `accounts/-` means every account (Watch); it routes nowhere.
    if (reference.type() == "cloudplane.dev/Account" && value == "accounts/-") return;
    const std::string* pattern = PatternOf(field, reference.type());
    if (pattern != nullptr && !MatchesPattern(value, *pattern)) {
      AddFieldViolation(status_, path, absl::StrCat("must look like ", *pattern));
      return;
    }
    Route(path, value);
  }

  void Route(const std::string& path, absl::string_view value) {
    std::vector<absl::string_view> parts = absl::StrSplit(value, '/');
    if (parts.size() < 2 || parts[0] != "accounts") return;
    if (routed_.account.empty()) {
      routed_.account = std::string(parts[1]);
      routed_.target = std::string(value);
    } else if (routed_.account != parts[1]) {
      AddFieldViolation(status_, path,
                        absl::StrCat("must be in the same account as the request (",
                                     routed_.account, ")"));
    }
  }

  // A firewall rule must name its far end (firewalls.proto FirewallRule):
  // an empty source once meant "anywhere", and reads that could not name
  // theirs came back empty, so an empty end is refused rather than guessed.
  // Anywhere is said as 0.0.0.0/0. Read by field name, as the rest of this
  // file reads the protos.
  void CheckRuleFarEnd(const Message& rule, const std::string& path) {
    const Descriptor* descriptor = rule.GetDescriptor();
    const auto* reflection = rule.GetReflection();
    const FieldDescriptor* direction = descriptor->FindFieldByName("direction");
    const bool egress = direction != nullptr && direction->enum_type() != nullptr &&
                        reflection->GetEnum(rule, direction)->name() == "EGRESS";
    const absl::string_view end = egress ? "destination" : "source";
    for (absl::string_view kind : {"ranges", "address_ranges", "firewalls", "networks"}) {
      const FieldDescriptor* field = descriptor->FindFieldByName(absl::StrCat(end, "_", kind));
      if (field != nullptr && reflection->FieldSize(rule, field) > 0) return;
    }
    AddFieldViolation(
        status_, absl::StrCat(path, ".", end, "_ranges"),
        absl::StrCat(egress ? "an EGRESS rule needs a destination" : "a rule needs a source",
                     ": give ", end, "_ranges (0.0.0.0/0 and ::/0 for anywhere), ", end,
                     "_address_ranges, ", end, "_firewalls or ", end, "_networks"));
  }

  void CheckRequestId(const std::string& id) {
    bool printable = true;
    for (char c : id) printable = printable && c > ' ' && c < 127;
    if (id.size() > 64 || !printable) {
      AddFieldViolation(status_, "request_id", "must be at most 64 printable ASCII characters");
    }
  }

  const bool is_create_;
  absl::Status status_;
  RoutedRequest routed_;
};

}  // namespace

bool MatchesPattern(absl::string_view name, absl::string_view pattern) {
  std::vector<absl::string_view> got = absl::StrSplit(name, '/');
  std::vector<absl::string_view> want = absl::StrSplit(pattern, '/');
  if (got.size() != want.size()) return false;
  for (size_t i = 0; i < got.size(); ++i) {
    if (absl::StartsWith(want[i], "{")) {
      if (got[i].empty()) return false;
    } else if (got[i] != want[i]) {
      return false;
    }
  }
  return true;
}

namespace {

// For a Create with a client-chosen id, the name the new resource will
// have: the parent, the collection segment of the resource's pattern, the id.
std::string CreatedName(const Message& request, const std::string& parent) {
  const Descriptor* descriptor = request.GetDescriptor();
  const auto* reflection = request.GetReflection();
  std::string id, pattern;
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const FieldDescriptor& field = *descriptor->field(i);
    if (field.cpp_type() == FieldDescriptor::CPPTYPE_STRING && !field.is_repeated() &&
        absl::EndsWith(field.name(), "_id") && field.name() != "request_id") {
      id = reflection->GetString(request, &field);
    } else if (field.cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE && !field.is_repeated()) {
      const auto& resource = field.message_type()->options().GetExtension(google::api::resource);
      if (resource.pattern_size() > 0) pattern = resource.pattern(0);
    }
  }
  std::vector<absl::string_view> segments = absl::StrSplit(pattern, '/');
  if (id.empty() || segments.size() < 2) return parent;
  return absl::StrCat(parent, "/", segments[segments.size() - 2], "/", id);
}

}  // namespace

absl::StatusOr<RoutedRequest> ValidateRequest(absl::string_view method, const Message& request) {
  // A create makes a resource under `parent`: CreateX, and methods such as
  // ReserveAddress whose request has a parent and no name.
  const auto* d = request.GetDescriptor();
  bool is_create = absl::StartsWith(method, "Create") ||
                   (d->FindFieldByName("parent") != nullptr && d->FindFieldByName("name") == nullptr &&
                    !absl::StartsWith(method, "List"));
  Validator validator(is_create);
  validator.Check(request, "", 0);
  absl::StatusOr<RoutedRequest> routed = validator.Result();
  if (routed.ok() && is_create) routed->target = CreatedName(request, routed->target);
  return routed;
}

}  // namespace cloudplane::service
