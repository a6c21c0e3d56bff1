// The sandbox's UnitsService: fleet-like units, their states and machines.
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "adapters/provider.h"
#include "adapters/sandbox/sandbox_test_fixture.h"
#include "base/errors.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cloudplane::adapters::sandbox {
namespace {

using ::testing::MatchesRegex;
using ::testing::SizeIs;

void AddOption(v1::Unit& unit, const char* section, const char* name, const char* value) {
  v1::UnitOption* option = unit.add_options();
  option->set_section(section);
  option->set_name(name);
  option->set_value(value);
}

TEST_F(SandboxTest, UnitsConvergeWithUnitStates) {
  v1::CreateUnitRequest create;
  create.set_parent(kParent);
  create.set_unit_id("hello.service");
  AddOption(*create.mutable_unit(), "Unit", "Description", "Hello");
  AddOption(*create.mutable_unit(), "Service", "ExecStart", "/usr/bin/sleep 1d");
  create.mutable_unit()->set_desired_state(v1::Unit::LAUNCHED);

  v1::CreateUnitRequest bad_name = create;
  bad_name.set_unit_id("hello");
  EXPECT_EQ(BadField(Call(&Provider::CreateUnit, bad_name).status()), "unit_id");
  v1::CreateUnitRequest no_options = create;
  no_options.mutable_unit()->clear_options();
  EXPECT_EQ(BadField(Call(&Provider::CreateUnit, no_options).status()), "unit.options");
  v1::CreateUnitRequest template_unit = create;
  template_unit.set_unit_id("hello@.service");
  EXPECT_EQ(Call(&Provider::CreateUnit, template_unit).status().code(),
            absl::StatusCode::kFailedPrecondition);

  auto creating = Call(&Provider::CreateUnit, create);
  ASSERT_TRUE(creating.ok()) << creating.status();
  const PollToken token = Decoded(creating->poll_token);
  EXPECT_EQ(token.collection(), "units");
  EXPECT_EQ(token.id(), "hello.service");
  EXPECT_EQ(token.state(), "LAUNCHED");
  auto launched = Finish<v1::Unit>(*creating);
  ASSERT_TRUE(launched.ok()) << launched.status();
  EXPECT_EQ(launched->current_state(), v1::Unit::LAUNCHED);
  EXPECT_THAT(launched->machine(), MatchesRegex("accounts/lab/machines/[0-9a-f]{32}"));
  EXPECT_EQ(Call(&Provider::CreateUnit, create).status().code(), absl::StatusCode::kAlreadyExists);

  v1::ListUnitStatesRequest states;
  states.set_parent(kParent);
  auto running = Call(&Provider::ListUnitStates, states);
  ASSERT_TRUE(running.ok()) << running.status();
  ASSERT_THAT(running->unit_states(), SizeIs(1));
  const v1::UnitState& state = running->unit_states(0);
  EXPECT_EQ(state.unit(), Res("units", "hello.service"));
  EXPECT_EQ(state.machine(), launched->machine());
  // sha1sum of "[Unit]\nDescription=Hello\n\n[Service]\nExecStart=/usr/bin/sleep 1d\n"
  EXPECT_EQ(state.hash(), "076bfff1f68e6e8f938d34dde10354bc7a534f6a");
  EXPECT_EQ(state.systemd_load_state(), "loaded");
  EXPECT_EQ(state.systemd_active_state(), "active");
  EXPECT_EQ(state.systemd_sub_state(), "running");

  v1::SetUnitDesiredStateRequest set;
  set.set_name(Res("units", "hello.service"));
  set.set_desired_state(v1::Unit::LOADED);
  auto loaded = Finish<v1::Unit>(Call(&Provider::SetUnitDesiredState, set));
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->current_state(), v1::Unit::LOADED);
  auto loaded_states = Call(&Provider::ListUnitStates, states);
  ASSERT_THAT(loaded_states->unit_states(), SizeIs(1));
  EXPECT_EQ(loaded_states->unit_states(0).systemd_active_state(), "inactive");
  EXPECT_EQ(loaded_states->unit_states(0).systemd_sub_state(), "dead");

  set.set_desired_state(v1::Unit::INACTIVE);
  auto inactive = Finish<v1::Unit>(Call(&Provider::SetUnitDesiredState, set));
  ASSERT_TRUE(inactive.ok()) << inactive.status();
  EXPECT_EQ(inactive->current_state(), v1::Unit::INACTIVE);
  EXPECT_TRUE(inactive->machine().empty());
  EXPECT_THAT(Call(&Provider::ListUnitStates, states)->unit_states(), SizeIs(0));

  set.set_desired_state(v1::Unit::STATE_UNSPECIFIED);
  EXPECT_EQ(BadField(Call(&Provider::SetUnitDesiredState, set).status()), "desired_state");

  // A global unit runs on every machine; filters narrow the states.
  v1::CreateUnitRequest global = create;
  global.set_unit_id("agent.service");
  AddOption(*global.mutable_unit(), "X-Fleet", "Global", "true");
  auto everywhere = Finish<v1::Unit>(Call(&Provider::CreateUnit, global));
  ASSERT_TRUE(everywhere.ok()) << everywhere.status();
  EXPECT_TRUE(everywhere->machine().empty());
  auto all = Call(&Provider::ListUnitStates, states);
  ASSERT_THAT(all->unit_states(), SizeIs(3));
  states.set_machine(all->unit_states(1).machine());
  EXPECT_THAT(Call(&Provider::ListUnitStates, states)->unit_states(), SizeIs(1));
  states.set_machine("accounts/lab/machines/nothex");
  EXPECT_EQ(BadField(Call(&Provider::ListUnitStates, states).status()), "machine");

  // A pinned unit goes to its machine.
  v1::CreateUnitRequest pinned = create;
  pinned.set_unit_id("pinned.service");
  AddOption(*pinned.mutable_unit(), "X-Fleet", "MachineID", "b4104f4b83fd48b2acc16a085b0ec2ce");
  auto pinned_unit = Finish<v1::Unit>(Call(&Provider::CreateUnit, pinned));
  ASSERT_TRUE(pinned_unit.ok()) << pinned_unit.status();
  EXPECT_EQ(pinned_unit->machine(), Res("machines", "b4104f4b83fd48b2acc16a085b0ec2ce"));

  v1::DeleteUnitRequest del;
  del.set_name(Res("units", "hello.service"));
  EXPECT_TRUE(Call(&Provider::DeleteUnit, del)->done);
  EXPECT_EQ(Call(&Provider::DeleteUnit, del).status().code(), absl::StatusCode::kNotFound);
  v1::GetUnitRequest get;
  get.set_name(del.name());
  EXPECT_EQ(Call(&Provider::GetUnit, get).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace cloudplane::adapters::sandbox
