// Read-only catalog: machine images, machine types (server products),
// locations (regions and data centers) and billing codes (budgets).
#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "adapters/common/kit/lists.h"
#include "adapters/common/kit/progress.h"
#include "adapters/enstratus/enstratus_provider.h"
#include "adapters/enstratus/enstratus_send.h"

namespace cloudplane::adapters::enstratus {
namespace {

// Lists that DCM can only give per region (data centers, products; regionId
// is required, §6): the regions first, then each region's list, one after
// another.
template <typename T>
struct PerRegion {
  AccountPtr account;
  absl::Time deadline;
  std::string rel_path;  // e.g. geography/DataCenter
  std::string context;
  Parser<T> parse;
  std::vector<int64_t> regions;
  size_t next = 0;
  std::vector<T> items;
  Callback<std::vector<T>> done;
};

template <typename T>
void NextRegion(std::shared_ptr<PerRegion<T>> st) {
  if (st->next == st->regions.size()) return std::move(st->done)(std::move(st->items));
  const int64_t region = st->regions[st->next++];
  GetAll<T>(*st->account, st->deadline, st->rel_path, absl::StrCat("?regionId=", region),
            st->context, st->parse, [st](absl::StatusOr<std::vector<T>> items) mutable {
              if (!items.ok()) return std::move(st->done)(items.status());
              for (T& item : *items) st->items.push_back(std::move(item));
              NextRegion(std::move(st));
            });
}

template <typename T>
void ForEachRegion(const AccountPtr& a, absl::Time deadline, std::string rel_path,
                   std::string context, Parser<T> parse, Callback<std::vector<T>> done) {
  auto st = std::make_shared<PerRegion<T>>();
  st->account = a;
  st->deadline = deadline;
  st->rel_path = std::move(rel_path);
  st->context = std::move(context);
  st->parse = std::move(parse);
  st->done = std::move(done);
  GetAll<v1::Location>(
      *a, deadline, "geography/Region", "", "GET regions",
      [account_id = a->id](absl::string_view body) { return ParseRegions(body, account_id); },
      [st](absl::StatusOr<std::vector<v1::Location>> regions) mutable {
        if (!regions.ok()) return std::move(st->done)(regions.status());
        for (const v1::Location& r : *regions) {
          std::string segment = r.name().substr(r.name().rfind('/') + 1);
          if (auto ref = ParseLocationSegment(segment)) st->regions.push_back(ref->id);
        }
        NextRegion(std::move(st));
      });
}

}  // namespace

void EnstratusProvider::ListImages(const CallContext& ctx, const v1::ListImagesRequest& request,
                                   Callback<v1::ListImagesResponse> done) {
  if (absl::Status s = kit::CheckPaging(request.page_size(), request.page_token()); !s.ok()) {
    return std::move(done)(s);
  }
  GetAll<v1::Image>(
      *a_, ctx.deadline, "infrastructure/MachineImage", "", "GET machine images",
      [id = a_->id](absl::string_view body) { return ParseMachineImages(body, id); },
      AnswerPage<v1::ListImagesResponse, v1::Image>(request.page_size(), request.page_token(),
                                                    std::move(done)));
}

void EnstratusProvider::GetImage(const CallContext& ctx, const v1::GetImageRequest& request,
                                 Callback<v1::Image> done) {
  absl::StatusOr<int64_t> id = NumericId("name", "images", "image", request.name());
  if (!id.ok()) return std::move(done)(id.status());
  GetOne<v1::Image>(
      *a_, ctx.deadline, absl::StrCat("infrastructure/MachineImage/", *id),
      absl::StrCat("GET machine image ", *id), request.name(),
      [account_id = a_->id](absl::string_view body) {
        return ParseMachineImages(body, account_id);
      },
      std::move(done));
}

void EnstratusProvider::ListMachineTypes(const CallContext& ctx,
                                         const v1::ListMachineTypesRequest& request,
                                         Callback<v1::ListMachineTypesResponse> done) {
  if (absl::Status s = kit::CheckPaging(request.page_size(), request.page_token()); !s.ok()) {
    return std::move(done)(s);
  }
  ForEachRegion<v1::MachineType>(
      a_, ctx.deadline, "infrastructure/ServerProduct", "GET server products",
      [id = a_->id](absl::string_view body) { return ParseServerProducts(body, id); },
      AnswerPage<v1::ListMachineTypesResponse, v1::MachineType>(
          request.page_size(), request.page_token(), std::move(done)));
}

void EnstratusProvider::GetMachineType(const CallContext& ctx,
                                       const v1::GetMachineTypeRequest& request,
                                       Callback<v1::MachineType> done) {
  absl::StatusOr<int64_t> id = NumericId("name", "machineTypes", "machine type", request.name());
  if (!id.ok()) return std::move(done)(id.status());
  GetOne<v1::MachineType>(
      *a_, ctx.deadline, absl::StrCat("infrastructure/ServerProduct/", *id),
      absl::StrCat("GET server product ", *id), request.name(),
      [account_id = a_->id](absl::string_view body) {
        return ParseServerProducts(body, account_id);
      },
      std::move(done));
}

void EnstratusProvider::ListLocations(const CallContext& ctx,
                                      const v1::ListLocationsRequest& request,
                                      Callback<v1::ListLocationsResponse> done) {
  if (absl::Status s = kit::CheckPaging(request.page_size(), request.page_token()); !s.ok()) {
    return std::move(done)(s);
  }
  const AccountPtr a = a_;
  const absl::Time deadline = ctx.deadline;
  Callback<std::vector<v1::Location>> answer = AnswerPage<v1::ListLocationsResponse, v1::Location>(
      request.page_size(), request.page_token(), std::move(done));
  // Regions, then every region's data centers.
  GetAll<v1::Location>(
      *a, deadline, "geography/Region", "", "GET regions",
      [id = a->id](absl::string_view body) { return ParseRegions(body, id); },
      [a, deadline, answer = std::move(answer)](
          absl::StatusOr<std::vector<v1::Location>> regions) mutable {
        if (!regions.ok()) return std::move(answer)(regions.status());
        ForEachRegion<v1::Location>(
            a, deadline, "geography/DataCenter", "GET data centers",
            [id = a->id](absl::string_view body) { return ParseDataCenters(body, id); },
            [regions = *std::move(regions), answer = std::move(answer)](
                absl::StatusOr<std::vector<v1::Location>> dcs) mutable {
              if (dcs.ok()) {
                for (v1::Location& r : regions) dcs->push_back(std::move(r));
              }
              std::move(answer)(std::move(dcs));
            });
      });
}

void EnstratusProvider::GetLocation(const CallContext& ctx, const v1::GetLocationRequest& request,
                                    Callback<v1::Location> done) {
  absl::StatusOr<std::string> seg = SegmentOf("name", a_->id, "locations", request.name());
  if (!seg.ok()) return std::move(done)(seg.status());
  std::optional<LocationRef> ref = ParseLocationSegment(*seg);
  if (!ref.has_value()) return std::move(done)(kit::NotFound("location", request.name()));
  const bool region = ref->kind == LocationRef::kRegion;
  GetOne<v1::Location>(
      *a_, ctx.deadline,
      absl::StrCat(region ? "geography/Region/" : "geography/DataCenter/", ref->id),
      absl::StrCat(region ? "GET region " : "GET data center ", ref->id), request.name(),
      [account_id = a_->id, region](absl::string_view body) {
        return region ? ParseRegions(body, account_id) : ParseDataCenters(body, account_id);
      },
      std::move(done));
}

void EnstratusProvider::ListBillingCodes(const CallContext& ctx,
                                         const v1::ListBillingCodesRequest& request,
                                         Callback<v1::ListBillingCodesResponse> done) {
  if (absl::Status s = kit::CheckPaging(request.page_size(), request.page_token()); !s.ok()) {
    return std::move(done)(s);
  }
  GetAll<v1::BillingCode>(
      *a_, ctx.deadline, "admin/BillingCode", "", "GET billing codes",
      [id = a_->id](absl::string_view body) { return ParseBillingCodes(body, id); },
      AnswerPage<v1::ListBillingCodesResponse, v1::BillingCode>(
          request.page_size(), request.page_token(), std::move(done)));
}

void EnstratusProvider::GetBillingCode(const CallContext& ctx,
                                       const v1::GetBillingCodeRequest& request,
                                       Callback<v1::BillingCode> done) {
  absl::StatusOr<int64_t> id = NumericId("name", "billingCodes", "billing code", request.name());
  if (!id.ok()) return std::move(done)(id.status());
  GetOne<v1::BillingCode>(
      *a_, ctx.deadline, absl::StrCat("admin/BillingCode/", *id),
      absl::StrCat("GET billing code ", *id), request.name(),
      [account_id = a_->id](absl::string_view body) {
        return ParseBillingCodes(body, account_id);
      },
      std::move(done));
}

}  // namespace cloudplane::adapters::enstratus
