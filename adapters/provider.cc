#include "adapters/provider.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/errors.h"
#include "base/reasons.h"

namespace cloudplane::adapters {

absl::Status Unsupported(absl::string_view method) {
  return WithErrorInfo(
      absl::UnimplementedError(
          absl::StrCat(method, " is not supported by this account's provider")),
      "CAPABILITY_UNSUPPORTED", {{"method", std::string(method)}});
}

void Provider::PollOperation(const CallContext&, const std::string&,
                             Callback<MutationProgress> done) {
  std::move(done)(absl::UnimplementedError("this provider has no operations to poll"));
}

std::vector<std::string> Provider::SupportedMethods() const { return Info().supported_methods; }

std::vector<std::string> Provider::CancellableMethods() const { return {}; }

std::vector<std::string> Provider::HonouredFields(const std::string& method) const {
  const auto& table = Info().honoured_fields;
  auto it = table.find(method);
  return it == table.end() ? std::vector<std::string>{} : it->second;
}

void Provider::CancelMutation(const CallContext&, const std::string& method, const std::string&,
                              Callback<MutationProgress> done) {
  std::move(done)(WithErrorInfo(
      absl::FailedPreconditionError(absl::StrCat(
          method, " cannot be cancelled at this account's provider; the operation goes on")),
      reasons::kCancelUnsupported, {{"method", method}}));
}

void Provider::ListProviderOperations(const CallContext&, int, const std::string&,
                                      Callback<google::longrunning::ListOperationsResponse> done) {
  std::move(done)(Unsupported("listing provider operations"));
}

void Provider::GetProviderOperation(const CallContext&, const std::string&,
                                    Callback<google::longrunning::Operation> done) {
  std::move(done)(Unsupported("reading provider operations"));
}

#define CP_READ(Service, Method, Request, Response)                               \
  void Provider::Method(const CallContext&, const v1::Request&,                   \
                        Callback<v1::Response> done) {                            \
    std::move(done)(Unsupported(FullMethodName(#Service, #Method)));              \
  }
#define CP_MUTATION(Service, Method, Request, Result)                             \
  void Provider::Method(const CallContext&, const v1::Request&,                   \
                        Callback<MutationProgress> done) {                        \
    std::move(done)(Unsupported(FullMethodName(#Service, #Method)));              \
  }
#include "adapters/api_methods.inc"
#undef CP_READ
#undef CP_MUTATION

absl::string_view WatchSourceName(WatchSource source) {
  switch (source) {
    case WatchSource::kLocal:
      return "local";
    case WatchSource::kPush:
      return "push";
    case WatchSource::kPoll:
      return "poll";
  }
  return "poll";
}

std::string FullMethodName(absl::string_view service, absl::string_view method) {
  return absl::StrCat("cloudplane.v1.", service, ".", method);
}

const std::vector<std::string>& AllAdapterMethods() {
  static const auto* const kMethods = new std::vector<std::string>{
#define CP_READ(Service, Method, Request, Response) FullMethodName(#Service, #Method),
#define CP_MUTATION(Service, Method, Request, Result) FullMethodName(#Service, #Method),
#include "adapters/api_methods.inc"
#undef CP_READ
#undef CP_MUTATION
  };
  return *kMethods;
}

absl::Status AdapterRegistry::Register(ProviderInfo info, ProviderFactory factory) {
  std::string kind = info.kind;
  if (entries_.contains(kind)) {
    return absl::AlreadyExistsError(absl::StrCat("provider ", kind, " is registered twice"));
  }
  entries_.emplace(kind, Entry{std::move(info), std::move(factory)});
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Provider>> AdapterRegistry::Create(
    absl::string_view kind, const AccountSetup& setup) const {
  auto it = entries_.find(kind);
  if (it == entries_.end()) {
    return absl::NotFoundError(absl::StrCat("no provider named \"", kind, "\""));
  }
  return it->second.factory(setup);
}

std::vector<const ProviderInfo*> AdapterRegistry::List() const {
  std::vector<const ProviderInfo*> out;
  for (const auto& [kind, entry] : entries_) out.push_back(&entry.info);
  std::sort(out.begin(), out.end(),
            [](const ProviderInfo* a, const ProviderInfo* b) { return a->kind < b->kind; });
  return out;
}

const ProviderInfo* AdapterRegistry::Find(absl::string_view kind) const {
  auto it = entries_.find(kind);
  return it == entries_.end() ? nullptr : &it->second.info;
}

}  // namespace cloudplane::adapters
