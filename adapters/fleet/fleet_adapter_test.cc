// The fleet adapter against the real fleet emulator
// (tests/emulators/fleet/fleet_emulator.py, started per test as a child
// process), over TCP and over a unix socket.
#include "adapters/fleet/fleet_adapter.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "adapters/common/http/fake_http_transport.h"
#include "adapters/common/kit/progress.h"
#include "adapters/common/testing/await.h"
#include "adapters/common/testing/emulator_process.h"
#include "adapters/common/testing/field_contract_check.h"
#include "adapters/common/testing/fixtures.h"
#include "adapters/fleet/fleet_wire.h"
#include "base/errors.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cloudplane::adapters::fleet {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// The hash fleet computes for the unit file "[Service]\nExecStart=/usr/bin/sleep 1d\n"
// (reference §3 test vector).
constexpr absl::string_view kSleepHash = "dd401fa78c2de99a9c4045cbb4b285679067acf6";

// ---------------------------------------------------------------------------
// The emulator as a child process (adapters/common/testing), serving the
// recorded discovery document, with one log line per request (--verbose).

struct EmulatorConfig {
  int page_limit = 2;
  double converge_delay = 0.2;
  int machines = 3;
  // Real fleetd's timing (issue 13): a new unit waits for the engine, and
  // `launched` precedes systemd's verdict.
  double schedule_delay = 0;
  double start_delay = 0;
};

absl::StatusOr<std::unique_ptr<testutil::EmulatorProcess>> StartEmulator(
    const EmulatorConfig& config) {
  const std::string discovery = testutil::FixturePath("fleet/v1.json");
  return testutil::EmulatorProcess::Start(
      "tests/emulators/fleet/fleet_emulator.py", [&](const std::string& dir) {
        return std::vector<std::string>{"--tcp",
                                        "127.0.0.1:0",
                                        "--unix",
                                        dir + "/fleet.sock",
                                        "--page-limit",
                                        absl::StrCat(config.page_limit),
                                        "--converge-delay",
                                        absl::StrCat(config.converge_delay),
                                        "--machines",
                                        absl::StrCat(config.machines),
                                        "--schedule-delay",
                                        absl::StrCat(config.schedule_delay),
                                        "--start-delay",
                                        absl::StrCat(config.start_delay),
                                        "--discovery",
                                        discovery,
                                        "--verbose"};
      });
}

// READY tcp=127.0.0.1:PORT unix=PATH
std::string TcpEndpoint(const testutil::EmulatorProcess& emu) {
  return absl::StrCat("http://", emu.Field("tcp"));
}
std::string UnixEndpoint(const testutil::EmulatorProcess& emu) {
  return absl::StrCat("unix://", emu.Field("unix"));
}

// "GET /fleet/v1/units -> 200", one per request served (query left out).
std::vector<std::string> Requests(const testutil::EmulatorProcess& emu) {
  std::vector<std::string> out;
  for (absl::string_view line : absl::StrSplit(emu.Log(), '\n')) {
    if (absl::ConsumePrefix(&line, "fleet-emulator: ") && absl::StrContains(line, " -> ")) {
      out.emplace_back(line);
    }
  }
  return out;
}

int CountRequests(const testutil::EmulatorProcess& emu, absl::string_view line) {
  int n = 0;
  for (const std::string& r : Requests(emu)) n += (r == line);
  return n;
}

// ---------------------------------------------------------------------------
// Calling the asynchronous Provider from a test.

using testutil::Await;

std::string MetadataOf(const absl::Status& s, const std::string& key) {
  auto info = GetErrorInfo(s);
  if (!info.has_value()) return "<no ErrorInfo>";
  auto it = info->metadata().find(key);
  return it == info->metadata().end() ? "<absent>" : it->second;
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

v1::Unit SleepUnit(v1::Unit::State state) {
  v1::Unit unit;
  *unit.add_options() = Option("Service", "ExecStart", "/usr/bin/sleep 1d");
  unit.set_desired_state(state);
  return unit;
}

// Provider calls, synchronously, with a 10 s deadline unless told otherwise.
class Client {
 public:
  explicit Client(Provider* provider) : provider_(provider) {}

  CallContext Ctx() const {
    CallContext ctx;
    ctx.account = "lab";
    ctx.deadline = deadline_.has_value() ? *deadline_ : absl::Now() + absl::Seconds(10);
    ctx.validate_only = validate_only_;
    return ctx;
  }
  void set_deadline(absl::Time deadline) { deadline_ = deadline; }
  void set_validate_only(bool validate_only) { validate_only_ = validate_only; }

  absl::StatusOr<v1::ListUnitsResponse> ListUnits(int page_size = 0, std::string token = "") {
    v1::ListUnitsRequest req;
    req.set_parent("accounts/lab");
    req.set_page_size(page_size);
    req.set_page_token(token);
    return Await<v1::ListUnitsResponse>(
        [&](auto cb) { provider_->ListUnits(Ctx(), req, std::move(cb)); });
  }
  absl::StatusOr<v1::Unit> GetUnit(const std::string& name) {
    v1::GetUnitRequest req;
    req.set_name(name);
    return Await<v1::Unit>([&](auto cb) { provider_->GetUnit(Ctx(), req, std::move(cb)); });
  }
  absl::StatusOr<MutationProgress> CreateUnit(const std::string& id, const v1::Unit& unit) {
    v1::CreateUnitRequest req;
    req.set_parent("accounts/lab");
    req.set_unit_id(id);
    *req.mutable_unit() = unit;
    return Await<MutationProgress>(
        [&](auto cb) { provider_->CreateUnit(Ctx(), req, std::move(cb)); });
  }
  absl::StatusOr<MutationProgress> SetState(const std::string& name, v1::Unit::State state) {
    v1::SetUnitDesiredStateRequest req;
    req.set_name(name);
    req.set_desired_state(state);
    return Await<MutationProgress>(
        [&](auto cb) { provider_->SetUnitDesiredState(Ctx(), req, std::move(cb)); });
  }
  absl::StatusOr<MutationProgress> DeleteUnit(const std::string& name, bool allow_missing) {
    v1::DeleteUnitRequest req;
    req.set_name(name);
    req.set_allow_missing(allow_missing);
    return Await<MutationProgress>(
        [&](auto cb) { provider_->DeleteUnit(Ctx(), req, std::move(cb)); });
  }
  absl::StatusOr<MutationProgress> Poll(const std::string& token) {
    return Await<MutationProgress>(
        [&](auto cb) { provider_->PollOperation(Ctx(), token, std::move(cb)); });
  }
  // Polls (as the operation runner would, with a short pause) until done.
  absl::StatusOr<MutationProgress> PollUntilDone(MutationProgress progress) {
    const absl::Time give_up = absl::Now() + absl::Seconds(15);
    while (!progress.done) {
      if (absl::Now() > give_up) return absl::DeadlineExceededError("never converged");
      absl::SleepFor(absl::Milliseconds(50));
      absl::StatusOr<MutationProgress> next = Poll(progress.poll_token);
      if (!next.ok()) return next.status();
      progress = *std::move(next);
    }
    return progress;
  }
  absl::StatusOr<v1::ListUnitStatesResponse> ListUnitStates(const std::string& machine,
                                                           const std::string& unit,
                                                           int page_size = 0,
                                                           std::string token = "") {
    v1::ListUnitStatesRequest req;
    req.set_parent("accounts/lab");
    req.set_machine(machine);
    req.set_unit(unit);
    req.set_page_size(page_size);
    req.set_page_token(token);
    return Await<v1::ListUnitStatesResponse>(
        [&](auto cb) { provider_->ListUnitStates(Ctx(), req, std::move(cb)); });
  }
  absl::StatusOr<v1::ListMachinesResponse> ListMachines(int page_size = 0,
                                                       std::string token = "") {
    v1::ListMachinesRequest req;
    req.set_parent("accounts/lab");
    req.set_page_size(page_size);
    req.set_page_token(token);
    return Await<v1::ListMachinesResponse>(
        [&](auto cb) { provider_->ListMachines(Ctx(), req, std::move(cb)); });
  }
  absl::StatusOr<v1::Machine> GetMachine(const std::string& name) {
    v1::GetMachineRequest req;
    req.set_name(name);
    return Await<v1::Machine>([&](auto cb) { provider_->GetMachine(Ctx(), req, std::move(cb)); });
  }

 private:
  Provider* provider_;
  std::optional<absl::Time> deadline_;
  bool validate_only_ = false;
};

absl::StatusOr<std::unique_ptr<Provider>> MakeProvider(const std::string& endpoint) {
  AdapterRegistry registry;
  if (absl::Status s = RegisterFleet(registry); !s.ok()) return s;
  AccountSetup setup;
  setup.account = "lab";
  setup.endpoint = endpoint;
  return registry.Create("fleet", setup);
}

template <typename T>
T Unpack(const MutationProgress& progress) {
  T out;
  EXPECT_TRUE(progress.result.UnpackTo(&out)) << progress.result.type_url();
  return out;
}

// ---------------------------------------------------------------------------

enum class Transport { kTcp, kUnix };

class FleetAdapterTest : public ::testing::TestWithParam<Transport> {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<testutil::EmulatorProcess>> emu = StartEmulator({});
    ASSERT_TRUE(emu.ok()) << emu.status();
    emu_ = *std::move(emu);
    absl::StatusOr<std::unique_ptr<Provider>> provider =
        MakeProvider(GetParam() == Transport::kTcp ? TcpEndpoint(*emu_) : UnixEndpoint(*emu_));
    ASSERT_TRUE(provider.ok()) << provider.status();
    provider_ = *std::move(provider);
    client_ = std::make_unique<Client>(provider_.get());
  }

  void TearDown() override {
    client_.reset();
    provider_.reset();
    emu_.reset();  // kills the emulator
  }

  std::unique_ptr<testutil::EmulatorProcess> emu_;
  std::unique_ptr<Provider> provider_;
  std::unique_ptr<Client> client_;
};

TEST_P(FleetAdapterTest, ListUnitsFollowsEveryFleetPage) {
  std::vector<std::string> names;
  for (int i = 6; i >= 0; --i) {  // created out of order on purpose
    const std::string id = absl::StrCat("u", i, ".service");
    absl::StatusOr<MutationProgress> p = client_->CreateUnit(id, SleepUnit(v1::Unit::INACTIVE));
    ASSERT_TRUE(p.ok()) << p.status();
    ASSERT_TRUE(p->done);
    names.insert(names.begin(), absl::StrCat("accounts/lab/units/", id));
  }
  // All of them in one answer: 7 units at fleet's page limit 2 is 4 pages.
  const int before = CountRequests(*emu_, "GET /fleet/v1/units -> 200");
  absl::StatusOr<v1::ListUnitsResponse> all = client_->ListUnits();
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(CountRequests(*emu_, "GET /fleet/v1/units -> 200") - before, 4);
  std::vector<std::string> got;
  for (const v1::Unit& u : all->units()) got.push_back(u.name());
  EXPECT_EQ(got, names);
  EXPECT_EQ(all->next_page_token(), "");
  EXPECT_EQ(all->units(0).options(0).value(), "/usr/bin/sleep 1d");

  // Our own pages of 3: every unit exactly once, in order.
  std::vector<std::string> paged;
  std::string token;
  int pages = 0;
  do {
    absl::StatusOr<v1::ListUnitsResponse> page = client_->ListUnits(3, token);
    ASSERT_TRUE(page.ok()) << page.status();
    EXPECT_LE(page->units_size(), 3);
    for (const v1::Unit& u : page->units()) paged.push_back(u.name());
    token = page->next_page_token();
    ASSERT_LT(++pages, 10);
  } while (!token.empty());
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(paged, names);

  // A foreign page token is refused before fleet is asked.
  const size_t requests = Requests(*emu_).size();
  absl::StatusOr<v1::ListUnitsResponse> bad = client_->ListUnits(0, "ZAACAA==");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ViolationFields(bad.status()), ElementsAre("page_token"));
  EXPECT_EQ(Requests(*emu_).size(), requests);
}

TEST_P(FleetAdapterTest, CreateLaunchedConvergesThenStopAndDelete) {
  absl::StatusOr<MutationProgress> p =
      client_->CreateUnit("hello.service", SleepUnit(v1::Unit::LAUNCHED));
  ASSERT_TRUE(p.ok()) << p.status();
  // The agents report after the converge delay, so the first look is early.
  EXPECT_FALSE(p->done);
  absl::StatusOr<PollTarget> target = ParsePollToken(p->poll_token);
  ASSERT_TRUE(target.ok()) << target.status();
  EXPECT_EQ(target->unit_name, "hello.service");
  EXPECT_EQ(target->desired_state, "launched");
  EXPECT_THAT(p->detail, HasSubstr("waiting for unit hello.service to reach launched"));
  p = client_->PollUntilDone(*p);
  ASSERT_TRUE(p.ok()) << p.status();
  v1::Unit unit = Unpack<v1::Unit>(*p);
  EXPECT_EQ(unit.name(), "accounts/lab/units/hello.service");
  EXPECT_EQ(unit.desired_state(), v1::Unit::LAUNCHED);
  EXPECT_EQ(unit.current_state(), v1::Unit::LAUNCHED);
  ASSERT_THAT(unit.machine(), ::testing::StartsWith("accounts/lab/machines/"));

  // Its state, on its machine only.
  absl::StatusOr<v1::ListUnitStatesResponse> states = client_->ListUnitStates(unit.machine(), "");
  ASSERT_TRUE(states.ok()) << states.status();
  ASSERT_EQ(states->unit_states_size(), 1);
  const v1::UnitState& st = states->unit_states(0);
  EXPECT_EQ(st.unit(), unit.name());
  EXPECT_EQ(st.machine(), unit.machine());
  EXPECT_EQ(st.hash(), kSleepHash);
  EXPECT_EQ(st.systemd_load_state(), "loaded");
  EXPECT_EQ(st.systemd_active_state(), "active");
  EXPECT_EQ(st.systemd_sub_state(), "running");
  // The filter went to fleet as machineID (the emulator filters).
  EXPECT_GE(CountRequests(*emu_, "GET /fleet/v1/state -> 200"), 1);
  absl::StatusOr<v1::ListMachinesResponse> machines = client_->ListMachines();
  ASSERT_TRUE(machines.ok()) << machines.status();
  for (const v1::Machine& m : machines->machines()) {
    if (m.name() == unit.machine()) continue;
    states = client_->ListUnitStates(m.name(), "");
    ASSERT_TRUE(states.ok()) << states.status();
    EXPECT_EQ(states->unit_states_size(), 0) << m.name();
  }
  states = client_->ListUnitStates("", unit.name());
  ASSERT_TRUE(states.ok()) << states.status();
  EXPECT_EQ(states->unit_states_size(), 1);
  states = client_->ListUnitStates("", "accounts/lab/units/other.service");
  ASSERT_TRUE(states.ok()) << states.status();
  EXPECT_EQ(states->unit_states_size(), 0);

  // Stop it.
  p = client_->SetState(unit.name(), v1::Unit::INACTIVE);
  ASSERT_TRUE(p.ok()) << p.status();
  p = client_->PollUntilDone(*p);
  ASSERT_TRUE(p.ok()) << p.status();
  unit = Unpack<v1::Unit>(*p);
  EXPECT_EQ(unit.desired_state(), v1::Unit::INACTIVE);
  EXPECT_EQ(unit.current_state(), v1::Unit::INACTIVE);

  // Delete it; then it is gone, and deleting again is NOT_FOUND unless
  // allow_missing.
  p = client_->DeleteUnit(unit.name(), false);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE(p->done);
  EXPECT_TRUE(p->result.Is<google::protobuf::Empty>());
  absl::StatusOr<v1::Unit> gone = client_->GetUnit(unit.name());
  EXPECT_EQ(gone.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(GetErrorInfo(gone.status())->reason(), "RESOURCE_NOT_FOUND");
  EXPECT_EQ(MetadataOf(gone.status(), "providerMessage"), "unit does not exist");
  p = client_->DeleteUnit(unit.name(), false);
  EXPECT_EQ(p.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(MetadataOf(p.status(), "httpStatus"), "404");
  p = client_->DeleteUnit(unit.name(), true);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE(p->done);
  // A poll for a unit that disappeared.
  p = client_->Poll(MakePollToken("hello.service", "launched"));
  EXPECT_EQ(p.status().code(), absl::StatusCode::kNotFound);
}

TEST_P(FleetAdapterTest, CreateInactiveIsDoneAtOnceAndRedriveIsHarmless) {
  v1::Unit wanted = SleepUnit(v1::Unit::STATE_UNSPECIFIED);  // INACTIVE by default
  *wanted.add_options() = Option("Service", "Environment", "");
  for (int attempt = 0; attempt < 2; ++attempt) {  // the second is fleet's 204 path
    absl::StatusOr<MutationProgress> p = client_->CreateUnit("a:b.service", wanted);
    ASSERT_TRUE(p.ok()) << p.status();
    ASSERT_TRUE(p->done) << attempt;
    const v1::Unit unit = Unpack<v1::Unit>(*p);
    EXPECT_EQ(unit.name(), "accounts/lab/units/a:b.service");
    EXPECT_EQ(unit.desired_state(), v1::Unit::INACTIVE);
    EXPECT_EQ(unit.current_state(), v1::Unit::INACTIVE);
    ASSERT_EQ(unit.options_size(), 2);
    EXPECT_EQ(unit.options(1).name(), "Environment");
    EXPECT_EQ(unit.options(1).value(), "");
  }
  EXPECT_EQ(CountRequests(*emu_, "PUT /fleet/v1/units/a:b.service -> 201"), 1);
  EXPECT_EQ(CountRequests(*emu_, "PUT /fleet/v1/units/a:b.service -> 204"), 1);
  absl::StatusOr<v1::Unit> unit = client_->GetUnit("accounts/lab/units/a:b.service");
  ASSERT_TRUE(unit.ok()) << unit.status();
  EXPECT_EQ(unit->options_size(), 2);
}

TEST_P(FleetAdapterTest, GlobalUnitIsDoneAtOnce) {
  v1::Unit global = SleepUnit(v1::Unit::LAUNCHED);
  *global.add_options() = Option("X-Fleet", "Global", "true");
  absl::StatusOr<MutationProgress> p = client_->CreateUnit("everywhere.service", global);
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_TRUE(p->done);
  const v1::Unit unit = Unpack<v1::Unit>(*p);
  EXPECT_EQ(unit.desired_state(), v1::Unit::LAUNCHED);
  EXPECT_EQ(unit.current_state(), v1::Unit::STATE_UNSPECIFIED);  // fleet has none for it
  EXPECT_EQ(unit.machine(), "");
}

TEST_P(FleetAdapterTest, InvalidRequestsSendNothing) {
  const size_t before = Requests(*emu_).size();
  auto expect_invalid = [](const absl::Status& s, const std::string& field) {
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_THAT(ViolationFields(s), ElementsAre(field)) << s;
  };
  absl::StatusOr<MutationProgress> p =
      client_->CreateUnit("yes/no.service", SleepUnit(v1::Unit::LAUNCHED));
  expect_invalid(p.status(), "unit_id");
  EXPECT_EQ(p.status().message(), "unit_id: invalid character '/' in unit name");
  p = client_->CreateUnit("foo.servICE", SleepUnit(v1::Unit::LAUNCHED));
  expect_invalid(p.status(), "unit_id");
  EXPECT_EQ(p.status().message(), "unit_id: invalid unit type: \"servICE\"");
  p = client_->CreateUnit("ok.service", v1::Unit());
  expect_invalid(p.status(), "unit.options");
  p = client_->CreateUnit("ok.service", SleepUnit(static_cast<v1::Unit::State>(7)));
  expect_invalid(p.status(), "unit.desired_state");
  p = client_->CreateUnit("tmpl@.service", SleepUnit(v1::Unit::LAUNCHED));
  expect_invalid(p.status(), "unit.desired_state");
  p = client_->SetState("accounts/lab/units/ok.service", v1::Unit::STATE_UNSPECIFIED);
  expect_invalid(p.status(), "desired_state");
  p = client_->SetState("accounts/lab/units/@x.service", v1::Unit::LAUNCHED);
  expect_invalid(p.status(), "name");
  p = client_->SetState("accounts/lab/units/tmpl@.service", v1::Unit::LOADED);
  EXPECT_EQ(p.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(p.status().message(), "cannot activate template \"tmpl@.service\"");
  p = client_->DeleteUnit("accounts/other/units/ok.service", true);
  expect_invalid(p.status(), "name");
  absl::StatusOr<v1::Unit> unit = client_->GetUnit("accounts/lab/units/no-dot");
  expect_invalid(unit.status(), "name");
  absl::StatusOr<v1::ListUnitStatesResponse> states =
      client_->ListUnitStates("accounts/lab/machines/a b", "");
  expect_invalid(states.status(), "machine");
  states = client_->ListUnitStates("", "accounts/lab/units/x");
  expect_invalid(states.status(), "unit");
  absl::StatusOr<v1::Machine> machine = client_->GetMachine("accounts/lab/units/x.service");
  expect_invalid(machine.status(), "name");
  p = client_->Poll("operation-17");  // not a token of this adapter
  EXPECT_EQ(p.status().code(), absl::StatusCode::kDataLoss) << p.status();
  EXPECT_EQ(GetErrorInfo(p.status())->reason(), "OPERATION_STATE_UNREADABLE");

  EXPECT_EQ(Requests(*emu_).size(), before) << absl::StrJoin(Requests(*emu_), "\n");
  absl::StatusOr<v1::ListUnitsResponse> all = client_->ListUnits();
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(all->units_size(), 0);  // the registry is unchanged
}

TEST_P(FleetAdapterTest, ValidateOnlyRunsTheLocalChecksAndSendsNothing) {
  const size_t before = Requests(*emu_).size();
  client_->set_validate_only(true);
  // A refusal is the one the real call gives.
  absl::StatusOr<MutationProgress> p =
      client_->CreateUnit("yes/no.service", SleepUnit(v1::Unit::LAUNCHED));
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(p.status().message(), "unit_id: invalid character '/' in unit name");
  p = client_->CreateUnit("ok.service", v1::Unit());
  EXPECT_THAT(ViolationFields(p.status()), ElementsAre("unit.options"));
  p = client_->SetState("accounts/lab/units/tmpl@.service", v1::Unit::LOADED);
  EXPECT_EQ(p.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(p.status().message(), "cannot activate template \"tmpl@.service\"");
  p = client_->DeleteUnit("accounts/other/units/ok.service", true);
  EXPECT_THAT(ViolationFields(p.status()), ElementsAre("name"));
  // What passes is finished at once, and fleet never hears of it.
  p = client_->CreateUnit("hello.service", SleepUnit(v1::Unit::LAUNCHED));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE(p->done);
  EXPECT_TRUE(p->result.Is<v1::Unit>());
  p = client_->SetState("accounts/lab/units/hello.service", v1::Unit::INACTIVE);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE(p->done);
  p = client_->DeleteUnit("accounts/lab/units/hello.service", false);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE(p->done);
  EXPECT_TRUE(p->result.Is<google::protobuf::Empty>());
  EXPECT_EQ(Requests(*emu_).size(), before) << absl::StrJoin(Requests(*emu_), "\n");
  client_->set_validate_only(false);
  absl::StatusOr<v1::ListUnitsResponse> all = client_->ListUnits();
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(all->units_size(), 0);
}

TEST_P(FleetAdapterTest, SetStateOfMissingUnitIsFailedPrecondition) {
  absl::StatusOr<MutationProgress> p =
      client_->SetState("accounts/lab/units/nope.service", v1::Unit::LAUNCHED);
  EXPECT_EQ(p.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(MetadataOf(p.status(), "httpStatus"), "409");
  EXPECT_EQ(MetadataOf(p.status(), "providerMessage"),
            "unit does not exist and options field empty");
  EXPECT_EQ(CountRequests(*emu_, "PUT /fleet/v1/units/nope.service -> 409"), 1);
}

TEST_P(FleetAdapterTest, FleetOptionCheckNamesTheOptionsField) {
  v1::Unit unit = SleepUnit(v1::Unit::LAUNCHED);
  *unit.add_options() = Option("X-Fleet", "MachineID", "abc");
  *unit.add_options() = Option("X-Fleet", "Global", "true");
  absl::StatusOr<MutationProgress> p = client_->CreateUnit("bad.service", unit);
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ViolationFields(p.status()), ElementsAre("unit.options"));
  EXPECT_EQ(MetadataOf(p.status(), "providerMessage"), "MachineID cannot be used with Global");
}

TEST_P(FleetAdapterTest, ChangedTargetAbortsTheWait) {
  absl::StatusOr<MutationProgress> first =
      client_->CreateUnit("race.service", SleepUnit(v1::Unit::LAUNCHED));
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_FALSE(first->done);
  ASSERT_TRUE(client_->SetState("accounts/lab/units/race.service", v1::Unit::LOADED).ok());
  absl::StatusOr<MutationProgress> p = client_->Poll(first->poll_token);
  EXPECT_EQ(p.status().code(), absl::StatusCode::kAborted);
}

TEST_P(FleetAdapterTest, ExpiredDeadlineSendsNothing) {
  const size_t before = Requests(*emu_).size();
  client_->set_deadline(absl::Now() - absl::Seconds(1));
  EXPECT_EQ(client_->ListUnits().status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(client_->GetUnit("accounts/lab/units/a.service").status().code(),
            absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(client_->CreateUnit("a.service", SleepUnit(v1::Unit::LAUNCHED)).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(client_->SetState("accounts/lab/units/a.service", v1::Unit::LOADED).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(client_->DeleteUnit("accounts/lab/units/a.service", true).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(client_->Poll(MakePollToken("a.service", "launched")).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(client_->ListMachines().status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(Requests(*emu_).size(), before);
}

TEST_P(FleetAdapterTest, MachinesArePagedAndFound) {
  const int before = CountRequests(*emu_, "GET /fleet/v1/machines -> 200");
  absl::StatusOr<v1::ListMachinesResponse> first = client_->ListMachines(2);
  ASSERT_TRUE(first.ok()) << first.status();
  // 3 machines at fleet's limit 2: two fleet pages.
  EXPECT_EQ(CountRequests(*emu_, "GET /fleet/v1/machines -> 200") - before, 2);
  ASSERT_EQ(first->machines_size(), 2);
  ASSERT_NE(first->next_page_token(), "");
  absl::StatusOr<v1::ListMachinesResponse> second =
      client_->ListMachines(2, first->next_page_token());
  ASSERT_TRUE(second.ok()) << second.status();
  ASSERT_EQ(second->machines_size(), 1);
  EXPECT_EQ(second->next_page_token(), "");
  EXPECT_LT(first->machines(0).name(), first->machines(1).name());
  EXPECT_LT(first->machines(1).name(), second->machines(0).name());
  for (const v1::Machine& m : first->machines()) {
    EXPECT_THAT(m.primary_ip(), ::testing::StartsWith("198.51.100."));
  }

  absl::StatusOr<v1::Machine> machine = client_->GetMachine(second->machines(0).name());
  ASSERT_TRUE(machine.ok()) << machine.status();
  EXPECT_EQ(machine->name(), second->machines(0).name());
  EXPECT_EQ(machine->primary_ip(), second->machines(0).primary_ip());
  machine = client_->GetMachine("accounts/lab/machines/0123456789abcdef0123456789abcdef");
  EXPECT_EQ(machine.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(GetErrorInfo(machine.status())->reason(), "RESOURCE_NOT_FOUND");
}

INSTANTIATE_TEST_SUITE_P(Transports, FleetAdapterTest,
                         ::testing::Values(Transport::kTcp, Transport::kUnix),
                         [](const ::testing::TestParamInfo<Transport>& info) {
                           return info.param == Transport::kTcp ? "Tcp" : "Unix";
                         });

// ---------------------------------------------------------------------------
// Without an emulator.

TEST(FleetAdapterNoServer, UnreachableEndpointIsUnavailable) {
  // A TCP port that was just free, and a socket path nobody listens on.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const int port = ntohs(addr.sin_port);
  close(fd);
  for (const std::string& endpoint :
       {absl::StrCat("http://127.0.0.1:", port), std::string("unix:///tmp/no-fleet-here.sock")}) {
    absl::StatusOr<std::unique_ptr<Provider>> provider = MakeProvider(endpoint);
    ASSERT_TRUE(provider.ok()) << provider.status();
    Client client(provider->get());
    EXPECT_EQ(client.ListUnits().status().code(), absl::StatusCode::kUnavailable) << endpoint;
    EXPECT_EQ(client.GetUnit("accounts/lab/units/a.service").status().code(),
              absl::StatusCode::kUnavailable)
        << endpoint;
    EXPECT_EQ(client.CreateUnit("a.service", SleepUnit(v1::Unit::LAUNCHED)).status().code(),
              absl::StatusCode::kUnavailable)
        << endpoint;
  }
}

// fleet's PUT is idempotent: a create whose answer was lost (fleet made the
// unit, the connection reset before the 201 came back) is re-driven by
// sending the same PUT again, which fleet answers 204 (same unit file,
// desired state set); no other kind of request, no second unit.
TEST(FleetAdapterNoServer, ACreateWhoseAnswerWasLostIsTheSamePutAgain) {
  auto fake = http::FakeHttpTransport::Create();
  AccountSetup setup;
  setup.account = "lab";
  setup.endpoint = "http://fleet.test:49153";
  absl::StatusOr<std::unique_ptr<Provider>> provider = CreateFleetProvider(setup, fake);
  ASSERT_TRUE(provider.ok()) << provider.status();
  Client client(provider->get());
  fake->Expect("PUT", "/fleet/v1/units/web.service",
               absl::UnavailableError("connection reset by peer"));
  absl::StatusOr<MutationProgress> lost =
      client.CreateUnit("web.service", SleepUnit(v1::Unit::LAUNCHED));
  EXPECT_EQ(lost.status().code(), absl::StatusCode::kUnavailable) << lost.status();

  fake->Expect("PUT", "/fleet/v1/units/web.service", http::HttpResponse{204});
  fake->Expect("GET", "/fleet/v1/units/web.service",
               http::HttpResponse{200,
                                  {{"content-type", "application/json"}},
                                  R"({"name":"web.service","desiredState":"launched",)"
                                  R"("currentState":"launched","machineID":"m1",)"
                                  R"("options":[{"section":"Service",)"
                                  R"("name":"ExecStart","value":"/usr/bin/sleep 1d"}]})"});
  // Launched is confirmed by systemd's state on the unit's machine.
  fake->Expect("GET", "/fleet/v1/state?unitName=web.service",
               http::HttpResponse{200,
                                  {{"content-type", "application/json"}},
                                  R"({"states":[{"machineID":"m1","name":"web.service",)"
                                  R"("systemdActiveState":"active","systemdLoadState":"loaded",)"
                                  R"("systemdSubState":"running"}]})"});
  absl::StatusOr<MutationProgress> again =
      client.CreateUnit("web.service", SleepUnit(v1::Unit::LAUNCHED));
  ASSERT_TRUE(again.ok()) << again.status();
  ASSERT_TRUE(again->done);
  EXPECT_EQ(Unpack<v1::Unit>(*again).current_state(), v1::Unit::LAUNCHED);
  const std::vector<http::FakeHttpTransport::SentRequest> sent = fake->Sent();
  ASSERT_EQ(sent.size(), 4u);
  EXPECT_EQ(sent[0].request.method, "PUT");
  EXPECT_EQ(sent[1].request.method, "PUT");
  EXPECT_EQ(sent[1].request.body, sent[0].request.body);
  EXPECT_EQ(sent[2].request.method, "GET");
  EXPECT_EQ(sent[3].request.path_and_query, "/fleet/v1/state?unitName=web.service");
}

// A 500 that is not fleet's own envelope came from something in between (a
// proxy, a load balancer): an outage to ride out, never a broken unit, so
// no probe is sent and the unit is not reported in ERROR.
TEST(FleetAdapterNoServer, ABare500ForAUnitIsNotABrokenUnit) {
  auto fake = http::FakeHttpTransport::Create();
  AccountSetup setup;
  setup.account = "lab";
  setup.endpoint = "http://fleet.test:49153";
  absl::StatusOr<std::unique_ptr<Provider>> provider = CreateFleetProvider(setup, fake);
  ASSERT_TRUE(provider.ok()) << provider.status();
  Client client(provider->get());
  fake->Expect("GET", "/fleet/v1/units/web.service",
               http::HttpResponse{500, {{"content-type", "text/plain"}}, "proxy: upstream failed\n"});
  absl::StatusOr<v1::Unit> got = client.GetUnit("accounts/lab/units/web.service");
  ASSERT_FALSE(got.ok()) << got->DebugString();
  EXPECT_EQ(got.status().code(), absl::StatusCode::kUnavailable) << got.status();
  EXPECT_EQ(fake->Sent().size(), 1u);

  fake->ClearSent();
  fake->Expect("GET", "/fleet/v1/units/web.service",
               http::HttpResponse{500, {{"content-type", "text/plain"}}, "proxy: upstream failed\n"});
  absl::StatusOr<MutationProgress> poll = client.Poll(MakePollToken("web.service", "launched"));
  ASSERT_FALSE(poll.ok());
  EXPECT_EQ(poll.status().code(), absl::StatusCode::kUnavailable) << poll.status();
  EXPECT_TRUE(kit::IsAmbiguous(poll.status()));
  EXPECT_EQ(fake->Sent().size(), 1u);
}

// The strict field contract: what FleetProviderInfo declares is real, and
// CreateUnit's honoured fields reach fleet's PUT. (On the emulator,
// CreateInactiveIsDoneAtOnceAndRedriveIsHarmless reads the options back from
// fleet, and CreateLaunchedConvergesThenStopAndDelete sees the desired state
// carried out.)
TEST(FieldContract, EveryMutationDeclaresRealFields) {
  AccountSetup setup;
  setup.account = "lab";
  setup.endpoint = "http://fleet.test:49153";
  absl::StatusOr<std::unique_ptr<Provider>> provider =
      CreateFleetProvider(setup, http::FakeHttpTransport::Create());
  ASSERT_TRUE(provider.ok()) << provider.status();
  testutil::ExpectFieldContractDeclared(**provider);
}

TEST(FieldContract, CreateUnitSendsUnitIdOptionsAndDesiredState) {
  auto fake = http::FakeHttpTransport::Create();
  AccountSetup setup;
  setup.account = "lab";
  setup.endpoint = "http://fleet.test:49153";
  absl::StatusOr<std::unique_ptr<Provider>> provider = CreateFleetProvider(setup, fake);
  ASSERT_TRUE(provider.ok()) << provider.status();
  Client client(provider->get());
  fake->Expect("PUT", "/fleet/v1/units/db.service", http::HttpResponse{201});
  fake->Expect("GET", "/fleet/v1/units/db.service",
               http::HttpResponse{200,
                                  {{"content-type", "application/json"}},
                                  R"({"name":"db.service","desiredState":"loaded",)"
                                  R"("currentState":"loaded","machineID":"m1",)"
                                  R"("options":[{"section":"Service",)"
                                  R"("name":"ExecStart","value":"/usr/bin/sleep 1d"}]})"});
  v1::Unit unit = SleepUnit(v1::Unit::LOADED);
  *unit.add_options() = Option("X-Fleet", "MachineMetadata", "role=db");
  absl::StatusOr<MutationProgress> p = client.CreateUnit("db.service", unit);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE(p->done);
  const std::vector<http::FakeHttpTransport::SentRequest> sent = fake->Sent();
  ASSERT_GE(sent.size(), 1u);
  EXPECT_EQ(sent[0].request.method, "PUT");
  EXPECT_EQ(sent[0].request.path_and_query, "/fleet/v1/units/db.service");
  EXPECT_EQ(sent[0].request.body,
            R"({"desiredState":"loaded","options":[)"
            R"({"section":"Service","name":"ExecStart","value":"/usr/bin/sleep 1d"},)"
            R"({"section":"X-Fleet","name":"MachineMetadata","value":"role=db"}]})");
}

TEST(FleetAdapterNoServer, Registration) {
  AdapterRegistry registry;
  ASSERT_TRUE(RegisterFleet(registry).ok());
  EXPECT_EQ(RegisterFleet(registry).code(), absl::StatusCode::kAlreadyExists);
  const ProviderInfo* info = registry.Find("fleet");
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->display_name, "CoreOS fleet v1");
  EXPECT_EQ(info->protocol, "REST/JSON over TCP or a unix socket");
  EXPECT_EQ(info->watch_source, WatchSource::kPoll);
  EXPECT_THAT(info->supported_methods,
              ElementsAre("cloudplane.v1.UnitsService.ListUnits",
                          "cloudplane.v1.UnitsService.GetUnit",
                          "cloudplane.v1.UnitsService.CreateUnit",
                          "cloudplane.v1.UnitsService.SetUnitDesiredState",
                          "cloudplane.v1.UnitsService.DeleteUnit",
                          "cloudplane.v1.UnitsService.ListUnitStates",
                          "cloudplane.v1.UnitsService.ListMachines",
                          "cloudplane.v1.UnitsService.GetMachine"));
  for (const std::string& m : info->supported_methods) {
    EXPECT_THAT(AllAdapterMethods(), ::testing::Contains(m));
  }

  AccountSetup setup;
  setup.account = "lab";
  setup.endpoint = "http://127.0.0.1:49153";
  setup.options = {{"zone", "a"}, {"region", "b"}};
  absl::StatusOr<std::unique_ptr<Provider>> p = registry.Create("fleet", setup);
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ViolationFields(p.status()), ElementsAre("options.region", "options.zone"));
  EXPECT_THAT(std::string(p.status().message()), HasSubstr("region"));

  setup.options.clear();
  for (const char* bad : {"", "ftp://host", "unix://relative.sock", "http://"}) {
    setup.endpoint = bad;
    p = registry.Create("fleet", setup);
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(ViolationFields(p.status()), ElementsAre("endpoint")) << bad;
  }
  setup.endpoint = "unix:///var/run/fleet.sock";
  p = registry.Create("fleet", setup);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ((*p)->Info().kind, "fleet");
  // Anything outside UnitsService stays UNIMPLEMENTED.
  Client client(p->get());
  absl::StatusOr<v1::ListInstancesResponse> r = Await<v1::ListInstancesResponse>([&](auto cb) {
    (*p)->ListInstances(client.Ctx(), v1::ListInstancesRequest(), std::move(cb));
  });
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnimplemented);
}


// ---------------------------------------------------------------------------
// What real fleetd does (issue 13), against the emulator with fleetd-like
// timing: a new unit has no machine for 0.5 s, and systemd's verdict comes
// 0.4 s after fleet says `launched`.

// One request on a fresh TCP connection, as fleetctl or someone's script
// would send it directly to fleet; returns the status code (0 on failure).
int RawRequest(const testutil::EmulatorProcess& emu, const std::string& method,
               const std::string& path, const std::string& body) {
  const std::string hostport = emu.Field("tcp");
  const size_t colon = hostport.rfind(':');
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(std::stoi(hostport.substr(colon + 1))));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    if (fd >= 0) close(fd);
    return 0;
  }
  const std::string request = absl::StrCat(method, " ", path, " HTTP/1.1\r\nHost: x\r\n",
                                           "Connection: close\r\nContent-Type: application/json\r\n",
                                           "Content-Length: ", body.size(), "\r\n\r\n", body);
  (void)!write(fd, request.data(), request.size());
  char buf[256];
  const ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n < 12) return 0;
  return std::atoi(std::string(buf + 9, 3).c_str());
}

class FleetdLikeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    EmulatorConfig config;
    config.converge_delay = 0.05;
    config.schedule_delay = 0.5;
    config.start_delay = 0.4;
    absl::StatusOr<std::unique_ptr<testutil::EmulatorProcess>> emu = StartEmulator(config);
    ASSERT_TRUE(emu.ok()) << emu.status();
    emu_ = *std::move(emu);
    absl::StatusOr<std::unique_ptr<Provider>> provider = MakeProvider(TcpEndpoint(*emu_));
    ASSERT_TRUE(provider.ok()) << provider.status();
    provider_ = *std::move(provider);
    client_ = std::make_unique<Client>(provider_.get());
  }
  std::unique_ptr<testutil::EmulatorProcess> emu_;
  std::unique_ptr<Provider> provider_;
  std::unique_ptr<Client> client_;
};

TEST_F(FleetdLikeTest, LaunchedIsDoneOnlyWhenSystemdRunsTheUnit) {
  absl::StatusOr<MutationProgress> first =
      client_->CreateUnit("good.service", SleepUnit(v1::Unit::LAUNCHED));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_FALSE(first->done);
  // Poll until fleet says launched: the operation is still pending then,
  // because systemd has not reported the unit running yet.
  MutationProgress progress = *first;
  bool saw_launched_pending = false;
  const absl::Time give_up = absl::Now() + absl::Seconds(15);
  while (!progress.done) {
    ASSERT_LT(absl::Now(), give_up);
    absl::SleepFor(absl::Milliseconds(30));
    absl::StatusOr<MutationProgress> next = client_->Poll(progress.poll_token);
    ASSERT_TRUE(next.ok()) << next.status();
    progress = *std::move(next);
    if (!progress.done && absl::StrContains(progress.detail, "fleet says launched")) {
      saw_launched_pending = true;
    }
  }
  EXPECT_TRUE(saw_launched_pending);
  const v1::Unit unit = Unpack<v1::Unit>(progress);
  EXPECT_EQ(unit.current_state(), v1::Unit::LAUNCHED);
  absl::StatusOr<v1::ListUnitStatesResponse> states =
      client_->ListUnitStates("", "accounts/lab/units/good.service");
  ASSERT_TRUE(states.ok()) << states.status();
  ASSERT_EQ(states->unit_states_size(), 1);
  EXPECT_EQ(states->unit_states(0).systemd_active_state(), "active");
  EXPECT_EQ(states->unit_states(0).systemd_sub_state(), "running");
  EXPECT_EQ(states->unit_states(0).machine(), unit.machine());
  // Never /state/<name> (fleetd drops the connection for an unknown one).
  for (const std::string& r : Requests(*emu_)) {
    EXPECT_FALSE(absl::StartsWith(r, "GET /fleet/v1/state/")) << r;
  }
}

TEST_F(FleetdLikeTest, AFailedStartFailsTheOperationWithSystemdsState) {
  v1::Unit unit = SleepUnit(v1::Unit::LAUNCHED);
  unit.mutable_options(0)->set_value("/usr/bin/cloudplane-no-such-binary 1d");
  absl::StatusOr<MutationProgress> first = client_->CreateUnit("bad.service", unit);
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<MutationProgress> end = client_->PollUntilDone(*first);
  ASSERT_FALSE(end.ok());
  EXPECT_EQ(end.status().code(), absl::StatusCode::kFailedPrecondition) << end.status();
  EXPECT_THAT(std::string(end.status().message()), ::testing::HasSubstr("loaded/failed/failed"));
  EXPECT_EQ(GetErrorInfo(end.status())->reason(), "PROVIDER_FAILURE_STATE");
  EXPECT_EQ(MetadataOf(end.status(), "systemdActiveState"), "failed");
  EXPECT_EQ(MetadataOf(end.status(), "systemdSubState"), "failed");
  EXPECT_EQ(MetadataOf(end.status(), "providerState"), "loaded/failed/failed");
  EXPECT_FALSE(kit::IsAmbiguous(end.status()));
}

TEST_F(FleetdLikeTest, APoisonedUnitIsThatUnitInErrorNotAnOutage) {
  ASSERT_TRUE(client_->PollUntilDone(*client_->CreateUnit("ok.service",
                                                          SleepUnit(v1::Unit::LAUNCHED)))
                  .ok());
  ASSERT_TRUE(client_->PollUntilDone(*client_->CreateUnit("x.service",
                                                          SleepUnit(v1::Unit::LAUNCHED)))
                  .ok());
  // Someone sets an invalid desired state directly in fleet.
  ASSERT_EQ(RawRequest(*emu_, "PUT", "/fleet/v1/units/x.service", R"({"desiredState":"bogus"})"),
            204);
  // GetUnit: the unit in state ERROR with fleet's answer, not UNAVAILABLE.
  absl::StatusOr<v1::Unit> got = client_->GetUnit("accounts/lab/units/x.service");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->name(), "accounts/lab/units/x.service");
  EXPECT_EQ(got->current_state(), v1::Unit::ERROR);
  EXPECT_THAT(got->provider_error(), ::testing::HasSubstr("HTTP 500"));
  // ListUnits: listed and marked, beside the healthy one.
  absl::StatusOr<v1::ListUnitsResponse> list = client_->ListUnits();
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->units_size(), 2);
  EXPECT_EQ(list->units(0).name(), "accounts/lab/units/ok.service");
  EXPECT_EQ(list->units(0).current_state(), v1::Unit::LAUNCHED);
  EXPECT_EQ(list->units(1).name(), "accounts/lab/units/x.service");
  EXPECT_EQ(list->units(1).current_state(), v1::Unit::ERROR);
  // An operation on it fails at once with the reason.
  absl::StatusOr<MutationProgress> set =
      client_->SetState("accounts/lab/units/x.service", v1::Unit::INACTIVE);
  ASSERT_FALSE(set.ok());
  EXPECT_EQ(set.status().code(), absl::StatusCode::kFailedPrecondition) << set.status();
  EXPECT_EQ(GetErrorInfo(set.status())->reason(), "PROVIDER_ERROR");
  EXPECT_EQ(MetadataOf(set.status(), "httpStatus"), "500");
  EXPECT_EQ(MetadataOf(set.status(), "unit"), "x.service");
  // A poll that was waiting on it when it broke fails the same way.
  absl::StatusOr<MutationProgress> poll =
      client_->Poll(MakePollToken("x.service", "launched"));
  ASSERT_FALSE(poll.ok());
  EXPECT_EQ(poll.status().code(), absl::StatusCode::kFailedPrecondition) << poll.status();
  EXPECT_FALSE(kit::IsAmbiguous(poll.status()));
  // Delete clears it.
  absl::StatusOr<MutationProgress> del = client_->DeleteUnit("accounts/lab/units/x.service", false);
  ASSERT_TRUE(del.ok()) << del.status();
  EXPECT_TRUE(del->done);
  EXPECT_EQ(client_->GetUnit("accounts/lab/units/x.service").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(FleetdLikeTest, PaddedOptionValuesAreSentTrimmedSoARedriveIsANoOp) {
  v1::Unit unit = SleepUnit(v1::Unit::LOADED);
  unit.mutable_options(0)->set_value("\u00a0 /usr/bin/sleep 1d \u3000");
  ASSERT_TRUE(client_->PollUntilDone(*client_->CreateUnit("pad.service", unit)).ok());
  // The same create again (a re-drive): fleet finds the same unit file.
  absl::StatusOr<MutationProgress> again = client_->CreateUnit("pad.service", unit);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(CountRequests(*emu_, "PUT /fleet/v1/units/pad.service -> 201"), 1);
  EXPECT_EQ(CountRequests(*emu_, "PUT /fleet/v1/units/pad.service -> 204"), 1);
  absl::StatusOr<v1::Unit> got = client_->GetUnit("accounts/lab/units/pad.service");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->options(0).value(), "/usr/bin/sleep 1d");
}

// ---------------------------------------------------------------------------
// Judging a pending operation from the observer's ListUnits (no request is
// made: the provider's endpoint is never reached).

class FleetObservationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<Provider>> provider = MakeProvider("http://127.0.0.1:1");
    ASSERT_TRUE(provider.ok()) << provider.status();
    provider_ = *std::move(provider);
  }

  static v1::Unit Listed(const std::string& id, v1::Unit::State desired,
                         v1::Unit::State current) {
    v1::Unit unit;
    unit.set_name(absl::StrCat("accounts/lab/units/", id));
    unit.set_desired_state(desired);
    unit.set_current_state(current);
    auto* option = unit.add_options();
    option->set_section("Service");
    option->set_name("ExecStart");
    option->set_value("/usr/bin/sleep 1d");
    return unit;
  }

  std::optional<absl::StatusOr<MutationProgress>> Judge(const std::string& token,
                                                        const v1::Unit* unit) {
    return provider_->ProgressFromObservation(token, unit);
  }

  // A judgement that asks for one targeted poll: not done, same token.
  static void ExpectAsksToPoll(const std::optional<absl::StatusOr<MutationProgress>>& judged,
                               const std::string& token, absl::string_view why) {
    ASSERT_TRUE(judged.has_value());
    ASSERT_TRUE(judged->ok()) << judged->status();
    EXPECT_FALSE((*judged)->done);
    EXPECT_EQ((*judged)->poll_token, token);
    EXPECT_THAT((*judged)->detail, ::testing::HasSubstr(std::string(why)));
  }

  std::unique_ptr<Provider> provider_;
};

TEST_F(FleetObservationTest, TheTargetIsTheUnitInTheUnitsCollection) {
  std::optional<ObservedTarget> target =
      provider_->ObservationTarget(MakePollToken("web.service", "launched"));
  ASSERT_TRUE(target.has_value());
  EXPECT_EQ(target->kind, "Unit");
  EXPECT_EQ(target->name, "accounts/lab/units/web.service");
  // A token the adapter cannot read is not observed: the runner polls it
  // (and the poll says what is wrong with it).
  EXPECT_FALSE(provider_->ObservationTarget("garbage").has_value());
  EXPECT_FALSE(provider_->ProgressFromObservation("garbage", nullptr).has_value());
}

TEST_F(FleetObservationTest, AListedUnitShortOfItsTargetIsNotYet) {
  const std::string token = MakePollToken("a.service", "launched");
  v1::Unit unit = Listed("a.service", v1::Unit::LAUNCHED, v1::Unit::LOADED);
  EXPECT_FALSE(Judge(token, &unit).has_value());
  unit.set_current_state(v1::Unit::INACTIVE);
  EXPECT_FALSE(Judge(token, &unit).has_value());
}

TEST_F(FleetObservationTest, LoadedAndInactiveTargetsAreDoneFromTheList) {
  for (auto [wire, state] : {std::pair{"loaded", v1::Unit::LOADED},
                             std::pair{"inactive", v1::Unit::INACTIVE}}) {
    const v1::Unit unit = Listed("a.service", state, state);
    std::optional<absl::StatusOr<MutationProgress>> judged =
        Judge(MakePollToken("a.service", wire), &unit);
    ASSERT_TRUE(judged.has_value()) << wire;
    ASSERT_TRUE(judged->ok()) << judged->status();
    EXPECT_TRUE((*judged)->done) << wire;
    EXPECT_EQ(Unpack<v1::Unit>(**judged).name(), "accounts/lab/units/a.service");
  }
}

TEST_F(FleetObservationTest, ALaunchedUnitNeedsSystemdsWordFromOnePoll) {
  // fleet says launched before systemd's verdict, and the list does not
  // carry the unit's state on its machine.
  const std::string token = MakePollToken("a.service", "launched");
  const v1::Unit unit = Listed("a.service", v1::Unit::LAUNCHED, v1::Unit::LAUNCHED);
  ExpectAsksToPoll(Judge(token, &unit), token, "systemd");
}

TEST_F(FleetObservationTest, AGlobalUnitIsDoneOnceListedWithItsTarget) {
  v1::Unit unit = Listed("g.service", v1::Unit::LAUNCHED, v1::Unit::STATE_UNSPECIFIED);
  auto* global = unit.add_options();
  global->set_section("X-Fleet");
  global->set_name("Global");
  global->set_value("true");
  std::optional<absl::StatusOr<MutationProgress>> judged =
      Judge(MakePollToken("g.service", "launched"), &unit);
  ASSERT_TRUE(judged.has_value());
  ASSERT_TRUE(judged->ok()) << judged->status();
  EXPECT_TRUE((*judged)->done);
}

TEST_F(FleetObservationTest, AnotherDesiredStateFailsTheOperationAsAPollWould) {
  const v1::Unit unit = Listed("a.service", v1::Unit::INACTIVE, v1::Unit::INACTIVE);
  std::optional<absl::StatusOr<MutationProgress>> judged =
      Judge(MakePollToken("a.service", "launched"), &unit);
  ASSERT_TRUE(judged.has_value());
  EXPECT_EQ(judged->status().code(), absl::StatusCode::kAborted);
  std::optional<google::rpc::ErrorInfo> info = GetErrorInfo(judged->status());
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->reason(), "CONCURRENT_MODIFICATION");
}

TEST_F(FleetObservationTest, AMissingOrBrokenUnitIsLeftToOnePoll) {
  const std::string token = MakePollToken("a.service", "launched");
  // Absent from a complete list: a poll says NOT_FOUND or the unit's own
  // 500 (a broken unit is left out of fleet's list).
  ExpectAsksToPoll(Judge(token, nullptr), token, "not listed");
  v1::Unit unit;
  unit.set_name("accounts/lab/units/a.service");
  unit.set_current_state(v1::Unit::ERROR);
  unit.set_provider_error("fleet answered HTTP 500");
  ExpectAsksToPoll(Judge(token, &unit), token, "ERROR");
}

}  // namespace
}  // namespace cloudplane::adapters::fleet
