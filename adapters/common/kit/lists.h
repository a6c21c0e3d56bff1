// List plumbing for adapters whose provider returns whole collections (or
// pages the adapter walks to the end): check the request's paging fields
// before any I/O, fetch every provider page with one state object, and cut
// the API page out of the sorted result.
//
// API pages are keyset pages over the resource name (adapters/common/paging),
// so an item created or deleted between two calls never makes another item
// appear twice or go missing.
#ifndef CLOUDPLANE_ADAPTERS_COMMON_KIT_LISTS_H_
#define CLOUDPLANE_ADAPTERS_COMMON_KIT_LISTS_H_

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "adapters/common/paging/paging.h"
#include "adapters/provider.h"
#include "base/errors.h"
#include "base/reasons.h"
#include "google/protobuf/message.h"

namespace cloudplane::adapters::kit {

// A list that never ends (a provider bug) stops after this many pages.
inline constexpr int kMaxProviderPages = 10000;

// INVALID_ARGUMENT naming `page_size` (negative) or `page_token` (not one of
// ours); checked before anything is sent.
absl::Status CheckPaging(int32_t page_size, absl::string_view page_token);

// One page as the provider answered it; `next` is the cursor of the next
// page, "" on the last one.
template <typename Item>
struct ProviderPage {
  std::vector<Item> items;
  std::string next;
};

// Asks for the page at `cursor` ("" for the first).
template <typename Item>
using FetchPageFn =
    absl::AnyInvocable<void(const std::string& cursor, Callback<ProviderPage<Item>> done)>;

namespace internal {
template <typename Item>
struct FetchAllState {
  FetchPageFn<Item> fetch;
  std::string context;
  Callback<std::vector<Item>> done;
  std::vector<Item> items;
  int pages = 0;
};

template <typename Item>
void FetchFrom(std::shared_ptr<FetchAllState<Item>> st, std::string cursor) {
  FetchAllState<Item>& state = *st;
  state.fetch(cursor, [st = std::move(st), cursor](absl::StatusOr<ProviderPage<Item>> page) mutable {
    if (!page.ok()) return std::move(st->done)(page.status());
    for (Item& item : page->items) st->items.push_back(std::move(item));
    ++st->pages;
    if (page->next.empty()) return std::move(st->done)(std::move(st->items));
    if (page->next == cursor || st->pages >= kMaxProviderPages) {
      return std::move(st->done)(WithErrorInfo(
          absl::InternalError(absl::StrCat(st->context, ": the provider's pages never end")),
          reasons::kProviderMalformedResponse));
    }
    FetchFrom(std::move(st), std::move(page->next));
  });
}
}  // namespace internal

// Fetches every page, one after another (each page's callback asks for the
// next), and answers all items in provider order. The first error ends it.
// A cursor that repeats, or more than kMaxProviderPages pages, is
// PROVIDER_MALFORMED_RESPONSE naming `context`.
template <typename Item>
void FetchAllPages(std::string context, FetchPageFn<Item> fetch, Callback<std::vector<Item>> done) {
  auto st = std::make_shared<internal::FetchAllState<Item>>();
  st->fetch = std::move(fetch);
  st->context = std::move(context);
  st->done = std::move(done);
  internal::FetchFrom(std::move(st), "");
}

// Sorts `items` by name(), drops repeated names (an offset-paged provider may
// show an item twice when the collection shifts between pages) and returns
// the page the request asks for; `next_page_token` gets the next page's token.
template <typename T>
absl::StatusOr<std::vector<T>> PageByName(std::vector<T> items, int32_t page_size,
                                          absl::string_view page_token,
                                          std::string* next_page_token) {
  std::sort(items.begin(), items.end(),
            [](const T& a, const T& b) { return a.name() < b.name(); });
  items.erase(std::unique(items.begin(), items.end(),
                          [](const T& a, const T& b) { return a.name() == b.name(); }),
              items.end());
  return paging::Paginate(
      std::move(items), [](const T& x) -> const std::string& { return x.name(); }, page_size,
      page_token, next_page_token);
}

// Fills `response` (a List*Response) with one page of `items`: the repeated
// field whose element type is T, and `next_page_token`.
void FillPage(google::protobuf::Message& response,
              std::vector<std::unique_ptr<google::protobuf::Message>> items,
              const std::string& next_page_token);

// PageByName, then the response: what a List* method answers.
template <typename Response, typename T>
absl::StatusOr<Response> AnswerPage(std::vector<T> items, int32_t page_size,
                                    absl::string_view page_token) {
  std::string next;
  absl::StatusOr<std::vector<T>> page =
      PageByName(std::move(items), page_size, page_token, &next);
  if (!page.ok()) return page.status();
  std::vector<std::unique_ptr<google::protobuf::Message>> messages;
  messages.reserve(page->size());
  for (T& item : *page) messages.push_back(std::make_unique<T>(std::move(item)));
  Response response;
  FillPage(response, std::move(messages), next);
  return response;
}

}  // namespace cloudplane::adapters::kit

#endif  // CLOUDPLANE_ADAPTERS_COMMON_KIT_LISTS_H_
