#include "adapters/enstratus/enstratus_jobs.h"

#include <functional>
#include <iostream>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "adapters/common/kit/poll_token.h"
#include "adapters/common/kit/progress.h"
#include "adapters/enstratus/enstratus_send.h"
#include "base/errors.h"
#include "base/reasons.h"
#include "google/protobuf/empty.pb.h"

namespace cloudplane::adapters::enstratus {
namespace {

using http::HttpResponse;

// What the CONVERGE phase reads.
enum class Converge { kNothing, kServer, kVolume, kFirewall, kRule, kNetwork };

// Everything the state machine needs to know about a kind of job, in one
// table instead of comparisons spread over the steps.
struct KindTraits {
  // Where `JobToken.alias` lives; nullopt: the token has no alias to keep
  // or free (a rule's alias only names its firewall in results).
  std::optional<AliasKind> alias_kind;
  // The job makes the resource: the alias is reserved before and released
  // when the job fails, and the job's message is the new DCM id (§5).
  bool creates = false;
  // COMPLETE ends the work (Empty); the alias goes.
  bool deletes = false;
  Converge converge = Converge::kNothing;
  v1::Instance::State server_target = v1::Instance::RUNNING;
  v1::Volume::State volume_target = v1::Volume::AVAILABLE;
};

const KindTraits* TraitsOf(JobToken::Kind kind) {
  using K = AliasKind;
  static const KindTraits kLaunch{K::kInstance, true, false, Converge::kServer};
  static const KindTraits kStart{K::kInstance, false, false, Converge::kServer};
  static const KindTraits kStop{K::kInstance, false, false, Converge::kServer,
                                v1::Instance::STOPPED};
  static const KindTraits kTerminate{K::kInstance, false, true};
  static const KindTraits kFirewallCreate{K::kFirewall, true, false, Converge::kFirewall};
  static const KindTraits kFirewallDelete{K::kFirewall, false, true};
  static const KindTraits kRuleCreate{K::kFirewall, false, false, Converge::kRule};
  static const KindTraits kRuleDelete{std::nullopt, false, true};
  static const KindTraits kVolumeCreate{K::kVolume, true, false, Converge::kVolume};
  static const KindTraits kVolumeAttach{K::kVolume, false, false, Converge::kVolume,
                                        v1::Instance::RUNNING, v1::Volume::ATTACHED};
  static const KindTraits kVolumeDetach{K::kVolume, false, false, Converge::kVolume};
  static const KindTraits kVolumeDelete{K::kVolume, false, true};
  // Networks are named by DCM id only: no alias to keep.
  static const KindTraits kNetworkCreate{std::nullopt, true, false, Converge::kNetwork};
  static const KindTraits kNetworkDelete{std::nullopt, false, true};
  switch (kind) {
    case JobToken::LAUNCH:
      return &kLaunch;
    case JobToken::START:
      return &kStart;
    case JobToken::STOP:
      return &kStop;
    case JobToken::TERMINATE:
      return &kTerminate;
    case JobToken::FIREWALL_CREATE:
      return &kFirewallCreate;
    case JobToken::FIREWALL_DELETE:
      return &kFirewallDelete;
    case JobToken::RULE_CREATE:
      return &kRuleCreate;
    case JobToken::RULE_DELETE:
      return &kRuleDelete;
    case JobToken::VOLUME_CREATE:
      return &kVolumeCreate;
    case JobToken::VOLUME_ATTACH:
      return &kVolumeAttach;
    case JobToken::VOLUME_DETACH:
      return &kVolumeDetach;
    case JobToken::VOLUME_DELETE:
      return &kVolumeDelete;
    case JobToken::NETWORK_CREATE:
      return &kNetworkCreate;
    case JobToken::NETWORK_DELETE:
      return &kNetworkDelete;
    default:
      return nullptr;
  }
}

// Frees the token's alias; a refusal fails the step that needed the alias
// gone.
absl::Status ReleaseAlias(const JobCall& call, const KindTraits& traits, const JobToken& t) {
  if (!traits.alias_kind.has_value()) return absl::OkStatus();
  return call.account->aliases->Release(*traits.alias_kind, t.alias(), call.operation);
}

// Frees the alias of a create that failed anyway: a refusal is logged, the
// call reports its own failure.
void ReleaseAfterFailure(const JobCall& call, const KindTraits& traits, const JobToken& t) {
  if (!traits.creates) return;
  if (absl::Status s = ReleaseAlias(call, traits, t); !s.ok()) {
    std::cerr << "enstratus " << call.account->id << ": cannot release alias " << t.alias()
              << " of " << call.operation << ": " << s << "\n";
  }
}

std::string JobDetail(const Job& job) {
  return absl::StrCat("enStratus job ", job.id, " ", job.status,
                      job.description.empty() ? "" : ": ", job.description);
}

absl::Status StateChanged(absl::string_view what, int64_t id, absl::string_view became,
                          absl::string_view wanted, const char* id_key) {
  return WithErrorInfo(absl::AbortedError(absl::StrCat(what, " ", id, " became ", became,
                                                       " while waiting for ", wanted)),
                       reasons::kProviderStateChanged, {{id_key, absl::StrCat(id)}});
}

// CONVERGE of a server: read it until it reaches the target state.
void WatchServer(const JobCall& call, const KindTraits& traits, JobToken t,
                 Callback<MutationProgress> done) {
  const Account& a = *call.account;
  Aliases aliases;
  // Firewall aliases, so the result names firewalls as List does.
  if (absl::StatusOr<Aliases> all = a.aliases->All(); all.ok()) {
    aliases.firewalls = std::move(all->firewalls);
  }
  if (!t.alias().empty()) aliases.instances[t.dcm_id()] = t.alias();
  const v1::Instance::State want = traits.server_target;
  GetOne<v1::Instance>(
      a, call.deadline, absl::StrCat("infrastructure/Server/", t.dcm_id()),
      absl::StrCat("GET server ", t.dcm_id()), absl::StrCat(t.dcm_id()),
      [account_id = a.id, aliases](absl::string_view body) {
        return ParseServers(body, account_id, aliases);
      },
      [t, want, done = std::move(done)](absl::StatusOr<v1::Instance> server) mutable {
        if (!server.ok()) return std::move(done)(server.status());
        if (server->state() == want) return std::move(done)(kit::Finished(*server));
        if (server->state() == v1::Instance::TERMINATED ||
            server->state() == v1::Instance::TERMINATING ||
            server->state() == v1::Instance::ERROR) {
          return std::move(done)(StateChanged("server", t.dcm_id(), server->provider_state(),
                                              v1::Instance::State_Name(want), "serverId"));
        }
        t.set_job_id(0);
        std::move(done)(PendingJob(t, absl::StrFormat("waiting for server %d to be %s (now %s)",
                                                      t.dcm_id(), v1::Instance::State_Name(want),
                                                      server->provider_state())));
      });
}

// CONVERGE of volume work: read the volume until it is in the target state.
void WatchVolume(const JobCall& call, const KindTraits& traits, JobToken t,
                 Callback<MutationProgress> done) {
  const Account& a = *call.account;
  Aliases aliases;
  // Instance aliases too, so attached_to names servers as List does.
  if (absl::StatusOr<Aliases> all = a.aliases->All(); all.ok()) aliases = *std::move(all);
  if (!t.alias().empty()) aliases.volumes[t.dcm_id()] = t.alias();
  const v1::Volume::State want = traits.volume_target;
  GetOne<v1::Volume>(
      a, call.deadline, absl::StrCat("infrastructure/Volume/", t.dcm_id()),
      absl::StrCat("GET volume ", t.dcm_id()), absl::StrCat(t.dcm_id()),
      [account_id = a.id, aliases](absl::string_view body) {
        return ParseVolumes(body, account_id, aliases);
      },
      [t, want, done = std::move(done)](absl::StatusOr<v1::Volume> volume) mutable {
        if (!volume.ok()) return std::move(done)(volume.status());
        if (volume->state() == want) return std::move(done)(kit::Finished(*volume));
        if (volume->state() == v1::Volume::ERROR || volume->state() == v1::Volume::DELETING) {
          return std::move(done)(StateChanged("volume", t.dcm_id(), volume->provider_state(),
                                              v1::Volume::State_Name(want), "volumeId"));
        }
        t.set_job_id(0);
        std::move(done)(PendingJob(t, absl::StrFormat("waiting for volume %d to be %s (now %s)",
                                                      t.dcm_id(), v1::Volume::State_Name(want),
                                                      v1::Volume::State_Name(volume->state()))));
      });
}

// CONVERGE of a firewall or a rule: DCM has it once the job is done.
template <typename T>
void ReadOnce(const JobCall& call, std::string rel_path, std::string context, int64_t id,
              const JobToken& t, std::function<absl::StatusOr<std::vector<T>>(
                                     absl::string_view, absl::string_view, const Aliases&)>
                                     parse,
              Callback<MutationProgress> done) {
  Aliases aliases;
  if (!t.alias().empty()) aliases.firewalls[t.dcm_id()] = t.alias();
  GetOne<T>(
      *call.account, call.deadline, rel_path, std::move(context), absl::StrCat(id),
      [account_id = call.account->id, aliases, parse = std::move(parse)](absl::string_view body) {
        return parse(body, account_id, aliases);
      },
      [done = std::move(done)](absl::StatusOr<T> item) mutable {
        if (!item.ok()) return std::move(done)(item.status());
        std::move(done)(kit::Finished(*item));
      });
}

void ConvergeStep(const JobCall& call, const KindTraits& traits, JobToken t,
              Callback<MutationProgress> done) {
  switch (traits.converge) {
    case Converge::kServer:
      return WatchServer(call, traits, std::move(t), std::move(done));
    case Converge::kVolume:
      return WatchVolume(call, traits, std::move(t), std::move(done));
    case Converge::kFirewall:
      return ReadOnce<v1::Firewall>(call, absl::StrCat("network/Firewall/", t.dcm_id()),
                                    absl::StrCat("GET firewall ", t.dcm_id()), t.dcm_id(), t,
                                    ParseFirewalls, std::move(done));
    case Converge::kRule:
      return ReadOnce<v1::FirewallRule>(call, absl::StrCat("network/FirewallRule/", t.rule_id()),
                                        absl::StrCat("GET firewall rule ", t.rule_id()),
                                        t.rule_id(), t, ParseFirewallRules, std::move(done));
    case Converge::kNetwork:
      return ReadOnce<v1::Network>(
          call, absl::StrCat("network/Network/", t.dcm_id()),
          absl::StrCat("GET network ", t.dcm_id()), t.dcm_id(), t,
          [](absl::string_view body, absl::string_view account, const Aliases&) {
            return ParseNetworks(body, account);
          },
          std::move(done));
    case Converge::kNothing:
      break;
  }
  std::move(done)(kit::Finished(google::protobuf::Empty()));
}

// JOB: follow admin/Job/<id> (§5).
void FollowJob(JobCall call, const KindTraits& traits, JobToken t,
               Callback<MutationProgress> done) {
  const Account& a = *call.account;
  GetOne<Job>(
      a, call.deadline, absl::StrCat("admin/Job/", t.job_id()),
      absl::StrCat("GET job ", t.job_id()), absl::StrCat(t.job_id()),
      [](absl::string_view body) { return ParseJobs(body); },
      [call, traits = &traits, t, done = std::move(done)](absl::StatusOr<Job> job) mutable {
        if (!job.ok()) return std::move(done)(job.status());
        const std::string job_id = absl::StrCat(t.job_id());
        if (job->status == "ERROR") {
          ReleaseAfterFailure(call, *traits, t);
          return std::move(done)(WithErrorInfo(
              absl::UnknownError(absl::StrCat("enStratus job ", job_id, " (", job->description,
                                              ") failed: ", job->message)),
              reasons::kProviderJobFailed,
              {{"jobId", job_id}, {"providerMessage", job->message}}));
        }
        if (job->status != "COMPLETE") return std::move(done)(PendingJob(t, JobDetail(*job)));
        if (traits->creates || traits->converge == Converge::kRule) {
          // The new resource's id is the job's message (§5).
          std::optional<int64_t> id = ParseDcmId(job->message);
          if (!id.has_value()) {
            return std::move(done)(WithErrorInfo(
                absl::InternalError(
                    absl::StrCat("enStratus job ", job_id, " completed without a resource id")),
                reasons::kProviderMalformedResponse, {{"jobId", job_id}}));
          }
          if (traits->converge == Converge::kRule) {
            t.set_rule_id(*id);  // dcm_id keeps the firewall
          } else {
            t.set_dcm_id(*id);
            if (!traits->alias_kind.has_value()) {
              // nothing to record: the resource is named by its DCM id
            } else if (absl::Status s = call.account->aliases->Update(
                           *traits->alias_kind, t.alias(), t.job_id(), *id, call.operation);
                       !s.ok()) {
              return std::move(done)(s);
            }
          }
        }
        if (traits->deletes) {
          if (absl::Status s = ReleaseAlias(call, *traits, t); !s.ok()) return std::move(done)(s);
          return std::move(done)(kit::Finished(google::protobuf::Empty()));
        }
        t.set_phase(JobToken::CONVERGE);
        ConvergeStep(call, *traits, std::move(t), std::move(done));
      });
}

}  // namespace

JobCall CallOf(const AccountPtr& account, const CallContext& ctx) {
  return JobCall{account, ctx.deadline, ctx.operation};
}

JobToken NewJobToken(JobToken::Kind kind, int64_t dcm_id, absl::string_view alias) {
  JobToken t;
  t.set_version(kJobTokenVersion);
  t.set_kind(kind);
  t.set_phase(JobToken::JOB);
  t.set_dcm_id(dcm_id);
  t.set_alias(std::string(alias));
  return t;
}

MutationProgress PendingJob(const JobToken& token, std::string detail) {
  return kit::Pending(kit::PackToken(token), std::move(detail),
                      token.job_id() > 0 ? absl::StrCat(token.job_id()) : "");
}

absl::StatusOr<std::optional<MutationProgress>> ClaimAlias(const JobCall& call,
                                                           const JobToken& token,
                                                           absl::string_view what) {
  const KindTraits* traits = TraitsOf(token.kind());
  if (token.alias().empty() || traits == nullptr || !traits->alias_kind.has_value()) {
    return std::nullopt;
  }
  const AliasBook& book = *call.account->aliases;
  absl::StatusOr<std::optional<AliasRecord>> existing = book.Find(*traits->alias_kind,
                                                                  token.alias());
  if (!existing.ok()) return existing.status();
  if (!existing->has_value()) {
    AliasRecord reserved;
    reserved.set_operation(call.operation);
    if (absl::Status s = book.Put(*traits->alias_kind, token.alias(), reserved, call.operation);
        !s.ok()) {
      return s;
    }
    return std::nullopt;
  }
  const AliasRecord& record = **existing;
  if (call.operation.empty() || record.operation() != call.operation) {
    return WithErrorInfo(
        absl::AlreadyExistsError(absl::StrCat(what, " ", token.alias(), " already exists")),
        reasons::kResourceAlreadyExists, {{"resource", token.alias()}});
  }
  // Re-driven after a restart: resume what the first drive started.
  JobToken resumed = token;
  resumed.set_job_id(record.job_id());
  if (record.dcm_id() > 0) {
    resumed.set_phase(JobToken::CONVERGE);
    resumed.set_dcm_id(record.dcm_id());
    return PendingJob(resumed, "resuming after a restart");
  }
  if (record.job_id() > 0) return PendingJob(resumed, "resuming after a restart");
  // No job was recorded: the POST may or may not have reached DCM, which has
  // no idempotency key. StartCreate's mark tells, and it looks first.
  return std::nullopt;
}

namespace {

// What FindOwnWork saw at DCM.
struct OwnWorkSeen {
  // The resource whose description carries the Operation's tag.
  std::optional<int64_t> dcm_id;
  // A job that is not finished and names the resource's name.
  std::optional<Job> running;
};

// A job whose description ends with `name` and that has not finished.
bool RunsFor(const Job& job, absl::string_view name) {
  if (job.status == "COMPLETE" || job.status == "ERROR") return false;
  return job.description == name || absl::EndsWith(job.description, absl::StrCat(" ", name));
}

// The jobs first, then the resources: a job that completes in between has
// made its resource before it says COMPLETE (§5), so the second read shows it.
void FindOwnWork(const JobCall& call, const OwnWork& own, Callback<OwnWorkSeen> done) {
  const Account& a = *call.account;
  Send(a, call.deadline, "GET", "admin/Job", "", "", "GET jobs",
       [call, own, done = std::move(done)](absl::StatusOr<HttpResponse> r) mutable {
         if (absl::Status s = AnswerStatus(r, "GET jobs"); !s.ok()) return std::move(done)(s);
         absl::StatusOr<std::vector<Job>> jobs = ParseJobs(r->body);
         if (!jobs.ok()) return std::move(done)(jobs.status());
         OwnWorkSeen seen;
         for (Job& job : *jobs) {
           if (RunsFor(job, own.name)) seen.running = std::move(job);
         }
         const std::string context = absl::StrCat("GET ", own.list_key);
         Send(*call.account, call.deadline, "GET", own.list_path, "", "", context,
              [call, own, context, seen = std::move(seen),
               done = std::move(done)](absl::StatusOr<HttpResponse> r) mutable {
                if (absl::Status s = AnswerStatus(r, context); !s.ok()) {
                  return std::move(done)(s);
                }
                absl::StatusOr<std::vector<TaggedItem>> items =
                    ParseTaggedItems(r->body, own.list_key, own.id_key);
                if (!items.ok()) return std::move(done)(items.status());
                for (const TaggedItem& item : *items) {
                  if (item.operation == call.operation) seen.dcm_id = item.id;
                }
                std::move(done)(std::move(seen));
              });
       });
}

// Step 3 of StartCreate: the mark, durably, then the request.
void SendCreate(JobCall call, JobToken token, PrepareCreate prepare,
                Callback<MutationProgress> done) {
  prepare([call, token, done = std::move(done)](absl::StatusOr<JobRequest> request) mutable {
    if (!request.ok()) {
      AbandonClaim(call, token);
      return std::move(done)(request.status());
    }
    auto send = [call, token, request = *std::move(request),
                 done = std::move(done)](absl::Status marked) mutable {
      if (!marked.ok()) {
        // Nothing was sent: the create fails before DCM hears of it.
        AbandonClaim(call, token);
        return std::move(done)(marked);
      }
      const std::string context = request.context;
      StartJob(call, std::move(request), token, Unexpected(context), std::move(done));
    };
    if (call.operation.empty()) return send(absl::OkStatus());
    call.account->aliases->PutMarkDurably(call.operation, CreateMark(), std::move(send));
  });
}

}  // namespace

void StartCreate(JobCall call, JobToken token, absl::string_view what, OwnWork own,
                 PrepareCreate prepare, Callback<MutationProgress> done) {
  absl::StatusOr<std::optional<MutationProgress>> resumed = ClaimAlias(call, token, what);
  if (!resumed.ok()) return std::move(done)(resumed.status());
  if (resumed->has_value()) return std::move(done)(**std::move(resumed));
  absl::StatusOr<std::optional<CreateMark>> mark = call.account->aliases->FindMark(call.operation);
  if (!mark.ok()) return std::move(done)(mark.status());
  if (!mark->has_value()) {
    return SendCreate(std::move(call), std::move(token), std::move(prepare), std::move(done));
  }
  if ((*mark)->job_id() > 0) {
    token.set_job_id((*mark)->job_id());
    return std::move(done)(PendingJob(token, "resuming the job this operation started"));
  }
  // The earlier request may have reached DCM, its answer lost.
  FindOwnWork(
      call, own,
      [call, token, what = std::string(what), name = own.name, prepare = std::move(prepare),
       done = std::move(done)](absl::StatusOr<OwnWorkSeen> seen) mutable {
        if (!seen.ok()) return std::move(done)(seen.status());
        const KindTraits* traits = TraitsOf(token.kind());
        if (seen->dcm_id.has_value()) {
          token.set_phase(JobToken::CONVERGE);
          token.set_dcm_id(*seen->dcm_id);
          token.set_job_id(0);
          if (traits != nullptr && traits->alias_kind.has_value()) {
            if (absl::Status s = call.account->aliases->Update(
                    *traits->alias_kind, token.alias(), 0, *seen->dcm_id, call.operation);
                !s.ok()) {
              return std::move(done)(s);
            }
          }
          return std::move(done)(PendingJob(
              token, absl::StrCat("found ", what, " ", *seen->dcm_id,
                                  " that an earlier request of this operation made")));
        }
        if (seen->running.has_value()) {
          return std::move(done)(WithErrorInfo(
              absl::UnavailableError(absl::StrCat(
                  "enStratus job ", seen->running->id, " (", seen->running->description,
                  ") may be this operation's earlier request and has not finished; the ", what,
                  " is looked for again before anything is sent")),
              reasons::kResourceNotReady,
              {{"jobId", absl::StrCat(seen->running->id)}, {"resource", name}}));
        }
        SendCreate(std::move(call), std::move(token), std::move(prepare), std::move(done));
      });
}

void AbandonClaim(const JobCall& call, const JobToken& token) {
  if (const KindTraits* traits = TraitsOf(token.kind())) {
    ReleaseAfterFailure(call, *traits, token);
  }
}

OtherAnswer Unexpected(std::string context) {
  return [context = std::move(context)](absl::StatusOr<HttpResponse> r,
                                        Callback<MutationProgress> done) {
    if (absl::Status s = AnswerStatus(r, context); !s.ok()) return std::move(done)(s);
    std::move(done)(WithErrorInfo(
        absl::InternalError(absl::StrCat(context, ": enStratus answered HTTP ", r->status,
                                         " where a job (202) was expected")),
        reasons::kProviderMalformedResponse, {{"httpStatus", absl::StrCat(r->status)}}));
  };
}

OtherAnswer SyncDelete(JobCall call, std::string context, bool allow_missing, JobToken token) {
  return [call = std::move(call), context = std::move(context), allow_missing,
          token = std::move(token)](absl::StatusOr<HttpResponse> r,
                                    Callback<MutationProgress> done) {
    if (!r.ok()) return std::move(done)(r.status());
    absl::Status s = StatusFromResponse(r->status, r->body, context);
    if (!s.ok() && !(allow_missing && r->status == 404)) return std::move(done)(s);
    if (const KindTraits* traits = TraitsOf(token.kind())) {
      if (absl::Status released = ReleaseAlias(call, *traits, token); !released.ok()) {
        return std::move(done)(released);
      }
    }
    std::move(done)(kit::Finished(google::protobuf::Empty()));
  };
}

OtherAnswer ThenConverge(JobCall call, std::string context, JobToken token) {
  return [call = std::move(call), context = std::move(context), token = std::move(token)](
             absl::StatusOr<HttpResponse> r, Callback<MutationProgress> done) mutable {
    if (absl::Status s = AnswerStatus(r, context); !s.ok()) return std::move(done)(s);
    token.set_phase(JobToken::CONVERGE);
    Advance(std::move(call), std::move(token), std::move(done));
  };
}

void StartJob(JobCall call, JobRequest request, JobToken token, OtherAnswer other,
              Callback<MutationProgress> done) {
  const Account& a = *call.account;
  Send(a, call.deadline, request.method, request.rel_path, request.query,
       std::move(request.body), request.context,
       [call, token = std::move(token), other = std::move(other),
        done = std::move(done)](absl::StatusOr<HttpResponse> r) mutable {
         const KindTraits* traits = TraitsOf(token.kind());
         const bool creates = traits != nullptr && traits->creates;
         if (r.ok() && r->status == 202) {
           // A 202 whose job cannot be read was still accepted: the claim
           // and the mark stay for the re-drive to find the work.
           absl::StatusOr<Job> job = ParseFirstJob(r->body);
           if (!job.ok()) return std::move(done)(job.status());
           token.set_job_id(job->id);
           if (creates) {
             CreateMark mark;
             mark.set_job_id(job->id);
             call.account->aliases->UpdateMark(call.operation, mark);
             if (!traits->alias_kind.has_value()) {
               // named by DCM id: no alias records the job
             } else if (absl::Status s = call.account->aliases->Update(
                            *traits->alias_kind, token.alias(), job->id, 0, call.operation);
                        !s.ok()) {
               return std::move(done)(s);
             }
           }
           return std::move(done)(PendingJob(token, JobDetail(*job)));
         }
         // DCM said no (4xx): nothing was made. Any other answer (none, a
         // 5xx, a 2xx that is not a job) may hide a create that happened.
         if (r.ok() && r->status >= 400 && r->status < 500) {
           AbandonClaim(call, token);
           if (creates) call.account->aliases->DropMark(call.operation);
         }
         other(std::move(r), std::move(done));
       });
}

void Advance(JobCall call, JobToken token, Callback<MutationProgress> done) {
  const KindTraits* traits = TraitsOf(token.kind());
  if (traits == nullptr ||
      (token.phase() != JobToken::JOB && token.phase() != JobToken::CONVERGE)) {
    return std::move(done)(
        WithErrorInfo(absl::DataLossError("the enstratus poll token names no known job step"),
                      reasons::kOperationStateUnreadable));
  }
  // Polled: the runner has stored a progress of this Operation and will not
  // call the create again, so its mark has done its work.
  if (traits->creates) call.account->aliases->DropMark(call.operation);
  if (token.phase() == JobToken::JOB) {
    return FollowJob(std::move(call), *traits, std::move(token), std::move(done));
  }
  ConvergeStep(call, *traits, std::move(token), std::move(done));
}

}  // namespace cloudplane::adapters::enstratus
