#include "adapters/common/paging/paging.h"

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/errors.h"

namespace cloudplane::paging {
namespace {
// A prefix so that a token from another list kind or a guessed string is
// recognised as foreign rather than silently misread.
constexpr absl::string_view kPrefix = "cp1:";
}  // namespace

absl::StatusOr<int> EffectivePageSize(int32_t requested) {
  if (requested < 0) return InvalidField("page_size", "must not be negative");
  if (requested == 0) return kDefaultPageSize;
  return requested > kMaxPageSize ? kMaxPageSize : static_cast<int>(requested);
}

absl::StatusOr<std::string> DecodeToken(absl::string_view page_token) {
  if (page_token.empty()) return std::string();
  std::string raw;
  if (!absl::WebSafeBase64Unescape(page_token, &raw) || !absl::StartsWith(raw, kPrefix) ||
      raw.size() == kPrefix.size()) {
    return InvalidField("page_token", "is not a token this server issued");
  }
  return raw.substr(kPrefix.size());
}

std::string MakeToken(absl::string_view last_key) {
  return absl::WebSafeBase64Escape(absl::StrCat(kPrefix, last_key));
}

}  // namespace cloudplane::paging
