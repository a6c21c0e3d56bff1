#include "adapters/common/paging/paging.h"

#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace cloudplane::paging {
namespace {

std::string Key(const std::string& s) { return s; }

TEST(Paging, EveryItemExactlyOnceAcrossPages) {
  std::vector<std::string> items;
  for (int i = 0; i < 23; ++i) items.push_back(absl::StrCat("item-", 100 + i));
  std::string token, next;
  std::vector<std::string> seen;
  int pages = 0;
  do {
    auto page = Paginate(items, Key, 5, token, &next);
    ASSERT_TRUE(page.ok()) << page.status();
    seen.insert(seen.end(), page->begin(), page->end());
    token = next;
    ++pages;
  } while (!token.empty());
  EXPECT_EQ(pages, 5);
  EXPECT_EQ(seen, items);
}

TEST(Paging, ItemRemovedBetweenPagesDoesNotShiftOthers) {
  std::vector<std::string> items = {"a", "b", "c", "d", "e"};
  std::string next;
  auto first = Paginate(items, Key, 2, "", &next);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(*first, (std::vector<std::string>{"a", "b"}));
  items.erase(items.begin());  // "a" goes away
  auto second = Paginate(items, Key, 2, next, &next);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(*second, (std::vector<std::string>{"c", "d"}));
}

TEST(Paging, ExactMultipleEndsWithoutToken) {
  std::vector<std::string> items = {"a", "b"};
  std::string next = "stale";
  auto page = Paginate(items, Key, 2, "", &next);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->size(), 2u);
  EXPECT_EQ(next, "");
}

TEST(Paging, RejectsForeignTokensAndNegativeSizes) {
  std::vector<std::string> items = {"a"};
  std::string next;
  EXPECT_EQ(Paginate(items, Key, 1, "bm9wZQ", &next).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Paginate(items, Key, -1, "", &next).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(*EffectivePageSize(0), kDefaultPageSize);
  EXPECT_EQ(*EffectivePageSize(5000), kMaxPageSize);
}

}  // namespace
}  // namespace cloudplane::paging
