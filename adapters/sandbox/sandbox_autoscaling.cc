// AutoscalingService of the sandbox. A group's instances are simulated
// inside the group: new ones are `Pending` and become `InService`/HEALTHY
// when the group's transition settles; removed ones are `Terminating` until
// then (EC2 Auto Scaling lifecycle words).
#include <string>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "adapters/sandbox/sandbox_names.h"
#include "adapters/sandbox/sandbox_provider.h"
#include "base/errors.h"
#include "base/status.h"

namespace cloudplane::adapters::sandbox {
namespace {

constexpr absl::string_view kPending = "Pending";
constexpr absl::string_view kTerminating = "Terminating";

std::string NewInstanceId(absl::BitGen& random) {
  std::string bytes(6, '\0');
  for (char& c : bytes) c = static_cast<char>(absl::Uniform<int>(random, 0, 256));
  return absl::StrCat("i-", absl::BytesToHexString(bytes));
}

// Adds `count` Pending instances, spread round-robin over the locations.
void AddInstances(v1::ScalingGroup& group, int count) {
  absl::BitGen random;
  int placed = group.instances_size();
  for (int i = 0; i < count; ++i, ++placed) {
    v1::ScalingGroupInstance* instance = group.add_instances();
    instance->set_instance_id(NewInstanceId(random));
    if (group.locations_size() > 0) {
      instance->set_location(group.locations(placed % group.locations_size()));
    }
    instance->set_lifecycle_state(std::string(kPending));
  }
}

int LiveCount(const v1::ScalingGroup& group) {
  int live = 0;
  for (const v1::ScalingGroupInstance& instance : group.instances()) {
    if (instance.lifecycle_state() != kTerminating) ++live;
  }
  return live;
}

absl::Status CheckSize(int target, int min_size, int max_size, absl::string_view target_field) {
  if (target < 0) return InvalidField(target_field, "must not be negative");
  if (target < min_size) {
    return InvalidField(target_field, absl::StrCat("must not be below min_size ", min_size));
  }
  if (max_size > 0 && target > max_size) {
    return InvalidField(target_field, absl::StrCat("must not exceed max_size ", max_size));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> RequiredId(absl::string_view id, absl::string_view field) {
  if (id.empty()) return InvalidField(field, "required");
  if (!IsValidId(id)) return InvalidField(field, "must match [a-z]([-a-z0-9]{0,61}[a-z0-9])?");
  return std::string(id);
}

}  // namespace

void SandboxProvider::ListLaunchTemplates(const CallContext& ctx,
                                          const v1::ListLaunchTemplatesRequest& request,
                                          Callback<v1::ListLaunchTemplatesResponse> done) {
  std::move(done)([&]() -> absl::StatusOr<v1::ListLaunchTemplatesResponse> {
    RETURN_IF_ERROR(CheckCall(ctx));
    RETURN_IF_ERROR(CheckParent(request.parent(), account_));
    v1::ListLaunchTemplatesResponse response;
    RETURN_IF_ERROR(ListPage(kLaunchTemplates, request.page_size(), request.page_token(),
                             response.mutable_launch_templates(),
                             response.mutable_next_page_token()));
    return response;
  }());
}

void SandboxProvider::GetLaunchTemplate(const CallContext& ctx,
                                        const v1::GetLaunchTemplateRequest& request,
                                        Callback<v1::LaunchTemplate> done) {
  std::move(done)([&]() -> absl::StatusOr<v1::LaunchTemplate> {
    RETURN_IF_ERROR(CheckCall(ctx));
    ASSIGN_OR_RETURN(std::string id,
                     ParseName(request.name(), account_, kLaunchTemplates, "name"));
    return GetTyped<v1::LaunchTemplate>(kLaunchTemplates, id);
  }());
}

void SandboxProvider::CreateLaunchTemplate(const CallContext& ctx,
                                           const v1::CreateLaunchTemplateRequest& request,
                                           Callback<MutationProgress> done) {
  Mutate(
      ctx,
      [&](Txn& txn) -> absl::StatusOr<PollToken> {
        RETURN_IF_ERROR(CheckParent(request.parent(), account_));
        ASSIGN_OR_RETURN(std::string id,
                         RequiredId(request.launch_template_id(), "launch_template_id"));
        if (!request.has_launch_template()) return InvalidField("launch_template", "required");
        const v1::LaunchTemplate& in = request.launch_template();
        v1::LaunchTemplate templ;
        if (!in.image().empty()) {
          ASSIGN_OR_RETURN(std::string image,
                           CheckCatalogRef(in.image(), kImages, "launch_template.image"));
          templ.set_image(Name(kImages, image));
        }
        if (!in.machine_type().empty()) {
          ASSIGN_OR_RETURN(std::string type, CheckCatalogRef(in.machine_type(), kMachineTypes,
                                                             "launch_template.machine_type"));
          templ.set_machine_type(Name(kMachineTypes, type));
        }
        templ.set_key_name(in.key_name());
        bool every_location_has_image = in.locations_size() > 0;
        for (int i = 0; i < in.locations_size(); ++i) {
          const v1::LocationLaunchSpec& spec_in = in.locations(i);
          std::string field = absl::StrCat("launch_template.locations[", i, "]");
          if (spec_in.location().empty()) {
            return InvalidField(absl::StrCat(field, ".location"), "required");
          }
          v1::LocationLaunchSpec* spec = templ.add_locations();
          ASSIGN_OR_RETURN(std::string location, CheckCatalogRef(spec_in.location(), kLocations,
                                                                 absl::StrCat(field, ".location")));
          spec->set_location(Name(kLocations, location));
          if (!spec_in.image().empty()) {
            ASSIGN_OR_RETURN(std::string image, CheckCatalogRef(spec_in.image(), kImages,
                                                                absl::StrCat(field, ".image")));
            spec->set_image(Name(kImages, image));
          } else {
            every_location_has_image = false;
          }
          if (!spec_in.machine_type().empty()) {
            ASSIGN_OR_RETURN(std::string type,
                             CheckCatalogRef(spec_in.machine_type(), kMachineTypes,
                                             absl::StrCat(field, ".machine_type")));
            spec->set_machine_type(Name(kMachineTypes, type));
          }
        }
        if (templ.image().empty() && !every_location_has_image) {
          return InvalidField("launch_template.image",
                              "required unless every location names its own image");
        }
        ASSIGN_OR_RETURN(std::optional<Record> existing, txn.Load(kLaunchTemplates, id));
        if (existing.has_value()) {
          return AlreadyExists(kLaunchTemplates, Name(kLaunchTemplates, id));
        }
        templ.set_name(Name(kLaunchTemplates, id));
        SetTime(txn.now(), templ.mutable_create_time());
        Record record;
        SaveVersion(templ, record, txn.now());
        RETURN_IF_ERROR(txn.Put(kLaunchTemplates, id, record));
        return CurrentToken(kLaunchTemplates, id);
      },
      std::move(done));
}

void SandboxProvider::DeleteLaunchTemplate(const CallContext& ctx,
                                           const v1::DeleteLaunchTemplateRequest& request,
                                           Callback<MutationProgress> done) {
  Mutate(
      ctx,
      [&](Txn& txn) -> absl::StatusOr<PollToken> {
        ASSIGN_OR_RETURN(std::string id,
                         ParseName(request.name(), account_, kLaunchTemplates, "name"));
        ASSIGN_OR_RETURN(std::optional<Record> record, txn.Load(kLaunchTemplates, id));
        if (!record.has_value()) {
          if (request.allow_missing()) return GoneToken(kLaunchTemplates, id);
          return NotFound(kLaunchTemplates, request.name());
        }
        const std::string name = Name(kLaunchTemplates, id);
        ASSIGN_OR_RETURN(auto groups, txn.LoadAll(kScalingGroups));
        for (const auto& [group_id, group_record] : groups) {
          ASSIGN_OR_RETURN(v1::ScalingGroup group, Decode<v1::ScalingGroup>(group_record));
          if (group.launch_template() == name) {
            return WrongState(name, absl::StrCat("is used by ", group.name()));
          }
        }
        RETURN_IF_ERROR(txn.Delete(kLaunchTemplates, id));
        return GoneToken(kLaunchTemplates, id);
      },
      std::move(done));
}

void SandboxProvider::ListScalingGroups(const CallContext& ctx,
                                        const v1::ListScalingGroupsRequest& request,
                                        Callback<v1::ListScalingGroupsResponse> done) {
  std::move(done)([&]() -> absl::StatusOr<v1::ListScalingGroupsResponse> {
    RETURN_IF_ERROR(CheckCall(ctx));
    RETURN_IF_ERROR(CheckParent(request.parent(), account_));
    v1::ListScalingGroupsResponse response;
    RETURN_IF_ERROR(ListPage(kScalingGroups, request.page_size(), request.page_token(),
                             response.mutable_scaling_groups(),
                             response.mutable_next_page_token()));
    return response;
  }());
}

void SandboxProvider::GetScalingGroup(const CallContext& ctx,
                                      const v1::GetScalingGroupRequest& request,
                                      Callback<v1::ScalingGroup> done) {
  std::move(done)([&]() -> absl::StatusOr<v1::ScalingGroup> {
    RETURN_IF_ERROR(CheckCall(ctx));
    ASSIGN_OR_RETURN(std::string id, ParseName(request.name(), account_, kScalingGroups, "name"));
    return GetTyped<v1::ScalingGroup>(kScalingGroups, id);
  }());
}

void SandboxProvider::CreateScalingGroup(const CallContext& ctx,
                                         const v1::CreateScalingGroupRequest& request,
                                         Callback<MutationProgress> done) {
  Mutate(
      ctx,
      [&](Txn& txn) -> absl::StatusOr<PollToken> {
        RETURN_IF_ERROR(CheckParent(request.parent(), account_));
        ASSIGN_OR_RETURN(std::string id,
                         RequiredId(request.scaling_group_id(), "scaling_group_id"));
        if (!request.has_scaling_group()) return InvalidField("scaling_group", "required");
        const v1::ScalingGroup& in = request.scaling_group();
        if (in.min_size() < 0) {
          return InvalidField("scaling_group.min_size", "must not be negative");
        }
        if (in.max_size() < 0) {
          return InvalidField("scaling_group.max_size", "must not be negative");
        }
        if (in.max_size() > 0 && in.min_size() > in.max_size()) {
          return InvalidField("scaling_group.min_size", "must not exceed max_size");
        }
        RETURN_IF_ERROR(
            CheckSize(in.target_size(), in.min_size(), in.max_size(), "scaling_group.target_size"));
        if (in.launch_template().empty()) {
          return InvalidField("scaling_group.launch_template", "required");
        }
        ASSIGN_OR_RETURN(std::string template_id,
                         CheckStoredRef(txn, in.launch_template(), kLaunchTemplates,
                                        "scaling_group.launch_template"));
        v1::ScalingGroup group;
        for (int i = 0; i < in.locations_size(); ++i) {
          ASSIGN_OR_RETURN(std::string zone,
                           ResolveZone(in.locations(i),
                                       absl::StrCat("scaling_group.locations[", i, "]")));
          group.add_locations(Name(kLocations, zone));
        }
        if (group.locations().empty()) {
          // The template's locations, else the default zone.
          ASSIGN_OR_RETURN(Loaded<v1::LaunchTemplate> templ,
                           LoadExisting<v1::LaunchTemplate>(txn, kLaunchTemplates, template_id));
          for (const v1::LocationLaunchSpec& spec : templ.resource.locations()) {
            ASSIGN_OR_RETURN(std::string zone, ResolveZone(spec.location(), "scaling_group"));
            group.add_locations(Name(kLocations, zone));
          }
          if (group.locations().empty()) group.add_locations(Name(kLocations, kDefaultZone));
        }
        ASSIGN_OR_RETURN(std::optional<Record> existing, txn.Load(kScalingGroups, id));
        if (existing.has_value()) return AlreadyExists(kScalingGroups, Name(kScalingGroups, id));
        group.set_name(Name(kScalingGroups, id));
        group.set_launch_template(Name(kLaunchTemplates, template_id));
        group.set_target_size(in.target_size());
        group.set_min_size(in.min_size());
        group.set_max_size(in.max_size());
        SetTime(txn.now(), group.mutable_create_time());
        AddInstances(group, in.target_size());
        Record record;
        if (in.target_size() == 0) {
          group.set_state(v1::ScalingGroup::STABLE);
          SaveVersion(group, record, txn.now());
        } else {
          group.set_state(v1::ScalingGroup::CREATING);
          SaveVersion(group, record, txn.now());
          SetTransition(record, txn.now(), options_.transition, v1::ScalingGroup::STABLE);
        }
        RETURN_IF_ERROR(txn.Put(kScalingGroups, id, record));
        return SizeToken(id, in.target_size());
      },
      std::move(done));
}

void SandboxProvider::ResizeScalingGroup(const CallContext& ctx,
                                         const v1::ResizeScalingGroupRequest& request,
                                         Callback<MutationProgress> done) {
  Mutate(
      ctx,
      [&](Txn& txn) -> absl::StatusOr<PollToken> {
        ASSIGN_OR_RETURN(std::string id,
                         ParseName(request.name(), account_, kScalingGroups, "name"));
        if (request.target_size() < 0) return InvalidField("target_size", "must not be negative");
        ASSIGN_OR_RETURN(Loaded<v1::ScalingGroup> loaded,
                         LoadExisting<v1::ScalingGroup>(txn, kScalingGroups, id));
        v1::ScalingGroup& group = loaded.resource;
        if (group.state() == v1::ScalingGroup::DELETING) {
          return WrongState(group.name(), "cannot resize a group that is DELETING");
        }
        const int target = request.target_size();
        // As EC2 Auto Scaling: the desired capacity stays within min..max.
        RETURN_IF_ERROR(CheckSize(target, group.min_size(), group.max_size(), "target_size"));
        int live = LiveCount(group);
        if (target == group.target_size() && live == target) return SizeToken(id, target);
        group.set_target_size(target);
        if (live < target) AddInstances(group, target - live);
        // Scale in from the newest instance, like the default termination
        // policy's tie-break.
        for (int i = group.instances_size() - 1; i >= 0 && live > target; --i) {
          v1::ScalingGroupInstance* instance = group.mutable_instances(i);
          if (instance->lifecycle_state() == kTerminating) continue;
          instance->set_lifecycle_state(std::string(kTerminating));
          instance->set_health(v1::ScalingGroupInstance::HEALTH_UNSPECIFIED);
          --live;
        }
        group.set_state(v1::ScalingGroup::RESIZING);
        SaveVersion(group, loaded.record, txn.now());
        SetTransition(loaded.record, txn.now(), options_.transition, v1::ScalingGroup::STABLE);
        RETURN_IF_ERROR(txn.Put(kScalingGroups, id, loaded.record));
        return SizeToken(id, target);
      },
      std::move(done));
}

void SandboxProvider::DeleteScalingGroup(const CallContext& ctx,
                                         const v1::DeleteScalingGroupRequest& request,
                                         Callback<MutationProgress> done) {
  Mutate(
      ctx,
      [&](Txn& txn) -> absl::StatusOr<PollToken> {
        ASSIGN_OR_RETURN(std::string id,
                         ParseName(request.name(), account_, kScalingGroups, "name"));
        const PollToken token = GoneToken(kScalingGroups, id);
        ASSIGN_OR_RETURN(std::optional<Loaded<v1::ScalingGroup>> loaded,
                         LoadIfExists<v1::ScalingGroup>(txn, kScalingGroups, id));
        if (!loaded.has_value()) {
          if (request.allow_missing()) return token;
          return NotFound(kScalingGroups, request.name());
        }
        v1::ScalingGroup& group = loaded->resource;
        if (group.state() == v1::ScalingGroup::DELETING) return token;
        for (v1::ScalingGroupInstance& instance : *group.mutable_instances()) {
          instance.set_lifecycle_state(std::string(kTerminating));
          instance.set_health(v1::ScalingGroupInstance::HEALTH_UNSPECIFIED);
        }
        group.set_state(v1::ScalingGroup::DELETING);
        SaveVersion(group, loaded->record, txn.now());
        SetTransition(loaded->record, txn.now(), options_.transition, v1::ScalingGroup::DELETING,
                      /*remove=*/true);
        RETURN_IF_ERROR(txn.Put(kScalingGroups, id, loaded->record));
        return token;
      },
      std::move(done));
}

}  // namespace cloudplane::adapters::sandbox
