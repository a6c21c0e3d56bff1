// Pure translation between the enStratus / Dell Cloud Manager (DCM) REST API
// (JSON, HMAC-SHA256 signed requests) and cloudplane.v1 messages. No I/O:
// every function is a deterministic function of its arguments, tested on the
// scrubbed real responses of the mixcoatl test suite in enstratus_wire_test.cc.
//
// Reference: the enStratus / DCM REST API as enStratus' client mixcoatl
// 1.5.1 speaks it (https://github.com/enStratus/mixcoatl; a snapshot is
// QSFT/mixcoatl). Comments cite its parts as:
//   §1 URL layout: endpoint `https://host/api/enstratus/<version>`, paths
//      relative to it (mixcoatl/config, resource.py)
//   §2 request signing: the x-esauth-* headers (auth.py)
//   §3 JSON bodies: `{"<operation>":[{...}]}`, references as
//      `{"regionId":N}`, dates `2012-12-18T18:31:26.000+0000`
//   §4 status codes and results: 200 lists, 201/204 done, 202 a job,
//      `{"error":{"message":...}}` (resource.py)
//   §5 jobs: admin/Job, RUNNING/COMPLETE/ERROR, the new id in `message`
//      (admin/job.py)
//   §6 endpoints and their required query parameters (regionId)
//   §7 request bodies per operation: launch, actions, addFirewall, addRule,
//      addVolume, attach/detach (the resource classes; docs/rest_tools/files)
//   §8 response shapes (the resource classes; tests/data)
//
// Files: signing in enstratus_sign.cc, names in enstratus_names.cc, request
// bodies in enstratus_bodies.cc, responses and errors in enstratus_wire.cc.
//
// Errors:
//   - A payload DCM sent that is not JSON, or JSON of the wrong shape, is
//     INTERNAL ("enStratus sent malformed JSON: ...") with ErrorInfo reason
//     PROVIDER_MALFORMED_RESPONSE. Nothing here crashes on bad input.
//   - Local validation is INVALID_ARGUMENT with a BadRequest field violation.
//   - A DCM error response becomes the status of StatusFromResponse().
//
// Thread-safety: every function is thread-safe (no shared state).
#ifndef CLOUDPLANE_ADAPTERS_ENSTRATUS_ENSTRATUS_WIRE_H_
#define CLOUDPLANE_ADAPTERS_ENSTRATUS_ENSTRATUS_WIRE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "cloudplane/v1/billing.pb.h"
#include "cloudplane/v1/compute.pb.h"
#include "cloudplane/v1/firewalls.pb.h"
#include "cloudplane/v1/networks.pb.h"
#include "cloudplane/v1/volumes.pb.h"
#include "google/longrunning/operations.pb.h"

namespace cloudplane::adapters::enstratus {

// ---------------------------------------------------------------------------
// Signing (§2).

// The API key pair of an account. AccountSetup::secret is
// "ACCESS_KEY:SECRET_KEY" (split at the first colon; the secret key may hold
// colons). Never logged or put into a status.
struct ApiKeys {
  std::string access_key;
  std::string secret_key;
};

// INVALID_ARGUMENT naming `credentials` (without repeating any of it) when
// `secret` is not "ACCESS_KEY:SECRET_KEY" with both parts non-empty.
absl::StatusOr<ApiKeys> ParseApiKeys(absl::string_view secret);

// `access:METHOD:sign_path:timestamp_ms:user_agent` (§2 step 5).
std::string StringToSign(absl::string_view access_key, absl::string_view method,
                         absl::string_view sign_path, int64_t timestamp_ms,
                         absl::string_view user_agent);

// base64(HMAC-SHA256(secret_key, string_to_sign)), standard alphabet with
// padding (§2 step 6). Computed with OpenSSL's libcrypto.
std::string Signature(absl::string_view secret_key, absl::string_view string_to_sign);

// The headers of a signed request (§2 table): x-esauth-access,
// x-esauth-timestamp, x-esauth-signature, x-es-details, Accept.
// `sign_path` is basepath + "/" + path, without the query string.
// `user_agent` must be the User-Agent the request carries.
std::vector<std::pair<std::string, std::string>> SignedHeaders(
    const ApiKeys& keys, absl::string_view method, absl::string_view sign_path,
    int64_t timestamp_ms, absl::string_view user_agent);

// ---------------------------------------------------------------------------
// Names. DCM ids are integers chosen by DCM. Instances, firewalls and volumes
// created through cloudplane with a caller-chosen id keep that id as an alias
// (the adapter keeps it, enstratus_aliases.h); everything else is named by
// its DCM id. Locations are `region-<regionId>` and `dc-<dataCenterId>`.

// DCM id -> cloudplane id, for instances, firewalls and volumes that have an
// alias.
struct Aliases {
  absl::flat_hash_map<int64_t, std::string> instances;
  absl::flat_hash_map<int64_t, std::string> firewalls;
  absl::flat_hash_map<int64_t, std::string> volumes;
};

// True for a caller-chosen id: 1-63 characters of [a-z0-9-] starting with a
// letter (so it can never be mistaken for a DCM id).
bool IsValidAlias(absl::string_view id);

// The DCM id of a name segment made only of digits (1-18 of them); nullopt
// otherwise.
std::optional<int64_t> ParseDcmId(absl::string_view segment);

struct LocationRef {
  enum Kind { kRegion, kDataCenter } kind;
  int64_t id;
};
std::optional<LocationRef> ParseLocationSegment(absl::string_view segment);

// Splits `accounts/<account>/<collection>/<id>` and returns <id>.
// INVALID_ARGUMENT naming `field` when the shape is wrong or the account
// differs.
absl::StatusOr<std::string> SegmentOf(absl::string_view field, absl::string_view account,
                                      absl::string_view collection, absl::string_view name);

// `accounts/<a>/firewalls/<fw>/rules/<rule>` -> {fw, rule}.
absl::StatusOr<std::pair<std::string, std::string>> RuleSegmentsOf(absl::string_view field,
                                                                   absl::string_view account,
                                                                   absl::string_view name);

// ---------------------------------------------------------------------------
// Responses (§4, §5, §8). Each parser takes the whole response body, which is
// always `{"<collection>":[...]}`.

struct Job {
  int64_t id = 0;
  std::string status;  // RUNNING, COMPLETE, ERROR (verbatim)
  std::string description;
  std::string message;  // new resource id on COMPLETE, error text on ERROR
  std::optional<absl::Time> start;
  std::optional<absl::Time> end;
};
absl::StatusOr<std::vector<Job>> ParseJobs(absl::string_view json);

// The first job of a 202 answer (§4: clients keep jobs[0].jobId).
absl::StatusOr<Job> ParseFirstJob(absl::string_view json);

// A DCM job as a read-only google.longrunning.Operation (the provider
// operations of provider.h; DCM lists every job of the account, including
// those started outside cloudplane):
//   name      `accounts/<account>/providerOperations/<jobId>`
//   done      status COMPLETE or ERROR
//   error     for ERROR: code UNKNOWN, message = the job's message (or a
//             generic line when DCM sent none), details = ErrorInfo reason
//             PROVIDER_JOB_FAILED (domain cloudplane.dev, metadata jobId and
//             providerMessage)
//   response  never set: a job does not say what kind of resource it made
//   metadata  cloudplane.v1.OperationMetadata: account `accounts/<account>`,
//             provider_operation = jobId, status_detail =
//             `<status>[: <description>][; message: <message>]` (so a
//             COMPLETE launch names the new server id), create_time = start,
//             update_time = end or else start, end_time = end once done.
google::longrunning::Operation JobToOperation(const Job& job, absl::string_view account);

// The paging key of a job id: zero-padded so keys sort like the ids.
std::string JobKey(int64_t job_id);

// `{"servers":[...]}` (infrastructure/Server). A server's `network`
// (`{"networkId":N}`, mixcoatl's Server.network) is its one
// network_interfaces entry, with only `network` set: DCM says which network
// the server is on, not which of its addresses is on it, nor any MAC, model
// or interface id, so those stay empty (the addresses are in ip_addresses).
// No `network` (a server on the cloud's default network), no interface.
// The deprecated `vlan` and a `subnet` are kept in provider_details only: a
// vlanId is not known to name a network/Network.
absl::StatusOr<std::vector<v1::Instance>> ParseServers(absl::string_view json,
                                                       absl::string_view account,
                                                       const Aliases& aliases);
absl::StatusOr<std::vector<v1::Firewall>> ParseFirewalls(absl::string_view json,
                                                         absl::string_view account,
                                                         const Aliases& aliases);
// `{"networks":[...]}` (network/Network, mixcoatl's Network): named by
// networkId; networkAddress is the one CIDR range, region the location,
// label the one label `label`; status ACTIVE is READY, PENDING PENDING,
// DELETING/REMOVING DELETING, ERROR ERROR; the whole record (description
// without the tag) in provider_details.
absl::StatusOr<std::vector<v1::Network>> ParseNetworks(absl::string_view json,
                                                       absl::string_view account);
// `{"rules":[...]}` (network/FirewallRule). Each end by its type: CIDR →
// `*_ranges`; GLOBAL (a DCM firewall id) → `*_firewalls`, named by alias or
// id, except the rule's own firewall at its near end (implied); VLAN, VM
// and anything else → said in `description` ("source VM 42"), with no
// typed field set, so such an end never reads as anywhere.
absl::StatusOr<std::vector<v1::FirewallRule>> ParseFirewallRules(absl::string_view json,
                                                                 absl::string_view account,
                                                                 const Aliases& aliases);
absl::StatusOr<std::vector<v1::Location>> ParseRegions(absl::string_view json,
                                                       absl::string_view account);
absl::StatusOr<std::vector<v1::Location>> ParseDataCenters(absl::string_view json,
                                                           absl::string_view account);
absl::StatusOr<std::vector<v1::Image>> ParseMachineImages(absl::string_view json,
                                                          absl::string_view account);
absl::StatusOr<std::vector<v1::MachineType>> ParseServerProducts(absl::string_view json,
                                                                 absl::string_view account);
absl::StatusOr<std::vector<v1::BillingCode>> ParseBillingCodes(absl::string_view json,
                                                               absl::string_view account);
absl::StatusOr<std::vector<v1::Volume>> ParseVolumes(absl::string_view json,
                                                     absl::string_view account,
                                                     const Aliases& aliases);

// The parts of one volume record the attach/detach checks need.
struct VolumeInfo {
  int64_t volume_id = 0;
  std::optional<int64_t> server_id;  // the server it is attached to
  std::string status;                // verbatim
};
absl::StatusOr<VolumeInfo> ParseFirstVolume(absl::string_view json);

// Raw fields of one server product that a launch needs.
struct ProductInfo {
  int64_t product_id = 0;
  std::string provider_product_id;  // e.g. "m1.large": what launch sends (§7)
};
absl::StatusOr<ProductInfo> ParseFirstProduct(absl::string_view json);

// ---------------------------------------------------------------------------
// Operation tags. A create sent for an Operation ends the description it
// gives DCM with " [cloudplane <operation>]". DCM keeps a server's, a
// volume's and a firewall's description and lists it (§7, §8), so a create
// re-driven by the same Operation finds what its first request made.
// Firewall.description is read without the tag.

// `description` with the tag of `operation`; unchanged when `operation` is
// empty.
std::string TaggedDescription(absl::string_view description, absl::string_view operation);
// The operation of the tag that ends `description`, or "".
std::string OperationOfDescription(absl::string_view description);
// `description` without its tag.
std::string UntaggedDescription(absl::string_view description);

// Of every item of a list answer `{"<list_key>":[...]}`: its DCM id
// (`<id_key>`) and the operation its description's tag names ("" for none).
struct TaggedItem {
  int64_t id = 0;
  std::string operation;
};
absl::StatusOr<std::vector<TaggedItem>> ParseTaggedItems(absl::string_view json,
                                                         const char* list_key,
                                                         const char* id_key);

// normalised state of a DCM server status (§8; unknown → STATE_UNSPECIFIED).
v1::Instance::State ServerStateFromWire(absl::string_view status);

// ---------------------------------------------------------------------------
// Request bodies (§3, §7): `{"<operation>":[{...}]}`.

struct LaunchSpec {
  std::string name;
  std::string description;
  std::string provider_product_id;
  int64_t machine_image_id = 0;
  int64_t data_center_id = 0;
  int64_t budget = 0;
  std::string keypair;                // left out when empty
  std::vector<int64_t> firewall_ids;  // left out when empty
  std::string label;                  // left out when empty
  std::string user_data;              // left out when empty
  // The DCM network to launch into, sent as `"network":{"networkId":N}`
  // (mixcoatl's Server.network); left out when 0. No `subnet`: cloudplane
  // has no subnet resource.
  int64_t network_id = 0;
};
std::string LaunchBody(const LaunchSpec& spec);

struct FirewallSpec {
  std::string name;
  std::string description;
  std::string label;
  int64_t region_id = 0;
  int64_t budget = 0;
};
std::string AddFirewallBody(const FirewallSpec& spec);

// addNetwork (§7; mixcoatl's Network.create): budget, name, description,
// networkAddress (one IPv4 CIDR), region, and the optional label and
// dnsServers.
struct NetworkSpec {
  std::string name;
  std::string description;
  std::string label;                     // left out when empty
  std::string cidr;                      // networkAddress
  std::vector<std::string> dns_servers;  // left out when empty
  int64_t region_id = 0;
  int64_t budget = 0;
};
std::string AddNetworkBody(const NetworkSpec& spec);

// The addRule body for `rule` on firewall `firewall_id` (§7). The firewall
// itself is the GLOBAL near end of the rule; the far end (source of an
// INGRESS rule, destination of an EGRESS one) is exactly one CIDR
// (`*_ranges`, type CIDR) or one firewall (`*_firewalls`, type GLOBAL, sent
// as `far_firewall_id`, its DCM id, which the adapter resolves).
// INVALID_ARGUMENT naming `rule.<field>` for what DCM cannot express (no far
// end or more than one, a near end, address ranges or networks, a protocol
// other than tcp/udp/icmp, a bad port range, ports on an icmp rule). The
// rule's description goes as addRule's `reason`, which DCM does not keep on
// the rule.
absl::StatusOr<std::string> AddRuleBody(int64_t firewall_id, const v1::FirewallRule& rule,
                                        std::optional<int64_t> far_firewall_id = std::nullopt);

// Whether `existing` (a rule as ParseFirewallRules reads it) is the rule that
// AddRuleBody(…, `wanted`) makes: same direction, permission, protocol, port
// range and far end (its ranges and firewalls; `wanted` names its firewalls
// as ParseFirewallRules would, by alias or id). DCM keeps no tag on a rule,
// so a re-driven CreateFirewallRule recognises its rule by content.
bool SameRule(const v1::FirewallRule& existing, const v1::FirewallRule& wanted);

// `{"<action>":[{...}]}` for server actions: start, stop, pause (§7).
std::string ServerActionBody(absl::string_view action, absl::string_view reason);

// addVolume (§7 "Other bodies"; the mixcoatl docs' create_volume.json).
struct VolumeSpec {
  std::string name;
  std::string description;
  std::string label;  // left out when empty
  int64_t data_center_id = 0;
  int64_t size_gb = 0;
  int64_t budget = 0;
};
std::string AddVolumeBody(const VolumeSpec& spec);

// `{"attach":[{"server":{"serverId":N},"deviceId":"/dev/sdf"}]}`; deviceId
// left out when empty (DCM picks one, as mixcoatl allows).
std::string AttachVolumeBody(int64_t server_id, absl::string_view device_id);

// `{"detach":[{}]}`: DCM detaches from whatever server holds the volume.
std::string DetachVolumeBody();

// ---------------------------------------------------------------------------
// Errors (§4).

// OK for 2xx. Otherwise the code of the table in enstratus_wire.cc for
// `http_status`, message "<context>: enStratus answered HTTP <n>: <message>"
// (DCM's `{"error":{"message":…}}`, or the raw body text, cut to 300 bytes,
// when it is not that envelope), and ErrorInfo metadata httpStatus and
// providerMessage. `context` names what was asked ("GET server 3"), never a
// body or a header.
absl::Status StatusFromResponse(int http_status, absl::string_view body,
                                absl::string_view context);

}  // namespace cloudplane::adapters::enstratus

#endif  // CLOUDPLANE_ADAPTERS_ENSTRATUS_ENSTRATUS_WIRE_H_
