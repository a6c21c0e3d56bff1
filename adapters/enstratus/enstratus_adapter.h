// The enStratus / Dell Cloud Manager (DCM) adapter: instances (servers),
// firewalls and rules, locations (regions and data centers), machine images,
// machine types (server products), billing codes, volumes, networks, and DCM
// jobs as read-only provider operations. No key pairs: DCM's API has no
// key-pair resource (mixcoatl has none; a launch only names the provider's
// key pair, `keypair`, and DCM does not keep it), so the ComputeService
// key-pair methods stay UNIMPLEMENTED.
//
// Provider API: DCM REST API, version taken from the endpoint's last path
//   segment (`/api/enstratus/2015-05-25`; mixcoatl 1.5.1's era, DCM 10/11).
// Protocol:     REST/JSON over HTTP(S) through adapters/common/http.
// Auth:         every request is signed: x-esauth-access (access key),
//   x-esauth-timestamp (ms), x-esauth-signature = base64 HMAC-SHA256 of
//   `access:METHOD:basepath/path:timestamp:User-Agent` with the secret key
//   (OpenSSL libcrypto). AccountSetup::secret is "ACCESS_KEY:SECRET_KEY".
//   Neither key is ever logged or put into a status.
// Reference:    the enStratus / DCM REST API as published with enStratus'
//   own client library mixcoatl 1.5.1 (https://github.com/enStratus/mixcoatl,
//   https://pypi.org/project/mixcoatl/; the console guide was at
//   http://docs.enstratus.com). Sections cited as §N are listed in
//   enstratus_wire.h, where translation and signing live.
//
// Configuration (AccountConfig):
//   endpoint  `https://host/api/enstratus/<version>`; without a path the
//             default `/api/enstratus/2015-05-25` is used.
//   options   `budget`: the billingCodeId charged for firewalls and
//             networks, and for instances that name no billing_code. No other option exists
//             (INVALID_ARGUMENT naming `options.<key>`).
//
// Names: DCM assigns integer ids. A resource is named by its DCM id
// (`accounts/a/instances/339452`), except instances, firewalls and volumes
// created through cloudplane with a caller-chosen id (`instance_id`,
// `firewall_id`, `volume_id`, `[a-z][a-z0-9-]{0,62}`): that id is kept as an
// alias in the account's ScratchStore (collections `enstratus-instances`,
// `enstratus-firewalls`, `enstratus-volumes`; enstratus_aliases.h) and used
// in every name of the resource until it is deleted. Networks are always
// named by their DCM networkId (no caller-chosen id). Locations are
// `region-<regionId>` and `dc-<dataCenterId>`; machine types are DCM
// productIds; rules are `.../firewalls/<fw>/rules/<firewallRuleId>`.
//
// Jobs as Operations: a DCM call answered 202 `{"jobs":[{jobId...}]}` makes
// the first MutationProgress carry provider_operation = the job id and a
// poll token, a packed JobToken (enstratus_tokens.proto) in phase JOB;
// PollOperation follows `admin/Job/<jobId>`: RUNNING keeps polling; ERROR
// fails the Operation with UNKNOWN, reason PROVIDER_JOB_FAILED and DCM's
// message; COMPLETE of a launch takes the new serverId from the job's
// `message` and then waits (phase CONVERGE) for the server to be RUNNING,
// whose Instance is the response; a volume create likewise takes the
// volumeId and waits for AVAILABLE (enstratus_jobs.h).
//
// Re-drive (how it finds its own work): after a crash or an ambiguous answer
// (a reset, a timeout, a 5xx, a 202 whose body was lost: kit::IsAmbiguous)
// the runner calls a mutation again with the same CallContext::operation.
// DCM has no idempotency key, so (enstratus_jobs.h, StartCreate):
//   CreateInstance, CreateVolume, CreateFirewall, CreateNetwork  end the
//       description they
//       send with " [cloudplane <operation>]" (DCM keeps and lists it;
//       Firewall.description and a network's provider_details are read
//       without it) and write a create mark for
//       the operation in the ScratchStore (collection "enstratus-creates"),
//       durable before the POST. A re-drive resumes the job or DCM id that
//       the alias record or the mark holds; when neither holds one (the
//       crash or the lost answer fell between the POST and the job id being
//       saved) it reads DCM's jobs, then the servers / volumes / firewalls:
//       the one whose description carries the operation is adopted (the
//       alias gets its id, the create converges on it); while a job that is
//       not finished names the resource's name ("Launch Server <name>") it
//       answers UNAVAILABLE (RESOURCE_NOT_READY) and is called again; only
//       when there is neither is the POST sent again. A refusal (4xx) drops
//       the mark and frees the alias, an ambiguous answer keeps both; the
//       mark goes at the operation's first poll. Without an operation (no
//       runner) nothing is marked or looked for.
//   CreateFirewallRule  DCM keeps no tag on a rule: the firewall's rules are
//       read first, and a rule equal to the one asked for (direction,
//       permission, protocol, ports, far end) is answered instead of a second
//       one. (A rule DCM creates as a job that is still running is not
//       seen; the emulator, like mixcoatl's examples, creates rules at once.)
//   Attach/DetachVolume read the volume first: attached to that server
//   already is done at once. A re-driven attach whose first PUT still runs
//   as a job sends the PUT again (DCM's volume shows no server until the
//   job ends); both jobs attach the same way. Start/Stop and deletes
//   re-driven after the first request went through get DCM's refusal (409
//   while the first job runs: FAILED_PRECONDITION) or, for a delete whose
//   resource is gone, NOT_FOUND unless allow_missing; nothing is duplicated.
//
// Provider operations: every DCM job of the account, whoever started it, is
// a read-only Operation `accounts/{account}/providerOperations/{jobId}`
// (ListProviderOperations over `GET admin/Job`, paged here by job id since
// DCM returns them all; GetProviderOperation over `GET admin/Job/<id>`,
// NOT_FOUND for an unknown or non-numeric id). Mapping: JobToOperation in
// enstratus_wire.h (done on COMPLETE/ERROR, ERROR -> error UNKNOWN with the
// job's message and reason PROVIDER_JOB_FAILED, no response; the job's
// message, e.g. a new resource id, is in metadata.status_detail).
//
// Methods:
//   ComputeService: ListInstances, GetInstance, CreateInstance (launch),
//     DeleteInstance (terminate), StartInstance, StopInstance (DCM
//     start/stop actions), ListImages/GetImage, ListMachineTypes/
//     GetMachineType (products of every region), ListLocations/GetLocation.
//     No reboot, metadata, hosts or update: DCM's API has none of them.
//   FirewallsService: all eight methods. Firewall.rules is not filled on
//     reads (use ListFirewallRules) and must be empty on create. A rule's
//     far end is one CIDR (type CIDR) or one firewall (type GLOBAL, by DCM
//     id: *_firewalls, named by alias or id); a VLAN or VM end is read into
//     the description only, never as anywhere.
//   BillingService: both.
//   VolumesService: List, Get, Create (addVolume job; size a positive whole
//     number of GiB, location a data center `dc-<id>`, one label `label`,
//     provider_options `description` and `budget` (a billingCodeId, else the
//     account option; FAILED_PRECONDITION when neither), Delete (a job; DCM
//     refuses an attached volume: FAILED_PRECONDITION), Attach/Detach (PUT
//     attach/detach, jobs; `device` is DCM's deviceId, `channel` and
//     `boot_order` are refused). The volume is read first: DCM's detach
//     names no server, so a volume not attached to `instance` is
//     FAILED_PRECONDITION; an attach to the server that holds it already is
//     done at once, to another server FAILED_PRECONDITION. The response is
//     the Volume once ATTACHED / AVAILABLE. No clone or update.
//   NetworksService: ListNetworks (`GET network/Network?activeOnly=false`,
//     so networks not yet ACTIVE are listed too), GetNetwork, CreateNetwork
//     (addNetwork, a job whose message is the networkId; the response is
//     the network read after it), DeleteNetwork (`DELETE
//     network/Network/<id>?reason=`, a job or 204). Mapping (ParseNetworks):
//     networkAddress <-> the one entry of cidr_ranges (an IPv4 CIDR without
//     host bits), region <-> location `region-<id>` (a data center is
//     refused: addNetwork takes a region), label <-> labels["label"],
//     dnsServers <-> dns_servers, name <-> display_name (also sent as the
//     description DCM requires; the message has no description field),
//     status ACTIVE/PENDING/DELETING|REMOVING/ERROR -> READY/PENDING/
//     DELETING/ERROR, the raw record in provider_details. The budget is the
//     account option (without it CreateNetwork is not supported, like
//     CreateFirewall). No update, addresses or subnets (DCM's network/Subnet
//     is not in mixcoatl).
//   Instances on a network: CreateInstance takes at most one
//     network_interfaces entry whose only field is `network`
//     (`accounts/{a}/networks/{networkId}`), sent in the launch as
//     `"network":{"networkId":N}` (mixcoatl's Server.network). Whether the
//     network exists, and is in the data center's region, is DCM's to say
//     (its 400 is INVALID_ARGUMENT). Reads: a server's `network` is its one
//     interface, with only `network` set; DCM does not say which of the
//     server's addresses is on it (they stay in ip_addresses), nor any MAC,
//     model or interface id. No Attach/DetachNetworkInterface (DCM has no
//     such action). Subnets: cloudplane has no Subnet resource, so a
//     launch never sends mixcoatl's `subnet`; a server's `subnet`, and the
//     deprecated `vlan` (not known to be a networkId), stay in
//     provider_details only.
// Fields (the strict field contract, ProviderInfo::honoured_fields; the
// server refuses any other set field with INVALID_ARGUMENT /
// FIELD_UNSUPPORTED before the adapter runs):
//   CreateInstance does not honour cpu_count, cpu_mhz, memory_bytes (the
//     machine_type, a DCM product, sizes a server), nor an interface's
//     address, mac_address, model or firewall (a launch names only the
//     network): refused, the interface fields by the server as
//     `instance.network_interfaces.address` etc. The adapter refuses them
//     too, as `instance.network_interfaces[0].address`, and a second
//     interface as `instance.network_interfaces[1]`.
//   StopInstance does not honour force (DCM's stop has no hard variant):
//     refused.
//   CreateFirewallRule does not honour rule.description (DCM takes it as
//     the request's reason and does not keep it on the rule) nor address
//     ranges or networks as ends: refused.
//   CreateFirewall and CreateNetwork honour none without the account option
//     `budget` (they are not supported then).
//   CreateNetwork does not honour network_id (networks are named by DCM
//     id), address_ranges, gateway or vlan_id (addNetwork has none of
//     them): refused.
// Errors: DCM's `{"error":{"message"}}` with its HTTP status mapped as in
// enstratus_wire.cc (401/403 UNAUTHENTICATED, 404 NOT_FOUND, 400
// INVALID_ARGUMENT, 409 FAILED_PRECONDITION, 5xx UNAVAILABLE). Refusals of
// the first request of a mutation fail the RPC itself.
//
// validate_only (CallContext): every mutation runs its local checks (names,
// sizes, labels, options, aliases known in memory) and answers a finished
// progress before any request to DCM or any write of an alias.
//
// Thread-safety: a Provider made here is thread-safe; requests in flight keep
// what they need alive. Aliases are read from the ScratchStore's memory and
// written there at once, also in HTTP completions; the ScratchStore makes
// the durable write on AccountSetup::loop, so no transport thread waits on
// the database.
//
// Watch: watch_source kPoll. The server's observer (service/observer.h)
// lists the account's instances, volumes and firewalls (those this account
// supports) every observe_interval_seconds, one list each per round;
// machine images, products and data centers are not observed.
#ifndef CLOUDPLANE_ADAPTERS_ENSTRATUS_ENSTRATUS_ADAPTER_H_
#define CLOUDPLANE_ADAPTERS_ENSTRATUS_ENSTRATUS_ADAPTER_H_

#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "adapters/provider.h"

namespace cloudplane::http {
class HttpTransport;
}

namespace cloudplane::adapters::enstratus {

// Registers kind "enstratus" with CreateEnstratusProvider on the
// process-wide transport. ALREADY_EXISTS when registered already.
absl::Status RegisterEnstratus(AdapterRegistry& registry);

// Builds the Provider of one DCM account and loads its aliases from
// `setup.scratch` (a read of the database: call it off the transport
// threads). INVALID_ARGUMENT naming `endpoint`, `credentials` or
// `options.<key>` for an unusable setup; FAILED_PRECONDITION when
// `setup.scratch` or `setup.loop` is missing; the ScratchStore's errors when
// the aliases cannot be loaded. `transport`: the HTTP transport (nullptr:
// the process-wide default).
absl::StatusOr<std::unique_ptr<Provider>> CreateEnstratusProvider(
    const AccountSetup& setup, std::shared_ptr<http::HttpTransport> transport = nullptr);

// What RegisterEnstratus registers: kind "enstratus", the protocol, and the
// methods listed above.
ProviderInfo EnstratusProviderInfo();

}  // namespace cloudplane::adapters::enstratus

#endif  // CLOUDPLANE_ADAPTERS_ENSTRATUS_ENSTRATUS_ADAPTER_H_
