#include "service/auth/policy.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace cloudplane::auth {
namespace {

// "ComputeService" → "compute", "Operations" → "operations".
std::string ServiceShortName(absl::string_view service) {
  absl::ConsumeSuffix(&service, "Service");
  return absl::AsciiStrToLower(service);
}

void Add(absl::flat_hash_map<std::string, Permission>& table, absl::string_view package,
         absl::string_view service, absl::string_view method, Role role) {
  table.emplace(absl::StrCat(package, ".", service, ".", method),
                Permission{absl::StrCat(ServiceShortName(service), ".", method), role});
}

absl::flat_hash_map<std::string, Permission>* BuildTable() {
  auto* table = new absl::flat_hash_map<std::string, Permission>();
  // The adapter-facing RPCs: every row of the method table.
#define CP_READ(Service, Method, Request, Response) \
  Add(*table, "cloudplane.v1", #Service, #Method, Role::kViewer);
#define CP_MUTATION(Service, Method, Request, Result) \
  Add(*table, "cloudplane.v1", #Service, #Method, Role::kOperator);
#include "adapters/api_methods.inc"
#undef CP_READ
#undef CP_MUTATION
  // The server's own services.
  Add(*table, "cloudplane.v1", "AccountsService", "ListProviders", Role::kViewer);
  Add(*table, "cloudplane.v1", "AccountsService", "GetProvider", Role::kViewer);
  Add(*table, "cloudplane.v1", "AccountsService", "ListAccounts", Role::kViewer);
  Add(*table, "cloudplane.v1", "AccountsService", "GetAccount", Role::kViewer);
  Add(*table, "cloudplane.v1", "WatchService", "Watch", Role::kViewer);
  Add(*table, "cloudplane.v1", "AuditService", "ListAuditEvents", Role::kAdmin);
  Add(*table, "google.longrunning", "Operations", "ListOperations", Role::kViewer);
  Add(*table, "google.longrunning", "Operations", "GetOperation", Role::kViewer);
  Add(*table, "google.longrunning", "Operations", "WaitOperation", Role::kViewer);
  Add(*table, "google.longrunning", "Operations", "CancelOperation", Role::kOperator);
  Add(*table, "google.longrunning", "Operations", "DeleteOperation", Role::kAdmin);
  return table;
}

}  // namespace

absl::string_view RoleName(Role role) {
  switch (role) {
    case Role::kNone:
      return "none";
    case Role::kViewer:
      return "viewer";
    case Role::kOperator:
      return "operator";
    case Role::kAdmin:
      return "admin";
  }
  return "none";
}

const absl::flat_hash_map<std::string, Permission>& AllPermissions() {
  static const auto* const kTable = BuildTable();
  return *kTable;
}

const Permission* PermissionFor(absl::string_view full_method) {
  const auto& table = AllPermissions();
  auto it = table.find(full_method);
  return it == table.end() ? nullptr : &it->second;
}

const Permission& ListProviderOperationsPermission() {
  static const auto* const kPermission =
      new Permission{"operations.ListProviderOperations", Role::kAdmin};
  return *kPermission;
}

const Permission& GetProviderOperationPermission() {
  static const auto* const kPermission =
      new Permission{"operations.GetProviderOperation", Role::kAdmin};
  return *kPermission;
}

Bindings::Bindings(const config::v1::AuthConfig& auth) {
  for (const config::v1::RoleBinding& binding : auth.bindings()) {
    Grant grant;
    grant.role = static_cast<Role>(std::clamp(static_cast<int>(binding.role()), 0, 3));
    grant.every_account = std::find(binding.accounts().begin(), binding.accounts().end(), "*") !=
                          binding.accounts().end();
    grant.accounts.insert(binding.accounts().begin(), binding.accounts().end());
    size_t index = grants_.size();
    grants_.push_back(std::move(grant));
    for (const std::string& principal : binding.principals()) {
      by_principal_[principal].push_back(index);
    }
    for (const std::string& group : binding.groups()) by_group_[group].push_back(index);
  }
}

template <typename Fn>
void Bindings::ForEachGrant(const Caller& caller, Fn fn) const {
  if (auto it = by_principal_.find(caller.principal); it != by_principal_.end()) {
    for (size_t index : it->second) fn(grants_[index]);
  }
  for (const std::string& group : caller.groups) {
    if (auto it = by_group_.find(group); it != by_group_.end()) {
      for (size_t index : it->second) fn(grants_[index]);
    }
  }
}

Role Bindings::RoleOn(const Caller& caller, absl::string_view account) const {
  if (caller.unrestricted) return Role::kAdmin;
  Role best = Role::kNone;
  ForEachGrant(caller, [&](const Grant& grant) {
    if (grant.role > best && (grant.every_account || grant.accounts.contains(account))) {
      best = grant.role;
    }
  });
  return best;
}

AccountSet Bindings::AccountsWith(const Caller& caller, Role role) const {
  AccountSet set;
  if (caller.unrestricted) {
    set.all = true;
    return set;
  }
  ForEachGrant(caller, [&](const Grant& grant) {
    if (grant.role < role) return;
    if (grant.every_account) {
      set.all = true;
    } else {
      set.ids.insert(grant.accounts.begin(), grant.accounts.end());
    }
  });
  if (set.all) set.ids.clear();
  return set;
}

}  // namespace cloudplane::auth
