// What every remote adapter's factory does the same way: check the account's
// options, parse its endpoint, build its HttpClient, describe the adapter.
#ifndef CLOUDPLANE_ADAPTERS_COMMON_KIT_ACCOUNT_H_
#define CLOUDPLANE_ADAPTERS_COMMON_KIT_ACCOUNT_H_

#include <initializer_list>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "adapters/common/http/endpoint.h"
#include "adapters/common/http/http_client.h"
#include "adapters/provider.h"

namespace cloudplane::adapters::kit {

// INVALID_ARGUMENT with one field violation `options.<key>` per option of
// `setup` that is not in `known`, in key order; `provider` names the adapter
// in the description ("the fleet provider takes no options").
absl::Status CheckOptions(const AccountSetup& setup,
                          std::initializer_list<absl::string_view> known,
                          absl::string_view provider);

// setup.endpoint parsed; INVALID_ARGUMENT naming `endpoint`.
absl::StatusOr<http::Endpoint> ParseAccountEndpoint(const AccountSetup& setup);

// The HttpClient of an account: `endpoint` with setup.verify_tls and
// setup.ca_file, on a GuardedTransport (guard.h: retries of idempotent
// requests, the in-flight and rate limits, the circuit breaker) built from
// setup.limits and setup.loop over `transport` (nullptr: the process-wide
// one). Each call makes a new guard: one per endpoint of the account.
// INVALID_ARGUMENT naming `endpoint` when the client refuses it; the client's
// other errors (an unreadable ca_file) as they are.
absl::StatusOr<std::unique_ptr<http::HttpClient>> MakeHttpClient(
    http::Endpoint endpoint, const AccountSetup& setup,
    std::shared_ptr<http::HttpTransport> transport);

// Both steps above for the common case.
absl::StatusOr<std::unique_ptr<http::HttpClient>> MakeHttpClient(
    const AccountSetup& setup, std::shared_ptr<http::HttpTransport> transport);

// Appends "cloudplane.v1.<service>.<m>" for each of `methods` to `out`
// (ProviderInfo::supported_methods or reads_provider_options).
void AddMethods(std::vector<std::string>& out, absl::string_view service,
                std::initializer_list<absl::string_view> methods);

// Declares the request fields `info`'s adapter carries out for mutation
// "cloudplane.v1.<service>.<method>" (ProviderInfo::honoured_fields), e.g.
//   kit::Honour(info, "ComputeService", "CreateInstance",
//               {"instance_id", "instance.image", "instance.labels"});
void Honour(ProviderInfo& info, absl::string_view service, absl::string_view method,
            std::initializer_list<absl::string_view> fields);

}  // namespace cloudplane::adapters::kit

#endif  // CLOUDPLANE_ADAPTERS_COMMON_KIT_ACCOUNT_H_
