// The accounts a server serves, each with the Provider built for it.
#ifndef CLOUDPLANE_SERVICE_ACCOUNTS_H_
#define CLOUDPLANE_SERVICE_ACCOUNTS_H_

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "adapters/provider.h"
#include "adapters/scratch_store.h"
#include "cloudplane/config/v1/config.pb.h"
#include "cloudplane/v1/accounts.pb.h"

namespace cloudplane::service {

// The accounts and providers are fixed after Create; each account's health
// (Account.state, last_error, ...) changes with the observer's results
// (SetHealth). Every method is safe to call from any thread.
class AccountTable {
 public:
  // Builds every configured account's Provider through `registry`. An
  // account whose provider is unknown, whose credentials cannot be read or
  // whose factory rejects the setup is kept in state ERROR with the reason
  // (never a secret), so the rest of the server still starts; calls to it
  // fail with FAILED_PRECONDITION.
  static std::unique_ptr<AccountTable> Create(const config::v1::ServerConfig& config,
                                              const adapters::AdapterRegistry& registry,
                                              const adapters::AccountSetup& shared);

  // The provider of `account_id`. NOT_FOUND when not configured (naming
  // `field`), FAILED_PRECONDITION when the account is in ERROR.
  absl::StatusOr<adapters::Provider*> Provider(absl::string_view account_id,
                                               absl::string_view field) const;

  // What a call naming an account that is not configured answers: NOT_FOUND
  // naming `field`, ErrorInfo ACCOUNT_NOT_FOUND. The gate answers the same
  // for an account the caller has no role on, so names cannot be probed.
  static absl::Status NotConfigured(absl::string_view account_id, absl::string_view field);

  // Whether the account's Provider supports `full_method`
  // (Provider::SupportedMethods, read once at Create). False for an account
  // that is not configured or has no Provider.
  bool Supports(absl::string_view account_id, absl::string_view full_method) const;

  // A copy of the Account resource as it is now, or nullptr.
  std::unique_ptr<v1::Account> Find(absl::string_view account_id) const;

  // Copies of every account, ordered by name.
  std::vector<v1::Account> List() const;

  // What one observation of an account found (service/observer.h).
  struct Health {
    // READY, DEGRADED, UNREACHABLE or UNAUTHENTICATED.
    v1::Account::State state = v1::Account::READY;
    // The first error of the observation, when there was one.
    absl::Status error;
    absl::Time observed_at;
  };
  // Records `health` on the account: its state, `last_observe_time` and,
  // with an error, `last_error` and `last_error_time` (which stay when a
  // later observation is clean). An account in ERROR or not configured is
  // left alone; returns whether the state changed.
  bool SetHealth(absl::string_view account_id, const Health& health);

 private:
  struct Entry {
    v1::Account account;
    // The adapter's notes for this account; declared first so it outlives
    // the Provider that uses it.
    std::unique_ptr<adapters::ScratchStore> scratch;
    std::unique_ptr<adapters::Provider> provider;
    // provider->SupportedMethods(), fixed for the Provider's life.
    std::set<std::string, std::less<>> supported;
  };
  mutable absl::Mutex mu_;
  // Keys and providers are fixed after Create; `Entry::account` is guarded.
  std::map<std::string, Entry, std::less<>> entries_;
};

// The adapter kit's limits for an account (adapters/provider.h) from its
// configuration (already checked by FinishConfig): set fields as given,
// unset ones the defaults of adapters::ProviderLimits.
adapters::ProviderLimits ProviderLimitsFromConfig(const config::v1::ProviderLimits& config);

// Removes user information (`user:password@`) and query strings from an
// endpoint before it is shown anywhere.
std::string RedactEndpoint(absl::string_view endpoint);

}  // namespace cloudplane::service

#endif  // CLOUDPLANE_SERVICE_ACCOUNTS_H_
