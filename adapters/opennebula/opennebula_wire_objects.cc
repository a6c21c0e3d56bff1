// Object documents ([api] XSD reference): VMs, hosts, VM templates,
// locations, images as volumes, security groups.
#include <algorithm>
#include <climits>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "adapters/common/kit/timestamps.h"
#include "adapters/common/kit/units.h"
#include "adapters/common/net/ip.h"
#include "adapters/opennebula/opennebula_wire.h"
#include "adapters/opennebula/opennebula_wire_internal.h"
#include "base/errors.h"
#include "base/status.h"
#include "google/protobuf/struct.pb.h"

namespace cloudplane::adapters::opennebula {

using wire_internal::IntChild;
using wire_internal::IntOr;
using wire_internal::Num;
using wire_internal::SetNumber;
using wire_internal::SetString;
using wire_internal::Sha256;

// ---------------------------------------------------------------------------
// VMs.

absl::StatusOr<VmSummary> SummarizeVm(const xml::Node& vm) {
  VmSummary s;
  ASSIGN_OR_RETURN(s.oid, IntChild(vm, "ID", "VM"));
  ASSIGN_OR_RETURN(int64_t state, IntChild(vm, "STATE", "VM"));
  ASSIGN_OR_RETURN(int64_t lcm, IntChild(vm, "LCM_STATE", "VM"));
  s.state = static_cast<VmState>(static_cast<int>(state));
  s.lcm_state = static_cast<LcmState>(static_cast<int>(lcm));
  s.name = std::string(vm.ChildText("NAME"));
  return s;
}

bool IsSecretAttribute(absl::string_view name) {
  const std::string upper = absl::AsciiStrToUpper(name);
  for (const char* word : {"PASSWORD", "PASSWD", "TOKEN", "SECRET", "PRIVATE", "CREDENTIAL"}) {
    if (absl::StrContains(upper, word)) return true;
  }
  return absl::StrContains(upper, "KEY") && !absl::StrContains(upper, "PUBLIC_KEY");
}

absl::StatusOr<std::string> ContextTemplate(absl::string_view ssh_key_line,
                                            absl::string_view user_data) {
  std::vector<std::pair<std::string, std::string>> attrs = {
      {"NETWORK", "YES"},
      {"SSH_PUBLIC_KEY",
       ssh_key_line.empty() ? std::string("$USER[SSH_PUBLIC_KEY]") : std::string(ssh_key_line)}};
  if (!user_data.empty()) {
    attrs.emplace_back("USER_DATA", absl::Base64Escape(user_data));
    attrs.emplace_back("USERDATA_ENCODING", "base64");
  }
  return VectorTemplate("CONTEXT", attrs);
}

namespace {

// provider_details.context and .userDataSha256 from a TEMPLATE/CONTEXT.
void PutContext(const xml::Node* context, google::protobuf::Struct* d) {
  if (context == nullptr) return;
  std::map<std::string, std::string> attrs = SingleAttributes(context);
  google::protobuf::Struct* c = (*d->mutable_fields())["context"].mutable_struct_value();
  for (const auto& [k, v] : attrs) {
    if (IsSecretAttribute(k) || k == "USER_DATA" || k == "USERDATA" || k == "START_SCRIPT" ||
        k == "START_SCRIPT_BASE64") {
      continue;
    }
    SetString(c, k, v);
  }
  // cloud-init's OpenNebula datasource reads USER_DATA first, then USERDATA,
  // and decodes it when USERDATA_ENCODING (or USER_DATA_ENCODING) is base64.
  auto data = attrs.find("USER_DATA");
  if (data == attrs.end()) data = attrs.find("USERDATA");
  if (data == attrs.end()) return;
  auto encoding = attrs.find("USERDATA_ENCODING");
  if (encoding == attrs.end()) encoding = attrs.find("USER_DATA_ENCODING");
  std::string bytes = data->second;
  if (encoding != attrs.end() && encoding->second == "base64") {
    std::string decoded;
    if (absl::Base64Unescape(data->second, &decoded)) bytes = std::move(decoded);
  }
  SetString(d, "userDataSha256", absl::BytesToHexString(Sha256(bytes)));
}

}  // namespace

absl::StatusOr<v1::Instance> InstanceFromVm(const xml::Node& vm, absl::string_view account,
                                            absl::string_view resource_id) {
  ASSIGN_OR_RETURN(VmSummary s, SummarizeVm(vm));
  v1::Instance out;
  out.set_name(absl::StrCat("accounts/", account, "/instances/", resource_id));
  out.set_display_name(s.name);
  out.set_state(InstanceState(s.state, s.lcm_state));
  out.set_provider_state(ProviderState(s.state, s.lcm_state));
  const xml::Node* tmpl = vm.Child("TEMPLATE");
  if (tmpl != nullptr) {
    double cpu = 0;
    int64_t vcpu = 0, memory = 0;
    if (absl::SimpleAtoi(tmpl->ChildText("VCPU"), &vcpu) && vcpu > 0 && vcpu <= INT32_MAX) {
      out.set_cpu_count(static_cast<int32_t>(vcpu));
    }
    if (absl::SimpleAtoi(tmpl->ChildText("MEMORY"), &memory)) {
      out.set_memory_bytes(kit::Bytes(memory, kit::kMiB));
    }
    // CPU is a fraction of a core; a NaN or a number beyond int32 is no count
    // (a float-to-int cast of it is undefined).
    if (out.cpu_count() == 0 && absl::SimpleAtod(tmpl->ChildText("CPU"), &cpu) && cpu > 0 &&
        cpu < 1e9) {
      out.set_cpu_count(std::max(1, static_cast<int>(cpu + 0.999)));
    }
    if (const xml::Node* t = tmpl->Child("TEMPLATE_ID"); t != nullptr && !t->Text().empty()) {
      out.set_image(absl::StrCat("accounts/", account, "/images/", t->Text()));
    }
    for (const xml::Node* nic : tmpl->ChildrenNamed("NIC")) {
      for (const char* f : {"IP", "EXTERNAL_IP", "IP6", "IP6_GLOBAL"}) {
        if (!nic->ChildText(f).empty()) out.add_ip_addresses(std::string(nic->ChildText(f)));
      }
    }
    for (v1::NetworkInterface& nic : NicsFromVm(vm, account)) {
      *out.add_network_interfaces() = std::move(nic);
    }
    // Disks made from images are volumes; volatile disks (no IMAGE_ID) are not.
    for (const xml::Node* disk : tmpl->ChildrenNamed("DISK")) {
      int64_t image_id = 0;
      if (!absl::SimpleAtoi(disk->ChildText("IMAGE_ID"), &image_id)) continue;
      v1::AttachedVolume* v = out.add_volumes();
      v->set_volume(absl::StrCat("accounts/", account, "/volumes/",
                                 ResourceId(image_id, disk->ChildText("IMAGE"))));
      v->set_device(std::string(disk->ChildText("TARGET")));
    }
  }
  const xml::Node* history = vm.Child("HISTORY_RECORDS");
  std::string hostname;
  if (history != nullptr && !history->Children().empty()) {
    const xml::Node& last = history->Children().back();
    hostname = std::string(last.ChildText("HOSTNAME"));
    if (!last.ChildText("HID").empty()) {
      out.set_host(absl::StrCat("accounts/", account, "/hosts/", last.ChildText("HID")));
    }
    if (!last.ChildText("CID").empty() && last.ChildText("CID") != "-1") {
      out.set_location(absl::StrCat("accounts/", account, "/locations/cluster-",
                                    last.ChildText("CID")));
    }
  }
  const int64_t stime = IntOr(&vm, "STIME", 0);
  if (auto ts = kit::UnixSecondsToTimestamp(stime); stime > 0 && ts) {
    *out.mutable_create_time() = *ts;
  }
  for (auto& [k, v] : LabelsFromUserTemplate(vm.Child("USER_TEMPLATE"))) {
    (*out.mutable_labels())[k] = v;
  }
  google::protobuf::Struct* d = out.mutable_provider_details();
  SetNumber(d, "id", static_cast<double>(s.oid));
  SetNumber(d, "state", StateNumber(s.state));
  SetNumber(d, "lcmState", StateNumber(s.lcm_state));
  SetNumber(d, "resched", static_cast<double>(IntOr(&vm, "RESCHED", 0)));
  SetString(d, "deployId", vm.ChildText("DEPLOY_ID"));
  SetString(d, "lcmStateName", LcmStateName(s.lcm_state));
  // The owner ([api] vm.xsd: UID, GID, UNAME, GNAME; the short body too).
  for (const auto& [tag, key] : {std::pair<const char*, const char*>{"UID", "uid"},
                                 {"GID", "gid"}}) {
    if (vm.Child(tag) != nullptr) SetNumber(d, key, static_cast<double>(IntOr(&vm, tag, -1)));
  }
  for (const auto& [tag, key] : {std::pair<const char*, const char*>{"UNAME", "uname"},
                                 {"GNAME", "gname"}}) {
    if (vm.Child(tag) != nullptr) SetString(d, key, vm.ChildText(tag));
  }
  if (!hostname.empty()) SetString(d, "hostname", hostname);
  PutContext(tmpl != nullptr ? tmpl->Child("CONTEXT") : nullptr, d);
  // Sunstone's label list (short bodies carry it too); not our labels, which
  // need values.
  std::map<std::string, std::string> user = SingleAttributes(vm.Child("USER_TEMPLATE"));
  if (auto it = user.find("LABELS"); it != user.end()) SetString(d, "sunstoneLabels", it->second);
  if (vm.Child("USER_TEMPLATE") != nullptr) {
    google::protobuf::Struct* u = (*d->mutable_fields())["userTemplate"].mutable_struct_value();
    for (const auto& [k, v] : user) {
      if (absl::StartsWith(k, kLabelPrefix) || IsSecretAttribute(k)) continue;
      SetString(u, k, v);
    }
  }
  out.set_etag(absl::StrCat(StateNumber(s.state), "-", StateNumber(s.lcm_state), "-",
                            vm.ChildText("LAST_POLL")));
  return out;
}

std::optional<int64_t> DiskOfImage(const xml::Node& vm, int64_t image_id) {
  const xml::Node* tmpl = vm.Child("TEMPLATE");
  if (tmpl == nullptr) return std::nullopt;
  for (const xml::Node* disk : tmpl->ChildrenNamed("DISK")) {
    int64_t image = 0, disk_id = 0;
    if (absl::SimpleAtoi(disk->ChildText("IMAGE_ID"), &image) && image == image_id &&
        absl::SimpleAtoi(disk->ChildText("DISK_ID"), &disk_id)) {
      return disk_id;
    }
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------
// Hosts.

absl::StatusOr<v1::Host> HostFromXml(const xml::Node& host, absl::string_view account) {
  ASSIGN_OR_RETURN(int64_t id, IntChild(host, "ID", "HOST"));
  ASSIGN_OR_RETURN(int64_t state, IntChild(host, "STATE", "HOST"));
  v1::Host out;
  out.set_name(absl::StrCat("accounts/", account, "/hosts/", id));
  out.set_display_name(std::string(host.ChildText("NAME")));
  static constexpr const char* kHostStates[] = {
      "INIT", "MONITORING_MONITORED", "MONITORED", "ERROR", "DISABLED", "MONITORING_ERROR",
      "MONITORING_INIT", "MONITORING_DISABLED", "OFFLINE"};
  out.set_provider_state(state >= 0 && state <= 8 ? kHostStates[state] : Num(state));
  switch (state) {
    case 1: case 2: case 6: out.set_state(v1::Host::UP); break;  // 1 and 6: ≤5.10 only
    case 3: case 5: out.set_state(v1::Host::ERROR); break;
    case 4: case 7: out.set_state(v1::Host::DISABLED); break;
    case 8: out.set_state(v1::Host::DOWN); break;
    default: out.set_state(v1::Host::STATE_UNSPECIFIED); break;
  }
  const int64_t cluster = IntOr(&host, "CLUSTER_ID", -1);
  if (cluster >= 0) {
    out.set_location(absl::StrCat("accounts/", account, "/locations/cluster-", cluster));
  }
  const xml::Node* share = host.Child("HOST_SHARE");
  out.set_cpu_count(static_cast<int32_t>(IntOr(share, "TOTAL_CPU", 0) / 100));  // CPU x 100
  out.set_memory_bytes(kit::Bytes(IntOr(share, "TOTAL_MEM", 0), kit::kKiB));
  google::protobuf::Struct* d = out.mutable_provider_details();
  SetNumber(d, "state", static_cast<double>(state));
  // 5.12+ keep free/used in MONITORING/CAPACITY; ≤5.10 in HOST_SHARE ([api] XSD host.xsd).
  const xml::Node* monitoring = host.Child("MONITORING");
  const xml::Node* capacity = monitoring != nullptr ? monitoring->Child("CAPACITY") : nullptr;
  if (capacity != nullptr) {
    SetNumber(d, "freeMemoryKib", static_cast<double>(IntOr(capacity, "FREE_MEMORY", 0)));
    SetNumber(d, "usedMemoryKib", static_cast<double>(IntOr(capacity, "USED_MEMORY", 0)));
    SetNumber(d, "freeCpu", static_cast<double>(IntOr(capacity, "FREE_CPU", 0)));
    SetNumber(d, "usedCpu", static_cast<double>(IntOr(capacity, "USED_CPU", 0)));
  } else if (share != nullptr && share->Child("FREE_MEM") != nullptr) {
    SetNumber(d, "freeMemoryKib", static_cast<double>(IntOr(share, "FREE_MEM", 0)));
    SetNumber(d, "usedMemoryKib", static_cast<double>(IntOr(share, "USED_MEM", 0)));
    SetNumber(d, "freeCpu", static_cast<double>(IntOr(share, "FREE_CPU", 0)));
    SetNumber(d, "usedCpu", static_cast<double>(IntOr(share, "USED_CPU", 0)));
  }
  SetNumber(d, "runningVms", static_cast<double>(IntOr(share, "RUNNING_VMS", 0)));
  std::map<std::string, std::string> tmpl = SingleAttributes(host.Child("TEMPLATE"));
  google::protobuf::Struct* t = (*d->mutable_fields())["template"].mutable_struct_value();
  for (const auto& [k, v] : tmpl) {
    if (k == "LABELS") {
      for (absl::string_view label : absl::StrSplit(v, ',', absl::SkipWhitespace())) {
        (*out.mutable_labels())[std::string(absl::StripAsciiWhitespace(label))] = "";
      }
    } else {
      SetString(t, k, v);
    }
  }
  return out;
}

absl::StatusOr<v1::Image> ImageFromTemplate(const xml::Node& tmpl, absl::string_view account) {
  ASSIGN_OR_RETURN(int64_t id, IntChild(tmpl, "ID", "VMTEMPLATE"));
  v1::Image out;
  out.set_name(absl::StrCat("accounts/", account, "/images/", id));
  out.set_display_name(std::string(tmpl.ChildText("NAME")));
  out.set_state(v1::Image::READY);
  const xml::Node* t = tmpl.Child("TEMPLATE");
  std::map<std::string, std::string> attrs = SingleAttributes(t);
  out.set_description(attrs["DESCRIPTION"]);
  if (t != nullptr) {
    if (const xml::Node* os = t->Child("OS"); os != nullptr) {
      out.set_architecture(std::string(os->ChildText("ARCH")));
    }
  }
  google::protobuf::Struct* d = out.mutable_provider_details();
  SetNumber(d, "id", static_cast<double>(id));
  SetString(d, "kind", "vmtemplate");
  SetString(d, "owner", tmpl.ChildText("UNAME"));
  if (!attrs["CPU"].empty()) SetString(d, "cpu", attrs["CPU"]);
  if (!attrs["MEMORY"].empty()) SetString(d, "memoryMib", attrs["MEMORY"]);
  return out;
}

absl::StatusOr<v1::Location> LocationFromZone(const xml::Node& zone, absl::string_view account) {
  ASSIGN_OR_RETURN(int64_t id, IntChild(zone, "ID", "ZONE"));
  v1::Location out;
  out.set_name(absl::StrCat("accounts/", account, "/locations/zone-", id));
  out.set_display_name(std::string(zone.ChildText("NAME")));
  out.set_kind(v1::Location::REGION);
  out.set_available(IntOr(&zone, "STATE", 0) == 0);
  SetString(out.mutable_provider_details(), "kind", "zone");
  return out;
}

absl::StatusOr<v1::Location> LocationFromCluster(const xml::Node& cluster,
                                                 absl::string_view account) {
  ASSIGN_OR_RETURN(int64_t id, IntChild(cluster, "ID", "CLUSTER"));
  v1::Location out;
  out.set_name(absl::StrCat("accounts/", account, "/locations/cluster-", id));
  out.set_display_name(std::string(cluster.ChildText("NAME")));
  out.set_kind(v1::Location::CLUSTER);
  // A cluster belongs to the zone of the oned that serves it.
  out.set_parent_location(absl::StrCat("accounts/", account, "/locations/zone-0"));
  const xml::Node* hosts = cluster.Child("HOSTS");
  out.set_available(hosts != nullptr && !hosts->Children().empty());
  SetString(out.mutable_provider_details(), "kind", "cluster");
  return out;
}

absl::StatusOr<v1::Location> LocationFromMarketplace(const xml::Node& market,
                                                     absl::string_view account) {
  ASSIGN_OR_RETURN(int64_t id, IntChild(market, "ID", "MARKETPLACE"));
  v1::Location out;
  out.set_name(absl::StrCat("accounts/", account, "/locations/market-", id));
  out.set_display_name(std::string(market.ChildText("NAME")));
  out.set_kind(v1::Location::SITE);
  const int64_t zone = IntOr(&market, "ZONE_ID", 0);
  out.set_parent_location(absl::StrCat("accounts/", account, "/locations/zone-", zone));
  // STATE exists since 6.2 ([api] XSD marketplace.xsd); older marketplaces are always enabled.
  out.set_available(IntOr(&market, "STATE", 0) == 0);
  google::protobuf::Struct* d = out.mutable_provider_details();
  SetString(d, "kind", "marketplace");
  SetString(d, "marketMad", market.ChildText("MARKET_MAD"));
  const xml::Node* apps = market.Child("MARKETPLACEAPPS");
  SetNumber(d, "apps", apps != nullptr ? apps->Children().size() : 0);
  return out;
}

// ---------------------------------------------------------------------------
// Images as volumes.

bool IsVolumeImageType(int64_t type) { return type >= 0 && type <= 2; }

absl::StatusOr<ImageSummary> SummarizeImage(const xml::Node& image) {
  ImageSummary s;
  ASSIGN_OR_RETURN(s.oid, IntChild(image, "ID", "IMAGE"));
  ASSIGN_OR_RETURN(s.type, IntChild(image, "TYPE", "IMAGE"));
  s.name = std::string(image.ChildText("NAME"));
  return s;
}

absl::StatusOr<v1::Volume> VolumeFromImage(const xml::Node& image, absl::string_view account,
                                           absl::string_view resource_id,
                                           const std::map<int64_t, std::string>& instance_ids) {
  ASSIGN_OR_RETURN(ImageSummary s, SummarizeImage(image));
  ASSIGN_OR_RETURN(int64_t state, IntChild(image, "STATE", "IMAGE"));
  static constexpr const char* kImageStates[] = {
      "INIT", "READY", "USED", "DISABLED", "LOCKED", "ERROR", "CLONE", "DELETE", "USED_PERS",
      "LOCKED_USED", "LOCKED_USED_PERS"};
  static constexpr const char* kImageTypes[] = {"OS", "CDROM", "DATABLOCK", "KERNEL",
                                                "RAMDISK", "CONTEXT", "BACKUP"};
  v1::Volume out;
  out.set_name(absl::StrCat("accounts/", account, "/volumes/", resource_id));
  out.set_display_name(s.name);
  out.set_provider_state(state >= 0 && state <= 10 ? kImageStates[state] : Num(state));
  switch (state) {
    case 0: case 4: case 6: out.set_state(v1::Volume::CREATING); break;  // INIT, LOCKED, CLONE
    case 1: out.set_state(v1::Volume::AVAILABLE); break;
    case 2: case 8: case 9: case 10: out.set_state(v1::Volume::ATTACHED); break;
    case 5: out.set_state(v1::Volume::ERROR); break;
    case 7: out.set_state(v1::Volume::DELETING); break;
    default: out.set_state(v1::Volume::STATE_UNSPECIFIED); break;  // DISABLED
  }
  out.set_media(s.type == 1 ? v1::Volume::CDROM : v1::Volume::DISK);
  out.set_size_bytes(kit::Bytes(IntOr(&image, "SIZE", 0), kit::kMiB));
  if (const xml::Node* vms = image.Child("VMS"); vms != nullptr) {
    for (const xml::Node* id : vms->ChildrenNamed("ID")) {
      int64_t vm = 0;
      if (!absl::SimpleAtoi(id->Text(), &vm)) continue;
      auto it = instance_ids.find(vm);
      out.add_attached_to(absl::StrCat("accounts/", account, "/instances/",
                                       it != instance_ids.end() ? it->second : Num(vm)));
    }
  }
  const int64_t regtime = IntOr(&image, "REGTIME", 0);
  if (auto ts = kit::UnixSecondsToTimestamp(regtime); regtime > 0 && ts) {
    *out.mutable_create_time() = *ts;
  }
  std::map<std::string, std::string> tmpl = SingleAttributes(image.Child("TEMPLATE"));
  if (auto it = tmpl.find("LABELS"); it != tmpl.end()) {
    for (absl::string_view label : absl::StrSplit(it->second, ',', absl::SkipWhitespace())) {
      (*out.mutable_labels())[std::string(absl::StripAsciiWhitespace(label))] = "";
    }
  }
  google::protobuf::Struct* d = out.mutable_provider_details();
  SetNumber(d, "id", static_cast<double>(s.oid));
  SetString(d, "type", s.type >= 0 && s.type <= 6 ? kImageTypes[s.type] : Num(s.type));
  SetNumber(d, "persistent", static_cast<double>(IntOr(&image, "PERSISTENT", 0)));
  SetNumber(d, "runningVms", static_cast<double>(IntOr(&image, "RUNNING_VMS", 0)));
  SetNumber(d, "datastoreId", static_cast<double>(IntOr(&image, "DATASTORE_ID", -1)));
  SetString(d, "datastore", image.ChildText("DATASTORE"));
  SetString(d, "owner", image.ChildText("UNAME"));
  out.set_etag(absl::StrCat(state, "-", IntOr(&image, "RUNNING_VMS", 0)));
  return out;
}

absl::StatusOr<std::pair<std::string, std::string>> DiskDeviceAttribute(
    absl::string_view device) {
  for (absl::string_view prefix : {"xvd", "vd", "sd", "hd"}) {
    if (!absl::StartsWith(device, prefix)) continue;
    absl::string_view letters = device.substr(prefix.size());
    if (letters.empty()) return std::make_pair(std::string("DEV_PREFIX"), std::string(device));
    if (letters.size() <= 2 && std::all_of(letters.begin(), letters.end(), absl::ascii_islower)) {
      return std::make_pair(std::string("TARGET"), std::string(device));
    }
  }
  if (device == "virtio") return std::make_pair(std::string("DEV_PREFIX"), std::string("vd"));
  if (device == "scsi" || device == "sata") {
    return std::make_pair(std::string("DEV_PREFIX"), std::string("sd"));
  }
  if (device == "ide") return std::make_pair(std::string("DEV_PREFIX"), std::string("hd"));
  return InvalidField("device",
                      "must be a target such as vdb, sdc or hda, or a bus: virtio, scsi, sata, "
                      "ide");
}

// ---------------------------------------------------------------------------
// Security groups.

std::string RuleId(const std::vector<std::pair<std::string, std::string>>& attrs) {
  std::vector<std::pair<std::string, std::string>> canonical;
  for (const auto& [k, v] : attrs) {
    const std::string name = absl::AsciiStrToUpper(k);
    canonical.emplace_back(name, name == "PROTOCOL" || name == "RULE_TYPE"
                                     ? absl::AsciiStrToUpper(v)
                                     : v);
  }
  std::sort(canonical.begin(), canonical.end());
  // 64-bit FNV-1a: stable across builds and runs (unlike absl::Hash).
  uint64_t h = 0xcbf29ce484222325ull;
  auto mix = [&h](absl::string_view text) {
    for (unsigned char c : text) {
      h ^= c;
      h *= 0x100000001b3ull;
    }
  };
  for (const auto& [k, v] : canonical) {
    mix(k);
    mix("=");
    mix(v);
    mix("\n");
  }
  return absl::StrFormat("%012x", h >> 16);
}

std::vector<SgRule> SecurityGroupRules(const xml::Node& sg) {
  std::vector<SgRule> out;
  const xml::Node* t = sg.Child("TEMPLATE");
  if (t == nullptr) return out;
  std::map<std::string, int> seen;
  for (const xml::Node* r : t->ChildrenNamed("RULE")) {
    SgRule rule;
    for (const xml::Node& c : r->Children()) {
      rule.attrs.emplace_back(std::string(c.Name()), std::string(c.Text()));
    }
    rule.id = RuleId(rule.attrs);
    const int n = ++seen[rule.id];
    if (n > 1) absl::StrAppend(&rule.id, "-", n);
    out.push_back(std::move(rule));
  }
  return out;
}

namespace {

using net::FormatIpv4;
using net::ParseIpv4;

// The prefix length when `size` addresses from `first` are exactly one CIDR
// block (a power of two, aligned to it), else -1.
int ExactPrefix(uint32_t first, int64_t size) {
  for (int prefix = 32; prefix >= 0; --prefix) {
    const int64_t block = int64_t{1} << (32 - prefix);
    if (block == size) return (first & static_cast<uint32_t>(block - 1)) == 0 ? prefix : -1;
  }
  return -1;
}

}  // namespace

v1::FirewallRule FirewallRuleFromAttributes(
    const std::vector<std::pair<std::string, std::string>>& attrs, absl::string_view account,
    std::string name) {
  std::map<std::string, std::string> r;
  for (const auto& [k, v] : attrs) r.emplace(absl::AsciiStrToUpper(k), v);
  v1::FirewallRule rule;
  rule.set_name(std::move(name));
  rule.set_action(v1::FirewallRule::ALLOW);  // OpenNebula rules only allow
  const std::string type = absl::AsciiStrToUpper(r["RULE_TYPE"]);
  rule.set_direction(type == "INBOUND"    ? v1::FirewallRule::INGRESS
                     : type == "OUTBOUND" ? v1::FirewallRule::EGRESS
                                          : v1::FirewallRule::DIRECTION_UNSPECIFIED);
  rule.set_protocol(absl::AsciiStrToLower(r["PROTOCOL"]));
  std::vector<std::string> notes;  // what the typed fields cannot hold
  absl::string_view range = r["RANGE"];
  if (!range.empty() && !absl::StrContains(range, ',')) {
    std::pair<absl::string_view, absl::string_view> ab = absl::StrSplit(range, ':');
    int a = 0, b = 0;
    if (absl::SimpleAtoi(ab.first, &a)) {
      rule.set_port_range_start(a);
      rule.set_port_range_end(ab.second.empty() || !absl::SimpleAtoi(ab.second, &b) ? a : b);
    }
  } else if (!range.empty()) {
    notes.push_back(absl::StrCat("ports ", range));
  }
  // The far end: the source of an INBOUND rule, the destination of an
  // OUTBOUND one (the near end is the VM). NETWORK_ID wins over IP/SIZE, as
  // oned replaces such a rule by one per address range of the network when
  // it applies it; neither means any address ([api] security group
  // template), IPv4 and IPv6 alike.
  const bool egress = type == "OUTBOUND";
  auto* ranges = egress ? rule.mutable_destination_ranges() : rule.mutable_source_ranges();
  auto* address_ranges =
      egress ? rule.mutable_destination_address_ranges() : rule.mutable_source_address_ranges();
  auto* networks = egress ? rule.mutable_destination_networks() : rule.mutable_source_networks();
  absl::string_view network = r["NETWORK_ID"];
  absl::string_view ip = r["IP"];
  int64_t vnet = 0;
  if (!network.empty()) {
    if (absl::SimpleAtoi(network, &vnet) && vnet >= 0) {
      // By VNET id, a name GetNetwork takes: the rule does not carry the
      // network's NAME, and naming it would cost a vnpool read per rule.
      *networks->Add() = absl::StrCat("accounts/", account, "/networks/", vnet);
    } else {
      notes.push_back(absl::StrCat("network ", network));
    }
  } else if (!ip.empty()) {
    int64_t size = 0;
    std::optional<uint32_t> first = ParseIpv4(ip);
    const bool sized = absl::SimpleAtoi(r["SIZE"], &size) && size > 0;
    const int prefix = first.has_value() && sized ? ExactPrefix(*first, size) : -1;
    if (prefix >= 0) {
      *ranges->Add() = absl::StrCat(ip, "/", prefix);
    } else if (first.has_value() && sized && size <= std::numeric_limits<int32_t>::max()) {
      // Not one CIDR block: kept exactly, never widened to a covering one.
      v1::AddressRange* exact = address_ranges->Add();
      exact->set_first_address(FormatIpv4(*first));
      exact->set_size(static_cast<int32_t>(size));
    } else {
      // An IPv6 IP, or a SIZE an AddressRange cannot hold: said in words.
      notes.push_back(absl::StrCat("addresses ", ip, " + ", r["SIZE"]));
    }
  } else {
    *ranges->Add() = "0.0.0.0/0";
    *ranges->Add() = "::/0";
  }
  rule.set_description(absl::StrJoin(notes, "; "));
  return rule;
}

absl::StatusOr<v1::Firewall> FirewallFromSecurityGroup(const xml::Node& sg,
                                                       absl::string_view account,
                                                       absl::string_view resource_id) {
  ASSIGN_OR_RETURN(int64_t id, IntChild(sg, "ID", "SECURITY_GROUP"));
  v1::Firewall out;
  out.set_name(absl::StrCat("accounts/", account, "/firewalls/", resource_id));
  out.set_display_name(std::string(sg.ChildText("NAME")));
  std::map<std::string, std::string> attrs = SingleAttributes(sg.Child("TEMPLATE"));
  out.set_description(attrs["DESCRIPTION"]);
  SetNumber(out.mutable_provider_details(), "id", static_cast<double>(id));
  for (const SgRule& rule : SecurityGroupRules(sg)) {
    *out.add_rules() =
        FirewallRuleFromAttributes(rule.attrs, account, absl::StrCat(out.name(), "/rules/", rule.id));
  }
  return out;
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> RuleToTemplate(
    const v1::FirewallRule& rule, absl::string_view field, const VnetIds& vnets) {
  std::vector<std::pair<std::string, std::string>> out;
  const std::string proto = absl::AsciiStrToUpper(rule.protocol());
  if (proto != "TCP" && proto != "UDP" && proto != "ICMP" && proto != "ICMPV6" &&
      proto != "IPSEC" && proto != "ALL") {
    return InvalidField(absl::StrCat(field, ".protocol"),
                        "must be tcp, udp, icmp, icmpv6, ipsec or all");
  }
  if (rule.action() == v1::FirewallRule::DENY) {
    return InvalidField(absl::StrCat(field, ".action"), "OpenNebula rules can only allow");
  }
  out.emplace_back("PROTOCOL", proto);
  out.emplace_back("RULE_TYPE",
                   rule.direction() == v1::FirewallRule::EGRESS ? "OUTBOUND" : "INBOUND");
  if (rule.port_range_start() != 0 || rule.port_range_end() != 0) {
    if (proto != "TCP" && proto != "UDP") {
      return InvalidField(absl::StrCat(field, ".port_range_start"),
                          "ports apply to tcp and udp only");
    }
    const int a = rule.port_range_start(), b = rule.port_range_end() == 0 ? a
                                                                          : rule.port_range_end();
    if (a < 0 || b > 65535 || a > b) {
      return InvalidField(absl::StrCat(field, ".port_range_end"),
                          "ports must satisfy 0 <= start <= end <= 65535");
    }
    out.emplace_back("RANGE", a == b ? absl::StrCat(a) : absl::StrCat(a, ":", b));
  }
  // A RULE has one target, the far end of its RULE_TYPE: IP/SIZE or
  // NETWORK_ID, or none for any address; the near end is the VM ([api]
  // security groups), so the near end's fields cannot be sent.
  const bool egress = rule.direction() == v1::FirewallRule::EGRESS;
  const std::string near = absl::StrCat(field, egress ? ".source" : ".destination");
  const std::string far = absl::StrCat(field, egress ? ".destination" : ".source");
  const char* const near_says = egress ? "an EGRESS rule's source is the VM itself"
                                       : "an INGRESS rule's destination is the VM itself";
  if ((egress ? rule.source_ranges_size() : rule.destination_ranges_size()) > 0) {
    return InvalidField(absl::StrCat(near, "_ranges"), near_says);
  }
  if ((egress ? rule.source_address_ranges_size() : rule.destination_address_ranges_size()) > 0) {
    return InvalidField(absl::StrCat(near, "_address_ranges"), near_says);
  }
  if ((egress ? rule.source_networks_size() : rule.destination_networks_size()) > 0) {
    return InvalidField(absl::StrCat(near, "_networks"), near_says);
  }
  if (rule.source_firewalls_size() > 0) {
    return InvalidField(absl::StrCat(field, ".source_firewalls"),
                        "OpenNebula rules cannot name a security group");
  }
  if (rule.destination_firewalls_size() > 0) {
    return InvalidField(absl::StrCat(field, ".destination_firewalls"),
                        "OpenNebula rules cannot name a security group");
  }
  const auto& ranges = egress ? rule.destination_ranges() : rule.source_ranges();
  const auto& address_ranges =
      egress ? rule.destination_address_ranges() : rule.source_address_ranges();
  const auto& networks = egress ? rule.destination_networks() : rule.source_networks();
  if (ranges.size() + address_ranges.size() + networks.size() > 1) {
    // The anywhere pair is one target (none); see below.
    const bool anywhere_pair = ranges.size() == 2 && address_ranges.empty() && networks.empty();
    if (!anywhere_pair) {
      return InvalidField(absl::StrCat(far, ranges.size() > 1           ? "_ranges"
                                            : address_ranges.size() > 0 ? "_address_ranges"
                                                                        : "_networks"),
                          "OpenNebula takes one target per rule: one CIDR, one address "
                          "range or one network (or 0.0.0.0/0 with ::/0 for any address)");
    }
  }
  if (networks.size() == 1) {
    auto it = vnets.find(networks[0]);
    if (it == vnets.end()) {
      return InvalidField(absl::StrCat(far, "_networks[0]"),
                          "must name a network of the account");
    }
    out.emplace_back("NETWORK_ID", absl::StrCat(it->second));
    return out;
  }
  if (address_ranges.size() == 1) {
    const v1::AddressRange& exact = address_ranges[0];
    const std::string where = absl::StrCat(far, "_address_ranges[0]");
    std::optional<uint32_t> first = ParseIpv4(exact.first_address());
    if (!first.has_value()) {
      return InvalidField(absl::StrCat(where, ".first_address"), "must be an IPv4 address");
    }
    if (exact.size() < 1 || int64_t{*first} + exact.size() - 1 > 0xffffffffll) {
      return InvalidField(absl::StrCat(where, ".size"),
                          "must be at least 1 and stay within IPv4");
    }
    out.emplace_back("IP", FormatIpv4(*first));
    out.emplace_back("SIZE", absl::StrCat(exact.size()));
    return out;
  }
  const std::string ranges_field = absl::StrCat(far, "_ranges");
  if (ranges.size() == 2) {
    // Any address is no target at all, which covers IPv4 and IPv6 both.
    if ((ranges[0] == "0.0.0.0/0" && ranges[1] == "::/0") ||
        (ranges[0] == "::/0" && ranges[1] == "0.0.0.0/0")) {
      return out;
    }
    return InvalidField(ranges_field, "OpenNebula takes one address range per rule");
  }
  if (ranges.size() == 1) {
    if (ranges[0] == "0.0.0.0/0" || ranges[0] == "::/0") {
      // A RULE without a target matches either family, and one with a
      // target matches one range of one family: one family's "anywhere"
      // alone cannot be written without widening it to the other.
      return InvalidField(ranges_field,
                          "an OpenNebula rule for any address covers IPv4 and IPv6: give "
                          "0.0.0.0/0 and ::/0 together");
    }
    // A bare address is its /32.
    std::optional<net::Ipv4Cidr> cidr = net::ParseIpv4CidrOrAddress(ranges[0]);
    if (!cidr.has_value() || cidr->prefix < 1) {
      return InvalidField(ranges_field, "must be one IPv4 CIDR");
    }
    if (cidr->HasHostBits()) {
      // IP/SIZE counts from IP: a host address would shift the block.
      return InvalidField(ranges_field,
                          absl::StrCat("has host bits set; the block is ",
                                       FormatIpv4(cidr->network()), "/", cidr->prefix));
    }
    out.emplace_back("IP", FormatIpv4(cidr->address));
    out.emplace_back("SIZE", absl::StrCat(int64_t{1} << (32 - cidr->prefix)));
  }
  return out;
}

}  // namespace cloudplane::adapters::opennebula
