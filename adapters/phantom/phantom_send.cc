// The two ways the adapter talks to Phantom: the Auto Scaling query API
// (every action, and every page of a describe) and the REST API (a token,
// then the call).
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "adapters/common/kit/lists.h"
#include "adapters/common/kit/send.h"
#include "adapters/phantom/phantom_provider.h"
#include "base/errors.h"
#include "base/reasons.h"

namespace cloudplane::adapters::phantom {
namespace {

using http::HttpResponse;

// Phantom reports a duplicate name as InvalidParameterValue "Name already in
// use" (pyhantom); everything else follows the shared table.
absl::Status QueryStatus(int http_status, absl::string_view body, absl::string_view context) {
  aws::QueryError error = aws::ParseQueryError(http_status, body);
  absl::Status s = aws::StatusFromQueryError(error, context);
  if (error.code == "InvalidParameterValue" &&
      absl::StrContains(absl::AsciiStrToLower(error.message), "already in use")) {
    std::map<std::string, std::string> meta;
    if (auto info = GetErrorInfo(s); info.has_value()) {
      for (const auto& [k, v] : info->metadata()) meta[k] = v;
    }
    return WithErrorInfo(absl::AlreadyExistsError(s.message()), reasons::kResourceAlreadyExists, meta);
  }
  return s;
}

// Every page of a describe action; `parse` reads the members of one page.
template <typename Item>
void DescribeAll(const AccountPtr& account, absl::Time deadline, std::string action,
                 aws::QueryParams params,
                 absl::StatusOr<std::vector<Item>> (*parse)(const xml::Node& result),
                 Callback<std::vector<Item>> done) {
  kit::FetchAllPages<Item>(
      action,
      [account, deadline, action, params = std::move(params), parse](
          const std::string& cursor, Callback<kit::ProviderPage<Item>> page_done) {
        aws::QueryParams page_params = params;
        page_params.emplace_back("MaxRecords", absl::StrCat(account->max_records));
        if (!cursor.empty()) page_params.emplace_back("NextToken", cursor);
        Query(account, deadline, action, std::move(page_params),
              [parse, page_done = std::move(page_done)](
                  absl::StatusOr<aws::QueryResponse> r) mutable {
                if (!r.ok()) return std::move(page_done)(r.status());
                absl::StatusOr<std::vector<Item>> items = parse(*r->result);
                if (!items.ok()) return std::move(page_done)(items.status());
                std::move(page_done)(kit::ProviderPage<Item>{*std::move(items), r->next_token});
              });
      },
      std::move(done));
}

}  // namespace

// ---------------------------------------------------------------------------
// The query API.

void Query(const AccountPtr& account, absl::Time deadline, const std::string& action,
           aws::QueryParams params, QueryCallback done) {
  params.emplace_back("Action", action);
  params.emplace_back("Version", std::string(kApiVersion));
  const std::string encoded = aws::EncodeQueryParams(std::move(params));
  // Phantom: boto 2's verbs, describes GET and mutations POST (boto/ec2/autoscale). AWS:
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
  // Only the account's own values can be refused here; the field is named.
  if (!signed_request.ok()) return done(signed_request.status());

  http::HttpRequest request;
  request.method = to_sign.method;
  request.path_and_query =
      post ? account->query_path : absl::StrCat(account->query_path, "?", encoded);
  request.deadline = deadline;
  for (auto& header : signed_request->headers_to_add) request.headers.push_back(header);
  if (post) {
    request.headers.emplace_back("Content-Type",
                                 "application/x-www-form-urlencoded; charset=UTF-8");
    request.body = encoded;
  }
  if (absl::StartsWith(action, "Describe")) {
    // A read, in either verb: sent again when the answer fails or is garbled
    // (kit/guard.h); the AWS dialect's POST is a read too.
    request.idempotent = true;
    request.validate = [action](const HttpResponse& r) {
      return aws::ParseQueryResponse(action, r.body).status();
    };
  }
  kit::Send(*account->query, std::move(request), action,
            [action, done = std::move(done)](absl::StatusOr<HttpResponse> r) mutable {
              if (!r.ok()) return done(r.status());
              if (r->status < 200 || r->status > 299) {
                return done(QueryStatus(r->status, r->body, action));
              }
              absl::StatusOr<aws::QueryResponse> parsed =
                  aws::ParseQueryResponse(action, r->body);
              if (!parsed.ok()) return done(kit::TransportError(action, parsed.status()));
              done(std::move(parsed));
            });
}

void DescribeLaunchConfigs(const AccountPtr& account, absl::Time deadline,
                           Callback<std::vector<WireLaunchConfig>> done) {
  DescribeAll<WireLaunchConfig>(account, deadline, "DescribeLaunchConfigurations", {},
                                &ParseLaunchConfigs, std::move(done));
}

void DescribeGroups(const AccountPtr& account, absl::Time deadline, const std::string& name,
                    Callback<std::vector<WireGroup>> done) {
  aws::QueryParams params;
  if (!name.empty()) params.emplace_back("AutoScalingGroupNames.member.1", name);
  DescribeAll<WireGroup>(
      account, deadline, "DescribeAutoScalingGroups", std::move(params), &ParseGroups,
      [name, done = std::move(done)](absl::StatusOr<std::vector<WireGroup>> groups) mutable {
        if (!groups.ok() || name.empty()) return std::move(done)(std::move(groups));
        // Filter by name here too: not every server honours the filter.
        std::vector<WireGroup> mine;
        for (WireGroup& g : *groups) {
          if (g.name == name) mine.push_back(std::move(g));
        }
        std::move(done)(std::move(mine));
      });
}

// ---------------------------------------------------------------------------
// The REST API.

namespace {

void WithToken(const AccountPtr& account, absl::Time deadline,
               absl::AnyInvocable<void(absl::StatusOr<Token>)> done) {
  {
    absl::MutexLock lock(&account->mu);
    if (!account->token.empty()) return done(Token{account->user_id, account->token});
  }
  http::HttpRequest request;
  request.method = "POST";
  request.path_and_query = "/token";
  request.deadline = deadline;
  request.headers.emplace_back("Content-Type", "application/x-www-form-urlencoded");
  request.body = TokenRequestBody(account->username, account->password);
  kit::Send(*account->rest, std::move(request), "POST /token",
            [account, done = std::move(done)](absl::StatusOr<HttpResponse> r) mutable {
              if (!r.ok()) return done(r.status());
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
             kit::ResponseCallback done) {
  WithToken(account, deadline, [account, deadline, path, retried, done = std::move(done)](
                                   absl::StatusOr<Token> token) mutable {
    if (!token.ok()) return done(token.status());
    http::HttpRequest request;
    request.path_and_query = path;
    request.deadline = deadline;
    request.headers.emplace_back(
        "Authorization",
        absl::StrCat("Basic ", absl::Base64Escape(absl::StrCat(token->user_id, ":", token->token))));
    request.headers.emplace_back("Accept", "application/json");
    request.validate = kit::CheckJsonAnswer;  // a read: garbled answers are sent again
    kit::Send(*account->rest, std::move(request), absl::StrCat("GET ", path),
              [account, deadline, path, retried, used = token->token,
               done = std::move(done)](absl::StatusOr<HttpResponse> r) mutable {
                if (r.ok() && r->status == 403 && !retried) {
                  // The token expired (django-tokenapi: TOKEN_TIMEOUT_DAYS) or
                  // the password changed: forget it and ask once more.
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

}  // namespace

void FetchSites(const AccountPtr& account, absl::Time deadline,
                Callback<std::vector<v1::Location>> done) {
  if (account->rest == nullptr) {
    return std::move(done)(WithErrorInfo(
        absl::FailedPreconditionError(
            "locations need Phantom's REST API: set the option rest_endpoint and a second "
            "secret line USERNAME:PASSWORD (dialect phantom)"),
        reasons::kWrongState));
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

}  // namespace cloudplane::adapters::phantom
