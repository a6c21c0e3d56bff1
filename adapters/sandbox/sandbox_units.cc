// UnitsService of the sandbox, after fleet: a unit's current state follows
// its desired state after the transition delay; LOADED and LAUNCHED units
// are scheduled to a machine (X-Fleet MachineID= pins one, Global=true runs
// on every machine, otherwise the least loaded machine is chosen) and report
// one UnitState per machine with systemd's words and the unit file hash.
// (ListMachines and GetMachine are catalog reads in sandbox_provider.cc.)
#include <map>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "adapters/sandbox/sandbox_names.h"
#include "adapters/sandbox/sandbox_provider.h"
#include "adapters/sandbox/unit_file.h"
#include "base/errors.h"
#include "base/status.h"

namespace cloudplane::adapters::sandbox {
namespace {

// The last value of `name` in the unit's [X-Fleet] section; "" when unset.
std::string FleetOption(const v1::Unit& unit, absl::string_view name) {
  std::string value;
  for (const v1::UnitOption& option : unit.options()) {
    if (option.section() == "X-Fleet" && option.name() == name) value = option.value();
  }
  return value;
}

bool IsGlobal(const v1::Unit& unit) {
  return absl::AsciiStrToLower(FleetOption(unit, "Global")) == "true";
}

PollToken Token(absl::string_view id, v1::Unit::State state) {
  return StateToken(kUnits, id, v1::Unit::State_Name(state));
}

absl::Status TemplateCannotRun(absl::string_view name, v1::Unit::State state) {
  return WrongState(name, absl::StrCat("a template unit can only be INACTIVE, not ",
                                       v1::Unit::State_Name(state)));
}

}  // namespace

absl::StatusOr<std::string> SandboxProvider::PickMachine(Txn& txn, const v1::Unit& unit) const {
  if (IsGlobal(unit)) return std::string();
  std::string pinned = FleetOption(unit, "MachineID");
  if (!pinned.empty()) {
    if (catalog_.FindMachine(pinned) == nullptr) {
      return WrongState(unit.name(),
                        absl::StrCat("X-Fleet MachineID=", pinned, " names no machine"));
    }
    return Name(kMachines, pinned);
  }
  std::map<std::string, int> load;
  for (const v1::Machine& machine : catalog_.machines) load[machine.name()] = 0;
  ASSIGN_OR_RETURN(auto units, txn.LoadAll(kUnits));
  for (const auto& [id, record] : units) {
    ASSIGN_OR_RETURN(v1::Unit other, Decode<v1::Unit>(record));
    if (!other.machine().empty() && other.name() != unit.name()) ++load[other.machine()];
  }
  std::string best;
  int best_load = 0;
  for (const auto& [machine, count] : load) {  // ordered by name: ties go to the first
    if (best.empty() || count < best_load) {
      best = machine;
      best_load = count;
    }
  }
  return best;
}

void SandboxProvider::ListUnits(const CallContext& ctx, const v1::ListUnitsRequest& request,
                                Callback<v1::ListUnitsResponse> done) {
  std::move(done)([&]() -> absl::StatusOr<v1::ListUnitsResponse> {
    RETURN_IF_ERROR(CheckCall(ctx));
    RETURN_IF_ERROR(CheckParent(request.parent(), account_));
    v1::ListUnitsResponse response;
    RETURN_IF_ERROR(ListPage(kUnits, request.page_size(), request.page_token(),
                             response.mutable_units(), response.mutable_next_page_token()));
    return response;
  }());
}

void SandboxProvider::GetUnit(const CallContext& ctx, const v1::GetUnitRequest& request,
                              Callback<v1::Unit> done) {
  std::move(done)([&]() -> absl::StatusOr<v1::Unit> {
    RETURN_IF_ERROR(CheckCall(ctx));
    ASSIGN_OR_RETURN(std::string id, ParseName(request.name(), account_, kUnits, "name"));
    return GetTyped<v1::Unit>(kUnits, id);
  }());
}

void SandboxProvider::CreateUnit(const CallContext& ctx, const v1::CreateUnitRequest& request,
                                 Callback<MutationProgress> done) {
  Mutate(
      ctx,
      [&](Txn& txn) -> absl::StatusOr<PollToken> {
        RETURN_IF_ERROR(CheckParent(request.parent(), account_));
        if (absl::Status name = CheckUnitName(request.unit_id()); !name.ok()) {
          return InvalidField("unit_id", name.message());
        }
        const std::string& id = request.unit_id();
        if (!request.has_unit()) return InvalidField("unit", "required");
        const v1::Unit& in = request.unit();
        if (in.options().empty()) return InvalidField("unit.options", "required");
        for (int i = 0; i < in.options_size(); ++i) {
          if (in.options(i).section().empty()) {
            return InvalidField(absl::StrCat("unit.options[", i, "].section"), "required");
          }
          if (in.options(i).name().empty()) {
            return InvalidField(absl::StrCat("unit.options[", i, "].name"), "required");
          }
        }
        v1::Unit unit;
        unit.set_name(Name(kUnits, id));
        *unit.mutable_options() = in.options();
        // fleet api/units.go ValidateOptions: these combinations cannot be
        // scheduled.
        if (!FleetOption(unit, "MachineID").empty() && IsGlobal(unit)) {
          return InvalidField("unit.options", "MachineID cannot be used with Global");
        }
        v1::Unit::State desired = in.desired_state() == v1::Unit::STATE_UNSPECIFIED
                                      ? v1::Unit::INACTIVE
                                      : in.desired_state();
        if (IsTemplateUnit(id) && desired != v1::Unit::INACTIVE) {
          return TemplateCannotRun(unit.name(), desired);
        }
        ASSIGN_OR_RETURN(std::optional<Record> existing, txn.Load(kUnits, id));
        if (existing.has_value()) return AlreadyExists(kUnits, unit.name());
        unit.set_desired_state(desired);
        unit.set_current_state(v1::Unit::INACTIVE);
        Record record;
        if (desired != v1::Unit::INACTIVE) {
          ASSIGN_OR_RETURN(std::string machine, PickMachine(txn, unit));
          unit.set_machine(machine);
          SaveVersion(unit, record, txn.now());
          SetTransition(record, txn.now(), options_.transition, desired);
        } else {
          SaveVersion(unit, record, txn.now());
        }
        RETURN_IF_ERROR(txn.Put(kUnits, id, record));
        return Token(id, desired);
      },
      std::move(done));
}

void SandboxProvider::SetUnitDesiredState(const CallContext& ctx,
                                          const v1::SetUnitDesiredStateRequest& request,
                                          Callback<MutationProgress> done) {
  Mutate(
      ctx,
      [&](Txn& txn) -> absl::StatusOr<PollToken> {
        ASSIGN_OR_RETURN(std::string id, ParseName(request.name(), account_, kUnits, "name"));
        const v1::Unit::State desired = request.desired_state();
        if (desired == v1::Unit::STATE_UNSPECIFIED) {
          return InvalidField("desired_state", "must be INACTIVE, LOADED or LAUNCHED");
        }
        ASSIGN_OR_RETURN(Loaded<v1::Unit> loaded, LoadExisting<v1::Unit>(txn, kUnits, id));
        v1::Unit& unit = loaded.resource;
        if (IsTemplateUnit(id) && desired != v1::Unit::INACTIVE) {
          return TemplateCannotRun(unit.name(), desired);
        }
        if (unit.desired_state() == desired) return Token(id, desired);
        unit.set_desired_state(desired);
        if (desired != v1::Unit::INACTIVE && unit.machine().empty()) {
          ASSIGN_OR_RETURN(std::string machine, PickMachine(txn, unit));
          unit.set_machine(machine);
        }
        if (unit.current_state() == desired) {
          // Turned back before the previous change happened.
          if (desired == v1::Unit::INACTIVE) unit.clear_machine();
          SaveVersion(unit, loaded.record, txn.now());
          loaded.record.clear_transition();
        } else {
          SaveVersion(unit, loaded.record, txn.now());
          SetTransition(loaded.record, txn.now(), options_.transition, desired);
        }
        RETURN_IF_ERROR(txn.Put(kUnits, id, loaded.record));
        return Token(id, desired);
      },
      std::move(done));
}

void SandboxProvider::DeleteUnit(const CallContext& ctx, const v1::DeleteUnitRequest& request,
                                 Callback<MutationProgress> done) {
  Mutate(
      ctx,
      [&](Txn& txn) -> absl::StatusOr<PollToken> {
        ASSIGN_OR_RETURN(std::string id, ParseName(request.name(), account_, kUnits, "name"));
        ASSIGN_OR_RETURN(std::optional<Record> record, txn.Load(kUnits, id));
        if (!record.has_value() && !request.allow_missing()) {
          return NotFound(kUnits, request.name());
        }
        // fleet destroys a unit at once; its agents unload it meanwhile.
        if (record.has_value()) RETURN_IF_ERROR(txn.Delete(kUnits, id));
        return GoneToken(kUnits, id);
      },
      std::move(done));
}

void SandboxProvider::ListUnitStates(const CallContext& ctx,
                                     const v1::ListUnitStatesRequest& request,
                                     Callback<v1::ListUnitStatesResponse> done) {
  std::move(done)([&]() -> absl::StatusOr<v1::ListUnitStatesResponse> {
    RETURN_IF_ERROR(CheckCall(ctx));
    RETURN_IF_ERROR(CheckParent(request.parent(), account_));
    if (!request.machine().empty()) {
      RETURN_IF_ERROR(ParseName(request.machine(), account_, kMachines, "machine").status());
    }
    if (!request.unit().empty()) {
      RETURN_IF_ERROR(ParseName(request.unit(), account_, kUnits, "unit").status());
    }
    ASSIGN_OR_RETURN(std::vector<v1::Unit> units, ListTyped<v1::Unit>(kUnits));
    std::vector<v1::UnitState> states;
    for (const v1::Unit& unit : units) {
      if (unit.current_state() != v1::Unit::LOADED && unit.current_state() != v1::Unit::LAUNCHED) {
        continue;
      }
      if (!request.unit().empty() && unit.name() != request.unit()) continue;
      std::vector<std::string> machines;
      if (IsGlobal(unit)) {
        for (const v1::Machine& machine : catalog_.machines) machines.push_back(machine.name());
      } else if (!unit.machine().empty()) {
        machines.push_back(unit.machine());
      }
      const bool launched = unit.current_state() == v1::Unit::LAUNCHED;
      const std::string hash = UnitFileHash(unit.options());
      for (const std::string& machine : machines) {
        if (!request.machine().empty() && machine != request.machine()) continue;
        v1::UnitState& state = states.emplace_back();
        state.set_unit(unit.name());
        state.set_machine(machine);
        state.set_hash(hash);
        state.set_systemd_load_state("loaded");
        state.set_systemd_active_state(launched ? "active" : "inactive");
        state.set_systemd_sub_state(launched ? "running" : "dead");
      }
    }
    v1::ListUnitStatesResponse response;
    // '\n' sorts below every character of unit and machine names, so the
    // key orders by unit, then machine.
    RETURN_IF_ERROR(PageInto(
        std::move(states),
        [](const v1::UnitState& s) { return absl::StrCat(s.unit(), "\n", s.machine()); },
        request.page_size(), request.page_token(), response.mutable_unit_states(),
        response.mutable_next_page_token()));
    return response;
  }());
}

}  // namespace cloudplane::adapters::sandbox
