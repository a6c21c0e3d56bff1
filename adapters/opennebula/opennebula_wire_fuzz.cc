// Fuzz harness of OpenNebula's wire translation (tools/bazel/fuzz.bzl). An
// input is read twice: as an XML-RPC answer (ResultFromResponse; a string
// result is then read as the object document it carries) and as an object
// document itself. A document goes to the converter for its root (VM, HOST,
// VMTEMPLATE, ZONE, CLUSTER, MARKETPLACE, IMAGE, SECURITY_GROUP, VNET, USER,
// and each element of their *_POOL). Properties:
//   - every message that comes out has valid UTF-8 in every string and
//     crosses the wire to a gRPC peer unchanged, as do leases, NICs, labels
//     and SSH keys;
//   - the status for a fault or a malformed answer converts to a gRPC status
//     a client can read.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "absl/strings/match.h"
#include "adapters/common/xml/xml.h"
#include "adapters/common/xmlrpc/xmlrpc.h"
#include "adapters/opennebula/opennebula_wire.h"
#include "base/fuzzing/fuzz_checks.h"

namespace {

using namespace cloudplane;
using namespace cloudplane::adapters::opennebula;

using fuzzing::CheckResult;

void CheckMap(const std::map<std::string, std::string>& map, absl::string_view where) {
  for (const auto& [key, value] : map) {
    fuzzing::CheckUtf8(key, where);
    fuzzing::CheckUtf8(value, where);
  }
}

void Element(const xml::Node& node) {
  const absl::string_view root = node.Name();
  if (root == "VM") {
    (void)SummarizeVm(node);
    CheckResult(InstanceFromVm(node, "lab", "7"), "InstanceFromVm");
    for (const auto& nic : NicsFromVm(node, "lab")) fuzzing::CheckMessage(nic, "NicsFromVm");
    (void)NicIds(node);
    (void)DiskOfImage(node, 3);
  } else if (root == "HOST") {
    CheckResult(HostFromXml(node, "lab"), "HostFromXml");
  } else if (root == "VMTEMPLATE") {
    CheckResult(ImageFromTemplate(node, "lab"), "ImageFromTemplate");
  } else if (root == "ZONE") {
    CheckResult(LocationFromZone(node, "lab"), "LocationFromZone");
  } else if (root == "CLUSTER") {
    CheckResult(LocationFromCluster(node, "lab"), "LocationFromCluster");
  } else if (root == "MARKETPLACE") {
    CheckResult(LocationFromMarketplace(node, "lab"), "LocationFromMarketplace");
  } else if (root == "IMAGE") {
    (void)SummarizeImage(node);
    CheckResult(VolumeFromImage(node, "lab", "3", {{7, "7"}}), "VolumeFromImage");
  } else if (root == "SECURITY_GROUP") {
    for (const SgRule& rule : SecurityGroupRules(node)) fuzzing::CheckUtf8(rule.id, "rule id");
    CheckResult(FirewallFromSecurityGroup(node, "lab", "5"), "FirewallFromSecurityGroup");
  } else if (root == "VNET") {
    CheckResult(NetworkFromVnet(node, "lab", "0"), "NetworkFromVnet");
    for (const Lease& lease : LeasesOfVnet(node)) {
      fuzzing::CheckUtf8(lease.ip, "lease ip");
      fuzzing::CheckUtf8(lease.mac, "lease mac");
    }
  } else if (root == "USER") {
    const xml::Node* tmpl = node.Child("TEMPLATE");
    CheckMap(SingleAttributes(tmpl), "user template");
    CheckMap(LabelsFromUserTemplate(tmpl), "labels");
    for (const SshKey& key : SshKeysFromText(tmpl ? tmpl->ChildText("SSH_PUBLIC_KEY") : "")) {
      fuzzing::CheckUtf8(key.id, "key id");
      fuzzing::CheckUtf8(key.fingerprint, "key fingerprint");
    }
  } else if (absl::EndsWith(root, "_POOL")) {
    for (const xml::Node& child : node.Children()) Element(child);
  }
}

void Document(absl::string_view text) {
  auto doc = xml::Parse(text);
  if (doc.ok()) Element(doc->Root());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view input = fuzzing::AsText(data, size);
  auto result = ResultFromResponse(200, input, "one.vm.info");
  if (result.ok()) {
    if (result->type() == xmlrpc::Value::Type::kString) Document(result->AsString());
    if (auto id = IntResult(*result, "one.vm.allocate"); !id.ok()) {
      fuzzing::CheckStatus(id.status(), "IntResult");
    }
  } else {
    fuzzing::CheckStatus(result.status(), "ResultFromResponse");
  }
  Document(input);
  return 0;
}
