// Responses (§4, §5, §8), jobs as Operations and the error table. Signing is
// in enstratus_sign.cc, names in enstratus_names.cc, request bodies in
// enstratus_bodies.cc.
#include <algorithm>
#include <climits>
#include <cmath>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "adapters/common/http/http_status.h"
#include "adapters/common/json/json.h"
#include "adapters/common/kit/timestamps.h"
#include "adapters/common/kit/units.h"
#include "adapters/enstratus/enstratus_wire.h"
#include "base/errors.h"
#include "base/reasons.h"
#include "cloudplane/v1/common.pb.h"
#include "google/protobuf/empty.pb.h"
#include "google/protobuf/struct.pb.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "rapidjson/document.h"

namespace cloudplane::adapters::enstratus {
namespace {

namespace rj = rapidjson;
using json::Member;

// ---------------------------------------------------------------------------
// JSON reading.

constexpr char kProvider[] = "enStratus";

absl::Status Malformed(absl::string_view detail) { return json::Malformed(kProvider, detail); }

// The array under `key` of the top-level object (§4: every GET answers
// `{"<collection>":[...]}`).
absl::StatusOr<const rj::Value*> Collection(const rj::Document& doc, const char* key) {
  if (!doc.IsObject()) return Malformed("the body is not an object");
  auto it = doc.FindMember(key);
  if (it == doc.MemberEnd()) return Malformed(absl::StrCat("no \"", key, "\" collection"));
  if (!it->value.IsArray()) return Malformed(absl::StrCat("\"", key, "\" is not a list"));
  for (const rj::Value& item : it->value.GetArray()) {
    if (!item.IsObject()) {
      return Malformed(absl::StrCat("an item of \"", key, "\" is not an object"));
    }
  }
  return &it->value;
}

std::string Str(const rj::Value& obj, const char* key) {
  const rj::Value* v = Member(obj, key);
  if (v == nullptr) return "";
  if (v->IsString()) return std::string(v->GetString(), v->GetStringLength());
  if (v->IsInt64()) return absl::StrCat(v->GetInt64());
  return "";
}

// Ids arrive as numbers, and sometimes as numeric strings (§7 notes).
std::optional<int64_t> Int(const rj::Value& obj, const char* key) {
  const rj::Value* v = Member(obj, key);
  if (v == nullptr) return std::nullopt;
  return json::Int64(*v);
}

double Num(const rj::Value& obj, const char* key) {
  const rj::Value* v = Member(obj, key);
  if (v == nullptr || !v->IsNumber()) return 0;
  return v->GetDouble();
}

// `{"regionId": 19344}` nested references (§3).
std::optional<int64_t> RefId(const rj::Value& obj, const char* ref, const char* id_key) {
  const rj::Value* v = Member(obj, ref);
  if (v == nullptr) return std::nullopt;
  if (v->IsObject()) return Int(*v, id_key);
  // A bare number in place of the object (budget is always one).
  if (v->IsInt64()) return v->GetInt64();
  return std::nullopt;
}

// `2012-12-18T18:31:26.000+0000` (§3).
std::optional<absl::Time> ParseDate(absl::string_view s) {
  absl::Time t;
  std::string err;
  if (s.empty() || !absl::ParseTime("%Y-%m-%dT%H:%M:%E*S%z", s, &t, &err)) return std::nullopt;
  return t;
}

void ToValue(const rj::Value& in, google::protobuf::Value* out, int depth) {
  if (depth > 32) return;  // DCM nests a few levels; deeper is not data we keep
  if (in.IsNull()) {
    out->set_null_value(google::protobuf::NULL_VALUE);
  } else if (in.IsBool()) {
    out->set_bool_value(in.GetBool());
  } else if (in.IsNumber()) {
    out->set_number_value(in.GetDouble());
  } else if (in.IsString()) {
    out->set_string_value(std::string(in.GetString(), in.GetStringLength()));
  } else if (in.IsArray()) {
    auto* list = out->mutable_list_value();
    for (const rj::Value& v : in.GetArray()) ToValue(v, list->add_values(), depth + 1);
  } else if (in.IsObject()) {
    auto* fields = out->mutable_struct_value()->mutable_fields();
    for (const auto& m : in.GetObject()) {
      ToValue(m.value, &(*fields)[std::string(m.name.GetString(), m.name.GetStringLength())],
              depth + 1);
    }
  }
}

// The whole record, verbatim, as provider_details: DCM records carry many
// fields (owning user/groups, cloud, agent version...) that have no place in
// the API; keeping all of them loses nothing.
void RawDetails(const rj::Value& record, google::protobuf::Struct* out) {
  google::protobuf::Value v;
  ToValue(record, &v, 0);
  out->Swap(v.mutable_struct_value());
}

std::string Name(absl::string_view account, absl::string_view collection,
                 absl::string_view id) {
  return absl::StrCat("accounts/", account, "/", collection, "/", id);
}

std::string AliasOr(const absl::flat_hash_map<int64_t, std::string>& aliases, int64_t id) {
  auto it = aliases.find(id);
  return it == aliases.end() ? absl::StrCat(id) : it->second;
}

template <typename T, typename Fn>
absl::StatusOr<std::vector<T>> ParseEach(absl::string_view json, const char* key, Fn fn) {
  rj::Document doc;
  if (absl::Status s = json::Parse(json, kProvider, doc); !s.ok()) return s;
  absl::StatusOr<const rj::Value*> list = Collection(doc, key);
  if (!list.ok()) return list.status();
  std::vector<T> out;
  for (const rj::Value& item : (*list)->GetArray()) {
    absl::StatusOr<T> parsed = fn(item);
    if (!parsed.ok()) return parsed.status();
    out.push_back(*std::move(parsed));
  }
  return out;
}

absl::Status MissingId(const char* what, const char* key) {
  return Malformed(absl::StrCat("a ", what, " without a numeric \"", key, "\""));
}

}  // namespace

// ---------------------------------------------------------------------------

absl::StatusOr<std::vector<Job>> ParseJobs(absl::string_view json) {
  return ParseEach<Job>(json, "jobs", [](const rj::Value& item) -> absl::StatusOr<Job> {
    Job job;
    std::optional<int64_t> id = Int(item, "jobId");
    if (!id.has_value()) return MissingId("job", "jobId");
    job.id = *id;
    job.status = Str(item, "status");
    job.description = Str(item, "description");
    job.message = Str(item, "message");
    // mixcoatl also knows `jobMessage` (§5); take it when `message` is empty.
    if (job.message.empty()) job.message = Str(item, "jobMessage");
    job.start = ParseDate(Str(item, "startDate"));
    job.end = ParseDate(Str(item, "endDate"));
    return job;
  });
}

namespace {
constexpr absl::string_view kTagOpen = " [cloudplane ";
}  // namespace

std::string TaggedDescription(absl::string_view description, absl::string_view operation) {
  if (operation.empty()) return std::string(description);
  return absl::StrCat(description, kTagOpen, operation, "]");
}

std::string OperationOfDescription(absl::string_view description) {
  if (!absl::EndsWith(description, "]")) return "";
  const size_t open = description.rfind(kTagOpen);
  if (open == absl::string_view::npos) return "";
  absl::string_view op = description.substr(open + kTagOpen.size());
  op.remove_suffix(1);
  if (op.empty() || absl::StrContains(op, ' ') || absl::StrContains(op, ']')) return "";
  return std::string(op);
}

std::string UntaggedDescription(absl::string_view description) {
  if (OperationOfDescription(description).empty()) return std::string(description);
  return std::string(description.substr(0, description.rfind(kTagOpen)));
}

absl::StatusOr<std::vector<TaggedItem>> ParseTaggedItems(absl::string_view json,
                                                         const char* list_key,
                                                         const char* id_key) {
  return ParseEach<TaggedItem>(
      json, list_key, [&](const rj::Value& item) -> absl::StatusOr<TaggedItem> {
        std::optional<int64_t> id = Int(item, id_key);
        if (!id.has_value()) return MissingId("listed item", id_key);
        return TaggedItem{*id, OperationOfDescription(Str(item, "description"))};
      });
}

absl::StatusOr<Job> ParseFirstJob(absl::string_view json) {
  absl::StatusOr<std::vector<Job>> jobs = ParseJobs(json);
  if (!jobs.ok()) return jobs.status();
  if (jobs->empty()) return Malformed("an empty \"jobs\" list");
  return std::move(jobs->front());
}

google::longrunning::Operation JobToOperation(const Job& job, absl::string_view account) {
  google::longrunning::Operation op;
  const std::string id = absl::StrCat(job.id);
  op.set_name(absl::StrCat("accounts/", account, "/providerOperations/", id));
  // §5: COMPLETE and ERROR are the only ends DCM reports; anything else
  // (RUNNING, or a status this reference does not know) is still going.
  const bool failed = job.status == "ERROR";
  op.set_done(failed || job.status == "COMPLETE");

  v1::OperationMetadata md;
  md.set_account(absl::StrCat("accounts/", account));
  md.set_provider_operation(id);
  std::string detail = job.status.empty() ? "UNKNOWN" : job.status;
  if (!job.description.empty()) absl::StrAppend(&detail, ": ", job.description);
  // On COMPLETE the message is the new resource's id (§5), the only result
  // a job carries; on ERROR it is DCM's reason.
  if (!job.message.empty()) absl::StrAppend(&detail, "; message: ", job.message);
  md.set_status_detail(detail);
  const auto start = job.start ? kit::ToTimestamp(*job.start) : std::nullopt;
  const auto end = job.end ? kit::ToTimestamp(*job.end) : std::nullopt;
  if (start) *md.mutable_create_time() = *start;
  if (end) {
    *md.mutable_update_time() = *end;
    // The fixtures carry an endDate on a RUNNING job; it ends nothing.
    if (op.done()) *md.mutable_end_time() = *end;
  } else if (start) {
    *md.mutable_update_time() = *start;
  }
  op.mutable_metadata()->PackFrom(md);

  if (failed) {
    // The same shape the server gives a failed Operation of its own
    // (service/status_conversion.cc): code, message, one ErrorInfo.
    google::rpc::Status* error = op.mutable_error();
    error->set_code(static_cast<int>(absl::StatusCode::kUnknown));
    error->set_message(job.message.empty()
                           ? absl::StrCat("enStratus job ", id, " failed without a message")
                           : job.message);
    google::rpc::ErrorInfo info;
    info.set_reason(std::string(reasons::kProviderJobFailed));
    info.set_domain(std::string(kErrorDomain));
    (*info.mutable_metadata())["jobId"] = id;
    (*info.mutable_metadata())["providerMessage"] = job.message;
    error->add_details()->PackFrom(info);
  } else if (op.done()) {
    // A finished Operation carries a response or an error (clients such as
    // google-api-core insist); a job does not say what it made, so Empty.
    op.mutable_response()->PackFrom(google::protobuf::Empty());
  }
  return op;
}

std::string JobKey(int64_t job_id) { return absl::StrFormat("%020d", job_id); }

v1::Instance::State ServerStateFromWire(absl::string_view status) {
  const std::string s = absl::AsciiStrToUpper(status);
  if (s == "PENDING" || s == "LAUNCHING") return v1::Instance::PROVISIONING;
  if (s == "RUNNING") return v1::Instance::RUNNING;
  if (s == "STOPPING" || s == "PAUSING") return v1::Instance::STOPPING;
  if (s == "STOPPED") return v1::Instance::STOPPED;
  // DCM's "pause" keeps the server defined but not running (§7 actions).
  if (s == "PAUSED" || s == "SUSPENDED") return v1::Instance::SUSPENDED;
  if (s == "REBOOTING") return v1::Instance::REBOOTING;
  if (s == "TERMINATING") return v1::Instance::TERMINATING;
  if (s == "TERMINATED") return v1::Instance::TERMINATED;
  if (s == "ERROR") return v1::Instance::ERROR;
  return v1::Instance::STATE_UNSPECIFIED;
}

absl::StatusOr<std::vector<v1::Instance>> ParseServers(absl::string_view json,
                                                       absl::string_view account,
                                                       const Aliases& aliases) {
  return ParseEach<v1::Instance>(
      json, "servers", [&](const rj::Value& s) -> absl::StatusOr<v1::Instance> {
        v1::Instance out;
        std::optional<int64_t> id = Int(s, "serverId");
        if (!id.has_value()) return MissingId("server", "serverId");
        out.set_name(Name(account, "instances", AliasOr(aliases.instances, *id)));
        out.set_display_name(Str(s, "name"));
        out.set_provider_state(Str(s, "status"));
        out.set_state(ServerStateFromWire(out.provider_state()));
        if (auto image = RefId(s, "machineImage", "machineImageId")) {
          out.set_image(Name(account, "images", absl::StrCat(*image)));
        }
        if (auto product = RefId(s, "product", "productId")) {
          out.set_machine_type(Name(account, "machineTypes", absl::StrCat(*product)));
        }
        if (auto dc = RefId(s, "dataCenter", "dataCenterId")) {
          out.set_location(Name(account, "locations", absl::StrCat("dc-", *dc)));
        } else if (auto region = RefId(s, "region", "regionId")) {
          out.set_location(Name(account, "locations", absl::StrCat("region-", *region)));
        }
        if (const rj::Value* product = Member(s, "product")) {
          out.set_cpu_count(static_cast<int32_t>(
              std::clamp<int64_t>(Int(*product, "cpuCount").value_or(0), 0, INT32_MAX)));
          out.set_memory_bytes(kit::Bytes(Int(*product, "ramInMb").value_or(0), kit::kMiB));
        }
        if (std::string ip = Str(s, "publicIpAddress"); !ip.empty()) out.add_ip_addresses(ip);
        for (const char* key : {"publicIpAddresses", "privateIpAddresses"}) {
          if (const rj::Value* ips = Member(s, key); ips != nullptr && ips->IsArray()) {
            for (const rj::Value& ip : ips->GetArray()) {
              if (ip.IsString() &&
                  std::find(out.ip_addresses().begin(), out.ip_addresses().end(),
                            ip.GetString()) == out.ip_addresses().end()) {
                out.add_ip_addresses(ip.GetString());
              }
            }
          }
        }
        if (const rj::Value* fws = Member(s, "firewalls"); fws != nullptr && fws->IsArray()) {
          for (const rj::Value& fw : fws->GetArray()) {
            if (auto fw_id = Int(fw, "firewallId")) {
              out.add_firewalls(Name(account, "firewalls", AliasOr(aliases.firewalls, *fw_id)));
            }
          }
        }
        if (auto network = RefId(s, "network", "networkId")) {
          out.add_network_interfaces()->set_network(
              Name(account, "networks", absl::StrCat(*network)));
        }
        if (auto budget = Int(s, "budget")) {
          out.set_billing_code(Name(account, "billingCodes", absl::StrCat(*budget)));
        }
        if (std::string label = Str(s, "label"); !label.empty()) {
          (*out.mutable_labels())["label"] = label;
        }
        if (auto start = ParseDate(Str(s, "startDate"))) {
          if (auto ts = kit::ToTimestamp(*start)) *out.mutable_create_time() = *ts;
        }
        RawDetails(s, out.mutable_provider_details());
        return out;
      });
}

absl::StatusOr<std::vector<v1::Firewall>> ParseFirewalls(absl::string_view json,
                                                         absl::string_view account,
                                                         const Aliases& aliases) {
  return ParseEach<v1::Firewall>(
      json, "firewalls", [&](const rj::Value& f) -> absl::StatusOr<v1::Firewall> {
        v1::Firewall out;
        std::optional<int64_t> id = Int(f, "firewallId");
        if (!id.has_value()) return MissingId("firewall", "firewallId");
        out.set_name(Name(account, "firewalls", AliasOr(aliases.firewalls, *id)));
        out.set_display_name(Str(f, "name"));
        out.set_description(UntaggedDescription(Str(f, "description")));
        if (auto region = RefId(f, "region", "regionId")) {
          out.set_location(Name(account, "locations", absl::StrCat("region-", *region)));
        }
        if (std::string label = Str(f, "label"); !label.empty()) {
          (*out.mutable_labels())["label"] = label;
        }
        RawDetails(f, out.mutable_provider_details());
        return out;
      });
}

absl::StatusOr<std::vector<v1::Network>> ParseNetworks(absl::string_view json,
                                                       absl::string_view account) {
  return ParseEach<v1::Network>(
      json, "networks", [&](const rj::Value& n) -> absl::StatusOr<v1::Network> {
        v1::Network out;
        std::optional<int64_t> id = Int(n, "networkId");
        if (!id.has_value()) return MissingId("network", "networkId");
        out.set_name(Name(account, "networks", absl::StrCat(*id)));
        out.set_display_name(Str(n, "name"));
        const std::string status = absl::AsciiStrToUpper(Str(n, "status"));
        out.set_provider_state(Str(n, "status"));
        v1::Network::State state = v1::Network::STATE_UNSPECIFIED;
        if (status == "ACTIVE") {
          state = v1::Network::READY;
        } else if (status == "PENDING") {
          state = v1::Network::PENDING;
        } else if (status == "DELETING" || status == "REMOVING") {
          state = v1::Network::DELETING;
        } else if (status == "ERROR") {
          state = v1::Network::ERROR;
        }
        out.set_state(state);
        if (std::string cidr = Str(n, "networkAddress"); !cidr.empty()) out.add_cidr_ranges(cidr);
        if (const rj::Value* dns = Member(n, "dnsServers"); dns != nullptr && dns->IsArray()) {
          for (const rj::Value& d : dns->GetArray()) {
            if (d.IsString()) out.add_dns_servers(d.GetString());
          }
        }
        if (auto region = RefId(n, "region", "regionId")) {
          out.set_location(Name(account, "locations", absl::StrCat("region-", *region)));
        }
        if (std::string label = Str(n, "label"); !label.empty()) {
          (*out.mutable_labels())["label"] = label;
        }
        if (auto created = ParseDate(Str(n, "createdTimestamp"))) {
          if (auto ts = kit::ToTimestamp(*created)) *out.mutable_create_time() = *ts;
        }
        RawDetails(n, out.mutable_provider_details());
        // The tag a create adds (TaggedDescription) is ours, not DCM's.
        auto& fields = *out.mutable_provider_details()->mutable_fields();
        if (auto it = fields.find("description"); it != fields.end()) {
          it->second.set_string_value(UntaggedDescription(it->second.string_value()));
        }
        return out;
      });
}

absl::StatusOr<std::vector<v1::FirewallRule>> ParseFirewallRules(absl::string_view json,
                                                                 absl::string_view account,
                                                                 const Aliases& aliases) {
  return ParseEach<v1::FirewallRule>(
      json, "rules", [&](const rj::Value& r) -> absl::StatusOr<v1::FirewallRule> {
        v1::FirewallRule out;
        std::optional<int64_t> id = Int(r, "firewallRuleId");
        std::optional<int64_t> fw = RefId(r, "firewall", "firewallId");
        if (!id.has_value()) return MissingId("firewall rule", "firewallRuleId");
        if (!fw.has_value()) return MissingId("firewall rule", "firewall.firewallId");
        out.set_name(absl::StrCat(Name(account, "firewalls", AliasOr(aliases.firewalls, *fw)),
                                  "/rules/", *id));
        const std::string direction = absl::AsciiStrToUpper(Str(r, "direction"));
        out.set_direction(direction == "INGRESS"  ? v1::FirewallRule::INGRESS
                          : direction == "EGRESS" ? v1::FirewallRule::EGRESS
                                                  : v1::FirewallRule::DIRECTION_UNSPECIFIED);
        // Rules read back without `permission` in the fixtures; DCM rules
        // were allow-only until DENY appeared, so absent means ALLOW.
        const std::string permission = absl::AsciiStrToUpper(Str(r, "permission"));
        out.set_action(permission == "DENY" ? v1::FirewallRule::DENY : v1::FirewallRule::ALLOW);
        out.set_protocol(absl::AsciiStrToLower(Str(r, "protocol")));
        out.set_port_range_start(static_cast<int32_t>(Int(r, "startPort").value_or(0)));
        out.set_port_range_end(static_cast<int32_t>(Int(r, "endPort").value_or(0)));
        // Each end has a type (Dasein's RuleTargetType, which DCM passes
        // through): CIDR, GLOBAL (a firewall, by DCM id), VLAN or VM. The
        // rule's own firewall as its near end (destination of an INGRESS
        // rule, source of an EGRESS one) is implied and not repeated; any
        // other end is reported, and one the API cannot name (a VLAN, a VM)
        // is said in the description, never left to read as anywhere.
        std::vector<std::string> notes;
        auto end = [&](const char* type_key, const char* value_key, bool near,
                       google::protobuf::RepeatedPtrField<std::string>* ranges,
                       google::protobuf::RepeatedPtrField<std::string>* firewalls,
                       absl::string_view word) {
          const std::string type = absl::AsciiStrToUpper(Str(r, type_key));
          std::string value = Str(r, value_key);
          if (value.empty()) {
            if (std::optional<int64_t> n = Int(r, value_key)) value = absl::StrCat(*n);
          }
          if (type == "CIDR" && !value.empty()) {
            *ranges->Add() = value;
            return;
          }
          if (type == "GLOBAL") {
            if (std::optional<int64_t> other = ParseDcmId(value)) {
              if (near && *other == *fw) return;
              *firewalls->Add() = Name(account, "firewalls", AliasOr(aliases.firewalls, *other));
              return;
            }
          }
          if (!type.empty() || !value.empty()) {
            notes.push_back(absl::StrCat(word, " ", type, " ", value));
          }
        };
        const bool egress = out.direction() == v1::FirewallRule::EGRESS;
        end("sourceType", "source", egress, out.mutable_source_ranges(),
            out.mutable_source_firewalls(), "source");
        end("destinationType", "destination", !egress, out.mutable_destination_ranges(),
            out.mutable_destination_firewalls(), "destination");
        out.set_description(absl::StrJoin(notes, "; "));
        return out;
      });
}

absl::StatusOr<std::vector<v1::Location>> ParseRegions(absl::string_view json,
                                                       absl::string_view account) {
  return ParseEach<v1::Location>(
      json, "regions", [&](const rj::Value& r) -> absl::StatusOr<v1::Location> {
        v1::Location out;
        std::optional<int64_t> id = Int(r, "regionId");
        if (!id.has_value()) return MissingId("region", "regionId");
        out.set_name(Name(account, "locations", absl::StrCat("region-", *id)));
        out.set_display_name(Str(r, "name"));
        out.set_kind(v1::Location::REGION);
        out.set_available(absl::AsciiStrToUpper(Str(r, "status")) == "ACTIVE");
        RawDetails(r, out.mutable_provider_details());
        return out;
      });
}

absl::StatusOr<std::vector<v1::Location>> ParseDataCenters(absl::string_view json,
                                                           absl::string_view account) {
  return ParseEach<v1::Location>(
      json, "dataCenters", [&](const rj::Value& d) -> absl::StatusOr<v1::Location> {
        v1::Location out;
        std::optional<int64_t> id = Int(d, "dataCenterId");
        if (!id.has_value()) return MissingId("data center", "dataCenterId");
        out.set_name(Name(account, "locations", absl::StrCat("dc-", *id)));
        out.set_display_name(Str(d, "name"));
        out.set_kind(v1::Location::DATACENTER);
        if (auto region = RefId(d, "region", "regionId")) {
          out.set_parent_location(Name(account, "locations", absl::StrCat("region-", *region)));
        }
        out.set_available(absl::AsciiStrToUpper(Str(d, "status")) == "ACTIVE");
        RawDetails(d, out.mutable_provider_details());
        return out;
      });
}

absl::StatusOr<std::vector<v1::Image>> ParseMachineImages(absl::string_view json,
                                                          absl::string_view account) {
  return ParseEach<v1::Image>(
      json, "images", [&](const rj::Value& i) -> absl::StatusOr<v1::Image> {
        v1::Image out;
        std::optional<int64_t> id = Int(i, "machineImageId");
        if (!id.has_value()) return MissingId("machine image", "machineImageId");
        out.set_name(Name(account, "images", absl::StrCat(*id)));
        out.set_display_name(Str(i, "name"));
        out.set_description(Str(i, "description"));
        const std::string platform = absl::AsciiStrToUpper(Str(i, "platform"));
        if (absl::StartsWith(platform, "WINDOWS")) {
          out.set_os("windows");
        } else if (!platform.empty() && platform != "UNKNOWN") {
          out.set_os("linux");  // DCM's platforms other than WINDOWS* are unixes
        }
        const std::string arch = absl::AsciiStrToUpper(Str(i, "architecture"));
        if (arch == "I64") out.set_architecture("x86_64");
        if (arch == "I32") out.set_architecture("i386");
        const std::string status = absl::AsciiStrToUpper(Str(i, "status"));
        out.set_state(status == "ACTIVE"    ? v1::Image::READY
                      : status == "PENDING" ? v1::Image::PENDING
                      : status.empty()      ? v1::Image::STATE_UNSPECIFIED
                                            : v1::Image::ERROR);
        if (const rj::Value* pub = Member(i, "public"); pub != nullptr && pub->IsBool()) {
          out.set_public_(pub->GetBool());
        }
        RawDetails(i, out.mutable_provider_details());
        return out;
      });
}

absl::StatusOr<std::vector<v1::MachineType>> ParseServerProducts(absl::string_view json,
                                                                 absl::string_view account) {
  return ParseEach<v1::MachineType>(
      json, "serverProducts", [&](const rj::Value& p) -> absl::StatusOr<v1::MachineType> {
        v1::MachineType out;
        std::optional<int64_t> id = Int(p, "productId");
        if (!id.has_value()) return MissingId("server product", "productId");
        out.set_name(Name(account, "machineTypes", absl::StrCat(*id)));
        out.set_display_name(Str(p, "name"));
        out.set_cpu_count(static_cast<int32_t>(Int(p, "cpuCount").value_or(0)));
        out.set_cpu_mhz(Int(p, "cpuSpeedInMhz").value_or(0));
        out.set_memory_bytes(kit::Bytes(Int(p, "ramInMb").value_or(0), kit::kMiB));
        out.set_disk_bytes(kit::Bytes(Int(p, "diskSizeInGb").value_or(0), kit::kGiB));
        RawDetails(p, out.mutable_provider_details());
        return out;
      });
}

absl::StatusOr<VolumeInfo> ParseFirstVolume(absl::string_view json) {
  rj::Document doc;
  if (absl::Status s = json::Parse(json, kProvider, doc); !s.ok()) return s;
  absl::StatusOr<const rj::Value*> list = Collection(doc, "volumes");
  if (!list.ok()) return list.status();
  if ((*list)->Empty()) return Malformed("an empty \"volumes\" list");
  const rj::Value& v = (**list)[0];
  VolumeInfo info;
  std::optional<int64_t> id = Int(v, "volumeId");
  if (!id.has_value()) return MissingId("volume", "volumeId");
  info.volume_id = *id;
  info.server_id = RefId(v, "server", "serverId");
  info.status = Str(v, "status");
  return info;
}

absl::StatusOr<ProductInfo> ParseFirstProduct(absl::string_view json) {
  rj::Document doc;
  if (absl::Status s = json::Parse(json, kProvider, doc); !s.ok()) return s;
  absl::StatusOr<const rj::Value*> list = Collection(doc, "serverProducts");
  if (!list.ok()) return list.status();
  if ((*list)->Empty()) return Malformed("an empty \"serverProducts\" list");
  const rj::Value& p = (**list)[0];
  ProductInfo info;
  std::optional<int64_t> id = Int(p, "productId");
  if (!id.has_value()) return MissingId("server product", "productId");
  info.product_id = *id;
  info.provider_product_id = Str(p, "providerProductId");
  if (info.provider_product_id.empty()) {
    return Malformed("a server product without \"providerProductId\"");
  }
  return info;
}

absl::StatusOr<std::vector<v1::BillingCode>> ParseBillingCodes(absl::string_view json,
                                                               absl::string_view account) {
  return ParseEach<v1::BillingCode>(
      json, "billingCodes", [&](const rj::Value& b) -> absl::StatusOr<v1::BillingCode> {
        v1::BillingCode out;
        std::optional<int64_t> id = Int(b, "billingCodeId");
        if (!id.has_value()) return MissingId("billing code", "billingCodeId");
        out.set_name(Name(account, "billingCodes", absl::StrCat(*id)));
        out.set_display_name(Str(b, "name"));
        out.set_finance_code(Str(b, "financeCode"));
        out.set_description(Str(b, "description"));
        const std::string status = absl::AsciiStrToUpper(Str(b, "status"));
        out.set_state(status == "ACTIVE" ? v1::BillingCode::ACTIVE
                      : status == "SUSPENDED" || status == "INACTIVE"
                          ? v1::BillingCode::SUSPENDED
                          : v1::BillingCode::STATE_UNSPECIFIED);
        // The hard quota is the budget's limit (§7 addBillingCode).
        if (const rj::Value* hard = Member(b, "hardQuota"); hard != nullptr && hard->IsObject()) {
          out.set_budget_limit_minor_units(std::llround(Num(*hard, "value") * 100));
          out.set_currency(Str(*hard, "currency"));
        } else if (const rj::Value* usage = Member(b, "currentUsage");
                   usage != nullptr && usage->IsObject()) {
          out.set_currency(Str(*usage, "currency"));
        }
        RawDetails(b, out.mutable_provider_details());
        return out;
      });
}

absl::StatusOr<std::vector<v1::Volume>> ParseVolumes(absl::string_view json,
                                                     absl::string_view account,
                                                     const Aliases& aliases) {
  return ParseEach<v1::Volume>(
      json, "volumes", [&](const rj::Value& v) -> absl::StatusOr<v1::Volume> {
        v1::Volume out;
        std::optional<int64_t> id = Int(v, "volumeId");
        if (!id.has_value()) return MissingId("volume", "volumeId");
        out.set_name(Name(account, "volumes", AliasOr(aliases.volumes, *id)));
        out.set_display_name(Str(v, "name"));
        out.set_size_bytes(kit::Bytes(Int(v, "sizeInGb").value_or(0), kit::kGiB));
        out.set_provider_state(Str(v, "status"));
        out.set_media(v1::Volume::DISK);
        std::optional<int64_t> server = RefId(v, "server", "serverId");
        const std::string status = absl::AsciiStrToUpper(out.provider_state());
        if (status == "ACTIVE") {
          out.set_state(server.has_value() ? v1::Volume::ATTACHED : v1::Volume::AVAILABLE);
        } else if (status == "PENDING") {
          out.set_state(v1::Volume::CREATING);
        } else if (status == "DELETING") {
          out.set_state(v1::Volume::DELETING);
        } else if (!status.empty()) {
          out.set_state(v1::Volume::ERROR);
        }
        if (server.has_value()) {
          out.add_attached_to(Name(account, "instances", AliasOr(aliases.instances, *server)));
        }
        if (auto dc = RefId(v, "dataCenter", "dataCenterId")) {
          out.set_location(Name(account, "locations", absl::StrCat("dc-", *dc)));
        }
        if (std::string label = Str(v, "label"); !label.empty()) {
          (*out.mutable_labels())["label"] = label;
        }
        if (auto created = ParseDate(Str(v, "creationTimestamp"))) {
          if (auto ts = kit::ToTimestamp(*created)) *out.mutable_create_time() = *ts;
        }
        RawDetails(v, out.mutable_provider_details());
        return out;
      });
}

// ---------------------------------------------------------------------------

absl::Status StatusFromResponse(int http_status, absl::string_view body,
                                absl::string_view context) {
  if (http_status >= 200 && http_status < 300) return absl::OkStatus();
  std::string message;
  rj::Document doc;
  const bool is_json = json::Parse(body, kProvider, doc).ok();
  if (is_json && doc.IsObject()) {
    if (const rj::Value* err = Member(doc, "error"); err != nullptr && err->IsObject()) {
      message = Str(*err, "message");
    }
  }
  if (message.empty() && !is_json) {
    // mixcoatl falls back to the raw text (§4); keep it short and printable.
    for (char c : body.substr(0, 300)) {
      message.push_back(absl::ascii_isprint(static_cast<unsigned char>(c)) ? c : ' ');
    }
  }
  // The table: DCM answers a failed signature check with 403 (§2; the exact
  // code is uncertain), so 401 and 403 are both "who are you" here, not
  // "you may not". 409 is DCM's "not in this state". The rest follows the
  // shared HTTP table (404 NOT_FOUND, 400 INVALID_ARGUMENT, 5xx UNAVAILABLE,
  // 501 UNIMPLEMENTED).
  absl::StatusCode code;
  std::string reason;
  switch (http_status) {
    case 401:
    case 403:
      code = absl::StatusCode::kUnauthenticated;
      reason = std::string(reasons::kProviderUnauthenticated);
      break;
    case 409:
      code = absl::StatusCode::kFailedPrecondition;
      break;
    case 501:
      code = absl::StatusCode::kUnimplemented;
      break;
    default:
      code = http::HttpStatusToCode(http_status);
  }
  if (reason.empty()) reason = DefaultReason(code);
  return WithErrorInfo(
      absl::Status(code, absl::StrCat(context, ": enStratus answered HTTP ", http_status,
                                      message.empty() ? "" : ": ", message)),
      reason, {{"httpStatus", absl::StrCat(http_status)}, {"providerMessage", message}});
}

}  // namespace cloudplane::adapters::enstratus
