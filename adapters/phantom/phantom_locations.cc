// ComputeService locations on Phantom: the sites of its REST API.
#include <string>
#include <utility>
#include <vector>

#include "adapters/common/kit/lists.h"
#include "adapters/common/kit/progress.h"
#include "adapters/phantom/phantom_provider.h"

namespace cloudplane::adapters::phantom {

void PhantomProvider::ListLocations(const CallContext& ctx, const v1::ListLocationsRequest& request,
                                    Callback<v1::ListLocationsResponse> done) {
  if (absl::Status s = kit::CheckPaging(request.page_size(), request.page_token()); !s.ok()) {
    return std::move(done)(s);
  }
  FetchSites(account_, ctx.deadline,
             [page_size = request.page_size(), page_token = request.page_token(),
              done = std::move(done)](absl::StatusOr<std::vector<v1::Location>> sites) mutable {
               if (!sites.ok()) return std::move(done)(sites.status());
               std::move(done)(kit::AnswerPage<v1::ListLocationsResponse>(*std::move(sites),
                                                                         page_size, page_token));
             });
}

void PhantomProvider::GetLocation(const CallContext& ctx, const v1::GetLocationRequest& request,
                                  Callback<v1::Location> done) {
  absl::StatusOr<std::string> id = IdFromName("name", account_->id, "locations", request.name());
  if (!id.ok()) return std::move(done)(id.status());
  FetchSites(account_, ctx.deadline,
             [name = request.name(),
              done = std::move(done)](absl::StatusOr<std::vector<v1::Location>> sites) mutable {
               if (!sites.ok()) return std::move(done)(sites.status());
               for (v1::Location& l : *sites) {
                 if (l.name() == name) return std::move(done)(std::move(l));
               }
               std::move(done)(kit::NotFound("site", name));
             });
}

}  // namespace cloudplane::adapters::phantom
