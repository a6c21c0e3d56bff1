// Fuzz harness of enStratus / Dell Cloud Manager's wire translation
// (tools/bazel/fuzz.bzl): every parser of a DCM answer, the job reader and
// the error mapping get each input. Properties:
//   - every message that comes out (Instance, Firewall, FirewallRule,
//     Network, Location, Image, MachineType, BillingCode, Volume) has valid
//     UTF-8 in every string and crosses the wire to a gRPC peer unchanged,
//     and a job becomes an Operation that does too;
//   - the status for an error answer converts to a gRPC status a client can
//     read.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "adapters/common/json/json.h"
#include "adapters/enstratus/enstratus_wire.h"
#include "base/fuzzing/fuzz_checks.h"
#include "rapidjson/document.h"

namespace {

using namespace cloudplane;
using namespace cloudplane::adapters::enstratus;

template <typename T>
void CheckAll(const absl::StatusOr<std::vector<T>>& result, absl::string_view where) {
  if (!result.ok()) {
    fuzzing::CheckStatus(result.status(), where);
    return;
  }
  for (const T& item : *result) fuzzing::CheckMessage(item, where);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view json = fuzzing::AsText(data, size);
  Aliases aliases;
  aliases.instances[1] = "web";
  aliases.firewalls[2] = "edge";
  aliases.volumes[3] = "data";
  for (int http_status : {403, 409}) {
    fuzzing::CheckStatus(StatusFromResponse(http_status, json, "GET infrastructure/Server"),
                         "StatusFromResponse");
  }
  // Each answer is parsed by the reader for the collection it holds, as in
  // the adapter; a body that is no JSON object goes to one reader, for its
  // error.
  rapidjson::Document doc;
  if (!json::Parse(json, "DCM", doc).ok() || !doc.IsObject()) {
    CheckAll(ParseServers(json, "lab", aliases), "ParseServers");
    return 0;
  }
  const auto has = [&](const char* key) { return doc.HasMember(key); };
  if (has("servers")) CheckAll(ParseServers(json, "lab", aliases), "ParseServers");
  if (has("firewalls")) CheckAll(ParseFirewalls(json, "lab", aliases), "ParseFirewalls");
  if (has("networks")) CheckAll(ParseNetworks(json, "lab"), "ParseNetworks");
  if (has("rules")) CheckAll(ParseFirewallRules(json, "lab", aliases), "ParseFirewallRules");
  if (has("regions")) CheckAll(ParseRegions(json, "lab"), "ParseRegions");
  if (has("dataCenters")) CheckAll(ParseDataCenters(json, "lab"), "ParseDataCenters");
  if (has("images")) CheckAll(ParseMachineImages(json, "lab"), "ParseMachineImages");
  if (has("serverProducts")) {
    CheckAll(ParseServerProducts(json, "lab"), "ParseServerProducts");
    if (auto product = ParseFirstProduct(json); product.ok()) {
      fuzzing::CheckUtf8(product->provider_product_id, "provider product id");
    }
  }
  if (has("billingCodes")) CheckAll(ParseBillingCodes(json, "lab"), "ParseBillingCodes");
  if (has("volumes")) {
    CheckAll(ParseVolumes(json, "lab", aliases), "ParseVolumes");
    if (auto volume = ParseFirstVolume(json); volume.ok()) {
      fuzzing::CheckUtf8(volume->status, "volume status");
    }
  }
  if (has("jobs")) {
    if (auto jobs = ParseJobs(json); jobs.ok()) {
      for (const Job& job : *jobs) {
        fuzzing::CheckMessage(JobToOperation(job, "lab"), "JobToOperation");
      }
    } else {
      fuzzing::CheckStatus(jobs.status(), "ParseJobs");
    }
  }
  if (has("servers")) {
    if (auto items = ParseTaggedItems(json, "servers", "serverId"); items.ok()) {
      for (const TaggedItem& item : *items) fuzzing::CheckUtf8(item.operation, "tagged operation");
    }
  }
  return 0;
}
