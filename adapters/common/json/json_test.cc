#include "adapters/common/json/json.h"

#include "base/errors.h"
#include "gtest/gtest.h"

namespace cloudplane::json {
namespace {

TEST(JsonTest, ParsesAndFindsMembers) {
  rapidjson::Document doc;
  ASSERT_TRUE(Parse(R"({"a":"x","b":null,"c":[1]})", "fleet", doc).ok());
  ASSERT_NE(Member(doc, "a"), nullptr);
  EXPECT_STREQ(Member(doc, "a")->GetString(), "x");
  EXPECT_EQ(Member(doc, "b"), nullptr);
  EXPECT_EQ(Member(doc, "missing"), nullptr);
  EXPECT_EQ(Member((*Member(doc, "c"))[0], "a"), nullptr);  // not an object
  EXPECT_EQ(Serialize(*Member(doc, "c")), "[1]");
}

TEST(JsonTest, MalformedNamesProviderAndReason) {
  rapidjson::Document doc;
  absl::Status s = Parse("{\"a\":", "CloudSigma", doc);
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_NE(s.message().find("CloudSigma sent malformed JSON"), absl::string_view::npos);
  ASSERT_TRUE(GetErrorInfo(s).has_value());
  EXPECT_EQ(GetErrorInfo(s)->reason(), "PROVIDER_MALFORMED_RESPONSE");
}

TEST(JsonTest, InvalidUtf8IsRefused) {
  rapidjson::Document doc;
  EXPECT_EQ(Parse("\"\xff\"", "fleet", doc).code(), absl::StatusCode::kInternal);
}

TEST(JsonTest, TrailingCommasOnlyWhenAsked) {
  rapidjson::Document doc;
  EXPECT_FALSE(Parse("[1,]", "x", doc).ok());
  EXPECT_TRUE(Parse("[1,]", "x", doc, {.trailing_commas = true}).ok());
}

}  // namespace
}  // namespace cloudplane::json
