#include "adapters/common/aws/query.h"

#include "absl/strings/match.h"

#include "absl/status/status.h"
#include "base/errors.h"
#include "base/utf8.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cloudplane::aws {
namespace {

TEST(QueryTest, EncodesSortedWithPercentTwenty) {
  QueryParams params = {{"Version", "2011-01-01"},
                        {"LaunchConfigurationName", "my lc@hotel"},
                        {"Action", "CreateLaunchConfiguration"}};
  AddMemberList(params, "SecurityGroups", {"b", "a"});
  EXPECT_EQ(EncodeQueryParams(params),
            "Action=CreateLaunchConfiguration&LaunchConfigurationName=my%20lc%40hotel&"
            "SecurityGroups.member.1=b&SecurityGroups.member.2=a&Version=2011-01-01");
}

// AWS placement: Result first with NextToken inside it.
TEST(QueryTest, ReadsAwsDialect) {
  absl::StatusOr<QueryResponse> r = ParseQueryResponse(
      "DescribeAutoScalingGroups",
      R"(<DescribeAutoScalingGroupsResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/">
  <DescribeAutoScalingGroupsResult><AutoScalingGroups><member><AutoScalingGroupName>g</AutoScalingGroupName></member></AutoScalingGroups>
  <NextToken>tok</NextToken></DescribeAutoScalingGroupsResult>
  <ResponseMetadata><RequestId>rid-1</RequestId></ResponseMetadata>
</DescribeAutoScalingGroupsResponse>)");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->next_token, "tok");
  EXPECT_EQ(r->request_id, "rid-1");
  EXPECT_EQ(r->result->Name(), "DescribeAutoScalingGroupsResult");
}

// Phantom placement: ResponseMetadata first, NextToken under the root, and
// DescribeAutoScalingInstances without Response suffix or Result.
TEST(QueryTest, ReadsPhantomDialect) {
  absl::StatusOr<QueryResponse> r = ParseQueryResponse(
      "DescribeLaunchConfigurations",
      R"(<DescribeLaunchConfigurationsResponse xmlns="http://autoscaling.amazonaws.com/doc/2009-05-15/"><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata><DescribeLaunchConfigurationsResult><LaunchConfigurations/></DescribeLaunchConfigurationsResult><NextToken>b@hotel</NextToken></DescribeLaunchConfigurationsResponse>)");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->next_token, "b@hotel");
  absl::StatusOr<QueryResponse> i = ParseQueryResponse(
      "DescribeAutoScalingInstances",
      R"(<DescribeAutoScalingInstances xmlns="x"><AutoScalingInstances/></DescribeAutoScalingInstances>)");
  ASSERT_TRUE(i.ok()) << i.status();
  EXPECT_NE(i->result->Child("AutoScalingInstances"), nullptr);
}

TEST(QueryTest, WrongRootOrNotXmlIsMalformed) {
  EXPECT_EQ(ParseQueryResponse("A", "<BResponse/>").status().code(),
            absl::StatusCode::kInternal);
  absl::Status s = ParseQueryResponse("A", "not xml").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(GetErrorInfo(s)->reason(), "PROVIDER_MALFORMED_RESPONSE");
}

TEST(QueryTest, ReadsAwsErrorResponse) {
  QueryError e = ParseQueryError(
      400,
      R"(<ErrorResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/"><Error><Type>Sender</Type><Code>AlreadyExists</Code><Message>Launch Configuration 'x' already exists</Message></Error><RequestId>q</RequestId></ErrorResponse>)");
  EXPECT_EQ(e.code, "AlreadyExists");
  EXPECT_EQ(e.message, "Launch Configuration 'x' already exists");
  EXPECT_EQ(e.request_id, "q");
  absl::Status s = StatusFromQueryError(e, "CreateLaunchConfiguration x");
  EXPECT_EQ(s.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(GetErrorInfo(s)->metadata().at("providerCode"), "AlreadyExists");
}

TEST(QueryTest, ReadsPhantomPlainTextError) {
  QueryError e = ParseQueryError(
      403,
      "403 InvalidClientTokenId\n\nThe X.509 certificate or AWS access key ID provided does not "
      "exist in our records.\n\n");
  EXPECT_EQ(e.code, "InvalidClientTokenId");
  EXPECT_EQ(StatusFromQueryError(e, "c").code(), absl::StatusCode::kUnauthenticated);
  e = ParseQueryError(400,
                      "400 InvalidParameterValue\n\nA bad or out-of-range value was supplied "
                      "for the input parameter.\n\nThe name mylc is not in the proper format.\n");
  EXPECT_EQ(e.code, "InvalidParameterValue");
  EXPECT_EQ(e.message, "The name mylc is not in the proper format.");
  EXPECT_EQ(StatusFromQueryError(e, "c").code(), absl::StatusCode::kInvalidArgument);
  // Signature mismatch is a 400 at Phantom, still UNAUTHENTICATED.
  e = ParseQueryError(400, "400 IncompleteSignature\n\nx\n");
  EXPECT_EQ(StatusFromQueryError(e, "c").code(), absl::StatusCode::kUnauthenticated);
}

TEST(QueryTest, UnknownBodyFallsBackToHttpStatus) {
  QueryError e = ParseQueryError(503, "<html>busy</html>");
  EXPECT_TRUE(e.code.empty());
  EXPECT_EQ(StatusFromQueryError(e, "c").code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(StatusFromQueryError(ParseQueryError(500, "500 InternalFailure\n\noops\n"), "c").code(),
            absl::StatusCode::kUnavailable);
}

// Issue 16's reproducer: Cut() split a two-byte character at its byte
// limit, and the broken string reached QueryError.message and the
// providerMessage sent to clients.
TEST(QueryTest, MessagesAreCutBetweenCharactersAndRepaired) {
  const std::string body = std::string(199, 'a') + "\xC3\xA9";  // 199 x a, then é
  QueryError e = ParseQueryError(503, body);
  EXPECT_TRUE(IsValidUtf8(e.message));
  EXPECT_EQ(e.message, std::string(199, 'a') + "...");
  absl::Status s = StatusFromQueryError(e, "c");
  EXPECT_TRUE(IsValidUtf8(GetErrorInfo(s)->metadata().at("providerMessage")));
  EXPECT_TRUE(IsValidUtf8(s.message()));

  const std::string xml_message = std::string(499, 'b') + "\xC3\xA9 and more";
  e = ParseQueryError(400, "<ErrorResponse><Error><Code>X</Code><Message>" + xml_message +
                               "</Message></Error></ErrorResponse>");
  EXPECT_EQ(e.message, std::string(499, 'b') + "...");

  // Bytes that are not UTF-8 at all (a non-XML body may hold anything).
  e = ParseQueryError(503, "busy \xFF\xFE now");
  EXPECT_EQ(e.message, "busy \xEF\xBF\xBD\xEF\xBF\xBD now");

  // query_fuzz: a body of 300 invalid bytes was cut to 200 and then
  // repaired, each byte growing into a three-byte U+FFFD (600 bytes). The
  // limit holds for the repaired text.
  e = ParseQueryError(503, std::string(300, '\xFF'));
  EXPECT_LE(e.message.size(), 203u);
  EXPECT_TRUE(IsValidUtf8(e.message));
  EXPECT_TRUE(absl::EndsWith(e.message, "\xEF\xBF\xBD..."));

  // query_fuzz: Phantom's plain-text first line gave a code of raw bytes.
  e = ParseQueryError(400, "400 \xA3\x9E" "Bad\n\nexplanation\n\ndetail");
  EXPECT_EQ(e.code, "\xEF\xBF\xBD" "Bad");  // one invalid sequence, one U+FFFD
  EXPECT_TRUE(IsValidUtf8(GetErrorInfo(StatusFromQueryError(e, "c"))->metadata().at("providerCode")));
}

}  // namespace
}  // namespace cloudplane::aws
