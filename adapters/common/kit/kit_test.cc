#include <memory>
#include <string>
#include <vector>

#include "adapters/common/kit/account.h"
#include "adapters/common/kit/lists.h"
#include "adapters/common/kit/poll_token.h"
#include "adapters/common/kit/progress.h"
#include "adapters/common/kit/send.h"
#include "base/errors.h"
#include "base/reasons.h"
#include "cloudplane/v1/compute.pb.h"
#include "gtest/gtest.h"

namespace cloudplane::adapters::kit {
namespace {

v1::Instance Named(const std::string& name) {
  v1::Instance i;
  i.set_name(name);
  return i;
}

TEST(ListsTest, AnswerPageSortsDedupesAndPages) {
  std::vector<v1::Instance> items = {Named("accounts/a/instances/c"), Named("accounts/a/instances/a"),
                                     Named("accounts/a/instances/b"), Named("accounts/a/instances/a")};
  absl::StatusOr<v1::ListInstancesResponse> first =
      AnswerPage<v1::ListInstancesResponse>(items, 2, "");
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(first->instances_size(), 2);
  EXPECT_EQ(first->instances(0).name(), "accounts/a/instances/a");
  EXPECT_EQ(first->instances(1).name(), "accounts/a/instances/b");
  ASSERT_FALSE(first->next_page_token().empty());
  absl::StatusOr<v1::ListInstancesResponse> second =
      AnswerPage<v1::ListInstancesResponse>(items, 2, first->next_page_token());
  ASSERT_TRUE(second.ok());
  ASSERT_EQ(second->instances_size(), 1);
  EXPECT_EQ(second->instances(0).name(), "accounts/a/instances/c");
  EXPECT_TRUE(second->next_page_token().empty());
}

TEST(ListsTest, CheckPagingNamesTheField) {
  absl::Status s = CheckPaging(-1, "");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(GetBadRequest(s).has_value());
  EXPECT_EQ(GetBadRequest(s)->field_violations(0).field(), "page_size");
  s = CheckPaging(10, "not-a-token");
  ASSERT_TRUE(GetBadRequest(s).has_value());
  EXPECT_EQ(GetBadRequest(s)->field_violations(0).field(), "page_token");
}

TEST(ListsTest, FetchAllPagesWalksCursors) {
  std::vector<std::string> asked;
  absl::StatusOr<std::vector<int>> result;
  FetchAllPages<int>(
      "GET things",
      [&asked](const std::string& cursor, Callback<ProviderPage<int>> done) {
        asked.push_back(cursor);
        if (cursor.empty()) return std::move(done)(ProviderPage<int>{{1, 2}, "p2"});
        std::move(done)(ProviderPage<int>{{3}, ""});
      },
      [&result](absl::StatusOr<std::vector<int>> r) { result = std::move(r); });
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(*result, (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(asked, (std::vector<std::string>{"", "p2"}));
}

TEST(ListsTest, RepeatedCursorIsMalformed) {
  absl::StatusOr<std::vector<int>> result;
  FetchAllPages<int>(
      "GET loops",
      [](const std::string&, Callback<ProviderPage<int>> done) {
        std::move(done)(ProviderPage<int>{{1}, "same"});
      },
      [&result](absl::StatusOr<std::vector<int>> r) { result = std::move(r); });
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(GetErrorInfo(result.status())->reason(), "PROVIDER_MALFORMED_RESPONSE");
  EXPECT_NE(result.status().message().find("GET loops"), absl::string_view::npos);
}

TEST(PollTokenTest, RoundTripAndRefusals) {
  // Any versioned message works; OperationMetadata has none, so a token type
  // without `version` is refused as unreadable.
  v1::Instance not_a_token = Named("x");
  std::string bytes = PackToken(not_a_token);
  v1::Instance out;
  EXPECT_EQ(UnpackToken(bytes, 1, out).code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(UnpackToken("garbage\xff", 1, out).code(), absl::StatusCode::kDataLoss);
  v1::Volume other;
  EXPECT_EQ(UnpackToken(bytes, 1, other).code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE(HoldsToken<v1::Instance>(bytes));
  EXPECT_FALSE(HoldsToken<v1::Volume>(bytes));
}

TEST(ProgressTest, Vocabulary) {
  MutationProgress done = Finished(Named("n"));
  EXPECT_TRUE(done.done);
  v1::Instance back;
  ASSERT_TRUE(done.result.UnpackTo(&back));
  EXPECT_EQ(back.name(), "n");
  MutationProgress pending = Pending("tok", "starting", "job-1");
  EXPECT_FALSE(pending.done);
  EXPECT_EQ(pending.poll_token, "tok");
  EXPECT_EQ(pending.provider_operation, "job-1");
  absl::Status nf = NotFound("instance", "accounts/a/instances/x");
  EXPECT_EQ(nf.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(GetErrorInfo(nf)->metadata().at("resource"), "accounts/a/instances/x");
}

TEST(ProgressTest, AmbiguousAnswersAreThoseThatMayHaveBeenApplied) {
  for (const absl::Status& s :
       {absl::UnavailableError("reset"), absl::DeadlineExceededError("late"),
        absl::InternalError("truncated"), absl::CancelledError("shut down")}) {
    EXPECT_TRUE(IsAmbiguous(s)) << s;
  }
  for (const absl::Status& s :
       {absl::OkStatus(), absl::UnknownError("?"),
        WithErrorInfo(absl::UnavailableError("job 3 failed"), reasons::kProviderJobFailed),
        WithErrorInfo(absl::InternalError("VM in BOOT_FAILURE"), reasons::kProviderFailureState),
        absl::InvalidArgumentError("bad"), absl::NotFoundError("gone"),
        absl::AlreadyExistsError("taken"), absl::FailedPreconditionError("state"),
        absl::PermissionDeniedError("no"), absl::UnauthenticatedError("who"),
        absl::ResourceExhaustedError("quota"), absl::UnimplementedError("no such")}) {
    EXPECT_FALSE(IsAmbiguous(s)) << s;
  }
}

TEST(AccountTest, OptionsAndEndpoint) {
  AccountSetup setup;
  setup.options = {{"zeta", "1"}, {"alpha", "2"}, {"known", "3"}};
  absl::Status s = CheckOptions(setup, {"known"}, "fleet");
  ASSERT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  auto bad = GetBadRequest(s);
  ASSERT_TRUE(bad.has_value());
  ASSERT_EQ(bad->field_violations_size(), 2);
  EXPECT_EQ(bad->field_violations(0).field(), "options.alpha");
  EXPECT_EQ(bad->field_violations(1).field(), "options.zeta");
  setup.options.clear();
  EXPECT_TRUE(CheckOptions(setup, {}, "fleet").ok());
  setup.endpoint = "ftp://nope";
  auto client = MakeHttpClient(setup, nullptr);
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(GetBadRequest(client.status())->field_violations(0).field(), "endpoint");
  setup.endpoint = "http://127.0.0.1:1";
  EXPECT_TRUE(MakeHttpClient(setup, nullptr).ok());
}

TEST(SendTest, TransportErrorKeepsReasonAndAddsContext) {
  absl::Status plain = TransportError("GET unit x", absl::UnavailableError("refused"));
  EXPECT_EQ(plain.message(), "GET unit x: refused");
  EXPECT_EQ(GetErrorInfo(plain)->reason(), "PROVIDER_UNAVAILABLE");
  absl::Status tagged = TransportError(
      "GET unit x", WithErrorInfo(absl::UnavailableError("reset"), "CONCURRENT_MODIFICATION", {{"k", "v"}}));
  EXPECT_EQ(GetErrorInfo(tagged)->reason(), "CONCURRENT_MODIFICATION");
  EXPECT_EQ(GetErrorInfo(tagged)->metadata().at("k"), "v");
}

}  // namespace
}  // namespace cloudplane::adapters::kit
