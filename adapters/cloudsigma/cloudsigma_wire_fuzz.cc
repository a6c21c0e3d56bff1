// Fuzz harness of CloudSigma's wire translation (tools/bazel/fuzz.bzl):
// each input goes to every parser of a CloudSigma answer, to the error
// mapping, and to EditServer as the server it edits. Properties:
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

#include "absl/strings/match.h"
#include "adapters/cloudsigma/cloudsigma_wire.h"
#include "base/fuzzing/fuzz_checks.h"

namespace {

using namespace cloudplane;
using namespace cloudplane::adapters::cloudsigma;

using fuzzing::CheckResult;

void Objects(absl::string_view json) {
  const IdMap ids = {{"00000000-0000-0000-0000-000000000001", "boot"}};
  SubscriptionMap subscriptions;
  if (auto s = SubscriptionFromWire(json); s.ok()) {
    fuzzing::CheckUtf8(s->id, "subscription id");
    fuzzing::CheckUtf8(s->subscribed_object, "subscribed object");
    subscriptions[s->id] = *s;
  }
  CheckResult(DriveToVolume(json, "lab", ids), "DriveToVolume");
  CheckResult(ServerToInstance(json, "lab", ids), "ServerToInstance");
  CheckResult(LibdriveToImage(json, "lab"), "LibdriveToImage");
  CheckResult(LocationFromWire(json, "lab"), "LocationFromWire");
  CheckResult(VlanToNetwork(json, "lab", subscriptions), "VlanToNetwork");
  CheckResult(IpToAddress(json, "lab", ids, subscriptions), "IpToAddress");
  CheckResult(KeypairToKeyPair(json, "lab"), "KeypairToKeyPair");
  CheckResult(ServerToMetadata(json, "lab"), "ServerToMetadata");
}


// What the adapter does with an object of a list page: the converter for its
// collection only (a page is converted object by object).
void PageObject(const WireObject& o) {
  const IdMap ids;
  const SubscriptionMap subscriptions;
  if (o.resource_type == "servers") {
    CheckResult(ServerToInstance(o.json, "lab", ids), "ServerToInstance");
  } else if (o.resource_type == "drives") {
    CheckResult(DriveToVolume(o.json, "lab", ids), "DriveToVolume");
  } else if (o.resource_type == "libdrives") {
    CheckResult(LibdriveToImage(o.json, "lab"), "LibdriveToImage");
  } else if (o.resource_type == "vlans") {
    CheckResult(VlanToNetwork(o.json, "lab", subscriptions), "VlanToNetwork");
  } else if (o.resource_type == "ips") {
    CheckResult(IpToAddress(o.json, "lab", ids, subscriptions), "IpToAddress");
  } else if (o.resource_type == "keypairs") {
    CheckResult(KeypairToKeyPair(o.json, "lab"), "KeypairToKeyPair");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input = fuzzing::BodyOf(fuzzing::AsText(data, size));
  // A single object (or the first of an envelope) goes to every converter,
  // so each meets shapes meant for the others; the objects of a page go to
  // their own collection's converter, as in the adapter.
  auto object = ParseObject(input);
  if (object.ok()) {
    fuzzing::CheckUtf8(object->uuid, "object uuid");
    Objects(object->json);
  } else {
    fuzzing::CheckStatus(object.status(), "ParseObject");
    Objects(input);
  }
  if (auto page = ParsePage(input); page.ok()) {
    for (const WireObject& o : page->objects) {
      fuzzing::CheckUtf8(o.uuid, "page object uuid");
      PageObject(o);
    }
  } else {
    fuzzing::CheckStatus(page.status(), "ParsePage");
  }
  fuzzing::CheckStatus(ParseActionResult(input), "ParseActionResult");
  for (int http_status : {400, 409, 503}) {
    fuzzing::CheckStatus(StatusFromResponse(http_status, input, "GET servers", "instance."),
                         "StatusFromResponse");
  }

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
