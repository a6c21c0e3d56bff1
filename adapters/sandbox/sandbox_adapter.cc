#include "adapters/sandbox/sandbox_adapter.h"

#include <cstdint>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "adapters/sandbox/sandbox_provider.h"
#include "base/errors.h"

namespace cloudplane::adapters::sandbox {
namespace {

constexpr int64_t kMaxTransitionMs = 86400000;  // a day

}  // namespace

ProviderInfo SandboxProviderInfo() {
  ProviderInfo info;
  info.kind = "sandbox";
  info.display_name = "Built-in sandbox";
  info.protocol = "in-process";
  info.watch_source = WatchSource::kLocal;
  info.supported_methods = AllAdapterMethods();
  return info;
}

absl::StatusOr<std::unique_ptr<Provider>> NewSandboxProvider(const AccountSetup& setup) {
  if (!setup.endpoint.empty()) {
    return InvalidField("endpoint", "must be empty: the sandbox runs inside the server");
  }
  SandboxProvider::Options options;
  for (const auto& [key, value] : setup.options) {
    if (key == "transition_ms") {
      int64_t ms = 0;
      if (!absl::SimpleAtoi(value, &ms) || ms < 0 || ms > kMaxTransitionMs) {
        return InvalidField("options.transition_ms",
                            absl::StrCat("must be an integer from 0 to ", kMaxTransitionMs));
      }
      options.transition = absl::Milliseconds(ms);
    } else {
      return InvalidField(absl::StrCat("options.", key),
                          "unknown option; the sandbox reads only transition_ms");
    }
  }
  if (setup.store == nullptr) {
    return absl::FailedPreconditionError("the sandbox provider needs the server's store");
  }
  absl::StatusOr<std::unique_ptr<SandboxProvider>> provider =
      SandboxProvider::Create(setup, options);
  if (!provider.ok()) return provider.status();
  return std::unique_ptr<Provider>(*std::move(provider));
}

absl::Status RegisterSandbox(AdapterRegistry& registry) {
  return registry.Register(SandboxProviderInfo(), [](const AccountSetup& setup) {
    return NewSandboxProvider(setup);
  });
}

}  // namespace cloudplane::adapters::sandbox
