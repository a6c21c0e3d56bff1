#include "adapters/phantom/phantom_adapter.h"

#include <algorithm>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "adapters/common/aws/query.h"
#include "adapters/common/aws/sigv4.h"
#include "adapters/common/http/endpoint.h"
#include "adapters/common/http/http_client.h"
#include "adapters/common/paging/paging.h"
#include "adapters/phantom/phantom_wire.h"
#include "base/errors.h"
#include "base/status.h"
#include "store/store.h"

namespace cloudplane::adapters::phantom {
namespace {

using http::HttpResponse;

// A list whose NextToken never ends must not loop forever.
constexpr int kMaxPages = 10000;
// Where the adapter marks what an operation created (see the header).
constexpr absl::string_view kCreatesCollection = "phantom.creates";

struct Account {
  std::string id;
  Dialect dialect = Dialect::kPhantom;
  std::unique_ptr<http::HttpClient> query;
  std::string query_path;   // base path + "/"
  std::string signed_host;  // the Host value that is signed
  aws::Credentials credentials;
  std::string region, service;
  int max_records = 50;
  std::string default_location;
  store::Store* store = nullptr;

  // REST API (phantom dialect); null when not configured.
  std::unique_ptr<http::HttpClient> rest;
  std::string username, password;
  mutable absl::Mutex mu;
  mutable std::string user_id ABSL_GUARDED_BY(mu);
  mutable std::string token ABSL_GUARDED_BY(mu);
};
using AccountPtr = std::shared_ptr<const Account>;

template <typename T>
MutationProgress Done(const T& result) {
  MutationProgress progress;
  progress.done = true;
  progress.result.PackFrom(result);
  return progress;
}

absl::Status DeadlinePassed(absl::string_view context) {
  return WithErrorInfo(absl::DeadlineExceededError(absl::StrCat(
                           context, ": the deadline passed before the request was sent")),
                       DefaultReason(absl::StatusCode::kDeadlineExceeded));
}

absl::Status WithContext(const absl::Status& s, absl::string_view context) {
  absl::Status out(s.code(), absl::StrCat(context, ": ", s.message()));
  if (GetErrorInfo(s).has_value()) {
    s.ForEachPayload([&out](absl::string_view url, const absl::Cord& payload) {
      out.SetPayload(url, payload);
    });
    return out;
  }
  return WithErrorInfo(out, DefaultReason(out.code()));
}

// ---------------------------------------------------------------------------
// The query API.

// Phantom reports a duplicate name as InvalidParameterValue "Name already in
// use" (B.6); everything else follows the shared table.
absl::Status QueryStatus(const AccountPtr& account, int http_status, absl::string_view body,
                         absl::string_view context) {
  aws::QueryError error = aws::ParseQueryError(http_status, body);
  absl::Status s = aws::StatusFromQueryError(error, context);
  if (error.code == "InvalidParameterValue" &&
      absl::StrContains(absl::AsciiStrToLower(error.message), "already in use")) {
    std::map<std::string, std::string> meta;
    if (auto info = GetErrorInfo(s); info.has_value()) {
      for (const auto& [k, v] : info->metadata()) meta[k] = v;
    }
    return WithErrorInfo(absl::AlreadyExistsError(s.message()), "ALREADY_EXISTS", meta);
  }
  return s;
}

using QueryCallback = absl::AnyInvocable<void(absl::StatusOr<aws::QueryResponse>)>;

void Query(const AccountPtr& account, absl::Time deadline, const std::string& action,
           aws::QueryParams params, QueryCallback done) {
  const std::string context = action;
  if (deadline <= absl::Now()) return done(DeadlinePassed(context));
  params.emplace_back("Action", action);
  params.emplace_back("Version", std::string(kApiVersion));
  const std::string encoded = aws::EncodeQueryParams(std::move(params));
  // Phantom: boto 2's verbs, describes GET and mutations POST (B.1). AWS:
  // POST throughout, as botocore does (moto's signature check reads the
  // parameters as a form body even for GET).
  const bool post =
      account->dialect == Dialect::kAws || !absl::StartsWith(action, "Describe");

  aws::SigningRequest to_sign;
  to_sign.method = post ? "POST" : "GET";
  to_sign.path = account->query_path;
  if (post) {
    to_sign.payload = encoded;
  } else {
    to_sign.query = encoded;
  }
  to_sign.headers = {{"Host", account->signed_host}};
  aws::SigningOptions options;
  options.region = account->region;
  options.service = account->service;
  options.time = absl::Now();
  if (account->dialect == Dialect::kPhantom) options.authorization_separator = ",";
  absl::StatusOr<aws::SignedRequest> signed_request =
      aws::Sign(to_sign, account->credentials, options);
  if (!signed_request.ok()) return done(WithContext(signed_request.status(), context));

  http::HttpRequest request;
  request.method = to_sign.method;
  request.path_and_query = post ? account->query_path : absl::StrCat(account->query_path, "?", encoded);
  request.deadline = deadline;
  for (auto& header : signed_request->headers_to_add) request.headers.push_back(header);
  if (post) {
    request.headers.emplace_back("Content-Type",
                                 "application/x-www-form-urlencoded; charset=UTF-8");
    request.body = encoded;
  }
  account->query->Send(
      std::move(request), [account, action, context, done = std::move(done)](
                              absl::StatusOr<HttpResponse> r) mutable {
        if (!r.ok()) return done(WithContext(r.status(), context));
        if (r->status < 200 || r->status > 299) {
          return done(QueryStatus(account, r->status, r->body, context));
        }
        absl::StatusOr<aws::QueryResponse> parsed = aws::ParseQueryResponse(action, r->body);
        if (!parsed.ok()) return done(WithContext(parsed.status(), context));
        done(std::move(parsed));
      });
}

// Every page of a Describe action: the members of each page are parsed by
// `parse` and appended.
template <typename Item>
struct DescribeAll {
  AccountPtr account;
  absl::Time deadline;
  std::string action;
  aws::QueryParams params;
  absl::AnyInvocable<absl::StatusOr<std::vector<Item>>(const xml::Node& result) const> parse;
  Callback<std::vector<Item>> done;
  std::vector<Item> items;
  int pages = 0;
};

template <typename Item>
void DescribePage(std::shared_ptr<DescribeAll<Item>> st, std::string token) {
  aws::QueryParams params = st->params;
  params.emplace_back("MaxRecords", absl::StrCat(st->account->max_records));
  if (!token.empty()) params.emplace_back("NextToken", token);
  const AccountPtr account = st->account;
  Query(account, st->deadline, st->action, std::move(params),
        [st, token](absl::StatusOr<aws::QueryResponse> r) mutable {
          if (!r.ok()) return std::move(st->done)(r.status());
          auto page = st->parse(*r->result);
          if (!page.ok()) return std::move(st->done)(page.status());
          for (Item& item : *page) st->items.push_back(std::move(item));
          ++st->pages;
          if (r->next_token.empty()) return std::move(st->done)(std::move(st->items));
          if (r->next_token == token || st->pages >= kMaxPages) {
            return std::move(st->done)(WithErrorInfo(
                absl::InternalError(absl::StrCat(st->action, ": NextToken never ends")),
                "PROVIDER_MALFORMED_RESPONSE"));
          }
          std::string next = r->next_token;
          DescribePage(std::move(st), std::move(next));
        });
}

void DescribeLaunchConfigs(const AccountPtr& account, absl::Time deadline,
                           Callback<std::vector<WireLaunchConfig>> done) {
  auto st = std::make_shared<DescribeAll<WireLaunchConfig>>();
  st->account = account;
  st->deadline = deadline;
  st->action = "DescribeLaunchConfigurations";
  st->parse = [](const xml::Node& result) { return ParseLaunchConfigs(result); };
  st->done = std::move(done);
  DescribePage(std::move(st), "");
}

// `name` empty: every group.
void DescribeGroups(const AccountPtr& account, absl::Time deadline, const std::string& name,
                    Callback<std::vector<WireGroup>> done) {
  auto st = std::make_shared<DescribeAll<WireGroup>>();
  st->account = account;
  st->deadline = deadline;
  st->action = "DescribeAutoScalingGroups";
  if (!name.empty()) st->params.emplace_back("AutoScalingGroupNames.member.1", name);
  st->parse = [](const xml::Node& result) { return ParseGroups(result); };
  st->done = [name, done = std::move(done)](
                 absl::StatusOr<std::vector<WireGroup>> groups) mutable {
    if (!groups.ok() || name.empty()) return std::move(done)(std::move(groups));
    // Filter by name here too: not every server honours the filter.
    std::vector<WireGroup> mine;
    for (WireGroup& g : *groups) {
      if (g.name == name) mine.push_back(std::move(g));
    }
    std::move(done)(std::move(mine));
  };
  DescribePage(std::move(st), "");
}

std::vector<WireLaunchConfig> OfTemplate(Dialect dialect, const std::vector<WireLaunchConfig>& all,
                                         absl::string_view id) {
  std::vector<WireLaunchConfig> out;
  for (const WireLaunchConfig& lc : all) {
    if (TemplateIdOf(dialect, lc.name) == id) out.push_back(lc);
  }
  std::sort(out.begin(), out.end(), [](const WireLaunchConfig& a, const WireLaunchConfig& b) {
    return a.name < b.name;
  });
  return out;
}

absl::Status NotFound(absl::string_view what, absl::string_view id, absl::string_view resource) {
  return WithErrorInfo(absl::NotFoundError(absl::StrCat(what, " ", id, " does not exist")),
                       "RESOURCE_NOT_FOUND", {{"resource", std::string(resource)}});
}

absl::Status AlreadyExists(absl::string_view what, absl::string_view id,
                           absl::string_view resource) {
  return WithErrorInfo(absl::AlreadyExistsError(absl::StrCat(what, " ", id, " already exists")),
                       "ALREADY_EXISTS", {{"resource", std::string(resource)}});
}

void GetTemplate(const AccountPtr& account, absl::Time deadline, const std::string& id,
                 Callback<v1::LaunchTemplate> done) {
  DescribeLaunchConfigs(
      account, deadline,
      [account, id, done = std::move(done)](
          absl::StatusOr<std::vector<WireLaunchConfig>> lcs) mutable {
        if (!lcs.ok()) return std::move(done)(lcs.status());
        std::vector<WireLaunchConfig> mine = OfTemplate(account->dialect, *lcs, id);
        if (mine.empty()) {
          return std::move(done)(NotFound("launch template", id,
                                          ResourceName(account->id, "launchTemplates", id)));
        }
        std::move(done)(TemplateFromWire(account->dialect, account->id, id, mine));
      });
}

// ---------------------------------------------------------------------------
// Creation marks (idempotent re-drive after a crash).

std::string MarkId(absl::string_view kind, absl::string_view id) {
  return absl::StrCat(kind, "/", id);
}

bool MarkedBy(const AccountPtr& account, absl::string_view kind, absl::string_view id,
              absl::string_view operation) {
  if (account->store == nullptr || operation.empty()) return false;
  absl::StatusOr<std::string> op =
      account->store->GetResource(account->id, kCreatesCollection, MarkId(kind, id));
  return op.ok() && *op == operation;
}

void Mark(const AccountPtr& account, absl::string_view kind, absl::string_view id,
          absl::string_view operation) {
  if (account->store == nullptr || operation.empty()) return;
  // Best effort: without the mark a re-driven create answers ALREADY_EXISTS.
  (void)account->store->PutResource(account->id, kCreatesCollection, MarkId(kind, id),
                                    operation);
}

void Unmark(const AccountPtr& account, absl::string_view kind, absl::string_view id) {
  if (account->store == nullptr) return;
  (void)account->store->DeleteResource(account->id, kCreatesCollection, MarkId(kind, id));
}

// ---------------------------------------------------------------------------
// Launch configurations, one after another.

struct LcBatch {
  AccountPtr account;
  absl::Time deadline;
  std::vector<LaunchConfigSpec> specs;
  size_t next = 0;
  std::vector<std::string> created;
  absl::AnyInvocable<void(absl::Status, std::vector<std::string> created)> done;
};

void CreateNextLc(std::shared_ptr<LcBatch> st) {
  if (st->next == st->specs.size()) return st->done(absl::OkStatus(), std::move(st->created));
  const LaunchConfigSpec spec = st->specs[st->next++];
  const AccountPtr account = st->account;
  Query(account, st->deadline, "CreateLaunchConfiguration", CreateLaunchConfigParams(spec),
        [st, name = spec.name](absl::StatusOr<aws::QueryResponse> r) mutable {
          if (!r.ok()) return st->done(r.status(), std::move(st->created));
          st->created.push_back(name);
          CreateNextLc(std::move(st));
        });
}

void DeleteLcs(const AccountPtr& account, absl::Time deadline, std::vector<std::string> names,
               absl::AnyInvocable<void(absl::Status)> done) {
  if (names.empty()) return done(absl::OkStatus());
  const std::string name = names.back();
  names.pop_back();
  Query(account, deadline, "DeleteLaunchConfiguration", {{"LaunchConfigurationName", name}},
        [account, deadline, names = std::move(names),
         done = std::move(done)](absl::StatusOr<aws::QueryResponse> r) mutable {
          if (!r.ok()) return done(r.status());
          DeleteLcs(account, deadline, std::move(names), std::move(done));
        });
}

// ---------------------------------------------------------------------------
// Group convergence.

void ReadGroupProgress(const AccountPtr& account, absl::Time deadline, const PollTarget& target,
                       Callback<MutationProgress> done) {
  DescribeGroups(account, deadline, target.group,
                 [account, target, done = std::move(done)](
                     absl::StatusOr<std::vector<WireGroup>> groups) mutable {
                   if (!groups.ok()) return std::move(done)(groups.status());
                   if (target.kind == "gone") {
                     if (groups->empty()) return std::move(done)(Done(google::protobuf::Empty()));
                     MutationProgress p;
                     p.poll_token = MakePollToken("gone", target.group, 0);
                     p.detail = absl::StrCat("waiting for group ", target.group, " to go away");
                     return std::move(done)(std::move(p));
                   }
                   if (groups->empty()) {
                     return std::move(done)(WithErrorInfo(
                         absl::AbortedError(absl::StrCat("scaling group ", target.group,
                                                         " was deleted while waiting for it")),
                         "CONCURRENT_MODIFICATION", {{"group", target.group}}));
                   }
                   const WireGroup& g = groups->front();
                   if (GroupSettled(g, target.size)) {
                     return std::move(done)(Done(GroupFromWire(account->dialect, account->id, g)));
                   }
                   MutationProgress p;
                   p.poll_token = MakePollToken("size", target.group, target.size);
                   int healthy = 0;
                   for (const WireInstance& i : g.instances) {
                     if (InstanceRunning(i) && absl::StartsWith(i.health_status, "Healthy")) {
                       ++healthy;
                     }
                   }
                   p.detail = absl::StrCat("group ", target.group, ": ", g.instances.size(),
                                           " instances, ", healthy, " running and healthy; want ",
                                           target.size);
                   std::move(done)(std::move(p));
                 });
}

// ---------------------------------------------------------------------------
// The REST API (sites).

using RestCallback = absl::AnyInvocable<void(absl::StatusOr<HttpResponse>)>;

void WithToken(const AccountPtr& account, absl::Time deadline,
               absl::AnyInvocable<void(absl::StatusOr<Token>)> done) {
  {
    absl::MutexLock lock(&account->mu);
    if (!account->token.empty()) return done(Token{account->user_id, account->token});
  }
  if (deadline <= absl::Now()) return done(DeadlinePassed("POST /token"));
  http::HttpRequest request;
  request.method = "POST";
  request.path_and_query = "/token";
  request.deadline = deadline;
  request.headers.emplace_back("Content-Type", "application/x-www-form-urlencoded");
  request.body = TokenRequestBody(account->username, account->password);
  account->rest->Send(std::move(request), [account, done = std::move(done)](
                                              absl::StatusOr<HttpResponse> r) mutable {
    if (!r.ok()) return done(WithContext(r.status(), "POST /token"));
    absl::StatusOr<Token> token = ParseTokenResponse(r->status, r->body);
    if (token.ok()) {
      absl::MutexLock lock(&account->mu);
      account->user_id = token->user_id;
      account->token = token->token;
    }
    done(std::move(token));
  });
}

void RestGet(const AccountPtr& account, absl::Time deadline, std::string path, bool retried,
             RestCallback done) {
  WithToken(account, deadline, [account, deadline, path, retried, done = std::move(done)](
                                   absl::StatusOr<Token> token) mutable {
    if (!token.ok()) return done(token.status());
    if (deadline <= absl::Now()) return done(DeadlinePassed(absl::StrCat("GET ", path)));
    http::HttpRequest request;
    request.path_and_query = path;
    request.deadline = deadline;
    request.headers.emplace_back(
        "Authorization",
        absl::StrCat("Basic ", absl::Base64Escape(absl::StrCat(token->user_id, ":", token->token))));
    request.headers.emplace_back("Accept", "application/json");
    account->rest->Send(std::move(request), [account, deadline, path, retried, used = token->token,
                                             done = std::move(done)](
                                                absl::StatusOr<HttpResponse> r) mutable {
      if (!r.ok()) return done(WithContext(r.status(), absl::StrCat("GET ", path)));
      if (r->status == 403 && !retried) {
        // The token expired (it lives TOKEN_TIMEOUT_DAYS, A.1) or the
        // password changed: forget it and ask once more.
        {
          absl::MutexLock lock(&account->mu);
          if (account->token == used) account->token.clear();
        }
        return RestGet(account, deadline, path, true, std::move(done));
      }
      done(std::move(r));
    });
  });
}

void FetchSites(const AccountPtr& account, absl::Time deadline,
                Callback<std::vector<v1::Location>> done) {
  if (account->rest == nullptr) {
    return std::move(done)(WithErrorInfo(
        absl::FailedPreconditionError(
            "locations need Phantom's REST API: set the option rest_endpoint and a second "
            "secret line USERNAME:PASSWORD (dialect phantom)"),
        "FAILED_PRECONDITION"));
  }
  RestGet(account, deadline, "/sites", false,
          [account, done = std::move(done)](absl::StatusOr<HttpResponse> r) mutable {
            if (!r.ok()) return std::move(done)(r.status());
            if (absl::Status s = StatusFromRest(r->status, r->body, "GET /sites"); !s.ok()) {
              return std::move(done)(s);
            }
            std::move(done)(ParseSites(r->body, account->id));
          });
}

absl::Status CheckPaging(int32_t page_size, absl::string_view page_token) {
  RETURN_IF_ERROR(paging::EffectivePageSize(page_size).status());
  return paging::DecodeToken(page_token).status();
}

// ---------------------------------------------------------------------------

class PhantomProvider final : public Provider {
 public:
  explicit PhantomProvider(AccountPtr account) : account_(std::move(account)) {}

  const ProviderInfo& Info() const override {
    static const auto* const kInfo = new ProviderInfo(PhantomProviderInfo());
    return *kInfo;
  }

  void PollOperation(const CallContext& ctx, const std::string& poll_token,
                     Callback<MutationProgress> done) override {
    absl::StatusOr<PollTarget> target = ParsePollToken(poll_token);
    if (!target.ok()) return std::move(done)(target.status());
    ReadGroupProgress(account_, ctx.deadline, *target, std::move(done));
  }

  // Launch templates ---------------------------------------------------------

  void ListLaunchTemplates(const CallContext& ctx, const v1::ListLaunchTemplatesRequest& request,
                           Callback<v1::ListLaunchTemplatesResponse> done) override {
    if (absl::Status s = CheckPaging(request.page_size(), request.page_token()); !s.ok()) {
      return std::move(done)(s);
    }
    DescribeLaunchConfigs(
        account_, ctx.deadline,
        [account = account_, page_size = request.page_size(), page_token = request.page_token(),
         done = std::move(done)](absl::StatusOr<std::vector<WireLaunchConfig>> lcs) mutable {
          if (!lcs.ok()) return std::move(done)(lcs.status());
          v1::ListLaunchTemplatesResponse response;
          auto page = paging::Paginate(
              TemplatesFromWire(account->dialect, account->id, *lcs),
              [](const v1::LaunchTemplate& t) { return t.name(); }, page_size, page_token,
              response.mutable_next_page_token());
          if (!page.ok()) return std::move(done)(page.status());
          for (v1::LaunchTemplate& t : *page) *response.add_launch_templates() = std::move(t);
          std::move(done)(std::move(response));
        });
  }

  void GetLaunchTemplate(const CallContext& ctx, const v1::GetLaunchTemplateRequest& request,
                         Callback<v1::LaunchTemplate> done) override {
    absl::StatusOr<std::string> id =
        IdFromName("name", account_->id, "launchTemplates", request.name());
    if (!id.ok()) return std::move(done)(id.status());
    GetTemplate(account_, ctx.deadline, *id, std::move(done));
  }

  void CreateLaunchTemplate(const CallContext& ctx, const v1::CreateLaunchTemplateRequest& request,
                            Callback<MutationProgress> done) override {
    const std::string id = request.launch_template_id();
    if (absl::Status s = ValidateId("launch_template_id", id); !s.ok()) {
      return std::move(done)(s);
    }
    absl::StatusOr<std::vector<LaunchConfigSpec>> specs = LaunchConfigsFor(
        account_->dialect, id, request.launch_template(), account_->default_location);
    if (!specs.ok()) return std::move(done)(specs.status());
    if (request.validate_only()) return std::move(done)(Done(v1::LaunchTemplate()));
    const absl::Time deadline = ctx.deadline;
    const std::string operation = ctx.operation;
    DescribeLaunchConfigs(
        account_, deadline,
        [account = account_, deadline, id, operation, specs = *std::move(specs),
         done = std::move(done)](absl::StatusOr<std::vector<WireLaunchConfig>> lcs) mutable {
          if (!lcs.ok()) return std::move(done)(lcs.status());
          const std::vector<WireLaunchConfig> existing = OfTemplate(account->dialect, *lcs, id);
          const std::string resource = ResourceName(account->id, "launchTemplates", id);
          std::vector<LaunchConfigSpec> todo;
          if (!existing.empty()) {
            // Ours when this very operation created it before a restart.
            if (!MarkedBy(account, "lt", id, operation)) {
              return std::move(done)(AlreadyExists("launch template", id, resource));
            }
            for (const LaunchConfigSpec& spec : specs) {
              if (std::none_of(existing.begin(), existing.end(),
                               [&](const WireLaunchConfig& lc) { return lc.name == spec.name; })) {
                todo.push_back(spec);
              }
            }
          } else {
            todo = specs;
          }
          Mark(account, "lt", id, operation);
          auto st = std::make_shared<LcBatch>();
          st->account = account;
          st->deadline = deadline;
          st->specs = std::move(todo);
          st->done = [account, deadline, id, done = std::move(done)](
                         absl::Status s, std::vector<std::string> created) mutable {
            if (!s.ok()) {
              // Nothing half-created: remove what this call made, then fail.
              // The rollback gets time of its own: the deadline may be what
              // failed.
              Unmark(account, "lt", id);
              DeleteLcs(account, absl::Now() + absl::Seconds(30), std::move(created),
                        [s, done = std::move(done)](absl::Status) mutable {
                          std::move(done)(s);
                        });
              return;
            }
            GetTemplate(account, deadline, id,
                        [done = std::move(done)](absl::StatusOr<v1::LaunchTemplate> t) mutable {
                          if (!t.ok()) return std::move(done)(t.status());
                          std::move(done)(Done(*t));
                        });
          };
          CreateNextLc(std::move(st));
        });
  }

  void DeleteLaunchTemplate(const CallContext& ctx, const v1::DeleteLaunchTemplateRequest& request,
                            Callback<MutationProgress> done) override {
    absl::StatusOr<std::string> id =
        IdFromName("name", account_->id, "launchTemplates", request.name());
    if (!id.ok()) return std::move(done)(id.status());
    const absl::Time deadline = ctx.deadline;
    DescribeLaunchConfigs(
        account_, deadline,
        [account = account_, deadline, id = *id, name = request.name(),
         allow_missing = request.allow_missing(), validate_only = request.validate_only(),
         done = std::move(done)](absl::StatusOr<std::vector<WireLaunchConfig>> lcs) mutable {
          if (!lcs.ok()) return std::move(done)(lcs.status());
          std::vector<std::string> names;
          for (const WireLaunchConfig& lc : OfTemplate(account->dialect, *lcs, id)) {
            names.push_back(lc.name);
          }
          if (names.empty()) {
            if (allow_missing) return std::move(done)(Done(google::protobuf::Empty()));
            return std::move(done)(NotFound("launch template", id, name));
          }
          if (validate_only) return std::move(done)(Done(google::protobuf::Empty()));
          // AWS refuses to delete a launch configuration in use
          // (ResourceInUse); Phantom and moto do not check. Check here.
          DescribeGroups(
              account, deadline, "",
              [account, deadline, id, names = std::move(names),
               done = std::move(done)](absl::StatusOr<std::vector<WireGroup>> groups) mutable {
                if (!groups.ok()) return std::move(done)(groups.status());
                for (const WireGroup& g : *groups) {
                  if (TemplateIdOf(account->dialect, g.launch_config) == id) {
                    return std::move(done)(WithErrorInfo(
                        absl::FailedPreconditionError(absl::StrCat(
                            "launch template ", id, " is used by scaling group ", g.name)),
                        "FAILED_PRECONDITION", {{"scalingGroup", g.name}}));
                  }
                }
                DeleteLcs(account, deadline, std::move(names),
                          [account, id, done = std::move(done)](absl::Status s) mutable {
                            if (!s.ok()) return std::move(done)(s);
                            Unmark(account, "lt", id);
                            std::move(done)(Done(google::protobuf::Empty()));
                          });
              });
        });
  }

  // Scaling groups -----------------------------------------------------------

  void ListScalingGroups(const CallContext& ctx, const v1::ListScalingGroupsRequest& request,
                         Callback<v1::ListScalingGroupsResponse> done) override {
    if (absl::Status s = CheckPaging(request.page_size(), request.page_token()); !s.ok()) {
      return std::move(done)(s);
    }
    DescribeGroups(
        account_, ctx.deadline, "",
        [account = account_, page_size = request.page_size(), page_token = request.page_token(),
         done = std::move(done)](absl::StatusOr<std::vector<WireGroup>> groups) mutable {
          if (!groups.ok()) return std::move(done)(groups.status());
          std::vector<v1::ScalingGroup> all;
          for (const WireGroup& g : *groups) {
            if (!ValidateId("", g.name).ok()) continue;  // not nameable here
            all.push_back(GroupFromWire(account->dialect, account->id, g));
          }
          std::sort(all.begin(), all.end(), [](const v1::ScalingGroup& a, const v1::ScalingGroup& b) {
            return a.name() < b.name();
          });
          all.erase(std::unique(all.begin(), all.end(),
                                [](const v1::ScalingGroup& a, const v1::ScalingGroup& b) {
                                  return a.name() == b.name();
                                }),
                    all.end());
          v1::ListScalingGroupsResponse response;
          auto page = paging::Paginate(std::move(all),
                                       [](const v1::ScalingGroup& g) { return g.name(); },
                                       page_size, page_token, response.mutable_next_page_token());
          if (!page.ok()) return std::move(done)(page.status());
          for (v1::ScalingGroup& g : *page) *response.add_scaling_groups() = std::move(g);
          std::move(done)(std::move(response));
        });
  }

  void GetScalingGroup(const CallContext& ctx, const v1::GetScalingGroupRequest& request,
                       Callback<v1::ScalingGroup> done) override {
    absl::StatusOr<std::string> id =
        IdFromName("name", account_->id, "scalingGroups", request.name());
    if (!id.ok()) return std::move(done)(id.status());
    DescribeGroups(account_, ctx.deadline, *id,
                   [account = account_, id = *id, name = request.name(),
                    done = std::move(done)](absl::StatusOr<std::vector<WireGroup>> groups) mutable {
                     if (!groups.ok()) return std::move(done)(groups.status());
                     if (groups->empty()) return std::move(done)(NotFound("scaling group", id, name));
                     std::move(done)(GroupFromWire(account->dialect, account->id, groups->front()));
                   });
  }

  void CreateScalingGroup(const CallContext& ctx, const v1::CreateScalingGroupRequest& request,
                          Callback<MutationProgress> done) override {
    const std::string id = request.scaling_group_id();
    if (absl::Status s = ValidateId("scaling_group_id", id); !s.ok()) return std::move(done)(s);
    absl::StatusOr<GroupSpec> spec =
        GroupSpecFor(account_->dialect, id, account_->id, request.scaling_group(),
                     account_->default_location);
    if (!spec.ok()) return std::move(done)(spec.status());
    if (request.validate_only()) return std::move(done)(Done(v1::ScalingGroup()));
    const absl::Time deadline = ctx.deadline;
    const std::string operation = ctx.operation;
    const PollTarget target{"size", id, spec->desired};
    DescribeGroups(
        account_, deadline, id,
        [account = account_, deadline, id, operation, target, spec = *std::move(spec),
         template_name = request.scaling_group().launch_template(),
         done = std::move(done)](absl::StatusOr<std::vector<WireGroup>> groups) mutable {
          if (!groups.ok()) return std::move(done)(groups.status());
          if (!groups->empty()) {
            if (MarkedBy(account, "sg", id, operation)) {
              return ReadGroupProgress(account, deadline, target, std::move(done));
            }
            return std::move(done)(AlreadyExists(
                "scaling group", id, ResourceName(account->id, "scalingGroups", id)));
          }
          // The template must exist: Phantom would accept a group whose DT
          // is missing and never start anything.
          DescribeLaunchConfigs(
              account, deadline,
              [account, deadline, id, operation, target, spec = std::move(spec), template_name,
               done = std::move(done)](
                  absl::StatusOr<std::vector<WireLaunchConfig>> lcs) mutable {
                if (!lcs.ok()) return std::move(done)(lcs.status());
                if (OfTemplate(account->dialect, *lcs, spec.launch_config).empty()) {
                  return std::move(done)(WithErrorInfo(
                      absl::NotFoundError(absl::StrCat("launch template ", spec.launch_config,
                                                       " does not exist")),
                      "RESOURCE_NOT_FOUND", {{"resource", template_name}}));
                }
                Mark(account, "sg", id, operation);
                Query(account, deadline, "CreateAutoScalingGroup",
                      CreateGroupParams(account->dialect, spec),
                      [account, deadline, id, target, done = std::move(done)](
                          absl::StatusOr<aws::QueryResponse> r) mutable {
                        if (!r.ok()) {
                          Unmark(account, "sg", id);
                          return std::move(done)(r.status());
                        }
                        ReadGroupProgress(account, deadline, target, std::move(done));
                      });
              });
        });
  }

  void ResizeScalingGroup(const CallContext& ctx, const v1::ResizeScalingGroupRequest& request,
                          Callback<MutationProgress> done) override {
    absl::StatusOr<std::string> id =
        IdFromName("name", account_->id, "scalingGroups", request.name());
    if (!id.ok()) return std::move(done)(id.status());
    const int n = request.target_size();
    if (n < 0) return std::move(done)(InvalidField("target_size", "must be 0 or more"));
    const absl::Time deadline = ctx.deadline;
    DescribeGroups(
        account_, deadline, *id,
        [account = account_, deadline, id = *id, n, name = request.name(),
         validate_only = request.validate_only(),
         done = std::move(done)](absl::StatusOr<std::vector<WireGroup>> groups) mutable {
          if (!groups.ok()) return std::move(done)(groups.status());
          if (groups->empty()) return std::move(done)(NotFound("scaling group", id, name));
          if (validate_only) return std::move(done)(Done(v1::ScalingGroup()));
          const WireGroup& g = groups->front();
          std::string action = "SetDesiredCapacity";
          aws::QueryParams params = {{"AutoScalingGroupName", id},
                                     {"DesiredCapacity", absl::StrCat(n)}};
          if (account->dialect == Dialect::kPhantom) {
            // Phantom sets min = max = n itself (B.6); HonorCooldown is ignored.
          } else if (n < g.min_size || n > g.max_size) {
            // AWS refuses a desired capacity outside [min, max]: widen the
            // bound in the same call.
            action = "UpdateAutoScalingGroup";
            params.emplace_back("MinSize", absl::StrCat(std::min(n, g.min_size)));
            params.emplace_back("MaxSize", absl::StrCat(std::max(n, g.max_size)));
          }
          const PollTarget target{"size", id, n};
          Query(account, deadline, action, std::move(params),
                [account, deadline, target, done = std::move(done)](
                    absl::StatusOr<aws::QueryResponse> r) mutable {
                  if (!r.ok()) return std::move(done)(r.status());
                  ReadGroupProgress(account, deadline, target, std::move(done));
                });
        });
  }

  void DeleteScalingGroup(const CallContext& ctx, const v1::DeleteScalingGroupRequest& request,
                          Callback<MutationProgress> done) override {
    absl::StatusOr<std::string> id =
        IdFromName("name", account_->id, "scalingGroups", request.name());
    if (!id.ok()) return std::move(done)(id.status());
    const absl::Time deadline = ctx.deadline;
    DescribeGroups(
        account_, deadline, *id,
        [account = account_, deadline, id = *id, name = request.name(),
         allow_missing = request.allow_missing(), validate_only = request.validate_only(),
         done = std::move(done)](absl::StatusOr<std::vector<WireGroup>> groups) mutable {
          if (!groups.ok()) return std::move(done)(groups.status());
          if (groups->empty()) {
            // Phantom's EPU back-end answers a 500 for an unknown group
            // (B.5), so absence is decided here.
            if (allow_missing) return std::move(done)(Done(google::protobuf::Empty()));
            return std::move(done)(NotFound("scaling group", id, name));
          }
          if (validate_only) return std::move(done)(Done(google::protobuf::Empty()));
          Query(account, deadline, "DeleteAutoScalingGroup",
                {{"AutoScalingGroupName", id}, {"ForceDelete", "true"}},
                [account, deadline, id, done = std::move(done)](
                    absl::StatusOr<aws::QueryResponse> r) mutable {
                  if (!r.ok()) return std::move(done)(r.status());
                  Unmark(account, "sg", id);
                  ReadGroupProgress(account, deadline, PollTarget{"gone", id, 0},
                                    std::move(done));
                });
        });
  }

  // Locations ------------------------------------------------------------------

  void ListLocations(const CallContext& ctx, const v1::ListLocationsRequest& request,
                     Callback<v1::ListLocationsResponse> done) override {
    if (absl::Status s = CheckPaging(request.page_size(), request.page_token()); !s.ok()) {
      return std::move(done)(s);
    }
    FetchSites(account_, ctx.deadline,
               [page_size = request.page_size(), page_token = request.page_token(),
                done = std::move(done)](absl::StatusOr<std::vector<v1::Location>> sites) mutable {
                 if (!sites.ok()) return std::move(done)(sites.status());
                 v1::ListLocationsResponse response;
                 auto page = paging::Paginate(*std::move(sites),
                                              [](const v1::Location& l) { return l.name(); },
                                              page_size, page_token,
                                              response.mutable_next_page_token());
                 if (!page.ok()) return std::move(done)(page.status());
                 for (v1::Location& l : *page) *response.add_locations() = std::move(l);
                 std::move(done)(std::move(response));
               });
  }

  void GetLocation(const CallContext& ctx, const v1::GetLocationRequest& request,
                   Callback<v1::Location> done) override {
    absl::StatusOr<std::string> id = IdFromName("name", account_->id, "locations", request.name());
    if (!id.ok()) return std::move(done)(id.status());
    FetchSites(account_, ctx.deadline,
               [id = *id, name = request.name(),
                done = std::move(done)](absl::StatusOr<std::vector<v1::Location>> sites) mutable {
                 if (!sites.ok()) return std::move(done)(sites.status());
                 for (v1::Location& l : *sites) {
                   if (l.name() == name) return std::move(done)(std::move(l));
                 }
                 std::move(done)(NotFound("site", id, name));
               });
  }

 private:
  const AccountPtr account_;
};

// boto 2's scope rule (B.2 step 2): service = first label of the host name;
// region = the second label, or us-east-1 when the name has exactly three.
std::pair<std::string, std::string> BotoScope(absl::string_view host) {
  std::vector<std::string> labels = absl::StrSplit(host, '.');
  const std::string service = labels[0];
  std::string region = "us-east-1";
  if (labels.size() != 3 && labels.size() > 1) region = labels[1];
  return {region, service};
}

// host and path of "scheme://host[:port][/base]".
void SplitBaseUrl(absl::string_view base_url, std::string* host_port, std::string* host,
                  std::string* path) {
  absl::string_view rest = base_url;
  const size_t scheme = rest.find("://");
  if (scheme != absl::string_view::npos) rest.remove_prefix(scheme + 3);
  const size_t slash = rest.find('/');
  *host_port = std::string(rest.substr(0, slash));
  *path = slash == absl::string_view::npos ? "" : std::string(rest.substr(slash));
  absl::string_view h = *host_port;
  if (absl::StartsWith(h, "[")) {
    *host = std::string(h.substr(0, h.find(']') + 1));
  } else {
    *host = std::string(h.substr(0, h.find(':')));
  }
}

absl::StatusOr<std::unique_ptr<http::HttpClient>> MakeClient(
    absl::string_view field, absl::string_view text, const AccountSetup& setup,
    std::shared_ptr<http::HttpTransport> transport, http::Endpoint* endpoint_out) {
  absl::StatusOr<http::Endpoint> endpoint = http::ParseEndpoint(text);
  if (!endpoint.ok()) return InvalidField(field, endpoint.status().message());
  if (!endpoint->unix_socket_path.empty()) {
    return InvalidField(field, "Phantom is reached over http(s), not a unix socket");
  }
  *endpoint_out = *endpoint;
  http::HttpClientOptions options;
  options.verify_tls = setup.verify_tls;
  options.ca_file = setup.ca_file;
  options.transport = std::move(transport);
  absl::StatusOr<std::unique_ptr<http::HttpClient>> client =
      http::HttpClient::Create(*std::move(endpoint), std::move(options));
  if (!client.ok() && client.status().code() == absl::StatusCode::kInvalidArgument) {
    return InvalidField(field, client.status().message());
  }
  return client;
}

}  // namespace

ProviderInfo PhantomProviderInfo() {
  ProviderInfo info;
  info.kind = "phantom";
  info.display_name = "Nimbus Phantom (and AWS Auto Scaling)";
  info.protocol =
      "AWS Auto Scaling query API with SigV4 (Phantom or AWS dialect); Phantom REST API "
      "with tokens for sites";
  info.watch_source = WatchSource::kPoll;
  for (absl::string_view method :
       {"ListLaunchTemplates", "GetLaunchTemplate", "CreateLaunchTemplate",
        "DeleteLaunchTemplate", "ListScalingGroups", "GetScalingGroup", "CreateScalingGroup",
        "ResizeScalingGroup", "DeleteScalingGroup"}) {
    info.supported_methods.push_back(FullMethodName("AutoscalingService", method));
  }
  for (absl::string_view method : {"ListLocations", "GetLocation"}) {
    info.supported_methods.push_back(FullMethodName("ComputeService", method));
  }
  return info;
}

absl::StatusOr<std::unique_ptr<Provider>> CreatePhantomProvider(
    const AccountSetup& setup, std::shared_ptr<http::HttpTransport> transport) {
  auto account = std::make_shared<Account>();
  account->id = setup.account;
  account->store = setup.store;

  absl::Status status;
  std::vector<std::string> keys;
  for (const auto& [key, value] : setup.options) keys.push_back(key);
  std::sort(keys.begin(), keys.end());
  static const std::set<std::string> kKnown = {"dialect", "region", "service", "rest_endpoint",
                                               "default_location", "max_records"};
  for (const std::string& key : keys) {
    if (kKnown.count(key) == 0) {
      AddFieldViolation(status, absl::StrCat("options.", key),
                        absl::StrCat("unknown option \"", key,
                                     "\"; the phantom provider takes dialect, region, service, "
                                     "rest_endpoint, default_location and max_records"));
    }
  }
  if (!status.ok()) return status;
  auto option = [&](absl::string_view key) -> std::string {
    auto it = setup.options.find(std::string(key));
    return it == setup.options.end() ? "" : it->second;
  };
  const std::string dialect = option("dialect");
  if (dialect.empty() || dialect == "phantom") {
    account->dialect = Dialect::kPhantom;
  } else if (dialect == "aws") {
    account->dialect = Dialect::kAws;
  } else {
    return InvalidField("options.dialect", "must be \"phantom\" or \"aws\"");
  }
  if (const std::string mr = option("max_records"); !mr.empty()) {
    if (!absl::SimpleAtoi(mr, &account->max_records) || account->max_records < 1 ||
        account->max_records > 100) {
      return InvalidField("options.max_records", "must be an integer from 1 to 100");
    }
  }
  account->default_location = option("default_location");
  if (!account->default_location.empty()) {
    RETURN_IF_ERROR(ValidateId("options.default_location", account->default_location));
  }

  // Secret: "AK:SK" [ "\n" "USER:PASSWORD" ]. Messages never repeat it.
  std::vector<std::string> lines =
      absl::StrSplit(absl::StripTrailingAsciiWhitespace(setup.secret), '\n', absl::SkipEmpty());
  for (std::string& line : lines) line = std::string(absl::StripAsciiWhitespace(line));
  if (lines.empty() || lines.size() > 2) {
    return InvalidField("secret",
                        "must be ACCESS_KEY:SECRET_KEY, optionally followed by a line "
                        "USERNAME:PASSWORD for Phantom's REST API");
  }
  {
    const size_t colon = lines[0].find(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == lines[0].size()) {
      return InvalidField("secret", "the first line must be ACCESS_KEY:SECRET_KEY");
    }
    account->credentials.access_key_id = lines[0].substr(0, colon);
    account->credentials.secret_access_key = lines[0].substr(colon + 1);
  }
  if (lines.size() == 2) {
    const size_t colon = lines[1].find(':');
    if (colon == std::string::npos || colon == 0) {
      return InvalidField("secret", "the second line must be USERNAME:PASSWORD");
    }
    account->username = lines[1].substr(0, colon);
    account->password = lines[1].substr(colon + 1);
  }

  http::Endpoint endpoint;
  ASSIGN_OR_RETURN(account->query,
                   MakeClient("endpoint", setup.endpoint, setup, transport, &endpoint));
  std::string host_port, host, base_path;
  SplitBaseUrl(endpoint.base_url, &host_port, &host, &base_path);
  account->query_path = base_path + "/";
  // Phantom strips the port before it checks the signature (B.2 step 3);
  // AWS (and moto) check the Host header as sent, port included.
  account->signed_host = account->dialect == Dialect::kPhantom ? host : host_port;
  if (account->dialect == Dialect::kAws) {
    account->region = "us-east-1";
    account->service = "autoscaling";
  } else {
    std::tie(account->region, account->service) = BotoScope(host);
  }
  if (const std::string r = option("region"); !r.empty()) account->region = r;
  if (const std::string s = option("service"); !s.empty()) account->service = s;
  for (const auto& [field, value] : {std::pair{"options.region", account->region},
                                     std::pair{"options.service", account->service}}) {
    for (char c : value) {
      if (!(absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.')) {
        return InvalidField(field, "may only hold letters, digits, '-', '_' and '.'");
      }
    }
  }

  if (const std::string rest = option("rest_endpoint"); !rest.empty()) {
    if (account->dialect != Dialect::kPhantom) {
      return InvalidField("options.rest_endpoint", "only the phantom dialect has a REST API");
    }
    if (account->username.empty()) {
      return InvalidField("secret",
                          "rest_endpoint needs a second line USERNAME:PASSWORD in the secret");
    }
    http::Endpoint rest_endpoint;
    ASSIGN_OR_RETURN(account->rest, MakeClient("options.rest_endpoint", rest, setup, transport,
                                               &rest_endpoint));
  }
  return std::make_unique<PhantomProvider>(std::move(account));
}

absl::Status RegisterPhantom(AdapterRegistry& registry) {
  return registry.Register(PhantomProviderInfo(), [](const AccountSetup& setup) {
    return CreatePhantomProvider(setup);
  });
}

}  // namespace cloudplane::adapters::phantom
