// The phantom Provider on the fake HTTP transport: what it sends (signed
// query requests, the REST token flow), how it reads the answers, and what
// it refuses to send (an expired deadline, validate_only).
#include <algorithm>
#include <atomic>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "adapters/common/aws/sigv4.h"
#include "adapters/common/http/fake_http_transport.h"
#include "adapters/common/kit/poll_token.h"
#include "adapters/common/scratch/in_memory_scratch.h"
#include "adapters/common/testing/field_contract_check.h"
#include "adapters/phantom/phantom_adapter.h"
#include "adapters/phantom/phantom_tokens.pb.h"
#include "adapters/scratch_store.h"
#include "base/errors.h"
#include "base/reasons.h"
#include "base/event_loop.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cloudplane::adapters::phantom {
namespace {

using http::FakeHttpTransport;
using http::HttpResponse;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr absl::string_view kEndpoint = "http://phantom.example.org:8445";
constexpr absl::string_view kRest = "http://rest.example.org/api/dev";
constexpr absl::string_view kAccessKey = "AKEXAMPLE0001";
constexpr absl::string_view kSecretKey = "s3cr3tEXAMPLEkey";

// An XML answer of the query API, as pyhantom writes it.
std::string Answer(absl::string_view action, absl::string_view result,
                   absl::string_view next_token = "") {
  return absl::StrCat("<", action, "Response xmlns=\"http://autoscaling.amazonaws.com/doc/"
                      "2009-05-15/\"><ResponseMetadata><RequestId>r</RequestId>"
                      "</ResponseMetadata><", action, "Result>", result, "</", action,
                      "Result>",
                      next_token.empty() ? "" : absl::StrCat("<NextToken>", next_token,
                                                             "</NextToken>"),
                      "</", action, "Response>");
}

std::string Instance(absl::string_view id, absl::string_view state) {
  return absl::StrCat("<member><InstanceId>", id,
                      "</InstanceId><AvailabilityZone>hotel</AvailabilityZone>"
                      "<LaunchConfigurationName>web@hotel</LaunchConfigurationName>"
                      "<LifecycleState>", state, "</LifecycleState><HealthStatus>Healthy"
                      "</HealthStatus></member>");
}

std::string GroupsAnswer(absl::string_view name, int size, const std::string& instances,
                         absl::string_view next_token = "") {
  if (name.empty()) return Answer("DescribeAutoScalingGroups", "<AutoScalingGroups/>", next_token);
  return Answer("DescribeAutoScalingGroups",
                absl::StrCat("<AutoScalingGroups><member><AutoScalingGroupName>", name,
                             "</AutoScalingGroupName><LaunchConfigurationName>web@hotel"
                             "</LaunchConfigurationName><MinSize>", size, "</MinSize><MaxSize>",
                             size, "</MaxSize><DesiredCapacity>", size,
                             "</DesiredCapacity><CreatedTime>2013-06-01T12:00:00.123456Z"
                             "</CreatedTime><AvailabilityZones/><Instances>", instances,
                             "</Instances></member></AutoScalingGroups>"),
                next_token);
}

constexpr absl::string_view kLaunchConfigs =
    "<LaunchConfigurations><member><LaunchConfigurationName>web@hotel</LaunchConfigurationName>"
    "<ImageId>hello-phantom.gz</ImageId><InstanceType>m1.small</InstanceType></member>"
    "</LaunchConfigurations>";

HttpResponse Ok(std::string body) { return HttpResponse{200, {}, std::move(body)}; }

// The GET path of a Phantom describe (parameters sorted, as signed).
std::string DescribeGroupsPath(absl::string_view group) {
  return absl::StrCat("/?Action=DescribeAutoScalingGroups&AutoScalingGroupNames.member.1=", group,
                      "&MaxRecords=50&Version=2011-01-01");
}

// Calls an asynchronous Provider method and waits for its one callback.
template <typename T>
class Outcome {
 public:
  Callback<T> Receiver() {
    return [this](absl::StatusOr<T> value) {
      value_ = std::move(value);
      ready_.Notify();
    };
  }
  absl::StatusOr<T> Take() {
    EXPECT_TRUE(ready_.WaitForNotificationWithTimeout(absl::Seconds(10)));
    return std::move(value_);
  }

 private:
  absl::Notification ready_;
  absl::StatusOr<T> value_ = absl::UnknownError("no answer");
};

v1::ScalingGroup GroupOf(const std::string& account, int size) {
  v1::ScalingGroup g;
  g.set_launch_template(absl::StrCat("accounts/", account, "/launchTemplates/web"));
  g.set_target_size(size);
  g.add_locations(absl::StrCat("accounts/", account, "/locations/hotel"));
  return g;
}

class PhantomAdapterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<ScratchStore>> scratch = NewInMemoryScratch(&loop_, "lab");
    ASSERT_TRUE(scratch.ok()) << scratch.status();
    scratch_ = *std::move(scratch);
    provider_ = Make(scratch_.get());
  }

  std::unique_ptr<Provider> Make(ScratchStore* scratch,
                                 absl::flat_hash_map<std::string, std::string> options = {
                                     {"rest_endpoint", std::string(kRest)}}) {
    AccountSetup setup;
    setup.account = "lab";
    setup.endpoint = std::string(kEndpoint);
    setup.secret = absl::StrCat(kAccessKey, ":", kSecretKey, "\nalice:wonderland");
    setup.options = std::move(options);
    setup.scratch = scratch;
    setup.loop = &loop_;
    absl::StatusOr<std::unique_ptr<Provider>> provider = CreatePhantomProvider(setup, fake_);
    EXPECT_TRUE(provider.ok()) << provider.status();
    return provider.ok() ? *std::move(provider) : nullptr;
  }

  CallContext Context(std::string operation = "") {
    CallContext ctx;
    ctx.account = "lab";
    ctx.deadline = absl::Now() + absl::Seconds(30);
    ctx.operation = std::move(operation);
    return ctx;
  }

  absl::StatusOr<MutationProgress> CreateGroup(Provider& provider, const CallContext& ctx,
                                               int size) {
    v1::CreateScalingGroupRequest request;
    request.set_parent("accounts/lab");
    request.set_scaling_group_id("grp");
    *request.mutable_scaling_group() = GroupOf("lab", size);
    Outcome<MutationProgress> out;
    provider.CreateScalingGroup(ctx, request, out.Receiver());
    return out.Take();
  }

  // Waits until the durable writes posted so far have run.
  void DrainLoop() {
    absl::Notification n;
    loop_.Post([&n] { n.Notify(); });
    n.WaitForNotification();
  }

  std::shared_ptr<FakeHttpTransport> fake_ = FakeHttpTransport::Create();
  // Outlives the loop, which runs the writes still queued when it shuts down.
  std::unique_ptr<ScratchStore> scratch_;
  EventLoop loop_;
  std::unique_ptr<Provider> provider_;
};

// Capabilities follow the account: locations are Phantom's REST sites, so
// an account without a REST endpoint (either dialect) has none.
TEST_F(PhantomAdapterTest, LocationsAreSupportedOnlyWithTheRestApi) {
  const std::string list = FullMethodName("ComputeService", "ListLocations");
  const std::string get = FullMethodName("ComputeService", "GetLocation");
  const std::vector<std::string> all = provider_->Info().supported_methods;
  auto has = [](const std::vector<std::string>& methods, const std::string& m) {
    return std::find(methods.begin(), methods.end(), m) != methods.end();
  };
  // phantom dialect with rest_endpoint (the fixture): everything.
  EXPECT_EQ(provider_->SupportedMethods(), all);
  ASSERT_TRUE(has(all, list) && has(all, get));
  // phantom dialect without a REST endpoint, and the aws dialect (which has
  // none): the nine autoscaling methods only.
  for (const auto& options : {absl::flat_hash_map<std::string, std::string>{},
                              absl::flat_hash_map<std::string, std::string>{{"dialect", "phantom"}},
                              absl::flat_hash_map<std::string, std::string>{{"dialect", "aws"}}}) {
    std::unique_ptr<Provider> provider = Make(scratch_.get(), options);
    ASSERT_NE(provider, nullptr);
    std::vector<std::string> methods = provider->SupportedMethods();
    EXPECT_FALSE(has(methods, list));
    EXPECT_FALSE(has(methods, get));
    EXPECT_EQ(methods.size(), all.size() - 2);
    EXPECT_TRUE(has(methods, FullMethodName("AutoscalingService", "CreateScalingGroup")));
    EXPECT_TRUE(provider->CancellableMethods().empty());
  }
}

TEST_F(PhantomAdapterTest, MutationsArePostedFormsSignedAsPhantomChecksThem) {
  fake_->Expect("GET", DescribeGroupsPath("grp"), Ok(GroupsAnswer("grp", 1, "")));
  fake_->Expect("POST", "/", Ok(Answer("SetDesiredCapacity", "")));
  fake_->Expect("GET", DescribeGroupsPath("grp"),
                Ok(GroupsAnswer("grp", 2, Instance("i-1", "600-RUNNING"))));
  v1::ResizeScalingGroupRequest request;
  request.set_name("accounts/lab/scalingGroups/grp");
  request.set_target_size(2);
  Outcome<MutationProgress> out;
  provider_->ResizeScalingGroup(Context(), request, out.Receiver());
  ASSERT_TRUE(out.Take().ok());

  std::vector<FakeHttpTransport::SentRequest> sent = fake_->Sent();
  ASSERT_EQ(sent.size(), 3u);
  EXPECT_EQ(sent[0].base_url, kEndpoint);
  const http::HttpRequest& post = sent[1].request;
  EXPECT_EQ(post.method, "POST");
  EXPECT_EQ(post.path_and_query, "/");
  EXPECT_EQ(post.body,
            "Action=SetDesiredCapacity&AutoScalingGroupName=grp&DesiredCapacity=2&"
            "Version=2011-01-01");
  std::string date, authorization, content_type;
  for (const auto& [name, value] : post.headers) {
    if (name == "X-Amz-Date") date = value;
    if (name == "Authorization") authorization = value;
    if (name == "Content-Type") content_type = value;
  }
  EXPECT_EQ(content_type, "application/x-www-form-urlencoded; charset=UTF-8");
  // Phantom reads the second whitespace-separated token only: "," alone
  // between the parts.
  EXPECT_TRUE(absl::StartsWith(authorization, absl::StrCat("AWS4-HMAC-SHA256 Credential=",
                                                           kAccessKey, "/")))
      << authorization;
  EXPECT_FALSE(absl::StrContains(authorization, ", ")) << authorization;
  EXPECT_TRUE(absl::StrContains(authorization, ",SignedHeaders=host;x-amz-date,Signature="));

  // The signature is over the host without its port, in boto 2's scope for
  // a three-label host (us-east-1, service = first label).
  // X-Amz-Date is YYYYMMDDTHHMMSSZ (absl's %Y would read every digit).
  ASSERT_EQ(date.size(), 16u) << date;
  absl::Time when;
  ASSERT_TRUE(absl::ParseTime(absl::RFC3339_sec,
                              absl::StrCat(date.substr(0, 4), "-", date.substr(4, 2), "-",
                                           date.substr(6, 2), "T", date.substr(9, 2), ":",
                                           date.substr(11, 2), ":", date.substr(13, 2), "Z"),
                              &when, nullptr))
      << date;
  aws::SigningRequest expected;
  expected.method = "POST";
  expected.path = "/";
  expected.payload = post.body;
  expected.headers = {{"Host", "phantom.example.org"}};
  aws::SigningOptions options;
  options.region = "us-east-1";
  options.service = "phantom";
  options.time = when;
  options.authorization_separator = ",";
  absl::StatusOr<aws::SignedRequest> signed_request = aws::Sign(
      expected, aws::Credentials{std::string(kAccessKey), std::string(kSecretKey), ""}, options);
  ASSERT_TRUE(signed_request.ok());
  EXPECT_EQ(authorization, signed_request->authorization);
}

TEST_F(PhantomAdapterTest, AwsDialectPostsEverythingAndSignsTheHostWithItsPort) {
  std::unique_ptr<Provider> aws = Make(nullptr, {{"dialect", "aws"}});
  fake_->On("POST", "/", [](const http::HttpRequest&) -> absl::StatusOr<HttpResponse> {
    return Ok(GroupsAnswer("", 0, ""));
  });
  v1::GetScalingGroupRequest request;
  request.set_name("accounts/lab/scalingGroups/grp");
  Outcome<v1::ScalingGroup> out;
  aws->GetScalingGroup(Context(), request, out.Receiver());
  EXPECT_EQ(out.Take().status().code(), absl::StatusCode::kNotFound);
  ASSERT_EQ(fake_->Sent().size(), 1u);
  const http::HttpRequest sent = fake_->Sent()[0].request;
  EXPECT_EQ(sent.body,
            "Action=DescribeAutoScalingGroups&AutoScalingGroupNames.member.1=grp&MaxRecords=50&"
            "Version=2011-01-01");
  std::string authorization;
  for (const auto& [name, value] : sent.headers) {
    if (name == "Authorization") authorization = value;
  }
  EXPECT_TRUE(absl::StrContains(authorization, "/us-east-1/autoscaling/aws4_request, "))
      << authorization;
}

TEST_F(PhantomAdapterTest, DescribesAreReadsTheKitMayRepeatMutationsAreNot) {
  // A garbled describe answer is sent again (the kit's guard, kit/guard.h).
  fake_->Expect("GET", DescribeGroupsPath("grp"), Ok("<DescribeAutoScalingGroupsResponse><Desc"));
  fake_->Expect("GET", DescribeGroupsPath("grp"), Ok(GroupsAnswer("grp", 1, "")));
  v1::GetScalingGroupRequest request;
  request.set_name("accounts/lab/scalingGroups/grp");
  Outcome<v1::ScalingGroup> out;
  provider_->GetScalingGroup(Context(), request, out.Receiver());
  absl::StatusOr<v1::ScalingGroup> group = out.Take();
  ASSERT_TRUE(group.ok()) << group.status();
  EXPECT_EQ(group->target_size(), 1);
  EXPECT_EQ(fake_->Sent().size(), 2u);

  // In the AWS dialect a describe is a POST, and still a read; an action is
  // a POST that goes once, whatever comes back.
  std::unique_ptr<Provider> aws = Make(nullptr, {{"dialect", "aws"}});
  fake_->ClearSent();
  fake_->Expect("POST", "/", HttpResponse{503, {}, ""});
  fake_->Expect("POST", "/", Ok(GroupsAnswer("grp", 1, "")));
  Outcome<v1::ScalingGroup> aws_out;
  aws->GetScalingGroup(Context(), request, aws_out.Receiver());
  ASSERT_TRUE(aws_out.Take().ok());
  std::vector<FakeHttpTransport::SentRequest> sent = fake_->Sent();
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_TRUE(http::IsIdempotent(sent[0].request));
  ASSERT_TRUE(sent[0].request.validate != nullptr);
  EXPECT_FALSE(sent[0].request.validate(Ok("<html>")).ok());

  fake_->ClearSent();
  fake_->On("POST", "/", [](const http::HttpRequest& r) -> absl::StatusOr<HttpResponse> {
    if (absl::StrContains(r.body, "Action=Describe")) return Ok(GroupsAnswer("grp", 1, ""));
    return HttpResponse{503, {}, ""};
  });
  v1::DeleteScalingGroupRequest remove;
  remove.set_name("accounts/lab/scalingGroups/grp");
  Outcome<MutationProgress> removed;
  aws->DeleteScalingGroup(Context("operations/op-1"), remove, removed.Receiver());
  EXPECT_EQ(removed.Take().status().code(), absl::StatusCode::kUnavailable);
  int deletes = 0;
  for (const auto& s : fake_->Sent()) {
    if (absl::StrContains(s.request.body, "Action=DeleteAutoScalingGroup")) {
      ++deletes;
      EXPECT_FALSE(http::IsIdempotent(s.request));
    }
  }
  EXPECT_EQ(deletes, 1);
}

TEST_F(PhantomAdapterTest, GroupsAreReadFromEveryDescribePage) {
  fake_->Expect("GET",
                "/?Action=DescribeAutoScalingGroups&MaxRecords=50&Version=2011-01-01",
                Ok(GroupsAnswer("alpha", 1, Instance("i-1", "600-RUNNING"), "page-2")));
  fake_->Expect("GET",
                "/?Action=DescribeAutoScalingGroups&MaxRecords=50&NextToken=page-2&"
                "Version=2011-01-01",
                Ok(GroupsAnswer("beta", 2, Instance("i-2", "200-REQUESTED"))));
  v1::ListScalingGroupsRequest request;
  request.set_parent("accounts/lab");
  Outcome<v1::ListScalingGroupsResponse> out;
  provider_->ListScalingGroups(Context(), request, out.Receiver());
  absl::StatusOr<v1::ListScalingGroupsResponse> listed = out.Take();
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->scaling_groups_size(), 2);
  const v1::ScalingGroup& alpha = listed->scaling_groups(0);
  EXPECT_EQ(alpha.name(), "accounts/lab/scalingGroups/alpha");
  EXPECT_EQ(alpha.launch_template(), "accounts/lab/launchTemplates/web");
  EXPECT_EQ(alpha.target_size(), 1);
  EXPECT_EQ(alpha.state(), v1::ScalingGroup::STABLE);
  ASSERT_EQ(alpha.instances_size(), 1);
  EXPECT_EQ(alpha.instances(0).location(), "accounts/lab/locations/hotel");
  EXPECT_EQ(alpha.instances(0).health(), v1::ScalingGroupInstance::HEALTHY);
  EXPECT_EQ(listed->scaling_groups(1).state(), v1::ScalingGroup::RESIZING);
  EXPECT_EQ(fake_->PendingExpectations(), 0u);
}

TEST_F(PhantomAdapterTest, AwsErrorAnswersMapToStatuses) {
  fake_->Expect("GET", DescribeGroupsPath("grp"),
                HttpResponse{400, {},
                             "<ErrorResponse><Error><Type>Sender</Type><Code>ValidationError"
                             "</Code><Message>bad size</Message></Error><RequestId>req-9"
                             "</RequestId></ErrorResponse>"});
  v1::GetScalingGroupRequest request;
  request.set_name("accounts/lab/scalingGroups/grp");
  Outcome<v1::ScalingGroup> out;
  provider_->GetScalingGroup(Context(), request, out.Receiver());
  absl::Status s = out.Take().status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(s.message(), "DescribeAutoScalingGroups: ValidationError"))
      << s.message();
  auto info = GetErrorInfo(s);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->metadata().at("providerCode"), "ValidationError");
  EXPECT_EQ(info->metadata().at("providerRequestId"), "req-9");

  // Phantom's plain-text refusal of a taken name is ALREADY_EXISTS.
  fake_->Expect("GET", DescribeGroupsPath("grp"), Ok(GroupsAnswer("", 0, "")));
  fake_->Expect("GET", "/?Action=DescribeLaunchConfigurations*",
                Ok(Answer("DescribeLaunchConfigurations", kLaunchConfigs)));
  fake_->Expect("POST", "/",
                HttpResponse{400, {},
                             "400 InvalidParameterValue\n\nThe server could not comply.\n\n"
                             "Name already in use"});
  absl::StatusOr<MutationProgress> created = CreateGroup(*provider_, Context(), 1);
  EXPECT_EQ(created.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(GetErrorInfo(created.status())->reason(), "RESOURCE_ALREADY_EXISTS");
}

TEST_F(PhantomAdapterTest, SitesNeedATokenFirstAndAskForANewOneOnce) {
  fake_->Expect("POST", "/token",
                Ok(R"({"token":"3ti-old","user":1,"success":true})"));
  fake_->Expect("GET", "/sites", HttpResponse{403, {}, "Authorization Required"});
  fake_->Expect("POST", "/token",
                Ok(R"({"token":"3ti-new","user":1,"success":true})"));
  fake_->Expect("GET", "/sites",
                Ok(R"([{"id":"sierra","instance_types":["m1.small"]},{"id":"hotel"}])"));
  v1::ListLocationsRequest request;
  request.set_parent("accounts/lab");
  Outcome<v1::ListLocationsResponse> out;
  provider_->ListLocations(Context(), request, out.Receiver());
  absl::StatusOr<v1::ListLocationsResponse> listed = out.Take();
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->locations_size(), 2);
  EXPECT_EQ(listed->locations(0).name(), "accounts/lab/locations/hotel");

  std::vector<FakeHttpTransport::SentRequest> sent = fake_->Sent();
  ASSERT_EQ(sent.size(), 4u);
  EXPECT_EQ(sent[0].base_url, kRest);
  EXPECT_EQ(sent[0].request.body, "password=wonderland&username=alice");
  auto auth = [](const http::HttpRequest& r) {
    for (const auto& [name, value] : r.headers) {
      if (name == "Authorization") return value;
    }
    return std::string();
  };
  EXPECT_EQ(auth(sent[1].request), absl::StrCat("Basic ", absl::Base64Escape("1:3ti-old")));
  EXPECT_EQ(auth(sent[3].request), absl::StrCat("Basic ", absl::Base64Escape("1:3ti-new")));

  // The token is kept: the next call sends no POST /token.
  fake_->ClearSent();
  fake_->Expect("GET", "/sites", Ok(R"([{"id":"hotel"}])"));
  v1::GetLocationRequest get;
  get.set_name("accounts/lab/locations/hotel");
  Outcome<v1::Location> one;
  provider_->GetLocation(Context(), get, one.Receiver());
  ASSERT_TRUE(one.Take().ok());
  ASSERT_EQ(fake_->Sent().size(), 1u);
}

TEST_F(PhantomAdapterTest, TransportErrorsNameWhatWasAsked) {
  // Every attempt is refused: the describe is a read, and the kit retries it.
  fake_->On("GET", DescribeGroupsPath("grp"), [](const http::HttpRequest&) {
    return absl::StatusOr<http::HttpResponse>(absl::UnavailableError("connection refused"));
  });
  v1::GetScalingGroupRequest request;
  request.set_name("accounts/lab/scalingGroups/grp");
  Outcome<v1::ScalingGroup> out;
  provider_->GetScalingGroup(Context(), request, out.Receiver());
  absl::Status s = out.Take().status();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(s.message(), "DescribeAutoScalingGroups: connection refused");
  EXPECT_EQ(GetErrorInfo(s)->reason(), "PROVIDER_UNAVAILABLE");

  fake_->Expect("POST", "/token", absl::UnavailableError("reset"));
  Outcome<v1::ListLocationsResponse> sites;
  v1::ListLocationsRequest list;
  list.set_parent("accounts/lab");
  provider_->ListLocations(Context(), list, sites.Receiver());
  EXPECT_EQ(sites.Take().status().message(), "POST /token: reset");
}

TEST_F(PhantomAdapterTest, AnExpiredDeadlineSendsNothing) {
  CallContext late = Context();
  late.deadline = absl::Now() - absl::Seconds(1);
  v1::GetScalingGroupRequest request;
  request.set_name("accounts/lab/scalingGroups/grp");
  Outcome<v1::ScalingGroup> out;
  provider_->GetScalingGroup(late, request, out.Receiver());
  absl::Status s = out.Take().status();
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(absl::StartsWith(s.message(), "DescribeAutoScalingGroups: ")) << s.message();

  v1::ListLocationsRequest list;
  list.set_parent("accounts/lab");
  Outcome<v1::ListLocationsResponse> sites;
  provider_->ListLocations(late, list, sites.Receiver());
  s = sites.Take().status();
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(absl::StartsWith(s.message(), "POST /token: ")) << s.message();
  EXPECT_TRUE(fake_->Sent().empty());
}

TEST_F(PhantomAdapterTest, ValidateOnlyChecksLocallyAndSendsNothing) {
  CallContext check = Context("operations/vo");
  check.validate_only = true;
  absl::StatusOr<MutationProgress> created = CreateGroup(*provider_, check, 2);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_TRUE(created->done);

  // Phantom keeps min = max = target: a local refusal, under validate_only too.
  v1::CreateScalingGroupRequest bad;
  bad.set_scaling_group_id("grp");
  *bad.mutable_scaling_group() = GroupOf("lab", 2);
  bad.mutable_scaling_group()->set_min_size(1);
  Outcome<MutationProgress> refused;
  provider_->CreateScalingGroup(check, bad, refused.Receiver());
  absl::Status s = refused.Take().status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(GetBadRequest(s)->field_violations(0).field(), "scaling_group.min_size");

  v1::CreateLaunchTemplateRequest lt;
  lt.set_launch_template_id("web");
  lt.mutable_launch_template()->set_image("accounts/lab/images/hello-phantom.gz");
  lt.mutable_launch_template()->set_machine_type("accounts/lab/machineTypes/m1.small");
  lt.mutable_launch_template()->add_locations()->set_location("accounts/lab/locations/hotel");
  Outcome<MutationProgress> lt_out;
  provider_->CreateLaunchTemplate(check, lt, lt_out.Receiver());
  EXPECT_TRUE(lt_out.Take().ok());

  v1::ResizeScalingGroupRequest resize;
  resize.set_name("accounts/lab/scalingGroups/grp");
  resize.set_target_size(5);
  Outcome<MutationProgress> resized;
  provider_->ResizeScalingGroup(check, resize, resized.Receiver());
  EXPECT_TRUE(resized.Take().ok());

  v1::DeleteScalingGroupRequest del;
  del.set_name("accounts/lab/scalingGroups/grp");
  Outcome<MutationProgress> deleted;
  provider_->DeleteScalingGroup(check, del, deleted.Receiver());
  EXPECT_TRUE(deleted.Take().ok());

  v1::DeleteLaunchTemplateRequest del_lt;
  del_lt.set_name("accounts/lab/launchTemplates/web");
  Outcome<MutationProgress> deleted_lt;
  provider_->DeleteLaunchTemplate(check, del_lt, deleted_lt.Receiver());
  EXPECT_TRUE(deleted_lt.Take().ok());

  EXPECT_TRUE(fake_->Sent().empty());
  EXPECT_EQ(scratch_->Get("phantom.creates", "sg/grp").status().code(),
            absl::StatusCode::kNotFound);
}

// Forwards to a real ScratchStore and notes when a mark's durable write has
// finished.
class WatchedScratch : public ScratchStore {
 public:
  explicit WatchedScratch(ScratchStore* inner) : inner_(inner) {}
  absl::Status Load(absl::string_view collection) override { return inner_->Load(collection); }
  absl::StatusOr<std::string> Get(absl::string_view collection,
                                  absl::string_view id) const override {
    return inner_->Get(collection, id);
  }
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> List(
      absl::string_view collection) const override {
    return inner_->List(collection);
  }
  absl::Status Put(absl::string_view collection, absl::string_view id, std::string bytes,
                   WriteDone done) override {
    return inner_->Put(collection, id, std::move(bytes),
                       [this, done = std::move(done)](absl::Status s) mutable {
                         durable_ = s.ok();
                         if (done) std::move(done)(std::move(s));
                       });
  }
  absl::Status Delete(absl::string_view collection, absl::string_view id,
                      WriteDone done) override {
    return inner_->Delete(collection, id, std::move(done));
  }
  bool durable() const { return durable_; }

 private:
  ScratchStore* const inner_;
  std::atomic<bool> durable_{false};
};

TEST_F(PhantomAdapterTest, ACreateIsMarkedDurablyBeforeItIsSentAndCanBeReDriven) {
  WatchedScratch watched(scratch_.get());
  std::unique_ptr<Provider> provider = Make(&watched);
  fake_->Expect("GET", DescribeGroupsPath("grp"), Ok(GroupsAnswer("", 0, "")));
  fake_->Expect("GET", "/?Action=DescribeLaunchConfigurations*",
                Ok(Answer("DescribeLaunchConfigurations", kLaunchConfigs)));
  std::string mark_when_sent;
  bool durable_when_sent = false;
  fake_->On("POST", "/", [&](const http::HttpRequest& r) -> absl::StatusOr<HttpResponse> {
    // Runs on the fake's "http" thread: the mark is read from memory.
    mark_when_sent = watched.Get("phantom.creates", "sg/grp").value_or("");
    durable_when_sent = watched.durable();
    EXPECT_TRUE(absl::StartsWith(r.body, "Action=CreateAutoScalingGroup&")) << r.body;
    return Ok(Answer("CreateAutoScalingGroup", ""));
  });
  fake_->Expect("GET", DescribeGroupsPath("grp"),
                Ok(GroupsAnswer("grp", 1, Instance("i-1", "600-RUNNING"))));
  absl::StatusOr<MutationProgress> created = CreateGroup(*provider, Context("operations/op-1"), 1);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_TRUE(created->done);
  EXPECT_EQ(mark_when_sent, "operations/op-1");
  EXPECT_TRUE(durable_when_sent);

  // Re-driven by the same operation (a new Provider, as after a restart), the
  // create continues; another operation is refused.
  DrainLoop();
  std::unique_ptr<Provider> restarted = Make(scratch_.get());
  fake_->On("GET", DescribeGroupsPath("grp"),
            [](const http::HttpRequest&) -> absl::StatusOr<HttpResponse> {
              return Ok(GroupsAnswer("grp", 1, Instance("i-1", "600-RUNNING")));
            });
  absl::StatusOr<MutationProgress> again =
      CreateGroup(*restarted, Context("operations/op-1"), 1);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->done);
  EXPECT_EQ(CreateGroup(*restarted, Context("operations/op-2"), 1).status().code(),
            absl::StatusCode::kAlreadyExists);
}

// The create's answer is lost (the provider applied it, the connection reset
// before the answer came back): the runner calls the create again with the
// same operation. The mark stays, so the second call adopts the group and
// sends no second CreateAutoScalingGroup.
TEST_F(PhantomAdapterTest, AGroupCreateWhoseAnswerIsLostIsAdoptedNotSentAgain) {
  fake_->Expect("GET", DescribeGroupsPath("grp"), Ok(GroupsAnswer("", 0, "")));
  fake_->Expect("GET", "/?Action=DescribeLaunchConfigurations*",
                Ok(Answer("DescribeLaunchConfigurations", kLaunchConfigs)));
  fake_->Expect("POST", "/", absl::UnavailableError("connection reset by peer"));
  absl::StatusOr<MutationProgress> lost = CreateGroup(*provider_, Context("operations/op-1"), 1);
  EXPECT_EQ(lost.status().code(), absl::StatusCode::kUnavailable) << lost.status();
  EXPECT_EQ(*scratch_->Get("phantom.creates", "sg/grp"), "operations/op-1");

  // At the provider the group exists now.
  fake_->On("GET", DescribeGroupsPath("grp"),
            [](const http::HttpRequest&) -> absl::StatusOr<HttpResponse> {
              return Ok(GroupsAnswer("grp", 1, Instance("i-1", "600-RUNNING")));
            });
  absl::StatusOr<MutationProgress> again = CreateGroup(*provider_, Context("operations/op-1"), 1);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->done);
  int creates = 0;
  for (const FakeHttpTransport::SentRequest& r : fake_->Sent()) {
    if (r.request.method == "POST") {
      ++creates;
      EXPECT_TRUE(absl::StartsWith(r.request.body, "Action=CreateAutoScalingGroup&"));
    }
  }
  EXPECT_EQ(creates, 1);
}

// A two-site template whose second launch configuration was made but whose
// answer was lost: nothing is rolled back, and the re-driven create finds
// both configurations and sends no create at all.
TEST_F(PhantomAdapterTest, ATemplateCreateWhoseAnswerIsLostIsNotRolledBackNorSentAgain) {
  v1::CreateLaunchTemplateRequest lt;
  lt.set_launch_template_id("web");
  lt.mutable_launch_template()->set_image("accounts/lab/images/hello-phantom.gz");
  lt.mutable_launch_template()->set_machine_type("accounts/lab/machineTypes/m1.small");
  lt.mutable_launch_template()->add_locations()->set_location("accounts/lab/locations/hotel");
  lt.mutable_launch_template()->add_locations()->set_location("accounts/lab/locations/sierra");
  auto configs = [](bool made) {
    std::string members;
    if (made) {
      for (absl::string_view site : {"hotel", "sierra"}) {
        absl::StrAppend(&members, "<member><LaunchConfigurationName>web@", site,
                        "</LaunchConfigurationName><ImageId>hello-phantom.gz</ImageId>"
                        "<InstanceType>m1.small</InstanceType></member>");
      }
    }
    return Ok(Answer("DescribeLaunchConfigurations",
                     absl::StrCat("<LaunchConfigurations>", members, "</LaunchConfigurations>")));
  };
  fake_->Expect("GET", "/?Action=DescribeLaunchConfigurations*", configs(false));
  fake_->Expect("POST", "/", Ok(Answer("CreateLaunchConfiguration", "")));
  fake_->Expect("POST", "/", absl::UnavailableError("connection reset by peer"));
  Outcome<MutationProgress> first;
  provider_->CreateLaunchTemplate(Context("operations/lt-1"), lt, first.Receiver());
  EXPECT_EQ(first.Take().status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(*scratch_->Get("phantom.creates", "lt/web"), "operations/lt-1");

  fake_->On("GET", "/?Action=DescribeLaunchConfigurations*",
            [&](const http::HttpRequest&) -> absl::StatusOr<HttpResponse> {
              return configs(true);
            });
  Outcome<MutationProgress> again;
  provider_->CreateLaunchTemplate(Context("operations/lt-1"), lt, again.Receiver());
  absl::StatusOr<MutationProgress> created = again.Take();
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_TRUE(created->done);
  std::vector<std::string> posted;
  for (const FakeHttpTransport::SentRequest& r : fake_->Sent()) {
    if (r.request.method != "POST") continue;
    posted.push_back(r.request.body.substr(0, r.request.body.find('&')));
  }
  EXPECT_EQ(posted, std::vector<std::string>(2, "Action=CreateLaunchConfiguration"));
}

// A ScratchStore whose writes fail.
class BrokenScratch : public ScratchStore {
 public:
  absl::Status Load(absl::string_view) override { return absl::OkStatus(); }
  absl::StatusOr<std::string> Get(absl::string_view, absl::string_view) const override {
    return absl::NotFoundError("nothing");
  }
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> List(
      absl::string_view) const override {
    return std::vector<std::pair<std::string, std::string>>();
  }
  absl::Status Put(absl::string_view, absl::string_view, std::string, WriteDone done) override {
    std::move(done)(absl::UnavailableError("disk I/O error"));
    return absl::OkStatus();
  }
  absl::Status Delete(absl::string_view, absl::string_view, WriteDone) override {
    return absl::OkStatus();
  }
};

TEST_F(PhantomAdapterTest, AMarkThatCannotBeWrittenStopsTheCreateBeforeItIsSent) {
  BrokenScratch broken;
  std::unique_ptr<Provider> provider = Make(&broken);
  fake_->Expect("GET", DescribeGroupsPath("grp"), Ok(GroupsAnswer("", 0, "")));
  fake_->Expect("GET", "/?Action=DescribeLaunchConfigurations*",
                Ok(Answer("DescribeLaunchConfigurations", kLaunchConfigs)));
  absl::Status s = CreateGroup(*provider, Context("operations/op-1"), 1).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(s.message(), "could not mark sg/grp: disk I/O error"))
      << s.message();
  EXPECT_EQ(GetErrorInfo(s)->reason(), "STATE_STORE_FAILED");
  for (const FakeHttpTransport::SentRequest& r : fake_->Sent()) {
    EXPECT_NE(r.request.method, "POST") << r.request.body;
  }
}

TEST_F(PhantomAdapterTest, PollTokensAreTypedAndRoundTrip) {
  fake_->Expect("GET", DescribeGroupsPath("grp"), Ok(GroupsAnswer("grp", 1, "")));
  fake_->Expect("POST", "/", Ok(Answer("DeleteAutoScalingGroup", "")));
  fake_->Expect("GET", DescribeGroupsPath("grp"), Ok(GroupsAnswer("grp", 1, "")));
  v1::DeleteScalingGroupRequest del;
  del.set_name("accounts/lab/scalingGroups/grp");
  Outcome<MutationProgress> deleting;
  provider_->DeleteScalingGroup(Context(), del, deleting.Receiver());
  absl::StatusOr<MutationProgress> pending = deleting.Take();
  ASSERT_TRUE(pending.ok()) << pending.status();
  ASSERT_FALSE(pending->done);
  absl::StatusOr<GroupWaitToken> token =
      kit::UnpackToken<GroupWaitToken>(pending->poll_token, 1);
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(token->goal(), GroupWaitToken::GONE);
  EXPECT_EQ(token->group(), "grp");

  fake_->Expect("GET", DescribeGroupsPath("grp"), Ok(GroupsAnswer("", 0, "")));
  Outcome<MutationProgress> polled;
  provider_->PollOperation(Context(), pending->poll_token, polled.Receiver());
  absl::StatusOr<MutationProgress> gone = polled.Take();
  ASSERT_TRUE(gone.ok()) << gone.status();
  EXPECT_TRUE(gone->done);

  // A token of a newer version, of another shape, or no token at all.
  GroupWaitToken newer = *token;
  newer.set_version(2);
  GroupWaitToken empty;
  empty.set_version(1);
  for (const std::string& bytes :
       {kit::PackToken(newer), kit::PackToken(empty), std::string("size:grp:1")}) {
    Outcome<MutationProgress> refused;
    provider_->PollOperation(Context(), bytes, refused.Receiver());
    EXPECT_EQ(refused.Take().status().code(), absl::StatusCode::kDataLoss);
  }
}

// ---- The strict field contract ---------------------------------------------

class FieldContract : public PhantomAdapterTest {
 protected:
  static std::vector<std::string> Honoured(const Provider& provider, absl::string_view method) {
    return provider.HonouredFields(FullMethodName("AutoscalingService", method));
  }

  // The POST bodies sent so far that are CreateLaunchConfiguration actions.
  std::vector<std::string> CreateBodies() {
    std::vector<std::string> out;
    for (const FakeHttpTransport::SentRequest& r : fake_->Sent()) {
      if (absl::StrContains(r.request.body, "Action=CreateLaunchConfiguration&")) {
        out.push_back(r.request.body);
      }
    }
    return out;
  }
};

TEST_F(FieldContract, EveryMutationDeclaresRealFieldsInBothDialects) {
  testutil::ExpectFieldContractDeclared(*provider_);
  for (const auto& options : {absl::flat_hash_map<std::string, std::string>{},
                              absl::flat_hash_map<std::string, std::string>{{"dialect", "aws"}}}) {
    std::unique_ptr<Provider> provider = Make(nullptr, options);
    ASSERT_NE(provider, nullptr);
    testutil::ExpectFieldContractDeclared(*provider);
  }
}

// Phantom launches with the site's own key whatever KeyName says; an AWS
// launch configuration has no locations. Everything else is the same.
TEST_F(FieldContract, TheDialectsDifferInCreateLaunchTemplateOnly) {
  std::unique_ptr<Provider> aws = Make(nullptr, {{"dialect", "aws"}});
  ASSERT_NE(aws, nullptr);
  const std::vector<std::string> phantom_lt = Honoured(*provider_, "CreateLaunchTemplate");
  const std::vector<std::string> aws_lt = Honoured(*aws, "CreateLaunchTemplate");
  EXPECT_THAT(phantom_lt, Not(Contains("launch_template.key_name")));
  EXPECT_THAT(phantom_lt, Contains("launch_template.locations.location"));
  EXPECT_THAT(phantom_lt, Contains("launch_template.user_data"));
  EXPECT_THAT(aws_lt, Contains("launch_template.key_name"));
  EXPECT_THAT(aws_lt, Contains("launch_template.user_data"));
  EXPECT_THAT(aws_lt, Not(Contains(HasSubstr("locations"))));
  for (const char* method : {"DeleteLaunchTemplate", "CreateScalingGroup", "ResizeScalingGroup",
                             "DeleteScalingGroup"}) {
    EXPECT_EQ(Honoured(*provider_, method), Honoured(*aws, method)) << method;
  }
}

// Phantom: the image, machine type and user data of the template and each
// location's own reach a launch configuration per site.
TEST_F(FieldContract, PhantomCreateLaunchTemplateSendsEveryHonouredField) {
  v1::CreateLaunchTemplateRequest lt;
  lt.set_launch_template_id("web");
  v1::LaunchTemplate& t = *lt.mutable_launch_template();
  t.set_image("accounts/lab/images/hello-phantom.gz");
  t.set_machine_type("accounts/lab/machineTypes/m1.small");
  t.set_user_data("abc");  // base64 YWJj
  t.add_locations()->set_location("accounts/lab/locations/hotel");
  v1::LocationLaunchSpec& sierra = *t.add_locations();
  sierra.set_location("accounts/lab/locations/sierra");
  sierra.set_image("accounts/lab/images/ami-2");
  sierra.set_machine_type("accounts/lab/machineTypes/m1.large");
  fake_->Expect("GET", "/?Action=DescribeLaunchConfigurations*",
                Ok(Answer("DescribeLaunchConfigurations", "<LaunchConfigurations/>")));
  fake_->Expect("POST", "/", Ok(Answer("CreateLaunchConfiguration", "")));
  fake_->Expect("POST", "/", Ok(Answer("CreateLaunchConfiguration", "")));
  fake_->Expect("GET", "/?Action=DescribeLaunchConfigurations*",
                Ok(Answer("DescribeLaunchConfigurations", kLaunchConfigs)));
  Outcome<MutationProgress> out;
  provider_->CreateLaunchTemplate(Context(), lt, out.Receiver());
  absl::StatusOr<MutationProgress> created = out.Take();
  ASSERT_TRUE(created.ok()) << created.status();
  const std::vector<std::string> bodies = CreateBodies();
  ASSERT_EQ(bodies.size(), 2u);
  EXPECT_THAT(bodies[0], HasSubstr("&ImageId=hello-phantom.gz&"));
  EXPECT_THAT(bodies[0], HasSubstr("&InstanceType=m1.small&"));
  EXPECT_THAT(bodies[0], HasSubstr("&LaunchConfigurationName=web%40hotel&"));
  EXPECT_THAT(bodies[0], HasSubstr("&UserData=YWJj&"));
  EXPECT_THAT(bodies[1], HasSubstr("&ImageId=ami-2&"));
  EXPECT_THAT(bodies[1], HasSubstr("&InstanceType=m1.large&"));
  EXPECT_THAT(bodies[1], HasSubstr("&LaunchConfigurationName=web%40sierra&"));
  EXPECT_THAT(bodies[1], HasSubstr("&UserData=YWJj&"));
}

// AWS: key_name travels as KeyName, with the image, type and user data.
TEST_F(FieldContract, AwsCreateLaunchTemplateSendsEveryHonouredField) {
  std::unique_ptr<Provider> aws = Make(nullptr, {{"dialect", "aws"}});
  ASSERT_NE(aws, nullptr);
  v1::CreateLaunchTemplateRequest lt;
  lt.set_launch_template_id("web");
  v1::LaunchTemplate& t = *lt.mutable_launch_template();
  t.set_image("accounts/lab/images/ami-1");
  t.set_machine_type("accounts/lab/machineTypes/t2.micro");
  t.set_key_name("ops-key");
  t.set_user_data("abc");
  const std::string none = Answer("DescribeLaunchConfigurations", "<LaunchConfigurations/>");
  const std::string made = Answer(
      "DescribeLaunchConfigurations",
      "<LaunchConfigurations><member><LaunchConfigurationName>web</LaunchConfigurationName>"
      "<ImageId>ami-1</ImageId><InstanceType>t2.micro</InstanceType><KeyName>ops-key</KeyName>"
      "</member></LaunchConfigurations>");
  fake_->Expect("POST", "/", Ok(none));
  fake_->Expect("POST", "/", Ok(Answer("CreateLaunchConfiguration", "")));
  fake_->Expect("POST", "/", Ok(made));
  Outcome<MutationProgress> out;
  aws->CreateLaunchTemplate(Context(), lt, out.Receiver());
  absl::StatusOr<MutationProgress> created = out.Take();
  ASSERT_TRUE(created.ok()) << created.status();
  v1::LaunchTemplate result;
  ASSERT_TRUE(created->result.UnpackTo(&result));
  EXPECT_EQ(result.key_name(), "ops-key");
  const std::vector<std::string> bodies = CreateBodies();
  ASSERT_EQ(bodies.size(), 1u);
  EXPECT_THAT(bodies[0], HasSubstr("&ImageId=ami-1&"));
  EXPECT_THAT(bodies[0], HasSubstr("&InstanceType=t2.micro&"));
  EXPECT_THAT(bodies[0], HasSubstr("&KeyName=ops-key&"));
  EXPECT_THAT(bodies[0], HasSubstr("&UserData=YWJj&"));
}

}  // namespace
}  // namespace cloudplane::adapters::phantom
