#include "adapters/enstratus/enstratus_adapter.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "adapters/common/http/endpoint.h"
#include "adapters/common/http/http_client.h"
#include "adapters/common/paging/paging.h"
#include "adapters/enstratus/enstratus_wire.h"
#include "base/errors.h"
#include "base/event_loop.h"
#include "base/status.h"
#include "store/store.h"

namespace cloudplane::adapters::enstratus {
namespace {

using http::HttpResponse;

constexpr char kUserAgent[] = "cloudplane";
constexpr char kDefaultBasePath[] = "/api/enstratus/2015-05-25";
constexpr char kInstanceAliases[] = "enstratus-instances";
constexpr char kFirewallAliases[] = "enstratus-firewalls";
constexpr char kVolumeAliases[] = "enstratus-volumes";
constexpr int64_t kGiB = int64_t{1} << 30;
// The reason DCM records for our deletes and actions (a query parameter of
// DELETE, §7), already percent-encoded.
constexpr char kReasonQuery[] = "?reason=Requested%20through%20cloudplane";

// What the requests of one account need; callbacks hold a shared_ptr.
struct Account {
  std::string id;
  ApiKeys keys;
  std::string basepath;  // path part of the endpoint, e.g. /api/enstratus/2015-05-25
  int64_t budget = 0;    // option `budget`; 0 = none
  std::unique_ptr<http::HttpClient> client;
  store::Store* store = nullptr;
  EventLoop* loop = nullptr;
};
using AccountPtr = std::shared_ptr<const Account>;
using ResponseCallback = absl::AnyInvocable<void(absl::StatusOr<HttpResponse>)>;

template <typename T>
MutationProgress Done(const T& result) {
  MutationProgress progress;
  progress.done = true;
  progress.result.PackFrom(result);
  return progress;
}

absl::Status NotFound(absl::string_view what, absl::string_view name) {
  return WithErrorInfo(absl::NotFoundError(absl::StrCat(what, " ", name, " does not exist")),
                       "RESOURCE_NOT_FOUND", {{"resource", std::string(name)}});
}

// Sends one signed request. `rel_path` is relative to the basepath, without
// a leading slash (§1); `query` starts with '?' or is empty and is not signed
// (§2 step 2). `context` names what was asked, never a body.
void Send(const AccountPtr& account, absl::Time deadline, absl::string_view method,
          absl::string_view rel_path, absl::string_view query, std::string body,
          absl::string_view context, ResponseCallback done) {
  // An expired deadline is refused by the transport before anything is
  // sent (adapters/common/http), and reported below with `context`.
  http::HttpRequest request;
  request.method = std::string(method);
  request.path_and_query = absl::StrCat("/", rel_path, query);
  request.deadline = deadline;
  request.headers = SignedHeaders(account->keys, method,
                                  absl::StrCat(account->basepath, "/", rel_path),
                                  absl::ToUnixMillis(absl::Now()), kUserAgent);
  if (!body.empty()) {
    request.headers.emplace_back("Content-Type", "application/json");
    request.body = std::move(body);
  }
  account->client->Send(
      std::move(request), [context = std::string(context),
                           done = std::move(done)](absl::StatusOr<HttpResponse> r) mutable {
        if (!r.ok()) {
          absl::Status s(r.status().code(), absl::StrCat(context, ": ", r.status().message()));
          done(GetErrorInfo(r.status()).has_value() ? r.status()
                                                    : WithErrorInfo(s, DefaultReason(s.code())));
          return;
        }
        done(std::move(r));
      });
}

// ---------------------------------------------------------------------------
// Aliases (see the header): `<operation>\n<jobId>\n<dcmId>` under the
// caller's id.

struct AliasRecord {
  std::string operation;
  int64_t job = 0;
  int64_t dcm_id = 0;
};

std::string EncodeAlias(const AliasRecord& r) {
  return absl::StrCat(r.operation, "\n", r.job, "\n", r.dcm_id);
}

std::optional<AliasRecord> DecodeAlias(absl::string_view bytes) {
  std::vector<std::string> parts = absl::StrSplit(bytes, '\n');
  AliasRecord r;
  if (parts.size() != 3 || !absl::SimpleAtoi(parts[1], &r.job) ||
      !absl::SimpleAtoi(parts[2], &r.dcm_id)) {
    return std::nullopt;
  }
  r.operation = parts[0];
  return r;
}

absl::StatusOr<std::optional<AliasRecord>> GetAlias(const Account& a, const char* collection,
                                                    absl::string_view alias) {
  absl::StatusOr<std::string> bytes = a.store->GetResource(a.id, collection, alias);
  if (bytes.status().code() == absl::StatusCode::kNotFound) return std::nullopt;
  if (!bytes.ok()) return bytes.status();
  std::optional<AliasRecord> r = DecodeAlias(*bytes);
  if (!r.has_value()) {
    return absl::DataLossError(absl::StrCat("the stored alias ", alias, " is unreadable"));
  }
  return r;
}

// Every alias of the account that names a DCM id (calling thread).
absl::StatusOr<Aliases> LoadAliases(const Account& a) {
  Aliases out;
  for (auto [collection, map] : {std::pair{kInstanceAliases, &out.instances},
                                 std::pair{kFirewallAliases, &out.firewalls},
                                 std::pair{kVolumeAliases, &out.volumes}}) {
    std::string token;
    for (int pages = 0; pages < 10000; ++pages) {
      ASSIGN_OR_RETURN(store::ResourcePage page,
                       a.store->ListResources(a.id, collection, 1000, token));
      for (const store::ResourceEntry& e : page.resources) {
        std::optional<AliasRecord> r = DecodeAlias(e.bytes);
        if (r.has_value() && r->dcm_id > 0) (*map)[r->dcm_id] = e.id;
      }
      token = page.next_page_token;
      if (token.empty()) break;
    }
  }
  return out;
}

// Store writes decided on the HTTP transport thread go to the event loop
// (the store blocks on fsync; the transport thread must not).
void OnLoop(const AccountPtr& a, absl::AnyInvocable<void()> task) {
  if (a->loop == nullptr || !a->loop->Post(std::move(task))) {
    // Loop gone (shutdown): the write is lost; after a restart the alias
    // resolves through its operation's poll token again.
  }
}

void PutAliasLater(const AccountPtr& a, const char* collection, std::string alias,
                   AliasRecord record) {
  if (alias.empty()) return;
  OnLoop(a, [a, collection, alias = std::move(alias), record = std::move(record)] {
    (void)a->store->PutResource(a->id, collection, alias, EncodeAlias(record));
  });
}

void DeleteAliasLater(const AccountPtr& a, const char* collection, std::string alias) {
  if (alias.empty()) return;
  OnLoop(a, [a, collection, alias = std::move(alias)] {
    (void)a->store->DeleteResource(a->id, collection, alias);
  });
}

// The DCM id a name segment stands for: digits are the id; an alias is
// looked up (NOT_FOUND when unknown, FAILED_PRECONDITION while its create is
// still running).
absl::StatusOr<int64_t> Resolve(const Account& a, const char* collection,
                                absl::string_view what, absl::string_view name,
                                absl::string_view segment) {
  if (std::optional<int64_t> id = ParseDcmId(segment)) return *id;
  if (!IsValidAlias(segment)) return NotFound(what, name);
  ASSIGN_OR_RETURN(std::optional<AliasRecord> r, GetAlias(a, collection, segment));
  if (!r.has_value()) return NotFound(what, name);
  if (r->dcm_id <= 0) {
    return WithErrorInfo(absl::FailedPreconditionError(absl::StrCat(
                             what, " ", name, " is still being created (enStratus job ", r->job,
                             ")")),
                         "RESOURCE_NOT_READY", {{"resource", std::string(name)}});
  }
  return r->dcm_id;
}

// ---------------------------------------------------------------------------
// Reads.

template <typename T>
using Parser = std::function<absl::StatusOr<std::vector<T>>(absl::string_view body)>;

template <typename T>
void GetAll(const AccountPtr& a, absl::Time deadline, std::string rel_path, std::string query,
            std::string context, Parser<T> parse, Callback<std::vector<T>> done) {
  Send(a, deadline, "GET", rel_path, query, "", context,
       [context, parse = std::move(parse),
        done = std::move(done)](absl::StatusOr<HttpResponse> r) mutable {
         if (!r.ok()) return std::move(done)(r.status());
         if (absl::Status s = StatusFromResponse(r->status, r->body, context); !s.ok()) {
           return std::move(done)(s);
         }
         std::move(done)(parse(r->body));
       });
}

// GET <collection>/<id>: DCM answers a one-element list (§4).
template <typename T>
void GetOne(const AccountPtr& a, absl::Time deadline, std::string rel_path, std::string context,
            std::string name, Parser<T> parse, Callback<T> done) {
  GetAll<T>(a, deadline, std::move(rel_path), "", context, std::move(parse),
            [name, context, done = std::move(done)](absl::StatusOr<std::vector<T>> items) mutable {
              if (!items.ok()) return std::move(done)(items.status());
              if (items->empty()) return std::move(done)(NotFound(context, name));
              std::move(done)(std::move(items->front()));
            });
}

// Lists that DCM can only give per region (data centers, products): the
// regions first, then each region's list, one after another.
template <typename T>
struct PerRegion {
  AccountPtr account;
  absl::Time deadline;
  std::string rel_path;  // e.g. geography/DataCenter
  std::string context;
  Parser<T> parse;
  std::vector<int64_t> regions;
  size_t next = 0;
  std::vector<T> items;
  Callback<std::vector<T>> done;
};

template <typename T>
void NextRegion(std::shared_ptr<PerRegion<T>> st) {
  if (st->next == st->regions.size()) return std::move(st->done)(std::move(st->items));
  const int64_t region = st->regions[st->next++];
  GetAll<T>(st->account, st->deadline, st->rel_path, absl::StrCat("?regionId=", region),
            st->context, st->parse, [st](absl::StatusOr<std::vector<T>> items) mutable {
              if (!items.ok()) return std::move(st->done)(items.status());
              for (T& item : *items) st->items.push_back(std::move(item));
              NextRegion(std::move(st));
            });
}

template <typename T>
void ForEachRegion(const AccountPtr& a, absl::Time deadline, std::string rel_path,
                   std::string context, Parser<T> parse, Callback<std::vector<T>> done) {
  auto st = std::make_shared<PerRegion<T>>();
  st->account = a;
  st->deadline = deadline;
  st->rel_path = std::move(rel_path);
  st->context = std::move(context);
  st->parse = std::move(parse);
  st->done = std::move(done);
  const std::string account_id = a->id;
  GetAll<v1::Location>(
      a, deadline, "geography/Region", "", "GET regions",
      [account_id](absl::string_view body) { return ParseRegions(body, account_id); },
      [st](absl::StatusOr<std::vector<v1::Location>> regions) mutable {
        if (!regions.ok()) return std::move(st->done)(regions.status());
        for (const v1::Location& r : *regions) {
          std::string segment = r.name().substr(r.name().rfind('/') + 1);
          if (auto ref = ParseLocationSegment(segment)) st->regions.push_back(ref->id);
        }
        NextRegion(std::move(st));
      });
}

absl::Status CheckPaging(int32_t page_size, absl::string_view page_token) {
  RETURN_IF_ERROR(paging::EffectivePageSize(page_size).status());
  return paging::DecodeToken(page_token).status();
}

// Sorts by name and cuts out the requested page into `response`.
template <typename Response, typename T, typename Add>
void AnswerPage(absl::StatusOr<std::vector<T>> items, int32_t page_size, std::string page_token,
                Add add, Callback<Response> done) {
  if (!items.ok()) return std::move(done)(items.status());
  auto key = [](const T& t) { return t.name(); };
  std::sort(items->begin(), items->end(),
            [&key](const T& x, const T& y) { return key(x) < key(y); });
  items->erase(std::unique(items->begin(), items->end(),
                           [&key](const T& x, const T& y) { return key(x) == key(y); }),
               items->end());
  Response response;
  absl::StatusOr<std::vector<T>> page = paging::Paginate(
      *std::move(items), key, page_size, page_token, response.mutable_next_page_token());
  if (!page.ok()) return std::move(done)(page.status());
  for (T& t : *page) add(response, std::move(t));
  std::move(done)(std::move(response));
}

// ---------------------------------------------------------------------------
// Jobs and convergence: poll tokens `<phase>|<kind>|<jobId>|<dcmId>|<alias>`.

struct Token {
  std::string phase;  // job, boot
  // launch, start, stop, terminate, fwcreate, fwdelete, rule, ruledelete,
  // vcreate, vattach, vdetach, vdelete
  std::string kind;
  int64_t job = 0;
  int64_t dcm_id = 0;
  std::string alias;
};

std::string MakeToken(const Token& t) {
  return absl::StrCat(t.phase, "|", t.kind, "|", t.job, "|", t.dcm_id, "|", t.alias);
}

absl::StatusOr<Token> ParseToken(absl::string_view s) {
  std::vector<std::string> parts = absl::StrSplit(s, '|');
  Token t;
  if (parts.size() != 5 || (parts[0] != "job" && parts[0] != "boot") ||
      !absl::SimpleAtoi(parts[2], &t.job) || !absl::SimpleAtoi(parts[3], &t.dcm_id) ||
      (!parts[4].empty() && !IsValidAlias(parts[4]))) {
    return InvalidField("poll_token", "was not made by the enstratus adapter");
  }
  t.phase = parts[0];
  t.kind = parts[1];
  t.alias = parts[4];
  return t;
}

MutationProgress Pending(const Token& t, std::string detail) {
  MutationProgress p;
  p.poll_token = MakeToken(t);
  p.detail = std::move(detail);
  if (t.job > 0) p.provider_operation = absl::StrCat(t.job);
  return p;
}

// Kinds whose boot phase watches a volume.
bool IsVolumeKind(absl::string_view kind) {
  return kind == "vcreate" || kind == "vattach" || kind == "vdetach";
}

const char* AliasCollectionOf(absl::string_view kind) {
  if (kind == "fwcreate" || kind == "fwdelete") return kFirewallAliases;
  if (IsVolumeKind(kind) || kind == "vdelete") return kVolumeAliases;
  return kInstanceAliases;
}

// Kinds whose job makes a resource (its id is the job's message, §5) and
// whose alias is released when the job fails.
bool Creates(absl::string_view kind) {
  return kind == "launch" || kind == "fwcreate" || kind == "vcreate";
}

// The state a server action waits for.
v1::Instance::State TargetOf(absl::string_view kind) {
  return kind == "stop" ? v1::Instance::STOPPED : v1::Instance::RUNNING;
}

void Advance(const AccountPtr& a, absl::Time deadline, Token t, Callback<MutationProgress> done);

// boot phase: read the server until it reaches the target state.
void WatchServer(const AccountPtr& a, absl::Time deadline, Token t,
                 Callback<MutationProgress> done) {
  Aliases aliases;
  if (!t.alias.empty()) aliases.instances[t.dcm_id] = t.alias;
  // Firewall aliases, so the result names firewalls as List does.
  if (absl::StatusOr<Aliases> all = LoadAliases(*a); all.ok()) {
    aliases.firewalls = std::move(all->firewalls);
  }
  const std::string context = absl::StrCat("GET server ", t.dcm_id);
  const std::string account_id = a->id;
  GetOne<v1::Instance>(
      a, deadline, absl::StrCat("infrastructure/Server/", t.dcm_id), context,
      absl::StrCat(t.dcm_id),
      [account_id, aliases](absl::string_view body) {
        return ParseServers(body, account_id, aliases);
      },
      [t, done = std::move(done)](absl::StatusOr<v1::Instance> server) mutable {
        if (!server.ok()) return std::move(done)(server.status());
        const v1::Instance::State want = TargetOf(t.kind);
        if (server->state() == want) return std::move(done)(Done(*server));
        if (server->state() == v1::Instance::TERMINATED ||
            server->state() == v1::Instance::TERMINATING || server->state() == v1::Instance::ERROR) {
          return std::move(done)(WithErrorInfo(
              absl::AbortedError(absl::StrCat("server ", t.dcm_id, " became ",
                                              server->provider_state(), " while waiting for ",
                                              v1::Instance::State_Name(want))),
              "PROVIDER_STATE_CHANGED", {{"serverId", absl::StrCat(t.dcm_id)}}));
        }
        Token next = t;
        next.job = 0;
        std::move(done)(Pending(next, absl::StrFormat("waiting for server %d to be %s (now %s)",
                                                      t.dcm_id, v1::Instance::State_Name(want),
                                                      server->provider_state())));
      });
}

// boot phase of volume work: read the volume until it is AVAILABLE (create,
// detach) or ATTACHED (attach).
void WatchVolume(const AccountPtr& a, absl::Time deadline, Token t,
                 Callback<MutationProgress> done) {
  Aliases aliases;
  // Instance aliases too, so attached_to names servers as List does.
  if (absl::StatusOr<Aliases> all = LoadAliases(*a); all.ok()) aliases = *std::move(all);
  if (!t.alias.empty()) aliases.volumes[t.dcm_id] = t.alias;
  const std::string account_id = a->id;
  GetOne<v1::Volume>(
      a, deadline, absl::StrCat("infrastructure/Volume/", t.dcm_id),
      absl::StrCat("GET volume ", t.dcm_id), absl::StrCat(t.dcm_id),
      [account_id, aliases](absl::string_view body) {
        return ParseVolumes(body, account_id, aliases);
      },
      [t, done = std::move(done)](absl::StatusOr<v1::Volume> volume) mutable {
        if (!volume.ok()) return std::move(done)(volume.status());
        const v1::Volume::State want =
            t.kind == "vattach" ? v1::Volume::ATTACHED : v1::Volume::AVAILABLE;
        if (volume->state() == want) return std::move(done)(Done(*volume));
        if (volume->state() == v1::Volume::ERROR || volume->state() == v1::Volume::DELETING) {
          return std::move(done)(WithErrorInfo(
              absl::AbortedError(absl::StrCat("volume ", t.dcm_id, " became ",
                                              volume->provider_state(), " while waiting for ",
                                              v1::Volume::State_Name(want))),
              "PROVIDER_STATE_CHANGED", {{"volumeId", absl::StrCat(t.dcm_id)}}));
        }
        Token next = t;
        next.job = 0;
        std::move(done)(Pending(next, absl::StrFormat("waiting for volume %d to be %s (now %s)",
                                                      t.dcm_id, v1::Volume::State_Name(want),
                                                      v1::Volume::State_Name(volume->state()))));
      });
}

// job phase: follow admin/Job/<id> (§5).
void FollowJob(const AccountPtr& a, absl::Time deadline, Token t,
               Callback<MutationProgress> done) {
  const std::string context = absl::StrCat("GET job ", t.job);
  GetOne<Job>(
      a, deadline, absl::StrCat("admin/Job/", t.job), context, absl::StrCat(t.job),
      [](absl::string_view body) { return ParseJobs(body); },
      [a, deadline, t, done = std::move(done)](absl::StatusOr<Job> job) mutable {
        if (!job.ok()) return std::move(done)(job.status());
        if (job->status == "ERROR") {
          if (Creates(t.kind)) {
            DeleteAliasLater(a, AliasCollectionOf(t.kind), t.alias);
          }
          return std::move(done)(WithErrorInfo(
              absl::UnknownError(absl::StrCat("enStratus job ", t.job, " (", job->description,
                                              ") failed: ", job->message)),
              "PROVIDER_JOB_FAILED",
              {{"jobId", absl::StrCat(t.job)}, {"providerMessage", job->message}}));
        }
        if (job->status != "COMPLETE") {
          return std::move(done)(Pending(
              t, absl::StrCat("enStratus job ", t.job, " ", job->status,
                              job->description.empty() ? "" : ": ", job->description)));
        }
        Token next = t;
        if (Creates(t.kind) || t.kind == "rule") {
          // The new resource's id is the job's message (§5).
          std::optional<int64_t> id = ParseDcmId(job->message);
          if (!id.has_value()) {
            return std::move(done)(WithErrorInfo(
                absl::InternalError(absl::StrCat("enStratus job ", t.job,
                                                 " completed without a resource id")),
                "PROVIDER_MALFORMED_RESPONSE", {{"jobId", absl::StrCat(t.job)}}));
          }
          if (t.kind == "rule") {
            next.job = *id;  // rule id; dcm_id keeps the firewall
          } else {
            next.dcm_id = *id;
            PutAliasLater(a, AliasCollectionOf(t.kind), t.alias, {"", t.job, *id});
          }
        }
        if (t.kind == "terminate" || t.kind == "fwdelete" || t.kind == "ruledelete" ||
            t.kind == "vdelete") {
          DeleteAliasLater(a, AliasCollectionOf(t.kind), t.alias);
          return std::move(done)(Done(google::protobuf::Empty()));
        }
        next.phase = "boot";
        Advance(a, deadline, std::move(next), std::move(done));
      });
}

void Advance(const AccountPtr& a, absl::Time deadline, Token t, Callback<MutationProgress> done) {
  if (t.phase == "job") return FollowJob(a, deadline, std::move(t), std::move(done));
  const std::string account_id = a->id;
  if (t.kind == "fwcreate") {
    Aliases aliases;
    if (!t.alias.empty()) aliases.firewalls[t.dcm_id] = t.alias;
    return GetOne<v1::Firewall>(
        a, deadline, absl::StrCat("network/Firewall/", t.dcm_id),
        absl::StrCat("GET firewall ", t.dcm_id), absl::StrCat(t.dcm_id),
        [account_id, aliases](absl::string_view body) {
          return ParseFirewalls(body, account_id, aliases);
        },
        [done = std::move(done)](absl::StatusOr<v1::Firewall> fw) mutable {
          if (!fw.ok()) return std::move(done)(fw.status());
          std::move(done)(Done(*fw));
        });
  }
  if (t.kind == "rule") {
    Aliases aliases;
    if (!t.alias.empty()) aliases.firewalls[t.dcm_id] = t.alias;
    return GetOne<v1::FirewallRule>(
        a, deadline, absl::StrCat("network/FirewallRule/", t.job),
        absl::StrCat("GET firewall rule ", t.job), absl::StrCat(t.job),
        [account_id, aliases](absl::string_view body) {
          return ParseFirewallRules(body, account_id, aliases);
        },
        [done = std::move(done)](absl::StatusOr<v1::FirewallRule> rule) mutable {
          if (!rule.ok()) return std::move(done)(rule.status());
          std::move(done)(Done(*rule));
        });
  }
  if (IsVolumeKind(t.kind)) return WatchVolume(a, deadline, std::move(t), std::move(done));
  WatchServer(a, deadline, std::move(t), std::move(done));
}

// What to do with a first answer other than 202.
using OtherAnswer =
    absl::AnyInvocable<void(absl::StatusOr<HttpResponse>, Callback<MutationProgress>)>;

// Errors fail; a 2xx that is not 202 is unexpected for this request.
OtherAnswer Unexpected(std::string context) {
  return [context = std::move(context)](absl::StatusOr<HttpResponse> r,
                                        Callback<MutationProgress> done) {
    if (!r.ok()) return std::move(done)(r.status());
    if (absl::Status s = StatusFromResponse(r->status, r->body, context); !s.ok()) {
      return std::move(done)(s);
    }
    std::move(done)(WithErrorInfo(
        absl::InternalError(absl::StrCat(context, ": enStratus answered HTTP ", r->status,
                                         " where a job (202) was expected")),
        "PROVIDER_MALFORMED_RESPONSE", {{"httpStatus", absl::StrCat(r->status)}}));
  };
}

// A delete that DCM may finish at once (204, §4): done; a 404 is done too
// with allow_missing. The alias goes either way.
OtherAnswer SyncDelete(AccountPtr a, std::string context, bool allow_missing,
                       const char* collection, std::string alias) {
  return [a = std::move(a), context = std::move(context), allow_missing, collection,
          alias = std::move(alias)](absl::StatusOr<HttpResponse> r,
                                    Callback<MutationProgress> done) {
    if (!r.ok()) return std::move(done)(r.status());
    absl::Status s = StatusFromResponse(r->status, r->body, context);
    if (s.ok() || (allow_missing && r->status == 404)) {
      DeleteAliasLater(a, collection, alias);
      return std::move(done)(Done(google::protobuf::Empty()));
    }
    std::move(done)(s);
  };
}

// A PUT that DCM may finish at once (204, §4): errors fail; any other 2xx
// goes straight to watching the resource.
OtherAnswer ThenWatch(AccountPtr a, absl::Time deadline, std::string context, Token t) {
  return [a = std::move(a), deadline, context = std::move(context), t = std::move(t)](
             absl::StatusOr<HttpResponse> r, Callback<MutationProgress> done) mutable {
    if (!r.ok()) return std::move(done)(r.status());
    if (absl::Status s = StatusFromResponse(r->status, r->body, context); !s.ok()) {
      return std::move(done)(s);
    }
    t.phase = "boot";
    Advance(a, deadline, std::move(t), std::move(done));
  };
}

// The first answer of a mutation: 202 + job -> poll the job (§4-5);
// anything else goes to `other`. A create's alias is released when no job
// was started.
void StartJob(const AccountPtr& a, absl::Time deadline, absl::string_view method,
              std::string rel_path, std::string query, std::string body, std::string context,
              Token t, OtherAnswer other, Callback<MutationProgress> done) {
  Send(a, deadline, method, rel_path, query, std::move(body), context,
       [a, t, other = std::move(other),
        done = std::move(done)](absl::StatusOr<HttpResponse> r) mutable {
         const bool creates = Creates(t.kind);
         if (r.ok() && r->status == 202) {
           absl::StatusOr<Job> job = ParseFirstJob(r->body);
           if (!job.ok()) return std::move(done)(job.status());
           Token next = t;
           next.phase = "job";
           next.job = job->id;
           if (creates) {
             PutAliasLater(a, AliasCollectionOf(t.kind), t.alias, {"", job->id, 0});
           }
           return std::move(done)(Pending(
               next, absl::StrCat("enStratus job ", job->id, " ", job->status,
                                  job->description.empty() ? "" : ": ", job->description)));
         }
         if (creates) DeleteAliasLater(a, AliasCollectionOf(t.kind), t.alias);
         other(std::move(r), std::move(done));
       });
}

// ---------------------------------------------------------------------------

class EnstratusProvider final : public Provider {
 public:
  explicit EnstratusProvider(AccountPtr account) : a_(std::move(account)) {}

  const ProviderInfo& Info() const override {
    static const auto* const kInfo = new ProviderInfo(EnstratusProviderInfo());
    return *kInfo;
  }

  void PollOperation(const CallContext& ctx, const std::string& poll_token,
                     Callback<MutationProgress> done) override {
    absl::StatusOr<Token> t = ParseToken(poll_token);
    if (!t.ok()) return std::move(done)(t.status());
    Advance(a_, ctx.deadline, *std::move(t), std::move(done));
  }

  // ---- Instances ---------------------------------------------------------

  void ListInstances(const CallContext& ctx, const v1::ListInstancesRequest& request,
                     Callback<v1::ListInstancesResponse> done) override {
    if (absl::Status s = CheckPaging(request.page_size(), request.page_token()); !s.ok()) {
      return std::move(done)(s);
    }
    absl::StatusOr<Aliases> aliases = LoadAliases(*a_);
    if (!aliases.ok()) return std::move(done)(aliases.status());
    const std::string id = a_->id;
    GetAll<v1::Instance>(
        a_, ctx.deadline, "infrastructure/Server", "", "GET servers",
        [id, aliases = *std::move(aliases)](absl::string_view body) {
          return ParseServers(body, id, aliases);
        },
        [page_size = request.page_size(), token = request.page_token(),
         done = std::move(done)](absl::StatusOr<std::vector<v1::Instance>> items) mutable {
          AnswerPage<v1::ListInstancesResponse>(
              std::move(items), page_size, token,
              [](v1::ListInstancesResponse& r, v1::Instance i) { *r.add_instances() = std::move(i); },
              std::move(done));
        });
  }

  void GetInstance(const CallContext& ctx, const v1::GetInstanceRequest& request,
                   Callback<v1::Instance> done) override {
    absl::StatusOr<int64_t> id = ResolveInstance("name", request.name());
    if (!id.ok()) return std::move(done)(id.status());
    absl::StatusOr<Aliases> aliases = LoadAliases(*a_);
    if (!aliases.ok()) return std::move(done)(aliases.status());
    const std::string account_id = a_->id;
    GetOne<v1::Instance>(
        a_, ctx.deadline, absl::StrCat("infrastructure/Server/", *id),
        absl::StrCat("GET server ", *id), request.name(),
        [account_id, aliases = *std::move(aliases)](absl::string_view body) {
          return ParseServers(body, account_id, aliases);
        },
        std::move(done));
  }

  void CreateInstance(const CallContext& ctx, const v1::CreateInstanceRequest& request,
                      Callback<MutationProgress> done) override {
    // Everything DCM would refuse for a fixed reason is refused here, with
    // the field named, before any request.
    const v1::Instance& in = request.instance();
    absl::Status status;
    const std::string& alias = request.instance_id();
    if (!alias.empty() && !IsValidAlias(alias)) {
      AddFieldViolation(status, "instance_id",
                        "must be 1-63 characters of [a-z0-9-] starting with a letter");
    }
    auto dcm_ref = [&](absl::string_view field, absl::string_view collection,
                       const std::string& value) -> int64_t {
      if (value.empty()) {
        AddFieldViolation(status, field, "is required by enStratus to launch a server");
        return 0;
      }
      absl::StatusOr<std::string> seg = SegmentOf(field, a_->id, collection, value);
      std::optional<int64_t> id = seg.ok() ? ParseDcmId(*seg) : std::nullopt;
      if (!id.has_value()) {
        AddFieldViolation(status, field,
                          absl::StrCat("must be accounts/", a_->id, "/", collection,
                                       "/{enStratus id}"));
        return 0;
      }
      return *id;
    };
    LaunchSpec spec;
    spec.machine_image_id = dcm_ref("instance.image", "images", in.image());
    const int64_t product_id = dcm_ref("instance.machine_type", "machineTypes", in.machine_type());
    if (in.location().empty()) {
      AddFieldViolation(status, "instance.location", "is required (a data center)");
    } else {
      absl::StatusOr<std::string> seg = SegmentOf("instance.location", a_->id, "locations",
                                                  in.location());
      std::optional<LocationRef> ref = seg.ok() ? ParseLocationSegment(*seg) : std::nullopt;
      if (!ref.has_value() || ref->kind != LocationRef::kDataCenter) {
        AddFieldViolation(status, "instance.location",
                          "must be a data center, accounts/{account}/locations/dc-{id}");
      } else {
        spec.data_center_id = ref->id;
      }
    }
    if (!in.billing_code().empty()) {
      spec.budget = dcm_ref("instance.billing_code", "billingCodes", in.billing_code());
    } else if (a_->budget > 0) {
      spec.budget = a_->budget;
    } else {
      AddFieldViolation(status, "instance.billing_code",
                        "is required (enStratus charges every server to a budget code) unless "
                        "the account sets option budget");
    }
    for (int i = 0; i < in.firewalls_size(); ++i) {
      const std::string field = absl::StrCat("instance.firewalls[", i, "]");
      absl::StatusOr<std::string> seg = SegmentOf(field, a_->id, "firewalls", in.firewalls(i));
      if (!seg.ok()) {
        AddFieldViolation(status, field, "must be accounts/{account}/firewalls/{firewall}");
        continue;
      }
      absl::StatusOr<int64_t> fw = Resolve(*a_, kFirewallAliases, "firewall", in.firewalls(i), *seg);
      if (!fw.ok()) {
        AddFieldViolation(status, field, fw.status().message());
        continue;
      }
      spec.firewall_ids.push_back(*fw);
    }
    if (request.has_start() && !request.start()) {
      AddFieldViolation(status, "start", "enStratus launches servers running");
    }
    for (const auto& [key, value] : in.labels()) {
      if (key != "label") {
        AddFieldViolation(status, absl::StrCat("instance.labels.", key),
                          "enStratus keeps one label per server: use the key \"label\"");
      }
    }
    spec.description = in.display_name();
    for (const auto& [key, value] : in.provider_options().fields()) {
      if (key == "description" && value.has_string_value()) {
        spec.description = value.string_value();
      } else {
        AddFieldViolation(status, absl::StrCat("instance.provider_options.", key),
                          "unknown: the enstratus adapter reads only \"description\" (a string)");
      }
    }
    if (!status.ok()) return std::move(done)(status);
    spec.name = !in.display_name().empty() ? in.display_name()
                : !alias.empty()           ? alias
                                           : "cloudplane";
    if (spec.description.empty()) spec.description = spec.name;
    spec.keypair = in.key_name();
    spec.user_data = in.user_data();
    if (auto it = in.labels().find("label"); it != in.labels().end()) spec.label = it->second;
    if (request.validate_only()) return std::move(done)(Done(v1::Instance()));

    Token token{"job", "launch", 0, 0, alias};
    if (!alias.empty()) {
      absl::StatusOr<MutationProgress> resumed = ReserveAlias(kInstanceAliases, alias, ctx, token,
                                                              "instance");
      if (!resumed.ok() || resumed->done || !resumed->poll_token.empty()) {
        return std::move(done)(std::move(resumed));
      }
    }
    // The launch names the provider's product id (§7), so look it up first.
    const std::string product_context = absl::StrCat("GET server product ", product_id);
    const AccountPtr a = a_;
    const absl::Time deadline = ctx.deadline;
    Send(a, deadline, "GET", absl::StrCat("infrastructure/ServerProduct/", product_id), "", "",
         product_context,
         [a, deadline, spec, token, product_context,
          done = std::move(done)](absl::StatusOr<HttpResponse> r) mutable {
           absl::StatusOr<ProductInfo> product =
               r.ok() ? ParseProductAnswer(*r, product_context) : absl::StatusOr<ProductInfo>(r.status());
           if (!product.ok()) {
             DeleteAliasLater(a, kInstanceAliases, token.alias);
             return std::move(done)(product.status());
           }
           spec.provider_product_id = product->provider_product_id;
           StartJob(a, deadline, "POST", "infrastructure/Server", "", LaunchBody(spec),
                    "POST launch", token, Unexpected("POST launch"), std::move(done));
         });
  }

  void DeleteInstance(const CallContext& ctx, const v1::DeleteInstanceRequest& request,
                      Callback<MutationProgress> done) override {
    absl::StatusOr<std::string> seg = SegmentOf("name", a_->id, "instances", request.name());
    if (!seg.ok()) return std::move(done)(seg.status());
    absl::StatusOr<int64_t> id = Resolve(*a_, kInstanceAliases, "instance", request.name(), *seg);
    if (!id.ok()) {
      if (id.status().code() == absl::StatusCode::kNotFound && request.allow_missing()) {
        return std::move(done)(Done(google::protobuf::Empty()));
      }
      return std::move(done)(id.status());
    }
    if (request.validate_only()) return std::move(done)(Done(google::protobuf::Empty()));
    const std::string alias = IsValidAlias(*seg) ? *seg : "";
    const AccountPtr a = a_;
    const std::string context = absl::StrCat("DELETE server ", *id);
    StartJob(a, ctx.deadline, "DELETE", absl::StrCat("infrastructure/Server/", *id), kReasonQuery,
             "", context, Token{"job", "terminate", 0, *id, alias},
             SyncDelete(a, context, request.allow_missing(), kInstanceAliases, alias),
             std::move(done));
  }

  void StartInstance(const CallContext& ctx, const v1::StartInstanceRequest& request,
                     Callback<MutationProgress> done) override {
    ServerAction(ctx, request.name(), "start", "", request.validate_only(), std::move(done));
  }

  void StopInstance(const CallContext& ctx, const v1::StopInstanceRequest& request,
                    Callback<MutationProgress> done) override {
    ServerAction(ctx, request.name(), "stop", "Requested through cloudplane",
                 request.validate_only(), std::move(done));
  }

  // ---- Catalog -----------------------------------------------------------

  void ListImages(const CallContext& ctx, const v1::ListImagesRequest& request,
                  Callback<v1::ListImagesResponse> done) override {
    if (absl::Status s = CheckPaging(request.page_size(), request.page_token()); !s.ok()) {
      return std::move(done)(s);
    }
    const std::string id = a_->id;
    GetAll<v1::Image>(
        a_, ctx.deadline, "infrastructure/MachineImage", "", "GET machine images",
        [id](absl::string_view body) { return ParseMachineImages(body, id); },
        [page_size = request.page_size(), token = request.page_token(),
         done = std::move(done)](absl::StatusOr<std::vector<v1::Image>> items) mutable {
          AnswerPage<v1::ListImagesResponse>(
              std::move(items), page_size, token,
              [](v1::ListImagesResponse& r, v1::Image i) { *r.add_images() = std::move(i); },
              std::move(done));
        });
  }

  void GetImage(const CallContext& ctx, const v1::GetImageRequest& request,
                Callback<v1::Image> done) override {
    absl::StatusOr<int64_t> id = NumericId("name", "images", "image", request.name());
    if (!id.ok()) return std::move(done)(id.status());
    const std::string account_id = a_->id;
    GetOne<v1::Image>(
        a_, ctx.deadline, absl::StrCat("infrastructure/MachineImage/", *id),
        absl::StrCat("GET machine image ", *id), request.name(),
        [account_id](absl::string_view body) { return ParseMachineImages(body, account_id); },
        std::move(done));
  }

  void ListMachineTypes(const CallContext& ctx, const v1::ListMachineTypesRequest& request,
                        Callback<v1::ListMachineTypesResponse> done) override {
    if (absl::Status s = CheckPaging(request.page_size(), request.page_token()); !s.ok()) {
      return std::move(done)(s);
    }
    const std::string id = a_->id;
    // DCM lists products per region only (regionId is required, §6).
    ForEachRegion<v1::MachineType>(
        a_, ctx.deadline, "infrastructure/ServerProduct", "GET server products",
        [id](absl::string_view body) { return ParseServerProducts(body, id); },
        [page_size = request.page_size(), token = request.page_token(),
         done = std::move(done)](absl::StatusOr<std::vector<v1::MachineType>> items) mutable {
          AnswerPage<v1::ListMachineTypesResponse>(
              std::move(items), page_size, token,
              [](v1::ListMachineTypesResponse& r, v1::MachineType m) {
                *r.add_machine_types() = std::move(m);
              },
              std::move(done));
        });
  }

  void GetMachineType(const CallContext& ctx, const v1::GetMachineTypeRequest& request,
                      Callback<v1::MachineType> done) override {
    absl::StatusOr<int64_t> id = NumericId("name", "machineTypes", "machine type", request.name());
    if (!id.ok()) return std::move(done)(id.status());
    const std::string account_id = a_->id;
    GetOne<v1::MachineType>(
        a_, ctx.deadline, absl::StrCat("infrastructure/ServerProduct/", *id),
        absl::StrCat("GET server product ", *id), request.name(),
        [account_id](absl::string_view body) { return ParseServerProducts(body, account_id); },
        std::move(done));
  }

  void ListLocations(const CallContext& ctx, const v1::ListLocationsRequest& request,
                     Callback<v1::ListLocationsResponse> done) override {
    if (absl::Status s = CheckPaging(request.page_size(), request.page_token()); !s.ok()) {
      return std::move(done)(s);
    }
    const std::string id = a_->id;
    const AccountPtr a = a_;
    const absl::Time deadline = ctx.deadline;
    // Regions, then every region's data centers (regionId is required, §6).
    GetAll<v1::Location>(
        a, deadline, "geography/Region", "", "GET regions",
        [id](absl::string_view body) { return ParseRegions(body, id); },
        [a, deadline, id, page_size = request.page_size(), token = request.page_token(),
         done = std::move(done)](absl::StatusOr<std::vector<v1::Location>> regions) mutable {
          if (!regions.ok()) return std::move(done)(regions.status());
          ForEachRegion<v1::Location>(
              a, deadline, "geography/DataCenter", "GET data centers",
              [id](absl::string_view body) { return ParseDataCenters(body, id); },
              [regions = *std::move(regions), page_size, token, done = std::move(done)](
                  absl::StatusOr<std::vector<v1::Location>> dcs) mutable {
                if (dcs.ok()) {
                  for (v1::Location& r : regions) dcs->push_back(std::move(r));
                }
                AnswerPage<v1::ListLocationsResponse>(
                    std::move(dcs), page_size, token,
                    [](v1::ListLocationsResponse& r, v1::Location l) {
                      *r.add_locations() = std::move(l);
                    },
                    std::move(done));
              });
        });
  }

  void GetLocation(const CallContext& ctx, const v1::GetLocationRequest& request,
                   Callback<v1::Location> done) override {
    absl::StatusOr<std::string> seg = SegmentOf("name", a_->id, "locations", request.name());
    if (!seg.ok()) return std::move(done)(seg.status());
    std::optional<LocationRef> ref = ParseLocationSegment(*seg);
    if (!ref.has_value()) return std::move(done)(NotFound("location", request.name()));
    const std::string account_id = a_->id;
    const bool region = ref->kind == LocationRef::kRegion;
    GetOne<v1::Location>(
        a_, ctx.deadline,
        absl::StrCat(region ? "geography/Region/" : "geography/DataCenter/", ref->id),
        absl::StrCat(region ? "GET region " : "GET data center ", ref->id), request.name(),
        [account_id, region](absl::string_view body) {
          return region ? ParseRegions(body, account_id) : ParseDataCenters(body, account_id);
        },
        std::move(done));
  }

  // ---- Billing, volumes --------------------------------------------------

  void ListBillingCodes(const CallContext& ctx, const v1::ListBillingCodesRequest& request,
                        Callback<v1::ListBillingCodesResponse> done) override {
    if (absl::Status s = CheckPaging(request.page_size(), request.page_token()); !s.ok()) {
      return std::move(done)(s);
    }
    const std::string id = a_->id;
    GetAll<v1::BillingCode>(
        a_, ctx.deadline, "admin/BillingCode", "", "GET billing codes",
        [id](absl::string_view body) { return ParseBillingCodes(body, id); },
        [page_size = request.page_size(), token = request.page_token(),
         done = std::move(done)](absl::StatusOr<std::vector<v1::BillingCode>> items) mutable {
          AnswerPage<v1::ListBillingCodesResponse>(
              std::move(items), page_size, token,
              [](v1::ListBillingCodesResponse& r, v1::BillingCode b) {
                *r.add_billing_codes() = std::move(b);
              },
              std::move(done));
        });
  }

  void GetBillingCode(const CallContext& ctx, const v1::GetBillingCodeRequest& request,
                      Callback<v1::BillingCode> done) override {
    absl::StatusOr<int64_t> id = NumericId("name", "billingCodes", "billing code", request.name());
    if (!id.ok()) return std::move(done)(id.status());
    const std::string account_id = a_->id;
    GetOne<v1::BillingCode>(
        a_, ctx.deadline, absl::StrCat("admin/BillingCode/", *id),
        absl::StrCat("GET billing code ", *id), request.name(),
        [account_id](absl::string_view body) { return ParseBillingCodes(body, account_id); },
        std::move(done));
  }

  void ListVolumes(const CallContext& ctx, const v1::ListVolumesRequest& request,
                   Callback<v1::ListVolumesResponse> done) override {
    if (absl::Status s = CheckPaging(request.page_size(), request.page_token()); !s.ok()) {
      return std::move(done)(s);
    }
    absl::StatusOr<Aliases> aliases = LoadAliases(*a_);
    if (!aliases.ok()) return std::move(done)(aliases.status());
    const std::string id = a_->id;
    GetAll<v1::Volume>(
        a_, ctx.deadline, "infrastructure/Volume", "", "GET volumes",
        [id, aliases = *std::move(aliases)](absl::string_view body) {
          return ParseVolumes(body, id, aliases);
        },
        [page_size = request.page_size(), token = request.page_token(),
         done = std::move(done)](absl::StatusOr<std::vector<v1::Volume>> items) mutable {
          AnswerPage<v1::ListVolumesResponse>(
              std::move(items), page_size, token,
              [](v1::ListVolumesResponse& r, v1::Volume v) { *r.add_volumes() = std::move(v); },
              std::move(done));
        });
  }

  void GetVolume(const CallContext& ctx, const v1::GetVolumeRequest& request,
                 Callback<v1::Volume> done) override {
    absl::StatusOr<int64_t> id = ResolveVolume("name", request.name());
    if (!id.ok()) return std::move(done)(id.status());
    absl::StatusOr<Aliases> aliases = LoadAliases(*a_);
    if (!aliases.ok()) return std::move(done)(aliases.status());
    const std::string account_id = a_->id;
    GetOne<v1::Volume>(
        a_, ctx.deadline, absl::StrCat("infrastructure/Volume/", *id),
        absl::StrCat("GET volume ", *id), request.name(),
        [account_id, aliases = *std::move(aliases)](absl::string_view body) {
          return ParseVolumes(body, account_id, aliases);
        },
        std::move(done));
  }

  void CreateVolume(const CallContext& ctx, const v1::CreateVolumeRequest& request,
                    Callback<MutationProgress> done) override {
    const v1::Volume& in = request.volume();
    absl::Status status;
    const std::string& alias = request.volume_id();
    if (!alias.empty() && !IsValidAlias(alias)) {
      AddFieldViolation(status, "volume_id",
                        "must be 1-63 characters of [a-z0-9-] starting with a letter");
    }
    VolumeSpec spec;
    // addVolume takes whole gigabytes (sizeInGb, §7); DCM's sizes are GiB
    // (`"sizeString":"8GB"` for 8 << 30 in the fixtures). A size that is not
    // a whole number of them is refused rather than silently rounded.
    if (in.size_bytes() <= 0 || in.size_bytes() % kGiB != 0) {
      AddFieldViolation(status, "volume.size_bytes",
                        "must be a positive whole number of GiB (enStratus sizes volumes in GB)");
    } else {
      spec.size_gb = in.size_bytes() / kGiB;
    }
    absl::StatusOr<std::string> seg =
        in.location().empty() ? absl::StatusOr<std::string>(absl::NotFoundError(""))
                              : SegmentOf("volume.location", a_->id, "locations", in.location());
    std::optional<LocationRef> ref = seg.ok() ? ParseLocationSegment(*seg) : std::nullopt;
    if (!ref.has_value() || ref->kind != LocationRef::kDataCenter) {
      AddFieldViolation(status, "volume.location",
                        "is required: a data center, accounts/{account}/locations/dc-{id}");
    } else {
      spec.data_center_id = ref->id;
    }
    if (in.media() == v1::Volume::CDROM) {
      AddFieldViolation(status, "volume.media", "enStratus volumes are disks");
    }
    for (const auto& [key, value] : in.labels()) {
      if (key != "label") {
        AddFieldViolation(status, absl::StrCat("volume.labels.", key),
                          "enStratus keeps one label per volume: use the key \"label\"");
      }
    }
    int64_t budget = a_->budget;
    for (const auto& [key, value] : in.provider_options().fields()) {
      if (key == "description" && value.has_string_value()) {
        spec.description = value.string_value();
      } else if (key == "budget") {
        // A billingCodeId, as a number or a numeric string (DCM takes both, §7).
        std::optional<int64_t> id;
        if (value.has_string_value()) {
          id = ParseDcmId(value.string_value());
        } else if (value.has_number_value() && value.number_value() >= 1 &&
                   value.number_value() < 9.0e15 &&
                   value.number_value() == std::floor(value.number_value())) {
          id = static_cast<int64_t>(value.number_value());
        }
        if (!id.has_value() || *id <= 0) {
          AddFieldViolation(status, "volume.provider_options.budget",
                            "must be an enStratus billingCodeId");
        } else {
          budget = *id;
        }
      } else {
        AddFieldViolation(status, absl::StrCat("volume.provider_options.", key),
                          "unknown: the enstratus adapter reads only \"description\" (a string) "
                          "and \"budget\" (a billingCodeId)");
      }
    }
    if (!status.ok()) return std::move(done)(status);
    if (budget <= 0) {
      return std::move(done)(WithErrorInfo(
          absl::FailedPreconditionError(
              "enStratus charges volumes to a budget code: set the account option budget or "
              "volume.provider_options.budget"),
          "ACCOUNT_OPTION_MISSING", {{"option", "budget"}}));
    }
    spec.budget = budget;
    spec.name = !in.display_name().empty() ? in.display_name()
                : !alias.empty()           ? alias
                                           : "cloudplane";
    if (spec.description.empty()) spec.description = spec.name;
    if (auto it = in.labels().find("label"); it != in.labels().end()) spec.label = it->second;
    if (request.validate_only()) return std::move(done)(Done(v1::Volume()));
    Token token{"job", "vcreate", 0, 0, alias};
    if (!alias.empty()) {
      absl::StatusOr<MutationProgress> resumed =
          ReserveAlias(kVolumeAliases, alias, ctx, token, "volume");
      if (!resumed.ok() || resumed->done || !resumed->poll_token.empty()) {
        return std::move(done)(std::move(resumed));
      }
    }
    // mixcoatl reads a job from addVolume's answer (202, §4).
    StartJob(a_, ctx.deadline, "POST", "infrastructure/Volume", "", AddVolumeBody(spec),
             "POST addVolume", token, Unexpected("POST addVolume"), std::move(done));
  }

  void DeleteVolume(const CallContext& ctx, const v1::DeleteVolumeRequest& request,
                    Callback<MutationProgress> done) override {
    absl::StatusOr<std::string> seg = SegmentOf("name", a_->id, "volumes", request.name());
    if (!seg.ok()) return std::move(done)(seg.status());
    absl::StatusOr<int64_t> id = Resolve(*a_, kVolumeAliases, "volume", request.name(), *seg);
    if (!id.ok()) {
      if (id.status().code() == absl::StatusCode::kNotFound && request.allow_missing()) {
        return std::move(done)(Done(google::protobuf::Empty()));
      }
      return std::move(done)(id.status());
    }
    if (request.validate_only()) return std::move(done)(Done(google::protobuf::Empty()));
    const std::string alias = IsValidAlias(*seg) ? *seg : "";
    const std::string context = absl::StrCat("DELETE volume ", *id);
    // DCM refuses to delete an attached volume (409 -> FAILED_PRECONDITION).
    StartJob(a_, ctx.deadline, "DELETE", absl::StrCat("infrastructure/Volume/", *id),
             kReasonQuery, "", context, Token{"job", "vdelete", 0, *id, alias},
             SyncDelete(a_, context, request.allow_missing(), kVolumeAliases, alias),
             std::move(done));
  }

  void AttachVolume(const CallContext& ctx, const v1::AttachVolumeRequest& request,
                    Callback<MutationProgress> done) override {
    absl::Status status;
    if (!request.channel().empty()) {
      AddFieldViolation(status, "channel", "enStratus attaches by device id only");
    }
    if (request.boot_order() != 0) {
      AddFieldViolation(status, "boot_order", "enStratus attaches data volumes only");
    }
    if (!status.ok()) return std::move(done)(status);
    VolumeChange(ctx, request.name(), request.instance(), /*attach=*/true, request.device(),
                 request.validate_only(), std::move(done));
  }

  void DetachVolume(const CallContext& ctx, const v1::DetachVolumeRequest& request,
                    Callback<MutationProgress> done) override {
    VolumeChange(ctx, request.name(), request.instance(), /*attach=*/false, "",
                 request.validate_only(), std::move(done));
  }

  // ---- Provider jobs -----------------------------------------------------

  void ListProviderOperations(const CallContext& ctx, int page_size,
                              const std::string& page_token,
                              Callback<google::longrunning::ListOperationsResponse> done) override {
    if (absl::Status s = CheckPaging(page_size, page_token); !s.ok()) return std::move(done)(s);
    const std::string account_id = a_->id;
    // DCM answers every job at once (§4: no paging); pages are cut here,
    // keyed by the zero-padded job id, so they hold across calls.
    GetAll<Job>(
        a_, ctx.deadline, "admin/Job", "", "GET jobs",
        [](absl::string_view body) { return ParseJobs(body); },
        [account_id, page_size, page_token,
         done = std::move(done)](absl::StatusOr<std::vector<Job>> jobs) mutable {
          if (!jobs.ok()) return std::move(done)(jobs.status());
          std::sort(jobs->begin(), jobs->end(),
                    [](const Job& x, const Job& y) { return x.id < y.id; });
          jobs->erase(std::unique(jobs->begin(), jobs->end(),
                                  [](const Job& x, const Job& y) { return x.id == y.id; }),
                      jobs->end());
          google::longrunning::ListOperationsResponse response;
          absl::StatusOr<std::vector<Job>> page =
              paging::Paginate(*std::move(jobs), [](const Job& j) { return JobKey(j.id); },
                               page_size, page_token, response.mutable_next_page_token());
          if (!page.ok()) return std::move(done)(page.status());
          for (const Job& job : *page) *response.add_operations() = JobToOperation(job, account_id);
          std::move(done)(std::move(response));
        });
  }

  void GetProviderOperation(const CallContext& ctx, const std::string& id,
                            Callback<google::longrunning::Operation> done) override {
    const std::string name = absl::StrCat("accounts/", a_->id, "/providerOperations/", id);
    // Job ids are DCM integers; anything else names no job.
    std::optional<int64_t> job_id = ParseDcmId(id);
    if (!job_id.has_value()) return std::move(done)(NotFound("provider operation", name));
    const std::string account_id = a_->id;
    GetOne<Job>(
        a_, ctx.deadline, absl::StrCat("admin/Job/", *job_id), absl::StrCat("GET job ", *job_id),
        name, [](absl::string_view body) { return ParseJobs(body); },
        [account_id, name, done = std::move(done)](absl::StatusOr<Job> job) mutable {
          if (!job.ok()) {
            // DCM's 404 ("No such job ID: 5") keeps its text; the resource
            // named is ours.
            if (job.status().code() == absl::StatusCode::kNotFound) {
              std::map<std::string, std::string> metadata = {{"resource", name}};
              if (auto info = GetErrorInfo(job.status())) {
                metadata.insert(info->metadata().begin(), info->metadata().end());
              }
              return std::move(done)(
                  WithErrorInfo(job.status(), "RESOURCE_NOT_FOUND", metadata));
            }
            return std::move(done)(job.status());
          }
          std::move(done)(JobToOperation(*job, account_id));
        });
  }

  // ---- Firewalls ---------------------------------------------------------

  void ListFirewalls(const CallContext& ctx, const v1::ListFirewallsRequest& request,
                     Callback<v1::ListFirewallsResponse> done) override {
    if (absl::Status s = CheckPaging(request.page_size(), request.page_token()); !s.ok()) {
      return std::move(done)(s);
    }
    absl::StatusOr<Aliases> aliases = LoadAliases(*a_);
    if (!aliases.ok()) return std::move(done)(aliases.status());
    const std::string id = a_->id;
    GetAll<v1::Firewall>(
        a_, ctx.deadline, "network/Firewall", "", "GET firewalls",
        [id, aliases = *std::move(aliases)](absl::string_view body) {
          return ParseFirewalls(body, id, aliases);
        },
        [page_size = request.page_size(), token = request.page_token(),
         done = std::move(done)](absl::StatusOr<std::vector<v1::Firewall>> items) mutable {
          AnswerPage<v1::ListFirewallsResponse>(
              std::move(items), page_size, token,
              [](v1::ListFirewallsResponse& r, v1::Firewall f) { *r.add_firewalls() = std::move(f); },
              std::move(done));
        });
  }

  void GetFirewall(const CallContext& ctx, const v1::GetFirewallRequest& request,
                   Callback<v1::Firewall> done) override {
    absl::StatusOr<int64_t> id = ResolveFirewall("name", request.name());
    if (!id.ok()) return std::move(done)(id.status());
    absl::StatusOr<Aliases> aliases = LoadAliases(*a_);
    if (!aliases.ok()) return std::move(done)(aliases.status());
    const std::string account_id = a_->id;
    GetOne<v1::Firewall>(
        a_, ctx.deadline, absl::StrCat("network/Firewall/", *id),
        absl::StrCat("GET firewall ", *id), request.name(),
        [account_id, aliases = *std::move(aliases)](absl::string_view body) {
          return ParseFirewalls(body, account_id, aliases);
        },
        std::move(done));
  }

  void CreateFirewall(const CallContext& ctx, const v1::CreateFirewallRequest& request,
                      Callback<MutationProgress> done) override {
    const v1::Firewall& in = request.firewall();
    absl::Status status;
    const std::string& alias = request.firewall_id();
    if (!alias.empty() && !IsValidAlias(alias)) {
      AddFieldViolation(status, "firewall_id",
                        "must be 1-63 characters of [a-z0-9-] starting with a letter");
    }
    FirewallSpec spec;
    absl::StatusOr<std::string> seg = in.location().empty()
                                          ? absl::StatusOr<std::string>(absl::NotFoundError(""))
                                          : SegmentOf("firewall.location", a_->id, "locations",
                                                      in.location());
    std::optional<LocationRef> ref = seg.ok() ? ParseLocationSegment(*seg) : std::nullopt;
    if (!ref.has_value() || ref->kind != LocationRef::kRegion) {
      AddFieldViolation(status, "firewall.location",
                        "is required: a region, accounts/{account}/locations/region-{id}");
    } else {
      spec.region_id = ref->id;
    }
    if (in.rules_size() > 0) {
      AddFieldViolation(status, "firewall.rules",
                        "enStratus creates rules one by one: use CreateFirewallRule");
    }
    for (const auto& [key, value] : in.labels()) {
      if (key != "label") {
        AddFieldViolation(status, absl::StrCat("firewall.labels.", key),
                          "enStratus keeps one label per firewall: use the key \"label\"");
      }
    }
    if (!status.ok()) return std::move(done)(status);
    if (a_->budget <= 0) {
      return std::move(done)(WithErrorInfo(
          absl::FailedPreconditionError("enStratus charges firewalls to a budget code: set the "
                                        "account option budget"),
          "ACCOUNT_OPTION_MISSING", {{"option", "budget"}}));
    }
    spec.budget = a_->budget;
    spec.name = !in.display_name().empty() ? in.display_name()
                : !alias.empty()           ? alias
                                           : "cloudplane";
    spec.description = in.description().empty() ? spec.name : in.description();
    if (auto it = in.labels().find("label"); it != in.labels().end()) spec.label = it->second;
    if (request.validate_only()) return std::move(done)(Done(v1::Firewall()));
    Token token{"job", "fwcreate", 0, 0, alias};
    if (!alias.empty()) {
      absl::StatusOr<MutationProgress> resumed = ReserveAlias(kFirewallAliases, alias, ctx, token,
                                                              "firewall");
      if (!resumed.ok() || resumed->done || !resumed->poll_token.empty()) {
        return std::move(done)(std::move(resumed));
      }
    }
    const AccountPtr a = a_;
    StartJob(a, ctx.deadline, "POST", "network/Firewall", "", AddFirewallBody(spec),
             "POST addFirewall", token,
             Unexpected("POST addFirewall"),
             std::move(done));
  }

  void DeleteFirewall(const CallContext& ctx, const v1::DeleteFirewallRequest& request,
                      Callback<MutationProgress> done) override {
    absl::StatusOr<std::string> seg = SegmentOf("name", a_->id, "firewalls", request.name());
    if (!seg.ok()) return std::move(done)(seg.status());
    absl::StatusOr<int64_t> id = Resolve(*a_, kFirewallAliases, "firewall", request.name(), *seg);
    if (!id.ok()) {
      if (id.status().code() == absl::StatusCode::kNotFound && request.allow_missing()) {
        return std::move(done)(Done(google::protobuf::Empty()));
      }
      return std::move(done)(id.status());
    }
    if (request.validate_only()) return std::move(done)(Done(google::protobuf::Empty()));
    const std::string alias = IsValidAlias(*seg) ? *seg : "";
    const AccountPtr a = a_;
    const std::string context = absl::StrCat("DELETE firewall ", *id);
    StartJob(a, ctx.deadline, "DELETE", absl::StrCat("network/Firewall/", *id), kReasonQuery, "",
             context, Token{"job", "fwdelete", 0, *id, alias},
             SyncDelete(a, context, request.allow_missing(), kFirewallAliases, alias),
             std::move(done));
  }

  void ListFirewallRules(const CallContext& ctx, const v1::ListFirewallRulesRequest& request,
                         Callback<v1::ListFirewallRulesResponse> done) override {
    if (absl::Status s = CheckPaging(request.page_size(), request.page_token()); !s.ok()) {
      return std::move(done)(s);
    }
    absl::StatusOr<int64_t> fw = ResolveFirewall("parent", request.parent());
    if (!fw.ok()) return std::move(done)(fw.status());
    absl::StatusOr<Aliases> aliases = LoadAliases(*a_);
    if (!aliases.ok()) return std::move(done)(aliases.status());
    const std::string id = a_->id;
    GetAll<v1::FirewallRule>(
        a_, ctx.deadline, "network/FirewallRule", absl::StrCat("?firewallId=", *fw),
        absl::StrCat("GET rules of firewall ", *fw),
        [id, aliases = *std::move(aliases)](absl::string_view body) {
          return ParseFirewallRules(body, id, aliases);
        },
        [page_size = request.page_size(), token = request.page_token(),
         done = std::move(done)](absl::StatusOr<std::vector<v1::FirewallRule>> items) mutable {
          AnswerPage<v1::ListFirewallRulesResponse>(
              std::move(items), page_size, token,
              [](v1::ListFirewallRulesResponse& r, v1::FirewallRule f) {
                *r.add_rules() = std::move(f);
              },
              std::move(done));
        });
  }

  void GetFirewallRule(const CallContext& ctx, const v1::GetFirewallRuleRequest& request,
                       Callback<v1::FirewallRule> done) override {
    absl::StatusOr<std::pair<std::string, int64_t>> ids = ResolveRule(request.name());
    if (!ids.ok()) return std::move(done)(ids.status());
    absl::StatusOr<Aliases> aliases = LoadAliases(*a_);
    if (!aliases.ok()) return std::move(done)(aliases.status());
    const std::string account_id = a_->id;
    GetOne<v1::FirewallRule>(
        a_, ctx.deadline, absl::StrCat("network/FirewallRule/", ids->second),
        absl::StrCat("GET firewall rule ", ids->second), request.name(),
        [account_id, aliases = *std::move(aliases)](absl::string_view body) {
          return ParseFirewallRules(body, account_id, aliases);
        },
        [name = request.name(), done = std::move(done)](
            absl::StatusOr<v1::FirewallRule> rule) mutable {
          // A rule id under another firewall is not this name's rule.
          if (rule.ok() && rule->name() != name) {
            return std::move(done)(NotFound("firewall rule", name));
          }
          std::move(done)(std::move(rule));
        });
  }

  void CreateFirewallRule(const CallContext& ctx, const v1::CreateFirewallRuleRequest& request,
                          Callback<MutationProgress> done) override {
    absl::StatusOr<std::string> seg = SegmentOf("parent", a_->id, "firewalls", request.parent());
    if (!seg.ok()) return std::move(done)(seg.status());
    absl::StatusOr<int64_t> fw = Resolve(*a_, kFirewallAliases, "firewall", request.parent(), *seg);
    if (!fw.ok()) return std::move(done)(fw.status());
    absl::StatusOr<std::string> body = AddRuleBody(*fw, request.rule());
    if (!body.ok()) return std::move(done)(body.status());
    if (request.validate_only()) return std::move(done)(Done(v1::FirewallRule()));
    const std::string alias = IsValidAlias(*seg) ? *seg : "";
    const AccountPtr a = a_;
    const std::string account_id = a_->id;
    const int64_t fw_id = *fw;
    StartJob(
        a, ctx.deadline, "POST", "network/FirewallRule", "", *std::move(body), "POST addRule",
        Token{"job", "rule", 0, fw_id, alias},
        // DCM creates rules synchronously: 201 with the rule (§4); a 202
        // job is followed like any other.
        [account_id, alias, fw_id](absl::StatusOr<HttpResponse> r,
                                   Callback<MutationProgress> done) {
          if (!r.ok()) return std::move(done)(r.status());
          if (absl::Status s = StatusFromResponse(r->status, r->body, "POST addRule"); !s.ok()) {
            if (s.code() == absl::StatusCode::kInvalidArgument) {
              AddFieldViolation(s, "rule", GetErrorInfo(s)->metadata().at("providerMessage"));
            }
            return std::move(done)(s);
          }
          Aliases aliases;
          if (!alias.empty()) aliases.firewalls[fw_id] = alias;
          absl::StatusOr<std::vector<v1::FirewallRule>> rules =
              ParseFirewallRules(r->body, account_id, aliases);
          if (!rules.ok()) return std::move(done)(rules.status());
          if (rules->empty()) {
            return std::move(done)(WithErrorInfo(
                absl::InternalError("POST addRule: enStratus answered without the new rule"),
                "PROVIDER_MALFORMED_RESPONSE"));
          }
          std::move(done)(Done(rules->front()));
        },
        std::move(done));
  }

  void DeleteFirewallRule(const CallContext& ctx, const v1::DeleteFirewallRuleRequest& request,
                          Callback<MutationProgress> done) override {
    absl::StatusOr<std::pair<std::string, int64_t>> ids = ResolveRule(request.name());
    if (!ids.ok()) {
      if (ids.status().code() == absl::StatusCode::kNotFound && request.allow_missing()) {
        return std::move(done)(Done(google::protobuf::Empty()));
      }
      return std::move(done)(ids.status());
    }
    if (request.validate_only()) return std::move(done)(Done(google::protobuf::Empty()));
    const AccountPtr a = a_;
    const std::string context = absl::StrCat("DELETE firewall rule ", ids->second);
    StartJob(a, ctx.deadline, "DELETE", absl::StrCat("network/FirewallRule/", ids->second),
             kReasonQuery, "", context, Token{"job", "ruledelete", 0, ids->second, ""},
             SyncDelete(a, context, request.allow_missing(), kFirewallAliases, ""),
             std::move(done));
  }

 private:
  absl::StatusOr<int64_t> ResolveInstance(absl::string_view field, const std::string& name) {
    ASSIGN_OR_RETURN(std::string seg, SegmentOf(field, a_->id, "instances", name));
    return Resolve(*a_, kInstanceAliases, "instance", name, seg);
  }

  absl::StatusOr<int64_t> ResolveFirewall(absl::string_view field, const std::string& name) {
    ASSIGN_OR_RETURN(std::string seg, SegmentOf(field, a_->id, "firewalls", name));
    return Resolve(*a_, kFirewallAliases, "firewall", name, seg);
  }

  absl::StatusOr<int64_t> ResolveVolume(absl::string_view field, const std::string& name) {
    ASSIGN_OR_RETURN(std::string seg, SegmentOf(field, a_->id, "volumes", name));
    return Resolve(*a_, kVolumeAliases, "volume", name, seg);
  }

  // Attach (PUT attach) or detach (PUT detach) after reading the volume:
  // DCM's detach names no server, so the volume must be attached to
  // `instance` now (else FAILED_PRECONDITION); an attach to the server that
  // already holds it is done at once (a re-driven attach finds its work), to
  // another server FAILED_PRECONDITION. Then the job, then the volume
  // reaches ATTACHED or AVAILABLE; its Volume is the result.
  void VolumeChange(const CallContext& ctx, const std::string& volume_name,
                    const std::string& instance_name, bool attach, const std::string& device,
                    bool validate_only, Callback<MutationProgress> done) {
    absl::StatusOr<std::string> seg = SegmentOf("name", a_->id, "volumes", volume_name);
    if (!seg.ok()) return std::move(done)(seg.status());
    absl::StatusOr<int64_t> volume_id =
        Resolve(*a_, kVolumeAliases, "volume", volume_name, *seg);
    if (!volume_id.ok()) return std::move(done)(volume_id.status());
    absl::StatusOr<int64_t> server_id = ResolveInstance("instance", instance_name);
    if (!server_id.ok()) return std::move(done)(server_id.status());
    if (validate_only) return std::move(done)(Done(v1::Volume()));
    absl::StatusOr<Aliases> aliases = LoadAliases(*a_);
    if (!aliases.ok()) return std::move(done)(aliases.status());
    const std::string alias = IsValidAlias(*seg) ? *seg : "";
    if (!alias.empty()) aliases->volumes[*volume_id] = alias;
    const AccountPtr a = a_;
    const absl::Time deadline = ctx.deadline;
    const std::string context = absl::StrCat("GET volume ", *volume_id);
    const std::string action = attach ? "attach" : "detach";
    Send(a, deadline, "GET", absl::StrCat("infrastructure/Volume/", *volume_id), "", "", context,
         [a, deadline, context, action, attach, device, alias, volume_name, instance_name,
          aliases = *std::move(aliases), volume_id = *volume_id, server_id = *server_id,
          done = std::move(done)](absl::StatusOr<HttpResponse> r) mutable {
           if (!r.ok()) return std::move(done)(r.status());
           if (absl::Status s = StatusFromResponse(r->status, r->body, context); !s.ok()) {
             return std::move(done)(s);
           }
           absl::StatusOr<VolumeInfo> info = ParseFirstVolume(r->body);
           if (!info.ok()) return std::move(done)(info.status());
           auto wrong_state = [&](std::string message) {
             return WithErrorInfo(absl::FailedPreconditionError(
                                      absl::StrCat(volume_name, ": ", message)),
                                  "FAILED_PRECONDITION", {{"resource", volume_name}});
           };
           if (attach && info->server_id == server_id) {
             absl::StatusOr<std::vector<v1::Volume>> volumes =
                 ParseVolumes(r->body, a->id, aliases);
             if (!volumes.ok()) return std::move(done)(volumes.status());
             return std::move(done)(Done(volumes->front()));
           }
           if (attach && info->server_id.has_value()) {
             auto it = aliases.instances.find(*info->server_id);
             return std::move(done)(wrong_state(absl::StrCat(
                 "is attached to accounts/", a->id, "/instances/",
                 it == aliases.instances.end() ? absl::StrCat(*info->server_id) : it->second,
                 "; detach it first")));
           }
           if (!attach && info->server_id != server_id) {
             return std::move(done)(
                 wrong_state(absl::StrCat("is not attached to ", instance_name)));
           }
           const std::string put_context = absl::StrCat("PUT ", action, " volume ", volume_id);
           Token token{"job", attach ? "vattach" : "vdetach", 0, volume_id, alias};
           StartJob(a, deadline, "PUT", absl::StrCat("infrastructure/Volume/", volume_id), "",
                    attach ? AttachVolumeBody(server_id, device) : DetachVolumeBody(),
                    put_context, token, ThenWatch(a, deadline, put_context, token),
                    std::move(done));
         });
  }

  absl::StatusOr<std::pair<std::string, int64_t>> ResolveRule(const std::string& name) {
    ASSIGN_OR_RETURN(auto segs, RuleSegmentsOf("name", a_->id, name));
    ASSIGN_OR_RETURN(int64_t fw, Resolve(*a_, kFirewallAliases, "firewall",
                                         name.substr(0, name.rfind("/rules/")), segs.first));
    (void)fw;
    std::optional<int64_t> rule = ParseDcmId(segs.second);
    if (!rule.has_value()) return NotFound("firewall rule", name);
    return std::pair{segs.first, *rule};
  }

  // Names of catalog resources are always DCM ids.
  absl::StatusOr<int64_t> NumericId(absl::string_view field, absl::string_view collection,
                                    absl::string_view what, const std::string& name) {
    ASSIGN_OR_RETURN(std::string seg, SegmentOf(field, a_->id, collection, name));
    std::optional<int64_t> id = ParseDcmId(seg);
    if (!id.has_value()) return NotFound(what, name);
    return *id;
  }

  // Claims `alias` for the operation `ctx.operation` (calling thread).
  // Returns an empty, not-done progress when the create should go ahead; a
  // progress to report when this operation was re-driven after a restart and
  // its job is known; ALREADY_EXISTS when another operation holds the alias.
  absl::StatusOr<MutationProgress> ReserveAlias(const char* collection, const std::string& alias,
                                                const CallContext& ctx, Token token,
                                                absl::string_view what) {
    ASSIGN_OR_RETURN(std::optional<AliasRecord> existing, GetAlias(*a_, collection, alias));
    if (existing.has_value()) {
      if (!ctx.operation.empty() && existing->operation == ctx.operation) {
        // Re-driven after a restart: resume what the first drive started.
        if (existing->dcm_id > 0) {
          token.phase = "boot";
          token.dcm_id = existing->dcm_id;
          token.job = existing->job;
          return Pending(token, "resuming after a restart");
        }
        if (existing->job > 0) {
          token.job = existing->job;
          return Pending(token, "resuming after a restart");
        }
        // No job was recorded: the POST may or may not have reached DCM,
        // which has no idempotency key. It is sent again (see the header).
        return MutationProgress{};
      }
      return WithErrorInfo(
          absl::AlreadyExistsError(absl::StrCat(what, " ", alias, " already exists")),
          "RESOURCE_ALREADY_EXISTS", {{"resource", alias}});
    }
    RETURN_IF_ERROR(
        a_->store->PutResource(a_->id, collection, alias, EncodeAlias({ctx.operation, 0, 0})));
    return MutationProgress{};
  }

  static absl::StatusOr<ProductInfo> ParseProductAnswer(const HttpResponse& r,
                                                        absl::string_view context) {
    if (r.status == 404) {
      return InvalidField("instance.machine_type", "no such machine type in enStratus");
    }
    RETURN_IF_ERROR(StatusFromResponse(r.status, r.body, context));
    return ParseFirstProduct(r.body);
  }

  void ServerAction(const CallContext& ctx, const std::string& name, absl::string_view action,
                    absl::string_view reason, bool validate_only,
                    Callback<MutationProgress> done) {
    absl::StatusOr<std::string> seg = SegmentOf("name", a_->id, "instances", name);
    if (!seg.ok()) return std::move(done)(seg.status());
    absl::StatusOr<int64_t> id = Resolve(*a_, kInstanceAliases, "instance", name, *seg);
    if (!id.ok()) return std::move(done)(id.status());
    if (validate_only) return std::move(done)(Done(v1::Instance()));
    const std::string alias = IsValidAlias(*seg) ? *seg : "";
    const AccountPtr a = a_;
    const absl::Time deadline = ctx.deadline;
    Token token{"job", std::string(action), 0, *id, alias};
    const std::string context = absl::StrCat("PUT ", action, " server ", *id);
    StartJob(a, deadline, "PUT", absl::StrCat("infrastructure/Server/", *id), "",
             ServerActionBody(action, reason), context, token, Unexpected(context),
             std::move(done));
  }

  const AccountPtr a_;
};

}  // namespace

ProviderInfo EnstratusProviderInfo() {
  ProviderInfo info;
  info.kind = "enstratus";
  info.display_name = "enStratus / Dell Cloud Manager";
  info.protocol = "REST/JSON over HTTPS, HMAC-SHA256 signed requests (x-esauth-*)";
  // DCM has no change feed; the server learns by reading.
  info.watch_source = WatchSource::kPoll;
  for (absl::string_view m :
       {"ListInstances", "GetInstance", "CreateInstance", "DeleteInstance", "StartInstance",
        "StopInstance", "ListImages", "GetImage", "ListMachineTypes", "GetMachineType",
        "ListLocations", "GetLocation"}) {
    info.supported_methods.push_back(FullMethodName("ComputeService", m));
  }
  for (absl::string_view m : {"ListFirewalls", "GetFirewall", "CreateFirewall", "DeleteFirewall",
                              "ListFirewallRules", "GetFirewallRule", "CreateFirewallRule",
                              "DeleteFirewallRule"}) {
    info.supported_methods.push_back(FullMethodName("FirewallsService", m));
  }
  for (absl::string_view m : {"ListBillingCodes", "GetBillingCode"}) {
    info.supported_methods.push_back(FullMethodName("BillingService", m));
  }
  for (absl::string_view m : {"ListVolumes", "GetVolume", "CreateVolume", "DeleteVolume",
                              "AttachVolume", "DetachVolume"}) {
    info.supported_methods.push_back(FullMethodName("VolumesService", m));
  }
  return info;
}

absl::StatusOr<std::unique_ptr<Provider>> CreateEnstratusProvider(
    const AccountSetup& setup, std::shared_ptr<http::HttpTransport> transport) {
  absl::Status status;
  auto account = std::make_shared<Account>();
  account->id = setup.account;
  std::vector<std::string> keys;
  for (const auto& [key, value] : setup.options) keys.push_back(key);
  std::sort(keys.begin(), keys.end());
  for (const std::string& key : keys) {
    const std::string& value = setup.options.at(key);
    if (key == "budget") {
      std::optional<int64_t> id = ParseDcmId(value);
      if (!id.has_value() || *id <= 0) {
        AddFieldViolation(status, "options.budget", "must be an enStratus billingCodeId");
      } else {
        account->budget = *id;
      }
    } else {
      AddFieldViolation(status, absl::StrCat("options.", key),
                        absl::StrCat("unknown option \"", key,
                                     "\": the enstratus provider takes only budget"));
    }
  }
  absl::StatusOr<ApiKeys> api_keys = ParseApiKeys(setup.secret);
  if (!api_keys.ok()) {
    AddFieldViolation(status, "credentials",
                      "must be \"ACCESS_KEY:SECRET_KEY\" (the enStratus API key pair)");
  }
  absl::StatusOr<http::Endpoint> endpoint = http::ParseEndpoint(setup.endpoint);
  if (!endpoint.ok()) AddFieldViolation(status, "endpoint", endpoint.status().message());
  if (!status.ok()) return status;
  account->keys = *std::move(api_keys);
  // The signature covers the endpoint's path (the basepath, §1-2).
  const size_t scheme = endpoint->base_url.find("://");
  const size_t slash = endpoint->base_url.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  if (slash == std::string::npos) {
    endpoint->base_url += kDefaultBasePath;
    account->basepath = kDefaultBasePath;
  } else {
    account->basepath = endpoint->base_url.substr(slash);
  }
  if (setup.store == nullptr || setup.loop == nullptr) {
    return absl::FailedPreconditionError(
        "the enstratus provider needs the server's store and event loop");
  }
  account->store = setup.store;
  account->loop = setup.loop;
  http::HttpClientOptions options;
  options.verify_tls = setup.verify_tls;
  options.ca_file = setup.ca_file;
  options.user_agent = kUserAgent;  // what the signature names
  options.transport = std::move(transport);
  absl::StatusOr<std::unique_ptr<http::HttpClient>> client =
      http::HttpClient::Create(*std::move(endpoint), std::move(options));
  if (!client.ok()) {
    if (client.status().code() == absl::StatusCode::kInvalidArgument) {
      return InvalidField("endpoint", client.status().message());
    }
    return client.status();
  }
  account->client = *std::move(client);
  return std::make_unique<EnstratusProvider>(std::move(account));
}

absl::Status RegisterEnstratus(AdapterRegistry& registry) {
  return registry.Register(EnstratusProviderInfo(), [](const AccountSetup& setup) {
    return CreateEnstratusProvider(setup);
  });
}

}  // namespace cloudplane::adapters::enstratus
