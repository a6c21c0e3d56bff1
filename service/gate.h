// The gate every RPC passes: who is calling (authentication), whether the
// caller may do this on this account (authorization), and the audit record
// of refusals and of changes.
//
// Call flow in a handler (service/handlers.cc, watch_service.cc):
//   1. Authenticate(ctx): the `authorization` metadata or the client
//      certificate → an auth::Caller, or UNAUTHENTICATED (audited).
//   2. the request's own checks (request_validation.h);
//   3. Authorize(caller, permission, facts, invisible): OK; `invisible` (the
//      exact status a nonexistent account or operation answers) when the
//      caller has no role on the account, so names cannot be probed; or
//      PERMISSION_DENIED with ErrorInfo PERMISSION_MISSING {permission,
//      resource}. Both refusals are audited.
//   4. for mutations, cancels and deletes: Audit(...) with the outcome.
//
// Health and reflection are not routed through the gate: they stay open.
//
// SIGHUP: Replace() swaps the authenticator and the bindings at once; a call
// already past step 1 finishes under the state it started with.
//
// Thread-safety: every method may be called from any gRPC thread.
#ifndef CLOUDPLANE_SERVICE_GATE_H_
#define CLOUDPLANE_SERVICE_GATE_H_

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/grpcpp.h"
#include "service/audit_log.h"
#include "service/auth/authenticator.h"
#include "service/auth/caller.h"
#include "service/auth/policy.h"

namespace cloudplane::service {

// What one call is about, for the decision and the audit log.
struct CallFacts {
  std::string method;      // full method name, e.g. cloudplane.v1.ComputeService.GetInstance
  std::string resource;    // the target or parent the request names
  std::string account;     // account id; empty when the call names none
  std::string request_id;  // mutations only
};

class Gate {
 public:
  // `audit` may be null (unit tests); it outlives the gate.
  Gate(std::shared_ptr<const auth::Authenticator> authenticator, auth::Bindings bindings,
       AuditLog* audit);

  // Swaps in a new authentication and authorization state (SIGHUP).
  void Replace(std::shared_ptr<const auth::Authenticator> authenticator, auth::Bindings bindings);

  // Whether callers must authenticate.
  bool enabled() const;

  // Step 1. A refusal is audited with `method`.
  absl::StatusOr<auth::Caller> Authenticate(const grpc::ServerContextBase& ctx,
                                            absl::string_view method) const;

  // Step 3 for a call on one account (facts.account). `invisible` is asked
  // for only when the caller has no role there (building the status on
  // every call showed in perf of GetInstance).
  absl::Status Authorize(const auth::Caller& caller, const auth::Permission& permission,
                         const CallFacts& facts,
                         absl::FunctionRef<absl::Status()> invisible) const;
  absl::Status Authorize(const auth::Caller& caller, const auth::Permission& permission,
                         const CallFacts& facts, const absl::Status& invisible) const {
    return Authorize(caller, permission, facts, [&invisible] { return invisible; });
  }

  // Step 3 for a call that needs `permission` on at least one account
  // (ListProviders, ListAuditEvents without an account): PERMISSION_DENIED
  // naming `resource` when the caller holds it nowhere.
  absl::Status AuthorizeAnywhere(const auth::Caller& caller, const auth::Permission& permission,
                                 const CallFacts& facts) const;

  // The accounts where `caller` holds at least `role`.
  auth::AccountSet Accounts(const auth::Caller& caller, auth::Role role) const;

  // The caller's role on one account.
  auth::Role RoleOn(const auth::Caller& caller, absl::string_view account) const;

  // Records the outcome of a change (mutation, cancel, delete): `status` and,
  // when one was started, the operation's name.
  void Audit(const auth::Caller* caller, const CallFacts& facts, absl::string_view permission,
             const absl::Status& status, absl::string_view operation = "") const;

 private:
  struct State {
    std::shared_ptr<const auth::Authenticator> authenticator;
    auth::Bindings bindings;
  };
  std::shared_ptr<const State> Current() const;

  AuditLog* const audit_;
  mutable absl::Mutex mu_;
  std::shared_ptr<const State> state_ ABSL_GUARDED_BY(mu_);
};

}  // namespace cloudplane::service

#endif  // CLOUDPLANE_SERVICE_GATE_H_
