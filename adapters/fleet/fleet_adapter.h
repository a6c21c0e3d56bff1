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
//       options and desired state (INACTIVE when unspecified), then reads the
//       unit once: done when the current state already equals the desired one
//       (or the unit is global: fleet reports no current state for those),
//       otherwise done=false with a poll token naming the unit and the
//       desired state (UnitToken, fleet_tokens.proto).
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
//       STATE_UNSPECIFIED is INVALID_ARGUMENT, and a template unit
//       (`foo@.service`) asked for anything but INACTIVE is
//       FAILED_PRECONDITION, both before any request. A unit that does not
//       exist is FAILED_PRECONDITION (fleet's 409 "unit does not exist and
//       options field empty").
//   DeleteUnit              DELETE; done with Empty. NOT_FOUND when absent,
//                           unless allow_missing.
//   PollOperation           GET the unit until current == desired; NOT_FOUND
//                           if the unit disappeared, ABORTED if its desired
//                           state was changed meanwhile, DATA_LOSS for a
//                           token this adapter did not make.
// With CallContext::validate_only, mutations run the local checks above
// (names, options, states) and finish at once without any request.
// Errors of fleet map as in fleet_wire.cc (StatusFromResponse).
// A deadline in CallContext bounds every request; one already past sends
// nothing and fails with DEADLINE_EXCEEDED (the transport's rule,
// adapters/common/kit/send.h). An unreachable endpoint is UNAVAILABLE.
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
