#include "service/accounts.h"

#include <iostream>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "adapters/common/scratch/store_scratch.h"
#include "base/errors.h"
#include "service/config.h"

namespace cloudplane::service {

std::string RedactEndpoint(absl::string_view endpoint) {
  std::string out(endpoint);
  if (size_t query = out.find('?'); query != std::string::npos) out.resize(query);
  size_t scheme = out.find("://");
  size_t start = scheme == std::string::npos ? 0 : scheme + 3;
  size_t slash = out.find('/', start);
  size_t at = out.rfind('@', slash == std::string::npos ? std::string::npos : slash);
  if (at != std::string::npos && at >= start) out.erase(start, at + 1 - start);
  return out;
}

adapters::ProviderLimits ProviderLimitsFromConfig(const config::v1::ProviderLimits& config) {
  adapters::ProviderLimits limits;
  if (config.has_max_in_flight()) limits.max_in_flight = config.max_in_flight();
  if (config.has_requests_per_second()) limits.requests_per_second = config.requests_per_second();
  if (config.has_burst()) limits.burst = config.burst();
  if (config.has_max_attempts()) limits.max_attempts = config.max_attempts();
  if (config.has_initial_backoff_ms()) {
    limits.initial_backoff = absl::Milliseconds(config.initial_backoff_ms());
  }
  if (config.has_max_backoff_ms()) limits.max_backoff = absl::Milliseconds(config.max_backoff_ms());
  if (config.has_attempt_timeout_ms()) {
    limits.attempt_timeout = absl::Milliseconds(config.attempt_timeout_ms());
  }
  if (config.has_breaker_failures()) limits.breaker_failures = config.breaker_failures();
  if (config.has_breaker_cooldown_ms()) {
    limits.breaker_cooldown = absl::Milliseconds(config.breaker_cooldown_ms());
  }
  return limits;
}

std::unique_ptr<AccountTable> AccountTable::Create(const config::v1::ServerConfig& config,
                                                   const adapters::AdapterRegistry& registry,
                                                   const adapters::AccountSetup& shared) {
  auto table = std::unique_ptr<AccountTable>(new AccountTable());
  for (const auto& account_config : config.accounts()) {
    Entry entry;
    v1::Account& account = entry.account;
    account.set_name(absl::StrCat("accounts/", account_config.id()));
    account.set_display_name(account_config.display_name());
    account.set_provider(absl::StrCat("providers/", account_config.provider()));
    account.set_endpoint(RedactEndpoint(account_config.endpoint()));
    for (const auto& [key, value] : account_config.labels()) (*account.mutable_labels())[key] = value;

    absl::Status status;
    const adapters::ProviderInfo* info = registry.Find(account_config.provider());
    if (info == nullptr) {
      status = absl::NotFoundError(
          absl::StrCat("no provider named \"", account_config.provider(), "\""));
    } else {
      absl::StatusOr<std::string> secret = ReadSecret(account_config.credentials());
      if (!secret.ok()) {
        status = secret.status();
      } else {
        if (shared.store != nullptr && shared.loop != nullptr) {
          entry.scratch = adapters::NewStoreScratch(shared.store, shared.loop, account_config.id());
        }
        adapters::AccountSetup setup = {
            .account = account_config.id(),
            .endpoint = account_config.endpoint(),
            .secret = *std::move(secret),
            .verify_tls = !account_config.has_verify_tls() || account_config.verify_tls(),
            .ca_file = account_config.ca_file(),
            .scratch = entry.scratch.get(),
            .loop = shared.loop,
            .changes = shared.changes,
            .store = shared.store,
            .limits = ProviderLimitsFromConfig(account_config.limits()),
            .operation_retention = shared.operation_retention,
        };
        for (const auto& [key, value] : account_config.options()) setup.options[key] = value;
        if (!setup.verify_tls) {
          std::cerr << "cloudplaned: WARNING: TLS verification is off for account "
                    << account_config.id() << "\n";
        }
        absl::StatusOr<std::unique_ptr<adapters::Provider>> provider =
            registry.Create(account_config.provider(), setup);
        if (provider.ok()) {
          entry.provider = *std::move(provider);
        } else {
          status = provider.status();
        }
      }
    }
    // Per account: what this Provider supports as configured.
    std::set<std::string> supported, cancellable;
    if (entry.provider != nullptr) {
      for (std::string& m : entry.provider->SupportedMethods()) supported.insert(std::move(m));
      for (std::string& m : entry.provider->CancellableMethods()) cancellable.insert(std::move(m));
    }
    for (const std::string& method : adapters::AllAdapterMethods()) {
      auto* capability = account.add_capabilities();
      capability->set_method(method);
      capability->set_supported(status.ok() && supported.contains(method));
      capability->set_cancellable(capability->supported() && cancellable.contains(method));
      if (capability->supported()) {
        for (std::string& f : entry.provider->HonouredFields(method)) {
          capability->add_honoured_fields(std::move(f));
        }
      }
    }
    if (status.ok()) entry.supported.insert(supported.begin(), supported.end());
    if (status.ok()) {
      account.set_state(v1::Account::READY);
    } else {
      account.set_state(v1::Account::ERROR);
      account.set_state_message(std::string(status.message()));
      std::cerr << "cloudplaned: account " << account_config.id()
                << " is unusable: " << status.message() << "\n";
    }
    table->entries_.emplace(account_config.id(), std::move(entry));
  }
  return table;
}

absl::Status AccountTable::NotConfigured(absl::string_view account_id, absl::string_view field) {
  return WithErrorInfo(
      absl::NotFoundError(
          absl::StrCat("account \"", account_id, "\" is not configured (", field, ")")),
      "ACCOUNT_NOT_FOUND", {{"account", std::string(account_id)}});
}

bool AccountTable::Supports(absl::string_view account_id, absl::string_view full_method) const {
  auto it = entries_.find(account_id);
  return it != entries_.end() && it->second.supported.find(full_method) !=
                                     it->second.supported.end();
}

absl::StatusOr<adapters::Provider*> AccountTable::Provider(absl::string_view account_id,
                                                           absl::string_view field) const {
  auto it = entries_.find(account_id);
  if (it == entries_.end()) {
    return NotConfigured(account_id, field);
  }
  if (it->second.provider == nullptr) {
    // An account without a provider is in ERROR for good: its message
    // never changes after Create.
    absl::MutexLock lock(&mu_);
    return WithErrorInfo(
        absl::FailedPreconditionError(absl::StrCat("account \"", account_id,
                                                   "\" is unusable: ",
                                                   it->second.account.state_message())),
        "ACCOUNT_UNUSABLE", {{"account", std::string(account_id)}});
  }
  return it->second.provider.get();
}

std::unique_ptr<v1::Account> AccountTable::Find(absl::string_view account_id) const {
  auto it = entries_.find(account_id);
  if (it == entries_.end()) return nullptr;
  absl::MutexLock lock(&mu_);
  return std::make_unique<v1::Account>(it->second.account);
}

std::vector<v1::Account> AccountTable::List() const {
  std::vector<v1::Account> out;
  absl::MutexLock lock(&mu_);
  for (const auto& [id, entry] : entries_) out.push_back(entry.account);
  return out;
}

bool AccountTable::SetHealth(absl::string_view account_id, const Health& health) {
  auto it = entries_.find(account_id);
  if (it == entries_.end()) return false;
  absl::MutexLock lock(&mu_);
  v1::Account& account = it->second.account;
  if (account.state() == v1::Account::ERROR) return false;
  const bool changed = account.state() != health.state;
  account.set_state(health.state);
  auto set_time = [](absl::Time t, google::protobuf::Timestamp* out) {
    const int64_t nanos = absl::ToUnixNanos(t);
    out->set_seconds(nanos / 1000000000);
    out->set_nanos(static_cast<int32_t>(nanos % 1000000000));
  };
  set_time(health.observed_at, account.mutable_last_observe_time());
  if (!health.error.ok()) {
    account.set_last_error(absl::StrCat(absl::StatusCodeToString(health.error.code()), ": ",
                                        health.error.message()));
    set_time(health.observed_at, account.mutable_last_error_time());
  }
  return changed;
}

}  // namespace cloudplane::service
