// The built-in `sandbox` provider: a simulated cloud inside cloudplaned, so
// the server is useful on a machine with no cloud at all.
//
// Provider API version: none (cloudplane's own simulation). Protocol:
// in-process calls. Auth: none; an account's `secret` is ignored. Reference:
// this header and adapters/sandbox/sandbox_provider.h.
//
// Every method of api_methods.inc is implemented. State lives in the
// server's store (AccountSetup::store), so it survives restarts. The catalog
// (images, machine types, locations, hosts, billing codes, fleet machines)
// is fixed; see sandbox_catalog.h.
//
// Behaviour, modelled on EC2/GCE and fleet:
//   * Timed transitions last `transition_ms` (option, default 1500):
//     instances PROVISIONING -> RUNNING (STOPPED when created with
//     start=false), STOPPING -> STOPPED, REBOOTING -> RUNNING,
//     TERMINATING -> gone; volumes CREATING -> AVAILABLE, RESIZING ->
//     AVAILABLE/ATTACHED, DELETING -> gone; units' current_state -> desired
//     state; scaling groups CREATING/RESIZING -> STABLE with `target_size`
//     InService instances, DELETING -> gone; networks PENDING -> READY,
//     DELETING -> gone. Reads apply due transitions at once; a timer on
//     AccountSetup::loop writes them.
//   * Every change the sandbox writes (a mutation's, a transition's) is
//     published after its commit on AccountSetup::changes, source "local":
//     CREATED, UPDATED, DELETED, in commit order.
//   * Mutations answer done at once when the work is instant (updates,
//     metadata, attach/detach, firewalls, launch templates, unit deletion,
//     forced stop), otherwise done=false with a poll token that
//     PollOperation answers. Repeating a mutation with the same
//     CallContext::operation changes nothing and reports the same work.
//   * Idempotent state changes succeed without work, as on EC2: starting a
//     RUNNING instance, stopping a STOPPED one. Changes that the state
//     forbids are FAILED_PRECONDITION (reboot a STOPPED instance, delete an
//     ATTACHED volume, attach to a PROVISIONING instance, delete a firewall
//     an instance uses or another firewall's rule names, delete a launch
//     template a group uses, launch a template unit, delete a network with
//     instances or reserved addresses on it or that a firewall rule names,
//     release an IN_USE address, attach a network interface to a
//     PROVISIONING instance).
//   * Firewall rules keep every end as given: CIDRs, address ranges,
//     firewalls and networks of the account (NOT_FOUND when absent; a rule
//     may name its own firewall). A rule must name its far end (the source
//     of an INGRESS rule, the destination of an EGRESS one); ends at the
//     near side are refused.
//   * Networks, addresses, key pairs (sandbox_networks.cc,
//     sandbox_addresses.cc, sandbox_keys.cc): one address space, so an
//     Address is named by its IP and networks overlap neither
//     each other nor the public pool 203.0.113.0/24 that addresses outside
//     a network come from. An instance's network interfaces take a given
//     address (free, or reserved) or the next free one of their network;
//     the Address then shows IN_USE with the instance until the interface is
//     detached or the instance deleted (back to RESERVED when it was
//     reserved, gone otherwise). Interface ids count up from "0" and are
//     never reused within an instance; MACs are 02:00:xx:xx:xx:xx unless
//     given; the model is virtio unless given (e1000, rtl8139). Key pairs
//     take OpenSSH ssh-ed25519, ssh-rsa and ecdsa-sha2-nistp256 keys;
//     their fingerprint is the SHA256 one `ssh-keygen -l` prints.
//   * Field contract (ProviderInfo::honoured_fields, sandbox_adapter.cc):
//     every field a mutation keeps or acts on is honoured. Not honoured, so
//     refused by the server with FIELD_UNSUPPORTED: CreateInstance
//     user_data (no machine to deliver it to; nothing is kept) and
//     provider_options (the sandbox reads no keys; also on
//     CreateVolume); CreateLaunchTemplate user_data (same reason);
//     RebootInstance force (a simulated reboot is the same either way);
//     UpdateInstance / UpdateVolume paths image, location, media
//     (immutable); UpdateNetwork location, address_ranges, cidr_ranges
//     (addresses may be in use). CreateInstance key_name must name a key
//     pair and is kept in the instance's record (INPUT_ONLY: never shown).
//   * A scaling group's instances are simulated inside the group (listed in
//     ScalingGroup.instances) and are not Instances of ListInstances.
//
// Thread-safety: every method may be called concurrently from any thread;
// each mutation is one store transaction. Callbacks run before the method
// returns (the sandbox does only local SQLite work).
#ifndef CLOUDPLANE_ADAPTERS_SANDBOX_SANDBOX_ADAPTER_H_
#define CLOUDPLANE_ADAPTERS_SANDBOX_SANDBOX_ADAPTER_H_

#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "adapters/provider.h"

namespace cloudplane::adapters::sandbox {

// kind "sandbox", display name "Built-in sandbox", protocol "in-process",
// watch_source "local", every adapter method supported.
ProviderInfo SandboxProviderInfo();

// Builds the sandbox Provider of one account.
//   INVALID_ARGUMENT     a non-empty endpoint; an unknown option (named);
//                        `transition_ms` not an integer in [0, 86400000].
//   FAILED_PRECONDITION  no store in `setup`.
//   Store errors (UNAVAILABLE, DATA_LOSS) while scheduling the transitions
//   left pending in the store.
// `setup.loop` and `setup.changes` may be null (no timers: transitions then
// show on reads only, and the operation journal is never pruned; no Watch
// changes). With a loop, journal entries older than
// `setup.operation_retention` whose operation is not unfinished are deleted
// in the background (sandbox_provider.h, "Journal retention").
absl::StatusOr<std::unique_ptr<Provider>> NewSandboxProvider(const AccountSetup& setup);

// Registers kind "sandbox" with NewSandboxProvider as its factory.
// ALREADY_EXISTS when it is registered already.
absl::Status RegisterSandbox(AdapterRegistry& registry);

}  // namespace cloudplane::adapters::sandbox

#endif  // CLOUDPLANE_ADAPTERS_SANDBOX_SANDBOX_ADAPTER_H_
