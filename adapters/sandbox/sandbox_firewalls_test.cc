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

}  // namespace
}  // namespace cloudplane::adapters::sandbox
