#include "adapters/fleet/fleet_wire.h"

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "adapters/common/kit/poll_token.h"
#include "adapters/common/testing/fixtures.h"
#include "adapters/fleet/fleet_tokens.pb.h"
#include "base/errors.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rapidjson/document.h"

namespace cloudplane::adapters::fleet {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr absl::string_view kMachine = "b4104f4b83fd48b2acc16a085b0ec2ce";

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// This package's testdata/ (hand-written payloads) in the runfiles tree.
std::string Testdata(absl::string_view name) {
  const std::string path = testutil::RunfilePath(absl::StrCat("adapters/fleet/testdata/", name));
  EXPECT_TRUE(fs::exists(path)) << path;
  return ReadFile(path);
}

// The recorded payloads (@shared_fixtures//:fleet).
std::string Recorded(absl::string_view name) {
  return testutil::ReadFixture(absl::StrCat("fleet/", name));
}

std::string MetadataOf(const absl::Status& s, const std::string& key) {
  auto info = GetErrorInfo(s);
  if (!info.has_value()) return "<no ErrorInfo>";
  auto it = info->metadata().find(key);
  return it == info->metadata().end() ? "<absent>" : it->second;
}

std::string ReasonOf(const absl::Status& s) {
  auto info = GetErrorInfo(s);
  return info.has_value() ? info->reason() : "<no ErrorInfo>";
}

std::vector<std::string> ViolationFields(const absl::Status& s) {
  std::vector<std::string> out;
  auto bad = GetBadRequest(s);
  if (!bad.has_value()) return out;
  for (const auto& v : bad->field_violations()) out.push_back(v.field());
  return out;
}

v1::UnitOption Option(absl::string_view section, absl::string_view name,
                      absl::string_view value) {
  v1::UnitOption o;
  o.set_section(std::string(section));
  o.set_name(std::string(name));
  o.set_value(std::string(value));
  return o;
}

Options MakeOptions(std::initializer_list<v1::UnitOption> list) {
  Options out;
  for (const auto& o : list) *out.Add() = o;
  return out;
}

// ---------------------------------------------------------------------------
// Recorded payloads (shared/fixtures/fleet: python-fleet's fixtures and the
// discovery documents).

TEST(RecordedFixtures, MachinePageWithoutMetadata) {
  absl::StatusOr<MachinePage> page =
      ParseMachinePage(Recorded("machines_single_no_metadata.json"), "lab");
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->machines.size(), 1u);
  EXPECT_EQ(page->machines[0].name(), absl::StrCat("accounts/lab/machines/", kMachine));
  EXPECT_EQ(page->machines[0].primary_ip(), "198.51.100.99");
  EXPECT_TRUE(page->machines[0].metadata().empty());
  EXPECT_EQ(page->next_page_token, "");
}

// The unit file python-fleet's tests build a unit from: its lines become
// the options of the PUT body exactly as the reference's example shows.
TEST(RecordedFixtures, UnitFileBecomesPutBody) {
  // The recorded file has CRLF line ends and a trailing blank line.
  const std::string file = Recorded("test.service");
  Options options;
  std::string section;
  for (absl::string_view line : absl::StrSplit(file, '\n', absl::SkipWhitespace())) {
    absl::ConsumeSuffix(&line, "\r");
    if (absl::ConsumePrefix(&line, "[") && absl::ConsumeSuffix(&line, "]")) {
      section = std::string(line);
      continue;
    }
    std::pair<std::string, std::string> kv = absl::StrSplit(line, absl::MaxSplits('=', 1));
    *options.Add() = Option(section, kv.first, kv.second);
  }
  ASSERT_EQ(options.size(), 1);
  EXPECT_TRUE(ValidateOptions("unit.options", options).ok());
  EXPECT_FALSE(IsGlobalUnit(options));
  EXPECT_EQ(UnitPutBody(options, "launched"),
            R"({"desiredState":"launched","options":[{"section":"Service","name":"ExecStart",)"
            R"("value":"/usr/bin/sleep 1d"}]})");
}

// The discovery documents (current and pre-1.0) describe the wire format;
// every field and path this adapter relies on must be in them.
class DiscoveryDocument : public ::testing::TestWithParam<const char*> {};

std::set<std::string> Properties(const rapidjson::Value& schemas, const char* type) {
  std::set<std::string> out;
  const rapidjson::Value& props = schemas[type]["properties"];
  for (const auto& m : props.GetObject()) out.insert(m.name.GetString());
  return out;
}

TEST_P(DiscoveryDocument, MatchesWhatTheAdapterReadsAndSends) {
  const std::string text = Recorded(GetParam());
  rapidjson::Document doc;
  doc.Parse(text.c_str());
  ASSERT_FALSE(doc.HasParseError());
  EXPECT_STREQ(doc["id"].GetString(), "fleet:v1");
  EXPECT_STREQ(doc["servicePath"].GetString(), "fleet/v1/");
  const rapidjson::Value& schemas = doc["schemas"];
  EXPECT_EQ(Properties(schemas, "Unit"),
            (std::set<std::string>{"currentState", "desiredState", "machineID", "name",
                                   "options"}));
  EXPECT_EQ(Properties(schemas, "UnitOption"),
            (std::set<std::string>{"name", "section", "value"}));
  EXPECT_EQ(Properties(schemas, "UnitState"),
            (std::set<std::string>{"hash", "machineID", "name", "systemdActiveState",
                                   "systemdLoadState", "systemdSubState"}));
  EXPECT_EQ(Properties(schemas, "Machine"),
            (std::set<std::string>{"id", "metadata", "primaryIP"}));
  EXPECT_EQ(Properties(schemas, "UnitPage"), (std::set<std::string>{"nextPageToken", "units"}));
  EXPECT_EQ(Properties(schemas, "UnitStatePage"),
            (std::set<std::string>{"nextPageToken", "states"}));
  EXPECT_EQ(Properties(schemas, "MachinePage"),
            (std::set<std::string>{"machines", "nextPageToken"}));

  const rapidjson::Value& resources = doc["resources"];
  auto method = [&](const char* resource, const char* name) -> const rapidjson::Value& {
    return resources[resource]["methods"][name];
  };
  EXPECT_STREQ(method("Units", "Set")["httpMethod"].GetString(), "PUT");
  EXPECT_STREQ(method("Units", "Set")["path"].GetString(), "units/{unitName}");
  EXPECT_STREQ(method("Units", "Get")["path"].GetString(), "units/{unitName}");
  EXPECT_STREQ(method("Units", "Delete")["httpMethod"].GetString(), "DELETE");
  EXPECT_STREQ(method("Units", "List")["path"].GetString(), "units");
  EXPECT_STREQ(method("Machines", "List")["path"].GetString(), "machines");
  const rapidjson::Value& states = method("UnitState", "List");
  EXPECT_STREQ(states["path"].GetString(), "state");
  for (const char* p : {"machineID", "unitName", "nextPageToken"}) {
    EXPECT_TRUE(states["parameters"].HasMember(p)) << p;
  }
  // What this adapter sends, checked against the same document.
  EXPECT_EQ(ListUnitStatesPath("m", "u.service", "t"),
            "/fleet/v1/state?machineID=m&unitName=u.service&nextPageToken=t");
}

INSTANTIATE_TEST_SUITE_P(Recorded, DiscoveryDocument,
                         ::testing::Values("v1.json", "fleet_v1.json"));

// ---------------------------------------------------------------------------
// Hand-written payloads from the reference.

TEST(ParseUnit, ReferenceExample) {
  absl::StatusOr<v1::Unit> unit = ParseUnit(Testdata("unit_launched.json"), "lab");
  ASSERT_TRUE(unit.ok()) << unit.status();
  EXPECT_EQ(unit->name(), "accounts/lab/units/foo.service");
  EXPECT_EQ(unit->desired_state(), v1::Unit::LAUNCHED);
  EXPECT_EQ(unit->current_state(), v1::Unit::LAUNCHED);
  EXPECT_EQ(unit->machine(), absl::StrCat("accounts/lab/machines/", kMachine));
  ASSERT_EQ(unit->options_size(), 1);
  EXPECT_EQ(unit->options(0).section(), "Service");
  EXPECT_EQ(unit->options(0).name(), "ExecStart");
  EXPECT_EQ(unit->options(0).value(), "/usr/bin/sleep 1d");
}

TEST(ParseUnit, GlobalUnitFromGetHasNoCurrentStateOrMachine) {
  absl::StatusOr<v1::Unit> unit = ParseUnit(Testdata("unit_global_get.json"), "lab");
  ASSERT_TRUE(unit.ok()) << unit.status();
  EXPECT_EQ(unit->current_state(), v1::Unit::STATE_UNSPECIFIED);
  EXPECT_EQ(unit->desired_state(), v1::Unit::LAUNCHED);
  EXPECT_EQ(unit->machine(), "");
  EXPECT_TRUE(IsGlobalUnit(unit->options()));
}

TEST(ParseUnit, OmittedFieldsAreEmpty) {
  // A freshly submitted unit: no machine; an option with an empty value has
  // its "value" key omitted by Go's omitempty.
  absl::StatusOr<v1::Unit> unit = ParseUnit(
      R"({"currentState":"inactive","desiredState":"inactive","name":"x.service",)"
      R"("options":[{"name":"ExecStart","section":"Service"},{"section":"Unit"}]})",
      "lab");
  ASSERT_TRUE(unit.ok()) << unit.status();
  EXPECT_EQ(unit->current_state(), v1::Unit::INACTIVE);
  EXPECT_EQ(unit->machine(), "");
  ASSERT_EQ(unit->options_size(), 2);
  EXPECT_EQ(unit->options(0).value(), "");
  EXPECT_EQ(unit->options(1).name(), "");
  // Only a name: everything else unset.
  unit = ParseUnit(R"({"name":"y.service"})", "lab");
  ASSERT_TRUE(unit.ok()) << unit.status();
  EXPECT_EQ(unit->options_size(), 0);
  EXPECT_EQ(unit->desired_state(), v1::Unit::STATE_UNSPECIFIED);
}

TEST(ParseUnit, UnknownStateStringIsUnspecified) {
  // fleet stores any desiredState string on the update path (§5 step 7).
  absl::StatusOr<v1::Unit> unit =
      ParseUnit(R"({"desiredState":"running","name":"y.service"})", "lab");
  ASSERT_TRUE(unit.ok()) << unit.status();
  EXPECT_EQ(unit->desired_state(), v1::Unit::STATE_UNSPECIFIED);
}

TEST(ParseUnitPage, TokenAndGlobalUnitInList) {
  absl::StatusOr<UnitPage> page = ParseUnitPage(Testdata("units_page_with_token.json"), "lab");
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->next_page_token, "AgACAA==");
  ASSERT_EQ(page->units.size(), 2u);
  EXPECT_EQ(page->units[0].name(), "accounts/lab/units/a.service");
  EXPECT_EQ(page->units[0].options(1).value(), "");
  // GET /units shows a global unit as currentState inactive, no machine.
  EXPECT_EQ(page->units[1].current_state(), v1::Unit::INACTIVE);
  EXPECT_EQ(page->units[1].desired_state(), v1::Unit::LAUNCHED);
  EXPECT_EQ(page->units[1].machine(), "");
}

TEST(ParseUnitPage, EmptyAndTokenOnlyPages) {
  // An empty collection, and the page after one that ended on the last item.
  absl::StatusOr<UnitPage> page = ParseUnitPage("{}", "lab");
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_TRUE(page->units.empty());
  EXPECT_EQ(page->next_page_token, "");
  // A page that ends exactly on the last item still carries a token.
  page = ParseUnitPage(R"({"nextPageToken":"ZAACAA=="})", "lab");
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_TRUE(page->units.empty());
  EXPECT_EQ(page->next_page_token, "ZAACAA==");
}

TEST(ParseUnitState, ReferenceExample) {
  absl::StatusOr<v1::UnitState> state = ParseUnitState(Testdata("unit_state.json"), "lab");
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(state->unit(), "accounts/lab/units/foo.service");
  EXPECT_EQ(state->machine(), absl::StrCat("accounts/lab/machines/", kMachine));
  EXPECT_EQ(state->hash(), "dd401fa78c2de99a9c4045cbb4b285679067acf6");
  EXPECT_EQ(state->systemd_load_state(), "loaded");
  EXPECT_EQ(state->systemd_active_state(), "active");
  EXPECT_EQ(state->systemd_sub_state(), "running");
}

TEST(ParseUnitStatePage, StatesAndToken) {
  const std::string state = Testdata("unit_state.json");
  absl::StatusOr<UnitStatePage> page = ParseUnitStatePage(
      absl::StrCat(R"({"states":[)", state, ",", state, R"(],"nextPageToken":"AgADAA=="})"),
      "lab");
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->states.size(), 2u);
  EXPECT_EQ(page->next_page_token, "AgADAA==");
  page = ParseUnitStatePage("{}", "lab");
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_TRUE(page->states.empty());
}

TEST(ParseMachinePage, MetadataAndMissingFields) {
  absl::StatusOr<MachinePage> page = ParseMachinePage(Testdata("machines_page_metadata.json"), "lab");
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->machines.size(), 2u);
  EXPECT_EQ(page->machines[0].metadata().at("region"), "us-east");
  EXPECT_EQ(page->machines[0].metadata().at("role"), "db");
  EXPECT_EQ(page->machines[1].name(), "accounts/lab/machines/c0ffee");
  EXPECT_EQ(page->machines[1].primary_ip(), "");
  EXPECT_TRUE(page->machines[1].metadata().empty());
  // python-fleet's habit of an explicit empty object is fine too.
  page = ParseMachinePage(R"({"machines":[{"id":"a","metadata":{}}]})", "lab");
  ASSERT_TRUE(page.ok()) << page.status();
}

TEST(MalformedPayloads, AreInternalNeverACrash) {
  struct Case {
    std::string json;
    std::string message_start;
  };
  const std::vector<Case> cases = {
      {"", "fleet sent malformed JSON: "},
      {"{", "fleet sent malformed JSON: "},
      {R"({"units":[]} trailing)", "fleet sent malformed JSON: "},
      {"{\"units\":[{\"name\":\"\xff.service\"}]}", "fleet sent malformed JSON: "},
      {"[]", "fleet sent unexpected JSON: "},
      {R"({"units":{}})", "fleet sent unexpected JSON: "},
      {R"({"units":[1]})", "fleet sent unexpected JSON: "},
      {R"({"units":[{"name":1}]})", "fleet sent unexpected JSON: "},
      {R"({"units":[{"desiredState":"inactive"}]})", "fleet sent unexpected JSON: "},
      {R"({"units":[{"name":"a.service","options":"x"}]})", "fleet sent unexpected JSON: "},
      {R"({"units":[{"name":"a.service","options":[{"value":true}]}]})",
       "fleet sent unexpected JSON: "},
      {R"({"units":[],"nextPageToken":7})", "fleet sent unexpected JSON: "},
  };
  for (const Case& c : cases) {
    absl::StatusOr<UnitPage> page = ParseUnitPage(c.json, "lab");
    ASSERT_FALSE(page.ok()) << c.json;
    EXPECT_EQ(page.status().code(), absl::StatusCode::kInternal) << c.json;
    EXPECT_THAT(std::string(page.status().message()), StartsWith(c.message_start)) << c.json;
    EXPECT_EQ(ReasonOf(page.status()), "PROVIDER_MALFORMED_RESPONSE");
  }
  absl::StatusOr<UnitPage> page = ParseUnitPage("{\"units\":[", "lab");
  EXPECT_THAT(std::string(page.status().message()), HasSubstr("at offset 10"));
  EXPECT_EQ(ParseMachinePage(R"({"machines":[{"id":"a","metadata":{"k":1}}]})", "lab")
                .status()
                .code(),
            absl::StatusCode::kInternal);
  EXPECT_EQ(ParseMachinePage(R"({"machines":[{"primaryIP":"1.2.3.4"}]})", "lab").status().code(),
            absl::StatusCode::kInternal);
  EXPECT_EQ(ParseUnitState("null", "lab").status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(ParseUnit("\"unit\"", "lab").status().code(), absl::StatusCode::kInternal);
}

// ---------------------------------------------------------------------------
// Error envelopes → status.

TEST(StatusFromResponse, SuccessIsOk) {
  for (int code : {200, 201, 204}) EXPECT_TRUE(StatusFromResponse(code, "", "x").ok());
}

TEST(StatusFromResponse, Table) {
  struct Row {
    int http;
    std::string message;
    absl::StatusCode code;
    std::string reason;
  };
  const std::vector<Row> rows = {
      {400, "unable to decode body: EOF", absl::StatusCode::kInvalidArgument, "PROVIDER_ERROR"},
      {400, "token limit must be 100", absl::StatusCode::kInvalidArgument, "PROVIDER_ERROR"},
      {404, "unit does not exist", absl::StatusCode::kNotFound, "RESOURCE_NOT_FOUND"},
      {404, "", absl::StatusCode::kNotFound, "RESOURCE_NOT_FOUND"},
      {405, "only GET supported against this resource", absl::StatusCode::kUnimplemented,
       "PROVIDER_ERROR"},
      {409, "unit does not exist and options field empty",
       absl::StatusCode::kFailedPrecondition, "PROVIDER_ERROR"},
      {409, "must provide DesiredState to update existing unit",
       absl::StatusCode::kFailedPrecondition, "PROVIDER_ERROR"},
      {415, "only acceptable Content-Type is application/json",
       absl::StatusCode::kInvalidArgument, "PROVIDER_ERROR"},
      {500, "", absl::StatusCode::kUnavailable, "PROVIDER_UNAVAILABLE"},
      {503, "fleet server unable to communicate with etcd", absl::StatusCode::kUnavailable,
       "PROVIDER_UNAVAILABLE"},
  };
  for (const Row& row : rows) {
    const std::string body = absl::StrCat(R"({"error":{"code":)", row.http, R"(,"message":")",
                                          row.message, R"("}})");
    absl::Status s = StatusFromResponse(row.http, body, "PUT unit a.service");
    EXPECT_EQ(s.code(), row.code) << row.http << " " << row.message;
    EXPECT_EQ(ReasonOf(s), row.reason) << row.http;
    EXPECT_EQ(MetadataOf(s, "httpStatus"), absl::StrCat(row.http));
    EXPECT_EQ(MetadataOf(s, "providerMessage"), row.message);
    EXPECT_EQ(GetErrorInfo(s)->domain(), "cloudplane.dev");
    if (row.message.empty()) {
      EXPECT_EQ(s.message(),
                absl::StrCat("PUT unit a.service: fleet answered HTTP ", row.http,
                             " with no message"));
    } else {
      EXPECT_EQ(s.message(), absl::StrCat("PUT unit a.service: fleet answered HTTP ", row.http,
                                          ": ", row.message));
    }
  }
}

TEST(StatusFromResponse, OtherStatusesAndBodiesThatAreNoEnvelope) {
  // A proxy in front of fleet: not fleet's envelope, so nothing is echoed.
  absl::Status s = StatusFromResponse(502, "<html>Bad Gateway</html>", "GET units");
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(s.message(), "GET units: fleet answered HTTP 502 with no message");
  EXPECT_EQ(MetadataOf(s, "providerMessage"), "");
  EXPECT_EQ(MetadataOf(s, "httpStatus"), "502");
  EXPECT_EQ(StatusFromResponse(401, "", "x").code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(StatusFromResponse(404, "not json", "x").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(StatusFromResponse(409, R"({"error":"flat"})", "x").code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(StatusFromResponse(100, "", "x").code(), absl::StatusCode::kUnknown);
}

// ---------------------------------------------------------------------------
// Local validation.

TEST(UnitNames, ValidExamples) {
  for (const char* name : {"foo.service", "foo@.service", "foo@1.service", "yo.yo.service",
                           "hello:world.service", "a-b_c.socket", "x\\x2d.mount", "t.timer",
                           "s.automount", "b.busname", "d.device", "p.path", "sc.scope",
                           "sl.slice", "sn.snapshot", "sw.swap", "tg.target"}) {
    EXPECT_EQ(UnitNameError(name), std::nullopt) << name;
  }
  // Exactly 256 bytes is still fine.
  EXPECT_EQ(UnitNameError(std::string(248, 'a') + ".service"), std::nullopt);
}

// Issue 16's reproducer: a lone surrogate escape in an option value passed
// RapidJSON and became the bytes ED B5 9D in the Unit, which a gRPC client
// could not parse. The answer is refused instead.
TEST(ParseUnitUtf8, ALoneSurrogateInAnOptionValueIsAMalformedAnswer) {
  absl::StatusOr<v1::Unit> unit = ParseUnit(
      R"({"name":"u.service","desiredState":"launched","currentState":"launched",)"
      R"("options":[{"section":"Service","name":"ExecStart","value":"/bin/x \udd5d"}]})",
      "lab");
  ASSERT_FALSE(unit.ok());
  EXPECT_EQ(unit.status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(GetErrorInfo(unit.status())->reason(), "PROVIDER_MALFORMED_RESPONSE");
  // The same unit with a real character is fine.
  absl::StatusOr<v1::Unit> good = ParseUnit(
      R"({"name":"u.service","desiredState":"launched","currentState":"launched",)"
      R"("options":[{"section":"Service","name":"ExecStart","value":"/bin/x \u00e9"}]})",
      "lab");
  ASSERT_TRUE(good.ok()) << good.status();
  EXPECT_EQ(good->options(0).value(), "/bin/x \xC3\xA9");
}

TEST(FleetErrors, OnlyFleetsOwnEnvelopeIsFleetsAnswer) {
  EXPECT_TRUE(IsFleetErrorEnvelope(500, R"({"error":{"code":500,"message":""}})"));
  EXPECT_TRUE(IsFleetErrorEnvelope(500, R"({"error":{"code":500,"message":"x"}})"));
  EXPECT_TRUE(IsFleetErrorEnvelope(500, R"({"error":{"code":500}})"));
  EXPECT_FALSE(IsFleetErrorEnvelope(500, "fault proxy: injected 500\n"));
  EXPECT_FALSE(IsFleetErrorEnvelope(500, ""));
  EXPECT_FALSE(IsFleetErrorEnvelope(500, "<html>502 Bad Gateway</html>"));
  EXPECT_FALSE(IsFleetErrorEnvelope(500, R"({"error":{"code":503,"message":""}})"));
  EXPECT_FALSE(IsFleetErrorEnvelope(500, R"({"error":"boom"})"));
  EXPECT_FALSE(IsFleetErrorEnvelope(500, R"({"error":{"code":"500"}})"));
  EXPECT_FALSE(IsFleetErrorEnvelope(500, R"({"error":{"code":500,"message":7}})"));
}

TEST(UnitNames, FleetMessages) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "unit name cannot be empty"},
      {std::string(249, 'a') + ".service", "unit name exceeds maximum length (256)"},
      {"foo", "unit name must contain \".\""},
      {"foo.", "unit name cannot end in \".\""},
      {"foo.servICE", "invalid unit type: \"servICE\""},
      {"foo.bar", "invalid unit type: \"bar\""},
      {"foo.a\"b", "invalid unit type: \"a\\\"b\""},
      {"foo.\x01", "invalid unit type: \"\\x01\""},
      {"foo.\xff", "invalid unit type: \"\\xff\""},
      {"foo@1.mount", "invalid unit type for template: \"mount\""},
      {"@foo.device", "invalid unit type for template: \"device\""},
      {"yes/no.service", "invalid character '/' in unit name"},
      {"100%.service", "invalid character '%' in unit name"},
      {"it's.service", "invalid character '\\'' in unit name"},
      {"a b.service", "invalid character ' ' in unit name"},
      {"a\tb.service", "invalid character '\\t' in unit name"},
      {"a\x01.service", "invalid character '\\x01' in unit name"},
      {"\xc3\xa9t\xc3\xa9.service", "invalid character '\xc3\xa9' in unit name"},
      {"a\xff.service", "invalid character '\xef\xbf\xbd' in unit name"},
      {"@foo.service", "unit name cannot start in \"@\""},
      // The first failure wins: the suffix is checked before the characters.
      {"a/b.bar", "invalid unit type: \"bar\""},
  };
  for (const auto& [name, message] : cases) {
    EXPECT_EQ(UnitNameError(name), std::optional<std::string>(message)) << name;
  }
}

TEST(UnitNames, ValidateNamesTheField) {
  absl::Status s = ValidateUnitName("unit_id", "yes/no.service");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ViolationFields(s), ElementsAre("unit_id"));
  EXPECT_EQ(s.message(), "unit_id: invalid character '/' in unit name");
  EXPECT_TRUE(ValidateUnitName("unit_id", "ok.service").ok());
}

TEST(UnitNames, Templates) {
  EXPECT_TRUE(IsTemplateUnitName("foo@.service"));
  EXPECT_FALSE(IsTemplateUnitName("foo@1.service"));
  EXPECT_FALSE(IsTemplateUnitName("foo.service"));
  EXPECT_FALSE(IsTemplateUnitName("foo"));
}

TEST(Options, Validation) {
  EXPECT_TRUE(ValidateOptions("unit.options",
                              MakeOptions({Option("Service", "ExecStart", "/bin/true"),
                                           Option("Service", "Environment", "")}))
                  .ok());
  absl::Status s = ValidateOptions("unit.options", Options());
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ViolationFields(s), ElementsAre("unit.options"));
  s = ValidateOptions("unit.options",
                      MakeOptions({Option("", "ExecStart", "x"), Option("Service", "A=B", "x"),
                                   Option("Ser]vice", "", "x"), Option("S", "N", "a\nb")}));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ViolationFields(s),
              ElementsAre("unit.options[0].section", "unit.options[1].name",
                          "unit.options[2].section", "unit.options[2].name",
                          "unit.options[3].value"));
}

TEST(Options, GlobalUnits) {
  EXPECT_FALSE(IsGlobalUnit(Options()));
  EXPECT_TRUE(IsGlobalUnit(MakeOptions({Option("X-Fleet", "Global", "true")})));
  for (const char* v : {"TRUE", "yes", "1", "On", "t", " true "}) {
    EXPECT_TRUE(IsGlobalUnit(MakeOptions({Option("X-Fleet", "Global", v)}))) << v;
  }
  for (const char* v : {"false", "0", "no", "", "y"}) {
    EXPECT_FALSE(IsGlobalUnit(MakeOptions({Option("X-Fleet", "Global", v)}))) << v;
  }
  // The last occurrence counts; other sections do not.
  EXPECT_FALSE(IsGlobalUnit(MakeOptions(
      {Option("X-Fleet", "Global", "true"), Option("X-Fleet", "Global", "false")})));
  EXPECT_FALSE(IsGlobalUnit(MakeOptions({Option("Service", "Global", "true")})));
}

TEST(States, RoundTrip) {
  for (auto state : {v1::Unit::INACTIVE, v1::Unit::LOADED, v1::Unit::LAUNCHED}) {
    auto wire = StateToWire(state);
    ASSERT_TRUE(wire.has_value());
    EXPECT_EQ(StateFromWire(*wire), state);
  }
  EXPECT_EQ(StateToWire(v1::Unit::INACTIVE), std::optional<absl::string_view>("inactive"));
  EXPECT_EQ(StateToWire(v1::Unit::STATE_UNSPECIFIED), std::nullopt);
  EXPECT_EQ(StateToWire(static_cast<v1::Unit::State>(42)), std::nullopt);
  EXPECT_EQ(StateFromWire(""), v1::Unit::STATE_UNSPECIFIED);
  EXPECT_EQ(StateFromWire("Launched"), v1::Unit::STATE_UNSPECIFIED);
}

TEST(ResourceNames, Units) {
  EXPECT_EQ(UnitResourceName("lab", "a.service"), "accounts/lab/units/a.service");
  EXPECT_EQ(*UnitNameFromResource("name", "lab", "accounts/lab/units/hello:world.service"),
            "hello:world.service");
  EXPECT_EQ(*UnitNameFromResource("name", "", "accounts/other/units/a.service"), "a.service");
  for (const char* bad : {"", "a.service", "accounts/lab/units/", "accounts/lab/units",
                          "accounts//units/a.service", "accounts/lab/machines/a.service",
                          "accounts/lab/units/a/b.service", "accounts/other/units/a.service",
                          "accounts/lab/units/a.bar"}) {
    absl::StatusOr<std::string> name = UnitNameFromResource("name", "lab", bad);
    EXPECT_EQ(name.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(ViolationFields(name.status()), ElementsAre("name")) << bad;
  }
  EXPECT_EQ(UnitNameFromResource("name", "lab", "accounts/lab/units/a.bar").status().message(),
            "name: invalid unit type: \"bar\"");
}

TEST(ResourceNames, Machines) {
  EXPECT_EQ(MachineResourceName("lab", "abc"), "accounts/lab/machines/abc");
  EXPECT_EQ(*MachineIdFromResource("machine", "lab", "accounts/lab/machines/b4104f4b"),
            "b4104f4b");
  for (const char* bad : {"accounts/lab/machines/", "accounts/lab/machines/a b",
                          "accounts/lab/machines/a?b", "accounts/lab/units/abc"}) {
    EXPECT_EQ(MachineIdFromResource("machine", "lab", bad).status().code(),
              absl::StatusCode::kInvalidArgument)
        << bad;
  }
}

// ---------------------------------------------------------------------------
// Requests.

TEST(Paths, EscapedAndWithQueries) {
  EXPECT_EQ(UnitPath("hello.service"), "/fleet/v1/units/hello.service");
  EXPECT_EQ(UnitPath("hello:world@1.service"), "/fleet/v1/units/hello:world@1.service");
  EXPECT_EQ(UnitPath("x\\x2d.mount"), "/fleet/v1/units/x%5Cx2d.mount");
  EXPECT_EQ(ListUnitsPath(""), "/fleet/v1/units");
  EXPECT_EQ(ListUnitsPath("ZAACAA=="), "/fleet/v1/units?nextPageToken=ZAACAA%3D%3D");
  EXPECT_EQ(ListMachinesPath("AgACAA=="), "/fleet/v1/machines?nextPageToken=AgACAA%3D%3D");
  EXPECT_EQ(ListUnitStatesPath("", "", ""), "/fleet/v1/state");
  EXPECT_EQ(ListUnitStatesPath("", "foo@1.service", ""),
            "/fleet/v1/state?unitName=foo%401.service");
  EXPECT_EQ(ListUnitStatesPath(kMachine, "a.service", "AgACAA=="),
            absl::StrCat("/fleet/v1/state?machineID=", kMachine,
                         "&unitName=a.service&nextPageToken=AgACAA%3D%3D"));
}

TEST(PutBody, OnlyTheFieldsToSend) {
  EXPECT_EQ(UnitPutBody(Options(), "inactive"), R"({"desiredState":"inactive"})");
  const Options options = MakeOptions(
      {Option("Service", "ExecStart", "/bin/echo \"<a&b>\""), Option("Service", "Env", "")});
  EXPECT_EQ(UnitPutBody(options, ""),
            R"({"options":[{"section":"Service","name":"ExecStart","value":"/bin/echo \"<a&b>\""},)"
            R"({"section":"Service","name":"Env","value":""}]})");
  EXPECT_EQ(UnitPutBody(Options(), ""), "{}");
  // What we send parses back as fleet would read it.
  rapidjson::Document doc;
  const std::string body = UnitPutBody(options, "launched");
  doc.Parse(body.c_str());
  ASSERT_FALSE(doc.HasParseError());
  EXPECT_STREQ(doc["desiredState"].GetString(), "launched");
  EXPECT_EQ(doc["options"].Size(), 2u);
}

TEST(PollTokens, RoundTripAndForeignTokens) {
  const std::string token = MakePollToken("hello:world.service", "launched");
  // A packed UnitToken of the current version.
  absl::StatusOr<UnitToken> typed = kit::UnpackToken<UnitToken>(token, kUnitTokenVersion);
  ASSERT_TRUE(typed.ok()) << typed.status();
  EXPECT_EQ(typed->version(), 1u);
  EXPECT_EQ(typed->unit_name(), "hello:world.service");
  EXPECT_EQ(typed->desired_state(), "launched");
  absl::StatusOr<PollTarget> t = ParsePollToken(token);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->unit_name, "hello:world.service");
  EXPECT_EQ(t->desired_state, "launched");

  auto unit_token = [](uint32_t version, const char* name, const char* state) {
    UnitToken u;
    u.set_version(version);
    u.set_unit_name(name);
    u.set_desired_state(state);
    return kit::PackToken(u);
  };
  for (const std::string& bad :
       {std::string(""), std::string("unit:a.service:launched"), std::string("operation-17"),
        kit::PackToken(v1::Unit()), unit_token(0, "a.service", "launched"),
        unit_token(2, "a.service", "launched"), unit_token(1, "", "launched"),
        unit_token(1, "a.service", ""), unit_token(1, "a.service", "running"),
        unit_token(1, "a/b.service", "loaded")}) {
    absl::StatusOr<PollTarget> p = ParsePollToken(bad);
    EXPECT_EQ(p.status().code(), absl::StatusCode::kDataLoss) << bad;
    EXPECT_EQ(ReasonOf(p.status()), "OPERATION_STATE_UNREADABLE") << bad;
  }
}

}  // namespace
}  // namespace cloudplane::adapters::fleet
