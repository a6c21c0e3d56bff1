// Page tokens for lists that an adapter holds whole in memory (the sandbox's
// tables, every page of a provider's list fetched at once).
//
// Pages are keyset pages: a token encodes the last key returned, and the next
// page starts after it. Items must be sorted by key. An item added or removed
// between two calls never makes another item appear twice or go missing.
#ifndef CLOUDPLANE_ADAPTERS_COMMON_PAGING_PAGING_H_
#define CLOUDPLANE_ADAPTERS_COMMON_PAGING_PAGING_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace cloudplane::paging {

inline constexpr int kDefaultPageSize = 50;
inline constexpr int kMaxPageSize = 1000;

// The page size to use for a request's `page_size`: 0 → default, above the
// maximum → the maximum, negative → INVALID_ARGUMENT naming `page_size`.
absl::StatusOr<int> EffectivePageSize(int32_t requested);

// The key a `page_token` resumes after; "" for an empty token.
// INVALID_ARGUMENT naming `page_token` when it was not made by MakeToken.
absl::StatusOr<std::string> DecodeToken(absl::string_view page_token);

// The token that resumes after `last_key`.
std::string MakeToken(absl::string_view last_key);

// One page of `items` (sorted ascending by `key(item)`), and the token of the
// next page in `next_page_token` ("" when this is the last page).
template <typename T, typename KeyFn>
absl::StatusOr<std::vector<T>> Paginate(std::vector<T> items, KeyFn key,
                                        int32_t page_size, absl::string_view page_token,
                                        std::string* next_page_token) {
  absl::StatusOr<int> size = EffectivePageSize(page_size);
  if (!size.ok()) return size.status();
  absl::StatusOr<std::string> after = DecodeToken(page_token);
  if (!after.ok()) return after.status();
  std::vector<T> page;
  next_page_token->clear();
  for (T& item : items) {
    if (!after->empty() && !(std::string(key(item)) > *after)) continue;
    if (static_cast<int>(page.size()) == *size) {
      *next_page_token = MakeToken(key(page.back()));
      break;
    }
    page.push_back(std::move(item));
  }
  return page;
}

}  // namespace cloudplane::paging

#endif  // CLOUDPLANE_ADAPTERS_COMMON_PAGING_PAGING_H_
