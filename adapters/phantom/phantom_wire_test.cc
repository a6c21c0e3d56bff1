// phantom_wire on answers shaped as pyhantom (out_data_types.py) and
// PhantomWebApp (phantomweb/api/dev.py, django-tokenapi) write them
// (Phantom publishes no recorded payloads; shared/fixtures/phantom/SOURCES.txt).
#include "adapters/phantom/phantom_wire.h"

#include "absl/strings/match.h"
#include "adapters/common/aws/query.h"
#include "base/errors.h"
#include "base/utf8.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cloudplane::adapters::phantom {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;

// pyhantom's shape (2009-05-15 namespace, ResponseMetadata first).
constexpr absl::string_view kGroups =
    R"(<DescribeAutoScalingGroupsResponse xmlns="http://autoscaling.amazonaws.com/doc/2009-05-15/"><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata><DescribeAutoScalingGroupsResult><AutoScalingGroups><member><AutoScalingGroupName>mydomain</AutoScalingGroupName><AutoScalingGroupARN>arn:phantom:x</AutoScalingGroupARN><LaunchConfigurationName>mylc</LaunchConfigurationName><MinSize>2</MinSize><MaxSize>2</MaxSize><DesiredCapacity>2</DesiredCapacity><CreatedTime>2013-06-01T12:00:00.123456Z</CreatedTime><Cooldown>0</Cooldown><AvailabilityZones/><Tags><member><Key>PHANTOM_DEFINITION</Key><Value>error_overflow_n_preserving</Value><PropagateAtLaunch>false</PropagateAtLaunch><ResourceId>mydomain</ResourceId><ResourceType>auto-scaling-group</ResourceType></member><member><Key>clouds</Key><Value>hotel:2</Value></member><member><Key>empty</Key><Value></Value></member></Tags><Status/><Instances><member><InstanceId>i-14a3d7df</InstanceId><AutoScalingGroupName>mydomain</AutoScalingGroupName><AvailabilityZone>hotel</AvailabilityZone><LaunchConfigurationName>mylc</LaunchConfigurationName><LifecycleState>600-RUNNING</LifecycleState><HealthStatus>Healthy</HealthStatus></member><member><InstanceId></InstanceId><AutoScalingGroupName>mydomain</AutoScalingGroupName><AvailabilityZone>hotel</AvailabilityZone><LaunchConfigurationName>mylc</LaunchConfigurationName><LifecycleState>200-REQUESTED</LifecycleState><HealthStatus>Unhealthy waiting for the IaaS</HealthStatus></member></Instances></member></AutoScalingGroups></DescribeAutoScalingGroupsResult></DescribeAutoScalingGroupsResponse>)";

constexpr absl::string_view kLcs =
    R"(<DescribeLaunchConfigurationsResponse xmlns="http://autoscaling.amazonaws.com/doc/2009-05-15/"><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata><DescribeLaunchConfigurationsResult><LaunchConfigurations><member><LaunchConfigurationName>mylc@hotel</LaunchConfigurationName><LaunchConfigurationARN>arn:a</LaunchConfigurationARN><ImageId>hello-phantom.gz</ImageId><InstanceType>m1.small</InstanceType><KeyName>phantomkey</KeyName><CreatedTime>2013-06-01T12:00:00.123456Z</CreatedTime><UserData>IyEvYmluL3NoCg==</UserData><KernelId>aki-1</KernelId><RamdiskId/><SecurityGroups><member>default</member></SecurityGroups><InstanceMonitoring><Enabled>False</Enabled></InstanceMonitoring></member><member><LaunchConfigurationName>mylc@ec2</LaunchConfigurationName><ImageId>ami-1</ImageId><InstanceType>m1.large</InstanceType><KeyName>phantomkey</KeyName><CreatedTime>2013-06-01T12:00:01.000000Z</CreatedTime></member><member><LaunchConfigurationName>other@hotel</LaunchConfigurationName><ImageId>x</ImageId><InstanceType>m1.small</InstanceType></member></LaunchConfigurations></DescribeLaunchConfigurationsResult><NextToken>zz@hotel</NextToken></DescribeLaunchConfigurationsResponse>)";

TEST(PhantomWireTest, GroupsFromPhantomAnswer) {
  auto r = aws::ParseQueryResponse("DescribeAutoScalingGroups", kGroups);
  ASSERT_TRUE(r.ok()) << r.status();
  auto groups = ParseGroups(*r->result);
  ASSERT_TRUE(groups.ok()) << groups.status();
  ASSERT_EQ(groups->size(), 1u);
  const WireGroup& g = groups->front();
  EXPECT_EQ(g.desired, 2);
  EXPECT_FALSE(GroupSettled(g, 2));  // one instance still 200-REQUESTED
  v1::ScalingGroup sg = GroupFromWire(Dialect::kPhantom, "lab", g);
  EXPECT_EQ(sg.name(), "accounts/lab/scalingGroups/mydomain");
  EXPECT_EQ(sg.launch_template(), "accounts/lab/launchTemplates/mylc");
  EXPECT_THAT(sg.locations(), ElementsAre("accounts/lab/locations/hotel"));
  EXPECT_EQ(sg.state(), v1::ScalingGroup::RESIZING);
  ASSERT_EQ(sg.instances_size(), 2);
  EXPECT_EQ(sg.instances(0).health(), v1::ScalingGroupInstance::HEALTHY);
  EXPECT_EQ(sg.instances(0).lifecycle_state(), "600-RUNNING");
  EXPECT_EQ(sg.create_time().seconds(), 1370088000);
  EXPECT_EQ(sg.create_time().nanos(), 123456000);
}

TEST(PhantomWireTest, TemplatesGroupSitesOfOneDeployableType) {
  auto r = aws::ParseQueryResponse("DescribeLaunchConfigurations", kLcs);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->next_token, "zz@hotel");
  auto lcs = ParseLaunchConfigs(*r->result);
  ASSERT_TRUE(lcs.ok()) << lcs.status();
  auto templates = TemplatesFromWire(Dialect::kPhantom, "lab", *lcs);
  ASSERT_EQ(templates.size(), 2u);
  const v1::LaunchTemplate& t = templates[0];
  EXPECT_EQ(t.name(), "accounts/lab/launchTemplates/mylc");
  ASSERT_EQ(t.locations_size(), 2);
  EXPECT_EQ(t.locations(0).location(), "accounts/lab/locations/ec2");
  EXPECT_EQ(t.locations(0).image(), "accounts/lab/images/ami-1");
  EXPECT_EQ(t.locations(1).machine_type(), "accounts/lab/machineTypes/m1.small");
  EXPECT_TRUE(t.user_data().empty());  // INPUT_ONLY
}

// provider_details keeps what the typed LaunchTemplate has no place for,
// per launch configuration (site, ARN, created time, kernel...), and the
// user data only as its digest.
TEST(PhantomWireTest, TemplateProviderDetailsPerLaunchConfiguration) {
  auto r = aws::ParseQueryResponse("DescribeLaunchConfigurations", kLcs);
  ASSERT_TRUE(r.ok()) << r.status();
  auto lcs = ParseLaunchConfigs(*r->result);
  ASSERT_TRUE(lcs.ok()) << lcs.status();
  const v1::LaunchTemplate t = TemplatesFromWire(Dialect::kPhantom, "lab", *lcs)[0];
  const auto& d = t.provider_details().fields();
  EXPECT_EQ(d.at("launchConfigurationNames").string_value(), "mylc@ec2,mylc@hotel");
  const auto& list = d.at("launchConfigurations").list_value().values();
  ASSERT_EQ(list.size(), 2);
  const auto& ec2 = list[0].struct_value().fields();
  const auto& hotel = list[1].struct_value().fields();
  EXPECT_EQ(ec2.at("site").string_value(), "ec2");
  EXPECT_EQ(ec2.at("createdTime").string_value(), "2013-06-01T12:00:01.000000Z");
  EXPECT_FALSE(ec2.contains("arn"));          // none sent
  EXPECT_FALSE(ec2.contains("userDataSha256"));  // none sent
  EXPECT_EQ(hotel.at("name").string_value(), "mylc@hotel");
  EXPECT_EQ(hotel.at("arn").string_value(), "arn:a");
  EXPECT_EQ(hotel.at("imageId").string_value(), "hello-phantom.gz");
  EXPECT_EQ(hotel.at("instanceType").string_value(), "m1.small");
  EXPECT_EQ(hotel.at("keyName").string_value(), "phantomkey");
  EXPECT_EQ(hotel.at("kernelId").string_value(), "aki-1");
  EXPECT_EQ(hotel.at("instanceMonitoring").string_value(), "False");
  ASSERT_EQ(hotel.at("securityGroups").list_value().values_size(), 1);
  EXPECT_EQ(hotel.at("securityGroups").list_value().values(0).string_value(), "default");
  // SHA-256 of "#!/bin/sh\n" (the UserData IyEvYmluL3NoCg== decoded).
  EXPECT_EQ(hotel.at("userDataSha256").string_value(),
            "a8076d3d28d21e02012b20eaf7dbf75409a6277134439025f282e368e3305abf");
  // The sites differ in user data: no template-wide digest.
  EXPECT_FALSE(d.contains("userDataSha256"));
  std::string serialized;
  ASSERT_TRUE(t.provider_details().SerializeToString(&serialized));
  EXPECT_FALSE(absl::StrContains(serialized, "IyEvYmluL3NoCg=="));
  EXPECT_FALSE(absl::StrContains(serialized, "#!/bin/sh"));
}

// A group's provider_details: the ARN, created time, AWS-only settings as
// sent, the policy tags, and each instance's own fields (health text whole).
TEST(PhantomWireTest, GroupProviderDetails) {
  auto r = aws::ParseQueryResponse("DescribeAutoScalingGroups", kGroups);
  ASSERT_TRUE(r.ok()) << r.status();
  auto groups = ParseGroups(*r->result);
  ASSERT_TRUE(groups.ok()) << groups.status();
  const v1::ScalingGroup g = GroupFromWire(Dialect::kPhantom, "lab", groups->front());
  const auto& d = g.provider_details().fields();
  EXPECT_EQ(d.at("arn").string_value(), "arn:phantom:x");
  EXPECT_EQ(d.at("createdTime").string_value(), "2013-06-01T12:00:00.123456Z");
  EXPECT_EQ(d.at("cooldown").string_value(), "0");
  EXPECT_EQ(d.at("launchConfigurationName").string_value(), "mylc");
  EXPECT_FALSE(d.contains("status"));             // <Status/>
  EXPECT_FALSE(d.contains("availabilityZones"));  // <AvailabilityZones/>
  const auto& tags = d.at("tags").struct_value().fields();
  EXPECT_EQ(tags.at("PHANTOM_DEFINITION").string_value(), "error_overflow_n_preserving");
  EXPECT_EQ(tags.at("clouds").string_value(), "hotel:2");
  EXPECT_EQ(tags.at("empty").string_value(), "");
  const auto& instances = d.at("instances").list_value().values();
  ASSERT_EQ(instances.size(), 2);
  const auto& first = instances[0].struct_value().fields();
  EXPECT_EQ(first.at("instanceId").string_value(), "i-14a3d7df");
  EXPECT_EQ(first.at("availabilityZone").string_value(), "hotel");
  EXPECT_EQ(first.at("lifecycleState").string_value(), "600-RUNNING");
  EXPECT_EQ(first.at("healthStatus").string_value(), "Healthy");
  EXPECT_EQ(first.at("launchConfigurationName").string_value(), "mylc");
  const auto& second = instances[1].struct_value().fields();
  EXPECT_FALSE(second.contains("instanceId"));  // none yet (200-REQUESTED)
  EXPECT_EQ(second.at("healthStatus").string_value(), "Unhealthy waiting for the IaaS");

  // AWS's DefaultCooldown, and the lists AWS fills.
  constexpr absl::string_view kAwsGroups =
      R"(<DescribeAutoScalingGroupsResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/"><DescribeAutoScalingGroupsResult><AutoScalingGroups><member><AutoScalingGroupName>web</AutoScalingGroupName><LaunchConfigurationName>web</LaunchConfigurationName><MinSize>1</MinSize><MaxSize>3</MaxSize><DesiredCapacity>1</DesiredCapacity><DefaultCooldown>300</DefaultCooldown><HealthCheckType>EC2</HealthCheckType><HealthCheckGracePeriod>60</HealthCheckGracePeriod><AvailabilityZones><member>us-east-1a</member></AvailabilityZones><LoadBalancerNames><member>lb-1</member></LoadBalancerNames><VPCZoneIdentifier>subnet-1</VPCZoneIdentifier><Instances/></member></AutoScalingGroups></DescribeAutoScalingGroupsResult></DescribeAutoScalingGroupsResponse>)";
  r = aws::ParseQueryResponse("DescribeAutoScalingGroups", kAwsGroups);
  ASSERT_TRUE(r.ok()) << r.status();
  groups = ParseGroups(*r->result);
  ASSERT_TRUE(groups.ok()) << groups.status();
  const v1::ScalingGroup aws = GroupFromWire(Dialect::kAws, "lab", groups->front());
  const auto& a = aws.provider_details().fields();
  EXPECT_EQ(a.at("cooldown").string_value(), "300");
  EXPECT_EQ(a.at("healthCheckType").string_value(), "EC2");
  EXPECT_EQ(a.at("healthCheckGracePeriod").string_value(), "60");
  EXPECT_EQ(a.at("vpcZoneIdentifier").string_value(), "subnet-1");
  EXPECT_EQ(a.at("availabilityZones").list_value().values(0).string_value(), "us-east-1a");
  EXPECT_EQ(a.at("loadBalancerNames").list_value().values(0).string_value(), "lb-1");
  EXPECT_FALSE(a.contains("instances"));
}

TEST(PhantomWireTest, LaunchConfigsPerSite) {
  v1::LaunchTemplate t;
  t.set_image("accounts/lab/images/hello-phantom.gz");
  t.set_machine_type("accounts/lab/machineTypes/m1.small");
  t.set_user_data("#!/bin/sh\n");
  t.add_locations()->set_location("accounts/lab/locations/hotel");
  auto* ec2 = t.add_locations();
  ec2->set_location("accounts/lab/locations/ec2");
  ec2->set_image("ami-1");
  auto specs = LaunchConfigsFor(Dialect::kPhantom, "web", t, "");
  ASSERT_TRUE(specs.ok()) << specs.status();
  ASSERT_EQ(specs->size(), 2u);
  EXPECT_EQ((*specs)[0].name, "web@hotel");
  EXPECT_EQ((*specs)[1].name, "web@ec2");
  EXPECT_EQ((*specs)[1].image_id, "ami-1");
  EXPECT_EQ(aws::EncodeQueryParams(CreateLaunchConfigParams((*specs)[0])),
            "ImageId=hello-phantom.gz&InstanceMonitoring.Enabled=false&InstanceType=m1.small&"
            "LaunchConfigurationName=web%40hotel&UserData=IyEvYmluL3NoCg%3D%3D");

  // AWS has no per-location launch settings; Phantom needs a site.
  EXPECT_EQ(GetBadRequest(LaunchConfigsFor(Dialect::kAws, "web", t, "").status())
                ->field_violations(0).field(),
            "launch_template.locations");
  t.clear_locations();
  EXPECT_EQ(LaunchConfigsFor(Dialect::kPhantom, "web", t, "").status().code(),
            absl::StatusCode::kInvalidArgument);
  t.clear_image();
  EXPECT_EQ(GetBadRequest(LaunchConfigsFor(Dialect::kAws, "web", t, "").status())
                ->field_violations(0).field(),
            "launch_template.image");
}

TEST(PhantomWireTest, GroupParamsCarryPhantomPolicyTags) {
  v1::ScalingGroup g;
  g.set_launch_template("accounts/lab/launchTemplates/web");
  g.set_target_size(2);
  g.add_locations("accounts/lab/locations/hotel");
  auto spec = GroupSpecFor(Dialect::kPhantom, "grp", "lab", g, "");
  ASSERT_TRUE(spec.ok()) << spec.status();
  const std::string encoded = aws::EncodeQueryParams(CreateGroupParams(Dialect::kPhantom, *spec));
  EXPECT_TRUE(absl::StrContains(encoded, "MaxSize=2&MinSize=2")) << encoded;
  EXPECT_TRUE(absl::StrContains(encoded, "Tags.member.2.Value=hotel%3A2")) << encoded;
  EXPECT_TRUE(absl::StrContains(encoded, "Tags.member.1.Value=error_overflow_n_preserving"));
  g.set_min_size(1);
  EXPECT_EQ(GetBadRequest(GroupSpecFor(Dialect::kPhantom, "grp", "lab", g, "").status())
                ->field_violations(0).field(),
            "scaling_group.min_size");
  auto aws_spec = GroupSpecFor(Dialect::kAws, "grp", "lab", g, "");
  ASSERT_TRUE(aws_spec.ok());
  EXPECT_EQ(aws_spec->min_size, 1);
  EXPECT_EQ(aws_spec->max_size, 2);
  EXPECT_FALSE(absl::StrContains(
      aws::EncodeQueryParams(CreateGroupParams(Dialect::kAws, *aws_spec)), "Tags"));
}

TEST(PhantomWireTest, TokenAnswers) {
  auto ok = ParseTokenResponse(200, R"({"token":"3ti-0b7e6c0f6f1d2a3b4c5d","user":1,"success":true})");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->user_id, "1");
  // HTTP 200 + success:false is an auth failure with the pinned tokenapi.
  EXPECT_EQ(ParseTokenResponse(
                200, R"({"success":false,"errors":"Unable to log you in, please try again."})")
                .status()
                .code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(ParseTokenResponse(401, "").status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(ParseTokenResponse(200, "nope").status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(StatusFromRest(403, "Authorization Required", "GET /sites").code(),
            absl::StatusCode::kUnauthenticated);
}

TEST(PhantomWireTest, Sites) {
  auto sites = ParseSites(
      R"([{"id":"sierra","instance_types":["m1.small"],"credentials":"/api/dev/credentials/sites/sierra","uri":"/api/dev/sites/sierra"},{"id":"hotel","instance_types":["m1.small","m1.large"],"uri":"/api/dev/sites/hotel"}])",
      "lab");
  ASSERT_TRUE(sites.ok()) << sites.status();
  ASSERT_EQ(sites->size(), 2u);
  EXPECT_EQ((*sites)[0].name(), "accounts/lab/locations/hotel");
  EXPECT_EQ((*sites)[0].kind(), v1::Location::SITE);
}

// Poll tokens are typed now (phantom_tokens.proto); phantom_adapter_test
// covers their round trip and refusals.
TEST(PhantomWireTest, Names) {
  EXPECT_EQ(*IdFromName("name", "lab", "scalingGroups", "accounts/lab/scalingGroups/a-1"), "a-1");
  EXPECT_EQ(IdFromName("name", "lab", "scalingGroups", "accounts/x/scalingGroups/a").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(IdFromName("name", "lab", "scalingGroups", "accounts/lab/scalingGroups/a@b")
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace cloudplane::adapters::phantom

namespace cloudplane::adapters::phantom {
namespace {

// phantom_wire_fuzz: a REST error body's raw bytes reached the status
// message, cut at byte 300 wherever that fell.
TEST(PhantomWireTest, RestErrorMessagesAreRepairedAndCutBetweenCharacters) {
  absl::Status s = StatusFromRest(500, "/api/dev/crede\xFF\xFFials", "GET /sites");
  EXPECT_TRUE(IsValidUtf8(s.message())) << s;
  s = StatusFromRest(404, std::string(299, 'x') + "\xC3\xA9", "GET /sites");
  EXPECT_TRUE(IsValidUtf8(s.message())) << s;
}

}  // namespace
}  // namespace cloudplane::adapters::phantom
