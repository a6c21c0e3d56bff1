#include "adapters/cloudsigma/cloudsigma_wire.h"

#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "adapters/cloudsigma/cloudsigma_wire_internal.h"
#include "adapters/common/http/http_status.h"
#include "adapters/common/json/json.h"
#include "base/errors.h"
#include "base/reasons.h"
#include "google/protobuf/struct.pb.h"
#include "rapidjson/document.h"
#include "rapidjson/stringbuffer.h"
#include "rapidjson/writer.h"

namespace cloudplane::adapters::cloudsigma {
namespace wire_internal {

namespace rj = rapidjson;

using json::Member;

absl::Status Malformed(absl::string_view detail) { return json::Malformed("CloudSigma", detail); }

// Trailing commas are tolerated: one recorded dump (server_add_sgx) has one,
// and nothing is lost by accepting them.
absl::Status Parse(absl::string_view body, rj::Document& doc) {
  return json::Parse(body, "CloudSigma", doc, {.trailing_commas = true});
}

std::string String(const rj::Value& obj, const char* key) {
  const rj::Value* v = Member(obj, key);
  if (v == nullptr) return "";
  if (v->IsString()) return std::string(v->GetString(), v->GetStringLength());
  if (v->IsInt64()) return absl::StrCat(v->GetInt64());
  return "";
}

std::map<std::string, std::string> Meta(const rj::Value& obj) {
  std::map<std::string, std::string> meta;
  const rj::Value* m = Member(obj, "meta");
  if (m == nullptr || !m->IsObject()) return meta;
  for (auto it = m->MemberBegin(); it != m->MemberEnd(); ++it) {
    if (it->value.IsString()) meta[it->name.GetString()] = it->value.GetString();
  }
  return meta;
}

std::string IdOf(const rj::Value& obj) {
  auto meta = Meta(obj);
  auto it = meta.find(std::string(kIdMetaKey));
  if (it != meta.end() && !it->second.empty()) return it->second;
  return String(obj, "uuid");
}

void SetDetail(google::protobuf::Struct* s, const char* key, const std::string& value) {
  if (!value.empty()) (*s->mutable_fields())[key].set_string_value(value);
}

std::string CreateEnvelope(absl::FunctionRef<void(rj::Writer<rj::StringBuffer>&)> members) {
  rj::StringBuffer buffer;
  rj::Writer<rj::StringBuffer> w(buffer);
  w.StartObject();
  w.Key("objects");
  w.StartArray();
  w.StartObject();
  members(w);
  w.EndObject();
  w.EndArray();
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

void WriteMeta(rj::Writer<rj::StringBuffer>& w, const std::map<std::string, std::string>& m) {
  w.Key("meta");
  w.StartObject();
  for (const auto& [k, v] : m) {
    w.Key(k.c_str());
    w.String(v.c_str());
  }
  w.EndObject();
}

std::map<std::string, std::string> ReservedMeta(absl::string_view chosen_id,
                                                absl::string_view operation) {
  std::map<std::string, std::string> meta;
  if (!chosen_id.empty()) meta[std::string(kIdMetaKey)] = std::string(chosen_id);
  if (!operation.empty()) meta[std::string(kOperationMetaKey)] = std::string(operation);
  return meta;
}

// Integers may come as numbers or numeric strings (drives.rst: "size").
int64_t Int(const rj::Value& obj, const char* key) {
  const rj::Value* v = json::Member(obj, key);
  if (v == nullptr) return 0;
  return json::Int64(*v).value_or(0);
}

// The uuid of a reference: `{"resource_uri","uuid"}` or a plain string.
std::string RefUuid(const rj::Value* v) {
  if (v == nullptr) return "";
  if (v->IsString()) return v->GetString();
  return String(*v, "uuid");
}

std::string Mapped(const IdMap& ids, const std::string& uuid) {
  auto it = ids.find(uuid);
  return it == ids.end() ? uuid : it->second;
}

void SetList(google::protobuf::Struct* s, const char* key, const std::vector<std::string>& items) {
  auto* list = (*s->mutable_fields())[key].mutable_list_value();
  for (const auto& item : items) list->add_values()->set_string_value(item);
}

void PutSubscription(const std::string& id, const SubscriptionMap& subscriptions,
                     google::protobuf::Struct* d) {
  SetDetail(d, "subscription", id);
  auto it = subscriptions.find(id);
  if (it == subscriptions.end()) return;
  SetDetail(d, "subscription_end_time", it->second.end_time);
  SetDetail(d, "subscription_status", it->second.status);
  (*d->mutable_fields())["auto_renew"].set_bool_value(it->second.auto_renew);
}

rj::Value NicValue(const NicSpec& nic, rj::Document::AllocatorType& a) {
  rj::Value item(rj::kObjectType);
  if (!nic.vlan_uuid.empty()) {
    // A private NIC has no IP configuration (§5.4).
    item.AddMember("vlan", rj::Value(nic.vlan_uuid.c_str(), a), a);
  } else {
    rj::Value conf(rj::kObjectType);
    conf.AddMember("conf", rj::Value(nic.static_ip.empty() ? "dhcp" : "static", a), a);
    if (nic.static_ip.empty()) {
      conf.AddMember("ip", rj::Value(rj::kNullType), a);
    } else {
      conf.AddMember("ip", rj::Value(nic.static_ip.c_str(), a), a);
    }
    item.AddMember("ip_v4_conf", conf, a);
  }
  item.AddMember("model", rj::Value(nic.model.empty() ? "virtio" : nic.model.c_str(), a), a);
  return item;
}

}  // namespace wire_internal

namespace {

namespace rj = rapidjson;

using json::Member;
using json::Serialize;
using wire_internal::IdOf;
using wire_internal::Int;
using wire_internal::Mapped;
using wire_internal::PutSubscription;
using wire_internal::RefUuid;
using wire_internal::SetList;
using wire_internal::Malformed;
using wire_internal::Meta;
using wire_internal::NicValue;
using wire_internal::Parse;
using wire_internal::PutLabels;
using wire_internal::SetDetail;
using wire_internal::String;

std::string ResourceTypeOf(absl::string_view uri) {
  // "/api/2.0/drives/<uuid>/" → "drives"
  std::vector<absl::string_view> parts = absl::StrSplit(uri, '/', absl::SkipEmpty());
  if (parts.size() >= 2) return std::string(parts[parts.size() - 2]);
  return "";
}

absl::StatusOr<WireObject> ToWireObject(const rj::Value& obj, bool require_uuid = true) {
  if (!obj.IsObject()) return Malformed("an object is not a JSON object");
  WireObject out;
  if (const rj::Value* u = Member(obj, "uuid"); u != nullptr && u->IsString()) {
    out.uuid = u->GetString();
  }
  if (out.uuid.empty() && require_uuid) return Malformed("an object has no uuid");
  out.status = String(obj, "status");
  out.resource_type = ResourceTypeOf(String(obj, "resource_uri"));
  auto meta = Meta(obj);
  out.chosen_id = meta[std::string(kIdMetaKey)];
  out.operation = meta[std::string(kOperationMetaKey)];
  if (const rj::Value* drives = Member(obj, "drives"); drives && drives->IsArray()) {
    for (const auto& d : drives->GetArray()) {
      std::string uuid = RefUuid(Member(d, "drive"));
      if (!uuid.empty()) out.referenced_uuids.push_back(std::move(uuid));
    }
  }
  if (const rj::Value* mounted = Member(obj, "mounted_on"); mounted && mounted->IsArray()) {
    for (const auto& s : mounted->GetArray()) {
      std::string uuid = RefUuid(&s);
      if (!uuid.empty()) out.referenced_uuids.push_back(std::move(uuid));
    }
  }
  out.json = Serialize(obj);
  return out;
}

void SetString(rj::Value& obj, const char* key, absl::string_view value,
               rj::Document::AllocatorType& a) {
  rj::Value v(value.data(), static_cast<rj::SizeType>(value.size()), a);
  if (auto it = obj.FindMember(key); it != obj.MemberEnd()) {
    it->value = v;
  } else {
    obj.AddMember(rj::Value(key, a), v, a);
  }
}

void SetInt(rj::Value& obj, const char* key, int64_t value, rj::Document::AllocatorType& a) {
  if (auto it = obj.FindMember(key); it != obj.MemberEnd()) {
    it->value.SetInt64(value);
  } else {
    obj.AddMember(rj::Value(key, a), rj::Value(static_cast<int64_t>(value)), a);
  }
}

// Replaces the keys of obj.meta that `replaced` selects by `entries`.
template <typename Pred>
void ReplaceMeta(rj::Value& obj, Pred replaced, const std::map<std::string, std::string>& entries,
                 rj::Document::AllocatorType& a) {
  std::map<std::string, std::string> meta;
  for (const auto& [k, v] : Meta(obj)) {
    if (!replaced(k)) meta[k] = v;
  }
  for (const auto& [k, v] : entries) meta[k] = v;
  rj::Value m(rj::kObjectType);
  for (const auto& [k, v] : meta) {
    m.AddMember(rj::Value(k.c_str(), a), rj::Value(v.c_str(), a), a);
  }
  if (auto it = obj.FindMember("meta"); it != obj.MemberEnd()) {
    it->value = m;
  } else {
    obj.AddMember("meta", m, a);
  }
}

bool IsReserved(const std::string& key) { return absl::StartsWith(key, kReservedMetaPrefix); }

// Replaces the non-reserved keys of obj.meta by `labels`.
void SetLabels(rj::Value& obj, const std::map<std::string, std::string>& labels,
               rj::Document::AllocatorType& a) {
  ReplaceMeta(obj, [](const std::string& k) { return !IsReserved(k); }, labels, a);
}

// A server's labels: its kLabelMetaPrefix keys, without the prefix.
template <typename MapT>
void PutServerLabels(const rj::Value& obj, MapT* labels) {
  for (const auto& [k, v] : Meta(obj)) {
    absl::string_view key = k;
    if (absl::ConsumePrefix(&key, kLabelMetaPrefix)) (*labels)[std::string(key)] = v;
  }
}
}  // namespace

bool IsUuid(absl::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return false;
    } else if (!absl::ascii_isxdigit(static_cast<unsigned char>(s[i]))) {
      return false;
    }
  }
  return true;
}

absl::Status ValidateChosenId(absl::string_view field, absl::string_view id) {
  bool ok = !id.empty() && id.size() <= 63 && absl::ascii_islower(static_cast<unsigned char>(id[0]));
  for (char c : id) {
    ok = ok && (absl::ascii_islower(static_cast<unsigned char>(c)) ||
                absl::ascii_isdigit(static_cast<unsigned char>(c)) || c == '-');
  }
  if (!ok) {
    return InvalidField(field, "must be 1-63 characters of [a-z0-9-] starting with a letter");
  }
  if (IsUuid(id)) {
    return InvalidField(field, "must not have the form of a CloudSigma uuid (those name "
                               "objects by their uuid)");
  }
  return absl::OkStatus();
}

std::string ResourceName(absl::string_view account, absl::string_view collection,
                         absl::string_view id) {
  return absl::StrCat("accounts/", account, "/", collection, "/", id);
}

absl::StatusOr<std::string> IdFromName(absl::string_view field, absl::string_view account,
                                       absl::string_view collection, absl::string_view resource,
                                       absl::string_view suffix) {
  absl::string_view rest = resource;
  const std::string prefix = absl::StrCat("accounts/", account, "/", collection, "/");
  if (!absl::ConsumePrefix(&rest, prefix) || !absl::ConsumeSuffix(&rest, suffix) ||
      rest.empty() || absl::StrContains(rest, '/')) {
    return InvalidField(field, absl::StrCat("must be ", prefix, "{id}", suffix));
  }
  return std::string(rest);
}

v1::Instance::State InstanceStateFromWire(absl::string_view status) {
  if (status == "running") return v1::Instance::RUNNING;
  if (status == "stopped") return v1::Instance::STOPPED;
  if (status == "starting") return v1::Instance::PROVISIONING;
  if (status == "stopping") return v1::Instance::STOPPING;
  if (status == "paused") return v1::Instance::SUSPENDED;  // a crashed guest (servers.rst)
  if (status == "unavailable") return v1::Instance::ERROR;
  return v1::Instance::STATE_UNSPECIFIED;  // unknown: treated as transient
}

v1::Volume::State VolumeStateFromWire(absl::string_view status, bool mounted) {
  if (status == "creating" || status == "cloning_dst" || status == "uploading" ||
      status == "copying") {
    return v1::Volume::CREATING;
  }
  if (status == "unmounted") return mounted ? v1::Volume::ATTACHED : v1::Volume::AVAILABLE;
  if (status == "mounted") return v1::Volume::ATTACHED;
  // The source of a clone stays usable (pycloudsigma treats it like mounted).
  if (status == "cloning_src") return mounted ? v1::Volume::ATTACHED : v1::Volume::AVAILABLE;
  if (status == "resizing") return v1::Volume::RESIZING;
  if (status == "unavailable") return v1::Volume::ERROR;
  return v1::Volume::STATE_UNSPECIFIED;
}

absl::StatusOr<WireObject> ParseObject(absl::string_view json) {
  rj::Document doc;
  if (absl::Status s = Parse(json, doc); !s.ok()) return s;
  // An envelope (POST answers) is a document with an `objects` list and no
  // uuid of its own; an object may hold a member named `objects` of any kind.
  const rj::Value* objects = Member(doc, "objects");
  if (objects != nullptr && objects->IsArray() && Member(doc, "uuid") == nullptr) {
    if (objects->Empty()) return Malformed("empty objects envelope");
    return ToWireObject((*objects)[0]);
  }
  return ToWireObject(doc);
}

absl::StatusOr<Page> ParsePage(absl::string_view json) {
  rj::Document doc;
  if (absl::Status s = Parse(json, doc); !s.ok()) return s;
  const rj::Value* objects = Member(doc, "objects");
  const rj::Value* meta = Member(doc, "meta");
  if (objects == nullptr || !objects->IsArray()) return Malformed("a list without objects");
  Page page;
  for (const auto& o : objects->GetArray()) {
    // Locations have an `id` instead of a uuid.
    absl::StatusOr<WireObject> w = ToWireObject(o, /*require_uuid=*/false);
    if (!w.ok()) return w.status();
    page.objects.push_back(*std::move(w));
  }
  page.total_count = meta != nullptr ? Int(*meta, "total_count")
                                     : static_cast<int64_t>(page.objects.size());
  return page;
}

absl::StatusOr<v1::Volume> DriveToVolume(absl::string_view object_json,
                                         absl::string_view account, const IdMap& server_ids) {
  rj::Document doc;
  if (absl::Status s = Parse(object_json, doc); !s.ok()) return s;
  if (!ToWireObject(doc).ok()) return Malformed("a drive has no uuid");
  v1::Volume v;
  v.set_name(ResourceName(account, "volumes", IdOf(doc)));
  v.set_display_name(String(doc, "name"));
  v.set_size_bytes(Int(doc, "size"));
  v.set_provider_state(String(doc, "status"));
  const std::string media = String(doc, "media");
  v.set_media(media == "cdrom" ? v1::Volume::CDROM : v1::Volume::DISK);
  if (const rj::Value* mounted = Member(doc, "mounted_on"); mounted && mounted->IsArray()) {
    for (const auto& s : mounted->GetArray()) {
      std::string uuid = RefUuid(&s);
      if (!uuid.empty()) v.add_attached_to(ResourceName(account, "instances",
                                                        Mapped(server_ids, uuid)));
    }
  }
  v.set_state(VolumeStateFromWire(v.provider_state(), v.attached_to_size() > 0));
  PutLabels(doc, v.mutable_labels());
  auto* d = v.mutable_provider_details();
  SetDetail(d, "uuid", String(doc, "uuid"));
  SetDetail(d, "resource_uri", String(doc, "resource_uri"));
  SetDetail(d, "storage_type", String(doc, "storage_type"));
  SetDetail(d, "media", media);
  if (const rj::Value* jobs = Member(doc, "jobs"); jobs && jobs->IsArray() && !jobs->Empty()) {
    SetDetail(d, "job", RefUuid(&(*jobs)[0]));
  }
  return v;
}

absl::StatusOr<v1::Instance> ServerToInstance(absl::string_view object_json,
                                              absl::string_view account,
                                              const IdMap& drive_ids) {
  rj::Document doc;
  if (absl::Status s = Parse(object_json, doc); !s.ok()) return s;
  if (!ToWireObject(doc).ok()) return Malformed("a server has no uuid");
  v1::Instance i;
  i.set_name(ResourceName(account, "instances", IdOf(doc)));
  i.set_display_name(String(doc, "name"));
  i.set_provider_state(String(doc, "status"));
  i.set_state(InstanceStateFromWire(i.provider_state()));
  i.set_cpu_mhz(Int(doc, "cpu"));
  i.set_cpu_count(static_cast<int32_t>(Int(doc, "smp")));
  i.set_memory_bytes(Int(doc, "mem"));
  std::set<std::string> seen;
  auto add_ip = [&](const std::string& ip) {
    if (!ip.empty() && seen.insert(ip).second) i.add_ip_addresses(ip);
  };
  // The address a DHCP NIC got is only in the runtime of a running server
  // (servers.rst, "runtime"); a static one is in the NIC's own ip_v4_conf.
  if (const rj::Value* rt = Member(doc, "runtime"); rt != nullptr) {
    if (const rj::Value* nics = Member(*rt, "nics"); nics && nics->IsArray()) {
      for (const auto& n : nics->GetArray()) add_ip(RefUuid(Member(n, "ip_v4")));
    }
  }
  if (const rj::Value* nics = Member(doc, "nics"); nics && nics->IsArray()) {
    for (const auto& n : nics->GetArray()) {
      if (const rj::Value* conf = Member(n, "ip_v4_conf"); conf && String(*conf, "conf") ==
                                                                      "static") {
        add_ip(RefUuid(Member(*conf, "ip")));
      }
    }
  }
  if (const rj::Value* drives = Member(doc, "drives"); drives && drives->IsArray()) {
    for (const auto& d : drives->GetArray()) {
      v1::AttachedVolume* a = i.add_volumes();
      a->set_volume(ResourceName(account, "volumes", Mapped(drive_ids,
                                                            RefUuid(Member(d, "drive")))));
      a->set_device(String(d, "device"));
      a->set_channel(String(d, "dev_channel"));
      a->set_boot_order(static_cast<int32_t>(Int(d, "boot_order")));
    }
  }
  // The address a DHCP NIC got is in the runtime, matched by mac.
  std::map<std::string, std::string> runtime_ips;
  if (const rj::Value* rt = Member(doc, "runtime"); rt != nullptr) {
    if (const rj::Value* nics = Member(*rt, "nics"); nics && nics->IsArray()) {
      for (const auto& n : nics->GetArray()) {
        runtime_ips[String(n, "mac")] = RefUuid(Member(n, "ip_v4"));
      }
    }
  }
  if (const rj::Value* nics = Member(doc, "nics"); nics && nics->IsArray()) {
    for (const auto& n : nics->GetArray()) {
      v1::NetworkInterface* nic = i.add_network_interfaces();
      nic->set_id(String(n, "mac"));
      nic->set_mac_address(String(n, "mac"));
      nic->set_model(String(n, "model"));
      if (std::string vlan = RefUuid(Member(n, "vlan")); !vlan.empty()) {
        nic->set_network(ResourceName(account, "networks", vlan));
      }
      std::string address;
      if (const rj::Value* conf = Member(n, "ip_v4_conf"); conf && conf->IsObject()) {
        address = RefUuid(Member(*conf, "ip"));
      }
      if (address.empty()) {
        if (const rj::Value* nrt = Member(n, "runtime"); nrt && nrt->IsObject()) {
          address = RefUuid(Member(*nrt, "ip_v4"));
        }
      }
      if (address.empty()) address = runtime_ips[nic->mac_address()];
      nic->set_address(address);
    }
  }
  PutServerLabels(doc, i.mutable_labels());
  if (auto meta = Meta(doc); !meta[std::string(kImageMetaKey)].empty()) {
    i.set_image(ResourceName(account, "images", meta[std::string(kImageMetaKey)]));
  }
  auto* details = i.mutable_provider_details();
  SetDetail(details, "uuid", String(doc, "uuid"));
  if (const rj::Value* keys = Member(doc, "pubkeys"); keys && keys->IsArray() && !keys->Empty()) {
    std::vector<std::string> uuids;
    for (const auto& k : keys->GetArray()) uuids.push_back(RefUuid(&k));
    SetList(details, "pubkeys", uuids);
  }
  SetDetail(details, "resource_uri", String(doc, "resource_uri"));
  SetDetail(details, "cpu_type", String(doc, "cpu_type"));
  SetDetail(details, "hypervisor", String(doc, "hypervisor"));
  if (const rj::Value* rt = Member(doc, "runtime"); rt != nullptr) {
    SetDetail(details, "active_since", String(*rt, "active_since"));
  }
  return i;
}

absl::StatusOr<v1::Image> LibdriveToImage(absl::string_view object_json,
                                          absl::string_view account) {
  rj::Document doc;
  if (absl::Status s = Parse(object_json, doc); !s.ok()) return s;
  if (!doc.IsObject() || String(doc, "uuid").empty()) return Malformed("a libdrive has no uuid");
  v1::Image image;
  image.set_name(ResourceName(account, "images", String(doc, "uuid")));
  image.set_display_name(String(doc, "name"));
  image.set_description(String(doc, "description"));
  image.set_os(String(doc, "os"));
  const std::string arch = String(doc, "arch");
  // The library says "64"/"32" (bits).
  image.set_architecture(arch == "64" ? "x86_64" : arch == "32" ? "i386" : arch);
  image.set_size_bytes(Int(doc, "size"));
  const std::string status = String(doc, "status");
  image.set_state(status == "unmounted" || status == "mounted" ? v1::Image::READY
                  : status == "unavailable"                    ? v1::Image::ERROR
                                                               : v1::Image::PENDING);
  image.set_public_(Member(doc, "owner") == nullptr);  // library drives have owner null
  auto* d = image.mutable_provider_details();
  for (const char* key : {"distribution", "version", "media", "image_type", "arch", "status"}) {
    SetDetail(d, key, String(doc, key));
  }
  return image;
}

absl::StatusOr<v1::Location> LocationFromWire(absl::string_view object_json,
                                              absl::string_view account) {
  rj::Document doc;
  if (absl::Status s = Parse(object_json, doc); !s.ok()) return s;
  const std::string id = absl::AsciiStrToLower(String(doc, "id"));
  if (id.empty()) return Malformed("a location has no id");
  v1::Location loc;
  loc.set_name(ResourceName(account, "locations", id));
  loc.set_display_name(String(doc, "display_name"));
  loc.set_kind(v1::Location::REGION);
  loc.set_available(true);
  auto* d = loc.mutable_provider_details();
  for (const char* key : {"id", "api_endpoint", "websocket_url", "country_code", "upload_url"}) {
    SetDetail(d, key, String(doc, key));
  }
  return loc;
}

absl::StatusOr<v1::InstanceMetadata> ServerToMetadata(absl::string_view object_json,
                                                      absl::string_view account) {
  rj::Document doc;
  if (absl::Status s = Parse(object_json, doc); !s.ok()) return s;
  if (!doc.IsObject() || String(doc, "uuid").empty()) return Malformed("a server has no uuid");
  v1::InstanceMetadata m;
  m.set_name(absl::StrCat(ResourceName(account, "instances", IdOf(doc)), "/metadata"));
  PutLabels(doc, m.mutable_items());
  return m;
}

absl::Status ParseActionResult(absl::string_view json) {
  rj::Document doc;
  if (absl::Status s = Parse(json, doc); !s.ok()) return s;
  if (String(doc, "result") != "success") {
    return Malformed(absl::StrCat("action result is \"", String(doc, "result"), "\""));
  }
  return absl::OkStatus();
}

absl::StatusOr<Frame> ParseFrame(absl::string_view json) {
  rj::Document doc;
  if (absl::Status s = Parse(json, doc); !s.ok()) return s;
  Frame f;
  f.resource_type = String(doc, "resource_type");
  f.resource_uri = String(doc, "resource_uri");
  if (f.resource_type.empty() || f.resource_uri.empty()) {
    return Malformed("a websocket frame without resource_type or resource_uri");
  }
  std::vector<absl::string_view> parts = absl::StrSplit(f.resource_uri, '/', absl::SkipEmpty());
  if (!parts.empty()) f.uuid = std::string(parts.back());
  if (const rj::Value* o = Member(doc, "object"); o != nullptr && o->IsObject()) {
    f.object_json = Serialize(*o);
  }
  return f;
}

absl::Status StatusFromResponse(int http_status, absl::string_view body,
                                absl::string_view context, absl::string_view field_prefix) {
  if (http_status >= 200 && http_status < 300) return absl::OkStatus();
  std::string type, point, message;
  rj::Document doc;
  doc.Parse(body.data(), body.size());
  if (!doc.HasParseError() && doc.IsArray() && !doc.Empty() && doc[0].IsObject()) {
    type = String(doc[0], "error_type");
    point = String(doc[0], "error_point");
    message = String(doc[0], "error_message");
  }
  // Provider error → status. HTTP decides first (shared table); CloudSigma's
  // error_type refines where HTTP alone is ambiguous:
  //   403 permission   — also used for actions in the wrong state (a guest
  //                      "in state …"; seen in gosigma's mock, see the
  //                      servers.rst actions): FAILED_PRECONDITION then,
  //                      PERMISSION_DENIED otherwise.
  //   402 billing/payment — not enough funds: FAILED_PRECONDITION.
  //   503 concurrency  — conflicting concurrent update, retry: UNAVAILABLE.
  //   404 notexist     — NOT_FOUND.   400 validation — INVALID_ARGUMENT.
  absl::StatusCode code = http::HttpStatusToCode(http_status);
  std::string reason = DefaultReason(code);
  if (http_status == 403 && absl::StrContains(absl::AsciiStrToLower(message), "state")) {
    code = absl::StatusCode::kFailedPrecondition;
    reason = std::string(reasons::kWrongState);
  } else if (http_status == 402 || type == "billing" || type == "payment") {
    code = absl::StatusCode::kFailedPrecondition;
    reason = std::string(reasons::kInsufficientFunds);
  } else if (type == "concurrency") {
    code = absl::StatusCode::kUnavailable;
  }
  if (http_status == 401) reason = std::string(reasons::kProviderUnauthenticated);
  absl::Status status(code, absl::StrCat(context, ": CloudSigma answered HTTP ", http_status,
                                         message.empty() ? "" : ": ", message));
  if (code == absl::StatusCode::kInvalidArgument && !point.empty() && !field_prefix.empty()) {
    AddFieldViolation(status, absl::StrCat(field_prefix, point), message);
  }
  return WithErrorInfo(status, reason,
                       {{"httpStatus", absl::StrCat(http_status)},
                        {"providerErrorType", type},
                        {"providerErrorPoint", point},
                        {"providerMessage", message}});
}

namespace {

// Member `key` of `obj` as an array: made (or a non-array replaced) when
// needed, so an edit can add to it.
rj::Value& ArrayMember(rj::Value& obj, const char* key, rj::Document::AllocatorType& a) {
  // Every member of that name that is not a list goes: JSON allows the same
  // name twice, and removing only the first left a later one (a string) to
  // be edited as a list (cloudsigma_wire_fuzz; RapidJSON asserts IsArray).
  // EraseMember keeps the others in order; RemoveMember moves the last
  // member into the gap, which put a second "uuid" ahead of the first and
  // changed which server the PUT names (cloudsigma_wire_fuzz).
  auto it = obj.FindMember(key);
  while (it != obj.MemberEnd() && !it->value.IsArray()) {
    obj.EraseMember(it);
    it = obj.FindMember(key);
  }
  if (it == obj.MemberEnd()) {
    obj.AddMember(rj::Value(key, a), rj::Value(rj::kArrayType), a);
    it = obj.FindMember(key);
  }
  return it->value;
}

// Removes the elements of `array` that `drop` says to.
template <typename Pred>
void EraseIf(rj::Value& array, Pred drop) {
  for (auto e = array.Begin(); e != array.End();) {
    if (drop(*e)) {
      e = array.Erase(e);
    } else {
      ++e;
    }
  }
}

}  // namespace

absl::StatusOr<std::string> EditServer(absl::string_view server_json, const ServerEdit& edit) {
  rj::Document doc;
  if (absl::Status s = Parse(server_json, doc); !s.ok()) return s;
  if (!doc.IsObject()) return Malformed("a server is not an object");
  auto& a = doc.GetAllocator();
  if (edit.name) SetString(doc, "name", *edit.name, a);
  if (edit.cpu_mhz) SetInt(doc, "cpu", *edit.cpu_mhz, a);
  if (edit.memory_bytes) SetInt(doc, "mem", *edit.memory_bytes, a);
  if (edit.smp) SetInt(doc, "smp", *edit.smp, a);
  if (edit.metadata) SetLabels(doc, *edit.metadata, a);
  if (edit.labels) {
    std::map<std::string, std::string> prefixed;
    for (const auto& [k, v] : *edit.labels) prefixed[absl::StrCat(kLabelMetaPrefix, k)] = v;
    ReplaceMeta(
        doc, [](const std::string& k) { return absl::StartsWith(k, kLabelMetaPrefix); }, prefixed,
        a);
  }
  if (edit.add_nic || edit.remove_mac) {
    rj::Value& nics = ArrayMember(doc, "nics", a);
    if (edit.remove_mac) {
      EraseIf(nics, [&](const rj::Value& n) { return String(n, "mac") == *edit.remove_mac; });
    }
    if (edit.add_nic) nics.PushBack(NicValue(*edit.add_nic, a), a);
  }
  if (edit.attach || edit.detach_uuid) {
    rj::Value& drives = ArrayMember(doc, "drives", a);
    if (edit.detach_uuid) {
      EraseIf(drives, [&](const rj::Value& d) {
        return RefUuid(Member(d, "drive")) == *edit.detach_uuid;
      });
    }
    if (edit.attach) {
      std::set<std::string> used;
      for (const auto& d : drives.GetArray()) used.insert(String(d, "dev_channel"));
      std::string channel = edit.attach->channel;
      for (int unit = 0; channel.empty(); ++unit) {
        // virtio units run 0-5 per controller (servers.rst, "dev_channel").
        std::string candidate = absl::StrCat(unit / 6, ":", unit % 6);
        if (!used.count(candidate)) channel = candidate;
      }
      rj::Value item(rj::kObjectType);
      if (edit.attach->boot_order > 0) {
        item.AddMember("boot_order", rj::Value(edit.attach->boot_order), a);
      } else {
        item.AddMember("boot_order", rj::Value(rj::kNullType), a);
      }
      item.AddMember("dev_channel", rj::Value(channel.c_str(), a), a);
      const std::string device = edit.attach->device.empty() ? "virtio" : edit.attach->device;
      item.AddMember("device", rj::Value(device.c_str(), a), a);
      item.AddMember("drive", rj::Value(edit.attach->drive_uuid.c_str(), a), a);
      drives.PushBack(item, a);
    }
  }
  return Serialize(doc);
}

absl::StatusOr<bool> ServerHasDrive(absl::string_view server_json,
                                    absl::string_view drive_uuid) {
  absl::StatusOr<WireObject> w = ParseObject(server_json);
  if (!w.ok()) return w.status();
  for (const auto& u : w->referenced_uuids) {
    if (u == drive_uuid) return true;
  }
  return false;
}

absl::StatusOr<std::string> EditDrive(absl::string_view drive_json, const DriveEdit& edit) {
  rj::Document doc;
  if (absl::Status s = Parse(drive_json, doc); !s.ok()) return s;
  if (!doc.IsObject()) return Malformed("a drive is not an object");
  auto& a = doc.GetAllocator();
  if (edit.name) SetString(doc, "name", *edit.name, a);
  if (edit.size) SetInt(doc, "size", *edit.size, a);
  if (edit.labels) SetLabels(doc, *edit.labels, a);
  return Serialize(doc);
}

std::map<std::string, std::string> LabelMeta(
    const google::protobuf::Map<std::string, std::string>& labels) {
  std::map<std::string, std::string> meta;
  for (const auto& [k, v] : labels) meta[absl::StrCat(kLabelMetaPrefix, k)] = v;
  return meta;
}

absl::StatusOr<std::string> EditMeta(absl::string_view object_json,
                                     const std::map<std::string, std::string>& labels,
                                     const std::map<std::string, std::string>& reserved) {
  rj::Document doc;
  if (absl::Status s = Parse(object_json, doc); !s.ok()) return s;
  if (!doc.IsObject()) return Malformed("an object is not an object");
  std::map<std::string, std::string> entries = labels;
  for (const auto& [k, v] : reserved) entries[k] = v;
  ReplaceMeta(
      doc, [&](const std::string& k) { return !IsReserved(k) || reserved.count(k) > 0; }, entries,
      doc.GetAllocator());
  return Serialize(doc);
}

absl::Status ValidateLabels(absl::string_view field,
                            const google::protobuf::Map<std::string, std::string>& labels) {
  absl::Status status;
  for (const auto& [k, v] : labels) {
    if (k.empty() || absl::StartsWith(k, kReservedMetaPrefix)) {
      AddFieldViolation(status, field,
                        absl::StrCat("key \"", k, "\" is empty or starts with the reserved ",
                                     kReservedMetaPrefix));
    }
  }
  return status;
}

}  // namespace cloudplane::adapters::cloudsigma
