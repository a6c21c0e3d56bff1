#include "service/gate.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/errors.h"
#include "base/reasons.h"
#include "google/rpc/code.pb.h"

namespace cloudplane::service {
namespace {

constexpr absl::string_view kAuthorization = "authorization";

}  // namespace

Gate::Gate(std::shared_ptr<const auth::Authenticator> authenticator, auth::Bindings bindings,
           AuditLog* audit)
    : audit_(audit) {
  Replace(std::move(authenticator), std::move(bindings));
}

void Gate::Replace(std::shared_ptr<const auth::Authenticator> authenticator,
                   auth::Bindings bindings) {
  auto state = std::make_shared<State>();
  state->authenticator = std::move(authenticator);
  state->bindings = std::move(bindings);
  absl::MutexLock lock(&mu_);
  state_ = std::move(state);
}

std::shared_ptr<const Gate::State> Gate::Current() const {
  absl::ReaderMutexLock lock(&mu_);
  return state_;
}

bool Gate::enabled() const { return Current()->authenticator->enabled(); }

absl::StatusOr<auth::Caller> Gate::Authenticate(const grpc::ServerContextBase& ctx,
                                                absl::string_view method) const {
  std::shared_ptr<const State> state = Current();
  const auth::Authenticator& authenticator = *state->authenticator;
  if (!authenticator.enabled()) {
    auth::Caller anyone;
    anyone.credential = "none";
    anyone.unrestricted = true;
    return anyone;
  }
  absl::string_view authorization;
  int count = 0;
  auto [begin, end] = ctx.client_metadata().equal_range(
      grpc::string_ref(kAuthorization.data(), kAuthorization.size()));
  for (auto it = begin; it != end; ++it) {
    if (count++ == 0) authorization = absl::string_view(it->second.data(), it->second.size());
  }
  std::string certificate;
  if (count == 0) {
    std::shared_ptr<const grpc::AuthContext> context = ctx.auth_context();
    if (context != nullptr) {
      std::vector<grpc::string_ref> pems = context->FindPropertyValues("x509_pem_cert");
      if (!pems.empty()) certificate.assign(pems.front().data(), pems.front().size());
    }
  }
  absl::StatusOr<auth::Caller> caller =
      authenticator.Authenticate(authorization, count, certificate, absl::Now());
  if (!caller.ok()) {
    CallFacts facts;
    facts.method = std::string(method);
    Audit(nullptr, facts, "", caller.status());
  }
  return caller;
}

absl::Status Gate::Authorize(const auth::Caller& caller, const auth::Permission& permission,
                             const CallFacts& facts,
                             absl::FunctionRef<absl::Status()> invisible) const {
  if (caller.unrestricted) return absl::OkStatus();
  auth::Role role = Current()->bindings.RoleOn(caller, facts.account);
  if (role >= permission.role) return absl::OkStatus();
  absl::Status refusal =
      role == auth::Role::kNone
          ? invisible()
          : WithErrorInfo(absl::PermissionDeniedError(absl::StrCat(
                              "permission ", permission.name, " is needed on ", facts.resource,
                              "; the caller's role there is ", auth::RoleName(role))),
                          reasons::kPermissionMissing,
                          {{"permission", permission.name}, {"resource", facts.resource}});
  Audit(&caller, facts, permission.name, refusal);
  return refusal;
}

absl::Status Gate::AuthorizeAnywhere(const auth::Caller& caller,
                                     const auth::Permission& permission,
                                     const CallFacts& facts) const {
  if (!Accounts(caller, permission.role).empty()) return absl::OkStatus();
  absl::Status refusal = WithErrorInfo(
      absl::PermissionDeniedError(absl::StrCat("permission ", permission.name,
                                               " is needed on at least one account")),
      reasons::kPermissionMissing,
      {{"permission", permission.name}, {"resource", facts.resource}});
  Audit(&caller, facts, permission.name, refusal);
  return refusal;
}

auth::AccountSet Gate::Accounts(const auth::Caller& caller, auth::Role role) const {
  return Current()->bindings.AccountsWith(caller, role);
}

auth::Role Gate::RoleOn(const auth::Caller& caller, absl::string_view account) const {
  return Current()->bindings.RoleOn(caller, account);
}

void Gate::Audit(const auth::Caller* caller, const CallFacts& facts,
                 absl::string_view permission, const absl::Status& status,
                 absl::string_view operation) const {
  if (audit_ == nullptr) return;
  v1::AuditEvent event;
  if (caller != nullptr) {
    event.set_principal(caller->principal);
    event.set_credential(caller->credential);
  }
  event.set_method(facts.method);
  event.set_resource(facts.resource);
  if (!facts.account.empty()) event.set_account(absl::StrCat("accounts/", facts.account));
  event.set_request_id(facts.request_id);
  event.set_permission(std::string(permission));
  event.set_code(static_cast<google::rpc::Code>(status.code()));
  event.set_message(std::string(status.message()));
  event.set_operation(std::string(operation));
  audit_->Record(std::move(event));
}

}  // namespace cloudplane::service
