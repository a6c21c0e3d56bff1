#include "adapters/enstratus/enstratus_wire.h"

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "adapters/common/testing/fixtures.h"
#include "base/errors.h"
#include "cloudplane/v1/common.pb.h"
#include "google/rpc/error_details.pb.h"
#include "gmock/gmock.h"
#include "google/protobuf/empty.pb.h"
#include "gtest/gtest.h"
#include "rapidjson/document.h"

namespace cloudplane::adapters::enstratus {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

// A recorded payload (@shared_fixtures//:enstratus, the scrubbed responses
// of the mixcoatl test suite); a missing one fails the test.
std::string Fixture(absl::string_view rel) {
  return testutil::ReadFixture(absl::StrCat("enstratus/", rel));
}

size_t CountOf(const std::string& json, const char* key) {
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember(key)) return 0;
  return doc[key].Size();
}

// ---------------------------------------------------------------------------
// Signing: the two worked examples of the reference (§2), byte for byte.

TEST(SignatureTest, ReferenceExampleOne) {
  const std::string to_sign =
      StringToSign("AKEXAMPLE0001", "GET", "/api/enstratus/2015-05-25/infrastructure/Server",
                   1420070400000, "mixcoatl");
  EXPECT_EQ(to_sign,
            "AKEXAMPLE0001:GET:/api/enstratus/2015-05-25/infrastructure/Server:1420070400000:"
            "mixcoatl");
  EXPECT_EQ(Signature("s3cr3t/EXAMPLE+key=", to_sign),
            "WOW4nf7bxToaGgGDP6MNjKgUFIQUhnL+eeAtGaS4tYc=");
}

TEST(SignatureTest, ReferenceExampleTwoMixcoatlKeys) {
  const std::string to_sign = StringToSign("abcdefg", "GET", "/api/enstratus/2014-07-30/admin/Job/2",
                                           1356377753158, "mixcoatl");
  EXPECT_EQ(to_sign, "abcdefg:GET:/api/enstratus/2014-07-30/admin/Job/2:1356377753158:mixcoatl");
  EXPECT_EQ(Signature("gfedcba", to_sign), "ndQq/moErtTErz7I+9a+uDgH67aIhxskWZMeIOVoaBM=");
}

TEST(SignatureTest, SignedHeadersCarryKeyTimestampAndSignature) {
  auto headers = SignedHeaders({"abcdefg", "gfedcba"}, "GET",
                               "/api/enstratus/2014-07-30/admin/Job/2", 1356377753158, "mixcoatl");
  EXPECT_THAT(headers,
              ElementsAre(std::pair<std::string, std::string>("x-esauth-access", "abcdefg"),
                          std::pair<std::string, std::string>("x-esauth-timestamp",
                                                              "1356377753158"),
                          std::pair<std::string, std::string>(
                              "x-esauth-signature",
                              "ndQq/moErtTErz7I+9a+uDgH67aIhxskWZMeIOVoaBM="),
                          std::pair<std::string, std::string>("x-es-details", "basic"),
                          std::pair<std::string, std::string>("Accept", "application/json")));
}

TEST(ApiKeysTest, SplitsAtTheFirstColonAndNeverEchoesTheSecret) {
  auto keys = ParseApiKeys("AK1:se:cr:et");
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ(keys->access_key, "AK1");
  EXPECT_EQ(keys->secret_key, "se:cr:et");
  for (absl::string_view bad : {"", "nocolon-secretvalue", ":secretvalue", "AK1:"}) {
    auto s = ParseApiKeys(bad);
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(s.status().message()), ::testing::Not(HasSubstr("secretvalue")));
  }
}

// ---------------------------------------------------------------------------
// Every recorded response of the resources the adapter reads parses.

TEST(FixturesTest, ServersParse) {
  const std::string json = Fixture("unit/infrastructure/server.json");
  Aliases aliases;
  aliases.instances[322765] = "debug";
  auto servers = ParseServers(json, "dcm", aliases);
  ASSERT_TRUE(servers.ok()) << servers.status();
  ASSERT_EQ(servers->size(), CountOf(json, "servers"));
  const v1::Instance& first = servers->front();
  EXPECT_EQ(first.name(), "accounts/dcm/instances/debug");
  EXPECT_EQ(first.display_name(), "skang-debug-script-dev");
  EXPECT_EQ(first.provider_state(), "PAUSED");
  EXPECT_EQ(first.state(), v1::Instance::SUSPENDED);
  EXPECT_EQ(first.billing_code(), "accounts/dcm/billingCodes/10287");
  EXPECT_THAT(first.firewalls(), ElementsAre("accounts/dcm/firewalls/119182"));
  EXPECT_EQ(first.labels().at("label"), "iconstar");
  EXPECT_TRUE(first.has_create_time());
  EXPECT_EQ(first.provider_details().fields().at("providerId").string_value(), "i-2b2f4411");
  for (const v1::Instance& s : *servers) {
    EXPECT_TRUE(s.state() == v1::Instance::RUNNING || s.state() == v1::Instance::SUSPENDED)
        << s.provider_state();
    EXPECT_TRUE(absl::StartsWith(s.location(), "accounts/dcm/locations/dc-")) << s.location();
    EXPECT_TRUE(absl::StartsWith(s.image(), "accounts/dcm/images/")) << s.image();
  }
}

TEST(FixturesTest, JobsParse) {
  auto jobs = ParseJobs(Fixture("unit/admin/job.json"));
  ASSERT_TRUE(jobs.ok()) << jobs.status();
  ASSERT_GE(jobs->size(), 2u);
  EXPECT_EQ((*jobs)[1].id, 2);
  EXPECT_EQ((*jobs)[1].status, "COMPLETE");
  EXPECT_EQ((*jobs)[1].message, "339452");
  EXPECT_TRUE((*jobs)[1].end.has_value());
  auto running = ParseJobs(Fixture("py_literals/job.jobs.json"));
  ASSERT_TRUE(running.ok()) << running.status();
  EXPECT_EQ(running->front().status, "RUNNING");
  EXPECT_FALSE(running->front().end.has_value());
  auto one = ParseFirstJob(Fixture("py_literals/job.one_job.json"));
  ASSERT_TRUE(one.ok()) << one.status();
  // The inline launch answer of the mixcoatl tests (§10).
  auto launch = ParseFirstJob(R"({"jobs":[{"jobId":84322,"status":"RUNNING"}]})");
  ASSERT_TRUE(launch.ok());
  EXPECT_EQ(launch->id, 84322);
}

absl::Time Parsed(const char* rfc3339) {
  absl::Time t;
  std::string err;
  EXPECT_TRUE(absl::ParseTime(absl::RFC3339_full, rfc3339, &t, &err)) << err;
  return t;
}

int64_t Seconds(const google::protobuf::Timestamp& ts) { return ts.seconds(); }

TEST(FixturesTest, JobsBecomeProviderOperations) {
  auto jobs = ParseJobs(Fixture("unit/admin/job.json"));
  ASSERT_TRUE(jobs.ok()) << jobs.status();
  ASSERT_EQ(jobs->size(), 5u);

  // jobId 2: a COMPLETE launch; its message is the new server's id.
  google::longrunning::Operation done = JobToOperation((*jobs)[1], "dcm");
  EXPECT_EQ(done.name(), "accounts/dcm/providerOperations/2");
  EXPECT_TRUE(done.done());
  EXPECT_FALSE(done.has_error());
  EXPECT_TRUE(done.response().Is<google::protobuf::Empty>());
  v1::OperationMetadata md;
  ASSERT_TRUE(done.metadata().UnpackTo(&md));
  EXPECT_EQ(md.account(), "accounts/dcm");
  EXPECT_EQ(md.provider_operation(), "2");
  EXPECT_EQ(md.status_detail(), "COMPLETE: Launch Server dpando-CentosLB; message: 339452");
  EXPECT_EQ(Seconds(md.create_time()), absl::ToUnixSeconds(Parsed("2013-01-08T21:29:22Z")));
  EXPECT_EQ(md.create_time().nanos(), 733000000);
  EXPECT_EQ(Seconds(md.end_time()), absl::ToUnixSeconds(Parsed("2013-01-08T21:29:59Z")));
  EXPECT_EQ(Seconds(md.update_time()), Seconds(md.end_time()));

  // jobId 4: RUNNING, although the fixture gives it an endDate.
  google::longrunning::Operation running = JobToOperation((*jobs)[3], "dcm");
  EXPECT_FALSE(running.done());
  ASSERT_TRUE(running.metadata().UnpackTo(&md));
  EXPECT_EQ(md.status_detail(), "RUNNING: Grant Access to 13516");
  EXPECT_FALSE(md.has_end_time());
  EXPECT_TRUE(md.has_update_time());

  // jobId 5: ERROR -> a failed Operation with DCM's message.
  google::longrunning::Operation failed = JobToOperation((*jobs)[4], "dcm");
  EXPECT_TRUE(failed.done());
  ASSERT_TRUE(failed.has_error());
  EXPECT_EQ(failed.error().code(), static_cast<int>(absl::StatusCode::kUnknown));
  EXPECT_EQ(failed.error().message(), "kaboom!");
  ASSERT_EQ(failed.error().details_size(), 1);
  google::rpc::ErrorInfo info;
  ASSERT_TRUE(failed.error().details(0).UnpackTo(&info));
  EXPECT_EQ(info.reason(), "PROVIDER_JOB_FAILED");
  EXPECT_EQ(info.domain(), "cloudplane.dev");
  EXPECT_EQ(info.metadata().at("jobId"), "5");
  EXPECT_EQ(info.metadata().at("providerMessage"), "kaboom!");

  // A RUNNING job without endDate or message (mixcoatl's job literals).
  auto literal = ParseJobs(Fixture("py_literals/job.jobs.json"));
  ASSERT_TRUE(literal.ok()) << literal.status();
  google::longrunning::Operation first = JobToOperation(literal->front(), "dcm");
  EXPECT_EQ(first.name(), "accounts/dcm/providerOperations/76113");
  EXPECT_FALSE(first.done());
  ASSERT_TRUE(first.metadata().UnpackTo(&md));
  EXPECT_EQ(md.status_detail(), "RUNNING: Launch Server mixcoatl-jvincent-1356377753158");
  EXPECT_EQ(Seconds(md.update_time()), Seconds(md.create_time()));
  EXPECT_FALSE(md.has_end_time());

  // An ERROR without a message still says what failed.
  Job bare;
  bare.id = 7;
  bare.status = "ERROR";
  EXPECT_EQ(JobToOperation(bare, "dcm").error().message(),
            "enStratus job 7 failed without a message");

  // Paging keys sort like the ids.
  EXPECT_LT(JobKey(9), JobKey(10));
  EXPECT_LT(JobKey(84322), JobKey(100000));
}

TEST(FixturesTest, FirewallsAndRulesParse) {
  for (const char* f : {"py_literals/firewall.all_firewalls.json",
                        "py_literals/firewall.one_firewall.json"}) {
    const std::string json = Fixture(f);
    auto fws = ParseFirewalls(json, "dcm", {});
    ASSERT_TRUE(fws.ok()) << f << ": " << fws.status();
    EXPECT_EQ(fws->size(), CountOf(json, "firewalls"));
  }
  auto one = ParseFirewalls(Fixture("py_literals/firewall.one_firewall.json"), "dcm", {});
  EXPECT_EQ(one->front().name(), "accounts/dcm/firewalls/116387");
  EXPECT_EQ(one->front().location(), "accounts/dcm/locations/region-19344");
  for (const char* f : {"py_literals/firewall.firewall_rules.json",
                        "py_literals/firewall.one_firewall_rule.json",
                        "py_literals/firewall.no_rules.json"}) {
    const std::string json = Fixture(f);
    auto rules = ParseFirewallRules(json, "dcm", {});
    ASSERT_TRUE(rules.ok()) << f << ": " << rules.status();
    EXPECT_EQ(rules->size(), CountOf(json, "rules"));
  }
  auto rule = ParseFirewallRules(Fixture("py_literals/firewall.one_firewall_rule.json"), "dcm",
                                 {});
  const v1::FirewallRule& r = rule->front();
  EXPECT_EQ(r.name(), "accounts/dcm/firewalls/116387/rules/3706471");
  EXPECT_EQ(r.direction(), v1::FirewallRule::INGRESS);
  EXPECT_EQ(r.action(), v1::FirewallRule::ALLOW);
  EXPECT_EQ(r.protocol(), "tcp");
  EXPECT_EQ(r.port_range_start(), 2003);
  EXPECT_THAT(r.source_ranges(), ElementsAre("217.240.165.28/32"));
  EXPECT_TRUE(r.destination_ranges().empty());
}

TEST(FixturesTest, CatalogParses) {
  for (const char* f : {"py_literals/region.all_regions.json", "py_literals/region.one_region.json"}) {
    const std::string json = Fixture(f);
    auto regions = ParseRegions(json, "dcm");
    ASSERT_TRUE(regions.ok()) << f << ": " << regions.status();
    EXPECT_EQ(regions->size(), CountOf(json, "regions"));
  }
  for (const char* f : {"py_literals/datacenter.all_datacenters.json",
                        "py_literals/datacenter.one_datacenter.json"}) {
    const std::string json = Fixture(f);
    auto dcs = ParseDataCenters(json, "dcm");
    ASSERT_TRUE(dcs.ok()) << f << ": " << dcs.status();
    EXPECT_EQ(dcs->size(), CountOf(json, "dataCenters"));
  }
  auto dc = ParseDataCenters(Fixture("py_literals/datacenter.one_datacenter.json"), "dcm");
  EXPECT_EQ(dc->front().name(), "accounts/dcm/locations/dc-64351");
  EXPECT_EQ(dc->front().parent_location(), "accounts/dcm/locations/region-19344");
  EXPECT_EQ(dc->front().kind(), v1::Location::DATACENTER);
  for (const char* f : {"py_literals/machine_image.all_machine_images.json",
                        "py_literals/machine_image.one_image.json"}) {
    const std::string json = Fixture(f);
    auto images = ParseMachineImages(json, "dcm");
    ASSERT_TRUE(images.ok()) << f << ": " << images.status();
    EXPECT_EQ(images->size(), CountOf(json, "images"));
  }
  auto image = ParseMachineImages(Fixture("py_literals/machine_image.one_image.json"), "dcm");
  EXPECT_EQ(image->front().name(), "accounts/dcm/images/284542");
  EXPECT_EQ(image->front().architecture(), "x86_64");
  EXPECT_EQ(image->front().os(), "linux");
  EXPECT_EQ(image->front().state(), v1::Image::READY);
  for (const char* f : {"py_literals/server_product.all_products.json",
                        "py_literals/server_product.one_product.json"}) {
    const std::string json = Fixture(f);
    auto products = ParseServerProducts(json, "dcm");
    ASSERT_TRUE(products.ok()) << f << ": " << products.status();
    EXPECT_EQ(products->size(), CountOf(json, "serverProducts"));
  }
  auto product = ParseFirstProduct(Fixture("py_literals/server_product.one_product.json"));
  ASSERT_TRUE(product.ok()) << product.status();
  EXPECT_EQ(product->product_id, 693);
  EXPECT_EQ(product->provider_product_id, "c1.medium");
  auto types = ParseServerProducts(Fixture("py_literals/server_product.one_product.json"), "dcm");
  EXPECT_EQ(types->front().memory_bytes(), int64_t{1700} << 20);
  EXPECT_EQ(types->front().disk_bytes(), int64_t{350} << 30);
  EXPECT_EQ(types->front().cpu_count(), 2);
}

TEST(FixturesTest, BillingCodesAndVolumesParse) {
  const std::string codes_json = Fixture("unit/admin/billing_code.json");
  auto codes = ParseBillingCodes(codes_json, "dcm");
  ASSERT_TRUE(codes.ok()) << codes.status();
  EXPECT_EQ(codes->size(), CountOf(codes_json, "billingCodes"));
  EXPECT_EQ(codes->front().name(), "accounts/dcm/billingCodes/10287");
  EXPECT_EQ(codes->front().finance_code(), "DEF");
  EXPECT_EQ(codes->front().state(), v1::BillingCode::ACTIVE);
  EXPECT_EQ(codes->front().currency(), "USD");
  const std::string volumes_json = Fixture("unit/infrastructure/volume.json");
  auto volumes = ParseVolumes(volumes_json, "dcm", {});
  ASSERT_TRUE(volumes.ok()) << volumes.status();
  EXPECT_EQ(volumes->size(), CountOf(volumes_json, "volumes"));
  EXPECT_EQ(volumes->front().size_bytes(), int64_t{8} << 30);
  EXPECT_THAT(volumes->front().attached_to(), ElementsAre("accounts/dcm/instances/322765"));
  EXPECT_EQ(volumes->front().state(), v1::Volume::ATTACHED);
  EXPECT_EQ((*volumes)[3].state(), v1::Volume::AVAILABLE);  // 211986: no server
  // Aliases name volumes and the servers they are attached to.
  Aliases aliases;
  aliases.volumes[211309] = "boot-disk";
  aliases.instances[322765] = "web-1";
  auto aliased = ParseVolumes(volumes_json, "dcm", aliases);
  ASSERT_TRUE(aliased.ok()) << aliased.status();
  EXPECT_EQ(aliased->front().name(), "accounts/dcm/volumes/boot-disk");
  EXPECT_THAT(aliased->front().attached_to(), ElementsAre("accounts/dcm/instances/web-1"));

  auto first = ParseFirstVolume(volumes_json);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->volume_id, 211309);
  EXPECT_EQ(first->server_id, 322765);
  EXPECT_EQ(first->status, "ACTIVE");
  EXPECT_EQ(ParseFirstVolume(R"({"volumes":[]})").status().code(), absl::StatusCode::kInternal);
  auto detached = ParseFirstVolume(R"({"volumes":[{"volumeId":"211986","status":"ACTIVE"}]})");
  ASSERT_TRUE(detached.ok()) << detached.status();
  EXPECT_EQ(detached->volume_id, 211986);
  EXPECT_FALSE(detached->server_id.has_value());
}

// The addVolume body is the mixcoatl docs' example (create_volume.json), key
// order aside.
TEST(FixturesTest, AddVolumeBodyMatchesTheDocsExample) {
  VolumeSpec spec;
  spec.name = "API Test Volume";
  spec.description = "API Test Volume";
  spec.data_center_id = 218;
  spec.size_gb = 1;
  spec.budget = 201;
  rapidjson::Document ours, docs;
  const std::string body = AddVolumeBody(spec);
  ours.Parse(body.data(), body.size());
  const std::string example = Fixture("docs_request_examples/create_volume.json");
  docs.Parse(example.data(), example.size());
  ASSERT_FALSE(ours.HasParseError());
  ASSERT_FALSE(docs.HasParseError());
  EXPECT_TRUE(ours == docs) << body << "\n" << example;
  spec.label = "blue";
  EXPECT_THAT(AddVolumeBody(spec), HasSubstr(R"("label":"blue")"));
}

// ---------------------------------------------------------------------------

TEST(WireTest, MalformedPayloadsAreInternalNeverCrashes) {
  for (absl::string_view bad : {"", "{", "[]", "{\"servers\":3}", "{\"servers\":[3]}",
                                "{\"servers\":[{\"name\":\"x\"}]}", "{\"other\":[]}"}) {
    auto s = ParseServers(bad, "dcm", {});
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInternal) << bad;
    ASSERT_TRUE(GetErrorInfo(s.status()).has_value());
    EXPECT_EQ(GetErrorInfo(s.status())->reason(), "PROVIDER_MALFORMED_RESPONSE");
  }
  EXPECT_EQ(ParseFirstJob("{\"jobs\":[]}").status().code(), absl::StatusCode::kInternal);
}

TEST(WireTest, ErrorsMapToCodes) {
  absl::Status s = StatusFromResponse(404, R"({"error": {"message": "No such job ID: 5"}})",
                                      "GET job 5");
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(s.message()), HasSubstr("No such job ID: 5"));
  EXPECT_EQ(GetErrorInfo(s)->metadata().at("httpStatus"), "404");
  EXPECT_EQ(GetErrorInfo(s)->metadata().at("providerMessage"), "No such job ID: 5");
  EXPECT_EQ(StatusFromResponse(403, R"({"error":{"message":"Invalid access keys"}})", "x").code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(StatusFromResponse(401, "", "x").code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(StatusFromResponse(400, "{}", "x").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(StatusFromResponse(409, "{}", "x").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(StatusFromResponse(500, "oops", "x").code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(StatusFromResponse(503, "", "x").code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(StatusFromResponse(501, "", "x").code(), absl::StatusCode::kUnimplemented);
  EXPECT_TRUE(StatusFromResponse(202, "", "x").ok());
}

TEST(WireTest, BodiesHaveTheOperationEnvelope) {
  LaunchSpec spec;
  spec.name = "web-1";
  spec.description = "front end";
  spec.provider_product_id = "m1.large";
  spec.machine_image_id = 284831;
  spec.data_center_id = 64716;
  spec.budget = 10287;
  spec.keypair = "kp";
  spec.firewall_ids = {117164};
  EXPECT_EQ(LaunchBody(spec),
            R"({"launch":[{"name":"web-1","description":"front end","product":{"productId":)"
            R"("m1.large"},"machineImage":{"machineImageId":284831},"dataCenter":)"
            R"({"dataCenterId":64716},"budget":10287,"keypair":"kp","firewalls":)"
            R"([{"firewallId":117164}]}]})");
  EXPECT_EQ(AddFirewallBody({"web", "web tier", "blue", 19344, 10287}),
            R"({"addFirewall":[{"budget":10287,"region":{"regionId":19344},"name":"web",)"
            R"("description":"web tier","label":"blue"}]})");
  EXPECT_EQ(ServerActionBody("start", ""), R"({"start":[{}]})");
  EXPECT_EQ(ServerActionBody("stop", "x"), R"({"stop":[{"reason":"x"}]})");
  // Volume actions (§7 "Other bodies").
  EXPECT_EQ(AttachVolumeBody(338941, "/dev/sdf"),
            R"({"attach":[{"server":{"serverId":338941},"deviceId":"/dev/sdf"}]})");
  EXPECT_EQ(AttachVolumeBody(338941, ""), R"({"attach":[{"server":{"serverId":338941}}]})");
  EXPECT_EQ(DetachVolumeBody(), R"({"detach":[{}]})");

  v1::FirewallRule rule;
  rule.set_protocol("tcp");
  rule.set_port_range_start(22);
  rule.add_source_ranges("10.0.0.0/8");
  auto body = AddRuleBody(116387, rule);
  ASSERT_TRUE(body.ok()) << body.status();
  EXPECT_EQ(*body,
            R"({"addRule":[{"firewallId":116387,"source":"10.0.0.0/8","sourceType":"CIDR",)"
            R"("destination":"116387","destinationType":"GLOBAL","direction":"INGRESS",)"
            R"("permission":"ALLOW","protocol":"TCP","startPort":22,"endPort":22,)"
            R"("reason":"Added by cloudplane"}]})");
  rule.add_source_ranges("10.1.0.0/16");
  rule.set_protocol("gre");
  auto bad = AddRuleBody(1, rule);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(GetBadRequest(bad.status()).has_value());
  EXPECT_EQ(GetBadRequest(bad.status())->field_violations_size(), 2);
}

TEST(NamesTest, AliasesAndIds) {
  EXPECT_TRUE(IsValidAlias("web-1"));
  EXPECT_FALSE(IsValidAlias("1web"));
  EXPECT_FALSE(IsValidAlias("Web"));
  EXPECT_FALSE(IsValidAlias(""));
  EXPECT_EQ(ParseDcmId("339452"), 339452);
  EXPECT_EQ(ParseDcmId("web-1"), std::nullopt);
  EXPECT_EQ(ParseDcmId("-1"), std::nullopt);
  auto dc = ParseLocationSegment("dc-64716");
  ASSERT_TRUE(dc.has_value());
  EXPECT_EQ(dc->kind, LocationRef::kDataCenter);
  EXPECT_EQ(dc->id, 64716);
  EXPECT_FALSE(ParseLocationSegment("zrh").has_value());
  EXPECT_EQ(*SegmentOf("name", "dcm", "instances", "accounts/dcm/instances/web-1"), "web-1");
  EXPECT_EQ(SegmentOf("name", "dcm", "instances", "accounts/other/instances/web-1").status().code(),
            absl::StatusCode::kInvalidArgument);
  auto rule = RuleSegmentsOf("name", "dcm", "accounts/dcm/firewalls/web/rules/17");
  ASSERT_TRUE(rule.ok());
  EXPECT_EQ(rule->first, "web");
  EXPECT_EQ(rule->second, "17");
}

TEST(TagsTest, DescriptionsCarryTheOperationAndListsShowIt) {
  const std::string tagged = TaggedDescription("web one", "operations/00ab");
  EXPECT_EQ(tagged, "web one [cloudplane operations/00ab]");
  EXPECT_EQ(OperationOfDescription(tagged), "operations/00ab");
  EXPECT_EQ(UntaggedDescription(tagged), "web one");
  EXPECT_EQ(TaggedDescription("web one", ""), "web one");
  for (const char* plain : {"web one", "", "[cloudplane ]", "a [cloudplane x y]", "x [y]"}) {
    EXPECT_EQ(OperationOfDescription(plain), "") << plain;
    EXPECT_EQ(UntaggedDescription(plain), plain);
  }
  // The recorded servers carry no tag; a listed server with one is found.
  auto recorded = ParseTaggedItems(Fixture("unit/infrastructure/server.json"), "servers",
                                   "serverId");
  ASSERT_TRUE(recorded.ok()) << recorded.status();
  ASSERT_FALSE(recorded->empty());
  EXPECT_EQ(recorded->front().id, 322765);
  for (const TaggedItem& item : *recorded) EXPECT_EQ(item.operation, "");
  auto listed = ParseTaggedItems(
      R"({"volumes":[{"volumeId":7,"description":"d [cloudplane operations/1]"},)"
      R"({"volumeId":8}]})",
      "volumes", "volumeId");
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].operation, "operations/1");
  EXPECT_EQ((*listed)[1].operation, "");
  EXPECT_EQ(ParseTaggedItems(R"({"volumes":[{"description":"x"}]})", "volumes", "volumeId")
                .status()
                .code(),
            absl::StatusCode::kInternal);
  // A firewall reads back with the description it was given.
  auto firewalls = ParseFirewalls(
      R"({"firewalls":[{"firewallId":5,"name":"web","description":"web tier )"
      R"([cloudplane operations/2]"}]})",
      "dcm", {});
  ASSERT_TRUE(firewalls.ok()) << firewalls.status();
  EXPECT_EQ(firewalls->front().description(), "web tier");
}

TEST(TagsTest, ARuleIsRecognisedByWhatAddRuleSends) {
  v1::FirewallRule wanted;
  wanted.set_protocol("TCP");
  wanted.set_port_range_start(443);
  wanted.add_source_ranges("0.0.0.0/0");
  // As DCM lists the rule AddRuleBody made (INGRESS from anywhere, ALLOW).
  auto listed = ParseFirewallRules(
      R"({"rules":[{"firewallRuleId":9,"firewall":{"firewallId":5},"direction":"INGRESS",)"
      R"("permission":"ALLOW","protocol":"TCP","startPort":443,"endPort":443,)"
      R"("sourceType":"CIDR","source":"0.0.0.0/0","destinationType":"GLOBAL",)"
      R"("destination":"5"}]})",
      "dcm", {});
  ASSERT_TRUE(listed.ok()) << listed.status();
  const v1::FirewallRule& rule = listed->front();
  EXPECT_TRUE(SameRule(rule, wanted));
  v1::FirewallRule other = wanted;
  other.set_port_range_end(444);
  EXPECT_FALSE(SameRule(rule, other));
  other = wanted;
  other.add_source_ranges("10.0.0.0/8");
  EXPECT_FALSE(SameRule(rule, other));
  other = wanted;
  other.set_direction(v1::FirewallRule::EGRESS);
  EXPECT_FALSE(SameRule(rule, other));
  other = wanted;
  other.set_action(v1::FirewallRule::DENY);
  EXPECT_FALSE(SameRule(rule, other));
  other = wanted;
  other.set_protocol("udp");
  EXPECT_FALSE(SameRule(rule, other));
  other = wanted;
  other.set_description("another reason");  // not kept by DCM: the same rule
  EXPECT_TRUE(SameRule(rule, other));
  // Another firewall as the source is another rule.
  other = wanted;
  other.clear_source_ranges();
  other.add_source_firewalls("accounts/dcm/firewalls/5");
  EXPECT_FALSE(SameRule(rule, other));
}

// A DCM rule whose source is another firewall (type GLOBAL) reads as
// source_firewalls — by alias where the account has one — and never as an
// empty (once: "anywhere") source.
TEST(FirewallRulesTest, AFirewallSourceIsSourceFirewalls) {
  Aliases aliases;
  aliases.firewalls[116388] = "db";
  auto rules = ParseFirewallRules(
      R"({"rules":[{"firewallRuleId":9,"firewall":{"firewallId":116387},)"
      R"("direction":"INGRESS","permission":"ALLOW","protocol":"TCP","startPort":5432,)"
      R"("endPort":5432,"sourceType":"GLOBAL","source":"116388",)"
      R"("destinationType":"GLOBAL","destination":"116387"},)"
      R"({"firewallRuleId":10,"firewall":{"firewallId":116387},"direction":"INGRESS",)"
      R"("protocol":"TCP","startPort":22,"endPort":22,"sourceType":"GLOBAL",)"
      R"("source":"116387","destinationType":"GLOBAL","destination":"116387"},)"
      R"({"firewallRuleId":11,"firewall":{"firewallId":116387},"direction":"EGRESS",)"
      R"("protocol":"UDP","startPort":53,"endPort":53,"sourceType":"GLOBAL",)"
      R"("source":"116387","destinationType":"GLOBAL","destination":"777"},)"
      R"({"firewallRuleId":12,"firewall":{"firewallId":116387},"direction":"INGRESS",)"
      R"("protocol":"TCP","startPort":80,"endPort":80,"sourceType":"VM",)"
      R"("source":"331810","destinationType":"GLOBAL","destination":"116387"}]})",
      "dcm", aliases);
  ASSERT_TRUE(rules.ok()) << rules.status();
  ASSERT_EQ(rules->size(), 4u);
  const v1::FirewallRule& from_db = (*rules)[0];
  EXPECT_THAT(from_db.source_firewalls(), ElementsAre("accounts/dcm/firewalls/db"));
  EXPECT_TRUE(from_db.source_ranges().empty());
  EXPECT_TRUE(from_db.destination_firewalls().empty());  // the firewall itself
  EXPECT_TRUE(from_db.destination_ranges().empty());
  EXPECT_EQ(from_db.description(), "");
  // From members of the same firewall: the firewall names itself.
  EXPECT_THAT((*rules)[1].source_firewalls(), ElementsAre("accounts/dcm/firewalls/116387"));
  // EGRESS to another firewall.
  EXPECT_THAT((*rules)[2].destination_firewalls(), ElementsAre("accounts/dcm/firewalls/777"));
  EXPECT_TRUE((*rules)[2].source_firewalls().empty());
  // A VM source has no typed field: said, not left to read as anywhere.
  const v1::FirewallRule& from_vm = (*rules)[3];
  EXPECT_TRUE(from_vm.source_ranges().empty());
  EXPECT_TRUE(from_vm.source_firewalls().empty());
  EXPECT_EQ(from_vm.description(), "source VM 331810");
}

TEST(FirewallRulesTest, AddRuleSendsAFirewallSourceAsGlobal) {
  v1::FirewallRule rule;
  rule.set_protocol("tcp");
  rule.set_port_range_start(5432);
  rule.add_source_firewalls("accounts/dcm/firewalls/db");
  auto body = AddRuleBody(116387, rule, 116388);
  ASSERT_TRUE(body.ok()) << body.status();
  EXPECT_EQ(*body,
            R"({"addRule":[{"firewallId":116387,"source":"116388","sourceType":"GLOBAL",)"
            R"("destination":"116387","destinationType":"GLOBAL","direction":"INGRESS",)"
            R"("permission":"ALLOW","protocol":"TCP","startPort":5432,"endPort":5432,)"
            R"("reason":"Added by cloudplane"}]})");
  // Unresolved, or together with a CIDR: refused naming the field.
  EXPECT_EQ(GetBadRequest(AddRuleBody(116387, rule).status())->field_violations(0).field(),
            "rule.source_firewalls[0]");
  v1::FirewallRule both = rule;
  both.add_source_ranges("10.0.0.0/8");
  EXPECT_EQ(GetBadRequest(AddRuleBody(116387, both, 116388).status())->field_violations(0).field(),
            "rule.source_firewalls");
  // No source at all is no longer "anywhere".
  v1::FirewallRule none;
  none.set_protocol("tcp");
  none.set_port_range_start(22);
  EXPECT_EQ(GetBadRequest(AddRuleBody(116387, none).status())->field_violations(0).field(),
            "rule.source_ranges");
  // EGRESS to a firewall; the source is the firewall itself.
  v1::FirewallRule out;
  out.set_protocol("udp");
  out.set_port_range_start(53);
  out.set_direction(v1::FirewallRule::EGRESS);
  out.add_destination_firewalls("accounts/dcm/firewalls/777");
  body = AddRuleBody(116387, out, 777);
  ASSERT_TRUE(body.ok()) << body.status();
  EXPECT_THAT(*body, ::testing::HasSubstr(
                         R"("source":"116387","sourceType":"GLOBAL","destination":"777",)"
                         R"("destinationType":"GLOBAL","direction":"EGRESS")"));
  out.add_source_firewalls("accounts/dcm/firewalls/5");
  EXPECT_EQ(GetBadRequest(AddRuleBody(116387, out, 777).status())->field_violations(0).field(),
            "rule.source_firewalls");
}

}  // namespace
}  // namespace cloudplane::adapters::enstratus

namespace cloudplane::adapters::enstratus {
namespace {

// No recorded network payload exists (the fixtures have none); the record
// below carries the fields mixcoatl's Network class reads (§6 network/Network).
TEST(NetworkWire, AddNetworkBodyAndParse) {
  NetworkSpec spec;
  spec.name = "backend";
  spec.description = "backend tier";
  spec.label = "green";
  spec.cidr = "10.40.0.0/16";
  spec.dns_servers = {"10.40.0.2"};
  spec.region_id = 19344;
  spec.budget = 10287;
  EXPECT_EQ(AddNetworkBody(spec),
            R"({"addNetwork":[{"budget":10287,"name":"backend","networkAddress":"10.40.0.0/16",)"
            R"("description":"backend tier","region":{"regionId":19344},"label":"green",)"
            R"("dnsServers":["10.40.0.2"]}]})");
  spec.label.clear();
  spec.dns_servers.clear();
  EXPECT_EQ(AddNetworkBody(spec),
            R"({"addNetwork":[{"budget":10287,"name":"backend","networkAddress":"10.40.0.0/16",)"
            R"("description":"backend tier","region":{"regionId":19344}}]})");

  auto nets = ParseNetworks(
      R"({"networks":[{"networkId":42001,"name":"backend","description":"b [cloudplane )"
      R"(operations/x]","status":"ACTIVE","networkAddress":"10.40.0.0/16","label":"green",)"
      R"("region":{"regionId":19344},"dnsServers":["10.40.0.2"],"networkType":"STANDARD",)"
      R"("createdTimestamp":"2015-05-25T10:00:00.000+0000"},)"
      R"({"networkId":42002,"status":"PENDING"}]})",
      "dcm");
  ASSERT_TRUE(nets.ok()) << nets.status();
  ASSERT_EQ(nets->size(), 2u);
  const v1::Network& n = (*nets)[0];
  EXPECT_EQ(n.name(), "accounts/dcm/networks/42001");
  EXPECT_EQ(n.display_name(), "backend");
  EXPECT_EQ(n.state(), v1::Network::READY);
  EXPECT_EQ(n.provider_state(), "ACTIVE");
  ASSERT_EQ(n.cidr_ranges_size(), 1);
  EXPECT_EQ(n.cidr_ranges(0), "10.40.0.0/16");
  ASSERT_EQ(n.dns_servers_size(), 1);
  EXPECT_EQ(n.dns_servers(0), "10.40.0.2");
  EXPECT_EQ(n.location(), "accounts/dcm/locations/region-19344");
  EXPECT_EQ(n.labels().at("label"), "green");
  EXPECT_EQ(n.create_time().seconds(), 1432548000);
  EXPECT_EQ(n.provider_details().fields().at("description").string_value(), "b");
  EXPECT_EQ((*nets)[1].state(), v1::Network::PENDING);
  EXPECT_EQ(ParseNetworks(R"({"networks":[{"name":"x"}]})", "dcm").status().code(),
            absl::StatusCode::kInternal);
}

// A launch into a network sends mixcoatl's `"network":{"networkId":N}`
// (§7), after the firewalls and before the label.
TEST(NetworkWire, LaunchBodyNamesTheNetwork) {
  LaunchSpec spec;
  spec.name = "web-1";
  spec.description = "front end";
  spec.provider_product_id = "m1.large";
  spec.machine_image_id = 284831;
  spec.data_center_id = 64716;
  spec.budget = 10287;
  spec.firewall_ids = {117164};
  spec.label = "orange";
  spec.network_id = 42001;
  EXPECT_EQ(LaunchBody(spec),
            R"({"launch":[{"name":"web-1","description":"front end","product":{"productId":)"
            R"("m1.large"},"machineImage":{"machineImageId":284831},"dataCenter":)"
            R"({"dataCenterId":64716},"budget":10287,"firewalls":[{"firewallId":117164}],)"
            R"("network":{"networkId":42001},"label":"orange"}]})");
  spec.network_id = 0;
  EXPECT_THAT(LaunchBody(spec), Not(HasSubstr("network")));
}

// A server's `network` is its one interface, holding only the network; the
// recorded servers carry none (one has the deprecated `vlan`, which is not
// read as a network) and get no interface.
TEST(NetworkWire, ServersOnANetworkHaveItsInterface) {
  auto servers = ParseServers(
      R"({"servers":[{"serverId":5001,"name":"web","status":"RUNNING",)"
      R"("network":{"networkId":42001},"subnet":{"subnetId":7},)"
      R"("privateIpAddresses":["10.40.0.4"],"publicIpAddress":"1.1.1.1"},)"
      R"({"serverId":5002,"status":"RUNNING","network":{"networkId":"42002"}},)"
      R"({"serverId":5003,"status":"RUNNING","vlan":{"vlanId":2600}}]})",
      "dcm", {});
  ASSERT_TRUE(servers.ok()) << servers.status();
  ASSERT_EQ(servers->size(), 3u);
  const v1::Instance& on_net = (*servers)[0];
  ASSERT_EQ(on_net.network_interfaces_size(), 1);
  const v1::NetworkInterface& nic = on_net.network_interfaces(0);
  EXPECT_EQ(nic.network(), "accounts/dcm/networks/42001");
  EXPECT_EQ(nic.address(), "");
  EXPECT_EQ(nic.id(), "");
  EXPECT_EQ(nic.mac_address(), "");
  EXPECT_THAT(on_net.ip_addresses(), ElementsAre("1.1.1.1", "10.40.0.4"));
  EXPECT_EQ(on_net.provider_details().fields().at("subnet").struct_value().fields().at(
                "subnetId").number_value(),
            7);
  // An id sent as a string (§7: ids may arrive as strings) names it too.
  ASSERT_EQ((*servers)[1].network_interfaces_size(), 1);
  EXPECT_EQ((*servers)[1].network_interfaces(0).network(), "accounts/dcm/networks/42002");
  EXPECT_EQ((*servers)[2].network_interfaces_size(), 0);
  EXPECT_TRUE((*servers)[2].provider_details().fields().contains("vlan"));

  auto recorded = ParseServers(Fixture("unit/infrastructure/server.json"), "dcm", {});
  ASSERT_TRUE(recorded.ok()) << recorded.status();
  for (const v1::Instance& s : *recorded) EXPECT_EQ(s.network_interfaces_size(), 0) << s.name();
}

}  // namespace
}  // namespace cloudplane::adapters::enstratus
