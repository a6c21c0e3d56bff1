#include "service/request_validation.h"

#include "base/errors.h"
#include "cloudplane/v1/compute.pb.h"
#include "cloudplane/v1/firewalls.pb.h"
#include "cloudplane/v1/networks.pb.h"
#include "cloudplane/v1/units.pb.h"
#include "cloudplane/v1/autoscaling.pb.h"
#include "cloudplane/v1/volumes.pb.h"
#include "gtest/gtest.h"

namespace cloudplane::service {
namespace {

std::vector<std::string> Fields(const absl::Status& status) {
  std::vector<std::string> out;
  auto bad = GetBadRequest(status);
  if (bad.has_value()) {
    for (const auto& v : bad->field_violations()) out.push_back(v.field());
  }
  return out;
}

TEST(RequestValidation, RoutesByNameAndParent) {
  v1::GetInstanceRequest get;
  get.set_name("accounts/lab/instances/web-1");
  auto routed = ValidateRequest("GetInstance", get);
  ASSERT_TRUE(routed.ok()) << routed.status();
  EXPECT_EQ(routed->account, "lab");
  EXPECT_EQ(routed->target, "accounts/lab/instances/web-1");

  v1::ListUnitsRequest list;
  list.set_parent("accounts/fleet-1");
  routed = ValidateRequest("ListUnits", list);
  ASSERT_TRUE(routed.ok());
  EXPECT_EQ(routed->account, "fleet-1");
}

TEST(RequestValidation, WrongPatternNamesTheField) {
  v1::GetInstanceRequest get;
  get.set_name("accounts/lab/volumes/v");
  auto routed = ValidateRequest("GetInstance", get);
  EXPECT_EQ(routed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Fields(routed.status()), std::vector<std::string>{"name"});

  v1::GetFirewallRuleRequest rule;
  rule.set_name("accounts/lab/firewalls/web/rules/");
  EXPECT_EQ(Fields(ValidateRequest("GetFirewallRule", rule).status()),
            std::vector<std::string>{"name"});
}

TEST(RequestValidation, RequiredFieldsIncludingInsideCreatedResource) {
  v1::CreateVolumeRequest create;
  create.set_parent("accounts/lab");
  EXPECT_EQ(Fields(ValidateRequest("CreateVolume", create).status()),
            std::vector<std::string>{"volume"});
  create.mutable_volume()->set_display_name("d");
  // A zero number is a value, not an absence (sizes are the adapter's to
  // range-check), so a volume with only a name passes this layer.
  EXPECT_TRUE(ValidateRequest("CreateVolume", create).ok());

  v1::ResizeScalingGroupRequest resize;
  resize.set_name("accounts/lab/scalingGroups/web");
  resize.set_target_size(0);
  EXPECT_TRUE(ValidateRequest("ResizeScalingGroup", resize).ok());

  v1::SetUnitDesiredStateRequest set_state;
  set_state.set_name("accounts/lab/units/a.service");
  EXPECT_EQ(Fields(ValidateRequest("SetUnitDesiredState", set_state).status()),
            std::vector<std::string>{"desired_state"});

  v1::CreateUnitRequest unit;
  unit.set_parent("accounts/lab");
  unit.set_unit_id("a.service");
  unit.mutable_unit()->add_options()->set_section("Service");
  EXPECT_EQ(Fields(ValidateRequest("CreateUnit", unit).status()),
            (std::vector<std::string>{"unit.options[0].name", "unit.options[0].value"}));
}

// ReserveAddress makes an Address under its parent like a create: the
// address needs no name (any free one may be reserved), and the request
// routes by the parent.
TEST(RequestValidation, ReserveAddressIsACreateUnderItsParent) {
  v1::ReserveAddressRequest r;
  r.set_parent("accounts/lab");
  r.mutable_address()->set_network("accounts/lab/networks/private");
  absl::StatusOr<RoutedRequest> routed = ValidateRequest("ReserveAddress", r);
  ASSERT_TRUE(routed.ok()) << routed.status();
  EXPECT_EQ(routed->account, "lab");
  r.mutable_address()->set_network("accounts/other/networks/private");
  EXPECT_EQ(ValidateRequest("ReserveAddress", r).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(RequestValidation, UpdateRoutesByEmbeddedName) {
  v1::UpdateInstanceRequest update;
  update.mutable_update_mask()->add_paths("display_name");
  EXPECT_EQ(Fields(ValidateRequest("UpdateInstance", update).status()),
            std::vector<std::string>{"instance"});
  update.mutable_instance()->set_display_name("x");
  EXPECT_EQ(Fields(ValidateRequest("UpdateInstance", update).status()),
            std::vector<std::string>{"instance.name"});
  update.mutable_instance()->set_name("accounts/a/instances/i");
  auto routed = ValidateRequest("UpdateInstance", update);
  ASSERT_TRUE(routed.ok()) << routed.status();
  EXPECT_EQ(routed->account, "a");
}

TEST(RequestValidation, AllNamesInOneAccount) {
  v1::AttachVolumeRequest attach;
  attach.set_name("accounts/a/volumes/v");
  attach.set_instance("accounts/b/instances/i");
  EXPECT_EQ(Fields(ValidateRequest("AttachVolume", attach).status()),
            std::vector<std::string>{"instance"});
}

TEST(RequestValidation, RequestIdIsBounded) {
  v1::DeleteInstanceRequest del;
  del.set_name("accounts/a/instances/i");
  del.set_request_id(std::string(65, 'x'));
  EXPECT_EQ(Fields(ValidateRequest("DeleteInstance", del).status()),
            std::vector<std::string>{"request_id"});
  del.set_request_id("with space");
  EXPECT_EQ(Fields(ValidateRequest("DeleteInstance", del).status()),
            std::vector<std::string>{"request_id"});
  del.set_request_id("6d1b1c3e-9d4f-4d61-a4d1-2c4a0b1f7e10");
  EXPECT_TRUE(ValidateRequest("DeleteInstance", del).ok());
}

// An empty source used to mean "anywhere"; now a rule must name its far
// end, and "anywhere" is 0.0.0.0/0.
TEST(RequestValidation, FirewallRuleWithoutFarEndIsRefused) {
  v1::CreateFirewallRuleRequest create;
  create.set_parent("accounts/lab/firewalls/web");
  create.mutable_rule()->set_protocol("tcp");
  absl::Status refused = ValidateRequest("CreateFirewallRule", create).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Fields(refused), std::vector<std::string>{"rule.source_ranges"});
  // Any one kind of source is a source.
  for (int kind = 0; kind < 4; ++kind) {
    v1::CreateFirewallRuleRequest with = create;
    v1::FirewallRule& rule = *with.mutable_rule();
    if (kind == 0) rule.add_source_ranges("0.0.0.0/0");
    if (kind == 1) {
      rule.add_source_address_ranges()->set_first_address("10.0.0.5");
      rule.mutable_source_address_ranges(0)->set_size(3);
    }
    if (kind == 2) rule.add_source_firewalls("accounts/lab/firewalls/db");
    if (kind == 3) rule.add_source_networks("accounts/lab/networks/private");
    EXPECT_TRUE(ValidateRequest("CreateFirewallRule", with).ok()) << kind;
  }
  // An EGRESS rule needs a destination; a source does not stand in for it.
  create.mutable_rule()->set_direction(v1::FirewallRule::EGRESS);
  create.mutable_rule()->add_source_ranges("0.0.0.0/0");
  EXPECT_EQ(Fields(ValidateRequest("CreateFirewallRule", create).status()),
            std::vector<std::string>{"rule.destination_ranges"});
  create.mutable_rule()->add_destination_networks("accounts/lab/networks/private");
  EXPECT_TRUE(ValidateRequest("CreateFirewallRule", create).ok());

  // Initial rules of a firewall are named by their index.
  v1::CreateFirewallRequest firewall;
  firewall.set_parent("accounts/lab");
  v1::FirewallRule* ok = firewall.mutable_firewall()->add_rules();
  ok->set_protocol("tcp");
  ok->add_source_ranges("203.0.113.0/24");
  firewall.mutable_firewall()->add_rules()->set_protocol("udp");
  EXPECT_EQ(Fields(ValidateRequest("CreateFirewall", firewall).status()),
            std::vector<std::string>{"firewall.rules[1].source_ranges"});
  // An address range inside a rule has its own required fields.
  firewall.mutable_firewall()->mutable_rules(1)->add_source_address_ranges()->set_size(2);
  EXPECT_EQ(Fields(ValidateRequest("CreateFirewall", firewall).status()),
            std::vector<std::string>{"firewall.rules[1].source_address_ranges[0].first_address"});
}

TEST(RequestValidation, PatternMatching) {
  EXPECT_TRUE(MatchesPattern("accounts/a", "accounts/{account}"));
  EXPECT_FALSE(MatchesPattern("accounts/", "accounts/{account}"));
  EXPECT_FALSE(MatchesPattern("accounts/a/b", "accounts/{account}"));
  EXPECT_TRUE(MatchesPattern("accounts/a/instances/i/metadata",
                             "accounts/{account}/instances/{instance}/metadata"));
}

}  // namespace
}  // namespace cloudplane::service
