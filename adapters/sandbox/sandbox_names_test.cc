#include "adapters/sandbox/sandbox_names.h"

#include <string>

#include "adapters/sandbox/unit_file.h"
#include "base/errors.h"
#include "gtest/gtest.h"

namespace cloudplane::adapters::sandbox {
namespace {

TEST(SandboxNamesTest, IdRule) {
  EXPECT_TRUE(IsValidId("a"));
  EXPECT_TRUE(IsValidId("web-1"));
  EXPECT_TRUE(IsValidId(std::string(63, 'a')));
  EXPECT_FALSE(IsValidId(""));
  EXPECT_FALSE(IsValidId("1web"));
  EXPECT_FALSE(IsValidId("web-"));
  EXPECT_FALSE(IsValidId("Web"));
  EXPECT_FALSE(IsValidId("web_1"));
  EXPECT_FALSE(IsValidId(std::string(64, 'a')));
}

TEST(SandboxNamesTest, UnitNamesFollowFleet) {
  EXPECT_TRUE(CheckUnitName("hello.service").ok());
  EXPECT_TRUE(CheckUnitName("web@1.service").ok());
  EXPECT_TRUE(CheckUnitName("web@.service").ok());
  EXPECT_TRUE(CheckUnitName("a:b_c\\x2d.socket").ok());
  EXPECT_FALSE(CheckUnitName("").ok());
  EXPECT_FALSE(CheckUnitName("hello").ok());
  EXPECT_FALSE(CheckUnitName("hello.").ok());
  EXPECT_FALSE(CheckUnitName("hello.exe").ok());
  EXPECT_FALSE(CheckUnitName("@x.service").ok());
  EXPECT_FALSE(CheckUnitName("he llo.service").ok());
  EXPECT_FALSE(CheckUnitName(std::string(250, 'a') + ".service").ok());
  EXPECT_TRUE(IsTemplateUnit("web@.service"));
  EXPECT_FALSE(IsTemplateUnit("web@1.service"));
  EXPECT_FALSE(IsTemplateUnit("web.service"));
}

TEST(SandboxNamesTest, ParseNameIsStrict) {
  auto id = ParseName("accounts/lab/instances/web-1", "lab", kInstances, "name");
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(*id, "web-1");

  for (const char* bad : {"accounts/other/instances/web-1", "accounts/lab/volumes/web-1",
                          "accounts/lab/instances/", "accounts/lab/instances/web-1/x",
                          "accounts/lab/instances/Web", "instances/web-1"}) {
    auto parsed = ParseName(bad, "lab", kInstances, "instance.name");
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    auto bad_request = GetBadRequest(parsed.status());
    ASSERT_TRUE(bad_request.has_value()) << bad;
    EXPECT_EQ(bad_request->field_violations(0).field(), "instance.name");
  }
  EXPECT_TRUE(ParseName("accounts/lab/units/hello@1.service", "lab", kUnits, "name").ok());
  EXPECT_TRUE(ParseName("accounts/lab/machines/b4104f4b83fd48b2acc16a085b0ec2ce", "lab",
                        kMachines, "name")
                  .ok());
  EXPECT_FALSE(ParseName("accounts/lab/machines/host-1", "lab", kMachines, "name").ok());
}

TEST(SandboxNamesTest, RuleAndMetadataNames) {
  auto rule = ParseRuleName("accounts/lab/firewalls/web/rules/12", "lab", "name");
  ASSERT_TRUE(rule.ok());
  EXPECT_EQ(rule->first, "web");
  EXPECT_EQ(rule->second, 12);
  EXPECT_FALSE(ParseRuleName("accounts/lab/firewalls/web/rules/012", "lab", "name").ok());
  EXPECT_FALSE(ParseRuleName("accounts/lab/firewalls/web/rules/0", "lab", "name").ok());
  EXPECT_FALSE(ParseRuleName("accounts/lab/firewalls/web/x/1", "lab", "name").ok());
  EXPECT_EQ(RuleName("lab", "web", 3), "accounts/lab/firewalls/web/rules/3");

  auto metadata = ParseMetadataName("accounts/lab/instances/web-1/metadata", "lab", "name");
  ASSERT_TRUE(metadata.ok());
  EXPECT_EQ(*metadata, "web-1");
  EXPECT_EQ(ParseMetadataName("accounts/lab/instances/web-1", "lab", "name").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(UnitFileTest, SerializesLikeFleet) {
  google::protobuf::RepeatedPtrField<v1::UnitOption> options;
  auto add = [&](const char* section, const char* name, const char* value) {
    v1::UnitOption* o = options.Add();
    o->set_section(section);
    o->set_name(name);
    o->set_value(value);
  };
  add("Unit", "Description", "Hello");
  add("Service", "ExecStart", "/usr/bin/sleep 1d");
  add("Unit", "After", "network.target");
  EXPECT_EQ(SerializeUnitFile(options),
            "[Unit]\nDescription=Hello\nAfter=network.target\n\n"
            "[Service]\nExecStart=/usr/bin/sleep 1d\n");
  // sha1sum of the text above.
  EXPECT_EQ(UnitFileHash(options), "c050191706acfe112bd6da9c8ff6f5bb29ff8289");
}

}  // namespace
}  // namespace cloudplane::adapters::sandbox
