// The sandbox's NetworksService, key pairs and instances' network
// interfaces.
#include <functional>
#include <optional>
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
using ::testing::IsEmpty;
using ::testing::MatchesRegex;
using ::testing::SizeIs;

// Made with `ssh-keygen -t ed25519 -C ops@lab`; `ssh-keygen -l` prints the
// fingerprint below.
constexpr char kEd25519[] =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINMXluj8/yr1EA8sAULEkCOUp1j1auaBVJk/Rky2Wf6m ops@lab";
constexpr char kEd25519Fingerprint[] = "SHA256:Tg4iyGEOmZ1J0QxIJvCUN1iWmekuR1HMi6wYA3GZPuQ";
// `ssh-keygen -t ecdsa -b 256 -C ""`, padded base64 as ssh-keygen writes it.
constexpr char kEcdsa[] =
    "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBOtiFNQtwbHJ9JjFUjvN"
    "LGVn2DnmuKfXdzohxLn7lT3P0W74L0yRKhynqQQ7laQE9XU03SIwLfB32DzgKc2aPAU=";
constexpr char kEcdsaFingerprint[] = "SHA256:bdJylYY+hfLRYIuCfY6wEhue+DSndKPMVluPcL/skBk";
// `ssh-keygen -t rsa -b 1024 -C r@x`.
constexpr char kRsa[] =
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDuDZeZBatneZbOhh3nS5jepdRvJSe3FaYKCQL98Ia6mAceL8tpSFGl"
    "/aa7b/rBx8vtPNJejQxsuumrcuTuF0o56BXfXBoGaKPo9RB2Fri8GILM8/TfNPQ+p5SDrpziP+6DfMhOqg3dlGt07sBX"
    "oi4YrcUWodMb2t/fublcmLNSZQ== r@x";
constexpr char kRsaFingerprint[] = "SHA256:jWqC8yrhROPUFtBr6OEd210tkvdDN+SR7Wd6rVVX4ws";

class NetworksTest : public SandboxTest {
 protected:
  v1::CreateNetworkRequest NetworkRequest(const std::string& id, const std::string& cidr) {
    v1::CreateNetworkRequest request;
    request.set_parent(kParent);
    request.set_network_id(id);
    request.mutable_network()->add_cidr_ranges(cidr);
    return request;
  }

  absl::StatusOr<v1::Network> MakeNetwork(const std::string& id, const std::string& cidr) {
    return Finish<v1::Network>(Call(&Provider::CreateNetwork, NetworkRequest(id, cidr)));
  }

  absl::StatusOr<MutationProgress> Reserve(const std::string& network,
                                           const std::string& address) {
    v1::ReserveAddressRequest request;
    request.set_parent(kParent);
    request.mutable_address()->set_network(network);
    request.mutable_address()->set_address(address);
    return Call(&Provider::ReserveAddress, request);
  }

  absl::StatusOr<v1::Address> GetAddress(const std::string& ip) {
    v1::GetAddressRequest request;
    request.set_name(Res("addresses", ip));
    return Call(&Provider::GetAddress, request);
  }

  absl::StatusOr<v1::Network> GetNetwork(const std::string& id) {
    v1::GetNetworkRequest request;
    request.set_name(Res("networks", id));
    return Call(&Provider::GetNetwork, request);
  }

  std::vector<std::string> AddressNames() {
    v1::ListAddressesRequest request;
    request.set_parent(kParent);
    auto list = Call(&Provider::ListAddresses, request);
    EXPECT_TRUE(list.ok()) << list.status();
    std::vector<std::string> out;
    const v1::ListAddressesResponse response = list.value_or(v1::ListAddressesResponse());
    for (const v1::Address& a : response.addresses()) {
      out.push_back(a.name());
    }
    return out;
  }

  v1::CreateInstanceRequest InstanceOn(const std::string& id,
                                       const std::vector<v1::NetworkInterface>& nics) {
    v1::CreateInstanceRequest request;
    request.set_parent(kParent);
    request.set_instance_id(id);
    request.mutable_instance()->set_image(Res("images", "debian-12"));
    for (const v1::NetworkInterface& nic : nics) {
      *request.mutable_instance()->add_network_interfaces() = nic;
    }
    return request;
  }

  static v1::NetworkInterface Nic(const std::string& network, const std::string& address = "") {
    v1::NetworkInterface nic;
    nic.set_network(network);
    nic.set_address(address);
    return nic;
  }

  absl::StatusOr<MutationProgress> DeleteNetwork(const std::string& id) {
    v1::DeleteNetworkRequest request;
    request.set_name(Res("networks", id));
    return Call(&Provider::DeleteNetwork, request);
  }
};

TEST_F(NetworksTest, CreateChecksRangesAndBecomesReady) {
  v1::CreateNetworkRequest request = NetworkRequest("private", "10.0.0.0/24");
  v1::Network& in = *request.mutable_network();
  in.set_gateway("10.0.0.1");
  in.add_dns_servers("10.0.0.2");
  in.set_vlan_id(100);
  v1::AddressRange* range = in.add_address_ranges();
  range->set_first_address("10.0.0.10");
  range->set_size(20);
  (*in.mutable_labels())["team"] = "db";

  struct Bad {
    std::function<void(v1::Network&)> change;
    std::string field;
  };
  const std::vector<Bad> bad = {
      {[](v1::Network& n) { n.set_cidr_ranges(0, "10.0.0.0"); }, "network.cidr_ranges[0]"},
      {[](v1::Network& n) { n.set_cidr_ranges(0, "10.0.0.1/24"); }, "network.cidr_ranges[0]"},
      {[](v1::Network& n) { n.set_cidr_ranges(0, "10.0.0.0/33"); }, "network.cidr_ranges[0]"},
      {[](v1::Network& n) { n.set_gateway("10.0.1.1"); }, "network.gateway"},
      {[](v1::Network& n) { n.set_gateway("ten"); }, "network.gateway"},
      {[](v1::Network& n) { n.set_vlan_id(4095); }, "network.vlan_id"},
      {[](v1::Network& n) { n.set_vlan_id(-1); }, "network.vlan_id"},
      {[](v1::Network& n) { n.set_dns_servers(0, "dns"); }, "network.dns_servers[0]"},
      {[](v1::Network& n) { n.mutable_address_ranges(0)->set_size(0); },
       "network.address_ranges[0].size"},
      {[](v1::Network& n) { n.mutable_address_ranges(0)->set_first_address("10.0.0"); },
       "network.address_ranges[0].first_address"},
      {[](v1::Network& n) { n.mutable_address_ranges(0)->set_first_address("10.0.0.250"); },
       "network.address_ranges[0]"},
      {[](v1::Network& n) {
         n.clear_cidr_ranges();
         n.clear_address_ranges();
         n.clear_gateway();
       },
       "network.cidr_ranges"},
      {[](v1::Network& n) { n.set_cidr_ranges(0, "203.0.113.0/28"); n.clear_gateway();
                            n.clear_address_ranges(); n.clear_dns_servers(); },
       "network.cidr_ranges[0]"},
  };
  for (const Bad& b : bad) {
    v1::CreateNetworkRequest wrong = request;
    b.change(*wrong.mutable_network());
    absl::Status status = Call(&Provider::CreateNetwork, wrong).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << b.field;
    EXPECT_EQ(BadField(status), b.field) << status;
  }

  auto first = Call(&Provider::CreateNetwork, request);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_FALSE(first->done);
  auto pending = GetNetwork("private");
  ASSERT_TRUE(pending.ok()) << pending.status();
  EXPECT_EQ(pending->state(), v1::Network::PENDING);
  auto network = Finish<v1::Network>(*first);
  ASSERT_TRUE(network.ok()) << network.status();
  EXPECT_EQ(network->name(), Res("networks", "private"));
  EXPECT_EQ(network->state(), v1::Network::READY);
  EXPECT_EQ(network->provider_state(), "ready");
  EXPECT_THAT(network->cidr_ranges(), ElementsAre("10.0.0.0/24"));
  EXPECT_EQ(network->gateway(), "10.0.0.1");
  EXPECT_EQ(network->vlan_id(), 100);
  EXPECT_EQ(network->location(), Res("locations", "sandbox-1a"));
  EXPECT_EQ(network->labels().at("team"), "db");
  EXPECT_EQ(network->used_addresses(), 0);
  EXPECT_TRUE(sink_.WaitFor(v1::WatchResponse::CREATED, Res("networks", "private")));

  EXPECT_EQ(Call(&Provider::CreateNetwork, request).status().code(),
            absl::StatusCode::kAlreadyExists);
  // One address space: another network may not overlap this one.
  absl::Status overlap =
      Call(&Provider::CreateNetwork, NetworkRequest("other", "10.0.0.0/16")).status();
  EXPECT_EQ(BadField(overlap), "network.cidr_ranges[0]") << overlap;
  EXPECT_TRUE(MakeNetwork("other", "10.1.0.0/24").ok());
}

TEST_F(NetworksTest, UpdateChangesTheMaskedFields) {
  ASSERT_TRUE(MakeNetwork("private", "10.0.0.0/24").ok());
  v1::UpdateNetworkRequest update;
  update.mutable_network()->set_name(Res("networks", "private"));
  update.mutable_network()->set_display_name("Private");
  update.mutable_network()->set_gateway("10.0.0.254");
  update.mutable_network()->set_vlan_id(7);
  update.mutable_update_mask()->add_paths("display_name");
  update.mutable_update_mask()->add_paths("gateway");
  auto updated = Finish<v1::Network>(Call(&Provider::UpdateNetwork, update));
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->display_name(), "Private");
  EXPECT_EQ(updated->gateway(), "10.0.0.254");
  EXPECT_EQ(updated->vlan_id(), 0);  // not in the mask

  update.mutable_update_mask()->Clear();
  update.mutable_update_mask()->add_paths("gateway");
  update.mutable_network()->set_gateway("192.168.0.1");
  EXPECT_EQ(BadField(Call(&Provider::UpdateNetwork, update).status()), "network.gateway");
  update.mutable_update_mask()->Clear();
  update.mutable_update_mask()->add_paths("cidr_ranges");
  EXPECT_EQ(BadField(Call(&Provider::UpdateNetwork, update).status()), "update_mask");
}

TEST_F(NetworksTest, ReserveAndReleaseAddresses) {
  ASSERT_TRUE(MakeNetwork("private", "10.0.0.0/29").ok());
  const std::string net = Res("networks", "private");
  // Given: inside the network's hosts and free.
  EXPECT_EQ(BadField(Reserve(net, "10.0.0.8").status()), "address.address");
  EXPECT_EQ(BadField(Reserve(net, "10.0.0.0").status()), "address.address");
  EXPECT_EQ(BadField(Reserve(net, "10.0.0.x").status()), "address.address");
  EXPECT_EQ(Reserve(Res("networks", "nope"), "").status().code(), absl::StatusCode::kNotFound);
  auto given = Finish<v1::Address>(Reserve(net, "10.0.0.3"));
  ASSERT_TRUE(given.ok()) << given.status();
  EXPECT_EQ(given->name(), Res("addresses", "10.0.0.3"));
  EXPECT_EQ(given->network(), net);
  EXPECT_EQ(given->state(), v1::Address::RESERVED);
  EXPECT_EQ(Reserve(net, "10.0.0.3").status().code(), absl::StatusCode::kAlreadyExists);
  // address.name, when given, is the address (the server asks for it).
  v1::ReserveAddressRequest named;
  named.set_parent(kParent);
  named.mutable_address()->set_network(net);
  named.mutable_address()->set_name(Res("addresses", "10.0.0.4"));
  named.mutable_address()->set_address("10.0.0.5");
  EXPECT_EQ(BadField(Call(&Provider::ReserveAddress, named).status()), "address.name");
  named.mutable_address()->clear_address();
  auto by_name = Finish<v1::Address>(Call(&Provider::ReserveAddress, named));
  ASSERT_TRUE(by_name.ok()) << by_name.status();
  EXPECT_EQ(by_name->address(), "10.0.0.4");
  v1::ReleaseAddressRequest unname;
  unname.set_name(Res("addresses", "10.0.0.4"));
  ASSERT_TRUE(Call(&Provider::ReleaseAddress, unname).ok());
  // None given: the lowest free one.
  auto next = Finish<v1::Address>(Reserve(net, ""));
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->address(), "10.0.0.1");
  // No network: the public pool.
  auto pub = Finish<v1::Address>(Reserve("", ""));
  ASSERT_TRUE(pub.ok()) << pub.status();
  EXPECT_EQ(pub->address(), "203.0.113.1");
  EXPECT_TRUE(pub->network().empty());
  EXPECT_EQ(BadField(Reserve("", "10.0.0.4").status()), "address.address");
  EXPECT_EQ(GetNetwork("private")->used_addresses(), 2);

  // .1 .3 reserved; .2 .4 .5 .6 left, then exhausted.
  for (const char* ip : {"10.0.0.2", "10.0.0.4", "10.0.0.5", "10.0.0.6"}) {
    auto a = Finish<v1::Address>(Reserve(net, ""));
    ASSERT_TRUE(a.ok()) << a.status();
    EXPECT_EQ(a->address(), ip);
  }
  EXPECT_EQ(Reserve(net, "").status().code(), absl::StatusCode::kResourceExhausted);

  // A network with reserved addresses cannot go.
  EXPECT_EQ(DeleteNetwork("private").status().code(), absl::StatusCode::kFailedPrecondition);

  v1::ReleaseAddressRequest release;
  release.set_name(Res("addresses", "10.0.0.3"));
  auto released = Call(&Provider::ReleaseAddress, release);
  ASSERT_TRUE(released.ok()) << released.status();
  EXPECT_TRUE(released->done);
  EXPECT_EQ(GetAddress("10.0.0.3").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Call(&Provider::ReleaseAddress, release).status().code(),
            absl::StatusCode::kNotFound);
  release.set_allow_missing(true);
  EXPECT_TRUE(Call(&Provider::ReleaseAddress, release).ok());
  EXPECT_EQ(GetNetwork("private")->used_addresses(), 5);
}

TEST_F(NetworksTest, KeyPairsCheckTheKeyAndFingerprintIt) {
  v1::CreateKeyPairRequest request;
  request.set_parent(kParent);
  request.set_key_pair_id("ops");
  request.mutable_key_pair()->set_display_name("Ops");
  for (const char* bad : {"", "ssh-dss AAAAB3NzaC1kc3MAAACBAP", "ssh-ed25519",
                          "ssh-ed25519 not*base64",
                          // an ecdsa blob under the ed25519 type
                          "ssh-ed25519 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTY=",
                          // the ed25519 blob cut short
                          "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINMXluj8/yr1EA8sAULEkCOUp1j1"}) {
    request.mutable_key_pair()->set_public_key(bad);
    absl::Status status = Call(&Provider::CreateKeyPair, request).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(BadField(status), "key_pair.public_key") << bad;
  }
  request.mutable_key_pair()->set_public_key(absl::StrCat("  ", kEd25519, "\n"));
  auto key = Finish<v1::KeyPair>(Call(&Provider::CreateKeyPair, request));
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(key->name(), Res("keyPairs", "ops"));
  EXPECT_EQ(key->display_name(), "Ops");
  EXPECT_EQ(key->public_key(), kEd25519);
  EXPECT_EQ(key->fingerprint(), kEd25519Fingerprint);
  EXPECT_EQ(Call(&Provider::CreateKeyPair, request).status().code(),
            absl::StatusCode::kAlreadyExists);

  request.set_key_pair_id("");
  request.mutable_key_pair()->set_public_key(kEcdsa);
  auto ecdsa = Finish<v1::KeyPair>(Call(&Provider::CreateKeyPair, request));
  ASSERT_TRUE(ecdsa.ok()) << ecdsa.status();
  EXPECT_THAT(ecdsa->name(), MatchesRegex(".*/keyPairs/key-[0-9a-f]{12}"));
  EXPECT_EQ(ecdsa->fingerprint(), kEcdsaFingerprint);
  request.mutable_key_pair()->set_public_key(kRsa);
  auto rsa = Finish<v1::KeyPair>(Call(&Provider::CreateKeyPair, request));
  ASSERT_TRUE(rsa.ok()) << rsa.status();
  EXPECT_EQ(rsa->fingerprint(), kRsaFingerprint);
  EXPECT_EQ(rsa->public_key(), kRsa);

  v1::ListKeyPairsRequest list;
  list.set_parent(kParent);
  auto listed = Call(&Provider::ListKeyPairs, list);
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_THAT(listed->key_pairs(), SizeIs(3));

  v1::DeleteKeyPairRequest del;
  del.set_name(Res("keyPairs", "ops"));
  ASSERT_TRUE(Finish<google::protobuf::Empty>(Call(&Provider::DeleteKeyPair, del)).ok());
  v1::GetKeyPairRequest get;
  get.set_name(Res("keyPairs", "ops"));
  EXPECT_EQ(Call(&Provider::GetKeyPair, get).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Call(&Provider::DeleteKeyPair, del).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(NetworksTest, InstanceKeyNameMustNameAKeyPair) {
  v1::CreateInstanceRequest request = InstanceOn("web-1", {});
  request.mutable_instance()->set_key_name("ops");
  EXPECT_EQ(Call(&Provider::CreateInstance, request).status().code(),
            absl::StatusCode::kNotFound);
  request.mutable_instance()->set_key_name("Not An Id");
  EXPECT_EQ(BadField(Call(&Provider::CreateInstance, request).status()), "instance.key_name");
  v1::CreateKeyPairRequest key;
  key.set_parent(kParent);
  key.set_key_pair_id("ops");
  key.mutable_key_pair()->set_public_key(kEd25519);
  ASSERT_TRUE(Finish<v1::KeyPair>(Call(&Provider::CreateKeyPair, key)).ok());
  request.mutable_instance()->set_key_name(Res("keyPairs", "ops"));
  auto made = Finish<v1::Instance>(Call(&Provider::CreateInstance, request));
  ASSERT_TRUE(made.ok()) << made.status();
  EXPECT_TRUE(made->key_name().empty());  // INPUT_ONLY
  // Kept in the record.
  auto bytes = store_->GetResource(kAccount, "instances", "web-1");
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  auto record = DecodeRecord(*bytes);
  ASSERT_TRUE(record.ok()) << record.status();
  EXPECT_EQ(record->key_name(), Res("keyPairs", "ops"));
}

TEST_F(NetworksTest, InterfacesTakeAddressesAndGiveThemBack) {
  ASSERT_TRUE(MakeNetwork("private", "10.0.0.0/24").ok());
  ASSERT_TRUE(MakeNetwork("backup", "10.9.0.0/24").ok());
  const std::string net = Res("networks", "private");
  ASSERT_TRUE(Finish<v1::Address>(Reserve(net, "10.0.0.50")).ok());

  // Refusals change nothing.
  EXPECT_EQ(Call(&Provider::CreateInstance, InstanceOn("web-1", {Nic(Res("networks", "x"))}))
                .status()
                .code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(BadField(Call(&Provider::CreateInstance,
                          InstanceOn("web-1", {Nic(net), Nic(net, "10.9.0.5")}))
                         .status()),
            "instance.network_interfaces[1].address");
  v1::NetworkInterface bad_mac = Nic(net);
  bad_mac.set_mac_address("01:00:00:00:00:01");  // multicast
  EXPECT_EQ(BadField(Call(&Provider::CreateInstance, InstanceOn("web-1", {bad_mac})).status()),
            "instance.network_interfaces[0].mac_address");
  v1::NetworkInterface bad_model = Nic(net);
  bad_model.set_model("ne2000");
  EXPECT_EQ(
      BadField(Call(&Provider::CreateInstance, InstanceOn("web-1", {bad_model})).status()),
      "instance.network_interfaces[0].model");
  EXPECT_THAT(AddressNames(), ElementsAre(Res("addresses", "10.0.0.50")));

  // The reserved address, then the next free one.
  v1::NetworkInterface second = Nic(net);
  second.set_model("E1000");
  second.set_mac_address("02:AA:BB:CC:DD:EE");
  auto made = Finish<v1::Instance>(
      Call(&Provider::CreateInstance, InstanceOn("web-1", {Nic(net, "10.0.0.50"), second})));
  ASSERT_TRUE(made.ok()) << made.status();
  ASSERT_THAT(made->network_interfaces(), SizeIs(2));
  const v1::NetworkInterface& nic0 = made->network_interfaces(0);
  EXPECT_EQ(nic0.id(), "0");
  EXPECT_EQ(nic0.network(), net);
  EXPECT_EQ(nic0.address(), "10.0.0.50");
  EXPECT_THAT(nic0.mac_address(), MatchesRegex("02:00(:[0-9a-f]{2}){4}"));
  EXPECT_EQ(nic0.model(), "virtio");
  EXPECT_EQ(made->network_interfaces(1).id(), "1");
  EXPECT_EQ(made->network_interfaces(1).address(), "10.0.0.1");
  EXPECT_EQ(made->network_interfaces(1).mac_address(), "02:aa:bb:cc:dd:ee");
  EXPECT_EQ(made->network_interfaces(1).model(), "e1000");
  EXPECT_THAT(made->ip_addresses(), ElementsAre("10.0.0.50", "10.0.0.1"));
  auto used = GetAddress("10.0.0.50");
  ASSERT_TRUE(used.ok()) << used.status();
  EXPECT_EQ(used->state(), v1::Address::IN_USE);
  EXPECT_EQ(used->instance(), Res("instances", "web-1"));
  EXPECT_EQ(GetAddress("10.0.0.1")->instance(), Res("instances", "web-1"));
  EXPECT_EQ(GetNetwork("private")->used_addresses(), 2);

  // In use: not for another instance, not to release, and the network stays.
  EXPECT_EQ(Call(&Provider::CreateInstance, InstanceOn("web-2", {Nic(net, "10.0.0.50")}))
                .status()
                .code(),
            absl::StatusCode::kFailedPrecondition);
  v1::NetworkInterface same_mac = Nic(net);
  same_mac.set_mac_address("02:aa:bb:cc:dd:ee");
  EXPECT_EQ(BadField(Call(&Provider::CreateInstance, InstanceOn("web-2", {same_mac})).status()),
            "instance.network_interfaces[0].mac_address");
  v1::ReleaseAddressRequest release;
  release.set_name(Res("addresses", "10.0.0.50"));
  EXPECT_EQ(Call(&Provider::ReleaseAddress, release).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(DeleteNetwork("private").status().code(), absl::StatusCode::kFailedPrecondition);

  // Attach a third on another network, detach the second: ids are not reused.
  v1::AttachNetworkInterfaceRequest attach;
  attach.set_name(Res("instances", "web-1"));
  *attach.mutable_network_interface() = Nic(Res("networks", "backup"));
  auto attached = Finish<v1::Instance>(Call(&Provider::AttachNetworkInterface, attach));
  ASSERT_TRUE(attached.ok()) << attached.status();
  ASSERT_THAT(attached->network_interfaces(), SizeIs(3));
  EXPECT_EQ(attached->network_interfaces(2).id(), "2");
  EXPECT_EQ(attached->network_interfaces(2).address(), "10.9.0.1");
  v1::DetachNetworkInterfaceRequest detach;
  detach.set_name(Res("instances", "web-1"));
  detach.set_network_interface_id("1");
  auto detached = Finish<v1::Instance>(Call(&Provider::DetachNetworkInterface, detach));
  ASSERT_TRUE(detached.ok()) << detached.status();
  ASSERT_THAT(detached->network_interfaces(), SizeIs(2));
  EXPECT_THAT(detached->ip_addresses(), ElementsAre("10.0.0.50", "10.9.0.1"));
  EXPECT_EQ(GetAddress("10.0.0.1").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Call(&Provider::DetachNetworkInterface, detach).status().code(),
            absl::StatusCode::kNotFound);
  attach.mutable_network_interface()->set_network(net);
  attached = Finish<v1::Instance>(Call(&Provider::AttachNetworkInterface, attach));
  ASSERT_TRUE(attached.ok()) << attached.status();
  EXPECT_EQ(attached->network_interfaces(2).id(), "3");
  EXPECT_EQ(attached->network_interfaces(2).address(), "10.0.0.1");

  // Deleting the instance frees its addresses: the reserved one stays
  // reserved, the others go.
  v1::DeleteInstanceRequest del;
  del.set_name(Res("instances", "web-1"));
  ASSERT_TRUE(Call(&Provider::DeleteInstance, del).ok());
  auto back = GetAddress("10.0.0.50");
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->state(), v1::Address::RESERVED);
  EXPECT_TRUE(back->instance().empty());
  EXPECT_THAT(AddressNames(), ElementsAre(Res("addresses", "10.0.0.50")));
  EXPECT_EQ(GetNetwork("private")->used_addresses(), 1);
  ASSERT_TRUE(Call(&Provider::ReleaseAddress, release).ok());
  EXPECT_THAT(AddressNames(), IsEmpty());
  auto gone = Finish<google::protobuf::Empty>(DeleteNetwork("private"));
  ASSERT_TRUE(gone.ok()) << gone.status();
  EXPECT_EQ(GetNetwork("private").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(NetworksTest, PublicInterfaceAndAttachNeedsAnInstanceAtRest) {
  auto made = Finish<v1::Instance>(Call(&Provider::CreateInstance, InstanceOn("web-1", {Nic("")})));
  ASSERT_TRUE(made.ok()) << made.status();
  ASSERT_THAT(made->network_interfaces(), SizeIs(1));
  EXPECT_EQ(made->network_interfaces(0).address(), "203.0.113.1");
  EXPECT_TRUE(made->network_interfaces(0).network().empty());
  ASSERT_TRUE(CreateInstance("web-2").ok());  // PROVISIONING for 50 ms
  v1::AttachNetworkInterfaceRequest attach;
  attach.set_name(Res("instances", "web-2"));
  attach.mutable_network_interface();
  EXPECT_EQ(Call(&Provider::AttachNetworkInterface, attach).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(AddressNames(), ElementsAre(Res("addresses", "203.0.113.1")));
}

TEST_F(NetworksTest, CancelledCreateAndRedrivenAttachKeepAddressesRight) {
  ASSERT_TRUE(MakeNetwork("private", "10.0.0.0/24").ok());
  ASSERT_TRUE(Finish<v1::Firewall>(CreateFirewall("web")).ok());
  const std::string net = Res("networks", "private");
  v1::NetworkInterface guarded = Nic(net);
  guarded.set_firewall(Res("firewalls", "web"));
  auto creating = Call(&Provider::CreateInstance, InstanceOn("web-1", {guarded}));
  ASSERT_TRUE(creating.ok()) << creating.status();
  EXPECT_EQ(GetInstance("web-1")->network_interfaces(0).firewall(), Res("firewalls", "web"));
  // A firewall on an interface is in use.
  v1::DeleteFirewallRequest drop;
  drop.set_name(Res("firewalls", "web"));
  EXPECT_EQ(Call(&Provider::DeleteFirewall, drop).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(AddressNames(), ElementsAre(Res("addresses", "10.0.0.1")));
  // Cancelling the create deletes the instance and frees its address.
  auto undone = [&] {
    std::optional<absl::StatusOr<MutationProgress>> out;
    provider_->CancelMutation(Ctx(), FullMethodName("ComputeService", "CreateInstance"),
                              creating->poll_token,
                              [&out](absl::StatusOr<MutationProgress> r) { out = std::move(r); });
    return *out;
  }();
  ASSERT_TRUE(undone.ok()) << undone.status();
  EXPECT_THAT(AddressNames(), IsEmpty());
  EXPECT_EQ(GetNetwork("private")->used_addresses(), 0);

  // A re-driven attach (same operation) adds one interface, not two.
  RunningInstance("web-2");
  v1::AttachNetworkInterfaceRequest attach;
  attach.set_name(Res("instances", "web-2"));
  *attach.mutable_network_interface() = Nic(net);
  for (int i = 0; i < 2; ++i) {
    auto attached = Finish<v1::Instance>(
        Call(&Provider::AttachNetworkInterface, attach, Ctx("operations/attach-1")));
    ASSERT_TRUE(attached.ok()) << attached.status();
  }
  auto got = GetInstance("web-2");
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_THAT(got->network_interfaces(), SizeIs(1));
  EXPECT_THAT(AddressNames(), ElementsAre(Res("addresses", "10.0.0.1")));
}

TEST_F(NetworksTest, ValidateOnlyReservesNothing) {
  ASSERT_TRUE(MakeNetwork("private", "10.0.0.0/24").ok());
  CallContext validate = Ctx();
  validate.validate_only = true;
  v1::ReserveAddressRequest request;
  request.set_parent(kParent);
  request.mutable_address()->set_network(Res("networks", "private"));
  auto checked = Call(&Provider::ReserveAddress, request, validate);
  ASSERT_TRUE(checked.ok()) << checked.status();
  EXPECT_TRUE(checked->done);
  EXPECT_TRUE(checked->result.Is<v1::Address>());
  EXPECT_THAT(AddressNames(), IsEmpty());
  auto created = Call(&Provider::CreateInstance,
                      InstanceOn("web-1", {Nic(Res("networks", "private"))}), validate);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_THAT(AddressNames(), IsEmpty());
  EXPECT_EQ(GetNetwork("private")->used_addresses(), 0);
}

}  // namespace
}  // namespace cloudplane::adapters::sandbox
