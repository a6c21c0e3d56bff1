// VolumesService: DCM volumes (infrastructure/Volume); every change is a job.
#include <cmath>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "adapters/common/kit/lists.h"
#include "adapters/common/kit/progress.h"
#include "adapters/enstratus/enstratus_jobs.h"
#include "adapters/enstratus/enstratus_provider.h"
#include "adapters/enstratus/enstratus_send.h"
#include "base/errors.h"
#include "base/reasons.h"
#include "google/protobuf/empty.pb.h"

namespace cloudplane::adapters::enstratus {
namespace {

constexpr int64_t kGiB = int64_t{1} << 30;

// Everything DCM would refuse in addVolume for a fixed reason (no I/O).
absl::Status CheckAddVolume(const Account& a, const v1::CreateVolumeRequest& request,
                            VolumeSpec& spec) {
  const v1::Volume& in = request.volume();
  absl::Status status;
  const std::string& alias = request.volume_id();
  if (!alias.empty() && !IsValidAlias(alias)) {
    AddFieldViolation(status, "volume_id",
                      "must be 1-63 characters of [a-z0-9-] starting with a letter");
  }
  // addVolume takes whole gigabytes (sizeInGb, §7); DCM's sizes are GiB
  // (`"sizeString":"8GB"` for 8 << 30 in the fixtures). A size that is not
  // a whole number of them is refused rather than silently rounded.
  if (in.size_bytes() <= 0 || in.size_bytes() % kGiB != 0) {
    AddFieldViolation(status, "volume.size_bytes",
                      "must be a positive whole number of GiB (enStratus sizes volumes in GB)");
  } else {
    spec.size_gb = in.size_bytes() / kGiB;
  }
  absl::StatusOr<std::string> seg =
      in.location().empty() ? absl::StatusOr<std::string>(absl::NotFoundError(""))
                            : SegmentOf("volume.location", a.id, "locations", in.location());
  std::optional<LocationRef> ref = seg.ok() ? ParseLocationSegment(*seg) : std::nullopt;
  if (!ref.has_value() || ref->kind != LocationRef::kDataCenter) {
    AddFieldViolation(status, "volume.location",
                      "is required: a data center, accounts/{account}/locations/dc-{id}");
  } else {
    spec.data_center_id = ref->id;
  }
  if (in.media() == v1::Volume::CDROM) {
    AddFieldViolation(status, "volume.media", "enStratus volumes are disks");
  }
  for (const auto& [key, value] : in.labels()) {
    if (key != "label") {
      AddFieldViolation(status, absl::StrCat("volume.labels.", key),
                        "enStratus keeps one label per volume: use the key \"label\"");
    }
  }
  int64_t budget = a.budget;
  for (const auto& [key, value] : in.provider_options().fields()) {
    if (key == "description" && value.has_string_value()) {
      spec.description = value.string_value();
    } else if (key == "budget") {
      // A billingCodeId, as a number or a numeric string (DCM takes both, §7).
      std::optional<int64_t> id;
      if (value.has_string_value()) {
        id = ParseDcmId(value.string_value());
      } else if (value.has_number_value() && value.number_value() >= 1 &&
                 value.number_value() < 9.0e15 &&
                 value.number_value() == std::floor(value.number_value())) {
        id = static_cast<int64_t>(value.number_value());
      }
      if (!id.has_value() || *id <= 0) {
        AddFieldViolation(status, "volume.provider_options.budget",
                          "must be an enStratus billingCodeId");
      } else {
        budget = *id;
      }
    } else {
      AddFieldViolation(status, absl::StrCat("volume.provider_options.", key),
                        "unknown: the enstratus adapter reads only \"description\" (a string) "
                        "and \"budget\" (a billingCodeId)");
    }
  }
  if (!status.ok()) return status;
  if (budget <= 0) {
    return WithErrorInfo(
        absl::FailedPreconditionError(
            "enStratus charges volumes to a budget code: set the account option budget or "
            "volume.provider_options.budget"),
        reasons::kAccountOptionMissing, {{"option", "budget"}});
  }
  spec.budget = budget;
  spec.name = !in.display_name().empty() ? in.display_name()
              : !alias.empty()           ? alias
                                         : "cloudplane";
  if (spec.description.empty()) spec.description = spec.name;
  if (auto it = in.labels().find("label"); it != in.labels().end()) spec.label = it->second;
  return absl::OkStatus();
}

// What an attach or detach finds in the volume it read first: done already
// (a progress), refused (FAILED_PRECONDITION), or nullopt to go ahead.
absl::StatusOr<std::optional<MutationProgress>> CheckVolumeChange(
    const Account& a, const http::HttpResponse& r, const Aliases& aliases, bool attach,
    int64_t server_id, const std::string& volume_name, const std::string& instance_name) {
  absl::StatusOr<VolumeInfo> info = ParseFirstVolume(r.body);
  if (!info.ok()) return info.status();
  auto wrong_state = [&](absl::string_view message) {
    return WithErrorInfo(
        absl::FailedPreconditionError(absl::StrCat(volume_name, ": ", message)),
        reasons::kWrongState, {{"resource", volume_name}});
  };
  if (attach && info->server_id == server_id) {
    absl::StatusOr<std::vector<v1::Volume>> volumes = ParseVolumes(r.body, a.id, aliases);
    if (!volumes.ok()) return volumes.status();
    return kit::Finished(volumes->front());
  }
  if (attach && info->server_id.has_value()) {
    auto it = aliases.instances.find(*info->server_id);
    return wrong_state(absl::StrCat(
        "is attached to accounts/", a.id, "/instances/",
        it == aliases.instances.end() ? absl::StrCat(*info->server_id) : it->second,
        "; detach it first"));
  }
  if (!attach && info->server_id != server_id) {
    return wrong_state(absl::StrCat("is not attached to ", instance_name));
  }
  return std::nullopt;
}

}  // namespace

void EnstratusProvider::ListVolumes(const CallContext& ctx, const v1::ListVolumesRequest& request,
                                    Callback<v1::ListVolumesResponse> done) {
  if (absl::Status s = kit::CheckPaging(request.page_size(), request.page_token()); !s.ok()) {
    return std::move(done)(s);
  }
  absl::StatusOr<Aliases> aliases = a_->aliases->All();
  if (!aliases.ok()) return std::move(done)(aliases.status());
  GetAll<v1::Volume>(
      *a_, ctx.deadline, "infrastructure/Volume", "", "GET volumes",
      [id = a_->id, aliases = *std::move(aliases)](absl::string_view body) {
        return ParseVolumes(body, id, aliases);
      },
      AnswerPage<v1::ListVolumesResponse, v1::Volume>(request.page_size(), request.page_token(),
                                                      std::move(done)));
}

void EnstratusProvider::GetVolume(const CallContext& ctx, const v1::GetVolumeRequest& request,
                                  Callback<v1::Volume> done) {
  absl::StatusOr<int64_t> id = Resolve(AliasKind::kVolume, "name", request.name());
  if (!id.ok()) return std::move(done)(id.status());
  absl::StatusOr<Aliases> aliases = a_->aliases->All();
  if (!aliases.ok()) return std::move(done)(aliases.status());
  GetOne<v1::Volume>(
      *a_, ctx.deadline, absl::StrCat("infrastructure/Volume/", *id),
      absl::StrCat("GET volume ", *id), request.name(),
      [account_id = a_->id, aliases = *std::move(aliases)](absl::string_view body) {
        return ParseVolumes(body, account_id, aliases);
      },
      std::move(done));
}

void EnstratusProvider::CreateVolume(const CallContext& ctx,
                                     const v1::CreateVolumeRequest& request,
                                     Callback<MutationProgress> done) {
  VolumeSpec spec;
  if (absl::Status s = CheckAddVolume(*a_, request, spec); !s.ok()) return std::move(done)(s);
  if (ctx.validate_only) return std::move(done)(kit::Finished(v1::Volume()));
  // The tag lets a re-drive find the volume by its description.
  spec.description = TaggedDescription(spec.description, ctx.operation);
  // mixcoatl reads a job from addVolume's answer (202, §4).
  StartCreate(CallOf(a_, ctx), NewJobToken(JobToken::VOLUME_CREATE, 0, request.volume_id()),
              "volume", {"infrastructure/Volume", "volumes", "volumeId", spec.name},
              [body = AddVolumeBody(spec)](Callback<JobRequest> ready) mutable {
                std::move(ready)(JobRequest{"POST", "infrastructure/Volume", "", std::move(body),
                                            "POST addVolume"});
              },
              std::move(done));
}

void EnstratusProvider::DeleteVolume(const CallContext& ctx,
                                     const v1::DeleteVolumeRequest& request,
                                     Callback<MutationProgress> done) {
  DeleteResource(ctx, AliasKind::kVolume, JobToken::VOLUME_DELETE, "infrastructure/Volume/",
                 "volume", request.name(), request.allow_missing(), std::move(done));
}

void EnstratusProvider::AttachVolume(const CallContext& ctx,
                                     const v1::AttachVolumeRequest& request,
                                     Callback<MutationProgress> done) {
  absl::Status status;
  if (!request.channel().empty()) {
    AddFieldViolation(status, "channel", "enStratus attaches by device id only");
  }
  if (request.boot_order() != 0) {
    AddFieldViolation(status, "boot_order", "enStratus attaches data volumes only");
  }
  if (!status.ok()) return std::move(done)(status);
  VolumeChange(ctx, request.name(), request.instance(), /*attach=*/true, request.device(),
               std::move(done));
}

void EnstratusProvider::DetachVolume(const CallContext& ctx,
                                     const v1::DetachVolumeRequest& request,
                                     Callback<MutationProgress> done) {
  VolumeChange(ctx, request.name(), request.instance(), /*attach=*/false, "", std::move(done));
}

// Attach (PUT attach) or detach (PUT detach) after reading the volume:
// DCM's detach names no server, so the volume must be attached to
// `instance` now (else FAILED_PRECONDITION); an attach to the server that
// already holds it is done at once (a re-driven attach finds its work), to
// another server FAILED_PRECONDITION. Then the job, then the volume
// reaches ATTACHED or AVAILABLE; its Volume is the result.
void EnstratusProvider::VolumeChange(const CallContext& ctx, const std::string& volume_name,
                                     const std::string& instance_name, bool attach,
                                     const std::string& device, Callback<MutationProgress> done) {
  absl::StatusOr<std::string> seg = SegmentOf("name", a_->id, "volumes", volume_name);
  if (!seg.ok()) return std::move(done)(seg.status());
  absl::StatusOr<int64_t> volume_id =
      a_->aliases->Resolve(AliasKind::kVolume, "volume", volume_name, *seg);
  if (!volume_id.ok()) return std::move(done)(volume_id.status());
  absl::StatusOr<int64_t> server_id = Resolve(AliasKind::kInstance, "instance", instance_name);
  if (!server_id.ok()) return std::move(done)(server_id.status());
  if (ctx.validate_only) return std::move(done)(kit::Finished(v1::Volume()));
  absl::StatusOr<Aliases> aliases = a_->aliases->All();
  if (!aliases.ok()) return std::move(done)(aliases.status());
  const std::string alias = IsValidAlias(*seg) ? *seg : "";
  if (!alias.empty()) aliases->volumes[*volume_id] = alias;
  const JobCall call = CallOf(a_, ctx);
  const std::string context = absl::StrCat("GET volume ", *volume_id);
  Send(*a_, ctx.deadline, "GET", absl::StrCat("infrastructure/Volume/", *volume_id), "", "",
       context,
       [call, context, attach, device, alias, volume_name, instance_name,
        aliases = *std::move(aliases), volume_id = *volume_id, server_id = *server_id,
        done = std::move(done)](absl::StatusOr<http::HttpResponse> r) mutable {
         if (absl::Status s = AnswerStatus(r, context); !s.ok()) return std::move(done)(s);
         absl::StatusOr<std::optional<MutationProgress>> checked = CheckVolumeChange(
             *call.account, *r, aliases, attach, server_id, volume_name, instance_name);
         if (!checked.ok()) return std::move(done)(checked.status());
         if (checked->has_value()) return std::move(done)(**std::move(checked));
         const std::string put_context =
             absl::StrCat("PUT ", attach ? "attach" : "detach", " volume ", volume_id);
         const JobToken token = NewJobToken(
             attach ? JobToken::VOLUME_ATTACH : JobToken::VOLUME_DETACH, volume_id, alias);
         StartJob(call,
                  {"PUT", absl::StrCat("infrastructure/Volume/", volume_id), "",
                   attach ? AttachVolumeBody(server_id, device) : DetachVolumeBody(),
                   put_context},
                  token, ThenConverge(call, put_context, token), std::move(done));
       });
}

}  // namespace cloudplane::adapters::enstratus
