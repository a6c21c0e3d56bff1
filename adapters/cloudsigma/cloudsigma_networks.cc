// NetworksService on CloudSigma VLANs and static IPs (protocol reference §7,
// §9). Both are bought as subscriptions (POST /subscriptions/, resource
// "vlan" or "ip", one for a month) and disappear only when the subscription
// ends; CloudSigma has no DELETE for them. So:
//   Create/Reserve  buy the subscription, then PUT the new object's meta
//     (labels, and the operation for a re-drive to find it). When that PUT
//     fails, the purchase is undone as far as CloudSigma allows: its
//     auto-renewal is turned off, so it ends with the period.
//   Delete/Release  turn the subscription's auto-renewal off
//     (`?do=auto_renew` {"auto_renew": false}); the Operation is then done,
//     and the network (address) stays, state DELETING, until the
//     subscription's end_time (provider_details.subscription_end_time).
//     FAILED_PRECONDITION while a server uses it.
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "adapters/cloudsigma/cloudsigma_provider.h"
#include "adapters/common/kit/lists.h"
#include "adapters/common/kit/progress.h"
#include "base/errors.h"
#include "google/protobuf/empty.pb.h"

namespace cloudplane::adapters::cloudsigma {
namespace {

using http::HttpResponse;
using Empty = google::protobuf::Empty;

void LoadSubscriptions(const AccountPtr& account, absl::Time deadline,
                       Callback<SubscriptionMap> done) {
  ListAll(account, deadline, "/subscriptions/",
          [done = std::move(done)](absl::StatusOr<std::vector<WireObject>> objects) mutable {
            if (!objects.ok()) return std::move(done)(objects.status());
            SubscriptionMap subs;
            for (const WireObject& o : *objects) {
              absl::StatusOr<Subscription> sub = SubscriptionFromWire(o.json);
              if (!sub.ok()) return std::move(done)(sub.status());
              subs[sub->id] = *std::move(sub);
            }
            std::move(done)(std::move(subs));
          });
}

// Renders VLANs or IPs with one subscriptions list (and, for IPs in use, one
// id lookup of the servers).
template <typename T>
void RenderSubscribed(const AccountPtr& account, absl::Time deadline,
                      std::vector<WireObject> objects, Callback<std::vector<T>> done) {
  LoadSubscriptions(
      account, deadline,
      [account, deadline, objects = std::move(objects),
       done = std::move(done)](absl::StatusOr<SubscriptionMap> subs) mutable {
        if (!subs.ok()) return std::move(done)(subs.status());
        auto finish = [account, objects = std::move(objects), subs = *std::move(subs),
                       done = std::move(done)](const IdMap& server_ids) mutable {
          std::vector<T> out;
          for (const WireObject& o : objects) {
            absl::StatusOr<T> t;
            if constexpr (std::is_same_v<T, v1::Network>) {
              t = VlanToNetwork(o.json, account->id, subs);
            } else {
              t = IpToAddress(o.json, account->id, server_ids, subs);
            }
            if (!t.ok()) return std::move(done)(t.status());
            out.push_back(*std::move(t));
          }
          std::move(done)(std::move(out));
        };
        if constexpr (std::is_same_v<T, v1::Network>) {
          finish({});
        } else {
          LoadIds(account, deadline, "servers",
                  [finish = std::move(finish)](absl::StatusOr<IdMap> ids) mutable {
                    finish(ids.ok() ? *ids : IdMap());  // uuids when the lookup fails
                  });
        }
      });
}

template <typename T>
void RenderOne(const AccountPtr& account, absl::Time deadline, const WireObject& object,
               Callback<T> done) {
  RenderSubscribed<T>(account, deadline, {object},
                      [done = std::move(done)](absl::StatusOr<std::vector<T>> all) mutable {
                        if (!all.ok()) return std::move(done)(all.status());
                        std::move(done)(std::move(all->front()));
                      });
}

template <typename T>
void FinishWith(const AccountPtr& account, absl::Time deadline, const WireObject& object,
                Callback<MutationProgress> done) {
  RenderOne<T>(account, deadline, object,
               [done = std::move(done)](absl::StatusOr<T> t) mutable {
                 if (!t.ok()) return std::move(done)(t.status());
                 std::move(done)(kit::Finished(*t));
               });
}

// Stops the subscription renewing (§9): what ends a VLAN or an IP.
void StopRenewal(const AccountPtr& account, absl::Time deadline, const std::string& id,
                 kit::ResponseCallback done) {
  Call(account, deadline, "POST", absl::StrCat("/subscriptions/", id, "/action/?do=auto_renew"),
       R"({"auto_renew":false})", absl::StrCat("POST subscription ", id, " auto_renew"),
       std::move(done));
}

// Buys one `resource` ("vlan" or "ip") and labels the new object of
// `collection`; answers the labelled object. A re-driven call (same
// operation) adopts the object its first attempt labelled.
void Buy(const AccountPtr& account, absl::Time deadline, const std::string& resource,
         const std::string& collection, std::map<std::string, std::string> labels,
         const std::string& operation, Callback<WireObject> done) {
  FindOrCreate(
      account, deadline, collection, "", operation, "", resource,
      [account, deadline, resource, collection, labels = std::move(labels),
       operation](Callback<WireObject> done) mutable {
        Call(
            account, deadline, "POST", "/subscriptions/", SubscriptionCreateBody(resource),
            absl::StrCat("POST subscriptions (", resource, ")"),
            [account, deadline, resource, collection, labels = std::move(labels), operation,
             done = std::move(done)](absl::StatusOr<HttpResponse> r) mutable {
              if (!r.ok()) return std::move(done)(r.status());
              absl::StatusOr<WireObject> o = ParseObject(r->body);
              absl::StatusOr<Subscription> sub =
                  o.ok() ? SubscriptionFromWire(o->json) : absl::StatusOr<Subscription>(o.status());
              if (!sub.ok()) return std::move(done)(sub.status());
              if (sub->subscribed_object.empty()) {
                // Bought but nothing to show for it: end it with its period.
                StopRenewal(account, absl::Now() + absl::Seconds(30), sub->id,
                            [](absl::StatusOr<HttpResponse>) {});
                return std::move(done)(absl::InternalError(absl::StrCat(
                    "CloudSigma sold a ", resource, " subscription (", sub->id,
                    ") without a subscribed_object; its auto-renewal was turned off")));
              }
              const std::string uuid = sub->subscribed_object;
              // On failure from here the subscription is ended with its
              // period: nothing renews that the caller was told failed.
              auto undo = [account, id = sub->id](absl::Status s) {
                if (!kit::IsAmbiguous(s)) {
                  StopRenewal(account, absl::Now() + absl::Seconds(30), id,
                              [](absl::StatusOr<HttpResponse>) {});
                }
                return s;
              };
              GetObject(
                  account, deadline, collection, uuid, uuid, resource,
                  [account, deadline, collection, uuid, labels = std::move(labels), operation,
                   undo, done = std::move(done)](absl::StatusOr<WireObject> o) mutable {
                    if (!o.ok()) return std::move(done)(undo(o.status()));
                    std::map<std::string, std::string> reserved;
                    if (!operation.empty()) reserved[std::string(kOperationMetaKey)] = operation;
                    absl::StatusOr<std::string> body = EditMeta(o->json, labels, reserved);
                    if (!body.ok()) return std::move(done)(undo(body.status()));
                    Call(
                        account, deadline, "PUT", ObjectPath(collection, uuid), *body,
                        absl::StrCat("PUT ", collection, " ", uuid),
                        [undo, done = std::move(done)](absl::StatusOr<HttpResponse> r) mutable {
                          if (!r.ok()) return std::move(done)(undo(r.status()));
                          std::move(done)(ParseObject(r->body));
                        });
                  });
            });
      },
      std::move(done));
}

// Ends the subscription of the VLAN or IP `uuid` (see the file comment).
void EndSubscribed(const AccountPtr& account, absl::Time deadline, const std::string& collection,
                   const std::string& uuid, const std::string& name, absl::string_view what,
                   bool allow_missing, Callback<MutationProgress> done) {
  GetObject(
      account, deadline, collection, uuid, name, what,
      ForDelete(allow_missing, std::move(done),
                [account, deadline, name, what = std::string(what)](
                    WireObject o, Callback<MutationProgress> done) mutable {
                  absl::StatusOr<Subscribed> sub = SubscribedFromWire(o.json);
                  if (!sub.ok()) return std::move(done)(sub.status());
                  if (!sub->server_uuids.empty()) {
                    return std::move(done)(kit::WrongState(
                        absl::StrCat(what, " ", name, " is used by server ", sub->server_uuids[0],
                                     "; detach it first"),
                        name, "in use"));
                  }
                  if (sub->subscription_id.empty()) {
                    return std::move(done)(kit::WrongState(
                        absl::StrCat(what, " ", name,
                                     " has no subscription (a running server's dynamic address): "
                                     "nothing to release"),
                        name, "dynamic"));
                  }
                  // Already not renewing: StopRenewal again is harmless (a re-drive).
                  StopRenewal(account, deadline, sub->subscription_id,
                              [done = std::move(done)](absl::StatusOr<HttpResponse> r) mutable {
                                if (!r.ok()) return std::move(done)(r.status());
                                std::move(done)(kit::Finished(Empty()));
                              });
                }));
}

// The uuid of a network or address name; networks and addresses are named by
// their CloudSigma uuid (a VLAN's uuid, an IP's address).
absl::StatusOr<std::string> UuidOf(absl::string_view field, absl::string_view account,
                                   absl::string_view collection, absl::string_view name) {
  return IdFromName(field, account, collection, name);
}

template <typename Response, typename T>
void ListSubscribed(const AccountPtr& account, absl::Time deadline, const std::string& path,
                    int32_t page_size, std::string page_token, Callback<Response> done) {
  if (absl::Status s = kit::CheckPaging(page_size, page_token); !s.ok()) {
    return std::move(done)(s);
  }
  ListAll(account, deadline, path,
          [account, deadline, page_size, page_token = std::move(page_token),
           done = std::move(done)](absl::StatusOr<std::vector<WireObject>> objects) mutable {
            if (!objects.ok()) return std::move(done)(objects.status());
            RenderSubscribed<T>(
                account, deadline, *std::move(objects),
                [page_size, page_token, done = std::move(done)](
                    absl::StatusOr<std::vector<T>> all) mutable {
                  if (!all.ok()) return std::move(done)(all.status());
                  std::move(done)(
                      kit::AnswerPage<Response>(*std::move(all), page_size, page_token));
                });
          });
}

}  // namespace

void CloudSigmaProvider::ListNetworks(const CallContext& ctx,
                                      const v1::ListNetworksRequest& request,
                                      Callback<v1::ListNetworksResponse> done) {
  ListSubscribed<v1::ListNetworksResponse, v1::Network>(account_, ctx.deadline, "/vlans/detail/",
                                                        request.page_size(), request.page_token(),
                                                        std::move(done));
}

void CloudSigmaProvider::GetNetwork(const CallContext& ctx, const v1::GetNetworkRequest& request,
                                    Callback<v1::Network> done) {
  auto uuid = UuidOf("name", account_->id, "networks", request.name());
  if (!uuid.ok()) return std::move(done)(uuid.status());
  auto account = account_;
  const absl::Time deadline = ctx.deadline;
  GetObject(account, deadline, "vlans", *uuid, request.name(), "network",
            [account, deadline, done = std::move(done)](absl::StatusOr<WireObject> o) mutable {
              if (!o.ok()) return std::move(done)(o.status());
              RenderOne<v1::Network>(account, deadline, *o, std::move(done));
            });
}

void CloudSigmaProvider::CreateNetwork(const CallContext& ctx,
                                       const v1::CreateNetworkRequest& request,
                                       Callback<MutationProgress> done) {
  if (absl::Status s = ValidateLabels("network.labels", request.network().labels()); !s.ok()) {
    return std::move(done)(s);
  }
  if (ctx.validate_only) return std::move(done)(kit::Finished(v1::Network()));
  auto account = account_;
  const absl::Time deadline = ctx.deadline;
  Buy(account, deadline, "vlan", "vlans",
      {request.network().labels().begin(), request.network().labels().end()}, ctx.operation,
      [account, deadline, done = std::move(done)](absl::StatusOr<WireObject> vlan) mutable {
        if (!vlan.ok()) return std::move(done)(vlan.status());
        FinishWith<v1::Network>(account, deadline, *vlan, std::move(done));
      });
}

void CloudSigmaProvider::UpdateNetwork(const CallContext& ctx,
                                       const v1::UpdateNetworkRequest& request,
                                       Callback<MutationProgress> done) {
  auto uuid = UuidOf("network.name", account_->id, "networks", request.network().name());
  if (!uuid.ok()) return std::move(done)(uuid.status());
  for (const std::string& path : request.update_mask().paths()) {
    if (path != "labels") {
      return std::move(done)(InvalidField(
          "update_mask", absl::StrCat("\"", path,
                                      "\" cannot be updated (only a VLAN's meta can: labels)")));
    }
  }
  if (absl::Status s = ValidateLabels("network.labels", request.network().labels()); !s.ok()) {
    return std::move(done)(s);
  }
  if (ctx.validate_only) return std::move(done)(kit::Finished(v1::Network()));
  auto account = account_;
  const absl::Time deadline = ctx.deadline;
  std::map<std::string, std::string> labels(request.network().labels().begin(),
                                            request.network().labels().end());
  GetObject(
      account, deadline, "vlans", *uuid, request.network().name(), "network",
      [account, deadline, labels = std::move(labels),
       done = std::move(done)](absl::StatusOr<WireObject> vlan) mutable {
        if (!vlan.ok()) return std::move(done)(vlan.status());
        // Reserved keys (the creating operation) are kept.
        absl::StatusOr<std::string> body = EditMeta(vlan->json, labels, {});
        if (!body.ok()) return std::move(done)(body.status());
        Call(
            account, deadline, "PUT", ObjectPath("vlans", vlan->uuid), *body,
            absl::StrCat("PUT vlans ", vlan->uuid),
            [account, deadline, done = std::move(done)](absl::StatusOr<HttpResponse> r) mutable {
              if (!r.ok()) return std::move(done)(r.status());
              absl::StatusOr<WireObject> updated = ParseObject(r->body);
              if (!updated.ok()) return std::move(done)(updated.status());
              FinishWith<v1::Network>(account, deadline, *updated, std::move(done));
            },
            "network.");
      });
}

void CloudSigmaProvider::DeleteNetwork(const CallContext& ctx,
                                       const v1::DeleteNetworkRequest& request,
                                       Callback<MutationProgress> done) {
  auto uuid = UuidOf("name", account_->id, "networks", request.name());
  if (!uuid.ok()) return std::move(done)(uuid.status());
  if (ctx.validate_only) return std::move(done)(kit::Finished(Empty()));
  EndSubscribed(account_, ctx.deadline, "vlans", *uuid, request.name(), "network",
                request.allow_missing(), std::move(done));
}

void CloudSigmaProvider::ListAddresses(const CallContext& ctx,
                                       const v1::ListAddressesRequest& request,
                                       Callback<v1::ListAddressesResponse> done) {
  ListSubscribed<v1::ListAddressesResponse, v1::Address>(account_, ctx.deadline, "/ips/detail/",
                                                         request.page_size(),
                                                         request.page_token(), std::move(done));
}

void CloudSigmaProvider::GetAddress(const CallContext& ctx, const v1::GetAddressRequest& request,
                                    Callback<v1::Address> done) {
  auto ip = UuidOf("name", account_->id, "addresses", request.name());
  if (!ip.ok()) return std::move(done)(ip.status());
  auto account = account_;
  const absl::Time deadline = ctx.deadline;
  GetObject(account, deadline, "ips", *ip, request.name(), "address",
            [account, deadline, done = std::move(done)](absl::StatusOr<WireObject> o) mutable {
              if (!o.ok()) return std::move(done)(o.status());
              RenderOne<v1::Address>(account, deadline, *o, std::move(done));
            });
}

void CloudSigmaProvider::ReserveAddress(const CallContext& ctx,
                                        const v1::ReserveAddressRequest& request,
                                        Callback<MutationProgress> done) {
  if (absl::Status s = ValidateLabels("address.labels", request.address().labels()); !s.ok()) {
    return std::move(done)(s);
  }
  if (ctx.validate_only) return std::move(done)(kit::Finished(v1::Address()));
  auto account = account_;
  const absl::Time deadline = ctx.deadline;
  Buy(account, deadline, "ip", "ips",
      {request.address().labels().begin(), request.address().labels().end()}, ctx.operation,
      [account, deadline, done = std::move(done)](absl::StatusOr<WireObject> ip) mutable {
        if (!ip.ok()) return std::move(done)(ip.status());
        FinishWith<v1::Address>(account, deadline, *ip, std::move(done));
      });
}

void CloudSigmaProvider::ReleaseAddress(const CallContext& ctx,
                                        const v1::ReleaseAddressRequest& request,
                                        Callback<MutationProgress> done) {
  auto ip = UuidOf("name", account_->id, "addresses", request.name());
  if (!ip.ok()) return std::move(done)(ip.status());
  if (ctx.validate_only) return std::move(done)(kit::Finished(Empty()));
  EndSubscribed(account_, ctx.deadline, "ips", *ip, request.name(), "address",
                request.allow_missing(), std::move(done));
}

}  // namespace cloudplane::adapters::cloudsigma
