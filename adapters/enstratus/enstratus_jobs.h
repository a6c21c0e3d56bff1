// Mutations that DCM runs as jobs (§4-5). Internal to adapters/enstratus.
//
// The state machine, per JobToken (enstratus_tokens.proto):
//   StartJob   sends the mutation's first request. 202 {"jobs":[...]}: the
//              progress carries provider_operation = the job id and a token
//              in phase JOB. Any other answer goes to the caller's
//              OtherAnswer (an error fails the call; some requests DCM may
//              finish at once).
//   JOB        follows admin/Job/<job_id>: RUNNING polls again; ERROR fails
//              with UNKNOWN, reason PROVIDER_JOB_FAILED and DCM's message;
//              COMPLETE of a create takes the new id from the job's message,
//              a delete is done, everything else goes on to
//   CONVERGE   reads the resource until it is in the state the kind asks
//              for (a server RUNNING or STOPPED, a volume ATTACHED or
//              AVAILABLE; a firewall or rule at once): its message is the
//              result. A server or volume that turns to a failure state
//              instead is ABORTED, reason PROVIDER_STATE_CHANGED.
// A create reserves the caller's alias first (ClaimAlias), records the job
// and then the DCM id in it, and releases it when DCM refuses the request or
// the job fails; a delete releases it when done (enstratus_aliases.h).
//
// Creates are sent at most once per Operation (StartCreate). DCM has no
// idempotency key, and the runner calls a create again with the same
// CallContext::operation after a crash or an ambiguous answer (a reset, a
// timeout, a 5xx, a 202 whose body was lost: kit::IsAmbiguous). So a create
//   1. claims its alias (a job or DCM id recorded there is resumed);
//   2. when a create mark of its Operation exists, the earlier request may
//      have reached DCM: a job recorded in the mark is resumed; otherwise it
//      looks for its own work (FindOwnWork): first DCM's jobs, then the
//      resources. A resource whose description carries the Operation's tag
//      (TaggedDescription) is adopted (phase CONVERGE; the alias gets its
//      id). While a job that is not finished names the resource's name (DCM
//      describes a launch as "Launch Server <name>", §5) the work may be this
//      Operation's and not visible yet: UNAVAILABLE with reason
//      RESOURCE_NOT_READY, and the runner calls again later. Only when there
//      is neither is the create sent again;
//   3. writes the mark and waits until it is durable, then sends the create;
//      a 202 records its job in the mark and the alias. A refusal (4xx)
//      drops the mark and frees the alias; an ambiguous answer keeps both.
// The mark is dropped at the Operation's first poll: once the runner polls,
// it has stored a progress and never calls the create again.
#ifndef CLOUDPLANE_ADAPTERS_ENSTRATUS_ENSTRATUS_JOBS_H_
#define CLOUDPLANE_ADAPTERS_ENSTRATUS_ENSTRATUS_JOBS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "adapters/common/http/http_client.h"
#include "adapters/enstratus/enstratus_provider.h"
#include "adapters/enstratus/enstratus_tokens.pb.h"
#include "adapters/provider.h"

namespace cloudplane::adapters::enstratus {

// JobToken.version of the tokens made here.
inline constexpr uint32_t kJobTokenVersion = 1;

// The call a step of a job-backed mutation works for.
struct JobCall {
  AccountPtr account;
  absl::Time deadline;
  // CallContext::operation: kept in alias records, named in logs.
  std::string operation;
};
JobCall CallOf(const AccountPtr& account, const CallContext& ctx);

// A token in phase JOB, before the job is known.
JobToken NewJobToken(JobToken::Kind kind, int64_t dcm_id, absl::string_view alias);

// The progress that polls `token` again; provider_operation is its job.
MutationProgress PendingJob(const JobToken& token, std::string detail);

// Claims `token.alias` for `call.operation` before a create (StartCreate's
// step 1). nullopt: go on. A progress: this operation is re-driven and its
// job (or DCM id) is recorded, report it. ALREADY_EXISTS when another
// operation holds the alias; the ScratchStore's refusal.
absl::StatusOr<std::optional<MutationProgress>> ClaimAlias(const JobCall& call,
                                                           const JobToken& token,
                                                           absl::string_view what);

// Frees the alias a create claimed when the create ends before a job.
void AbandonClaim(const JobCall& call, const JobToken& token);

// What StartJob does with a first answer other than 202 + job.
using OtherAnswer =
    absl::AnyInvocable<void(absl::StatusOr<http::HttpResponse>, Callback<MutationProgress>)>;

// Errors fail; a 2xx that is not 202 is PROVIDER_MALFORMED_RESPONSE.
OtherAnswer Unexpected(std::string context);
// A delete that DCM may finish at once (204, §4): done, the alias goes; a
// 404 is done too with `allow_missing`.
OtherAnswer SyncDelete(JobCall call, std::string context, bool allow_missing, JobToken token);
// A PUT that DCM may finish at once (204, §4): errors fail, any other 2xx
// goes on to CONVERGE.
OtherAnswer ThenConverge(JobCall call, std::string context, JobToken token);

// The first request of a mutation.
struct JobRequest {
  std::string method;
  std::string rel_path;
  std::string query;
  std::string body;
  std::string context;
};
void StartJob(JobCall call, JobRequest request, JobToken token, OtherAnswer other,
              Callback<MutationProgress> done);

// How a re-drive recognises the resource a create makes: the list it is in
// (`GET <list_path>`, items `{"<list_key>":[{"<id_key>":N,"description":…}]}`)
// and the DCM name the create gives it.
struct OwnWork {
  std::string list_path;
  const char* list_key;
  const char* id_key;
  std::string name;
};

// Makes the first request of a create when it is time to send it (a launch
// looks up its product first); an error ends the create (nothing was sent).
using PrepareCreate = absl::AnyInvocable<void(Callback<JobRequest>)>;

// A create of kind LAUNCH, VOLUME_CREATE or FIREWALL_CREATE, as the file
// comment describes; `what` names the resource in ALREADY_EXISTS. DCM's
// answer other than 202 is Unexpected().
void StartCreate(JobCall call, JobToken token, absl::string_view what, OwnWork own,
                 PrepareCreate prepare, Callback<MutationProgress> done);

// Takes `token` one step further (PollOperation). DATA_LOSS with reason
// OPERATION_STATE_UNREADABLE for a token of an unknown kind or phase. The
// create mark of `call.operation` goes (see the file comment).
void Advance(JobCall call, JobToken token, Callback<MutationProgress> done);

}  // namespace cloudplane::adapters::enstratus

#endif  // CLOUDPLANE_ADAPTERS_ENSTRATUS_ENSTRATUS_JOBS_H_
