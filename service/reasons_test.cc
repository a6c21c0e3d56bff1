// The ErrorInfo reasons the server sends (base/reasons.h) and the enum
// clients code against (cloudplane.v1.ErrorReason) list the same names.
#include <set>
#include <string>

#include "base/errors.h"
#include "base/reasons.h"
#include "cloudplane/v1/common.pb.h"
#include "gtest/gtest.h"

namespace cloudplane {
namespace {

TEST(ReasonsTest, HeaderAndProtoEnumAgree) {
  std::set<std::string> header;
  for (absl::string_view r : reasons::kAll) header.insert(std::string(r));
  std::set<std::string> proto;
  const auto* e = v1::ErrorReason_descriptor();
  for (int i = 0; i < e->value_count(); ++i) {
    if (e->value(i)->number() != 0) proto.insert(e->value(i)->name());
  }
  EXPECT_EQ(header, proto);
  EXPECT_EQ(header.size(), std::size(reasons::kAll));  // no name twice
}

TEST(ReasonsTest, EveryDefaultReasonIsInTheCatalogue) {
  std::set<std::string> header;
  for (absl::string_view r : reasons::kAll) header.insert(std::string(r));
  for (int code = 1; code <= 16; ++code) {
    std::string reason = DefaultReason(static_cast<absl::StatusCode>(code));
    EXPECT_TRUE(header.contains(reason)) << code << " -> " << reason;
    // A reason says more than the code's own name.
    EXPECT_NE(reason, absl::StatusCodeToString(static_cast<absl::StatusCode>(code))) << code;
  }
}

#ifndef NDEBUG
TEST(ReasonsDeathTest, AReasonOutsideTheCatalogueAbortsATestBuild) {
  EXPECT_DEATH(WithErrorInfo(absl::InternalError("x"), "MADE_UP_REASON"),
               "ErrorInfo reason \"MADE_UP_REASON\" is not in base/reasons.h");
  EXPECT_FALSE(WithErrorInfo(absl::InternalError("x"), reasons::kInternal).ok());
}
#endif

}  // namespace
}  // namespace cloudplane
