// Pure translation between the CoreOS fleet v1 wire format (JSON over HTTP)
// and cloudplane.v1 messages. No I/O: every function here is a deterministic
// function of its arguments, tested on recorded and hand-written payloads in
// fleet_wire_test.cc.
//
// Reference: the fleet v1 API, https://github.com/coreos/fleet/blob/master/
// Documentation/api-v1.md, with its discovery document schema/v1.json and
// the handlers api/*.go of the same repository. Sections cited as §N are
// those of the project's fleet protocol notes (shared/protocols/fleet.md),
// which were written from those sources.
//
// Errors:
//   - A payload fleet sent that is not JSON, or JSON of the wrong shape, is
//     INTERNAL ("fleet sent malformed JSON: ...") with ErrorInfo reason
//     PROVIDER_MALFORMED_RESPONSE. It never crashes.
//   - Local validation (names, states, options) is INVALID_ARGUMENT with a
//     BadRequest field violation naming the request field.
//   - A fleet error response becomes the status of StatusFromResponse().
//
// Thread-safety: all functions are thread-safe (no shared state).
#ifndef CLOUDPLANE_ADAPTERS_FLEET_FLEET_WIRE_H_
#define CLOUDPLANE_ADAPTERS_FLEET_FLEET_WIRE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "cloudplane/v1/units.pb.h"
#include "google/protobuf/repeated_field.h"

namespace cloudplane::adapters::fleet {

using Options = google::protobuf::RepeatedPtrField<v1::UnitOption>;

// The path prefix of fleet's current API (the legacy /v1-alpha is not used).
inline constexpr absl::string_view kApiPrefix = "/fleet/v1";

// ---------------------------------------------------------------------------
// Names, states and local validation.

// Why fleet would reject `name` as a unit name (§5.1), in fleet's exact words
// (e.g. `invalid unit type: "bar"`), or nullopt when it is valid.
std::optional<std::string> UnitNameError(absl::string_view name);

// OK, or INVALID_ARGUMENT naming `field` with UnitNameError's text.
absl::Status ValidateUnitName(absl::string_view field, absl::string_view name);

// True for a template name: it has an `@` and an empty instance before the
// last `.` (`foo@.service`); fleet refuses to activate those.
bool IsTemplateUnitName(absl::string_view name);

// Checks the options of a unit to create: at least one; each with a
// non-empty section and name; no line breaks anywhere (they would change the
// unit file fleet builds, §5.3), no `[`/`]` in a section, no `=` in a name.
// INVALID_ARGUMENT naming `field` (e.g. `unit.options`) or `field[i].name`.
absl::Status ValidateOptions(absl::string_view field, const Options& options);

// True when the options make a global unit (§3): the last `[X-Fleet]
// Global=` value is one of true/yes/1/on/t (case-insensitive). Global units
// have no currentState or machineID in GET /units/{name}.
bool IsGlobalUnit(const Options& options);

// "inactive", "loaded", "launched"; nullopt for STATE_UNSPECIFIED and for
// values outside the enum.
// fleet stores a unit as a unit file and reads it back with go-systemd's
// parser, which trims leading and trailing white space (Go's
// unicode.IsSpace: ASCII space, \t\n\v\f\r, U+0085, U+00A0, U+1680,
// U+2000..U+200A, U+2028, U+2029, U+202F, U+205F, U+3000) from each value.
// Its hash compares the PUT's untrimmed options with the stored trimmed ones,
// so sending padded values again would replace (and restart) the unit: the
// adapter sends what fleet will store.
std::string TrimFleetSpace(absl::string_view value);
Options TrimOptionValues(const Options& options);

// What systemd reports for a launched unit (UnitState ACTIVE/SUB):
// kRunning: ACTIVE "active" (sub-state `running`, or `exited` for a oneshot
// that stays active); kFailed: ACTIVE "failed"; kStarting: anything else
// (the start was triggered and not reported yet, `activating`, ...).
enum class SystemdVerdict { kStarting, kRunning, kFailed };
SystemdVerdict VerdictOf(const v1::UnitState& state);

// The unit fleet answers `http_status` for (while the rest of its API works):
// only `name`, current_state ERROR and provider_error set.
v1::Unit BrokenUnit(absl::string_view account, absl::string_view unit_name, int http_status,
                    absl::string_view body);
// The same as an error for a mutation or poll on that unit:
// FAILED_PRECONDITION, reason PROVIDER_ERROR, metadata unit, httpStatus,
// providerMessage. Not ambiguous (kit::IsAmbiguous): the runner ends the
// Operation with it instead of polling until its timeout.
absl::Status BrokenUnitError(absl::string_view unit_name, int http_status, absl::string_view body);

// True when `body` is fleet's own error envelope for `http_status`
// ({"error":{"code":<http_status>,"message":...}}, api/serialization.go
// sendError). fleet answers a unit its registry cannot read with it (code
// 500, message ""); a proxy, load balancer or dying connection in between
// does not, so a bare 500 is never taken for a broken unit.
bool IsFleetErrorEnvelope(int http_status, absl::string_view body);

std::optional<absl::string_view> StateToWire(v1::Unit::State state);

// The enum value of a fleet state string; STATE_UNSPECIFIED for "" and for
// anything else (fleet stores unchecked strings on one path, §5 step 7).
v1::Unit::State StateFromWire(absl::string_view state);

// `accounts/<account>/units/<unit_name>` and
// `accounts/<account>/machines/<machine_id>`.
std::string UnitResourceName(absl::string_view account, absl::string_view unit_name);
std::string MachineResourceName(absl::string_view account, absl::string_view machine_id);

// The unit name of a `accounts/<account>/units/<unit>` resource name, which
// must also be a valid fleet unit name. INVALID_ARGUMENT naming `field` when
// the shape is wrong, the account differs from `account` (unless `account`
// is empty), or the unit name is invalid.
absl::StatusOr<std::string> UnitNameFromResource(absl::string_view field,
                                                 absl::string_view account,
                                                 absl::string_view resource);

// The machine id of a `accounts/<account>/machines/<id>` resource name; the
// id must be letters, digits, `-`, `_` or `.`. INVALID_ARGUMENT naming
// `field` otherwise (as above for the account).
absl::StatusOr<std::string> MachineIdFromResource(absl::string_view field,
                                                  absl::string_view account,
                                                  absl::string_view resource);

// ---------------------------------------------------------------------------
// Request paths (already percent-encoded, ready for HttpRequest) and bodies.

// /fleet/v1/units/<name>
std::string UnitPath(absl::string_view unit_name);
// /fleet/v1/units[?nextPageToken=T]
std::string ListUnitsPath(absl::string_view fleet_page_token);
// /fleet/v1/state[?machineID=M][&unitName=U][&nextPageToken=T]; empty
// arguments are left out.
std::string ListUnitStatesPath(absl::string_view machine_id, absl::string_view unit_name,
                               absl::string_view fleet_page_token);
// /fleet/v1/machines[?nextPageToken=T]
std::string ListMachinesPath(absl::string_view fleet_page_token);

// The body of PUT /fleet/v1/units/<name> (§5): `{"desiredState":…,
// "options":[{"section","name","value"},…]}`, each key left out when its
// argument is empty (fleet treats a missing key and an empty one alike).
std::string UnitPutBody(const Options& options, absl::string_view desired_state);

// ---------------------------------------------------------------------------
// Responses.

// Unit (§3). `machine` is set from machineID; absent states stay
// STATE_UNSPECIFIED (a global unit's currentState, for instance).
absl::StatusOr<v1::Unit> ParseUnit(absl::string_view json, absl::string_view account);

struct UnitPage {
  std::vector<v1::Unit> units;
  std::string next_page_token;  // fleet's; empty on the last page
};
absl::StatusOr<UnitPage> ParseUnitPage(absl::string_view json, absl::string_view account);

absl::StatusOr<v1::UnitState> ParseUnitState(absl::string_view json,
                                             absl::string_view account);

struct UnitStatePage {
  std::vector<v1::UnitState> states;
  std::string next_page_token;
};
absl::StatusOr<UnitStatePage> ParseUnitStatePage(absl::string_view json,
                                                 absl::string_view account);

struct MachinePage {
  std::vector<v1::Machine> machines;
  std::string next_page_token;
};
// Missing metadata and primaryIP are fine (fleet omits empty fields).
absl::StatusOr<MachinePage> ParseMachinePage(absl::string_view json,
                                             absl::string_view account);

// The status for a fleet response: OK for 2xx; otherwise the code of the
// table in fleet_wire.cc for `http_status`, message
// "<context>: fleet answered HTTP <n>: <fleet's message>", and an ErrorInfo
// whose metadata holds "httpStatus" and "providerMessage" (fleet's message
// from the `{"error":{"code","message"}}` envelope, "" when the body is not
// one). `context` names what was asked ("GET unit hello.service").
absl::Status StatusFromResponse(int http_status, absl::string_view body,
                                absl::string_view context);

// ---------------------------------------------------------------------------
// Operation poll tokens: a UnitToken (fleet_tokens.proto) packed with
// kit::PackToken.

inline constexpr uint32_t kUnitTokenVersion = 1;

std::string MakePollToken(absl::string_view unit_name, absl::string_view desired_state);

struct PollTarget {
  std::string unit_name;
  std::string desired_state;  // wire form, e.g. "launched"
};
// DATA_LOSS with reason OPERATION_STATE_UNREADABLE for bytes MakePollToken
// did not make (another type, an unknown version, an invalid unit name or
// state).
absl::StatusOr<PollTarget> ParsePollToken(absl::string_view token);

}  // namespace cloudplane::adapters::fleet

#endif  // CLOUDPLANE_ADAPTERS_FLEET_FLEET_WIRE_H_
