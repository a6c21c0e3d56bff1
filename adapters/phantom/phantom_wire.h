// Pure translation between Phantom's two APIs (and standard AWS Auto
// Scaling) and cloudplane.v1 messages. No I/O; tested in
// phantom_wire_test.cc on answers shaped as pyhantom and PhantomWebApp
// write them (Phantom publishes no recorded payloads, see
// shared/fixtures/phantom).
//
// Reference: the documents phantom_adapter.h lists; Phantom's departures
// from them cite its source files (github.com/nimbusproject/Phantom,
// github.com/nimbusproject/PhantomWebApp) where the code copes.
//
// Names:
//   accounts/<a>/launchTemplates/<t>  Phantom: the deployable type <t>, one
//       launch configuration `<t>@<site>` per location (protocol.html). AWS: the
//       launch configuration <t>.
//   accounts/<a>/scalingGroups/<g>    the auto scaling group (Phantom
//       domain) <g>.
//   accounts/<a>/locations/<l>        Phantom: the site <l> (REST /sites);
//       AWS: the availability zone <l>.
//   image / machine type references: their last segment is the wire value
//       (accounts/a/images/hello-phantom.gz → ImageId hello-phantom.gz).
//
// Thread-safety: all functions are thread-safe.
#ifndef CLOUDPLANE_ADAPTERS_PHANTOM_PHANTOM_WIRE_H_
#define CLOUDPLANE_ADAPTERS_PHANTOM_PHANTOM_WIRE_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "adapters/common/aws/query.h"
#include "adapters/common/xml/xml.h"
#include "cloudplane/v1/autoscaling.pb.h"
#include "cloudplane/v1/compute.pb.h"

namespace cloudplane::adapters::phantom {

enum class Dialect { kPhantom, kAws };

// The API version every request names (boto 2's AutoScaleConnection; Phantom
// ignores it, AWS requires it).
inline constexpr absl::string_view kApiVersion = "2011-01-01";

// ---------------------------------------------------------------------------
// Names.

// The id of `accounts/<account>/<collection>/<id>`. INVALID_ARGUMENT naming
// `field` for another shape, another account, or an id outside
// [-_.0-9A-Za-z]{1,200} (Phantom's name rule minus the space; '@' is the
// site separator and never part of an id).
absl::StatusOr<std::string> IdFromName(absl::string_view field, absl::string_view account,
                                       absl::string_view collection, absl::string_view name);
// OK or INVALID_ARGUMENT naming `field` for an id outside the rule above.
absl::Status ValidateId(absl::string_view field, absl::string_view id);
std::string ResourceName(absl::string_view account, absl::string_view collection,
                         absl::string_view id);
// The last '/'-separated segment of a resource reference (or the text
// itself when it has none).
std::string LastSegment(absl::string_view reference);

// ---------------------------------------------------------------------------
// Query API requests (parameters without Action/Version/auth).

struct LaunchConfigSpec {
  std::string name;  // `dt@site` (Phantom) or the plain name (AWS)
  std::string image_id;
  std::string instance_type;
  std::string key_name;
  std::string user_data;  // raw; base64-encoded on the wire
};

// The launch configurations a template stands for: one per location for
// Phantom (`<id>@<site>`; none given → `default_site`, none of both →
// INVALID_ARGUMENT naming launch_template.locations), exactly one for AWS
// (locations → INVALID_ARGUMENT: AWS launch configurations have no
// location). A missing image or machine type is INVALID_ARGUMENT naming
// launch_template.image / launch_template.machine_type.
absl::StatusOr<std::vector<LaunchConfigSpec>> LaunchConfigsFor(
    Dialect dialect, absl::string_view template_id, const v1::LaunchTemplate& tmpl,
    absl::string_view default_site);

aws::QueryParams CreateLaunchConfigParams(const LaunchConfigSpec& spec);

struct GroupSpec {
  std::string name;
  std::string launch_config;  // the template id (Phantom: the DT name)
  int min_size = 0, max_size = 0, desired = 0;
  std::vector<std::string> locations;  // sites / zones
};

// Checks sizes (target_size >= 0; min <= target <= max when given; Phantom
// keeps min = max = target) and fills a GroupSpec. INVALID_ARGUMENT
// naming the scaling_group.* field.
absl::StatusOr<GroupSpec> GroupSpecFor(Dialect dialect, absl::string_view group_id,
                                       absl::string_view account,
                                       const v1::ScalingGroup& group,
                                       absl::string_view default_location);

// CreateAutoScalingGroup parameters. Phantom: AvailabilityZones (value
// ignored by Phantom, required ≥1) and the policy tags
// PHANTOM_DEFINITION=error_overflow_n_preserving and clouds="<site>:<n>,…"
// with all five fields per tag (pyhantom/in_data_types.py).
aws::QueryParams CreateGroupParams(Dialect dialect, const GroupSpec& spec);

// ---------------------------------------------------------------------------
// Query API answers.

struct WireLaunchConfig {
  std::string name, image_id, instance_type, key_name, created_time, arn;
  std::string kernel_id, ramdisk_id, instance_monitoring;  // Enabled's text
  std::string user_data;  // base64, as on the wire
  std::vector<std::string> security_groups;
};
struct WireInstance {
  std::string instance_id, zone, lifecycle_state, health_status, launch_config;
};
struct WireGroup {
  std::string name, launch_config, created_time, status, arn;
  // As sent (Phantom: Cooldown; AWS: DefaultCooldown), not interpreted.
  std::string cooldown, health_check_grace_period, health_check_type, placement_group,
      vpc_zone_identifier;
  int min_size = 0, max_size = 0, desired = 0;
  std::vector<std::string> zones, load_balancers;
  std::vector<std::pair<std::string, std::string>> tags;  // Key, Value
  std::vector<WireInstance> instances;
};

// `result` is QueryResponse::result of DescribeLaunchConfigurations /
// DescribeAutoScalingGroups. INTERNAL (PROVIDER_MALFORMED_RESPONSE) for a
// member without a name or with a non-integer size.
absl::StatusOr<std::vector<WireLaunchConfig>> ParseLaunchConfigs(const xml::Node& result);
absl::StatusOr<std::vector<WireGroup>> ParseGroups(const xml::Node& result);

// The template id a launch configuration belongs to: Phantom `dt@site` →
// dt (and `site`), AWS: the name itself.
std::string TemplateIdOf(Dialect dialect, absl::string_view lc_name, std::string* site = nullptr);

// One template from its launch configurations (all of the same template id,
// at least one). provider_details, what the typed message has no place for:
//   launchConfigurationNames, launchConfigurationArns (comma-separated);
//   launchConfigurations: one map per launch configuration, in order: name,
//     site (Phantom), arn, createdTime (as sent), imageId, instanceType,
//     keyName, kernelId, ramdiskId, securityGroups (a list),
//     instanceMonitoring, userDataSha256 (the hex SHA-256 of the decoded
//     UserData; the data itself never: it may hold secrets);
//   userDataSha256 when every launch configuration has the same user data.
v1::LaunchTemplate TemplateFromWire(Dialect dialect, absl::string_view account,
                                    absl::string_view template_id,
                                    const std::vector<WireLaunchConfig>& lcs);
// Every template, sorted by name.
std::vector<v1::LaunchTemplate> TemplatesFromWire(Dialect dialect, absl::string_view account,
                                                  const std::vector<WireLaunchConfig>& lcs);

// True when the instance is up: AWS `InService`, Phantom `600-RUNNING`.
bool InstanceRunning(const WireInstance& instance);
// provider_details, what the typed message has no place for:
//   launchConfigurationName, status, arn, createdTime (as sent), cooldown,
//   healthCheckGracePeriod, healthCheckType, placementGroup,
//   vpcZoneIdentifier, availabilityZones and loadBalancerNames (lists, as
//   sent), tags (Key → Value: Phantom's policy, e.g. PHANTOM_DEFINITION,
//   clouds); instances: one map per instance, in order: instanceId,
//   availabilityZone (Phantom: the site), lifecycleState, healthStatus (the
//   whole text: Phantom appends the EPU state's description),
//   launchConfigurationName. Empty values are left out.
v1::ScalingGroup GroupFromWire(Dialect dialect, absl::string_view account,
                               const WireGroup& group);
// True when the group has exactly `size` instances, all running and healthy.
bool GroupSettled(const WireGroup& group, int size);

// ---------------------------------------------------------------------------
// REST API (A).

// The body of POST /token; the answer's user id and token. A `success:false`
// answer (HTTP 200 with the pinned django-tokenapi 0.2.0) or 401/403 is
// UNAUTHENTICATED; other shapes are INTERNAL (PROVIDER_MALFORMED_RESPONSE).
std::string TokenRequestBody(absl::string_view username, absl::string_view password);
struct Token {
  std::string user_id;
  std::string token;
};
absl::StatusOr<Token> ParseTokenResponse(int http_status, absl::string_view body);

// GET /sites answer (api.html) → Locations of kind SITE, sorted by name.
absl::StatusOr<std::vector<v1::Location>> ParseSites(absl::string_view body,
                                                     absl::string_view account);
// The status of a non-2xx REST answer: 403 "Authorization Required" →
// UNAUTHENTICATED, 404 NOT_FOUND, 400 INVALID_ARGUMENT, 5xx UNAVAILABLE;
// Phantom's errors are plain text (phantomweb/api/dev.py), kept as providerMessage.
absl::Status StatusFromRest(int http_status, absl::string_view body, absl::string_view context);

}  // namespace cloudplane::adapters::phantom

#endif  // CLOUDPLANE_ADAPTERS_PHANTOM_PHANTOM_WIRE_H_
