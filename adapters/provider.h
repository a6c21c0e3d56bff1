// \file The adapter contract: what the server asks of every provider.
//
// The call flow of one RPC, e.g. UnitsService.CreateUnit on a fleet account:
//
//  1. The gRPC layer (service/) receives the request on a callback reactor,
//     validates it (names, required fields; INVALID_ARGUMENT with the field
//     named), and finds the account's Provider in the AccountTable.
//  2. Reads (CP_READ in api_methods.inc) call the Provider method with a
//     CallContext and a completion callback; the reactor finishes when the
//     callback runs. No gRPC thread waits on provider I/O.
//  3. Mutations (CP_MUTATION) first go to the operation runner: it records
//     the Operation in the store (deduplicating `request_id`) and answers
//     the client at once. Then it calls the Provider method, which starts the
//     work and reports a MutationProgress: either done (with the result), or
//     not yet (with a `poll_token`).
//  4. While not done, the runner calls PollOperation(poll_token) with backoff
//     until the progress says done, the operation's deadline passes, or it
//     fails. The poll token is persisted, so after a restart polling resumes
//     where it stopped. When the account is observed (service/observer.h)
//     and ObservationTarget(poll_token) names a resource of a listed kind,
//     the runner polls once, then waits on the observer's rounds: after each
//     round it asks ProgressFromObservation(poll_token, listed value or null)
//     and finishes the operation on a done or failed answer; an answer "not
//     done" makes it call PollOperation once (what the list cannot confirm);
//     nullopt waits for the next round. One targeted poll near the deadline.
//     An adapter that implements the hooks judges from a listed value
//     exactly what a poll would (the same function), and answers "confirm"
//     wherever the list carries less than its poll reads.
//  5. The result (or the error) is written to the Operation and published on
//     the Watch stream.
//
// validate_only: the server calls the mutation with CallContext::validate_only
// set. The adapter then runs its local checks (names, sizes, options — the
// checks that need no provider I/O) and answers a finished MutationProgress
// without sending anything; a refusal is the same status the real call
// would give.
//
// Threading: every method may be called from any thread, concurrently. The
// callback may run on any thread (typically a transport thread), exactly
// once, possibly before the method returns; it must not block. Adapters do
// their I/O through non-blocking transports (adapters/common/http) so the
// number of threads does not grow with the number of calls in flight. A
// transport thread never touches the store (base/thread_role.h): the runner
// posts completions to the EventLoop, and adapters keep their own data in the
// ScratchStore, whose durable writes run on the loop.
//
// Errors: absl::Status with the codes of STYLE.md (NOT_FOUND, INVALID_ARGUMENT
// with a field violation attached by base/errors.h, FAILED_PRECONDITION
// for wrong states, UNAVAILABLE for transport problems and 5xx, …). Every
// method an adapter does not override answers UNIMPLEMENTED with the
// CAPABILITY_UNSUPPORTED reason; adapters list what they support as data in
// ProviderInfo::supported_methods, and per account (when it depends on the
// configuration) in Provider::SupportedMethods.
#ifndef CLOUDPLANE_ADAPTERS_PROVIDER_H_
#define CLOUDPLANE_ADAPTERS_PROVIDER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "cloudplane/v1/accounts.pb.h"
#include "cloudplane/v1/autoscaling.pb.h"
#include "cloudplane/v1/billing.pb.h"
#include "cloudplane/v1/compute.pb.h"
#include "cloudplane/v1/firewalls.pb.h"
#include "cloudplane/v1/networks.pb.h"
#include "cloudplane/v1/units.pb.h"
#include "cloudplane/v1/volumes.pb.h"
#include "cloudplane/v1/watch.pb.h"
#include "google/longrunning/operations.pb.h"
#include "google/protobuf/any.pb.h"
#include "google/protobuf/empty.pb.h"

namespace cloudplane {

class EventLoop;
namespace store {
class Store;
}

namespace adapters {

class ScratchStore;

// What the server knows about the call an adapter serves.
struct CallContext {
  // The account id (the `{account}` of `accounts/{account}/...`).
  std::string account;
  // When the caller stops waiting. Adapters pass it on to their transport;
  // InfiniteFuture means no deadline.
  absl::Time deadline = absl::InfiniteFuture();
  // The request's `request_id` (empty when none), for provider-side
  // idempotency where the provider has it.
  std::string request_id;
  // The Operation this call works for (`operations/...`); empty for reads.
  std::string operation;
  // Mutations only: check the request locally and answer without provider
  // I/O (see the file comment).
  bool validate_only = false;
};

// What a mutation or a poll reports.
struct MutationProgress {
  // True when the work is finished; `result` then holds the Result type of
  // the method (api_methods.inc), packed.
  bool done = false;
  google::protobuf::Any result;
  // Adapter data to find the work again in PollOperation: the serialized
  // google.protobuf.Any of the adapter's own versioned token message
  // (adapters/common/kit/poll_token.h). Persisted with the operation and
  // reused after a restart; never holds a secret.
  std::string poll_token;
  // One human-readable line about the current step.
  std::string detail;
  // The provider's handle for the work (job id), when it has one.
  std::string provider_operation;
};

// See Provider::ObservationTarget.
struct ObservedTarget {
  std::string kind;  // "Unit", "Instance": an observed collection's item type
  std::string name;  // "accounts/lab/units/hello.service"
};

template <typename T>
using Callback = absl::AnyInvocable<void(absl::StatusOr<T>) &&>;

// Where the changes an account's Watch stream reports come from.
enum class WatchSource {
  // The adapter publishes every change it commits itself (the sandbox).
  kLocal,
  // The provider pushes its changes (CloudSigma's websocket).
  kPush,
  // The provider has no feed; changes are learnt by reading again.
  kPoll,
};

// "local", "push" or "poll": the value of Provider.watch_source in the API.
absl::string_view WatchSourceName(WatchSource source);

// Data about an adapter, reported through AccountsService.
struct ProviderInfo {
  std::string kind;          // "fleet"; providers/{kind}
  std::string display_name;  // "CoreOS fleet v1"
  std::string protocol;      // "REST/JSON over TCP or a unix socket"
  WatchSource watch_source = WatchSource::kPoll;
  // Full method names (e.g. "cloudplane.v1.UnitsService.CreateUnit") that
  // the adapter implements; all others answer UNIMPLEMENTED.
  std::vector<std::string> supported_methods;
  // Full method names whose request-level `provider_options` the adapter
  // reads (e.g. OpenNebula's StopInstance {"action": "suspend"}). For every
  // other method the server refuses non-empty provider_options with
  // INVALID_ARGUMENT before the adapter is called.
  std::vector<std::string> reads_provider_options;
  // The strict field contract: per supported mutation (full name), the
  // request fields the adapter carries out, as paths in the request message
  // ("instance.machine_type", "instance.labels"); a path covers every field
  // under it. The server refuses a request that sets any other field
  // (INVALID_ARGUMENT, reason FIELD_UNSUPPORTED, BadRequest naming it)
  // before the adapter is called, and publishes the list in
  // Account.capabilities, so a field is carried out or refused, never
  // accepted and dropped. Fields every mutation has are the server's and are
  // never listed: parent, name, request_id, validate_only, update_mask (its
  // paths are checked as set fields), the request's provider_options (see
  // above), the resource's IDENTIFIER name and OUTPUT_ONLY fields. A
  // mutation missing here honours none of its other fields.
  std::map<std::string, std::vector<std::string>> honoured_fields;
};

// Where adapters report resource changes that the server did not cause
// itself (timed state transitions, provider events). Thread-safe.
class ChangeSink {
 public:
  virtual ~ChangeSink() = default;
  // `resource` is the resource after the change (or its last value for
  // DELETED). May be called on any thread, transport threads included.
  virtual void Publish(absl::string_view account,
                       v1::WatchResponse::ChangeType type,
                       absl::string_view resource_name,
                       const google::protobuf::Message& resource,
                       WatchSource source) = 0;
};

// Returns UNIMPLEMENTED with the CAPABILITY_UNSUPPORTED reason for `method`.
absl::Status Unsupported(absl::string_view method);

class Provider {
 public:
  virtual ~Provider() = default;

  virtual const ProviderInfo& Info() const = 0;

  // For a kPush provider: whether its push feed is connected now, so that
  // changes reach the Watch stream without reading again. While it is not,
  // the server's observer (service/observer.h) lists the account's
  // collections instead. Default false. Any thread; must not block.
  virtual bool PushConnected() const { return false; }

  // Full method names this account supports: what the server lets through
  // and reports in Account.capabilities. It may depend on the account's
  // configuration (a dialect, an optional endpoint), so it is asked of the
  // Provider, not of its kind. Default: Info().supported_methods. Any
  // thread; fixed for the Provider's life.
  virtual std::vector<std::string> SupportedMethods() const;

  // Mutations (full names) whose running operations CancelMutation can stop
  // or undo at the provider; Account.capabilities reports them as
  // `cancellable`. Default: none. Any thread; fixed for the Provider's life.
  virtual std::vector<std::string> CancellableMethods() const;

  // The request fields this account carries out for mutation `method` (full
  // name), as ProviderInfo::honoured_fields describes them; it may depend on
  // the account's configuration. Default: Info().honoured_fields[method].
  // Any thread; fixed for the Provider's life.
  virtual std::vector<std::string> HonouredFields(const std::string& method) const;

  // Stops or undoes at the provider the work of a running mutation `method`
  // (full name) whose last reported poll token is `poll_token` (a create:
  // delete what it made; a start or stop: the opposite action). Called only
  // for CancellableMethods. Answers, like a mutation, a MutationProgress
  // whose `detail` says what was done at the provider (done=false: the undo
  // was accepted and goes on there); a status when the provider refused or
  // could not be asked. `ctx.operation` is the cancelled operation. Default:
  // FAILED_PRECONDITION with reason CANCEL_UNSUPPORTED.
  virtual void CancelMutation(const CallContext& ctx, const std::string& method,
                              const std::string& poll_token, Callback<MutationProgress> done);

  // Continues a mutation that reported done=false. `poll_token` is the last
  // one the adapter reported for this operation.
  virtual void PollOperation(const CallContext& ctx,
                             const std::string& poll_token,
                             Callback<MutationProgress> done);

  // Operations judged from the server's observer (service/observer.h), so N
  // pending operations on an account cost one list per collection per
  // interval instead of N polls. Both methods are pure: no I/O, no blocking,
  // any thread.
  //
  // The listed resource whose value tells when the work behind `poll_token`
  // is done: its kind (message name, "Unit") and resource name. nullopt (the
  // default): a list cannot tell; the runner keeps calling PollOperation.
  virtual std::optional<ObservedTarget> ObservationTarget(const std::string& poll_token) const {
    return std::nullopt;
  }

  // Judges the work behind `poll_token` from that resource as listed by a
  // round that started after the work was submitted; `observed` is null when
  // the round's complete list did not hold it. Answers:
  //   nullopt                      not yet: wait for the next round;
  //   a done MutationProgress      done at the provider, with the result
  //                                PollOperation would give;
  //   an error                     the work failed, as PollOperation would
  //                                fail it (never an ambiguous code);
  //   a MutationProgress not done  the list cannot confirm it (fleet: the
  //                                systemd state of a launched unit is not in
  //                                the Unit; a resource gone missing): the
  //                                runner calls PollOperation once now.
  // Default nullopt.
  virtual std::optional<absl::StatusOr<MutationProgress>> ProgressFromObservation(
      const std::string& poll_token, const google::protobuf::Message* observed) const {
    return std::nullopt;
  }

  // Work the provider tracks itself (jobs), including work started outside
  // cloudplane, as read-only Operations named
  // `accounts/{account}/providerOperations/{id}`; served through
  // google.longrunning.Operations (GetOperation, and ListOperations with
  // name `accounts/{account}/providerOperations`). UNIMPLEMENTED unless the
  // adapter has provider jobs.
  virtual void ListProviderOperations(const CallContext& ctx, int page_size,
                                      const std::string& page_token,
                                      Callback<google::longrunning::ListOperationsResponse> done);
  virtual void GetProviderOperation(const CallContext& ctx, const std::string& id,
                                    Callback<google::longrunning::Operation> done);

#define CP_READ(Service, Method, Request, Response)                    \
  virtual void Method(const CallContext& ctx, const v1::Request& request, \
                      Callback<v1::Response> done);
#define CP_MUTATION(Service, Method, Request, Result)                  \
  virtual void Method(const CallContext& ctx, const v1::Request& request, \
                      Callback<MutationProgress> done);
#include "adapters/api_methods.inc"
#undef CP_READ
#undef CP_MUTATION
};

// How the adapter kit treats one account's provider endpoint
// (kit::GuardedTransport, which kit::MakeHttpClient puts under every remote
// adapter's HttpClient); configured per account (config.proto
// ProviderLimits). The values here are the defaults of unset fields.
struct ProviderLimits {
  // Requests in flight to the endpoint at once; more wait, in order, until
  // their deadline. 0: no limit.
  int max_in_flight = 64;
  // Token bucket: sustained requests per second, and how many may go at once
  // after a quiet spell. 0: no rate limit. burst 0: max(1, ceil(rate)).
  double requests_per_second = 0;
  int burst = 0;
  // Attempts of one idempotent request, the first included; 1: no retries.
  // Non-idempotent requests always get exactly one.
  int max_attempts = 5;
  // Backoff before retry n (full jitter): uniformly random in
  // [0, min(max_backoff, initial_backoff * 2^(n-1))].
  absl::Duration initial_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(5);
  // Longest wait for one attempt of an idempotent request before it is
  // abandoned and retried (within the request's deadline). Zero: none.
  absl::Duration attempt_timeout = absl::Seconds(5);
  // Consecutive failed attempts (connection errors, attempt timeouts, 5xx)
  // that open the circuit breaker; 0: no breaker. While open, requests fail
  // at once with UNAVAILABLE; after `breaker_cooldown` one probe is let
  // through, and its success closes the breaker.
  int breaker_failures = 10;
  absl::Duration breaker_cooldown = absl::Seconds(5);
};

// What an adapter factory gets to build the Provider of one account.
struct AccountSetup {
  std::string account;   // account id
  std::string endpoint;  // as configured
  std::string secret;    // credentials, already read; never log it
  absl::flat_hash_map<std::string, std::string> options;
  bool verify_tls = true;
  std::string ca_file;
  // Shared server facilities; they outlive every Provider.
  // The adapter's own durable data for this account (adapters/scratch_store.h).
  ScratchStore* scratch = nullptr;
  EventLoop* loop = nullptr;
  ChangeSink* changes = nullptr;
  // The whole server store, for the embedded sandbox only: its cloud lives in
  // the server's database. Remote adapters use `scratch`.
  store::Store* store = nullptr;
  // Limits, retries and the circuit breaker for the account's provider
  // requests. Retries and the rate limit need `loop` (for their timers).
  ProviderLimits limits;
  // How long the server keeps a finished operation
  // (ServerConfig.operation_retention_seconds; the default is that field's).
  // An adapter that keeps per-operation records of its own (the sandbox's
  // journal) may drop one once it is this old and its operation is no
  // longer unfinished: the server re-drives only unfinished operations.
  absl::Duration operation_retention = absl::Hours(7 * 24);
};

using ProviderFactory = absl::AnyInvocable<absl::StatusOr<std::unique_ptr<Provider>>(
    const AccountSetup& setup) const>;

// Provider kinds by name. A plain value: main() fills one with
// RegisterBuiltinAdapters(); tests build their own.
class AdapterRegistry {
 public:
  // ALREADY_EXISTS when `kind` is registered already.
  absl::Status Register(ProviderInfo info, ProviderFactory factory);
  // NOT_FOUND for an unknown kind; INVALID_ARGUMENT (naming the option or
  // the endpoint) when the factory rejects the setup.
  absl::StatusOr<std::unique_ptr<Provider>> Create(
      absl::string_view kind, const AccountSetup& setup) const;
  // Every registered kind, ordered by name.
  std::vector<const ProviderInfo*> List() const;
  const ProviderInfo* Find(absl::string_view kind) const;

 private:
  struct Entry {
    ProviderInfo info;
    ProviderFactory factory;
  };
  absl::flat_hash_map<std::string, Entry> entries_;
};

// Full method name as gRPC spells it in reflection and capability lists:
// "cloudplane.v1.<Service>.<Method>".
std::string FullMethodName(absl::string_view service, absl::string_view method);

// Every adapter-facing method of the API, in api_methods.inc order.
const std::vector<std::string>& AllAdapterMethods();

}  // namespace adapters
}  // namespace cloudplane

#endif  // CLOUDPLANE_ADAPTERS_PROVIDER_H_
