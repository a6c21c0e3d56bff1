#include "adapters/common/testing/field_contract_check.h"

#include <algorithm>
#include <set>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "google/api/field_behavior.pb.h"
#include "gtest/gtest.h"

namespace cloudplane::adapters::testutil {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;

const absl::flat_hash_map<std::string, const Descriptor*>& MutationTable() {
  static const auto* const kTable = new absl::flat_hash_map<std::string, const Descriptor*>{
#define CP_READ(Service, Method, Request, Response)
#define CP_MUTATION(Service, Method, Request, Result) \
  {FullMethodName(#Service, #Method), v1::Request::descriptor()},
#include "adapters/api_methods.inc"
#undef CP_READ
#undef CP_MUTATION
  };
  return *kTable;
}

bool HasBehavior(const FieldDescriptor& field, google::api::FieldBehavior behavior) {
  const auto& options = field.options();
  for (int i = 0; i < options.ExtensionSize(google::api::field_behavior); ++i) {
    if (options.GetExtension(google::api::field_behavior, i) == behavior) return true;
  }
  return false;
}

// The request fields the server handles itself for every mutation
// (service/field_contract.cc counts none of them).
bool IsServerField(absl::string_view name) {
  return name == "parent" || name == "name" || name == "request_id" ||
         name == "validate_only" || name == "update_mask" || name == "provider_options";
}

// A field the server's walk does not go into: a scalar, a map, a
// google.protobuf message (Struct, Timestamp, ...).
bool IsLeaf(const FieldDescriptor& field) {
  return field.cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE || field.is_map() ||
         absl::StartsWith(field.message_type()->full_name(), "google.protobuf.");
}

}  // namespace

const Descriptor* MutationRequestType(absl::string_view method) {
  auto it = MutationTable().find(method);
  return it == MutationTable().end() ? nullptr : it->second;
}

std::string HonouredPathProblem(const Descriptor& request, absl::string_view path) {
  const std::vector<absl::string_view> segments = absl::StrSplit(path, '.');
  const Descriptor* message = &request;
  for (size_t i = 0; i < segments.size(); ++i) {
    if (message == nullptr) {
      return absl::StrCat("goes past the leaf ",
                          absl::StrJoin(segments.begin(), segments.begin() + i, "."));
    }
    const FieldDescriptor* field = message->FindFieldByName(std::string(segments[i]));
    if (field == nullptr) {
      return absl::StrCat(message->full_name(), " has no field \"", segments[i], "\"");
    }
    if (i == 0 && IsServerField(field->name())) {
      return absl::StrCat(field->name(), " is the server's (never listed)");
    }
    if (i > 0 && (HasBehavior(*field, google::api::OUTPUT_ONLY) ||
                  HasBehavior(*field, google::api::IDENTIFIER))) {
      return absl::StrCat(field->full_name(), " is OUTPUT_ONLY or IDENTIFIER (never counted)");
    }
    message = IsLeaf(*field) ? nullptr : field->message_type();
  }
  return "";
}

std::vector<std::string> FieldContractProblems(const Provider& provider) {
  std::vector<std::string> problems;
  const ProviderInfo& info = provider.Info();
  const absl::flat_hash_set<std::string> known(info.supported_methods.begin(),
                                               info.supported_methods.end());
  for (const auto& [method, paths] : info.honoured_fields) {
    if (MutationRequestType(method) == nullptr) {
      problems.push_back(absl::StrCat(method, ": has an entry but is not a mutation"));
    } else if (!known.contains(method)) {
      problems.push_back(absl::StrCat(method, ": has an entry but is not supported"));
    }
  }
  std::set<std::string> methods;  // the account's mutations and Info()'s entries
  for (const std::string& method : provider.SupportedMethods()) {
    if (MutationRequestType(method) == nullptr) continue;  // a read
    methods.insert(method);
    if (!info.honoured_fields.contains(method) && provider.HonouredFields(method).empty()) {
      problems.push_back(absl::StrCat(method, ": supported mutation without an entry"));
    }
  }
  for (const auto& [method, paths] : info.honoured_fields) methods.insert(method);
  for (const std::string& method : methods) {
    const Descriptor* request = MutationRequestType(method);
    if (request == nullptr) continue;
    std::vector<std::vector<std::string>> lists = {provider.HonouredFields(method)};
    if (auto it = info.honoured_fields.find(method); it != info.honoured_fields.end()) {
      lists.push_back(it->second);
    }
    for (const std::vector<std::string>& list : lists) {
      std::set<std::string> seen;
      for (const std::string& path : list) {
        if (!seen.insert(path).second) {
          problems.push_back(absl::StrCat(method, ": ", path, " listed twice"));
        }
        if (std::string why = HonouredPathProblem(*request, path); !why.empty()) {
          problems.push_back(absl::StrCat(method, ": ", path, ": ", why));
        }
      }
    }
  }
  // Info()'s entry and the account's list usually coincide: say each once.
  std::sort(problems.begin(), problems.end());
  problems.erase(std::unique(problems.begin(), problems.end()), problems.end());
  return problems;
}

void ExpectFieldContractDeclared(const Provider& provider) {
  for (const std::string& problem : FieldContractProblems(provider)) {
    ADD_FAILURE() << provider.Info().kind << ": " << problem;
  }
}

}  // namespace cloudplane::adapters::testutil
