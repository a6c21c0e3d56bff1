// Pure translation between OpenNebula's XML-RPC API (oned 5.10 .. 6.10) and
// cloudplane.v1 messages. No I/O: every function is a deterministic function
// of its arguments, tested in opennebula_wire_test.cc on hand-written
// documents shaped as the 5.10.5 / 5.12.13 / 6.10.5 XSDs describe, and on
// hostile input.
//
// Reference: /work/shared/protocols/opennebula.md (sections cited as §N).
//
// Errors:
//   - A response that is not a well-formed XML-RPC response, a result of the
//     wrong type, or an object document that does not parse (truncated,
//     wrong types, a DTD: external entities and entity bombs are refused
//     before any expansion) is INTERNAL with ErrorInfo reason
//     PROVIDER_MALFORMED_RESPONSE and a message saying what was wrong.
//   - An XML-RPC fault is INTERNAL, reason PROVIDER_XMLRPC_FAULT, metadata
//     faultCode (a protocol/programming error, never the user's fault).
//   - An OpenNebula failure array maps by its error code (§4) as in
//     StatusFromOneError, with metadata providerCode and providerMessage.
//   - HTTP statuses other than 200 map through http::HttpStatusToStatus.
//
// Thread-safety: all functions are thread-safe (no shared state).
#ifndef CLOUDPLANE_ADAPTERS_OPENNEBULA_OPENNEBULA_WIRE_H_
#define CLOUDPLANE_ADAPTERS_OPENNEBULA_OPENNEBULA_WIRE_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "adapters/common/xml/xml.h"
#include "adapters/common/xmlrpc/xmlrpc.h"
#include "cloudplane/v1/compute.pb.h"
#include "cloudplane/v1/firewalls.pb.h"

namespace cloudplane::adapters::opennebula {

// ---------------------------------------------------------------------------
// Responses.

// The result (item 1) of a successful call, or the error status (see the
// file comment). `method` is the XML-RPC method, for messages.
absl::StatusOr<xmlrpc::Value> ResultFromResponse(int http_status, absl::string_view body,
                                                 absl::string_view method);

// OpenNebula error code (§4) -> status: AUTHENTICATION UNAUTHENTICATED,
// AUTHORIZATION PERMISSION_DENIED, NO_EXISTS NOT_FOUND, ACTION
// FAILED_PRECONDITION, XML_RPC_API INVALID_ARGUMENT, INTERNAL and ALLOCATE
// INTERNAL, LOCKED ABORTED, REPLICATION UNAVAILABLE, anything else UNKNOWN.
absl::Status StatusFromOneError(int64_t code, absl::string_view message,
                                absl::string_view method);

// The result as an int (object id) / string; INTERNAL (malformed) otherwise.
absl::StatusOr<int64_t> IntResult(const xmlrpc::Value& v, absl::string_view method);
absl::StatusOr<std::string> StringResult(const xmlrpc::Value& v, absl::string_view method);

// Parses an object document (the string result of a *.info call) whose
// root must be `root` (e.g. "VM_POOL"). INTERNAL (malformed) otherwise.
absl::StatusOr<xml::Document> ParseObjectDocument(const xmlrpc::Value& v, absl::string_view root,
                                                  absl::string_view method);

// ---------------------------------------------------------------------------
// Templates (§9).

// `"value"` with each `"` written as `\"` (the template syntax has no other
// escape). INVALID_ARGUMENT when the value holds `]]>` (oned stores values
// as CDATA and refuses it) or a NUL.
absl::StatusOr<std::string> QuoteTemplateValue(absl::string_view value);

// True for a template attribute name: [A-Za-z_][A-Za-z0-9_]*.
bool IsTemplateName(absl::string_view name);

// `KEY="value"` lines from a flat map (as pyone writes a flat dict).
// INVALID_ARGUMENT naming `field`.<key> for a bad name or value.
absl::StatusOr<std::string> FlatTemplate(
    const std::vector<std::pair<std::string, std::string>>& attrs, absl::string_view field);

// `<ROOT><K>v</K>...<V><A>b</A></V></ROOT>` from a map with one root key
// (as pyone writes a nested dict), values escaped with xml::Escape.
struct XmlAttr {
  std::string name;
  std::string value;                                       // single attribute
  std::vector<std::pair<std::string, std::string>> vector;  // when non-empty
};
absl::StatusOr<std::string> XmlTemplate(absl::string_view root, const std::vector<XmlAttr>& attrs);

// Single (non-vector) attributes of a TEMPLATE/USER_TEMPLATE element.
std::map<std::string, std::string> SingleAttributes(const xml::Node* template_node);

// ---------------------------------------------------------------------------
// Names.

// The resource id of an object: its NAME when that is a valid id
// ([a-z][a-z0-9-]{0,62}), else its numeric id.
std::string ResourceId(int64_t oid, absl::string_view name);
bool IsNameId(absl::string_view id);
// A resource id is either all digits (an object id) or a name.
struct IdOrName {
  std::optional<int64_t> oid;
  std::string name;
};
// INVALID_ARGUMENT naming `field` unless `resource` is
// accounts/<account>/<collection>/<id> with a valid id.
absl::StatusOr<IdOrName> ParseResourceName(absl::string_view field, absl::string_view account,
                                           absl::string_view collection,
                                           absl::string_view resource);

// ---------------------------------------------------------------------------
// Objects.

// The VM's normalised state from its STATE / LCM_STATE pair (§7).
v1::Instance::State InstanceState(int state, int lcm_state);
// "ACTIVE/RUNNING", "POWEROFF", ... (the raw pair stays in provider_details).
std::string ProviderState(int state, int lcm_state);

struct VmSummary {
  int64_t oid = 0;
  std::string name;
  int state = 0;
  int lcm_state = 0;
};
// ID, NAME, STATE, LCM_STATE of a VM element; INTERNAL (malformed) for
// missing or non-numeric ones.
absl::StatusOr<VmSummary> SummarizeVm(const xml::Node& vm);

// A VM element (full or short body) as an Instance named with `resource_id`.
absl::StatusOr<v1::Instance> InstanceFromVm(const xml::Node& vm, absl::string_view account,
                                            absl::string_view resource_id);

// A HOST element of 5.10 (HOST_SHARE with FREE_/USED_*, no MONITORING) or
// 5.12+ (MONITORING/CAPACITY) shape. Labels come from TEMPLATE/LABELS
// (comma-separated, values ""), and every other single TEMPLATE attribute
// appears in provider_details.template.
absl::StatusOr<v1::Host> HostFromXml(const xml::Node& host, absl::string_view account);

// A VMTEMPLATE element as an Image (what instances are created from).
absl::StatusOr<v1::Image> ImageFromTemplate(const xml::Node& tmpl, absl::string_view account);

// ZONE -> zone-<id> (REGION); CLUSTER -> cluster-<id> (CLUSTER, in zone-0);
// MARKETPLACE -> market-<id> (SITE, in zone-<ZONE_ID>; available when
// STATE is 0 or absent).
absl::StatusOr<v1::Location> LocationFromZone(const xml::Node& zone, absl::string_view account);
absl::StatusOr<v1::Location> LocationFromCluster(const xml::Node& cluster,
                                                 absl::string_view account);
absl::StatusOr<v1::Location> LocationFromMarketplace(const xml::Node& market,
                                                     absl::string_view account);

// A SECURITY_GROUP as a Firewall (rules named .../rules/<index>).
absl::StatusOr<v1::Firewall> FirewallFromSecurityGroup(const xml::Node& sg,
                                                       absl::string_view account,
                                                       absl::string_view resource_id);

// A rule as the sub-attributes of a RULE vector (§9.5). INVALID_ARGUMENT
// naming `field` for what OpenNebula cannot express: DENY, an unknown
// protocol, ports on a protocol other than TCP/UDP, more than one range,
// non-IPv4 CIDRs.
absl::StatusOr<std::vector<std::pair<std::string, std::string>>> RuleToTemplate(
    const v1::FirewallRule& rule, absl::string_view field);

}  // namespace cloudplane::adapters::opennebula

#endif  // CLOUDPLANE_ADAPTERS_OPENNEBULA_OPENNEBULA_WIRE_H_
