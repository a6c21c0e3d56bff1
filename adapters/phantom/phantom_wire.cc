#include "adapters/phantom/phantom_wire.h"

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "adapters/common/aws/sigv4.h"
#include "adapters/common/http/http_status.h"
#include "adapters/common/json/json.h"
#include "adapters/common/kit/timestamps.h"
#include "base/errors.h"
#include "base/reasons.h"
#include "base/utf8.h"
#include "rapidjson/document.h"

namespace cloudplane::adapters::phantom {
namespace {

constexpr absl::string_view kProvider = "Phantom";

// A query API (XML) answer that breaks the protocol; JSON answers of the
// REST API use json::Malformed.
absl::Status Malformed(absl::string_view what) {
  return WithErrorInfo(absl::InternalError(absl::StrCat("Phantom sent a malformed answer: ", what)),
                       reasons::kProviderMalformedResponse);
}

std::string Text(const xml::Node& node, absl::string_view child) {
  return std::string(absl::StripAsciiWhitespace(node.ChildText(child)));
}

absl::StatusOr<int> Int(const xml::Node& node, absl::string_view child) {
  const std::string text = Text(node, child);
  int value = 0;
  if (text.empty()) return 0;
  if (!absl::SimpleAtoi(text, &value)) {
    return Malformed(absl::StrCat(child, " is not an integer"));
  }
  return value;
}

// `member` children of `node`'s child `list` (empty when absent).
std::vector<const xml::Node*> Members(const xml::Node* node, absl::string_view list) {
  if (node == nullptr) return {};
  const xml::Node* l = node->Child(list);
  if (l == nullptr) return {};
  return l->ChildrenNamed("member");
}

// The texts of the `member` children of `node`'s child `list`.
std::vector<std::string> MemberTexts(const xml::Node& node, absl::string_view list) {
  std::vector<std::string> out;
  for (const xml::Node* m : Members(&node, list)) {
    std::string text(absl::StripAsciiWhitespace(m->Text()));
    if (!text.empty()) out.push_back(std::move(text));
  }
  return out;
}

void SetTime(absl::string_view text, google::protobuf::Timestamp* ts) {
  absl::Time t;
  // Phantom: 2013-06-01T12:00:00.123456Z; AWS: 2013-06-01T12:00:00.123Z.
  if (!text.empty() && absl::ParseTime(absl::RFC3339_full, text, &t, nullptr)) {
    if (auto out = kit::ToTimestamp(t)) *ts = *out;
  }
}

void SetDetail(google::protobuf::Struct* s, absl::string_view key, absl::string_view value) {
  if (value.empty()) return;
  (*s->mutable_fields())[std::string(key)].set_string_value(std::string(value));
}

void SetList(google::protobuf::Struct* s, absl::string_view key,
             const std::vector<std::string>& values) {
  if (values.empty()) return;
  auto* list = (*s->mutable_fields())[std::string(key)].mutable_list_value();
  for (const std::string& v : values) list->add_values()->set_string_value(v);
}

// A new map appended to the list `key` of `s`.
google::protobuf::Struct* AddMap(google::protobuf::Struct* s, absl::string_view key) {
  return (*s->mutable_fields())[std::string(key)]
      .mutable_list_value()
      ->add_values()
      ->mutable_struct_value();
}

// The hex SHA-256 of base64 UserData once decoded ("" for none; of the text
// as sent when it does not decode).
std::string UserDataDigest(absl::string_view base64) {
  if (base64.empty()) return "";
  std::string raw;
  if (!absl::Base64Unescape(base64, &raw)) raw = std::string(base64);
  return aws::HexSha256(raw);
}

}  // namespace

// ---------------------------------------------------------------------------
// Names.

absl::Status ValidateId(absl::string_view field, absl::string_view id) {
  if (id.empty() || id.size() > 200) {
    return InvalidField(field, "must be 1 to 200 characters");
  }
  for (char c : id) {
    if (!(absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.')) {
      return InvalidField(field, "may only hold letters, digits, '-', '_' and '.'");
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> IdFromName(absl::string_view field, absl::string_view account,
                                       absl::string_view collection, absl::string_view name) {
  std::vector<absl::string_view> parts = absl::StrSplit(name, '/');
  if (parts.size() != 4 || parts[0] != "accounts" || parts[2] != collection) {
    return InvalidField(field, absl::StrCat("must be accounts/{account}/", collection, "/{id}"));
  }
  if (!account.empty() && parts[1] != account) {
    return InvalidField(field, absl::StrCat("must be in accounts/", account));
  }
  if (absl::Status s = ValidateId(field, parts[3]); !s.ok()) return s;
  return std::string(parts[3]);
}

std::string ResourceName(absl::string_view account, absl::string_view collection,
                         absl::string_view id) {
  return absl::StrCat("accounts/", account, "/", collection, "/", id);
}

std::string LastSegment(absl::string_view reference) {
  const size_t slash = reference.rfind('/');
  return std::string(slash == absl::string_view::npos ? reference : reference.substr(slash + 1));
}

// ---------------------------------------------------------------------------
// Requests.

absl::StatusOr<std::vector<LaunchConfigSpec>> LaunchConfigsFor(
    Dialect dialect, absl::string_view template_id, const v1::LaunchTemplate& tmpl,
    absl::string_view default_site) {
  std::vector<LaunchConfigSpec> out;
  auto base = [&](absl::string_view image, absl::string_view type, absl::string_view field)
      -> absl::StatusOr<LaunchConfigSpec> {
    LaunchConfigSpec spec;
    spec.image_id = LastSegment(image.empty() ? absl::string_view(tmpl.image()) : image);
    spec.instance_type =
        LastSegment(type.empty() ? absl::string_view(tmpl.machine_type()) : type);
    if (spec.image_id.empty()) return InvalidField(absl::StrCat(field, "image"), "is required");
    if (spec.instance_type.empty()) {
      return InvalidField(absl::StrCat(field, "machine_type"), "is required");
    }
    spec.key_name = tmpl.key_name();
    spec.user_data = tmpl.user_data();
    return spec;
  };
  if (dialect == Dialect::kAws) {
    if (!tmpl.locations().empty()) {
      return InvalidField("launch_template.locations",
                          "AWS launch configurations have no per-location settings");
    }
    absl::StatusOr<LaunchConfigSpec> spec = base("", "", "launch_template.");
    if (!spec.ok()) return spec.status();
    spec->name = std::string(template_id);
    out.push_back(*std::move(spec));
    return out;
  }
  // Phantom: one `<dt>@<site>` launch configuration per site (protocol.html).
  if (tmpl.locations().empty()) {
    if (default_site.empty()) {
      return InvalidField("launch_template.locations",
                          "Phantom needs at least one site (or the account option "
                          "default_location)");
    }
    absl::StatusOr<LaunchConfigSpec> spec = base("", "", "launch_template.");
    if (!spec.ok()) return spec.status();
    spec->name = absl::StrCat(template_id, "@", default_site);
    out.push_back(*std::move(spec));
    return out;
  }
  std::set<std::string> seen;
  for (int i = 0; i < tmpl.locations_size(); ++i) {
    const v1::LocationLaunchSpec& loc = tmpl.locations(i);
    const std::string field = absl::StrCat("launch_template.locations[", i, "].");
    const std::string site = LastSegment(loc.location());
    if (absl::Status s = ValidateId(absl::StrCat(field, "location"), site); !s.ok()) return s;
    if (!seen.insert(site).second) {
      return InvalidField(absl::StrCat(field, "location"), "names a site twice");
    }
    absl::StatusOr<LaunchConfigSpec> spec = base(loc.image(), loc.machine_type(), field);
    if (!spec.ok()) {
      // Per-location fields fall back to the template's: name the
      // template's field when both are empty.
      return InvalidField(
          GetBadRequest(spec.status())->field_violations(0).field() ==
                  absl::StrCat(field, "image")
              ? "launch_template.image"
              : "launch_template.machine_type",
          absl::StrCat("is required (or set it in ", field, "*)"));
    }
    spec->name = absl::StrCat(template_id, "@", site);
    out.push_back(*std::move(spec));
  }
  return out;
}

aws::QueryParams CreateLaunchConfigParams(const LaunchConfigSpec& spec) {
  aws::QueryParams params = {{"LaunchConfigurationName", spec.name},
                             {"ImageId", spec.image_id},
                             {"InstanceType", spec.instance_type},
                             // boto 2 always sends it; Phantom ignores it.
                             {"InstanceMonitoring.Enabled", "false"}};
  if (!spec.key_name.empty()) params.emplace_back("KeyName", spec.key_name);
  // UserData must be base64 on the wire (pyhantom decodes it).
  if (!spec.user_data.empty()) params.emplace_back("UserData", absl::Base64Escape(spec.user_data));
  return params;
}

absl::StatusOr<GroupSpec> GroupSpecFor(Dialect dialect, absl::string_view group_id,
                                       absl::string_view account,
                                       const v1::ScalingGroup& group,
                                       absl::string_view default_location) {
  GroupSpec spec;
  spec.name = std::string(group_id);
  absl::StatusOr<std::string> lt = IdFromName("scaling_group.launch_template", account,
                                              "launchTemplates", group.launch_template());
  if (!lt.ok()) return lt.status();
  spec.launch_config = *std::move(lt);
  const int target = group.target_size();
  if (target < 0) return InvalidField("scaling_group.target_size", "must be 0 or more");
  if (dialect == Dialect::kPhantom) {
    // Phantom preserves N: min = max = N (its n_preserving policy); other bounds cannot be kept.
    if (group.min_size() != 0 && group.min_size() != target) {
      return InvalidField("scaling_group.min_size",
                          "Phantom keeps min = max = target_size; leave it 0 or equal");
    }
    if (group.max_size() != 0 && group.max_size() != target) {
      return InvalidField("scaling_group.max_size",
                          "Phantom keeps min = max = target_size; leave it 0 or equal");
    }
    spec.min_size = spec.max_size = spec.desired = target;
  } else {
    spec.min_size = group.min_size();
    spec.max_size = group.max_size() == 0 ? target : group.max_size();
    spec.desired = target;
    if (spec.min_size < 0 || spec.min_size > target) {
      return InvalidField("scaling_group.min_size", "must be between 0 and target_size");
    }
    if (spec.max_size < target) {
      return InvalidField("scaling_group.max_size", "must be at least target_size");
    }
  }
  std::set<std::string> seen;
  for (int i = 0; i < group.locations_size(); ++i) {
    const std::string field = absl::StrCat("scaling_group.locations[", i, "]");
    absl::StatusOr<std::string> loc =
        IdFromName(field, account, "locations", group.locations(i));
    if (!loc.ok()) return loc.status();
    if (!seen.insert(*loc).second) return InvalidField(field, "names a location twice");
    spec.locations.push_back(*std::move(loc));
  }
  if (spec.locations.empty()) {
    if (default_location.empty()) {
      return InvalidField("scaling_group.locations",
                          "at least one location is needed (or the account option "
                          "default_location)");
    }
    spec.locations.push_back(std::string(default_location));
  }
  return spec;
}

aws::QueryParams CreateGroupParams(Dialect dialect, const GroupSpec& spec) {
  aws::QueryParams params = {{"AutoScalingGroupName", spec.name},
                             {"LaunchConfigurationName", spec.launch_config},
                             {"MinSize", absl::StrCat(spec.min_size)},
                             {"MaxSize", absl::StrCat(spec.max_size)},
                             {"DesiredCapacity", absl::StrCat(spec.desired)}};
  aws::AddMemberList(params, "AvailabilityZones", spec.locations);
  if (dialect == Dialect::kPhantom) {
    // The policy travels in tags; a tag missing one of its five fields ends
    // in a 500 at Phantom (pyhantom/in_data_types.py). Every site may hold the whole group, in
    // the order given (rank = position, epu phantom_multi_site_overflow).
    std::vector<std::string> clouds;
    for (const std::string& site : spec.locations) {
      clouds.push_back(absl::StrCat(site, ":", spec.max_size));
    }
    const std::pair<std::string, std::string> tags[] = {
        {"PHANTOM_DEFINITION", "error_overflow_n_preserving"},
        {"clouds", absl::StrJoin(clouds, ",")}};
    int n = 0;
    for (const auto& [key, value] : tags) {
      const std::string p = absl::StrCat("Tags.member.", ++n, ".");
      params.emplace_back(p + "Key", key);
      params.emplace_back(p + "Value", value);
      params.emplace_back(p + "PropagateAtLaunch", "false");
      params.emplace_back(p + "ResourceId", spec.name);
      params.emplace_back(p + "ResourceType", "auto-scaling-group");
    }
  }
  return params;
}

// ---------------------------------------------------------------------------
// Answers.

absl::StatusOr<std::vector<WireLaunchConfig>> ParseLaunchConfigs(const xml::Node& result) {
  std::vector<WireLaunchConfig> out;
  for (const xml::Node* m : Members(&result, "LaunchConfigurations")) {
    WireLaunchConfig lc;
    lc.name = Text(*m, "LaunchConfigurationName");
    if (lc.name.empty()) return Malformed("a launch configuration without a name");
    lc.image_id = Text(*m, "ImageId");
    lc.instance_type = Text(*m, "InstanceType");
    lc.key_name = Text(*m, "KeyName");
    lc.created_time = Text(*m, "CreatedTime");
    lc.arn = Text(*m, "LaunchConfigurationARN");
    lc.kernel_id = Text(*m, "KernelId");
    lc.ramdisk_id = Text(*m, "RamdiskId");
    lc.user_data = Text(*m, "UserData");
    lc.security_groups = MemberTexts(*m, "SecurityGroups");
    if (const xml::Node* monitoring = m->Child("InstanceMonitoring"); monitoring != nullptr) {
      lc.instance_monitoring = Text(*monitoring, "Enabled");
    }
    out.push_back(std::move(lc));
  }
  return out;
}

absl::StatusOr<std::vector<WireGroup>> ParseGroups(const xml::Node& result) {
  std::vector<WireGroup> out;
  for (const xml::Node* m : Members(&result, "AutoScalingGroups")) {
    WireGroup g;
    g.name = Text(*m, "AutoScalingGroupName");
    if (g.name.empty()) return Malformed("a group without a name");
    g.launch_config = Text(*m, "LaunchConfigurationName");
    g.created_time = Text(*m, "CreatedTime");
    g.status = Text(*m, "Status");
    g.arn = Text(*m, "AutoScalingGroupARN");
    // Phantom writes Cooldown, AWS DefaultCooldown (protocol notes B.5).
    g.cooldown = m->Child("DefaultCooldown") != nullptr ? Text(*m, "DefaultCooldown")
                                                        : Text(*m, "Cooldown");
    g.health_check_grace_period = Text(*m, "HealthCheckGracePeriod");
    g.health_check_type = Text(*m, "HealthCheckType");
    g.placement_group = Text(*m, "PlacementGroup");
    g.vpc_zone_identifier = Text(*m, "VPCZoneIdentifier");
    g.load_balancers = MemberTexts(*m, "LoadBalancerNames");
    for (const xml::Node* t : Members(m, "Tags")) {
      if (!Text(*t, "Key").empty()) g.tags.emplace_back(Text(*t, "Key"), Text(*t, "Value"));
    }
    absl::StatusOr<int> v = Int(*m, "MinSize");
    if (!v.ok()) return v.status();
    g.min_size = *v;
    if (v = Int(*m, "MaxSize"); !v.ok()) return v.status();
    g.max_size = *v;
    if (v = Int(*m, "DesiredCapacity"); !v.ok()) return v.status();
    g.desired = *v;
    for (const xml::Node* z : Members(m, "AvailabilityZones")) {
      g.zones.emplace_back(absl::StripAsciiWhitespace(z->Text()));
    }
    for (const xml::Node* i : Members(m, "Instances")) {
      WireInstance inst;
      inst.instance_id = Text(*i, "InstanceId");
      inst.zone = Text(*i, "AvailabilityZone");
      inst.lifecycle_state = Text(*i, "LifecycleState");
      inst.health_status = Text(*i, "HealthStatus");
      inst.launch_config = Text(*i, "LaunchConfigurationName");
      g.instances.push_back(std::move(inst));
    }
    out.push_back(std::move(g));
  }
  return out;
}

std::string TemplateIdOf(Dialect dialect, absl::string_view lc_name, std::string* site) {
  if (dialect == Dialect::kAws) return std::string(lc_name);
  // Split at the first '@' (protocol.html).
  const size_t at = lc_name.find('@');
  if (at == absl::string_view::npos) return std::string(lc_name);
  if (site != nullptr) *site = std::string(lc_name.substr(at + 1));
  return std::string(lc_name.substr(0, at));
}

v1::LaunchTemplate TemplateFromWire(Dialect dialect, absl::string_view account,
                                    absl::string_view template_id,
                                    const std::vector<WireLaunchConfig>& lcs) {
  v1::LaunchTemplate t;
  t.set_name(ResourceName(account, "launchTemplates", template_id));
  if (lcs.empty()) return t;
  const WireLaunchConfig& first = lcs.front();
  // The template-wide image and machine type are what every site shares;
  // where sites differ, only `locations` can say it.
  auto all_same = [&](auto field) {
    return std::all_of(lcs.begin(), lcs.end(),
                       [&](const WireLaunchConfig& lc) { return lc.*field == first.*field; });
  };
  if (all_same(&WireLaunchConfig::image_id)) {
    t.set_image(ResourceName(account, "images", first.image_id));
  }
  if (all_same(&WireLaunchConfig::instance_type)) {
    t.set_machine_type(ResourceName(account, "machineTypes", first.instance_type));
  }
  t.set_key_name(first.key_name);
  SetTime(first.created_time, t.mutable_create_time());
  if (dialect == Dialect::kPhantom) {
    for (const WireLaunchConfig& lc : lcs) {
      std::string site;
      TemplateIdOf(dialect, lc.name, &site);
      if (site.empty()) continue;
      v1::LocationLaunchSpec* loc = t.add_locations();
      loc->set_location(ResourceName(account, "locations", site));
      loc->set_image(ResourceName(account, "images", lc.image_id));
      loc->set_machine_type(ResourceName(account, "machineTypes", lc.instance_type));
    }
  }
  std::vector<std::string> names, arns;
  for (const WireLaunchConfig& lc : lcs) {
    names.push_back(lc.name);
    if (!lc.arn.empty()) arns.push_back(lc.arn);
  }
  google::protobuf::Struct* d = t.mutable_provider_details();
  SetDetail(d, "launchConfigurationNames", absl::StrJoin(names, ","));
  SetDetail(d, "launchConfigurationArns", absl::StrJoin(arns, ","));
  for (const WireLaunchConfig& lc : lcs) {
    google::protobuf::Struct* m = AddMap(d, "launchConfigurations");
    SetDetail(m, "name", lc.name);
    if (dialect == Dialect::kPhantom) {
      std::string site;
      TemplateIdOf(dialect, lc.name, &site);
      SetDetail(m, "site", site);
    }
    SetDetail(m, "arn", lc.arn);
    SetDetail(m, "createdTime", lc.created_time);
    SetDetail(m, "imageId", lc.image_id);
    SetDetail(m, "instanceType", lc.instance_type);
    SetDetail(m, "keyName", lc.key_name);
    SetDetail(m, "kernelId", lc.kernel_id);
    SetDetail(m, "ramdiskId", lc.ramdisk_id);
    SetList(m, "securityGroups", lc.security_groups);
    SetDetail(m, "instanceMonitoring", lc.instance_monitoring);
    SetDetail(m, "userDataSha256", UserDataDigest(lc.user_data));
  }
  if (all_same(&WireLaunchConfig::user_data)) {
    SetDetail(d, "userDataSha256", UserDataDigest(first.user_data));
  }
  return t;
}

std::vector<v1::LaunchTemplate> TemplatesFromWire(Dialect dialect, absl::string_view account,
                                                  const std::vector<WireLaunchConfig>& lcs) {
  std::map<std::string, std::vector<WireLaunchConfig>> by_id;
  for (const WireLaunchConfig& lc : lcs) {
    std::string id = TemplateIdOf(dialect, lc.name);
    // Ids that our names cannot carry (created by other tools) are left out.
    if (!ValidateId("", id).ok()) continue;
    by_id[id].push_back(lc);
  }
  std::vector<v1::LaunchTemplate> out;
  for (auto& [id, group] : by_id) {
    std::sort(group.begin(), group.end(),
              [](const WireLaunchConfig& a, const WireLaunchConfig& b) { return a.name < b.name; });
    out.push_back(TemplateFromWire(dialect, account, id, group));
  }
  return out;
}

bool InstanceRunning(const WireInstance& instance) {
  return instance.lifecycle_state == "InService" || instance.lifecycle_state == "600-RUNNING" ||
         // Phantom's in-memory test back-end (pyhantom/system/tester.py).
         instance.lifecycle_state == "running";
}

v1::ScalingGroup GroupFromWire(Dialect dialect, absl::string_view account,
                               const WireGroup& group) {
  v1::ScalingGroup g;
  g.set_name(ResourceName(account, "scalingGroups", group.name));
  g.set_launch_template(ResourceName(account, "launchTemplates",
                                     TemplateIdOf(dialect, group.launch_config)));
  g.set_target_size(group.desired);
  g.set_min_size(group.min_size);
  g.set_max_size(group.max_size);
  // Phantom leaves AvailabilityZones empty (pyhantom/out_data_types.py): the sites come from the
  // instances then.
  std::vector<std::string> zones = group.zones;
  if (zones.empty()) {
    for (const WireInstance& i : group.instances) {
      if (!i.zone.empty() && std::find(zones.begin(), zones.end(), i.zone) == zones.end()) {
        zones.push_back(i.zone);
      }
    }
  }
  for (const std::string& z : zones) g.add_locations(ResourceName(account, "locations", z));
  for (const WireInstance& i : group.instances) {
    v1::ScalingGroupInstance* out = g.add_instances();
    out->set_instance_id(i.instance_id);
    if (!i.zone.empty()) out->set_location(ResourceName(account, "locations", i.zone));
    out->set_lifecycle_state(i.lifecycle_state);
    // Phantom appends the EPU state description after a space (pyhantom).
    if (absl::StartsWith(i.health_status, "Healthy")) {
      out->set_health(v1::ScalingGroupInstance::HEALTHY);
    } else if (absl::StartsWith(i.health_status, "Unhealthy")) {
      out->set_health(v1::ScalingGroupInstance::UNHEALTHY);
    }
  }
  if (absl::StartsWith(group.status, "Delete")) {
    g.set_state(v1::ScalingGroup::DELETING);
  } else {
    g.set_state(GroupSettled(group, group.desired) ? v1::ScalingGroup::STABLE
                                                   : v1::ScalingGroup::RESIZING);
  }
  SetTime(group.created_time, g.mutable_create_time());
  google::protobuf::Struct* d = g.mutable_provider_details();
  SetDetail(d, "launchConfigurationName", group.launch_config);
  SetDetail(d, "status", group.status);
  SetDetail(d, "arn", group.arn);
  SetDetail(d, "createdTime", group.created_time);
  SetDetail(d, "cooldown", group.cooldown);
  SetDetail(d, "healthCheckGracePeriod", group.health_check_grace_period);
  SetDetail(d, "healthCheckType", group.health_check_type);
  SetDetail(d, "placementGroup", group.placement_group);
  SetDetail(d, "vpcZoneIdentifier", group.vpc_zone_identifier);
  SetList(d, "availabilityZones", group.zones);
  SetList(d, "loadBalancerNames", group.load_balancers);
  if (!group.tags.empty()) {
    google::protobuf::Struct* tags = (*d->mutable_fields())["tags"].mutable_struct_value();
    for (const auto& [key, value] : group.tags) {
      (*tags->mutable_fields())[key].set_string_value(value);  // "" kept: a tag may be empty
    }
  }
  for (const WireInstance& i : group.instances) {
    google::protobuf::Struct* m = AddMap(d, "instances");
    SetDetail(m, "instanceId", i.instance_id);
    SetDetail(m, "availabilityZone", i.zone);
    SetDetail(m, "lifecycleState", i.lifecycle_state);
    SetDetail(m, "healthStatus", i.health_status);
    SetDetail(m, "launchConfigurationName", i.launch_config);
  }
  return g;
}

bool GroupSettled(const WireGroup& group, int size) {
  if (static_cast<int>(group.instances.size()) != size) return false;
  for (const WireInstance& i : group.instances) {
    if (!InstanceRunning(i) || !absl::StartsWith(i.health_status, "Healthy")) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------
// REST.

std::string TokenRequestBody(absl::string_view username, absl::string_view password) {
  // Form-encoded with the same RFC 3986 encoding; Django decodes %20 too.
  return absl::StrCat("password=", aws::UriEncode(password),
                      "&username=", aws::UriEncode(username));
}

absl::StatusOr<Token> ParseTokenResponse(int http_status, absl::string_view body) {
  auto unauthenticated = [&](absl::string_view why) {
    return WithErrorInfo(
        absl::UnauthenticatedError(absl::StrCat("Phantom refused the username or password: ", why)),
        reasons::kProviderUnauthenticated, {{"httpStatus", absl::StrCat(http_status)}});
  };
  // Later django-tokenapi versions answer 401/403.
  if (http_status == 401 || http_status == 403) return unauthenticated("HTTP error");
  if (http_status < 200 || http_status > 299) {
    return StatusFromRest(http_status, body, "POST /token");
  }
  rapidjson::Document doc;
  const rapidjson::Value* success = nullptr;
  if (json::Parse(body, kProvider, doc).ok()) success = json::Member(doc, "success");
  if (success == nullptr || !success->IsBool()) {
    return json::Malformed(kProvider, "POST /token did not answer a JSON object with \"success\"");
  }
  // HTTP 200 with success:false is the pinned tokenapi's auth failure.
  if (!success->GetBool()) {
    const rapidjson::Value* errors = json::Member(doc, "errors");
    return unauthenticated(errors != nullptr && errors->IsString() ? errors->GetString()
                                                                   : "success:false");
  }
  const rapidjson::Value* token = json::Member(doc, "token");
  const rapidjson::Value* user = json::Member(doc, "user");
  if (token == nullptr || !token->IsString() || user == nullptr) {
    return json::Malformed(kProvider, "POST /token answered success without token and user");
  }
  Token out;
  out.token = token->GetString();
  if (user->IsInt64()) {
    out.user_id = absl::StrCat(user->GetInt64());
  } else if (user->IsString()) {
    out.user_id = user->GetString();
  } else {
    return json::Malformed(kProvider,
                           "POST /token answered a user that is neither number nor string");
  }
  return out;
}

absl::StatusOr<std::vector<v1::Location>> ParseSites(absl::string_view body,
                                                     absl::string_view account) {
  rapidjson::Document doc;
  if (!json::Parse(body, kProvider, doc).ok() || !doc.IsArray()) {
    return json::Malformed(kProvider, "GET /sites is not a JSON list");
  }
  std::vector<v1::Location> out;
  for (const auto& site : doc.GetArray()) {
    const rapidjson::Value* id_value = json::Member(site, "id");
    if (id_value == nullptr || !id_value->IsString()) {
      return json::Malformed(kProvider, "a site without an id");
    }
    v1::Location loc;
    const std::string id = id_value->GetString();
    loc.set_name(ResourceName(account, "locations", id));
    loc.set_display_name(id);
    loc.set_kind(v1::Location::SITE);
    loc.set_available(true);
    if (const rapidjson::Value* types = json::Member(site, "instance_types");
        types != nullptr && types->IsArray()) {
      std::vector<std::string> names;
      for (const auto& t : types->GetArray()) {
        if (t.IsString()) names.push_back(t.GetString());
      }
      SetDetail(loc.mutable_provider_details(), "instanceTypes", absl::StrJoin(names, ","));
    }
    if (const rapidjson::Value* type = json::Member(site, "type");
        type != nullptr && type->IsString()) {
      SetDetail(loc.mutable_provider_details(), "type", type->GetString());
    }
    out.push_back(std::move(loc));
  }
  std::sort(out.begin(), out.end(),
            [](const v1::Location& a, const v1::Location& b) { return a.name() < b.name(); });
  return out;
}

absl::Status StatusFromRest(int http_status, absl::string_view body, absl::string_view context) {
  if (http_status >= 200 && http_status <= 299) return absl::OkStatus();
  // Cut between characters and repaired (phantom_wire_fuzz found raw
  // bytes reaching the status message).
  std::string message = ShortText(body, 300);
  // Phantom answers a missing or wrong token with 403 "Authorization
  // Required" (PhantomWebApp phantomweb/api/dev.py): that is an authentication failure, not a
  // permission one.
  absl::StatusCode code = http_status == 403 ? absl::StatusCode::kUnauthenticated
                                             : http::HttpStatusToCode(http_status);
  return WithErrorInfo(
      absl::Status(code, absl::StrCat(context, ": Phantom answered HTTP ", http_status, ": ",
                                      message)),
      DefaultReason(code), {{"httpStatus", absl::StrCat(http_status)}, {"providerMessage", message}});
}

}  // namespace cloudplane::adapters::phantom
