// ComputeService images (library drives, libdrives.rst) and locations
// (locations.rst): read only.
#include <string>
#include <utility>
#include <vector>

#include "adapters/cloudsigma/cloudsigma_provider.h"
#include "adapters/common/kit/lists.h"
#include "adapters/common/kit/progress.h"

namespace cloudplane::adapters::cloudsigma {

void CloudSigmaProvider::ListImages(const CallContext& ctx, const v1::ListImagesRequest& request,
                                    Callback<v1::ListImagesResponse> done) {
  if (absl::Status s = kit::CheckPaging(request.page_size(), request.page_token()); !s.ok()) {
    return std::move(done)(s);
  }
  auto account = account_;
  ListAll(account, ctx.deadline, "/libdrives/",
          [account, size = request.page_size(), token = request.page_token(),
           done = std::move(done)](absl::StatusOr<std::vector<WireObject>> objects) mutable {
            if (!objects.ok()) return std::move(done)(objects.status());
            std::vector<v1::Image> images;
            for (const WireObject& o : *objects) {
              auto image = LibdriveToImage(o.json, account->id);
              if (!image.ok()) return std::move(done)(image.status());
              images.push_back(*std::move(image));
            }
            std::move(done)(kit::AnswerPage<v1::ListImagesResponse>(std::move(images), size, token));
          });
}

void CloudSigmaProvider::GetImage(const CallContext& ctx, const v1::GetImageRequest& request,
                                  Callback<v1::Image> done) {
  auto id = IdFromName("name", account_->id, "images", request.name());
  if (!id.ok()) return std::move(done)(id.status());
  if (!IsUuid(*id)) return std::move(done)(kit::NotFound("image", request.name()));
  auto account = account_;
  GetObject(account, ctx.deadline, "libdrives", *id, request.name(), "image",
            [account, done = std::move(done)](absl::StatusOr<WireObject> o) mutable {
              if (!o.ok()) return std::move(done)(o.status());
              std::move(done)(LibdriveToImage(o->json, account->id));
            });
}

void CloudSigmaProvider::ListLocations(const CallContext& ctx,
                                       const v1::ListLocationsRequest& request,
                                       Callback<v1::ListLocationsResponse> done) {
  if (absl::Status s = kit::CheckPaging(request.page_size(), request.page_token()); !s.ok()) {
    return std::move(done)(s);
  }
  FetchLocations(ctx, [size = request.page_size(), token = request.page_token(),
                       done = std::move(done)](
                          absl::StatusOr<std::vector<v1::Location>> all) mutable {
    if (!all.ok()) return std::move(done)(all.status());
    std::move(done)(kit::AnswerPage<v1::ListLocationsResponse>(*std::move(all), size, token));
  });
}

void CloudSigmaProvider::GetLocation(const CallContext& ctx, const v1::GetLocationRequest& request,
                                     Callback<v1::Location> done) {
  auto id = IdFromName("name", account_->id, "locations", request.name());
  if (!id.ok()) return std::move(done)(id.status());
  FetchLocations(ctx, [name = request.name(), done = std::move(done)](
                          absl::StatusOr<std::vector<v1::Location>> all) mutable {
    if (!all.ok()) return std::move(done)(all.status());
    for (auto& l : *all) {
      if (l.name() == name) return std::move(done)(std::move(l));
    }
    std::move(done)(kit::NotFound("location", name));
  });
}

void CloudSigmaProvider::FetchLocations(const CallContext& ctx,
                                        Callback<std::vector<v1::Location>> done) {
  auto account = account_;
  ListAll(account, ctx.deadline, "/locations/",
          [account, done = std::move(done)](
              absl::StatusOr<std::vector<WireObject>> objects) mutable {
            if (!objects.ok()) return std::move(done)(objects.status());
            std::vector<v1::Location> out;
            for (const WireObject& o : *objects) {
              auto l = LocationFromWire(o.json, account->id);
              if (!l.ok()) return std::move(done)(l.status());
              out.push_back(*std::move(l));
            }
            std::move(done)(std::move(out));
          });
}

}  // namespace cloudplane::adapters::cloudsigma
