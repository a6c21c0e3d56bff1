#include "adapters/sandbox/sandbox_catalog.h"

#include <algorithm>
#include <cstdint>

#include "adapters/sandbox/sandbox_names.h"

namespace cloudplane::adapters::sandbox {
namespace {

constexpr int64_t kGiB = int64_t{1} << 30;

template <typename T>
const T* FindById(const std::vector<T>& items, absl::string_view id) {
  for (const T& item : items) {
    if (LastSegment(item.name()) == id) return &item;
  }
  return nullptr;
}

template <typename T>
void SortByName(std::vector<T>& items) {
  std::sort(items.begin(), items.end(),
            [](const T& a, const T& b) { return a.name() < b.name(); });
}

}  // namespace

absl::string_view LastSegment(absl::string_view name) {
  size_t slash = name.rfind('/');
  return slash == absl::string_view::npos ? name : name.substr(slash + 1);
}

const v1::Image* Catalog::FindImage(absl::string_view id) const { return FindById(images, id); }
const v1::MachineType* Catalog::FindMachineType(absl::string_view id) const {
  return FindById(machine_types, id);
}
const v1::Location* Catalog::FindLocation(absl::string_view id) const {
  return FindById(locations, id);
}
const v1::Host* Catalog::FindHost(absl::string_view id) const { return FindById(hosts, id); }
const v1::BillingCode* Catalog::FindBillingCode(absl::string_view id) const {
  return FindById(billing_codes, id);
}
const v1::Machine* Catalog::FindMachine(absl::string_view id) const {
  return FindById(machines, id);
}

Catalog BuildCatalog(absl::string_view account) {
  Catalog c;

  struct ImageSeed {
    const char* id;
    const char* display_name;
    const char* description;
    int64_t size_bytes;
  };
  for (const ImageSeed& seed : {
           ImageSeed{"debian-12", "Debian 12 (bookworm)", "Debian GNU/Linux 12, minimal server",
                     2 * kGiB},
           ImageSeed{"ubuntu-24-04", "Ubuntu 24.04 LTS (noble)", "Ubuntu Server 24.04 LTS",
                     3 * kGiB},
       }) {
    v1::Image& image = c.images.emplace_back();
    image.set_name(ResourceName(account, kImages, seed.id));
    image.set_display_name(seed.display_name);
    image.set_description(seed.description);
    image.set_os("linux");
    image.set_architecture("x86_64");
    image.set_size_bytes(seed.size_bytes);
    image.set_state(v1::Image::READY);
    image.set_public_(true);
  }

  struct TypeSeed {
    const char* id;
    const char* display_name;
    int cpus;
    int64_t memory;
    int64_t disk;
  };
  for (const TypeSeed& seed : {
           TypeSeed{"large", "Large (4 vCPU, 16 GiB)", 4, 16 * kGiB, 80 * kGiB},
           TypeSeed{"medium", "Medium (2 vCPU, 4 GiB)", 2, 4 * kGiB, 40 * kGiB},
           TypeSeed{"small", "Small (1 vCPU, 1 GiB)", 1, 1 * kGiB, 10 * kGiB},
       }) {
    v1::MachineType& type = c.machine_types.emplace_back();
    type.set_name(ResourceName(account, kMachineTypes, seed.id));
    type.set_display_name(seed.display_name);
    type.set_cpu_count(seed.cpus);
    type.set_memory_bytes(seed.memory);
    type.set_disk_bytes(seed.disk);
  }

  const std::string region_name = ResourceName(account, kLocations, "sandbox-1");
  v1::Location& region = c.locations.emplace_back();
  region.set_name(region_name);
  region.set_display_name("Sandbox region 1");
  region.set_kind(v1::Location::REGION);
  region.set_available(true);
  for (const char* zone_id : {"sandbox-1a", "sandbox-1b"}) {
    v1::Location& zone = c.locations.emplace_back();
    zone.set_name(ResourceName(account, kLocations, zone_id));
    zone.set_display_name(std::string("Sandbox zone ") + zone_id);
    zone.set_kind(v1::Location::ZONE);
    zone.set_parent_location(region_name);
    zone.set_available(true);
  }

  struct HostSeed {
    const char* id;
    const char* zone;
    const char* machine_id;
    const char* ip;
  };
  const HostSeed hosts[] = {
      {"host-1", "sandbox-1a", "2c4a1e0b8f6d4c3a9b7e5d1f0a2c4e6b", "10.0.0.11"},
      {"host-2", "sandbox-1a", "7e1d9c3b5a2f4e6d8c0b1a3f5e7d9c2b", "10.0.0.12"},
      {"host-3", "sandbox-1b", "b4104f4b83fd48b2acc16a085b0ec2ce", "10.0.1.13"},
  };
  for (const HostSeed& seed : hosts) {
    v1::Host& host = c.hosts.emplace_back();
    host.set_name(ResourceName(account, kHosts, seed.id));
    host.set_display_name(std::string(seed.id) + ".sandbox.internal");
    host.set_state(v1::Host::UP);
    host.set_provider_state("up");
    host.set_location(ResourceName(account, kLocations, seed.zone));
    host.set_cpu_count(32);
    host.set_memory_bytes(128 * kGiB);
    (*host.mutable_labels())["zone"] = seed.zone;

    v1::Machine& machine = c.machines.emplace_back();
    machine.set_name(ResourceName(account, kMachines, seed.machine_id));
    machine.set_primary_ip(seed.ip);
    (*machine.mutable_metadata())["region"] = "sandbox-1";
    (*machine.mutable_metadata())["zone"] = seed.zone;
    (*machine.mutable_metadata())["host"] = seed.id;
  }

  v1::BillingCode& code = c.billing_codes.emplace_back();
  code.set_name(ResourceName(account, kBillingCodes, "default"));
  code.set_display_name("Default");
  code.set_finance_code("CC-0000");
  code.set_description("Charged when a resource names no other code");
  code.set_state(v1::BillingCode::ACTIVE);
  code.set_currency("USD");
  v1::BillingCode& research = c.billing_codes.emplace_back();
  research.set_name(ResourceName(account, kBillingCodes, "research"));
  research.set_display_name("Research");
  research.set_finance_code("CC-4711");
  research.set_description("Experiments; capped budget");
  research.set_state(v1::BillingCode::ACTIVE);
  research.set_budget_limit_minor_units(50000);
  research.set_currency("USD");

  SortByName(c.images);
  SortByName(c.machine_types);
  SortByName(c.locations);
  SortByName(c.hosts);
  SortByName(c.billing_codes);
  SortByName(c.machines);
  return c;
}

}  // namespace cloudplane::adapters::sandbox
