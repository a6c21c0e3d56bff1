// Virtual networks, leases, NICs and SSH keys (opennebula_wire_networks.cc),
// on documents shaped as the 6.10.5 vnet.xsd / vm.xsd describe.
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "adapters/common/xml/xml.h"
#include "adapters/opennebula/opennebula_wire.h"
#include "base/errors.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cloudplane::adapters::opennebula {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;

// one.vn.info of a network with an IP4 range (one lease held, one used by
// VM 7) and an ETHER range, as oned 6.10 writes it.
constexpr char kVnet[] =
    "<VNET><ID>5</ID><UID>0</UID><GID>0</GID><UNAME>oneadmin</UNAME><GNAME>oneadmin</GNAME>"
    "<NAME>lab-net</NAME><CLUSTERS><ID>0</ID></CLUSTERS><BRIDGE><![CDATA[br9]]></BRIDGE>"
    "<STATE>1</STATE><VN_MAD><![CDATA[bridge]]></VN_MAD><VLAN_ID><![CDATA[42]]></VLAN_ID>"
    "<USED_LEASES>2</USED_LEASES>"
    "<TEMPLATE><BRIDGE><![CDATA[br9]]></BRIDGE><CLOUDPLANE_LABEL_TEAM><![CDATA[ops]]>"
    "</CLOUDPLANE_LABEL_TEAM><CLOUDPLANE_OPERATION><![CDATA[op-1]]></CLOUDPLANE_OPERATION>"
    "<CUSTOM><![CDATA[ABC]]></CUSTOM><DNS><![CDATA[192.168.5.2 192.168.5.3]]></DNS>"
    "<GATEWAY><![CDATA[192.168.5.1]]></GATEWAY>"
    "<NETWORK_ADDRESS><![CDATA[192.168.5.0]]></NETWORK_ADDRESS>"
    "<NETWORK_MASK><![CDATA[255.255.255.0]]></NETWORK_MASK></TEMPLATE>"
    "<AR_POOL><AR><AR_ID>0</AR_ID><IP><![CDATA[192.168.5.10]]></IP>"
    "<MAC><![CDATA[02:00:c0:a8:05:0a]]></MAC><SIZE>3</SIZE><TYPE><![CDATA[IP4]]></TYPE>"
    "<USED_LEASES>2</USED_LEASES><LEASES>"
    "<LEASE><IP><![CDATA[192.168.5.10]]></IP><MAC><![CDATA[02:00:c0:a8:05:0a]]></MAC>"
    "<VM>7</VM></LEASE>"
    "<LEASE><IP><![CDATA[192.168.5.11]]></IP><MAC><![CDATA[02:00:c0:a8:05:0b]]></MAC>"
    "<VM>-1</VM></LEASE></LEASES></AR>"
    "<AR><AR_ID>1</AR_ID><MAC><![CDATA[02:00:00:00:00:01]]></MAC><SIZE>20</SIZE>"
    "<TYPE><![CDATA[ETHER]]></TYPE><USED_LEASES>0</USED_LEASES></AR></AR_POOL></VNET>";

xml::Document Parse(absl::string_view text) {
  absl::StatusOr<xml::Document> doc = xml::Parse(text);
  EXPECT_TRUE(doc.ok()) << doc.status();
  return *std::move(doc);
}

TEST(OpenNebulaNetworksWireTest, VnetBecomesNetworkWithRangesKeptExactly) {
  xml::Document doc = Parse(kVnet);
  absl::StatusOr<v1::Network> n = NetworkFromVnet(doc.Root(), "lab", "lab-net");
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(n->name(), "accounts/lab/networks/lab-net");
  EXPECT_EQ(n->display_name(), "lab-net");
  EXPECT_EQ(n->state(), v1::Network::READY);
  EXPECT_EQ(n->provider_state(), "READY");
  // IP + SIZE exactly, never the covering CIDR (192.168.5.8/30 would be 4).
  ASSERT_EQ(n->address_ranges_size(), 1);
  EXPECT_EQ(n->address_ranges(0).first_address(), "192.168.5.10");
  EXPECT_EQ(n->address_ranges(0).size(), 3);
  EXPECT_THAT(n->cidr_ranges(), ElementsAre("192.168.5.0/24"));
  EXPECT_EQ(n->gateway(), "192.168.5.1");
  EXPECT_THAT(n->dns_servers(), ElementsAre("192.168.5.2", "192.168.5.3"));
  EXPECT_EQ(n->vlan_id(), 42);
  EXPECT_EQ(n->used_addresses(), 2);
  EXPECT_EQ(n->location(), "accounts/lab/locations/cluster-0");
  EXPECT_THAT(n->labels(), ElementsAre(Pair("team", "ops")));
  const auto& d = n->provider_details().fields();
  EXPECT_EQ(d.at("id").number_value(), 5);
  EXPECT_EQ(d.at("vnMad").string_value(), "bridge");
  const auto& rest = d.at("template").struct_value().fields();
  EXPECT_EQ(rest.at("CUSTOM").string_value(), "ABC");
  EXPECT_EQ(rest.count("GATEWAY"), 0u);
  EXPECT_EQ(rest.count("CLOUDPLANE_OPERATION"), 0u);
  ASSERT_EQ(d.at("arsWithoutIp").list_value().values_size(), 1);
  EXPECT_EQ(d.at("arsWithoutIp").list_value().values(0).string_value(), "ETHER:20");
}

TEST(OpenNebulaNetworksWireTest, MaskAsPrefixLengthAndNoStateBefore64) {
  xml::Document doc = Parse(
      "<VNET><ID>1</ID><NAME>n</NAME><TEMPLATE><NETWORK_ADDRESS>10.1.0.0</NETWORK_ADDRESS>"
      "<NETWORK_MASK>16</NETWORK_MASK></TEMPLATE><AR_POOL/></VNET>");
  absl::StatusOr<v1::Network> n = NetworkFromVnet(doc.Root(), "lab", "n");
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_THAT(n->cidr_ranges(), ElementsAre("10.1.0.0/16"));
  EXPECT_EQ(n->state(), v1::Network::READY);
  // A mask that is not contiguous gives no CIDR rather than a wrong one.
  xml::Document odd = Parse(
      "<VNET><ID>1</ID><NAME>n</NAME><TEMPLATE><NETWORK_ADDRESS>10.1.0.0</NETWORK_ADDRESS>"
      "<NETWORK_MASK>255.0.255.0</NETWORK_MASK></TEMPLATE></VNET>");
  EXPECT_TRUE(NetworkFromVnet(odd.Root(), "lab", "n")->cidr_ranges().empty());
  xml::Document no_id = Parse("<VNET><NAME>n</NAME></VNET>");
  EXPECT_EQ(NetworkFromVnet(no_id.Root(), "lab", "n").status().code(),
            absl::StatusCode::kInternal);
}

TEST(OpenNebulaNetworksWireTest, LeasesAreAddressesNamedByNetworkAndIp) {
  xml::Document doc = Parse(kVnet);
  std::vector<Lease> leases = LeasesOfVnet(doc.Root());
  ASSERT_EQ(leases.size(), 2u);
  EXPECT_EQ(leases[0].ip, "192.168.5.10");
  EXPECT_EQ(leases[0].vm, 7);
  EXPECT_EQ(leases[1].vm, -1);
  v1::Address used = AddressFromLease(leases[0], "lab", "lab-net", "accounts/lab/instances/web");
  EXPECT_EQ(used.name(), "accounts/lab/addresses/5-192.168.5.10");
  EXPECT_EQ(used.state(), v1::Address::IN_USE);
  EXPECT_EQ(used.instance(), "accounts/lab/instances/web");
  EXPECT_EQ(used.network(), "accounts/lab/networks/lab-net");
  v1::Address held = AddressFromLease(leases[1], "lab", "lab-net", "");
  EXPECT_EQ(held.state(), v1::Address::RESERVED);
  EXPECT_TRUE(held.instance().empty());
  auto parsed = ParseAddressName("name", "lab", held.name());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->first, 5);
  EXPECT_EQ(parsed->second, "192.168.5.11");
  for (const char* bad : {"accounts/lab/addresses/192.168.5.11", "accounts/lab/addresses/5-x",
                          "accounts/other/addresses/5-10.0.0.1", "accounts/lab/addresses/-1-1.1.1.1"}) {
    EXPECT_EQ(ParseAddressName("name", "lab", bad).status().code(),
              absl::StatusCode::kInvalidArgument)
        << bad;
  }
}

TEST(OpenNebulaNetworksWireTest, NetworkTemplateForAllocate) {
  v1::Network n;
  auto* r = n.add_address_ranges();
  r->set_first_address("192.168.5.10");
  r->set_size(3);
  n.add_cidr_ranges("192.168.5.0/24");
  n.set_gateway("192.168.5.1");
  n.add_dns_servers("192.168.5.2");
  n.add_dns_servers("192.168.5.3");
  n.set_vlan_id(42);
  absl::StatusOr<std::string> t = NetworkTemplate(n, "lab-net", {{"CLOUDPLANE_OPERATION", "o"}});
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(*t,
            "NAME=\"lab-net\"\nVN_MAD=\"bridge\"\nNETWORK_ADDRESS=\"192.168.5.0\"\n"
            "NETWORK_MASK=\"255.255.255.0\"\nGATEWAY=\"192.168.5.1\"\n"
            "DNS=\"192.168.5.2 192.168.5.3\"\nVLAN_ID=\"42\"\nCLOUDPLANE_OPERATION=\"o\"\n"
            "AR=[TYPE=\"IP4\",IP=\"192.168.5.10\",SIZE=\"3\"]\n");
  v1::Network bad;
  bad.add_address_ranges()->set_first_address("300.0.0.1");
  auto* zero = bad.add_address_ranges();
  zero->set_first_address("10.0.0.1");
  bad.add_cidr_ranges("10.0.0.0/8");
  bad.add_cidr_ranges("10.1.0.0/16");
  bad.set_vlan_id(5000);
  absl::Status s = NetworkTemplate(bad, "x", {}).status();
  ASSERT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  const auto bad_request = GetBadRequest(s);  // kept alive while read
  ASSERT_TRUE(bad_request.has_value()) << s;
  std::vector<std::string> fields;
  for (const auto& v : bad_request->field_violations()) fields.push_back(v.field());
  EXPECT_THAT(fields, ElementsAre("network.cidr_ranges", "network.vlan_id",
                                  "network.address_ranges[0].first_address",
                                  "network.address_ranges[1].size"));
}

TEST(OpenNebulaNetworksWireTest, NicsOfAVmAndNicAttributes) {
  xml::Document vm = Parse(
      "<VM><ID>7</ID><NAME>web</NAME><STATE>3</STATE><LCM_STATE>3</LCM_STATE><TEMPLATE>"
      "<NIC><IP><![CDATA[192.168.5.10]]></IP><MAC><![CDATA[02:00:c0:a8:05:0a]]></MAC>"
      "<MODEL><![CDATA[virtio]]></MODEL><NETWORK><![CDATA[lab-net]]></NETWORK>"
      "<NETWORK_ID><![CDATA[5]]></NETWORK_ID><NIC_ID><![CDATA[0]]></NIC_ID></NIC>"
      "<NIC><IP><![CDATA[10.0.0.2]]></IP><MAC><![CDATA[02:00:0a:00:00:02]]></MAC>"
      "<NETWORK><![CDATA[Red LAN]]></NETWORK><NETWORK_ID><![CDATA[0]]></NETWORK_ID>"
      "<NIC_ID><![CDATA[2]]></NIC_ID></NIC></TEMPLATE></VM>");
  std::vector<v1::NetworkInterface> nics = NicsFromVm(vm.Root(), "lab");
  ASSERT_EQ(nics.size(), 2u);
  EXPECT_EQ(nics[0].id(), "0");
  EXPECT_EQ(nics[0].network(), "accounts/lab/networks/lab-net");
  EXPECT_EQ(nics[0].address(), "192.168.5.10");
  EXPECT_EQ(nics[0].mac_address(), "02:00:c0:a8:05:0a");
  EXPECT_EQ(nics[0].model(), "virtio");
  // A NAME that is no valid id: the network is named by its number.
  EXPECT_EQ(nics[1].network(), "accounts/lab/networks/0");
  EXPECT_THAT(NicIds(vm.Root()), ElementsAre(0, 2));
  absl::StatusOr<v1::Instance> i = InstanceFromVm(vm.Root(), "lab", "web");
  ASSERT_TRUE(i.ok()) << i.status();
  EXPECT_EQ(i->network_interfaces_size(), 2);

  v1::NetworkInterface nic;
  nic.set_address("192.168.5.12");
  nic.set_mac_address("02:00:C0:A8:05:0C");
  nic.set_model("e1000");
  auto attrs = NicAttributes(nic, 5, "network_interface");
  ASSERT_TRUE(attrs.ok()) << attrs.status();
  EXPECT_THAT(*attrs, ElementsAre(Pair("NETWORK_ID", "5"), Pair("IP", "192.168.5.12"),
                                  Pair("MAC", "02:00:c0:a8:05:0c"), Pair("MODEL", "e1000")));
  v1::NetworkInterface bad;
  bad.set_address("fe80::1");
  bad.set_mac_address("02:00");
  bad.set_model("vir tio");
  bad.set_firewall("accounts/lab/firewalls/web");
  absl::Status s = NicAttributes(bad, 5, "network_interface").status();
  const auto bad_request = GetBadRequest(s);  // kept alive while read
  ASSERT_TRUE(bad_request.has_value()) << s;
  std::vector<std::string> fields;
  for (const auto& v : bad_request->field_violations()) fields.push_back(v.field());
  EXPECT_THAT(fields, ElementsAre("network_interface.address", "network_interface.mac_address",
                                  "network_interface.model", "network_interface.firewall"));
}

TEST(OpenNebulaNetworksWireTest, SshKeysFingerprintedAsSshKeygenDoes) {
  // ssh-keygen -lf prints SHA256:dL2FyU05oSs/msCcM/PdhSAveZZvhi7WXbhapFmceWQ for this key.
  const std::string key =
      "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDSbfAres4q5GPY9XXG1GzUFuHBBAFv5BEBUvOMCMoma ops";
  absl::StatusOr<SshKey> k = ParseSshKey(key, "key_pair.public_key");
  ASSERT_TRUE(k.ok()) << k.status();
  EXPECT_EQ(k->fingerprint, "SHA256:dL2FyU05oSs/msCcM/PdhSAveZZvhi7WXbhapFmceWQ");
  EXPECT_EQ(k->id, "ops");
  v1::KeyPair pair = KeyPairFromSshKey(*k, "lab");
  EXPECT_EQ(pair.name(), "accounts/lab/keyPairs/ops");
  EXPECT_EQ(pair.public_key(), key);
  // A comment that is no id: the id comes from the key's hash.
  absl::StatusOr<SshKey> mail = ParseSshKey(
      "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDSbfAres4q5GPY9XXG1GzUFuHBBAFv5BEBUvOMCMoma "
      "Ops Team@host",
      "f");
  ASSERT_TRUE(mail.ok());
  EXPECT_EQ(mail->id, "key-74bd85c94d39");
  EXPECT_EQ(ParseSshKey("not a key", "key_pair.public_key").status().code(),
            absl::StatusCode::kInvalidArgument);
  // Lines that are no keys stay out of the list.
  std::vector<SshKey> keys = SshKeysFromText(absl::StrCat(key, "\n# a note\n\n", key, "2\n"));
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys[1].id, "ops2");
}

}  // namespace
}  // namespace cloudplane::adapters::opennebula
