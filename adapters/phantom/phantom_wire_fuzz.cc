// Fuzz harness of Phantom's wire translation (tools/bazel/fuzz.bzl): the REST
// API answers (token, sites, errors) and the Auto Scaling query answers
// (launch configurations and groups, in both dialects) get each input.
// Properties:
//   - every Location, LaunchTemplate and ScalingGroup that comes out has
//     valid UTF-8 in every string and crosses the wire to a gRPC peer
//     unchanged; tokens and user ids are valid UTF-8;
//   - the status for an error answer converts to a gRPC status a client can
//     read.
#include <cstddef>
#include <cstdint>

#include "absl/strings/ascii.h"
#include "adapters/common/aws/query.h"
#include "adapters/phantom/phantom_wire.h"
#include "base/fuzzing/fuzz_checks.h"

namespace {

using namespace cloudplane;
using namespace cloudplane::adapters::phantom;

void Rest(absl::string_view body) {
  for (int http_status : {200, 403}) {
    if (auto token = ParseTokenResponse(http_status, body); token.ok()) {
      fuzzing::CheckUtf8(token->user_id, "token user id");
      fuzzing::CheckUtf8(token->token, "token");
    } else {
      fuzzing::CheckStatus(token.status(), "ParseTokenResponse");
    }
  }
  if (auto sites = ParseSites(body, "lab"); sites.ok()) {
    for (const auto& site : *sites) fuzzing::CheckMessage(site, "ParseSites");
  } else {
    fuzzing::CheckStatus(sites.status(), "ParseSites");
  }
}

void Query(absl::string_view body) {
  for (absl::string_view action : {"DescribeLaunchConfigurations", "DescribeAutoScalingGroups"}) {
    auto response = aws::ParseQueryResponse(action, body);
    if (!response.ok()) continue;
    for (Dialect dialect : {Dialect::kPhantom, Dialect::kAws}) {
      if (auto lcs = ParseLaunchConfigs(*response->result); lcs.ok()) {
        for (const auto& t : TemplatesFromWire(dialect, "lab", *lcs)) {
          fuzzing::CheckMessage(t, "TemplatesFromWire");
        }
      } else {
        fuzzing::CheckStatus(lcs.status(), "ParseLaunchConfigs");
      }
      if (auto groups = ParseGroups(*response->result); groups.ok()) {
        for (const WireGroup& group : *groups) {
          fuzzing::CheckMessage(GroupFromWire(dialect, "lab", group), "GroupFromWire");
          (void)GroupSettled(group, group.desired);
        }
      } else {
        fuzzing::CheckStatus(groups.status(), "ParseGroups");
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view body = fuzzing::AsText(data, size);
  for (int http_status : {403, 500}) {
    fuzzing::CheckStatus(StatusFromRest(http_status, body, "GET /sites"), "StatusFromRest");
  }
  // REST answers are JSON and query answers XML; each body goes to the
  // readers of its kind (the adapter knows which API it asked).
  const absl::string_view start = absl::StripLeadingAsciiWhitespace(body);
  if (!start.empty() && start.front() == '<') {
    Query(body);
  } else {
    Rest(body);
  }
  return 0;
}
