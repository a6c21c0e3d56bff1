// The CloudSigma adapter: ComputeService, VolumesService, NetworksService and
// FirewallsService on a CloudSigma account, and its websocket as the
// account's Watch source.
//
// Provider API: CloudSigma API 2.0 (`https://{loc}.cloudsigma.com/api/2.0/`).
// Protocol:     REST/JSON over HTTPS (adapters/common/http); events over a
//   websocket (adapters/common/websocket, Boost.Beast).
// Auth:         HTTP Basic on every request. The account's secret (config
//   `credentials { env | file }`) is "username:password" (the account
//   e-mail and password); it is never logged. The websocket authenticates
//   with the short-lived `async_auth` cookie from
//   `POST /accounts/action/?do=authenticate_asynchronous`.
// Reference:    the CloudSigma API 2.0 documentation,
//   https://cloudsigma-docs.readthedocs.io/en/latest/ (general.html for
//   endpoints and auth, errors.html, pagination.html, servers.html,
//   drives.html, libdrives.html, locations.html; async.html for the
//   websocket). Firewall policies: fwpolicies.rst as it was before
//   cloudsigma-docs commit 467c683 (2022-10-05) removed it as "the
//   decommissioned Firewall Policies feature" — an account where CloudSigma
//   no longer serves /fwpolicies/ answers what CloudSigma answers there.
//   Translation in cloudsigma_wire.h (ids and labels are described there);
//   poll tokens in cloudsigma_tokens.proto.
//
// Account config:
//   endpoint  the API base URL, e.g. `https://zrh.cloudsigma.com/api/2.0`.
//   options   `ws_endpoint`: the websocket URL, e.g.
//             `wss://direct.zrh.cloudsigma.com/websocket`. When absent, the
//             `websocket_url` of the /locations/ entry whose api_endpoint is
//             the account's endpoint is used; when none matches, the account
//             has no push events (logged once). Unknown options are
//             INVALID_ARGUMENT.
//   A `~/.cloudsigma.conf` can be converted with cloudsigma_conf.h.
//
// Resources:
//   Instances = servers. Create takes display_name (→ name; defaults to the
//     id), cpu_mhz (required), memory_bytes (required), cpu_count (→ smp),
//     labels (→ meta under cloudplane_label_, see below), key_name (a key
//     pair id or name → its keypair uuid in `pubkeys`; looked up first, an
//     unknown one is NOT_FOUND and nothing is made), network_interfaces
//     (→ `nics`, below) and provider_options {"vnc_password": string}
//     (random when absent); without network_interfaces it adds one public
//     DHCP NIC, as CloudSigma's own tools do; `machine_type` is
//     INVALID_ARGUMENT (CloudSigma has none). Without `image` the server has
//     no drive. `image` (a library drive as ListImages names it,
//     `accounts/{a}/images/{uuid}`, or its bare uuid) is booted as
//     pycloudsigma users do it, in the same Operation: the libdrive is read
//     (unknown: NOT_FOUND, nothing made), cloned
//     (`POST /libdrives/{uuid}/action/?do=clone`, §7, the clone named as the
//     server and tagged with the operation), polled until `unmounted`, and
//     the server is created with the clone in `drives` as its boot drive
//     (boot_order 1, virtio, "0:0"); the libdrive's uuid stays in the
//     server's meta (`cloudplane_image`) so Get shows Instance.image. The
//     clone is a Volume of the account, shown in Instance.volumes. A server
//     CloudSigma refuses to create deletes the clone before the error is
//     reported; a refused start deletes the server with
//     `?recurse=all_drives` (its only drive is the clone). DeleteInstance
//     deletes the server only: the clone stays an (unattached) Volume until
//     DeleteVolume, as CloudSigma's own delete without `recurse` leaves it;
//     `recurse=all_drives` is not used because it would also delete volumes
//     attached later. `start` (default true)
//     starts it; the Operation ends RUNNING (or STOPPED). A refused start
//     deletes the new server again, so nothing half-made stays.
//     Update masks: display_name, labels (any state); cpu_mhz,
//     memory_bytes, cpu_count (stopped only: CloudSigma silently ignores
//     them on a running server, so this is FAILED_PRECONDITION). The
//     full object is read, edited and PUT back (fields not named are kept).
//     Start/Stop/Reboot: `start`, `stop` (force) or `shutdown` (ACPI), and
//     `restart`; done when the status is reached. Starting a running server
//     or stopping a stopped one is done at once; other wrong states are
//     FAILED_PRECONDITION. Delete needs a stopped server
//     (FAILED_PRECONDITION) and ends when GET answers 404.
//     Metadata = the server's plain `meta` keys (what the guest reads in
//     its server context); labels are the meta keys under
//     `cloudplane_label_` (label "role" is meta "cloudplane_label_role"), so
//     UpdateInstanceMetadata never changes labels and an update of labels
//     never changes metadata. Servers labelled before this split show those
//     keys as metadata.
//   Network interfaces = the server's `nics` (protocol reference §5.4). An
//     interface with `network` (a VLAN, `networks/<uuid>`) is a private NIC
//     {"vlan"}; it cannot have an `address` (CloudSigma gives VLAN NICs no
//     IP configuration: INVALID_ARGUMENT). Without `network`, a public NIC:
//     `address` is a static IP of the account ({"conf":"static"}), empty is
//     DHCP. `model` virtio (default), e1000 or rtl8139. The id is the MAC
//     CloudSigma gives. Get shows each NIC's network, MAC, model and address
//     (the static IP, or the DHCP lease from the running server's runtime).
//     Attach appends a NIC and Detach removes the one with that MAC (NICs
//     are matched by mac, the others are sent back unchanged), each one PUT
//     of the whole server. Both need a stopped server: CloudSigma ignores
//     NIC changes of a running server without an error (§5.2), so this is
//     FAILED_PRECONDITION rather than a stop/update/start nobody asked for.
//     A re-driven attach finds a NIC on the same VLAN or with the same
//     static IP already there and converges (a second DHCP NIC cannot be
//     told apart); detaching a NIC that is not there is done at once.
//   Key pairs = /keypairs/ (name, public_key, fingerprint, meta): list, get,
//     import with a chosen id (meta, as drives) and delete; servers that
//     have the key keep it.
//   Networks = VLANs (`networks/<uuid>`), addresses = IPs
//     (`addresses/<ip>`): CloudSigma sells both as subscriptions (§7, §9)
//     and has no delete for them; each disappears when its subscription
//     ends. So CreateNetwork / ReserveAddress buy one (`POST /subscriptions/`
//     {"resource":"vlan"|"ip","amount":"1","period":"1 month"}, paid from
//     the account's balance: 402 is FAILED_PRECONDITION) and PUT the new
//     object's meta (labels, the operation for a re-drive); if that PUT
//     fails, the purchase's auto-renewal is turned off so it lapses.
//     DeleteNetwork / ReleaseAddress turn the subscription's auto-renewal
//     off (`POST /subscriptions/{id}/action/?do=auto_renew`
//     {"auto_renew":false}) and are then done: the VLAN (IP) stays, shown
//     DELETING (provider_details auto_renew false and
//     subscription_end_time), until the subscription ends, then Get is
//     NOT_FOUND. Both are FAILED_PRECONDITION while a server uses the VLAN
//     (IP), and for a running server's dynamic address (no subscription).
//     Addresses are IN_USE with `instance` when a server has them, else
//     RESERVED; netmask, gateway, nameservers are in provider_details.
//   Volumes = drives. Create (display_name, size_bytes > 0, media, labels)
//     ends `unmounted`; Clone ends when the copy is `unmounted`; Update
//     masks display_name, labels, size_bytes (resize; ends settled);
//     Delete of an attached drive is FAILED_PRECONDITION, else ends at 404.
//     Attach/Detach edit the server's `drives` list (device virtio|ide,
//     channel `c:u`, boot order) and end when the drive's `mounted_on`
//     agrees; the server must be stopped (CloudSigma ignores drive changes
//     on a running server). Detaching a drive that is not attached is done
//     at once (so a re-driven detach is harmless).
//   Images = library drives (read only); Locations = /locations/.
//   Firewalls = firewall policies (/fwpolicies/), named like drives (a
//     chosen firewall_id in meta, else the uuid); display_name is the
//     policy's name, labels its meta. Every mutation is done at once.
//     Create POSTs the policy with its rules; a re-drive finds it by the
//     operation in its meta. Rules map one to one (cloudsigma_wire.h,
//     "Firewall policies"): action accept/drop, direction in/out, ip_proto
//     tcp/udp (none: protocol "any"), dst_port "80" or "1000:2000", and the
//     far end — src_ip of an in rule, dst_ip of an out rule — as one IPv4
//     CIDR; no IP is anywhere and reads as source_ranges (destination_ranges)
//     ["0.0.0.0/0"]. A rule CloudSigma holds that the typed fields cannot
//     ("!" negation, direction both, a src_port, the near end's IP) reads
//     with no far end and CloudSigma's fields in its description. Rule ids
//     are a hash of the rule's fields, so removing one renames no other.
//     CreateFirewallRule / DeleteFirewallRule read the policy, edit its rule
//     list (a new rule goes last: CloudSigma applies rules in order) and PUT
//     the whole policy back; an identical rule already there is the result
//     (so a re-drive adds nothing), and two writers at the same moment can
//     lose a rule (CloudSigma has no compare-and-swap). GetFirewall shows
//     the rules in CloudSigma's order, ListFirewallRules pages them by name.
//     DeleteFirewall while a server that is not stopped uses the policy is
//     CloudSigma's refusal (FAILED_PRECONDITION).
//   Fields (the strict field contract, ProviderInfo::honoured_fields; the
//   server refuses any other set field with INVALID_ARGUMENT /
//   FIELD_UNSUPPORTED before the adapter runs):
//     CreateInstance does not honour location, firewalls, user_data,
//       billing_code (nor machine_type: see above), nor a network
//       interface's mac_address (CloudSigma's to give) or firewall:
//       refused. Attach the same. (A NIC's `firewall_policy` would carry a
//       firewall, but reading it back means a policy lookup in every
//       instance render; not done yet.)
//     CreateFirewall does not honour description or location (a policy has
//       neither); no rule honours *_address_ranges, *_firewalls or
//       *_networks (a policy's rule names its far end by one IP). Refused.
//       A rule's protocol icmp, an IPv6 range (::/0 included), more than one
//       range, or the near end's ranges are INVALID_ARGUMENT naming the
//       field.
//     CreateNetwork honours labels only (no id, name, ranges, gateway, DNS,
//       VLAN id or location can be chosen for a bought VLAN); ReserveAddress
//       labels only (no chosen address or network). UpdateNetwork takes
//       the mask `labels` only (a VLAN's meta is all that can change, §7).
//     RebootInstance does not honour force (CloudSigma's restart has no
//       hard variant): refused.
//     CreateVolume does not honour location (a drive is made where the
//       account's endpoint is): refused.
//   Lists fetch every page (limit/offset) and page for our API by name.
//   Names: see cloudsigma_wire.h; a chosen id is resolved by listing
//   `uuid,meta` of the collection (one extra request).
//
// Re-drive (how it finds its own work): after a crash or an ambiguous answer
// (a reset, a timeout, a 5xx, an unreadable answer: kit::IsAmbiguous) the
// runner calls a mutation again with the same CallContext::operation. Every
// create writes that operation into the new object's meta
// (`cloudplane_operation`, next to `cloudplane_id`), and CloudSigma keeps
// and lists meta, so:
//   CreateVolume, CloneVolume  list `/drives/detail/?fields=uuid,meta` before
//       the POST (FindExisting); a drive of this operation is adopted and
//       polled until settled, a drive with the chosen id but another
//       operation is ALREADY_EXISTS, and only when there is neither is the
//       create (or clone) POSTed.
//   CreateInstance  the same over `/servers/`; an adopted server converges:
//       started when it is stopped and `start` asks for it, else polled. A
//       start refused by CloudSigma deletes the new server; a start whose
//       answer is ambiguous leaves it for the re-drive to find. From an
//       image, before the clone: a drive of this operation (the clone) is
//       adopted; the poll token (BOOT_DRIVE_READY) carries the server still
//       to be made (not a VNC password the request did not choose), and
//       before the server POST the servers are searched for this operation
//       again, so neither the clone nor the server is made twice.
//   Attach/Detach read the server's drive list first and converge when the
//   drive is already (not) there; Update PUTs the whole edited object;
//   Start/Stop do nothing when the server is already in (or on the way to)
//   the state; so sending any of them again creates nothing. Restart and a
//   re-driven delete whose first request went through are the exceptions: a
//   second restart, and NOT_FOUND (unless allow_missing) for the delete.
//
// validate_only (CallContext): every mutation runs the checks above that
// need no request (names, ids, sizes, labels, update masks, attach devices
// and channels, provider_options) and answers at once; checks of the
// provider's state (a running server, an attached drive) need a request and
// so are not made.
//
// Watch: ProviderInfo.watch_source is WatchSource::kPush. One websocket per
// account (cloudsigma_feed.h); each frame about a drive or server becomes a
// CREATED/UPDATED event of the Volume/Instance, a 404 a DELETED; after a
// reconnect everything is published again. Delivery is at least once (the
// server also publishes operation results). PushConnected() is true while
// the websocket is open; while it is not, the server's observer
// (service/observer.h) lists instances and volumes every
// observe_interval_seconds instead (images and locations are not observed);
// with it open they are listed once, for the observer's baseline.
//
// Threading: callbacks run on the HTTP transport thread or the websocket
// thread; nothing blocks, and nothing here touches the server's store. A
// Provider is thread-safe and may be destroyed with requests in flight.
#ifndef CLOUDPLANE_ADAPTERS_CLOUDSIGMA_CLOUDSIGMA_ADAPTER_H_
#define CLOUDPLANE_ADAPTERS_CLOUDSIGMA_CLOUDSIGMA_ADAPTER_H_

#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "adapters/common/http/http_client.h"
#include "adapters/provider.h"

namespace cloudplane::adapters::cloudsigma {

// Builds the Provider of one CloudSigma account and, when setup.changes is
// set, starts its websocket feed. INVALID_ARGUMENT naming `endpoint`,
// `credentials` (a secret without ':') or `options.<key>`.
absl::StatusOr<std::unique_ptr<Provider>> CreateCloudSigmaProvider(
    const AccountSetup& setup, std::shared_ptr<http::HttpTransport> transport = nullptr);

// Registers kind "cloudsigma" (watch_source kPush) with
// CreateCloudSigmaProvider on the default transport. ALREADY_EXISTS when it is
// registered already.
absl::Status RegisterCloudSigma(AdapterRegistry& registry);

}  // namespace cloudplane::adapters::cloudsigma

#endif  // CLOUDPLANE_ADAPTERS_CLOUDSIGMA_CLOUDSIGMA_ADAPTER_H_
