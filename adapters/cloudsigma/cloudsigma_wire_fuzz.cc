// Fuzz harness of CloudSigma's wire translation (tools/bazel/fuzz.bzl):
// each input is read as an object and as a list page, each object goes to
// its collection's converter; the input also goes to the action and error
// readers, and a server to EditServer as the server it edits. Properties:
//   - every message that comes out (Instance, Volume, Image, Location,
//     Network, Address, KeyPair, InstanceMetadata) has valid UTF-8 in every
//     string and crosses the wire to a gRPC peer unchanged;
//   - the status for an error answer converts to a gRPC status a client can
//     read;
//   - a server that EditServer changed is still a CloudSigma object
//     (ParseObject reads it back with the same uuid) and carries the edit.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "adapters/cloudsigma/cloudsigma_wire.h"
#include "base/fuzzing/fuzz_checks.h"

namespace {

using namespace cloudplane;
using namespace cloudplane::adapters::cloudsigma;

using fuzzing::CheckResult;

// What the adapter does with an object: the converter for its collection
// (from its resource_uri), as ParseObject and ParsePage report it.
void Convert(const WireObject& o) {
  const IdMap ids = {{"00000000-0000-0000-0000-000000000001", "boot"}};
  const SubscriptionMap subscriptions = {
      {"14", Subscription{.id = "14", .resource = "vlan", .status = "active", .auto_renew = true}}};
  const std::string& type = o.resource_type;
  if (type == "servers") {
    CheckResult(ServerToInstance(o.json, "lab", ids), "ServerToInstance");
    CheckResult(ServerToMetadata(o.json, "lab"), "ServerToMetadata");
  } else if (type == "drives") {
    CheckResult(DriveToVolume(o.json, "lab", ids), "DriveToVolume");
  } else if (type == "libdrives") {
    CheckResult(LibdriveToImage(o.json, "lab"), "LibdriveToImage");
  } else if (type == "vlans") {
    CheckResult(VlanToNetwork(o.json, "lab", subscriptions), "VlanToNetwork");
  } else if (type == "ips") {
    CheckResult(IpToAddress(o.json, "lab", ids, subscriptions), "IpToAddress");
  } else if (type == "keypairs") {
    CheckResult(KeypairToKeyPair(o.json, "lab"), "KeypairToKeyPair");
  } else if (type == "subscriptions") {
    if (auto sub = SubscriptionFromWire(o.json); sub.ok()) {
      fuzzing::CheckUtf8(sub->id, "subscription id");
      fuzzing::CheckUtf8(sub->subscribed_object, "subscribed object");
    }
  } else if (type == "locations") {
    CheckResult(LocationFromWire(o.json, "lab"), "LocationFromWire");
  } else if (type == "fwpolicies") {
    CheckResult(PolicyToFirewall(o.json, "lab"), "PolicyToFirewall");
    auto rules = PolicyRules(o.json);
    if (!rules.ok()) return;
    std::vector<FwRule> kept;
    for (const FwRuleEntry& entry : *rules) {
      const v1::FirewallRule rule = FwRuleToFirewallRule(entry.rule, "r");
      fuzzing::CheckMessage(rule, "FwRuleToFirewallRule");
      // A rule the API can hold goes back to CloudSigma as a rule that
      // reads the same again.
      if (auto back = FwRuleFromFirewallRule(rule, "rule"); back.ok()) {
        fuzzing::CheckMessage(FwRuleToFirewallRule(*back, "r"), "FwRuleToFirewallRule");
        FUZZ_CHECK(FwRuleToFirewallRule(*back, "r").SerializeAsString() == rule.SerializeAsString(),
                   "a firewall rule changes when written to CloudSigma and read back");
      }
      kept.push_back(entry.rule);
    }
    // Rewriting the rules keeps them, and their ids.
    if (auto edited = EditPolicyRules(o.json, kept); edited.ok()) {
      auto again = PolicyRules(*edited);
      FUZZ_CHECK(again.ok() && again->size() == rules->size(), "an edited policy lost rules");
      for (size_t i = 0; i < rules->size(); ++i) {
        FUZZ_CHECK((*again)[i].id == (*rules)[i].id, "an edited policy renamed a rule");
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input = fuzzing::BodyOf(fuzzing::AsText(data, size));
  // One converter per object, chosen by its collection, as in the adapter
  // (a mutated resource_uri leads the same bytes to another converter).
  auto object = ParseObject(input);
  if (object.ok()) {
    fuzzing::CheckUtf8(object->uuid, "object uuid");
    Convert(*object);
  } else {
    // Locations and subscriptions have no uuid, so no WireObject.
    fuzzing::CheckStatus(object.status(), "ParseObject");
    Convert(WireObject{.resource_type = "locations", .json = std::string(input)});
    Convert(WireObject{.resource_type = "subscriptions", .json = std::string(input)});
  }
  if (auto page = ParsePage(input); page.ok()) {
    for (const WireObject& o : page->objects) {
      fuzzing::CheckUtf8(o.uuid, "page object uuid");
      Convert(o);
    }
  } else {
    fuzzing::CheckStatus(page.status(), "ParsePage");
  }
  fuzzing::CheckStatus(ParseActionResult(input), "ParseActionResult");
  fuzzing::CheckStatus(StatusFromResponse(400, input, "PUT servers", "instance."),
                       "StatusFromResponse");

  if (object.ok() && object->resource_type == "servers") {
    ServerEdit edit;
    edit.name = "renamed";
    edit.labels = std::map<std::string, std::string>{{"env", "prod"}};
    edit.add_nic = NicSpec{.model = "e1000"};
    edit.detach_uuid = "00000000-0000-0000-0000-000000000001";
    auto edited = EditServer(object->json, edit);
    if (edited.ok()) {
      auto back = ParseObject(*edited);
      FUZZ_CHECK(back.ok(), "an edited server is not a CloudSigma object");
      FUZZ_CHECK(back->uuid == object->uuid, "an edit changed the server's uuid");
      FUZZ_CHECK(absl::StrContains(*edited, "\"name\":\"renamed\""), "an edit lost the new name");
      for (const std::string& uuid : back->referenced_uuids) {
        FUZZ_CHECK(uuid != "00000000-0000-0000-0000-000000000001",
                   "a detached drive is still referenced");
      }
    }
  }
  return 0;
}
