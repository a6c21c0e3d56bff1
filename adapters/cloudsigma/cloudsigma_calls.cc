#include "adapters/cloudsigma/cloudsigma_calls.h"

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "adapters/common/kit/lists.h"
#include "adapters/common/kit/progress.h"
#include "base/errors.h"
#include "base/reasons.h"
#include "google/protobuf/empty.pb.h"

namespace cloudplane::adapters::cloudsigma {
namespace {

using http::HttpResponse;

// Pages of 100 (CloudSigma's default is 20).
constexpr int kPageLimit = 100;

// One page of a list at `offset` (the FetchAllPages cursor, "" for 0); the
// next cursor is the offset after it, "" once total_count is reached.
void FetchPage(const AccountPtr& account, absl::Time deadline, const std::string& path,
               const std::string& context, const std::string& cursor,
               Callback<kit::ProviderPage<WireObject>> done) {
  int64_t offset = 0;
  if (!cursor.empty() && !absl::SimpleAtoi(cursor, &offset)) {
    return std::move(done)(absl::InternalError(absl::StrCat(context, ": bad page cursor")));
  }
  FetchListPage(account, deadline, path, offset, kPageLimit,
                [offset, done = std::move(done)](absl::StatusOr<Page> page) mutable {
                  if (!page.ok()) return std::move(done)(page.status());
                  const int64_t end = offset + static_cast<int64_t>(page->objects.size());
                  kit::ProviderPage<WireObject> out;
                  if (!page->objects.empty() && end < page->total_count) {
                    out.next = absl::StrCat(end);
                  }
                  out.items = std::move(page->objects);
                  std::move(done)(std::move(out));
                });
}

// The uuid named by `id`: itself when in uuid form, else the object whose
// meta holds it. NOT_FOUND naming `resource_name` when none.
void ResolveId(const AccountPtr& account, absl::Time deadline, const std::string& collection,
               const std::string& id, const std::string& resource_name, absl::string_view what,
               Callback<std::string> done) {
  if (IsUuid(id)) return std::move(done)(id);
  ListAll(account, deadline, absl::StrCat("/", collection, "/detail/?fields=uuid,meta"),
          [id, resource_name, what = std::string(what),
           done = std::move(done)](absl::StatusOr<std::vector<WireObject>> objects) mutable {
            if (!objects.ok()) return std::move(done)(objects.status());
            for (const WireObject& o : *objects) {
              if (o.chosen_id == id) return std::move(done)(o.uuid);
            }
            std::move(done)(kit::NotFound(what, resource_name));
          });
}

}  // namespace

std::string ObjectPath(absl::string_view collection, absl::string_view uuid) {
  return absl::StrCat("/", collection, "/", uuid, "/");
}

void Send(const AccountPtr& account, absl::Time deadline, absl::string_view method,
          std::string path, std::string body, absl::string_view context,
          kit::ResponseCallback done) {
  http::HttpRequest request;
  request.method = std::string(method);
  request.path_and_query = std::move(path);
  request.deadline = deadline;
  // HTTP Basic on every request (general.rst, authentication).
  request.headers.emplace_back("Authorization", account->authorization);
  request.headers.emplace_back("Accept", "application/json");
  // Both official clients send this on every request, GET included
  // (pycloudsigma generic.py, cloudsigma-sdk-go client.go).
  request.headers.emplace_back("Content-Type", "application/json");
  request.body = std::move(body);
  // A read whose answer is cut short or garbled is sent again (kit/guard.h).
  if (request.method == "GET") request.validate = kit::CheckJsonAnswer;
  kit::Send(*account->client, std::move(request), context, std::move(done));
}

void Call(const AccountPtr& account, absl::Time deadline, absl::string_view method,
          std::string path, std::string body, std::string context, kit::ResponseCallback done,
          std::string field_prefix) {
  Send(account, deadline, method, std::move(path), std::move(body), context,
       [context, field_prefix, done = std::move(done)](absl::StatusOr<HttpResponse> r) mutable {
         if (!r.ok()) return done(r.status());
         if (absl::Status s = StatusFromResponse(r->status, r->body, context, field_prefix);
             !s.ok()) {
           return done(s);
         }
         done(std::move(r));
       });
}

void ListAll(AccountPtr account, absl::Time deadline, std::string path,
             Callback<std::vector<WireObject>> done) {
  std::string context = absl::StrCat("GET ", path.substr(0, path.find('?')));
  kit::FetchAllPages<WireObject>(
      context,
      [account = std::move(account), deadline, path = std::move(path), context](
          const std::string& cursor, Callback<kit::ProviderPage<WireObject>> page_done) {
        FetchPage(account, deadline, path, context, cursor, std::move(page_done));
      },
      std::move(done));
}

void LoadIds(const AccountPtr& account, absl::Time deadline, const std::string& collection,
             Callback<IdMap> done) {
  ListAll(account, deadline, absl::StrCat("/", collection, "/detail/?fields=uuid,meta"),
          [done = std::move(done)](absl::StatusOr<std::vector<WireObject>> objects) mutable {
            if (!objects.ok()) return std::move(done)(objects.status());
            IdMap ids;
            for (const WireObject& o : *objects) {
              if (!o.chosen_id.empty()) ids[o.uuid] = o.chosen_id;
            }
            std::move(done)(std::move(ids));
          });
}

void LoadIdsOf(const AccountPtr& account, absl::Time deadline, const std::string& collection,
               std::vector<std::string> uuids, Callback<IdMap> done) {
  // Each uuid once; only uuids, so nothing else reaches the query string.
  std::sort(uuids.begin(), uuids.end());
  uuids.erase(std::unique(uuids.begin(), uuids.end()), uuids.end());
  uuids.erase(std::remove_if(uuids.begin(), uuids.end(),
                             [](const std::string& u) { return !IsUuid(u); }),
              uuids.end());
  if (uuids.empty()) return std::move(done)(IdMap());
  // The batches answer on the transport thread or inline; the last one to
  // answer hands over the map (or the first error).
  struct Lookup {
    absl::Mutex mu;
    int pending = 0;
    IdMap ids;
    absl::Status error;
    Callback<IdMap> done;
  };
  auto lookup = std::make_shared<Lookup>();
  lookup->done = std::move(done);
  const size_t batches = (uuids.size() + kUuidsPerLookup - 1) / kUuidsPerLookup;
  lookup->pending = static_cast<int>(batches);
  for (size_t b = 0; b < batches; ++b) {
    const size_t begin = b * kUuidsPerLookup;
    const size_t end = std::min(uuids.size(), begin + kUuidsPerLookup);
    std::vector<std::string> batch(uuids.begin() + begin, uuids.begin() + end);
    const std::string path = absl::StrCat("/", collection, "/detail/?fields=uuid,meta&uuid=",
                                          absl::StrJoin(batch, ","));
    FetchListPage(
        account, deadline, path, 0, static_cast<int64_t>(batch.size()),
        [lookup](absl::StatusOr<Page> page) {
          Callback<IdMap> finish;
          {
            absl::MutexLock lock(&lookup->mu);
            if (!page.ok()) {
              if (lookup->error.ok()) lookup->error = page.status();
            } else {
              for (const WireObject& o : page->objects) {
                if (!o.chosen_id.empty()) lookup->ids[o.uuid] = o.chosen_id;
              }
            }
            if (--lookup->pending > 0) return;
            finish = std::move(lookup->done);
          }
          if (!lookup->error.ok()) return std::move(finish)(lookup->error);
          std::move(finish)(std::move(lookup->ids));
        });
  }
}

void FetchListPage(const AccountPtr& account, absl::Time deadline, absl::string_view path,
                   int64_t offset, int64_t limit, Callback<Page> done) {
  const std::string context = absl::StrCat("GET ", path.substr(0, path.find('?')));
  Call(account, deadline, "GET",
       absl::StrCat(path, absl::StrContains(path, '?') ? "&" : "?", "limit=", limit,
                    "&offset=", offset),
       "", context, [done = std::move(done)](absl::StatusOr<HttpResponse> r) mutable {
         if (!r.ok()) return std::move(done)(r.status());
         std::move(done)(ParsePage(r->body));
       });
}

void GetObject(const AccountPtr& account, absl::Time deadline, const std::string& collection,
               const std::string& uuid, const std::string& resource_name,
               absl::string_view what, Callback<WireObject> done) {
  const std::string context = absl::StrCat("GET ", collection, " ", uuid);
  Send(account, deadline, "GET", ObjectPath(collection, uuid), "", context,
       [context, resource_name, what = std::string(what),
        done = std::move(done)](absl::StatusOr<HttpResponse> r) mutable {
         if (!r.ok()) return std::move(done)(r.status());
         if (r->status == 404) return std::move(done)(kit::NotFound(what, resource_name));
         if (absl::Status s = StatusFromResponse(r->status, r->body, context); !s.ok()) {
           return std::move(done)(s);
         }
         std::move(done)(ParseObject(r->body));
       });
}

void FindObject(const AccountPtr& account, absl::Time deadline, const std::string& collection,
                const std::string& id, const std::string& resource_name, absl::string_view what,
                Callback<WireObject> done) {
  ResolveId(account, deadline, collection, id, resource_name, what,
            [account, deadline, collection, resource_name, what = std::string(what),
             done = std::move(done)](absl::StatusOr<std::string> uuid) mutable {
              if (!uuid.ok()) return std::move(done)(uuid.status());
              GetObject(account, deadline, collection, *uuid, resource_name, what,
                        std::move(done));
            });
}

void FindExisting(const AccountPtr& account, absl::Time deadline, const std::string& collection,
                  const std::string& chosen_id, const std::string& operation,
                  const std::string& resource_name, Callback<std::optional<std::string>> found) {
  if (chosen_id.empty() && operation.empty()) return std::move(found)(std::nullopt);
  ListAll(account, deadline, absl::StrCat("/", collection, "/detail/?fields=uuid,meta"),
          [chosen_id, operation, resource_name,
           found = std::move(found)](absl::StatusOr<std::vector<WireObject>> objects) mutable {
            if (!objects.ok()) return std::move(found)(objects.status());
            for (const WireObject& o : *objects) {
              if (!operation.empty() && o.operation == operation) {
                return std::move(found)(o.uuid);
              }
              if (!chosen_id.empty() && o.chosen_id == chosen_id) {
                return std::move(found)(WithErrorInfo(
                    absl::AlreadyExistsError(absl::StrCat(resource_name, " already exists")),
                    reasons::kResourceAlreadyExists, {{"resource", resource_name}}));
              }
            }
            std::move(found)(std::nullopt);
          });
}

void FindOrCreate(const AccountPtr& account, absl::Time deadline, const std::string& collection,
                  const std::string& chosen_id, const std::string& operation,
                  const std::string& resource_name, absl::string_view what,
                  absl::AnyInvocable<void(Callback<WireObject>) &&> create,
                  Callback<WireObject> done) {
  FindExisting(
      account, deadline, collection, chosen_id, operation, resource_name,
      [account, deadline, collection, what = std::string(what), create = std::move(create),
       done = std::move(done)](absl::StatusOr<std::optional<std::string>> found) mutable {
        if (!found.ok()) return std::move(done)(found.status());
        if (found->has_value()) {
          return GetObject(account, deadline, collection, **found, **found, what,
                           std::move(done));
        }
        std::move(create)(std::move(done));
      });
}

void CreateObject(const AccountPtr& account, absl::Time deadline, const std::string& collection,
                  const std::string& chosen_id, const std::string& operation,
                  const std::string& resource_name, absl::string_view what, std::string body,
                  std::string field_prefix, Callback<WireObject> done) {
  FindOrCreate(
      account, deadline, collection, chosen_id, operation, resource_name, what,
      [account, deadline, collection, body = std::move(body),
       field_prefix = std::move(field_prefix)](Callback<WireObject> created) mutable {
        Call(
            account, deadline, "POST", absl::StrCat("/", collection, "/"), std::move(body),
            absl::StrCat("POST ", collection),
            [created = std::move(created)](absl::StatusOr<HttpResponse> r) mutable {
              if (!r.ok()) return std::move(created)(r.status());
              std::move(created)(ParseObject(r->body));
            },
            std::move(field_prefix));
      },
      std::move(done));
}

Callback<WireObject> ForDelete(
    bool allow_missing, Callback<MutationProgress> done,
    absl::AnyInvocable<void(WireObject, Callback<MutationProgress>) &&> then) {
  return [allow_missing, done = std::move(done),
          then = std::move(then)](absl::StatusOr<WireObject> o) mutable {
    if (!o.ok()) {
      if (allow_missing && o.status().code() == absl::StatusCode::kNotFound) {
        return std::move(done)(kit::Finished(google::protobuf::Empty()));
      }
      return std::move(done)(o.status());
    }
    std::move(then)(*std::move(o), std::move(done));
  };
}

void DeleteObject(const AccountPtr& account, absl::Time deadline, const std::string& collection,
                  const std::string& id, const std::string& resource_name,
                  absl::string_view what, absl::string_view noun, bool allow_missing,
                  absl::AnyInvocable<absl::Status(const WireObject&) &&> check,
                  absl::AnyInvocable<MutationProgress(const std::string& uuid) &&> deleted,
                  Callback<MutationProgress> done) {
  FindObject(
      account, deadline, collection, id, resource_name, what,
      ForDelete(allow_missing, std::move(done),
                [account, deadline, collection, noun = std::string(noun),
                 check = std::move(check), deleted = std::move(deleted)](
                    WireObject o, Callback<MutationProgress> answer) mutable {
                  if (check) {
                    if (absl::Status s = std::move(check)(o); !s.ok()) {
                      return std::move(answer)(s);
                    }
                  }
                  Call(account, deadline, "DELETE", ObjectPath(collection, o.uuid), "",
                       absl::StrCat("DELETE ", noun, " ", o.uuid),
                       [uuid = o.uuid, deleted = std::move(deleted),
                        answer = std::move(answer)](absl::StatusOr<HttpResponse> r) mutable {
                         if (!r.ok()) return std::move(answer)(r.status());
                         if (!deleted) {
                           return std::move(answer)(kit::Finished(google::protobuf::Empty()));
                         }
                         std::move(answer)(std::move(deleted)(uuid));
                       });
                }));
}

void RenderVolume(const AccountPtr& account, absl::Time deadline, const WireObject& drive,
                  Callback<v1::Volume> done) {
  if (drive.referenced_uuids.empty()) {
    return std::move(done)(DriveToVolume(drive.json, account->id, {}));
  }
  LoadIdsOf(account, deadline, "servers", drive.referenced_uuids,
            [account, json = drive.json,
             done = std::move(done)](absl::StatusOr<IdMap> ids) mutable {
              if (!ids.ok()) return std::move(done)(ids.status());
              std::move(done)(DriveToVolume(json, account->id, *ids));
            });
}

void RenderInstance(const AccountPtr& account, absl::Time deadline, const WireObject& server,
                    Callback<v1::Instance> done) {
  if (server.referenced_uuids.empty()) {
    return std::move(done)(ServerToInstance(server.json, account->id, {}));
  }
  LoadIdsOf(account, deadline, "drives", server.referenced_uuids,
            [account, json = server.json,
             done = std::move(done)](absl::StatusOr<IdMap> ids) mutable {
              if (!ids.ok()) return std::move(done)(ids.status());
              std::move(done)(ServerToInstance(json, account->id, *ids));
            });
}

}  // namespace cloudplane::adapters::cloudsigma
