// Fuzz harness of fleet's wire translation (tools/bazel/fuzz.bzl): every
// parser of a fleet answer, the error mapping and the poll-token reader get
// each input. Properties:
//   - every Unit, UnitState and Machine that comes out has valid UTF-8 in
//     every string and crosses the wire to a gRPC peer unchanged;
//   - page tokens are valid UTF-8;
//   - the status for an error answer converts to a gRPC status a client can
//     read;
//   - a poll token that parses is made again, byte for byte, from what it
//     says.
#include <cstddef>
#include <cstdint>

#include "adapters/common/json/json.h"
#include "adapters/fleet/fleet_wire.h"
#include "base/fuzzing/fuzz_checks.h"
#include "rapidjson/document.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cloudplane;
  using namespace cloudplane::adapters::fleet;
  using fuzzing::CheckMessage;
  using fuzzing::CheckStatus;
  const absl::string_view input = fuzzing::AsText(data, size);

  // Each answer goes to the reader for what it holds (a page's list key,
  // else one unit or unit state), as in the adapter; a body that is no JSON
  // object goes to one reader, for its error.
  rapidjson::Document doc;
  if (!json::Parse(input, "fleet", doc).ok() || !doc.IsObject()) {
    fuzzing::CheckResult(ParseUnit(input, "lab"), "ParseUnit");
  } else if (doc.HasMember("units")) {
    if (auto page = ParseUnitPage(input, "lab"); page.ok()) {
      for (const auto& unit : page->units) CheckMessage(unit, "ParseUnitPage");
      fuzzing::CheckUtf8(page->next_page_token, "ParseUnitPage token");
    } else {
      CheckStatus(page.status(), "ParseUnitPage");
    }
  } else if (doc.HasMember("states")) {
    if (auto page = ParseUnitStatePage(input, "lab"); page.ok()) {
      for (const auto& state : page->states) CheckMessage(state, "ParseUnitStatePage");
      fuzzing::CheckUtf8(page->next_page_token, "ParseUnitStatePage token");
    } else {
      CheckStatus(page.status(), "ParseUnitStatePage");
    }
  } else if (doc.HasMember("machines")) {
    if (auto page = ParseMachinePage(input, "lab"); page.ok()) {
      for (const auto& machine : page->machines) CheckMessage(machine, "ParseMachinePage");
      fuzzing::CheckUtf8(page->next_page_token, "ParseMachinePage token");
    } else {
      CheckStatus(page.status(), "ParseMachinePage");
    }
  } else {
    fuzzing::CheckResult(ParseUnit(input, "lab"), "ParseUnit");
    fuzzing::CheckResult(ParseUnitState(input, "lab"), "ParseUnitState");
  }
  CheckStatus(StatusFromResponse(500, input, "GET unit hello.service"), "StatusFromResponse");
  (void)IsFleetErrorEnvelope(500, input);
  if (auto target = ParsePollToken(input); target.ok()) {
    const std::string again = MakePollToken(target->unit_name, target->desired_state);
    auto reread = ParsePollToken(again);
    FUZZ_CHECK(reread.ok() && reread->unit_name == target->unit_name &&
                   reread->desired_state == target->desired_state,
               "a poll token changes when made again");
  }
  return 0;
}
