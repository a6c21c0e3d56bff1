// CloudSigma wire translation of subscriptions, VLANs, IPs and keypairs
// (split from cloudsigma_wire.cc; the declarations are in cloudsigma_wire.h).
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "adapters/cloudsigma/cloudsigma_wire.h"
#include "adapters/cloudsigma/cloudsigma_wire_internal.h"
#include "adapters/common/json/json.h"
#include "base/errors.h"
#include "google/protobuf/struct.pb.h"
#include "rapidjson/document.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace cloudplane::adapters::cloudsigma {
namespace {

namespace rj = rapidjson;

using json::Member;
using json::Serialize;
using wire_internal::IdOf;
using wire_internal::Int;
using wire_internal::Malformed;
using wire_internal::Mapped;
using wire_internal::Parse;
using wire_internal::PutLabels;
using wire_internal::PutSubscription;
using wire_internal::RefUuid;
using wire_internal::ReservedMeta;
using wire_internal::SetDetail;
using wire_internal::SetList;
using wire_internal::String;
using wire_internal::WriteMeta;

}  // namespace

absl::StatusOr<Subscription> SubscriptionFromWire(absl::string_view object_json) {
  rj::Document doc;
  if (absl::Status s = Parse(object_json, doc); !s.ok()) return s;
  if (!doc.IsObject()) return Malformed("a subscription is not an object");
  Subscription sub;
  sub.id = String(doc, "id");  // a string in the dumps; an integer in references
  if (sub.id.empty()) return Malformed("a subscription has no id");
  sub.resource = String(doc, "resource");
  sub.status = String(doc, "status");
  sub.end_time = String(doc, "end_time");
  const rj::Value* renew = Member(doc, "auto_renew");
  sub.auto_renew = renew != nullptr && renew->IsBool() && renew->GetBool();
  sub.subscribed_object = RefUuid(Member(doc, "subscribed_object"));
  return sub;
}

absl::StatusOr<Subscribed> SubscribedFromWire(absl::string_view object_json) {
  rj::Document doc;
  if (absl::Status s = Parse(object_json, doc); !s.ok()) return s;
  if (!doc.IsObject() || String(doc, "uuid").empty()) return Malformed("an object has no uuid");
  Subscribed out;
  if (const rj::Value* sub = Member(doc, "subscription"); sub && sub->IsObject()) {
    out.subscription_id = String(*sub, "id");
  }
  if (const rj::Value* servers = Member(doc, "servers"); servers && servers->IsArray()) {
    for (const auto& s : servers->GetArray()) out.server_uuids.push_back(RefUuid(&s));
  }
  if (std::string server = RefUuid(Member(doc, "server")); !server.empty()) {
    out.server_uuids.push_back(server);
  }
  return out;
}

absl::StatusOr<v1::Network> VlanToNetwork(absl::string_view object_json,
                                          absl::string_view account,
                                          const SubscriptionMap& subscriptions) {
  rj::Document doc;
  if (absl::Status s = Parse(object_json, doc); !s.ok()) return s;
  absl::StatusOr<Subscribed> subscribed = SubscribedFromWire(object_json);
  if (!subscribed.ok()) return Malformed("a VLAN has no uuid");
  v1::Network n;
  const std::string uuid = String(doc, "uuid");
  n.set_name(ResourceName(account, "networks", uuid));
  // bottom_vlan_tag is null in the dumps; an integer where the location
  // exposes the 802.1Q tag.
  n.set_vlan_id(static_cast<int32_t>(Int(doc, "bottom_vlan_tag")));
  PutLabels(doc, n.mutable_labels());
  auto it = subscriptions.find(subscribed->subscription_id);
  // A VLAN is removed only when its subscription ends (§7): one that no
  // longer renews is on its way out.
  const bool leaving = it != subscriptions.end() && !it->second.auto_renew;
  n.set_state(leaving ? v1::Network::DELETING : v1::Network::READY);
  n.set_provider_state(it == subscriptions.end() ? "" : it->second.status);
  auto* d = n.mutable_provider_details();
  SetDetail(d, "uuid", uuid);
  SetDetail(d, "resource_uri", String(doc, "resource_uri"));
  SetList(d, "servers", subscribed->server_uuids);
  PutSubscription(subscribed->subscription_id, subscriptions, d);
  return n;
}

absl::StatusOr<v1::Address> IpToAddress(absl::string_view object_json, absl::string_view account,
                                        const IdMap& server_ids,
                                        const SubscriptionMap& subscriptions) {
  rj::Document doc;
  if (absl::Status s = Parse(object_json, doc); !s.ok()) return s;
  absl::StatusOr<Subscribed> subscribed = SubscribedFromWire(object_json);
  if (!subscribed.ok()) return Malformed("an IP has no uuid");
  v1::Address a;
  const std::string ip = String(doc, "uuid");  // the uuid of an IP is the address (§4)
  a.set_name(ResourceName(account, "addresses", ip));
  a.set_address(ip);
  if (!subscribed->server_uuids.empty()) {
    a.set_state(v1::Address::IN_USE);
    a.set_instance(
        ResourceName(account, "instances", Mapped(server_ids, subscribed->server_uuids[0])));
  } else {
    a.set_state(v1::Address::RESERVED);
  }
  PutLabels(doc, a.mutable_labels());
  auto* d = a.mutable_provider_details();
  SetDetail(d, "resource_uri", String(doc, "resource_uri"));
  SetDetail(d, "gateway", String(doc, "gateway"));
  if (int64_t netmask = Int(doc, "netmask"); netmask > 0) {
    (*d->mutable_fields())["netmask"].set_number_value(static_cast<double>(netmask));
  }
  if (const rj::Value* ns = Member(doc, "nameservers"); ns && ns->IsArray()) {
    std::vector<std::string> servers;
    for (const auto& v : ns->GetArray()) {
      if (v.IsString()) servers.push_back(v.GetString());
    }
    SetList(d, "nameservers", servers);
  }
  if (subscribed->subscription_id.empty()) {
    // The list also shows the DHCP addresses of running servers (§7).
    (*d->mutable_fields())["dynamic"].set_bool_value(true);
  }
  PutSubscription(subscribed->subscription_id, subscriptions, d);
  return a;
}

absl::StatusOr<v1::KeyPair> KeypairToKeyPair(absl::string_view object_json,
                                             absl::string_view account) {
  rj::Document doc;
  if (absl::Status s = Parse(object_json, doc); !s.ok()) return s;
  if (!doc.IsObject() || String(doc, "uuid").empty()) return Malformed("a keypair has no uuid");
  v1::KeyPair k;
  k.set_name(ResourceName(account, "keyPairs", IdOf(doc)));
  k.set_display_name(String(doc, "name"));
  k.set_public_key(String(doc, "public_key"));
  k.set_fingerprint(String(doc, "fingerprint"));
  PutLabels(doc, k.mutable_labels());
  auto* d = k.mutable_provider_details();
  SetDetail(d, "uuid", String(doc, "uuid"));
  SetDetail(d, "resource_uri", String(doc, "resource_uri"));
  return k;
}

std::string SubscriptionCreateBody(absl::string_view resource) {
  return wire_internal::CreateEnvelope([&](rj::Writer<rj::StringBuffer>& w) {
    w.Key("resource");
    w.String(resource.data(), static_cast<rj::SizeType>(resource.size()));
    // One VLAN or IP for a month, as the control panel buys them (§9).
    w.Key("amount");
    w.String("1");
    w.Key("period");
    w.String("1 month");
  });
}

std::string KeypairCreateBody(const v1::KeyPair& key_pair, absl::string_view chosen_id,
                              absl::string_view operation) {
  return wire_internal::CreateEnvelope([&](rj::Writer<rj::StringBuffer>& w) {
    w.Key("name");
    const std::string name = !key_pair.display_name().empty() ? key_pair.display_name()
                             : !chosen_id.empty()             ? std::string(chosen_id)
                                                              : "cloudplane key";
    w.String(name.c_str());
    w.Key("public_key");
    w.String(key_pair.public_key().c_str());
    auto meta = ReservedMeta(chosen_id, operation);
    for (const auto& [k, v] : key_pair.labels()) meta[k] = v;
    WriteMeta(w, meta);
  });
}

}  // namespace cloudplane::adapters::cloudsigma
