// The CoreOS fleet adapter: UnitsService on a fleet cluster.
//
// Provider API: fleet v1 (`/fleet/v1/...`, fleetd v1.0.0, the last release;
//   the project is archived, so the protocol is frozen).
// Protocol:     REST/JSON over HTTP/1.1, to a TCP listener (`http://host:port`)
//   or fleetd's unix socket (`unix:///var/run/fleet.sock`).
// Auth:         none. fleet has no authentication and no TLS; access is
//   controlled by the socket's file permissions (or an SSH tunnel). A
//   configured secret is ignored.
// Reference:    the fleet v1 API documentation,
//   https://github.com/coreos/fleet/blob/master/Documentation/api-v1.md, and
//   its discovery document schema/v1.json; translation lives in fleet_wire.h.
//
// Methods (all asynchronous; provider I/O runs on the HTTP transport thread
// through adapters/common/http, never on the caller's thread):
//   ListUnits, ListUnitStates, ListMachines  follow fleet's nextPageToken
//       through every page, then page the whole list for our API (keyset by
//       name, adapters/common/paging). ListUnitStates passes `machine` and
//       `unit` to fleet as the machineID / unitName filters.
//   GetUnit                 GET /units/{name}; NOT_FOUND when absent.
//   GetMachine              fleet has no GET /machines/{id}: lists and picks;
//                           NOT_FOUND when absent.
//   CreateUnit              validates locally (unit_id, unit.options,
//       unit.desired_state; INVALID_ARGUMENT before any request), PUTs the
//       options, each value trimmed of white space as fleet stores it (Go's
//       unicode.IsSpace; fleet's hash would otherwise see the same padded
//       options as a new unit file and replace, i.e. restart, the unit), and
//       the desired state (INACTIVE when unspecified), then reads the unit.
//       Re-drive (how it finds its own work): fleet's PUT is idempotent by
//       itself, keyed by the unit name the caller chose. After a crash or an
//       ambiguous answer (a reset, a timeout, a 5xx: kit::IsAmbiguous) the
//       runner calls CreateUnit again and the same PUT goes out: fleet
//       answers 201 when the first never arrived, else 204 (the unit exists;
//       its desired state is set again, its options are left as they are),
//       and the unit is read and polled as after a first drive. No second
//       unit can come of it. SetUnitDesiredState is the same PUT without
//       options; DeleteUnit re-driven after the first went through is
//       NOT_FOUND unless allow_missing.
//   SetUnitDesiredState     same flow with PUT {"desiredState":…};
//       STATE_UNSPECIFIED (or ERROR) is INVALID_ARGUMENT, and a template unit
//       (`foo@.service`) asked for anything but INACTIVE is
//       FAILED_PRECONDITION, both before any request. A unit that does not
//       exist is FAILED_PRECONDITION (fleet's 409 "unit does not exist and
//       options field empty").
//   DeleteUnit              DELETE; done with Empty at fleet's 204 (fleet
//       removes the unit from its registry at once; its agent stops it in
//       the background). NOT_FOUND when absent, unless allow_missing.
//   PollOperation           reads the unit again (see "done" below);
//       NOT_FOUND if the unit disappeared, ABORTED if its desired state was
//       changed meanwhile, DATA_LOSS for a token this adapter did not make.
//
// Field contract (ProviderInfo::honoured_fields): every field of the three
// mutations' requests is carried out (CreateUnit unit_id, unit.options,
// unit.desired_state; SetUnitDesiredState desired_state; DeleteUnit
// allow_missing); none is left out.
//
// What "done" means, per mutation (checked after the PUT and on each poll):
//   target INACTIVE   fleet's currentState is `inactive` (fleet shows a unit
//                     `loaded` with its machine while its agent unloads it).
//   target LOADED     currentState `loaded`.
//   target LAUNCHED   currentState `launched` AND the unit's UnitState on its
//                     machine says systemd runs it: ACTIVE `active` (sub
//                     `running`, or `exited` for a oneshot that stays
//                     active). fleet says `launched` as soon as its agent
//                     triggers the start, ~0.5 s before systemd runs a good
//                     unit and also for a unit whose program does not exist.
//                     ACTIVE `failed` fails the Operation: FAILED_PRECONDITION,
//                     reason PROVIDER_FAILURE_STATE, the LOAD/ACTIVE/SUB
//                     triple in the message and in ErrorInfo metadata
//                     (providerState, systemd*State, machine). The states are
//                     read with GET /state?unitName=, never /state/<name>
//                     (fleetd v1.0.0 drops the connection there for a unit
//                     without a state, which looks like a network fault).
//   global units      done when the PUT is accepted: fleet reports no
//                     current state for them (they run on many machines).
//   delete            fleet's 204.
//
// A broken unit is not an outage. fleet answers 500 for good for a unit
// whose desired state was set to an invalid value in fleet directly (its
// registry cannot read it back), leaves it out of GET /units and answers
// every other request. When a unit's GET or PUT answers a 5xx other than 503
// the adapter probes fleet with GET /state?unitName=<unit>; if that answers
// 200 the error is the unit's own:
//   GetUnit     answers the unit with current_state ERROR and provider_error
//               (fleet's answer), not an error.
//   ListUnits   also lists the unit states (one more list per call) and asks
//               for each unit named there but missing from fleet's list: a
//               500 adds it in state ERROR. A broken unit with no state on
//               any machine cannot be seen and stays out of the list.
//   SetUnitDesiredState, CreateUnit on that name, and a poll waiting on it
//               fail with FAILED_PRECONDITION, reason PROVIDER_ERROR,
//               metadata unit/httpStatus/providerMessage (not retried, so
//               the Operation ends at once instead of at its timeout).
//   DeleteUnit  works (fleet deletes it: 204), which clears it.
// A 503 or a failed probe stays UNAVAILABLE (fleet itself is down).
// With CallContext::validate_only, mutations run the local checks above
// (names, options, states) and finish at once without any request.
// Errors of fleet map as in fleet_wire.cc (StatusFromResponse).
// A deadline in CallContext bounds every request; one already past sends
// nothing and fails with DEADLINE_EXCEEDED (the transport's rule,
// adapters/common/kit/send.h). An unreachable endpoint is UNAVAILABLE.
//
// Watch: watch_source kPoll. The server's observer (service/observer.h)
// lists units and machines every observe_interval_seconds: one ListUnits
// (every GET /units page, then every GET /state page) and one ListMachines
// (GET /machines) per round; unit states are read as part of ListUnits, not
// on their own. With 1,000 units and fleet's pages of 100: 13 requests.
// Pending unit operations wait on those rounds (ObservationTarget: the Unit;
// ProgressFromObservation: the same judgement as a poll on the listed unit);
// LOADED and INACTIVE finish from the list, LAUNCHED takes one confirming
// poll (GET unit + GET /state?unitName=: systemd's verdict is not listed), a
// unit missing from the list or in ERROR one poll that says why.
//
// Thread-safety: a Provider made here is thread-safe; requests in flight keep
// what they need alive, so the Provider may be destroyed while they finish.
#ifndef CLOUDPLANE_ADAPTERS_FLEET_FLEET_ADAPTER_H_
#define CLOUDPLANE_ADAPTERS_FLEET_FLEET_ADAPTER_H_

#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "adapters/provider.h"

namespace cloudplane::http {
class HttpTransport;
}

namespace cloudplane::adapters::fleet {

// kind "fleet", the protocol and the eight supported UnitsService methods.
ProviderInfo FleetProviderInfo();

// Builds the Provider of one fleet account. `setup.endpoint` is
// `http://host:port` (the server root, without /fleet/v1) or
// `unix:///abs/path.sock`; https is accepted for a TLS-terminating proxy and
// uses verify_tls / ca_file. fleet takes no options.
// INVALID_ARGUMENT naming `endpoint` for an unusable endpoint, or
// `options.<name>` for each option given. `transport` is the HTTP transport
// to use (nullptr: the process-wide default).
absl::StatusOr<std::unique_ptr<Provider>> CreateFleetProvider(
    const AccountSetup& setup, std::shared_ptr<http::HttpTransport> transport = nullptr);

// Registers kind "fleet" with CreateFleetProvider (default transport).
// ALREADY_EXISTS when it is registered already.
absl::Status RegisterFleet(AdapterRegistry& registry);

}  // namespace cloudplane::adapters::fleet

#endif  // CLOUDPLANE_ADAPTERS_FLEET_FLEET_ADAPTER_H_
