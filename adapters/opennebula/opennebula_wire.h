// Pure translation between OpenNebula's XML-RPC API (oned 5.10 .. 6.10) and
// cloudplane.v1 messages. No I/O: every function is a deterministic function
// of its arguments, tested in opennebula_wire_test.cc on hand-written
// documents shaped as the 5.10.5 / 5.12.13 / 6.10.5 XSDs describe, and on
// hostile input. Responses, names, options and VM states are in
// opennebula_wire.cc, templates in opennebula_wire_templates.cc, object
// documents in opennebula_wire_objects.cc.
//
// References, cited in the comments of this adapter by their tag:
//   [api]       OpenNebula 6.10 "XML-RPC API": the envelope, the response
//               array, error codes, every one.* method with its parameters,
//               pool pagination and the XSD reference of object documents.
//               https://docs.opennebula.io/6.10/integration_and_development/system_interfaces/api.html
//   [states]    "Virtual Machine States Reference" (STATE, LCM_STATE).
//               https://docs.opennebula.io/6.10/integration_and_development/references/vm_states.html
//   [template]  "Virtual Machine Template" (attribute syntax, vectors).
//               https://docs.opennebula.io/6.10/management_and_operations/references/template.html
//   [pyone]     "Python OpenNebula Cloud API" (how pyone casts dicts to
//               templates).
//               https://docs.opennebula.io/6.10/integration_and_development/system_interfaces/python.html
//   [oned]      Where the documentation is silent, oned's source at tag
//               release-6.10.5 of https://github.com/OpenNebula/one (src/rm
//               request handlers, src/vm XML generators, src/template).
//
// Errors:
//   - A response that is not a well-formed XML-RPC response, a result of the
//     wrong type, or an object document that does not parse (truncated,
//     wrong types, a DTD: external entities and entity bombs are refused
//     before any expansion) is INTERNAL with ErrorInfo reason
//     PROVIDER_MALFORMED_RESPONSE and a message saying what was wrong.
//   - An XML-RPC fault is INTERNAL, reason PROVIDER_XMLRPC_FAULT, metadata
//     faultCode (a protocol/programming error, never the user's fault).
//   - An OpenNebula failure array maps by its error code ([api]) as in
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
#include "cloudplane/v1/networks.pb.h"
#include "cloudplane/v1/volumes.pb.h"
#include "google/protobuf/map.h"
#include "google/protobuf/struct.pb.h"

namespace cloudplane::adapters::opennebula {

// ---------------------------------------------------------------------------
// Responses.

// The result (item 1) of a successful call, or the error status (see the
// file comment). `method` is the XML-RPC method, for messages.
absl::StatusOr<xmlrpc::Value> ResultFromResponse(int http_status, absl::string_view body,
                                                 absl::string_view method);

// OpenNebula error code ([api]) -> status: AUTHENTICATION UNAUTHENTICATED,
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
// Templates ([template]; opennebula_wire_templates.cc).

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

// A VM template from a structured value, as pyone casts its parameters
// ([pyone]): a Struct with exactly one key whose value is a Struct becomes the
// XML form rooted at that key (`<KEY><A>v</A><V><B>w</B></V></KEY>`); any
// other Struct is flat and becomes `A="v"` lines. Inside, a Struct value is
// a vector attribute (scalars only: templates nest one level, [template]), a list
// repeats the attribute, numbers are written without a trailing .0, bools as
// YES/NO and null as "". `extra` attributes are added (first in the text
// form). A string is the raw template, sent as it is (text or XML form,
// [template]); `extra` is put before its first line, or for the XML form (first
// character `<`) before the root's closing tag. INVALID_ARGUMENT naming
// `field` (or `field`.<key>) for names or values a template cannot hold,
// deeper nesting, or an XML string whose end is not a closing tag.
absl::StatusOr<std::string> VmTemplateFromOption(
    const google::protobuf::Value& option,
    const std::vector<std::pair<std::string, std::string>>& extra, absl::string_view field);

// ---------------------------------------------------------------------------
// Request options and labels.

// The one key request-level provider_options may hold: {"action": "<name>"}.
// Returns "" for empty options. INVALID_ARGUMENT naming
// `provider_options.<key>` for any other key, and `provider_options.action`
// for a value that is not a string among `allowed`.
absl::StatusOr<std::string> ActionOption(const google::protobuf::Struct& options,
                                         const std::vector<std::string>& allowed);

// Instance labels live in the USER_TEMPLATE as single attributes
// CLOUDPLANE_LABEL_<KEY> = "value" (oned upper-cases names, [template], so keys
// are lower-case: [a-z][a-z0-9_]{0,62}).
inline constexpr char kLabelPrefix[] = "CLOUDPLANE_LABEL_";
// INVALID_ARGUMENT naming `field`.<key> for a key outside that alphabet or a
// value the template cannot hold. Sorted by key.
absl::StatusOr<std::vector<std::pair<std::string, std::string>>> LabelAttributes(
    const google::protobuf::Map<std::string, std::string>& labels, absl::string_view field);
// The labels kept that way in a USER_TEMPLATE element (may be null).
std::map<std::string, std::string> LabelsFromUserTemplate(const xml::Node* user_template);

// OK for a name oned accepts for a VM ([oned] PoolObjectSQL: 1-128 characters, none of
// & | : \ " ; / ' # { } $ < > or tab/newline/vertical tab/form feed/CR);
// INVALID_ARGUMENT naming `field` otherwise.
absl::Status CheckVmName(absl::string_view name, absl::string_view field);

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

// A VM's STATE ([states]), with oned's numbers. A number this list does not
// name (a newer oned) is still carried as it is: the underlying type is int
// and every int converts to a VmState, so nothing read is lost.
enum class VmState : int {
  kInit = 0,
  kPending = 1,
  kHold = 2,
  kActive = 3,  // LCM_STATE says more
  kStopped = 4,
  kSuspended = 5,
  kDone = 6,    // gone; oned keeps the record for accounting
  kFailed = 7,  // not used since 4.x; read in old documents
  kPoweroff = 8,
  kUndeployed = 9,
  kCloning = 10,
  kCloningFailure = 11,
};

// A VM's LCM_STATE ([states]): the sub-state of an ACTIVE VM (LCM_INIT
// otherwise), with oned's numbers; unnamed numbers are carried as for
// VmState.
enum class LcmState : int {
  kLcmInit = 0,
  kProlog = 1,
  kBoot = 2,
  kRunning = 3,
  kMigrate = 4,
  kSaveStop = 5,
  kSaveSuspend = 6,
  kSaveMigrate = 7,
  kPrologMigrate = 8,
  kPrologResume = 9,
  kEpilogStop = 10,
  kEpilog = 11,
  kShutdown = 12,
  kCancel = 13,
  kFailure = 14,
  kCleanupResubmit = 15,
  kUnknown = 16,
  kHotplug = 17,
  kShutdownPoweroff = 18,
  kBootUnknown = 19,
  kBootPoweroff = 20,
  kBootSuspended = 21,
  kBootStopped = 22,
  kCleanupDelete = 23,
  kHotplugSnapshot = 24,
  kHotplugNic = 25,
  kHotplugSaveas = 26,
  kHotplugSaveasPoweroff = 27,
  kHotplugSaveasSuspended = 28,
  kShutdownUndeploy = 29,
  kEpilogUndeploy = 30,
  kPrologUndeploy = 31,
  kBootUndeploy = 32,
  kHotplugPrologPoweroff = 33,
  kHotplugEpilogPoweroff = 34,
  kBootMigrate = 35,
  kBootFailure = 36,
  kBootMigrateFailure = 37,
  kPrologMigrateFailure = 38,
  kPrologFailure = 39,
  kEpilogFailure = 40,
  kEpilogStopFailure = 41,
  kEpilogUndeployFailure = 42,
  kPrologMigratePoweroff = 43,
  kPrologMigratePoweroffFailure = 44,
  kPrologMigrateSuspend = 45,
  kPrologMigrateSuspendFailure = 46,
  kBootUndeployFailure = 47,
  kBootStoppedFailure = 48,
  kPrologResumeFailure = 49,
  kPrologUndeployFailure = 50,
  kDiskSnapshotPoweroff = 51,
  kDiskSnapshotRevertPoweroff = 52,
  kDiskSnapshotDeletePoweroff = 53,
  kDiskSnapshotSuspended = 54,
  kDiskSnapshotRevertSuspended = 55,
  kDiskSnapshotDeleteSuspended = 56,
  kDiskSnapshot = 57,
  kDiskSnapshotRevert = 58,
  kDiskSnapshotDelete = 59,
  kPrologMigrateUnknown = 60,
  kPrologMigrateUnknownFailure = 61,
  kDiskResize = 62,
  kDiskResizePoweroff = 63,
  kDiskResizeUndeployed = 64,
  kHotplugNicPoweroff = 65,
  kHotplugResize = 66,
  kHotplugSaveasUndeployed = 67,
  kHotplugSaveasStopped = 68,
  kBackup = 69,
  kBackupPoweroff = 70,
  kRestore = 71,
};

// The number oned sends for a state (provider_details, etags, messages).
constexpr int StateNumber(VmState s) { return static_cast<int>(s); }
constexpr int StateNumber(LcmState s) { return static_cast<int>(s); }

// The VM's normalised state from its STATE / LCM_STATE pair ([states]).
v1::Instance::State InstanceState(VmState state, LcmState lcm_state);
// "ACTIVE/RUNNING", "POWEROFF", ... (the raw pair stays in provider_details);
// an unnamed number is written as the number.
std::string ProviderState(VmState state, LcmState lcm_state);
// "RUNNING", "LCM_INIT", ... ([states]); an unnamed number as the number.
std::string LcmStateName(LcmState lcm_state);

struct VmSummary {
  int64_t oid = 0;
  std::string name;
  VmState state = VmState::kInit;
  LcmState lcm_state = LcmState::kLcmInit;
};
// ID, NAME, STATE, LCM_STATE of a VM element; INTERNAL (malformed) for
// missing or non-numeric ones.
absl::StatusOr<VmSummary> SummarizeVm(const xml::Node& vm);

// A VM element (full or short body) as an Instance named with `resource_id`.
// Labels come from the CLOUDPLANE_LABEL_* attributes (only full bodies carry
// them, [api] one.vmpool.info); Sunstone's LABELS list is
// provider_details.sunstoneLabels.
// Volumes are the DISKs made from images (accounts/<a>/volumes/<image>).
// provider_details, the VM's own fields the Instance does not hold:
//   id, state, lcmState (oned's numbers), lcmStateName ("RUNNING"), resched,
//   deployId, uid, gid, uname, gname (the owner), hostname (the host of the
//   last HISTORY record), sunstoneLabels;
//   context: TEMPLATE/CONTEXT's single attributes, without secrets
//     (IsSecretAttribute) and without the guest's scripts (USER_DATA,
//     USERDATA, START_SCRIPT, START_SCRIPT_BASE64: they may hold secrets);
//   userDataSha256: the hex SHA-256 of the CONTEXT's user data (USER_DATA,
//     else USERDATA), base64-decoded first when USERDATA_ENCODING (or
//     USER_DATA_ENCODING) is "base64" and the text decodes, else of the text
//     as kept; so it equals the SHA-256 of the user_data a create was given;
//   userTemplate: USER_TEMPLATE's single attributes except the labels
//     (CLOUDPLANE_LABEL_*) and secrets.
// A password or token never appears there.
absl::StatusOr<v1::Instance> InstanceFromVm(const xml::Node& vm, absl::string_view account,
                                            absl::string_view resource_id);

// True for a template attribute name that holds a secret, so never shown:
// upper-cased, it contains PASSWORD, PASSWD, TOKEN, SECRET, PRIVATE or
// CREDENTIAL, or contains KEY without being a PUBLIC_KEY (SSH_PUBLIC_KEY is
// shown; a CRYPTED_PASSWORD, ONEGATE_TOKEN or SECRET_KEY is not).
bool IsSecretAttribute(absl::string_view name);

// The CONTEXT vector a create merges into one.template.instantiate's extra
// template (it replaces the template's whole CONTEXT, [api]):
// NETWORK="YES" (the network configuration stock templates ask for);
// SSH_PUBLIC_KEY = `ssh_key_line`, or when that is empty the stock
// "$USER[SSH_PUBLIC_KEY]" (oned puts the owner's keys there); and for a
// non-empty `user_data` USER_DATA = its base64 with USERDATA_ENCODING =
// "base64" (what OpenNebula's context packages and cloud-init's OpenNebula
// datasource decode; base64 because a template value cannot hold `]]>` or
// NUL and the data is arbitrary bytes). `CONTEXT=[...]` and a newline.
absl::StatusOr<std::string> ContextTemplate(absl::string_view ssh_key_line,
                                            absl::string_view user_data);

// The DISK_ID of the VM's (full or short body) DISK that uses image
// `image_id`, if any.
std::optional<int64_t> DiskOfImage(const xml::Node& vm, int64_t image_id);

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

// ---------------------------------------------------------------------------
// Images as volumes.

// Image TYPEs that are block devices (OS 0, CDROM 1, DATABLOCK 2); kernels,
// ramdisks, context files and backups are not volumes.
bool IsVolumeImageType(int64_t type);

// ID, NAME and TYPE of an IMAGE element; INTERNAL (malformed) when ID or
// TYPE is missing or not a number.
struct ImageSummary {
  int64_t oid = 0;
  std::string name;
  int64_t type = 0;
};
absl::StatusOr<ImageSummary> SummarizeImage(const xml::Node& image);

// An IMAGE as a Volume named accounts/<account>/volumes/<resource_id>.
// STATE: INIT, LOCKED and CLONE CREATING; READY AVAILABLE; USED, USED_PERS
// and LOCKED_USED* ATTACHED; DELETE DELETING; ERROR ERROR; DISABLED
// unmapped. `instance_ids` gives the resource id of each VM id in VMS (a VM
// not there is named by its number).
absl::StatusOr<v1::Volume> VolumeFromImage(const xml::Node& image, absl::string_view account,
                                           absl::string_view resource_id,
                                           const std::map<int64_t, std::string>& instance_ids);

// The DISK sub-attribute that puts a volume at `device` (AttachVolume): a
// target such as vdb, sdc, hda or xvdb → TARGET; a bus virtio, scsi, sata or
// ide (or the prefixes vd, sd, hd) → DEV_PREFIX. INVALID_ARGUMENT naming
// `device` otherwise.
absl::StatusOr<std::pair<std::string, std::string>> DiskDeviceAttribute(absl::string_view device);

// ---------------------------------------------------------------------------
// Security groups.

// A RULE vector of a security group with its stable id: 12 hex digits of
// the 64-bit FNV-1a hash of its sub-attributes (sorted by name, PROTOCOL and
// RULE_TYPE upper-cased), so a rule keeps its name when others come and go;
// identical rules get -2, -3, ... in document order.
struct SgRule {
  std::string id;
  std::vector<std::pair<std::string, std::string>> attrs;  // as in the document
};
std::string RuleId(const std::vector<std::pair<std::string, std::string>>& attrs);
std::vector<SgRule> SecurityGroupRules(const xml::Node& sg);

// `NAME=[K="v",...]` and a newline: one vector attribute ([template]).
// INVALID_ARGUMENT for a name or value a template cannot hold.
absl::StatusOr<std::string> VectorTemplate(
    absl::string_view name, const std::vector<std::pair<std::string, std::string>>& attrs);

// `RULE=[K="v",...]` lines for every rule, or `RULE=[]` (which deletes all
// rules in merge mode, [api] one.secgroup.update) when there are none. INVALID_ARGUMENT for a
// value a template cannot hold.
absl::StatusOr<std::string> RuleSetTemplate(
    const std::vector<std::vector<std::pair<std::string, std::string>>>& rules);

// A SECURITY_GROUP as a Firewall (rules named .../rules/<RuleId>).
absl::StatusOr<v1::Firewall> FirewallFromSecurityGroup(const xml::Node& sg,
                                                       absl::string_view account,
                                                       absl::string_view resource_id);

// One rule of a security group as a FirewallRule named `name`. The far end
// (source of an INBOUND rule, destination of an OUTBOUND one): NETWORK_ID →
// `..._networks` `accounts/<account>/networks/<vnet id>`; else IP + SIZE →
// `..._ranges` when they are exactly one CIDR block, else one
// `..._address_ranges` entry as they are (never widened); neither →
// `0.0.0.0/0` and `::/0` (any address of either family). What the typed
// fields cannot hold (a port list, an IPv6 IP + SIZE, a malformed target) is
// said in `description`.
v1::FirewallRule FirewallRuleFromAttributes(
    const std::vector<std::pair<std::string, std::string>>& attrs, absl::string_view account,
    std::string name);

// Network resource names (as a request gives them) → VNET ids, resolved by
// the adapter (one.vnpool.info) before a rule is written.
using VnetIds = std::map<std::string, int64_t, std::less<>>;

// A rule as the sub-attributes of a RULE vector ([api] security groups):
// PROTOCOL, RULE_TYPE, RANGE and one target: NETWORK_ID for the one network
// (looked up in `vnets`), IP + SIZE for one CIDR block or one address
// range, none for `0.0.0.0/0` with `::/0`. INVALID_ARGUMENT naming `field`'s
// sub-field for what OpenNebula cannot express: DENY, an unknown protocol,
// ports on a protocol other than TCP/UDP, more than one target, a target at
// the VM's end (destination_* of an INGRESS rule, source_* of an EGRESS
// one), firewalls as targets, non-IPv4 or host-bit CIDRs, one family's
// "anywhere" alone (OpenNebula's "any address" is both), a network missing
// from `vnets`. The rule's description has no place in a RULE and is not read.
absl::StatusOr<std::vector<std::pair<std::string, std::string>>> RuleToTemplate(
    const v1::FirewallRule& rule, absl::string_view field, const VnetIds& vnets = {});


// ---------------------------------------------------------------------------
// Virtual networks, leases, NICs and SSH keys (opennebula_wire_networks.cc).

// A VNET (one.vn.info, or a pool body without leases) as a Network named
// accounts/<account>/networks/<resource_id>. Each AR with an IP (IP4,
// IP4_6) is one AddressRange, IP and SIZE exactly as oned keeps them (never
// widened to a CIDR); NETWORK_ADDRESS with NETWORK_MASK (dotted or a prefix
// length) is the one cidr_ranges entry; GATEWAY, DNS (space or comma
// separated), VLAN_ID; labels from TEMPLATE CLOUDPLANE_LABEL_*; STATE (6.4+;
// absent: READY). provider_details: id, bridge, vnMad, state, template (the
// TEMPLATE's other single attributes) and arsWithoutIp (ETHER / IP6 ARs:
// "<TYPE>:<SIZE>").
absl::StatusOr<v1::Network> NetworkFromVnet(const xml::Node& vnet, absl::string_view account,
                                            absl::string_view resource_id);

// One lease of a VNET's address ranges (one.vn.info only): held
// (one.vn.hold: oned records VM -1) or used by VM `vm`.
struct Lease {
  int64_t vnet = 0;
  std::string ip;
  std::string mac;
  int64_t ar_id = 0;
  int64_t vm = -1;  // -1: held
};
std::vector<Lease> LeasesOfVnet(const xml::Node& vnet);

// Addresses are named accounts/<account>/addresses/<vnet id>-<ip>: an IP is
// unique only within its network.
std::string AddressId(int64_t vnet, absl::string_view ip);
// INVALID_ARGUMENT naming `field` unless `name` is such a name.
absl::StatusOr<std::pair<int64_t, std::string>> ParseAddressName(absl::string_view field,
                                                                absl::string_view account,
                                                                absl::string_view name);
// A lease as an Address (RESERVED when held, else IN_USE by `instance`, the
// VM's instance name, or by VM <n> when that is empty).
v1::Address AddressFromLease(const Lease& lease, absl::string_view account,
                             absl::string_view network_resource_id, absl::string_view instance);

// The template of one.vn.allocate for `network` named `name`: NAME, VN_MAD
// "bridge" (oned needs a driver; bridge needs no PHYDEV), one AR=[TYPE=IP4,
// IP, SIZE] per address range, NETWORK_ADDRESS/NETWORK_MASK of the one
// IPv4 cidr_ranges entry, GATEWAY, DNS (space separated), VLAN_ID, labels
// and `extra`. INVALID_ARGUMENT naming network.<field>.
absl::StatusOr<std::string> NetworkTemplate(
    const v1::Network& network, absl::string_view name,
    const std::vector<std::pair<std::string, std::string>>& extra);

// The VM's NICs (TEMPLATE/NIC) as interfaces: NIC_ID as id, NETWORK_ID (and
// NETWORK's name) -> the network's resource name, IP, MAC, MODEL.
std::vector<v1::NetworkInterface> NicsFromVm(const xml::Node& vm, absl::string_view account);
// NIC_IDs of the VM's NICs.
std::vector<int64_t> NicIds(const xml::Node& vm);

// The sub-attributes of a NIC for `nic` on network object `vnet`:
// NETWORK_ID, IP, MAC, MODEL. INVALID_ARGUMENT naming `field`.<member> for
// an address that is no IPv4, a malformed MAC or model, or a firewall
// (OpenNebula's security groups belong to the network, not the NIC).
absl::StatusOr<std::vector<std::pair<std::string, std::string>>> NicAttributes(
    const v1::NetworkInterface& nic, int64_t vnet, absl::string_view field);

// SSH keys: the lines of a user's SSH_PUBLIC_KEY ("<type> <base64> [comment]").
// The key pair's id is its comment when that is a valid id
// ([a-z][a-z0-9-]{0,62}), else "key-" and the first 12 hex digits of the
// SHA-256 of the key blob. fingerprint is "SHA256:<unpadded base64>" of
// that blob, as `ssh-keygen -l` prints it.
struct SshKey {
  std::string id;
  std::string line;
  std::string fingerprint;
};
// Lines that do not parse as keys are skipped (they stay in the template).
std::vector<SshKey> SshKeysFromText(absl::string_view text);
// INVALID_ARGUMENT naming `field` for a line that is no OpenSSH public key.
absl::StatusOr<SshKey> ParseSshKey(absl::string_view line, absl::string_view field);
v1::KeyPair KeyPairFromSshKey(const SshKey& key, absl::string_view account);

}  // namespace cloudplane::adapters::opennebula

#endif  // CLOUDPLANE_ADAPTERS_OPENNEBULA_OPENNEBULA_WIRE_H_
