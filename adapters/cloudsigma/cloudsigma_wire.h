// Pure translation between CloudSigma API 2.0 JSON and cloudplane.v1
// messages. No I/O: every function is a deterministic function of its
// arguments, tested on the recorded dumps in shared/fixtures/cloudsigma.
//
// Reference: the CloudSigma API 2.0 documentation,
// https://cloudsigma-docs.readthedocs.io/en/latest/ (source
// github.com/cloudsigma/cloudsigma-docs); pages are cited by their source
// file name (servers.rst is .../en/latest/servers.html).
//
// Resource ids. CloudSigma names every object by a server-chosen uuid; the
// API lets callers choose ids (`instance_id`, `volume_id`). A chosen id is
// kept in the object's `meta` under kIdMetaKey, and the object's resource
// name uses it; objects without one (made outside cloudplane) are named by
// their uuid. An id in uuid form always means a CloudSigma uuid, so chosen
// ids may not have that form. The operation that created an object is kept
// under kOperationMetaKey so a re-driven create finds its own object.
// Other `meta` keys are the resource's labels; keys starting with
// "cloudplane_" are reserved. A server is the exception: its plain `meta`
// keys are the instance metadata items (what the guest reads through the
// server context, §14 of the protocol reference), and its labels live under
// kLabelMetaPrefix ("cloudplane_label_role" is the label "role"), so that
// setting one never changes the other.
//
// Networks are VLANs and addresses are IPs, both named by their uuid (a
// VLAN's uuid, an IP's address): CloudSigma makes them when a subscription
// is bought, so there is no id to choose. Key pairs are /keypairs/ objects,
// named like drives and servers (a chosen id in meta, else the uuid).
//
// Errors:
//   - A payload that is not JSON of the expected shape is INTERNAL with
//     ErrorInfo reason PROVIDER_MALFORMED_RESPONSE ("CloudSigma sent
//     malformed JSON: …", adapters/common/json). Nothing here crashes.
//   - StatusFromResponse() turns CloudSigma's error list (errors.rst) into a
//     status (table in cloudsigma_wire.cc).
//
// Thread-safety: all functions are thread-safe.
#ifndef CLOUDPLANE_ADAPTERS_CLOUDSIGMA_CLOUDSIGMA_WIRE_H_
#define CLOUDPLANE_ADAPTERS_CLOUDSIGMA_CLOUDSIGMA_WIRE_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "cloudplane/v1/compute.pb.h"
#include "cloudplane/v1/firewalls.pb.h"
#include "cloudplane/v1/networks.pb.h"
#include "cloudplane/v1/volumes.pb.h"

namespace cloudplane::adapters::cloudsigma {

inline constexpr absl::string_view kIdMetaKey = "cloudplane_id";
inline constexpr absl::string_view kOperationMetaKey = "cloudplane_operation";
inline constexpr absl::string_view kReservedMetaPrefix = "cloudplane_";
inline constexpr absl::string_view kLabelMetaPrefix = "cloudplane_label_";
// A server booted from a library image keeps that libdrive's uuid here
// (CloudSigma does not record a clone's source), so Get shows Instance.image.
inline constexpr absl::string_view kImageMetaKey = "cloudplane_image";

// ---------------------------------------------------------------------------
// Names and ids.

// True for the 8-4-4-4-12 hex form of a CloudSigma uuid.
bool IsUuid(absl::string_view s);

// OK when `id` can be chosen by a caller: 1-63 characters of [a-z0-9-]
// starting with a letter, and not in uuid form. INVALID_ARGUMENT naming
// `field` otherwise.
absl::Status ValidateChosenId(absl::string_view field, absl::string_view id);

// `accounts/<account>/<collection>/<id>`.
std::string ResourceName(absl::string_view account, absl::string_view collection,
                         absl::string_view id);

// The id of `resource` (`accounts/<account>/<collection>/<id>`, with an
// optional `suffix` such as "/metadata"). INVALID_ARGUMENT naming `field`
// for another shape or account.
absl::StatusOr<std::string> IdFromName(absl::string_view field, absl::string_view account,
                                       absl::string_view collection, absl::string_view resource,
                                       absl::string_view suffix = "");

// Maps a referenced object's uuid to its cloudplane id (the kIdMetaKey of
// that object, or the uuid itself when it has none).
using IdMap = absl::flat_hash_map<std::string, std::string>;

// ---------------------------------------------------------------------------
// Responses.

// Status words, verbatim from servers.rst and drives.rst.
v1::Instance::State InstanceStateFromWire(absl::string_view status);
v1::Volume::State VolumeStateFromWire(absl::string_view status, bool mounted);

// One object of any covered kind, as the adapter needs it.
struct WireObject {
  std::string uuid;
  std::string status;
  std::string resource_type;  // "servers", "drives", "libdrives", from resource_uri
  std::string chosen_id;      // meta[kIdMetaKey], "" when absent
  std::string operation;      // meta[kOperationMetaKey]
  std::vector<std::string> referenced_uuids;  // drives of a server / servers of a drive
  std::string json;           // the object itself, re-serialised compactly
};

// A single object (GET /{res}/{uuid}/, PUT) or the first of a
// `{"objects":[…]}` envelope (create, clone).
absl::StatusOr<WireObject> ParseObject(absl::string_view json);

struct Page {
  std::vector<WireObject> objects;
  int64_t total_count = 0;
};
// A list envelope (general.rst, pagination.rst): `{"meta":{limit,offset,total_count},"objects":[…]}`.
// Objects may be short (any subset of keys, but `uuid`).
absl::StatusOr<Page> ParsePage(absl::string_view json);

// Full objects to API messages. `object_json` is WireObject::json (or any
// full object). `ids` resolves referenced uuids (missing ones map to the
// uuid). The volume's/instance's name uses its own chosen id.
absl::StatusOr<v1::Volume> DriveToVolume(absl::string_view object_json,
                                         absl::string_view account, const IdMap& server_ids);
absl::StatusOr<v1::Instance> ServerToInstance(absl::string_view object_json,
                                              absl::string_view account,
                                              const IdMap& drive_ids);
absl::StatusOr<v1::Image> LibdriveToImage(absl::string_view object_json,
                                          absl::string_view account);
absl::StatusOr<v1::Location> LocationFromWire(absl::string_view object_json,
                                              absl::string_view account);
// A subscription (§9), as far as VLANs and IPs need it.
struct Subscription {
  std::string id;                 // "14"
  std::string resource;           // "vlan", "ip", …
  std::string status;             // "active", …
  std::string end_time;           // "2015-08-26T12:00:00+00:00"
  bool auto_renew = false;
  std::string subscribed_object;  // the VLAN's uuid or the IP; "" when none
};
absl::StatusOr<Subscription> SubscriptionFromWire(absl::string_view object_json);
// Subscriptions by id.
using SubscriptionMap = absl::flat_hash_map<std::string, Subscription>;

// A VLAN as a Network (name `networks/<uuid>`): labels from meta, vlan_id
// from bottom_vlan_tag, state READY while its subscription renews and
// DELETING once it does not (it disappears when the subscription ends);
// provider_details: uuid, resource_uri, servers (uuids), subscription,
// subscription_end_time, auto_renew.
absl::StatusOr<v1::Network> VlanToNetwork(absl::string_view object_json,
                                          absl::string_view account,
                                          const SubscriptionMap& subscriptions);
// An IP as an Address (name `addresses/<ip>`): IN_USE with `instance` when a
// server holds it, else RESERVED; provider_details: netmask, gateway,
// nameservers, subscription, subscription_end_time, auto_renew, and
// dynamic=true for an address of a running server that has no subscription.
absl::StatusOr<v1::Address> IpToAddress(absl::string_view object_json, absl::string_view account,
                                        const IdMap& server_ids,
                                        const SubscriptionMap& subscriptions);
// A keypair (name `keyPairs/<chosen id or uuid>`).
absl::StatusOr<v1::KeyPair> KeypairToKeyPair(absl::string_view object_json,
                                             absl::string_view account);
// The subscription id of a VLAN or an IP ("" when it has none) and the
// servers using it (a VLAN's `servers`, an IP's `server`).
struct Subscribed {
  std::string subscription_id;
  std::vector<std::string> server_uuids;
};
absl::StatusOr<Subscribed> SubscribedFromWire(absl::string_view object_json);

// The instance's meta items without reserved keys; name `<instance>/metadata`.
absl::StatusOr<v1::InstanceMetadata> ServerToMetadata(absl::string_view object_json,
                                                      absl::string_view account);

// An action answer (servers.rst, actions): `{"action","result","uuid"}`; INTERNAL unless
// result is "success".
absl::Status ParseActionResult(absl::string_view json);

// A websocket frame (async.rst).
struct Frame {
  std::string resource_type;  // "drives", "servers", …
  std::string resource_uri;   // "/api/2.0/drives/<uuid>/"
  std::string uuid;           // last path segment of resource_uri
  std::optional<std::string> object_json;  // when the frame carries one
};
absl::StatusOr<Frame> ParseFrame(absl::string_view json);

// The status of a CloudSigma response: OK for 2xx; otherwise (table in the
// .cc) with message "<context>: CloudSigma answered HTTP <n>: <message>"
// and ErrorInfo metadata httpStatus, providerErrorType, providerErrorPoint,
// providerMessage. A validation error with an error_point also carries a
// BadRequest violation on `field_prefix + error_point` when field_prefix is
// given (e.g. "volume.").
absl::Status StatusFromResponse(int http_status, absl::string_view body,
                                absl::string_view context, absl::string_view field_prefix = "");

// ---------------------------------------------------------------------------
// Requests.

// `{"objects":[{"name","size","media","meta"}]}` for POST /drives/.
std::string DriveCreateBody(const v1::Volume& volume, absl::string_view chosen_id,
                            absl::string_view operation);
// The body of a drive clone action (drives.rst): name and meta of the copy.
std::string DriveCloneBody(absl::string_view name, absl::string_view chosen_id,
                           absl::string_view operation);

// One NIC of a server's `nics` list (§5.4).
struct NicSpec {
  std::string vlan_uuid;  // a private NIC on this VLAN
  std::string static_ip;  // a public NIC with this static IP; neither: DHCP
  std::string model;      // "" → virtio
};

struct ServerSpec {
  std::string name;
  int64_t cpu_mhz = 0;
  int64_t memory_bytes = 0;
  int32_t smp = 0;  // 0: CloudSigma derives it
  std::string vnc_password;
  std::map<std::string, std::string> meta;  // labels (prefixed) + reserved keys
  // nullopt: one public DHCP NIC (CloudSigma's usual server).
  std::optional<std::vector<NicSpec>> nics;
  std::vector<std::string> pubkeys;  // keypair uuids
  // A drive attached as the boot drive (boot_order 1, virtio "0:0",
  // servers.rst "drives"); "" for a server without drives.
  std::string boot_drive_uuid;
};
// meta of a server's labels: each key under kLabelMetaPrefix.
std::map<std::string, std::string> LabelMeta(
    const google::protobuf::Map<std::string, std::string>& labels);
// `{"objects":[{…}]}` for POST /servers/.
std::string ServerCreateBody(const ServerSpec& spec);

// Edits of a full server object for PUT /servers/{uuid}/ (servers.rst: always send
// the whole definition; fields not touched keep their values). Each returns
// the new body or INTERNAL for a malformed object.
struct ServerEdit {
  std::optional<std::string> name;
  std::optional<int64_t> cpu_mhz;
  std::optional<int64_t> memory_bytes;
  std::optional<int32_t> smp;
  // Replaces the metadata items: the non-reserved meta keys (reserved ones,
  // labels included, are kept).
  std::optional<std::map<std::string, std::string>> metadata;
  // Replaces the labels: the kLabelMetaPrefix keys (the rest is kept).
  std::optional<std::map<std::string, std::string>> labels;
  // Appends a NIC (without a mac: CloudSigma gives it one).
  std::optional<NicSpec> add_nic;
  // Removes the NIC with this mac (NICs are matched by mac, §5.4).
  std::optional<std::string> remove_mac;
  // Appends a drive (servers.rst, "drives").
  struct Attach {
    std::string drive_uuid;
    std::string device;    // "" → virtio
    std::string channel;   // "" → first free on controller 0
    int32_t boot_order = 0;  // 0 → null
  };
  std::optional<Attach> attach;
  // Removes every entry for this drive uuid.
  std::optional<std::string> detach_uuid;
};
absl::StatusOr<std::string> EditServer(absl::string_view server_json, const ServerEdit& edit);

// True when the server's drive list has `drive_uuid`.
absl::StatusOr<bool> ServerHasDrive(absl::string_view server_json, absl::string_view drive_uuid);

// `{"objects":[{"resource","amount":"1","period":"1 month"}]}` for POST
// /subscriptions/ (resource "vlan" or "ip").
std::string SubscriptionCreateBody(absl::string_view resource);
// `{"objects":[{"name","public_key","meta"}]}` for POST /keypairs/.
std::string KeypairCreateBody(const v1::KeyPair& key_pair, absl::string_view chosen_id,
                              absl::string_view operation);
// A full VLAN or IP object with its non-reserved meta replaced by `labels`
// and `reserved` added, for PUT (only meta can be edited, §7).
absl::StatusOr<std::string> EditMeta(absl::string_view object_json,
                                     const std::map<std::string, std::string>& labels,
                                     const std::map<std::string, std::string>& reserved);

// Edits of a full drive object for PUT /drives/{uuid}/.
struct DriveEdit {
  std::optional<std::string> name;
  std::optional<int64_t> size;
  std::optional<std::map<std::string, std::string>> labels;
};
absl::StatusOr<std::string> EditDrive(absl::string_view drive_json, const DriveEdit& edit);

// ---------------------------------------------------------------------------
// Firewall policies (/fwpolicies/), in cloudsigma_wire_firewalls.cc.
//
// Reference: fwpolicies.rst and its dumps (request/response_fwpolicy_*) in
// github.com/cloudsigma/cloudsigma-docs up to 467c683^; that commit
// (2022-10-05) removed them as "the decommissioned Firewall Policies
// feature", so these shapes are the last the documentation showed.
// A policy is {uuid, name, meta, rules, servers, owner, resource_uri, tags};
// a rule is {action: accept|drop, direction: in|out|both, ip_proto: tcp|udp
// (null: any), src_ip, src_port, dst_ip, dst_port, comment}, every field but
// action and direction null when absent. IPs are an address or CIDR, ports
// "22" or "1:1024"; either may start with "!" (not). Rules apply in order.

// One rule as CloudSigma holds it; "" for null.
struct FwRule {
  std::string action;
  std::string direction;
  std::string ip_proto;
  std::string src_ip;
  std::string src_port;
  std::string dst_ip;
  std::string dst_port;
  std::string comment;
};

// A rule's id: 12 hex digits of a 64-bit FNV-1a of its fields (stable across
// builds and runs), so deleting one rule never renames another. Equal rules
// of one policy are told apart by "-2", "-3", … in order (PolicyRules).
std::string FwRuleId(const FwRule& rule);

// The rules of a policy, in CloudSigma's order, each with its id.
struct FwRuleEntry {
  std::string id;
  FwRule rule;
};
absl::StatusOr<std::vector<FwRuleEntry>> PolicyRules(absl::string_view policy_json);

// A rule as a FirewallRule named `name`: accept/drop → ALLOW/DENY, in/out →
// INGRESS/EGRESS, ip_proto → protocol ("any" when null), dst_port "80" or
// "1000:2000" → port_range_start/end, the far end (src_ip of an in rule,
// dst_ip of an out rule) → source_ranges / destination_ranges as a CIDR
// (an address alone is /32; none is "0.0.0.0/0"), comment → description.
// A rule the typed fields cannot hold exactly — direction "both", a "!"
// (not) in an IP or port, a src_port, the near end's IP (dst_ip of an in
// rule, src_ip of an out rule), or a value of another shape — has its far
// end fields empty (the API's sign for "not expressible") and its
// description ends with CloudSigma's own fields in words.
v1::FirewallRule FwRuleToFirewallRule(const FwRule& rule, std::string name);

// A FirewallRule as a CloudSigma rule. INVALID_ARGUMENT naming
// `<field>.<subfield>` when CloudSigma cannot hold it: protocol other than
// tcp, udp or any; ports without tcp/udp or outside 1..65535; the near end's
// fields; more than one far-end range; an IPv6 range (CloudSigma's rules
// hold IPv4 addresses); a CIDR with host bits set. "0.0.0.0/0" is sent as no
// IP (anywhere).
absl::StatusOr<FwRule> FwRuleFromFirewallRule(const v1::FirewallRule& rule,
                                              absl::string_view field);

// A policy as a Firewall (name `firewalls/<chosen id or uuid>`): display_name
// from name, labels from meta, rules (named `<firewall>/rules/<FwRuleId>`);
// provider_details: uuid, resource_uri, servers (uuids of servers whose
// NICs use it).
absl::StatusOr<v1::Firewall> PolicyToFirewall(absl::string_view policy_json,
                                              absl::string_view account);

// `{"objects":[{"name","meta","rules"}]}` for POST /fwpolicies/.
std::string PolicyCreateBody(const v1::Firewall& firewall, const std::vector<FwRule>& rules,
                             absl::string_view chosen_id, absl::string_view operation);

// The whole policy with its rules replaced by `rules`, for PUT
// /fwpolicies/{uuid}/ (fwpolicies.rst, editing: the whole policy is sent).
absl::StatusOr<std::string> EditPolicyRules(absl::string_view policy_json,
                                            const std::vector<FwRule>& rules);

// Labels: INVALID_ARGUMENT naming `field` for reserved keys.
absl::Status ValidateLabels(absl::string_view field,
                            const google::protobuf::Map<std::string, std::string>& labels);

}  // namespace cloudplane::adapters::cloudsigma

#endif  // CLOUDPLANE_ADAPTERS_CLOUDSIGMA_CLOUDSIGMA_WIRE_H_
