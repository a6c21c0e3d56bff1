// The sandbox's FirewallsService: firewalls and their rules.
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "adapters/provider.h"
#include "adapters/sandbox/sandbox_test_fixture.h"
#include "base/errors.h"
#include "gmock/gmock.h"
#include "google/protobuf/empty.pb.h"
#include "gtest/gtest.h"

namespace cloudplane::adapters::sandbox {
namespace {

using ::testing::ElementsAre;
using ::testing::SizeIs;

TEST_F(SandboxTest, FirewallsAndRules) {
  v1::CreateFirewallRequest create;
  create.set_parent(kParent);
  create.set_firewall_id("web");
  v1::FirewallRule* ssh = create.mutable_firewall()->add_rules();
  ssh->set_protocol("TCP");
  ssh->set_port_range_start(22);
  ssh->add_source_ranges("203.0.113.0/24");
  v1::FirewallRule* ping = create.mutable_firewall()->add_rules();
  ping->set_protocol("icmp");
  ping->add_source_ranges("0.0.0.0/0");
  ping->add_source_ranges("::/0");

  v1::CreateFirewallRequest bad = create;
  bad.mutable_firewall()->mutable_rules(1)->set_protocol("gre");
  EXPECT_EQ(BadField(Call(&Provider::CreateFirewall, bad).status()),
            "firewall.rules[1].protocol");
  bad = create;
  bad.mutable_firewall()->mutable_rules(0)->set_source_ranges(0, "203.0.113.0/33");
  EXPECT_EQ(BadField(Call(&Provider::CreateFirewall, bad).status()),
            "firewall.rules[0].source_ranges[0]");
  bad = create;
  bad.mutable_firewall()->mutable_rules(0)->set_port_range_end(10);
  EXPECT_EQ(BadField(Call(&Provider::CreateFirewall, bad).status()),
            "firewall.rules[0].port_range_end");

  auto firewall = Finish<v1::Firewall>(Call(&Provider::CreateFirewall, create));
  ASSERT_TRUE(firewall.ok()) << firewall.status();
  ASSERT_THAT(firewall->rules(), SizeIs(2));
  EXPECT_EQ(firewall->rules(0).name(), Res("firewalls", "web") + "/rules/1");
  EXPECT_EQ(firewall->rules(0).protocol(), "tcp");
  EXPECT_EQ(firewall->rules(0).direction(), v1::FirewallRule::INGRESS);
  EXPECT_EQ(firewall->rules(0).action(), v1::FirewallRule::ALLOW);
  EXPECT_EQ(Call(&Provider::CreateFirewall, create).status().code(),
            absl::StatusCode::kAlreadyExists);

  v1::CreateFirewallRuleRequest add;
  add.set_parent(Res("firewalls", "web"));
  add.mutable_rule()->set_protocol("udp");
  add.mutable_rule()->set_port_range_start(53);
  add.mutable_rule()->add_source_ranges("198.51.100.0/24");
  for (int i = 0; i < 9; ++i) {
    auto rule = Finish<v1::FirewallRule>(Call(&Provider::CreateFirewallRule, add));
    ASSERT_TRUE(rule.ok()) << rule.status();
    EXPECT_EQ(rule->name(), absl::StrCat(Res("firewalls", "web"), "/rules/", i + 3));
  }

  // Rules page in number order: 1, 2, ..., 10, 11.
  std::vector<std::string> names;
  v1::ListFirewallRulesRequest list;
  list.set_parent(Res("firewalls", "web"));
  list.set_page_size(4);
  do {
    auto page = Call(&Provider::ListFirewallRules, list);
    ASSERT_TRUE(page.ok()) << page.status();
    for (const auto& r : page->rules()) names.push_back(std::string(LastSegment(r.name())));
    list.set_page_token(page->next_page_token());
  } while (!list.page_token().empty());
  EXPECT_THAT(names, ElementsAre("1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11"));

  v1::DeleteFirewallRuleRequest del_rule;
  del_rule.set_name(Res("firewalls", "web") + "/rules/2");
  ASSERT_TRUE(Finish<google::protobuf::Empty>(Call(&Provider::DeleteFirewallRule, del_rule)).ok());
  v1::GetFirewallRuleRequest get_rule;
  get_rule.set_name(del_rule.name());
  EXPECT_EQ(Call(&Provider::GetFirewallRule, get_rule).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(Call(&Provider::DeleteFirewallRule, del_rule).status().code(),
            absl::StatusCode::kNotFound);
  del_rule.set_allow_missing(true);
  EXPECT_TRUE(Call(&Provider::DeleteFirewallRule, del_rule)->done);
  // Numbers are not reused.
  auto next = Finish<v1::FirewallRule>(Call(&Provider::CreateFirewallRule, add));
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->name(), Res("firewalls", "web") + "/rules/12");
  add.set_parent(Res("firewalls", "ghost"));
  EXPECT_EQ(Call(&Provider::CreateFirewallRule, add).status().code(),
            absl::StatusCode::kNotFound);

  // A firewall in use cannot be deleted.
  v1::CreateInstanceRequest instance;
  instance.set_parent(kParent);
  instance.set_instance_id("guarded");
  instance.mutable_instance()->set_image(Res("images", "debian-12"));
  instance.mutable_instance()->add_firewalls(Res("firewalls", "web"));
  ASSERT_TRUE(Call(&Provider::CreateInstance, instance).ok());
  v1::DeleteFirewallRequest del;
  del.set_name(Res("firewalls", "web"));
  EXPECT_EQ(Call(&Provider::DeleteFirewall, del).status().code(),
            absl::StatusCode::kFailedPrecondition);
  v1::DeleteInstanceRequest del_instance;
  del_instance.set_name(Res("instances", "guarded"));
  ASSERT_TRUE(Finish<google::protobuf::Empty>(Call(&Provider::DeleteInstance, del_instance)).ok());
  auto deleted = Call(&Provider::DeleteFirewall, del);
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_TRUE(deleted->done);
  v1::GetFirewallRequest get;
  get.set_name(del.name());
  EXPECT_EQ(Call(&Provider::GetFirewall, get).status().code(), absl::StatusCode::kNotFound);
}

// A rule's far end may be address ranges, firewalls and networks of the
// account, kept as given; named ones must exist, and cannot go while a rule
// of another firewall names them. No far end is refused, not "anywhere".
TEST_F(SandboxTest, RuleEndsOtherThanCidrs) {
  v1::CreateNetworkRequest net;
  net.set_parent(kParent);
  net.set_network_id("private");
  net.mutable_network()->add_cidr_ranges("10.20.0.0/24");
  ASSERT_TRUE(Finish<v1::Network>(Call(&Provider::CreateNetwork, net)).ok());
  v1::CreateFirewallRequest db;
  db.set_parent(kParent);
  db.set_firewall_id("db");
  db.mutable_firewall()->set_display_name("db");
  auto db_made = Finish<v1::Firewall>(Call(&Provider::CreateFirewall, db));
  ASSERT_TRUE(db_made.ok()) << db_made.status();

  v1::CreateFirewallRequest web;
  web.set_parent(kParent);
  web.set_firewall_id("web");
  v1::FirewallRule* from_db = web.mutable_firewall()->add_rules();
  from_db->set_protocol("tcp");
  from_db->set_port_range_start(8080);
  from_db->add_source_firewalls(Res("firewalls", "db"));
  from_db->add_source_firewalls(Res("firewalls", "web"));  // itself, being made
  from_db->add_source_networks(Res("networks", "private"));
  v1::AddressRange* exact = from_db->add_source_address_ranges();
  exact->set_first_address("192.0.2.10");
  exact->set_size(5);
  v1::FirewallRule* out = web.mutable_firewall()->add_rules();
  out->set_protocol("udp");
  out->set_port_range_start(53);
  out->set_direction(v1::FirewallRule::EGRESS);
  out->add_destination_networks(Res("networks", "private"));

  v1::CreateFirewallRequest bad = web;
  bad.mutable_firewall()->mutable_rules(0)->set_source_firewalls(0, Res("firewalls", "ghost"));
  EXPECT_EQ(Call(&Provider::CreateFirewall, bad).status().code(), absl::StatusCode::kNotFound);
  bad = web;
  bad.mutable_firewall()->mutable_rules(0)->set_source_networks(0, "accounts/other/networks/x");
  EXPECT_EQ(BadField(Call(&Provider::CreateFirewall, bad).status()),
            "firewall.rules[0].source_networks[0]");
  bad = web;
  bad.mutable_firewall()->mutable_rules(0)->mutable_source_address_ranges(0)->set_size(0);
  EXPECT_EQ(BadField(Call(&Provider::CreateFirewall, bad).status()),
            "firewall.rules[0].source_address_ranges[0].size");
  bad = web;
  bad.mutable_firewall()->mutable_rules(1)->add_source_firewalls(Res("firewalls", "db"));
  EXPECT_EQ(BadField(Call(&Provider::CreateFirewall, bad).status()),
            "firewall.rules[1].source_firewalls");
  bad = web;
  bad.mutable_firewall()->mutable_rules(1)->clear_destination_networks();
  EXPECT_EQ(BadField(Call(&Provider::CreateFirewall, bad).status()),
            "firewall.rules[1].destination_ranges");

  auto made = Finish<v1::Firewall>(Call(&Provider::CreateFirewall, web));
  ASSERT_TRUE(made.ok()) << made.status();
  v1::GetFirewallRuleRequest get;
  get.set_name(made->rules(0).name());
  auto rule = Call(&Provider::GetFirewallRule, get);
  ASSERT_TRUE(rule.ok()) << rule.status();
  EXPECT_THAT(rule->source_firewalls(), ElementsAre(Res("firewalls", "db"), Res("firewalls", "web")));
  EXPECT_THAT(rule->source_networks(), ElementsAre(Res("networks", "private")));
  ASSERT_THAT(rule->source_address_ranges(), SizeIs(1));
  EXPECT_EQ(rule->source_address_ranges(0).first_address(), "192.0.2.10");
  EXPECT_EQ(rule->source_address_ranges(0).size(), 5);
  EXPECT_TRUE(rule->source_ranges().empty());
  EXPECT_THAT(made->rules(1).destination_networks(), ElementsAre(Res("networks", "private")));

  // Named by web's rules: db and the network stay until those rules go.
  v1::DeleteFirewallRequest del_db;
  del_db.set_name(Res("firewalls", "db"));
  EXPECT_EQ(Call(&Provider::DeleteFirewall, del_db).status().code(),
            absl::StatusCode::kFailedPrecondition);
  v1::DeleteNetworkRequest del_net;
  del_net.set_name(Res("networks", "private"));
  EXPECT_EQ(Call(&Provider::DeleteNetwork, del_net).status().code(),
            absl::StatusCode::kFailedPrecondition);
  // web names itself, which does not keep it.
  v1::DeleteFirewallRequest del_web;
  del_web.set_name(Res("firewalls", "web"));
  ASSERT_TRUE(Finish<google::protobuf::Empty>(Call(&Provider::DeleteFirewall, del_web)).ok());
  EXPECT_TRUE(Finish<google::protobuf::Empty>(Call(&Provider::DeleteFirewall, del_db)).ok());

  // CreateFirewallRule checks the same way.
  v1::CreateFirewallRuleRequest add;
  add.set_parent(Res("firewalls", "web"));
  add.mutable_rule()->set_protocol("tcp");
  add.mutable_rule()->set_port_range_start(22);
  EXPECT_EQ(BadField(Call(&Provider::CreateFirewallRule, add).status()), "rule.source_ranges");
}

}  // namespace
}  // namespace cloudplane::adapters::sandbox
