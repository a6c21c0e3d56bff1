// How the CloudSigma adapter talks to the API: the account, one request, and
// the lookups every service (and the websocket feed) builds on. Internal to
// adapters/cloudsigma.
//
// Every function answers through its callback exactly once, on the HTTP
// transport thread or inline; none blocks, and none touches the server's
// store. `context` strings ("GET drives <uuid>") prefix errors and never hold
// a body, a header or the secret.
#ifndef CLOUDPLANE_ADAPTERS_CLOUDSIGMA_CLOUDSIGMA_CALLS_H_
#define CLOUDPLANE_ADAPTERS_CLOUDSIGMA_CLOUDSIGMA_CALLS_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "adapters/cloudsigma/cloudsigma_wire.h"
#include "adapters/common/http/http_client.h"
#include "adapters/common/kit/send.h"
#include "adapters/provider.h"

namespace cloudplane::adapters::cloudsigma {

// One CloudSigma account, shared by its Provider, the Provider's requests in
// flight and its feed.
struct Account {
  std::string id;
  std::unique_ptr<http::HttpClient> client;
  std::string authorization;  // "Basic …"; never logged
};
using AccountPtr = std::shared_ptr<const Account>;

// `/<collection>/<uuid>/`.
std::string ObjectPath(absl::string_view collection, absl::string_view uuid);

// Sends one request with CloudSigma's headers (kit::Send): every HTTP
// response reaches `done`, whatever its status.
void Send(const AccountPtr& account, absl::Time deadline, absl::string_view method,
          std::string path, std::string body, absl::string_view context,
          kit::ResponseCallback done);

// Send, then StatusFromResponse: only 2xx responses reach `done`.
// `field_prefix` ("volume.") names the request field of a validation error.
void Call(const AccountPtr& account, absl::Time deadline, absl::string_view method,
          std::string path, std::string body, std::string context, kit::ResponseCallback done,
          std::string field_prefix = "");

// Every object of a list (`path` such as "/drives/detail/?fields=uuid,meta"),
// fetched page by page (limit/offset, pagination.rst) with kit::FetchAllPages.
void ListAll(AccountPtr account, absl::Time deadline, std::string path,
             Callback<std::vector<WireObject>> done);

// uuid → chosen id of a collection ("drives"/"servers"), from `uuid,meta`.
void LoadIds(const AccountPtr& account, absl::Time deadline, const std::string& collection,
             Callback<IdMap> done);

// uuid → chosen id of those of `uuids` that are objects of `collection` with
// a chosen id: GET /<collection>/detail/?fields=uuid,meta&uuid=a,b,…
// (general.rst: a comma in a filter value is OR), kUuidsPerLookup uuids per
// request (a query of ~3.7 KB), the requests sent at once. Strings that are
// no uuid are skipped.
// Costs the number of uuids asked, not the size of the collection.
inline constexpr int kUuidsPerLookup = 100;
void LoadIdsOf(const AccountPtr& account, absl::Time deadline, const std::string& collection,
               std::vector<std::string> uuids, Callback<IdMap> done);

// One list request: GET `path` (such as "/servers/detail/") with
// limit=`limit` (>= 1; CloudSigma's 0 would mean all) and offset=`offset`.
void FetchListPage(const AccountPtr& account, absl::Time deadline, absl::string_view path,
                   int64_t offset, int64_t limit, Callback<Page> done);

// GETs one object; NOT_FOUND "<what> <resource_name> does not exist" for 404.
void GetObject(const AccountPtr& account, absl::Time deadline, const std::string& collection,
               const std::string& uuid, const std::string& resource_name,
               absl::string_view what, Callback<WireObject> done);

// The object named by `id`: the uuid itself when `id` has uuid form, else the
// object whose meta holds it as its chosen id (one list of `uuid,meta`).
// NOT_FOUND naming `resource_name` when there is none.
void FindObject(const AccountPtr& account, absl::Time deadline, const std::string& collection,
                const std::string& id, const std::string& resource_name, absl::string_view what,
                Callback<WireObject> done);

// Looks for an object this operation created before (a re-drive after a
// crash), or one that already has `chosen_id`. `found` gets the uuid of this
// operation's object, ALREADY_EXISTS naming `resource_name` for a clash, or
// nullopt.
void FindExisting(const AccountPtr& account, absl::Time deadline, const std::string& collection,
                  const std::string& chosen_id, const std::string& operation,
                  const std::string& resource_name, Callback<std::optional<std::string>> found);

// A create that a re-drive repeats safely: FindExisting, then the object
// this operation made before (GetObject, named by its uuid), or else
// `create`'s. A chosen id in use is ALREADY_EXISTS naming `resource_name`;
// `create` never runs then.
void FindOrCreate(const AccountPtr& account, absl::Time deadline, const std::string& collection,
                  const std::string& chosen_id, const std::string& operation,
                  const std::string& resource_name, absl::string_view what,
                  absl::AnyInvocable<void(Callback<WireObject>) &&> create,
                  Callback<WireObject> done);

// FindOrCreate whose create is one POST of `body` to `/<collection>/`
// ("POST <collection>"), answered with the new object. `field_prefix`
// ("key_pair.") names the request field of a validation error.
void CreateObject(const AccountPtr& account, absl::Time deadline, const std::string& collection,
                  const std::string& chosen_id, const std::string& operation,
                  const std::string& resource_name, absl::string_view what, std::string body,
                  std::string field_prefix, Callback<WireObject> done);

// The answer to the lookup of a delete's object (FindObject or GetObject):
// `then` gets the object; NOT_FOUND with `allow_missing` is the finished
// delete (Empty); any other error reaches `done`.
Callback<WireObject> ForDelete(
    bool allow_missing, Callback<MutationProgress> done,
    absl::AnyInvocable<void(WireObject, Callback<MutationProgress>) &&> then);

// A delete of the object named by `id` (FindObject; ForDelete's
// allow_missing): `check`, when given, may refuse the object found (its
// non-OK status is the answer); then DELETE `/<collection>/<uuid>/`
// ("DELETE <noun> <uuid>"), answered by `deleted(uuid)` when given, else
// finished with Empty.
void DeleteObject(const AccountPtr& account, absl::Time deadline, const std::string& collection,
                  const std::string& id, const std::string& resource_name,
                  absl::string_view what, absl::string_view noun, bool allow_missing,
                  absl::AnyInvocable<absl::Status(const WireObject&) &&> check,
                  absl::AnyInvocable<MutationProgress(const std::string& uuid) &&> deleted,
                  Callback<MutationProgress> done);

// Object → message, loading the other collection's ids when it refers to
// objects there.
void RenderVolume(const AccountPtr& account, absl::Time deadline, const WireObject& drive,
                  Callback<v1::Volume> done);
void RenderInstance(const AccountPtr& account, absl::Time deadline, const WireObject& server,
                    Callback<v1::Instance> done);

// Renders a page of objects with one id lookup (LoadIdsOf) of the uuids they
// refer to in `other_collection`: the page's references, not the whole other
// collection. When that lookup fails the list is still answered; references
// then show uuids.
template <typename T>
void RenderAll(const AccountPtr& account, absl::Time deadline, std::vector<WireObject> objects,
               const std::string& other_collection,
               absl::AnyInvocable<absl::StatusOr<T>(const std::string&, const IdMap&)> render,
               Callback<std::vector<T>> done) {
  std::vector<std::string> refs;
  for (const auto& o : objects) {
    refs.insert(refs.end(), o.referenced_uuids.begin(), o.referenced_uuids.end());
  }
  auto finish = [objects = std::move(objects), render = std::move(render),
                 done = std::move(done)](const IdMap& ids) mutable {
    std::vector<T> out;
    for (const WireObject& o : objects) {
      absl::StatusOr<T> t = render(o.json, ids);
      if (!t.ok()) return std::move(done)(t.status());
      out.push_back(*std::move(t));
    }
    std::move(done)(std::move(out));
  };
  if (refs.empty()) return finish({});
  LoadIdsOf(account, deadline, other_collection, std::move(refs),
            [finish = std::move(finish)](absl::StatusOr<IdMap> ids) mutable {
              finish(ids.ok() ? *ids : IdMap());
            });
}

}  // namespace cloudplane::adapters::cloudsigma

#endif  // CLOUDPLANE_ADAPTERS_CLOUDSIGMA_CLOUDSIGMA_CALLS_H_
