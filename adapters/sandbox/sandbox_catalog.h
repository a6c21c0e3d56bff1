// The sandbox's fixed catalog: what every sandbox account offers without any
// setup. Nothing here is stored; it is built from code for each account.
//
//   locations     sandbox-1 (REGION) with zones sandbox-1a and sandbox-1b
//   hosts         host-1, host-2 (sandbox-1a) and host-3 (sandbox-1b), UP
//   machineTypes  small (1 vCPU, 1 GiB), medium (2, 4 GiB), large (4, 16 GiB)
//   images        debian-12, ubuntu-24-04 (READY, public, x86_64)
//   billingCodes  default (ACTIVE), research (ACTIVE, USD 500.00 limit)
//   machines      three fleet machines with 32-hex ids, one per host
#ifndef CLOUDPLANE_ADAPTERS_SANDBOX_SANDBOX_CATALOG_H_
#define CLOUDPLANE_ADAPTERS_SANDBOX_SANDBOX_CATALOG_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "cloudplane/v1/billing.pb.h"
#include "cloudplane/v1/compute.pb.h"
#include "cloudplane/v1/units.pb.h"

namespace cloudplane::adapters::sandbox {

// The zone instances, volumes and groups go to when none is given.
inline constexpr absl::string_view kDefaultZone = "sandbox-1a";
// The machine type instances get when neither a type nor a size is given.
inline constexpr absl::string_view kDefaultMachineType = "small";

struct Catalog {
  // Each list is ordered by name.
  std::vector<v1::Image> images;
  std::vector<v1::MachineType> machine_types;
  std::vector<v1::Location> locations;
  std::vector<v1::Host> hosts;
  std::vector<v1::BillingCode> billing_codes;
  std::vector<v1::Machine> machines;

  // Lookups by id (the last name segment); nullptr when unknown.
  const v1::Image* FindImage(absl::string_view id) const;
  const v1::MachineType* FindMachineType(absl::string_view id) const;
  const v1::Location* FindLocation(absl::string_view id) const;
  const v1::Host* FindHost(absl::string_view id) const;
  const v1::BillingCode* FindBillingCode(absl::string_view id) const;
  const v1::Machine* FindMachine(absl::string_view id) const;
};

// The catalog of `account`, with names under `accounts/{account}/`.
Catalog BuildCatalog(absl::string_view account);

// The last segment of a resource name.
absl::string_view LastSegment(absl::string_view name);

}  // namespace cloudplane::adapters::sandbox

#endif  // CLOUDPLANE_ADAPTERS_SANDBOX_SANDBOX_CATALOG_H_
