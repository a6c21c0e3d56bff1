// Authorization: which permission each RPC needs, which role holds it, and
// which role a caller has on an account (the config's role bindings).
//
// One permission per method, named `<service>.<Method>` where <service> is
// the service's name in lower case without "Service" (`compute.GetInstance`,
// `operations.CancelOperation`, `audit.ListAuditEvents`). The adapter-facing
// methods come from adapters/api_methods.inc (reads need VIEWER, mutations
// OPERATOR), so a new RPC in that table has its permission without anything
// written here; the server's own services (accounts, operations, watch,
// audit) are listed in policy.cc. The `accounts/{a}/providerOperations`
// names of ListOperations and GetOperation are two more permissions
// (`operations.ListProviderOperations`, `operations.GetProviderOperation`),
// held by ADMIN: they show the provider's own jobs, whoever started them.
//
// Roles, each including the one before: VIEWER (reads, operations Get/List/
// Wait, Watch), OPERATOR (mutations, CancelOperation), ADMIN
// (DeleteOperation, provider operations, the audit log).
//
// Thread-safety: PermissionFor and the tables are immutable; a Bindings is
// immutable once built and may be read from any thread.
#ifndef CLOUDPLANE_SERVICE_AUTH_POLICY_H_
#define CLOUDPLANE_SERVICE_AUTH_POLICY_H_

#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"
#include "cloudplane/config/v1/config.pb.h"
#include "service/auth/caller.h"

namespace cloudplane::auth {

enum class Role { kNone = 0, kViewer = 1, kOperator = 2, kAdmin = 3 };

absl::string_view RoleName(Role role);

struct Permission {
  std::string name;  // e.g. "compute.GetInstance"
  Role role;         // the least role that holds it
};

// The permission of the RPC `full_method` ("cloudplane.v1.ComputeService.
// GetInstance", "google.longrunning.Operations.GetOperation"); nullptr for a
// method that has none (the server then refuses the call).
const Permission* PermissionFor(absl::string_view full_method);

// The two permissions for the provider's own operations.
const Permission& ListProviderOperationsPermission();
const Permission& GetProviderOperationPermission();

// Every method with a permission (full method name → permission), for tests
// and docs.
const absl::flat_hash_map<std::string, Permission>& AllPermissions();

// The accounts a caller reaches with at least some role.
struct AccountSet {
  bool all = false;                      // a `*` binding (or no authentication)
  absl::flat_hash_set<std::string> ids;  // when !all

  bool Contains(absl::string_view account) const { return all || ids.contains(account); }
  bool empty() const { return !all && ids.empty(); }
};

// The role bindings of a config, indexed by principal and group. Building
// does not validate (the Authenticator's Create refuses a bad binding first).
class Bindings {
 public:
  Bindings() = default;
  explicit Bindings(const config::v1::AuthConfig& auth);

  // The highest role any binding gives `caller` on `account`; kAdmin for an
  // unrestricted caller (authentication off).
  Role RoleOn(const Caller& caller, absl::string_view account) const;

  // The accounts where `caller` holds at least `role`.
  AccountSet AccountsWith(const Caller& caller, Role role) const;

 private:
  struct Grant {
    Role role;
    bool every_account;
    absl::flat_hash_set<std::string> accounts;
  };
  template <typename Fn>
  void ForEachGrant(const Caller& caller, Fn fn) const;

  std::vector<Grant> grants_;
  absl::flat_hash_map<std::string, std::vector<size_t>> by_principal_;
  absl::flat_hash_map<std::string, std::vector<size_t>> by_group_;
};

}  // namespace cloudplane::auth

#endif  // CLOUDPLANE_SERVICE_AUTH_POLICY_H_
