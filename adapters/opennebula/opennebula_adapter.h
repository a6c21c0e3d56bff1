// The OpenNebula adapter: instances (VMs), their metadata (user template),
// hosts, images (VM templates), volumes (disk images), locations (zones,
// clusters, marketplaces), firewalls (security groups), networks (VNETs),
// addresses (leases), NICs and key pairs (the user's SSH keys) on an
// OpenNebula cloud.
//
// Provider API: oned 6.10 (5.10 and 5.12 documents are read too).
// Protocol:     XML-RPC over HTTP POST to `http://host:2633/RPC2`
//   (adapters/common/xmlrpc over adapters/common/http; object documents are
//   parsed with the hardened adapters/common/xml).
// Auth:         the session string `user:password` (or `user:token`) as the
//   first parameter of every call; it comes from the account's credentials
//   and is never logged or put in an error.
// Reference:    OpenNebula 6.10 "XML-RPC API",
//   https://docs.opennebula.io/6.10/integration_and_development/system_interfaces/api.html
//   (the other public references, tagged [api], [states], [template] ...
//   in the comments, are listed in opennebula_wire.h, where the translation
//   lives).
//
// Resource ids: an object is named by its NAME when that is a valid id
// ([a-z][a-z0-9-]{0,62}), else by its numeric id; both forms are accepted
// (all digits = object id; a name picks the lowest id with that NAME).
// Create with `instance_id` / `firewall_id` sets the NAME, refused with
// ALREADY_EXISTS when a live object has it, unless that object carries this
// operation's CLOUDPLANE_OPERATION tag (a re-driven create resumes it).
//
// Re-drive (how it finds its own work): after a crash or an ambiguous answer
// (a reset, a timeout, a 5xx, an unreadable answer: kit::IsAmbiguous) the
// runner calls a mutation again with the same CallContext::operation. Every
// create writes that operation into the new object's template as
// CLOUDPLANE_OPERATION="<operation>" (oned keeps it: a VM in its
// USER_TEMPLATE, a security group in its TEMPLATE), and looks for it before
// it sends anything:
//   CreateInstance  reads one.vmpool.infoextended (the short pool bodies lack
//       the user template) and resumes, polling, the live VM that carries the
//       tag; with `instance_id`, a VM of that NAME without the tag is
//       ALREADY_EXISTS; only then is the VM instantiated / allocated. (A VM
//       of the operation that is DONE already is not found.)
//   CreateFirewall  reads one.secgrouppool.info and answers the group that
//       carries the tag; a group of that NAME without it is ALREADY_EXISTS;
//       only then one.secgroup.allocate (whose "NAME is already taken" is
//       checked the same way, for a race).
//   CreateFirewallRule  rules are named by a hash of their content: the rule
//       already in the group is answered, nothing is written.
//   Attach/DetachVolume  a disk of the image already on (off) the VM is
//       answered as it is; Start/Stop/Reboot/Delete send one.vm.action after
//       reading the VM, so a re-drive after the action went through is
//       refused by oned (ACTION, FAILED_PRECONDITION) or, for a delete,
//       NOT_FOUND unless allow_missing; updates write absolute values.
//
// Instances:
//   Create = one.template.instantiate of `instance.image`
//     (accounts/x/images/<template id>), or, with `instance.image` empty,
//     one.vm.allocate of `instance.provider_options` {"template": T}, the
//     only key read there. T is the raw template text or XML, sent as it is
//     ([template]), or structured as pyone takes it ([pyone]): a map with
//     one root key holding a map is the XML form, e.g. {"TEMPLATE": {"CPU":
//     "1", "DISK": {"IMAGE_ID": "0"}}}, any other map becomes `KEY="value"`
//     lines; a list repeats an attribute. Do not put NAME in T together with
//     instance_id. oned's template errors (INTERNAL for allocate) are
//     INVALID_ARGUMENT naming instance.provider_options.template.
//     start=false creates on HOLD. Polls one.vm.info until RUNNING (HOLD).
//   Start, Stop, Reboot, Delete are one.vm.action; each polls one.vm.info
//   until the action's target state. The request's provider_options
//   {"action": A} picks the OpenNebula action (unknown keys or values:
//   INVALID_ARGUMENT naming provider_options.<key> / provider_options.action):
//     StopInstance:   poweroff (default)  -> POWEROFF   (STOPPED)
//                     poweroff-hard       -> POWEROFF   (STOPPED)
//                     suspend             -> SUSPENDED  (SUSPENDED)
//                     undeploy[-hard]     -> UNDEPLOYED (STOPPED)
//                     stop                -> STOPPED    (STOPPED)
//                     hold (PENDING only) -> HOLD       (STOPPED)
//       force=true makes poweroff and undeploy the -hard variant and is
//       INVALID_ARGUMENT (naming `force`) with suspend, stop and hold.
//     StartInstance:  resume (default; release when the VM is on HOLD),
//                     release                               -> RUNNING
//     RebootInstance: reboot (default; force: reboot-hard), reboot-hard
//                     -> RUNNING; resched (flags the VM for the scheduler
//                     to move it; provider_details.resched = 1) -> the VM's
//                     current RUNNING or POWEROFF state; force with resched
//                     is INVALID_ARGUMENT.
//     DeleteInstance: terminate-hard (default), terminate -> gone (DONE).
//   An action the VM's state does not allow is oned's ACTION error:
//   FAILED_PRECONDITION with providerCode 2048.
//   Update (update_mask): display_name -> one.vm.rename (a valid id NAME
//   is also the instance id, so the instance's name changes with it;
//   ALREADY_EXISTS when another live VM has that NAME); cpu_count (VCPU) and
//   memory_bytes (MEMORY, whole MiB) -> one.vm.resize, only in POWEROFF or
//   UNDEPLOYED, else FAILED_PRECONDITION; labels -> one.vm.update in merge
//   mode. Other paths: INVALID_ARGUMENT naming update_mask. Synchronous.
//   Labels are USER_TEMPLATE attributes CLOUDPLANE_LABEL_<KEY> = "value"
//   (keys [a-z][a-z0-9_]{0,62}: oned upper-cases names); ListInstances
//   reads one.vmpool.infoextended because short bodies lack them.
//   Metadata = the USER_TEMPLATE's single attributes except CLOUDPLANE_*,
//   written with one.vm.update (merge or replace; replace keeps CLOUDPLANE_*).
//   provider_details holds the VM's own fields the Instance has no place
//   for: owner (uid, gid, uname, gname), state numbers and lcmStateName,
//   deployId, the last host's hostname, the CONTEXT and the USER_TEMPLATE
//   (without labels) as maps, and userDataSha256; attributes whose names
//   say password, token, secret, private, credential or a non-public key,
//   and the guest's scripts (USER_DATA, START_SCRIPT), are never there
//   (opennebula_wire.h InstanceFromVm).
// Volumes: OpenNebula images of type OS, CDROM and DATABLOCK
//   (one.imagepool.info / one.image.info). AttachVolume = one.vm.attach of
//   DISK=[IMAGE_ID=n] (device: a target such as vdb -> TARGET, or a bus
//   virtio/scsi/sata/ide -> DEV_PREFIX; channel and boot_order are
//   INVALID_ARGUMENT), DetachVolume = one.vm.detach of the DISK_ID that uses
//   the image; both poll until the VM is back in RUNNING or POWEROFF with
//   (without) the disk and answer the Volume. Attaching an attached image
//   or detaching a detached one answers the Volume as it is.
// Firewalls: security groups; rules are their RULE vectors, named
//   .../rules/<12 hex digits of a hash of the rule> so names stay put when
//   other rules come and go. CreateFirewallRule / DeleteFirewallRule write
//   the whole RULE set back with one.secgroup.update (merge); adding a rule
//   the group has already answers that rule. A rule's far end is its one
//   target: NETWORK_ID ↔ *_networks (named by VNET id on read; a name given
//   on write is looked up with one.vnpool.info, NOT_FOUND when absent),
//   IP + SIZE ↔ one CIDR block in *_ranges or else one *_address_ranges entry
//   exactly, no target ↔ 0.0.0.0/0 with ::/0 (OpenNebula's "any address" is
//   both families, so one of them alone is refused).
//
// Networks: virtual networks (one.vnpool.info / one.vn.info). Each AR with
//   an IP is an AddressRange exactly as oned keeps it (IP + SIZE, never a
//   covering CIDR); NETWORK_ADDRESS/NETWORK_MASK is the one cidr_ranges
//   entry; GATEWAY, DNS, VLAN_ID; labels are TEMPLATE CLOUDPLANE_LABEL_*;
//   the rest of the TEMPLATE is provider_details.template. Create =
//   one.vn.allocate (cluster -1) of NAME (network_id, else display_name),
//   VN_MAD="bridge" (oned needs a driver; bridge needs no PHYDEV), one
//   AR=[TYPE=IP4, IP, SIZE] per range, NETWORK_ADDRESS/NETWORK_MASK (one
//   IPv4 CIDR), GATEWAY, DNS, VLAN_ID, labels and the CLOUDPLANE_OPERATION
//   tag (a re-drive answers the tagged network; a taken NAME is
//   ALREADY_EXISTS). Update = one.vn.update (merge) of gateway, dns_servers,
//   labels. Delete = one.vn.delete; oned refuses while leases are held or
//   used (ACTION: FAILED_PRECONDITION). All synchronous.
// Addresses: the networks' leases (one.vn.info of each network: pool bodies
//   carry none), named accounts/<a>/addresses/<vnet id>-<ip> because an IP
//   is unique only within its network. A lease held with one.vn.hold is
//   RESERVED, one of a VM IN_USE (instance set). ReserveAddress =
//   one.vn.hold of LEASES=[IP] (address.network and address.address are
//   required; an address outside the ranges or taken is INVALID_ARGUMENT
//   naming address.address); ReleaseAddress = one.vn.release of a held
//   lease (a VM's lease: FAILED_PRECONDITION, detach the NIC instead).
// NICs: Instance.network_interfaces are TEMPLATE/NIC (NIC_ID as id,
//   NETWORK_ID -> the network's name, IP, MAC, MODEL). CreateInstance from
//   a VM template merges NIC=[NETWORK_ID, IP, MAC, MODEL] vectors (they
//   replace the template's NICs, as instantiate's merge does), VCPU
//   (cpu_count), MEMORY (memory_bytes, whole MiB) and, for key_name or
//   user_data, CONTEXT=[NETWORK="YES", SSH_PUBLIC_KEY="<the key's line>"
//   (without key_name the stock "$USER[SSH_PUBLIC_KEY]", the owner's keys),
//   USER_DATA="<user_data in base64>", USERDATA_ENCODING="base64"] (it
//   replaces the template's CONTEXT) into the extra template; with a raw
//   template these fields are INVALID_ARGUMENT (they go inside it). User
//   data: the [api] reference documents no CONTEXT attribute for it; the
//   guest side does. OpenNebula's context packages and cloud-init's
//   OpenNebula datasource read USER_DATA (or USERDATA) and base64-decode it
//   when USERDATA_ENCODING is "base64" (cloud-init
//   cloudinit/sources/DataSourceOpenNebula.py; Libcloud's OpenNebula driver
//   writes the same pair). base64 because the data is arbitrary bytes and a
//   template value cannot hold `]]>` or NUL; the name USER_DATA because
//   both readers look for it first. It is INPUT_ONLY: Get shows
//   provider_details.userDataSha256, the hex SHA-256 of the decoded data (as
//   the sandbox does), never the data. Attach = one
//   vm.attachnic of one NIC vector, Detach = one.vm.detachnic of the NIC_ID;
//   both poll until the VM is back in RUNNING (POWEROFF) with a new NIC_ID
//   (without the NIC) and answer the Instance.
// Key pairs: the lines of the calling user's SSH_PUBLIC_KEY (one.user.info
//   -1; one.user.update in merge mode writes the whole attribute back). A
//   key's id is its comment when that is a valid id, else key-<12 hex
//   digits of the SHA-256 of the key blob>; fingerprint SHA256:<base64>, as
//   ssh-keygen -l prints it. CreateKeyPair with key_pair_id adds the id as
//   the comment of a key that has none (a key with another comment is
//   INVALID_ARGUMENT naming key_pair_id); the same key again answers it,
//   another key of that id is ALREADY_EXISTS.
//
// Fields (the strict field contract, ProviderInfo::honoured_fields; the
// server refuses any other set field with INVALID_ARGUMENT /
// FIELD_UNSUPPORTED before the adapter runs):
//   CreateInstance does not honour display_name (the NAME is instance_id's
//     or oned's), machine_type, cpu_mhz, location, firewalls, billing_code,
//     network_interfaces.firewall (security groups belong to networks):
//     refused.
//   CreateNetwork does not honour location; CreateKeyPair does not honour
//     display_name or labels (a key line has no place for them); Attach-
//     NetworkInterface does not honour firewall; ReserveAddress does not
//     honour labels: refused.
//   UpdateInstance applies display_name, cpu_count, memory_bytes, labels
//     only; other mask paths are refused.
//   StartInstance honours nothing but its name and provider_options.
//   AttachVolume does not honour channel, boot_order: refused.
//   CreateFirewall does not honour display_name (the NAME is firewall_id),
//     location, labels, rules.description, rules.source_firewalls,
//     rules.destination_firewalls; CreateFirewallRule does not honour
//     rule.description (a RULE has no place for it) nor the *_firewalls (a
//     RULE cannot name a security group): refused.
//
// Operations: creates, actions and disk hotplugs answer a poll token (a
// versioned message of opennebula_tokens.proto, packed by
// adapters/common/kit/poll_token.h); updates, metadata and firewalls finish
// at once. validate_only (CallContext): every mutation runs the checks that
// need no call to oned (ids, names, options, templates, rules, devices) and
// finishes without sending anything, so the VM's state is not checked then.
// Deadlines: the call's deadline goes on every request; the transport
// refuses one already past (DEADLINE_EXCEEDED prefixed with the XML-RPC
// method, nothing sent).
//
// Watch: watch_source kPoll. The server's observer (service/observer.h)
// lists instances, volumes and firewalls (security groups) every
// observe_interval_seconds, one list each per round; templates, images,
// hosts and a group's rules are not observed. Pending VM operations wait on
// those rounds (ObservationTarget: the Instance): a listed state that may
// be the target is confirmed by one poll (the API state folds several VM
// states: STOPPED is HOLD, POWEROFF, STOPPED or UNDEPLOYED), a VM gone from
// the list finishes a delete, a VM missing or listed ERROR while it should
// run gets one poll that says why; disk hotplugs and other operations are
// polled as before; NIC hotplugs are polled as disk hotplugs are.
//
// Thread-safety: a Provider made here is thread-safe; calls in flight keep
// what they need alive.
#ifndef CLOUDPLANE_ADAPTERS_OPENNEBULA_OPENNEBULA_ADAPTER_H_
#define CLOUDPLANE_ADAPTERS_OPENNEBULA_OPENNEBULA_ADAPTER_H_

#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "adapters/common/http/http_client.h"
#include "adapters/provider.h"

namespace cloudplane::adapters::opennebula {

// kind "opennebula", the protocol, the supported methods and those that read
// request-level provider_options.
ProviderInfo OpenNebulaProviderInfo();

// `setup.endpoint` is the XML-RPC URL (`http://host:2633/RPC2`; a URL
// without a path gets /RPC2). `setup.secret` is `user:password`.
// INVALID_ARGUMENT naming `endpoint`, `credentials` (never echoing it) or
// `options.<name>` (no options are taken). `transport` nullptr: the
// process-wide HTTP transport.
absl::StatusOr<std::unique_ptr<Provider>> CreateOpenNebulaProvider(
    const AccountSetup& setup, std::shared_ptr<http::HttpTransport> transport = nullptr);

// Registers kind "opennebula". ALREADY_EXISTS when registered already.
absl::Status RegisterOpenNebula(AdapterRegistry& registry);

}  // namespace cloudplane::adapters::opennebula

#endif  // CLOUDPLANE_ADAPTERS_OPENNEBULA_OPENNEBULA_ADAPTER_H_
