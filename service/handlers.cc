#include "service/handlers.h"

#include <chrono>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/random/random.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "adapters/dispatch.h"
#include "adapters/common/paging/paging.h"
#include "base/errors.h"
#include "base/status.h"
#include "google/protobuf/struct.pb.h"
#include "cloudplane/v1/accounts.grpc.pb.h"
#include "cloudplane/v1/audit.grpc.pb.h"
#include "cloudplane/v1/autoscaling.grpc.pb.h"
#include "cloudplane/v1/billing.grpc.pb.h"
#include "cloudplane/v1/common.pb.h"
#include "cloudplane/v1/compute.grpc.pb.h"
#include "cloudplane/v1/firewalls.grpc.pb.h"
#include "cloudplane/v1/networks.grpc.pb.h"
#include "cloudplane/v1/units.grpc.pb.h"
#include "cloudplane/v1/volumes.grpc.pb.h"
#include "google/longrunning/operations.grpc.pb.h"
#include "google/protobuf/empty.pb.h"
#include "google/protobuf/util/time_util.h"
#include "service/audit_log.h"
#include "service/auth/policy.h"
#include "service/field_contract.h"
#include "service/request_validation.h"
#include "service/status_conversion.h"
#include "service/watch_service.h"

namespace cloudplane::service {
namespace {

using google::longrunning::Operation;
using google::protobuf::Empty;

absl::Time DeadlineOf(const grpc::CallbackServerContext* ctx) {
  auto deadline = ctx->deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) return absl::InfiniteFuture();
  return absl::FromChrono(deadline);
}

// The permission of a method the server serves. Every served method has one
// (service/auth/policy_test.cc walks them all); a method without one would
// be a bug, and it is then refused rather than let through.
const auth::Permission& PermissionOf(absl::string_view full_method) {
  static const auto* const kUnknown =
      new auth::Permission{"cloudplane.unknownMethod", static_cast<auth::Role>(4)};
  const auth::Permission* permission = auth::PermissionFor(full_method);
  return permission != nullptr ? *permission : *kUnknown;
}

grpc::ServerUnaryReactor* Refuse(grpc::CallbackServerContext* ctx, const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

// Request-level `provider_options` reach only adapters that say they read
// them for this method; anything else would be silently ignored.
absl::Status CheckProviderOptions(const adapters::Provider& provider,
                                  const std::string& full_method,
                                  const google::protobuf::Message& request) {
  const auto* field = request.GetDescriptor()->FindFieldByName("provider_options");
  if (field == nullptr || field->message_type() == nullptr ||
      field->message_type() != google::protobuf::Struct::descriptor()) {
    return absl::OkStatus();
  }
  const auto& options = static_cast<const google::protobuf::Struct&>(
      request.GetReflection()->GetMessage(request, field));
  const auto& readers = provider.Info().reads_provider_options;
  if (options.fields().empty() ||
      std::find(readers.begin(), readers.end(), full_method) != readers.end()) {
    return absl::OkStatus();
  }
  return InvalidField("provider_options",
                      absl::StrCat("provider ", provider.Info().kind, " reads none for ",
                                   full_method));
}

// The checks every adapter-facing RPC shares, in order: the caller, the
// request's shape, the caller's permission on the account, the account, the
// capability, the caller's deadline. Returns the provider and fills `cc`,
// `routed`, `caller` and `facts`.
absl::StatusOr<adapters::Provider*> Admit(const ServiceContext& context,
                                          grpc::CallbackServerContext* ctx,
                                          absl::string_view method_name,
                                          const std::string& full_method,
                                          const google::protobuf::Message& request,
                                          absl::string_view request_id,
                                          adapters::CallContext& cc, RoutedRequest& routed,
                                          auth::Caller& caller, CallFacts& facts) {
  absl::StatusOr<auth::Caller> who = context.gate->Authenticate(*ctx, full_method);
  if (!who.ok()) return who.status();
  caller = *std::move(who);
  absl::StatusOr<RoutedRequest> valid = ValidateRequest(method_name, request);
  if (!valid.ok()) return valid.status();
  routed = *std::move(valid);
  facts.method = full_method;
  facts.resource = routed.target;
  facts.account = routed.account;
  facts.request_id = std::string(request_id);
  RETURN_IF_ERROR(context.gate->Authorize(caller, PermissionOf(full_method), facts, [&routed] {
    return AccountTable::NotConfigured(routed.account, "name");
  }));
  absl::StatusOr<adapters::Provider*> provider =
      context.accounts->Provider(routed.account, "name");
  if (!provider.ok()) return provider.status();
  if (!context.accounts->Supports(routed.account, full_method)) {
    return adapters::Unsupported(full_method);
  }
  RETURN_IF_ERROR(CheckProviderOptions(**provider, full_method, request));
  cc.account = routed.account;
  cc.deadline = DeadlineOf(ctx);
  if (cc.deadline <= absl::Now()) {
    return absl::DeadlineExceededError("the call's deadline passed before it was served");
  }
  return provider;
}

template <typename Request, typename Response>
grpc::ServerUnaryReactor* HandleRead(
    const ServiceContext& context, grpc::CallbackServerContext* ctx, const Request* request,
    Response* response, absl::string_view service, absl::string_view method,
    void (adapters::Provider::*call)(const adapters::CallContext&, const Request&,
                                     adapters::Callback<Response>)) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  adapters::CallContext cc;
  RoutedRequest routed;
  auth::Caller caller;
  CallFacts facts;
  absl::StatusOr<adapters::Provider*> provider =
      Admit(context, ctx, method, adapters::FullMethodName(service, method), *request, "", cc,
            routed, caller, facts);
  if (!provider.ok()) {
    reactor->Finish(ToGrpcStatus(provider.status()));
    return reactor;
  }
  ((*provider)->*call)(cc, *request, [reactor, response](absl::StatusOr<Response> result) {
    if (result.ok()) *response = *std::move(result);
    reactor->Finish(ToGrpcStatus(result.status()));
  });
  return reactor;
}

// The answer to a validate_only request that passed: an Operation that is
// already finished and was never stored.
Operation ValidatedOperation(const std::string& full_method, const std::string& account,
                             const std::string& target) {
  Operation op;
  absl::BitGen gen;
  op.set_name(absl::StrFormat("operations/validate-only-%016x", absl::Uniform<uint64_t>(gen)));
  op.set_done(true);
  op.mutable_response()->PackFrom(Empty());
  v1::OperationMetadata metadata;
  metadata.set_target(target);
  metadata.set_method(full_method);
  metadata.set_account(absl::StrCat("accounts/", account));
  metadata.set_status_detail("validated only; nothing was changed");
  *metadata.mutable_create_time() = google::protobuf::util::TimeUtil::GetCurrentTime();
  *metadata.mutable_end_time() = metadata.create_time();
  op.mutable_metadata()->PackFrom(metadata);
  return op;
}

template <typename Request>
grpc::ServerUnaryReactor* HandleMutation(const ServiceContext& context,
                                         grpc::CallbackServerContext* ctx,
                                         const Request* request, Operation* response,
                                         absl::string_view service, absl::string_view method) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  const std::string full_method = adapters::FullMethodName(service, method);
  adapters::CallContext cc;
  RoutedRequest routed;
  auth::Caller caller;
  CallFacts facts;
  absl::StatusOr<adapters::Provider*> provider =
      Admit(context, ctx, method, full_method, *request, request->request_id(), cc, routed, caller,
            facts);
  if (!provider.ok()) {
    reactor->Finish(ToGrpcStatus(provider.status()));
    return reactor;
  }
  // The strict field contract: a field the adapter would not carry out is
  // refused here, before the runner stores anything or the adapter runs.
  if (absl::Status s = CheckFieldContract(*request, (*provider)->HonouredFields(full_method),
                                          (*provider)->Info().kind, full_method);
      !s.ok()) {
    reactor->Finish(ToGrpcStatus(s));
    return reactor;
  }
  if (request->validate_only()) {
    // Checked, not done: the adapter runs its local checks (no provider I/O)
    // and a pass is an Operation that is already finished and not stored.
    // Nothing changes, so nothing is audited.
    cc.validate_only = true;
    google::protobuf::Any packed;
    packed.PackFrom(*request);
    auto answer = std::make_shared<adapters::Callback<adapters::MutationProgress>>(
        [reactor, response, target = routed.target, full_method,
         account = routed.account](absl::StatusOr<adapters::MutationProgress> checked) {
          if (!checked.ok()) {
            reactor->Finish(ToGrpcStatus(checked.status()));
            return;
          }
          *response = ValidatedOperation(full_method, account, target);
          reactor->Finish(grpc::Status::OK);
        });
    absl::Status dispatched = adapters::DispatchMutation(
        full_method, **provider, cc, packed,
        [answer](absl::StatusOr<adapters::MutationProgress> checked) {
          std::move(*answer)(std::move(checked));
        });
    if (!dispatched.ok()) std::move(*answer)(dispatched);
    return reactor;
  }
  context.runner->Start(
      full_method, routed.account, routed.target, *request, request->request_id(),
      caller.principal,
      [reactor, response, gate = context.gate, caller, facts](absl::StatusOr<Operation> op) {
        gate->Audit(&caller, facts, PermissionOf(facts.method).name, op.status(),
                    op.ok() ? op->name() : "");
        if (op.ok()) *response = *std::move(op);
        reactor->Finish(ToGrpcStatus(op.status()));
      });
  return reactor;
}

// One class per API service, its methods expanded from that service's rows
// of api_methods.inc.
#define CP_READ(Service, Method, Request, Response)                                        \
  grpc::ServerUnaryReactor* Method(grpc::CallbackServerContext* ctx, const v1::Request* req, \
                                   v1::Response* resp) override {                         \
    return HandleRead(context_, ctx, req, resp, #Service, #Method,                        \
                      &adapters::Provider::Method);                                       \
  }
#define CP_MUTATION(Service, Method, Request, Result)                                      \
  grpc::ServerUnaryReactor* Method(grpc::CallbackServerContext* ctx, const v1::Request* req, \
                                   Operation* resp) override {                            \
    return HandleMutation(context_, ctx, req, resp, #Service, #Method);                   \
  }
// The preprocessor cannot #include inside a macro argument, so each class
// is spelled out with its include between the shared head and tail.
#define CP_CLASS_HEAD(Service)                                                    \
  class Service##Impl final : public v1::Service::CallbackService {              \
   public:                                                                        \
    explicit Service##Impl(const ServiceContext& context) : context_(context) {} \
                                                                                  \
   private:                                                                       \
    const ServiceContext context_;
#define CP_CLASS_TAIL };

CP_CLASS_HEAD(ComputeService)
#include "adapters/api/compute.inc"
CP_CLASS_TAIL
CP_CLASS_HEAD(VolumesService)
#include "adapters/api/volumes.inc"
CP_CLASS_TAIL
CP_CLASS_HEAD(FirewallsService)
#include "adapters/api/firewalls.inc"
CP_CLASS_TAIL
CP_CLASS_HEAD(AutoscalingService)
#include "adapters/api/autoscaling.inc"
CP_CLASS_TAIL
CP_CLASS_HEAD(UnitsService)
#include "adapters/api/units.inc"
CP_CLASS_TAIL
CP_CLASS_HEAD(BillingService)
#include "adapters/api/billing.inc"
CP_CLASS_TAIL
CP_CLASS_HEAD(NetworksService)
#include "adapters/api/networks.inc"
CP_CLASS_TAIL

#undef CP_READ
#undef CP_MUTATION
#undef CP_CLASS_HEAD
#undef CP_CLASS_TAIL

// Accounts and providers come from the server's own tables.
class AccountsServiceImpl final : public v1::AccountsService::CallbackService {
 public:
  explicit AccountsServiceImpl(const ServiceContext& context) : context_(context) {}

 private:
  grpc::ServerUnaryReactor* ListProviders(grpc::CallbackServerContext* ctx,
                                          const v1::ListProvidersRequest* request,
                                          v1::ListProvidersResponse* response) override {
    if (absl::Status refused = AdmitCatalogue(ctx, "ListProviders"); !refused.ok()) {
      return Refuse(ctx, refused);
    }
    std::vector<v1::Provider> all;
    for (const adapters::ProviderInfo* info : context_.registry->List()) all.push_back(ToProto(*info));
    return FinishPage(ctx, std::move(all), request->page_size(), request->page_token(),
                      response->mutable_providers(), response->mutable_next_page_token());
  }

  grpc::ServerUnaryReactor* GetProvider(grpc::CallbackServerContext* ctx,
                                        const v1::GetProviderRequest* request,
                                        v1::Provider* response) override {
    if (absl::Status refused = AdmitCatalogue(ctx, "GetProvider"); !refused.ok()) {
      return Refuse(ctx, refused);
    }
    auto* reactor = ctx->DefaultReactor();
    std::vector<absl::string_view> parts = absl::StrSplit(request->name(), '/');
    if (parts.size() != 2 || parts[0] != "providers" || parts[1].empty()) {
      reactor->Finish(ToGrpcStatus(InvalidField("name", "must look like providers/{provider}")));
      return reactor;
    }
    const adapters::ProviderInfo* info = context_.registry->Find(parts[1]);
    if (info == nullptr) {
      reactor->Finish(ToGrpcStatus(
          absl::NotFoundError(absl::StrCat("no provider named \"", parts[1], "\""))));
      return reactor;
    }
    *response = ToProto(*info);
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  // Only the accounts the caller has a role on.
  grpc::ServerUnaryReactor* ListAccounts(grpc::CallbackServerContext* ctx,
                                         const v1::ListAccountsRequest* request,
                                         v1::ListAccountsResponse* response) override {
    const std::string method = Full("ListAccounts");
    absl::StatusOr<auth::Caller> caller = context_.gate->Authenticate(*ctx, method);
    if (!caller.ok()) return Refuse(ctx, caller.status());
    auth::AccountSet visible = context_.gate->Accounts(*caller, auth::Role::kViewer);
    std::vector<v1::Account> all;
    for (v1::Account& account : context_.accounts->List()) {
      if (visible.Contains(absl::StripPrefix(account.name(), "accounts/"))) {
        all.push_back(std::move(account));
      }
    }
    return FinishPage(ctx, std::move(all), request->page_size(), request->page_token(),
                      response->mutable_accounts(), response->mutable_next_page_token());
  }

  grpc::ServerUnaryReactor* GetAccount(grpc::CallbackServerContext* ctx,
                                       const v1::GetAccountRequest* request,
                                       v1::Account* response) override {
    const std::string method = Full("GetAccount");
    absl::StatusOr<auth::Caller> caller = context_.gate->Authenticate(*ctx, method);
    if (!caller.ok()) return Refuse(ctx, caller.status());
    absl::StatusOr<RoutedRequest> routed = ValidateRequest("GetAccount", *request);
    if (!routed.ok()) return Refuse(ctx, routed.status());
    CallFacts facts{method, routed->target, routed->account, ""};
    absl::Status not_found = AccountTable::NotConfigured(routed->account, "name");
    if (absl::Status refused =
            context_.gate->Authorize(*caller, PermissionOf(method), facts, not_found);
        !refused.ok()) {
      return Refuse(ctx, refused);
    }
    std::unique_ptr<v1::Account> account = context_.accounts->Find(routed->account);
    if (account == nullptr) return Refuse(ctx, not_found);
    *response = *account;
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  static std::string Full(absl::string_view method) {
    return absl::StrCat("cloudplane.v1.AccountsService.", method);
  }

  // The provider catalogue is no account's, but it is shown only to callers
  // with a role somewhere.
  absl::Status AdmitCatalogue(grpc::CallbackServerContext* ctx, absl::string_view name) {
    const std::string method = Full(name);
    absl::StatusOr<auth::Caller> caller = context_.gate->Authenticate(*ctx, method);
    if (!caller.ok()) return caller.status();
    CallFacts facts{method, "providers", "", ""};
    return context_.gate->AuthorizeAnywhere(*caller, PermissionOf(method), facts);
  }

  static v1::Provider ToProto(const adapters::ProviderInfo& info) {
    v1::Provider provider;
    provider.set_name(absl::StrCat("providers/", info.kind));
    provider.set_display_name(info.display_name);
    provider.set_protocol(info.protocol);
    provider.set_watch_source(std::string(adapters::WatchSourceName(info.watch_source)));
    for (const auto& method : info.supported_methods) provider.add_supported_methods(method);
    return provider;
  }

  template <typename T>
  grpc::ServerUnaryReactor* FinishPage(grpc::CallbackServerContext* ctx, std::vector<T> all,
                                       int32_t page_size, const std::string& page_token,
                                       google::protobuf::RepeatedPtrField<T>* out,
                                       std::string* next_page_token) {
    auto* reactor = ctx->DefaultReactor();
    absl::StatusOr<std::vector<T>> page = paging::Paginate(
        std::move(all), [](const T& item) { return item.name(); }, page_size, page_token,
        next_page_token);
    if (page.ok()) {
      for (T& item : *page) *out->Add() = std::move(item);
    }
    reactor->Finish(ToGrpcStatus(page.status()));
    return reactor;
  }

  const ServiceContext context_;
};

// google.longrunning.Operations over the OperationRunner's store. An
// operation is shown only to callers with a role on its account; for anyone
// else it does not exist.
class OperationsImpl final : public google::longrunning::Operations::CallbackService {
 public:
  explicit OperationsImpl(const ServiceContext& context) : context_(context) {}

 private:
  grpc::ServerUnaryReactor* ListOperations(
      grpc::CallbackServerContext* ctx, const google::longrunning::ListOperationsRequest* request,
      google::longrunning::ListOperationsResponse* response) override {
    const std::string method = Full("ListOperations");
    absl::StatusOr<auth::Caller> caller = context_.gate->Authenticate(*ctx, method);
    if (!caller.ok()) return Refuse(ctx, caller.status());
    auto* reactor = ctx->DefaultReactor();
    if (absl::StartsWith(request->name(), "accounts/")) {
      // The provider's own jobs: `accounts/{account}/providerOperations`.
      std::vector<absl::string_view> parts = absl::StrSplit(request->name(), '/');
      absl::Status status;
      if (parts.size() != 3 || parts[1].empty() || parts[2] != kProviderOperations) {
        status = InvalidField("name", "must be \"operations\" or "
                                      "accounts/{account}/providerOperations");
      } else if (!request->filter().empty()) {
        status = InvalidField("filter", "provider operations take no filter");
      } else if (request->page_size() < 0) {
        status = InvalidField("page_size", "must not be negative");
      }
      adapters::CallContext cc;
      absl::StatusOr<adapters::Provider*> provider =
          status.ok() ? ProviderFor(ctx, *caller, auth::ListProviderOperationsPermission(),
                                    request->name(), parts[1], cc)
                      : status;
      if (!provider.ok()) {
        reactor->Finish(ToGrpcStatus(provider.status()));
        return reactor;
      }
      (*provider)->ListProviderOperations(
          cc, request->page_size(), request->page_token(),
          [reactor, response](absl::StatusOr<google::longrunning::ListOperationsResponse> page) {
            if (page.ok()) *response = *std::move(page);
            reactor->Finish(ToGrpcStatus(page.status()));
          });
      return reactor;
    }
    store::ListOperationsQuery query;
    absl::Status status = ParseFilter(request->filter(), query);
    if (status.ok() && !request->name().empty() && request->name() != "operations") {
      status = InvalidField("name", "must be empty or \"operations\"");
    }
    if (status.ok() && request->page_size() < 0) {
      status = InvalidField("page_size", "must not be negative");
    }
    // Only the accounts the caller has a role on; an account filter naming
    // any other gives an empty page, as for an account without operations.
    auth::AccountSet visible = context_.gate->Accounts(*caller, auth::Role::kViewer);
    bool nothing_visible =
        visible.empty() || (!query.account.empty() && !visible.Contains(query.account));
    if (status.ok() && !visible.all) {
      query.accounts.assign(visible.ids.begin(), visible.ids.end());
      std::sort(query.accounts.begin(), query.accounts.end());
    }
    if (status.ok() && !nothing_visible) {
      query.page_size = request->page_size();
      query.page_token = request->page_token();
      absl::StatusOr<store::OperationPage> page = context_.runner->List(query);
      if (page.ok()) {
        for (auto& record : page->records) *response->add_operations() = std::move(record.op);
        response->set_next_page_token(page->next_page_token);
      } else if (page.status().code() == absl::StatusCode::kInvalidArgument) {
        status = InvalidField("page_token", page.status().message());
      } else {
        status = page.status();
      }
    }
    reactor->Finish(ToGrpcStatus(status));
    return reactor;
  }

  grpc::ServerUnaryReactor* GetOperation(grpc::CallbackServerContext* ctx,
                                         const google::longrunning::GetOperationRequest* request,
                                         Operation* response) override {
    const std::string method = Full("GetOperation");
    absl::StatusOr<auth::Caller> caller = context_.gate->Authenticate(*ctx, method);
    if (!caller.ok()) return Refuse(ctx, caller.status());
    auto* reactor = ctx->DefaultReactor();
    if (absl::StartsWith(request->name(), "accounts/")) {
      // `accounts/{account}/providerOperations/{id}`: ask the provider.
      std::vector<absl::string_view> parts = absl::StrSplit(request->name(), '/');
      adapters::CallContext cc;
      absl::StatusOr<adapters::Provider*> provider =
          parts.size() == 4 && !parts[1].empty() && parts[2] == kProviderOperations &&
                  !parts[3].empty()
              ? ProviderFor(ctx, *caller, auth::GetProviderOperationPermission(),
                            request->name(), parts[1], cc)
              : InvalidField("name", "must look like operations/{operation} or "
                                     "accounts/{account}/providerOperations/{id}");
      if (!provider.ok()) {
        reactor->Finish(ToGrpcStatus(provider.status()));
        return reactor;
      }
      (*provider)->GetProviderOperation(cc, std::string(parts[3]),
                                        [reactor, response](absl::StatusOr<Operation> op) {
                                          if (op.ok()) *response = *std::move(op);
                                          reactor->Finish(ToGrpcStatus(op.status()));
                                        });
      return reactor;
    }
    CallFacts facts;
    absl::StatusOr<Operation> op = Visible(*caller, method, request->name(), facts);
    if (op.ok()) *response = *std::move(op);
    reactor->Finish(ToGrpcStatus(op.status()));
    return reactor;
  }

  grpc::ServerUnaryReactor* DeleteOperation(
      grpc::CallbackServerContext* ctx, const google::longrunning::DeleteOperationRequest* request,
      Empty*) override {
    const std::string method = Full("DeleteOperation");
    absl::StatusOr<auth::Caller> caller = context_.gate->Authenticate(*ctx, method);
    if (!caller.ok()) return Refuse(ctx, caller.status());
    CallFacts facts;
    absl::Status status = Visible(*caller, method, request->name(), facts).status();
    if (status.ok()) {
      status = context_.runner->Delete(request->name());
      context_.gate->Audit(&*caller, facts, PermissionOf(method).name, status);
    }
    return Refuse(ctx, status);
  }

  grpc::ServerUnaryReactor* CancelOperation(
      grpc::CallbackServerContext* ctx, const google::longrunning::CancelOperationRequest* request,
      Empty*) override {
    const std::string method = Full("CancelOperation");
    absl::StatusOr<auth::Caller> caller = context_.gate->Authenticate(*ctx, method);
    if (!caller.ok()) return Refuse(ctx, caller.status());
    CallFacts facts;
    absl::Status status = Visible(*caller, method, request->name(), facts).status();
    if (!status.ok()) return Refuse(ctx, status);
    // The provider is asked to stop the work: answered from its callback.
    auto* reactor = ctx->DefaultReactor();
    context_.runner->Cancel(
        request->name(), [gate = context_.gate, caller = *caller, facts, method,
                          name = request->name(), reactor](absl::Status status) {
          gate->Audit(&caller, facts, PermissionOf(method).name, status, name);
          reactor->Finish(ToGrpcStatus(status));
        });
    return reactor;
  }

  grpc::ServerUnaryReactor* WaitOperation(grpc::CallbackServerContext* ctx,
                                          const google::longrunning::WaitOperationRequest* request,
                                          Operation* response) override {
    const std::string method = Full("WaitOperation");
    absl::StatusOr<auth::Caller> caller = context_.gate->Authenticate(*ctx, method);
    if (!caller.ok()) return Refuse(ctx, caller.status());
    absl::Status status = CheckName(request->name());
    if (status.ok() && request->timeout().seconds() < 0) {
      status = InvalidField("timeout", "must not be negative");
    }
    CallFacts facts;
    if (status.ok()) status = Visible(*caller, method, request->name(), facts).status();
    if (!status.ok()) return Refuse(ctx, status);
    auto* reactor = ctx->DefaultReactor();
    // Wait until the operation is done, the requested timeout passes, or the
    // call's own deadline is near: whichever comes first (AIP-151).
    absl::Time until = absl::Now() + kDefaultWait;
    if (request->has_timeout()) {
      until = absl::Now() + absl::Seconds(request->timeout().seconds()) +
              absl::Nanoseconds(request->timeout().nanos());
    }
    absl::Time deadline = DeadlineOf(ctx);
    if (deadline != absl::InfiniteFuture()) {
      until = std::min(until, deadline - absl::Milliseconds(50));
    }
    context_.runner->Wait(request->name(), until,
                          [reactor, response](absl::StatusOr<Operation> op) {
                            if (op.ok()) *response = *std::move(op);
                            reactor->Finish(ToGrpcStatus(op.status()));
                          });
    return reactor;
  }

  static constexpr absl::string_view kProviderOperations = "providerOperations";

  static std::string Full(absl::string_view method) {
    return absl::StrCat("google.longrunning.Operations.", method);
  }

  // The operation `name` when the caller may use `method` on it. An
  // operation in an account the caller has no role on answers exactly as a
  // missing one. Fills `facts` for the audit log.
  absl::StatusOr<Operation> Visible(const auth::Caller& caller, const std::string& method,
                                    const std::string& name, CallFacts& facts) const {
    RETURN_IF_ERROR(CheckName(name));
    absl::StatusOr<Operation> op = context_.runner->Get(name);
    if (!op.ok()) return op.status();
    v1::OperationMetadata metadata;
    op->metadata().UnpackTo(&metadata);
    facts.method = method;
    facts.resource = name;
    facts.account = std::string(absl::StripPrefix(metadata.account(), "accounts/"));
    facts.request_id = metadata.request_id();
    RETURN_IF_ERROR(context_.gate->Authorize(caller, PermissionOf(method), facts,
                                             OperationRunner::NotFound(name)));
    return op;
  }

  absl::StatusOr<adapters::Provider*> ProviderFor(grpc::CallbackServerContext* ctx,
                                                  const auth::Caller& caller,
                                                  const auth::Permission& permission,
                                                  const std::string& name,
                                                  absl::string_view account,
                                                  adapters::CallContext& cc) const {
    CallFacts facts{permission.name == auth::ListProviderOperationsPermission().name
                        ? Full("ListOperations")
                        : Full("GetOperation"),
                    name, std::string(account), ""};
    RETURN_IF_ERROR(context_.gate->Authorize(caller, permission, facts,
                                             AccountTable::NotConfigured(account, "name")));
    absl::StatusOr<adapters::Provider*> provider = context_.accounts->Provider(account, "name");
    cc.account = std::string(account);
    cc.deadline = DeadlineOf(ctx);
    return provider;
  }

  static absl::Status CheckName(const std::string& name) {
    std::vector<absl::string_view> parts = absl::StrSplit(name, '/');
    if (parts.size() != 2 || parts[0] != "operations" || parts[1].empty()) {
      return InvalidField("name", "must look like operations/{operation}");
    }
    return absl::OkStatus();
  }

  // Supported filter terms, space-separated: `account=accounts/{id}` and
  // `done=false`.
  static absl::Status ParseFilter(absl::string_view filter, store::ListOperationsQuery& query) {
    for (absl::string_view term : absl::StrSplit(filter, ' ', absl::SkipEmpty())) {
      std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(term, '=');
      if (kv.first == "account" && absl::StartsWith(kv.second, "accounts/") &&
          kv.second.size() > 9) {
        query.account = std::string(kv.second.substr(9));
      } else if (kv.first == "done" && kv.second == "false") {
        query.only_unfinished = true;
      } else {
        return InvalidField("filter", absl::StrCat("unsupported term \"", term,
                                                   "\"; use account=accounts/{id} or done=false"));
      }
    }
    return absl::OkStatus();
  }

  static constexpr absl::Duration kDefaultWait = absl::Seconds(60);
  const ServiceContext context_;
};

// The audit log, for admins: events of the accounts the caller is ADMIN on,
// and those naming no account (refused unauthenticated calls) only for an
// ADMIN of every account.
class AuditServiceImpl final : public v1::AuditService::CallbackService {
 public:
  explicit AuditServiceImpl(const ServiceContext& context) : context_(context) {}

 private:
  grpc::ServerUnaryReactor* ListAuditEvents(grpc::CallbackServerContext* ctx,
                                            const v1::ListAuditEventsRequest* request,
                                            v1::ListAuditEventsResponse* response) override {
    const std::string method = "cloudplane.v1.AuditService.ListAuditEvents";
    absl::StatusOr<auth::Caller> caller = context_.gate->Authenticate(*ctx, method);
    if (!caller.ok()) return Refuse(ctx, caller.status());
    absl::StatusOr<store::AuditQuery> query = ToAuditQuery(*request);
    if (!query.ok()) return Refuse(ctx, query.status());
    if (request->page_size() < 0) {
      return Refuse(ctx, InvalidField("page_size", "must not be negative"));
    }
    const auth::Permission& permission = PermissionOf(method);
    absl::Status allowed;
    if (!query->account.empty()) {
      CallFacts facts{method, request->account(), query->account, ""};
      allowed = context_.gate->Authorize(*caller, permission, facts,
                                         AccountTable::NotConfigured(query->account, "account"));
    } else {
      allowed = context_.gate->AuthorizeAnywhere(*caller, permission,
                                                 CallFacts{method, "auditEvents", "", ""});
    }
    if (!allowed.ok()) return Refuse(ctx, allowed);
    auth::AccountSet readable = context_.gate->Accounts(*caller, auth::Role::kAdmin);
    if (!readable.all) {
      query->accounts.assign(readable.ids.begin(), readable.ids.end());
      std::sort(query->accounts.begin(), query->accounts.end());
    }
    query->page_size = request->page_size();
    query->page_token = request->page_token();
    absl::StatusOr<v1::ListAuditEventsResponse> page =
        service::ListAuditEvents(*context_.store, *query);
    absl::Status status = page.status();
    if (page.ok()) {
      *response = *std::move(page);
    } else if (status.code() == absl::StatusCode::kInvalidArgument) {
      status = InvalidField("page_token", status.message());
    }
    return Refuse(ctx, status);
  }

  const ServiceContext context_;
};

}  // namespace

std::vector<std::unique_ptr<grpc::Service>> MakeServices(const ServiceContext& context) {
  std::vector<std::unique_ptr<grpc::Service>> services;
  services.push_back(std::make_unique<AccountsServiceImpl>(context));
  services.push_back(std::make_unique<ComputeServiceImpl>(context));
  services.push_back(std::make_unique<VolumesServiceImpl>(context));
  services.push_back(std::make_unique<FirewallsServiceImpl>(context));
  services.push_back(std::make_unique<AutoscalingServiceImpl>(context));
  services.push_back(std::make_unique<UnitsServiceImpl>(context));
  services.push_back(std::make_unique<BillingServiceImpl>(context));
  services.push_back(std::make_unique<NetworksServiceImpl>(context));
  services.push_back(std::make_unique<OperationsImpl>(context));
  services.push_back(std::make_unique<AuditServiceImpl>(context));
  services.push_back(MakeWatchService(context.hub, context.loop, context.accounts, context.gate));
  return services;
}

std::vector<std::string> ServiceNames() {
  return {"cloudplane.v1.AccountsService",    "cloudplane.v1.ComputeService",
          "cloudplane.v1.VolumesService",     "cloudplane.v1.FirewallsService",
          "cloudplane.v1.AutoscalingService", "cloudplane.v1.UnitsService",
          "cloudplane.v1.BillingService",     "cloudplane.v1.NetworksService",
          "google.longrunning.Operations",    "cloudplane.v1.WatchService",
          "cloudplane.v1.AuditService"};
}

}  // namespace cloudplane::service
