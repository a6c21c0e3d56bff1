// Resource names and ids of the sandbox provider.
//
// Every sandbox resource is named `accounts/{account}/{collection}/{id}`
// (firewall rules one level deeper, instance metadata as
// `accounts/{account}/instances/{id}/metadata`). Request names are parsed
// strictly: a name of another account or collection, or an id that breaks the
// collection's id rule, is INVALID_ARGUMENT naming the request field.
#ifndef CLOUDPLANE_ADAPTERS_SANDBOX_SANDBOX_NAMES_H_
#define CLOUDPLANE_ADAPTERS_SANDBOX_SANDBOX_NAMES_H_

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace cloudplane::adapters::sandbox {

// Collection segments, as they appear in names and as store collections.
inline constexpr absl::string_view kInstances = "instances";
inline constexpr absl::string_view kVolumes = "volumes";
inline constexpr absl::string_view kFirewalls = "firewalls";
inline constexpr absl::string_view kLaunchTemplates = "launchTemplates";
inline constexpr absl::string_view kScalingGroups = "scalingGroups";
inline constexpr absl::string_view kUnits = "units";
inline constexpr absl::string_view kMachines = "machines";
inline constexpr absl::string_view kImages = "images";
inline constexpr absl::string_view kMachineTypes = "machineTypes";
inline constexpr absl::string_view kLocations = "locations";
inline constexpr absl::string_view kHosts = "hosts";
inline constexpr absl::string_view kBillingCodes = "billingCodes";
inline constexpr absl::string_view kNetworks = "networks";
inline constexpr absl::string_view kAddresses = "addresses";
inline constexpr absl::string_view kKeyPairs = "keyPairs";

// `accounts/{account}/{collection}/{id}`.
std::string ResourceName(absl::string_view account, absl::string_view collection,
                         absl::string_view id);
// `accounts/{account}/firewalls/{firewall}/rules/{rule}`.
std::string RuleName(absl::string_view account, absl::string_view firewall, int64_t rule);
// `accounts/{account}/instances/{instance}/metadata`.
std::string MetadataName(absl::string_view account, absl::string_view instance);

// True for `[a-z]([-a-z0-9]{0,61}[a-z0-9])?`, the id rule of instances,
// volumes, firewalls, launch templates, scaling groups and the catalog.
bool IsValidId(absl::string_view id);

// fleet's unit name rules (fleet api/units.go ValidateName, after systemd's
// unit_name_is_valid): at most 256 bytes, a known unit type after the last
// dot, only `[A-Za-z0-9:_.\\@-]` before it, not starting with `@`. Returns
// the reason when invalid.
absl::Status CheckUnitName(absl::string_view name);
// True for a template unit such as `hello@.service`.
bool IsTemplateUnit(absl::string_view name);

// INVALID_ARGUMENT naming `field` unless `parent` is `accounts/{account}`.
absl::Status CheckParent(absl::string_view parent, absl::string_view account,
                         absl::string_view field = "parent");

// The id in `name` = `accounts/{account}/{collection}/{id}`. The id must
// satisfy the collection's rule (IsValidId; units: CheckUnitName; machines:
// 32 lowercase hex digits; addresses: the IPv4 address in dotted-decimal
// form, e.g. `203.0.113.7`). INVALID_ARGUMENT naming `field` otherwise.
absl::StatusOr<std::string> ParseName(absl::string_view name, absl::string_view account,
                                      absl::string_view collection, absl::string_view field);

// (firewall id, rule number) of a firewall rule name.
absl::StatusOr<std::pair<std::string, int64_t>> ParseRuleName(absl::string_view name,
                                                              absl::string_view account,
                                                              absl::string_view field);

// The instance id of `accounts/{account}/instances/{id}/metadata`.
absl::StatusOr<std::string> ParseMetadataName(absl::string_view name, absl::string_view account,
                                              absl::string_view field);

}  // namespace cloudplane::adapters::sandbox

#endif  // CLOUDPLANE_ADAPTERS_SANDBOX_SANDBOX_NAMES_H_
