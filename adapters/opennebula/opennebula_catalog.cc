// What instances are made from and run on: hosts, images (VM templates) and
// locations (zones, clusters, marketplaces). Read-only.
#include <iterator>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "adapters/common/kit/lists.h"
#include "adapters/common/kit/progress.h"
#include "adapters/opennebula/opennebula_internal.h"
#include "base/errors.h"

namespace cloudplane::adapters::opennebula {
namespace {

using xmlrpc::Value;

// Every element `element` of a pool document as T.
template <typename T, typename Translate>
absl::StatusOr<std::vector<T>> Translated(const DocPtr& doc, absl::string_view element,
                                          Translate translate) {
  std::vector<T> items;
  for (const xml::Node* node : doc->Root().ChildrenNamed(element)) {
    absl::StatusOr<T> item = translate(*node);
    if (!item.ok()) return item.status();
    items.push_back(*std::move(item));
  }
  return items;
}

// One pool read for ListLocations: method, root, element, translation.
struct LocationPool {
  const char* method;
  const char* root;
  const char* element;
  absl::StatusOr<v1::Location> (*translate)(const xml::Node&, absl::string_view);
};
constexpr LocationPool kLocationPools[] = {
    {"one.zonepool.info", "ZONE_POOL", "ZONE", &LocationFromZone},
    {"one.clusterpool.info", "CLUSTER_POOL", "CLUSTER", &LocationFromCluster},
    {"one.marketpool.info", "MARKETPLACE_POOL", "MARKETPLACE", &LocationFromMarketplace},
};

// Reads kLocationPools[i...] one after another into `all`.
void FetchLocationsFrom(const AccountPtr& a, absl::Time deadline, size_t i,
                        std::shared_ptr<std::vector<v1::Location>> all,
                        Done<std::vector<v1::Location>> done) {
  if (i == std::size(kLocationPools)) return done(std::move(*all));
  const LocationPool& pool = kLocationPools[i];
  CallDoc(a, deadline, pool.method, {}, pool.root,
          [a, deadline, i, all, done = std::move(done)](absl::StatusOr<DocPtr> doc) mutable {
            if (!doc.ok()) return done(doc.status());
            const LocationPool& pool = kLocationPools[i];
            auto items = Translated<v1::Location>(
                *doc, pool.element, [&](const xml::Node& n) { return pool.translate(n, a->id); });
            if (!items.ok()) return done(items.status());
            for (v1::Location& l : *items) all->push_back(std::move(l));
            FetchLocationsFrom(a, deadline, i + 1, std::move(all), std::move(done));
          });
}

void FetchLocations(const AccountPtr& a, absl::Time deadline,
                    Done<std::vector<v1::Location>> done) {
  FetchLocationsFrom(a, deadline, 0, std::make_shared<std::vector<v1::Location>>(),
                     std::move(done));
}

// NOT_FOUND naming `resource` for oned's NO_EXISTS; other errors as they are.
absl::Status NotFoundAs(const absl::Status& s, absl::string_view what,
                        absl::string_view resource) {
  return s.code() == absl::StatusCode::kNotFound ? kit::NotFound(what, resource) : s;
}

}  // namespace

void OpenNebulaProvider::ListHosts(const CallContext& ctx, const v1::ListHostsRequest& req,
                                   Callback<v1::ListHostsResponse> done) {
  if (absl::Status s = kit::CheckPaging(req.page_size(), req.page_token()); !s.ok()) {
    return std::move(done)(s);
  }
  CallDoc(a_, ctx.deadline, "one.hostpool.info", {}, "HOST_POOL",
          [a = a_, size = req.page_size(), token = req.page_token(),
           done = std::move(done)](absl::StatusOr<DocPtr> doc) mutable {
            if (!doc.ok()) return std::move(done)(doc.status());
            auto items = Translated<v1::Host>(
                *doc, "HOST", [&a](const xml::Node& h) { return HostFromXml(h, a->id); });
            if (!items.ok()) return std::move(done)(items.status());
            std::move(done)(kit::AnswerPage<v1::ListHostsResponse>(*std::move(items), size, token));
          });
}

void OpenNebulaProvider::GetHost(const CallContext& ctx, const v1::GetHostRequest& req,
                                 Callback<v1::Host> done) {
  auto id = ParseResourceName("name", a_->id, "hosts", req.name());
  if (!id.ok() || !id->oid.has_value()) {
    return std::move(done)(InvalidField("name", "must be accounts/<a>/hosts/<host id>"));
  }
  CallDoc(a_, ctx.deadline, "one.host.info", {Value::Int(*id->oid)}, "HOST",
          [a = a_, name = req.name(), done = std::move(done)](absl::StatusOr<DocPtr> d) mutable {
            if (!d.ok()) return std::move(done)(NotFoundAs(d.status(), "host", name));
            std::move(done)(HostFromXml((*d)->Root(), a->id));
          });
}

void OpenNebulaProvider::ListImages(const CallContext& ctx, const v1::ListImagesRequest& req,
                                    Callback<v1::ListImagesResponse> done) {
  if (absl::Status s = kit::CheckPaging(req.page_size(), req.page_token()); !s.ok()) {
    return std::move(done)(s);
  }
  CallDoc(a_, ctx.deadline, "one.templatepool.info",
          {Value::Int(-2), Value::Int(-1), Value::Int(-1)}, "VMTEMPLATE_POOL",
          [a = a_, size = req.page_size(), token = req.page_token(),
           done = std::move(done)](absl::StatusOr<DocPtr> doc) mutable {
            if (!doc.ok()) return std::move(done)(doc.status());
            auto items = Translated<v1::Image>(*doc, "VMTEMPLATE", [&a](const xml::Node& t) {
              return ImageFromTemplate(t, a->id);
            });
            if (!items.ok()) return std::move(done)(items.status());
            std::move(done)(
                kit::AnswerPage<v1::ListImagesResponse>(*std::move(items), size, token));
          });
}

void OpenNebulaProvider::GetImage(const CallContext& ctx, const v1::GetImageRequest& req,
                                  Callback<v1::Image> done) {
  auto id = ParseResourceName("name", a_->id, "images", req.name());
  if (!id.ok() || !id->oid.has_value()) {
    return std::move(done)(InvalidField("name", "must be accounts/<a>/images/<template id>"));
  }
  CallDoc(a_, ctx.deadline, "one.template.info", {Value::Int(*id->oid)}, "VMTEMPLATE",
          [a = a_, name = req.name(), done = std::move(done)](absl::StatusOr<DocPtr> d) mutable {
            if (!d.ok()) return std::move(done)(NotFoundAs(d.status(), "image", name));
            std::move(done)(ImageFromTemplate((*d)->Root(), a->id));
          });
}

void OpenNebulaProvider::ListLocations(const CallContext& ctx,
                                       const v1::ListLocationsRequest& req,
                                       Callback<v1::ListLocationsResponse> done) {
  if (absl::Status s = kit::CheckPaging(req.page_size(), req.page_token()); !s.ok()) {
    return std::move(done)(s);
  }
  FetchLocations(a_, ctx.deadline,
                 [size = req.page_size(), token = req.page_token(),
                  done = std::move(done)](absl::StatusOr<std::vector<v1::Location>> all) mutable {
                   if (!all.ok()) return std::move(done)(all.status());
                   std::move(done)(
                       kit::AnswerPage<v1::ListLocationsResponse>(*std::move(all), size, token));
                 });
}

void OpenNebulaProvider::GetLocation(const CallContext& ctx, const v1::GetLocationRequest& req,
                                     Callback<v1::Location> done) {
  FetchLocations(a_, ctx.deadline,
                 [name = req.name(),
                  done = std::move(done)](absl::StatusOr<std::vector<v1::Location>> all) mutable {
                   if (!all.ok()) return std::move(done)(all.status());
                   for (auto& l : *all) {
                     if (l.name() == name) return std::move(done)(std::move(l));
                   }
                   std::move(done)(kit::NotFound("location", name));
                 });
}

}  // namespace cloudplane::adapters::opennebula
