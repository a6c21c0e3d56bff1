// The OpenNebula adapter: instances (VMs), their metadata (user template),
// hosts, images (VM templates), locations (zones, clusters, marketplaces) and
// firewalls (security groups) on an OpenNebula cloud.
//
// Provider API: oned 6.10 (5.10 and 5.12 documents are read too).
// Protocol:     XML-RPC over HTTP POST to `http://host:2633/RPC2`
//   (adapters/common/xmlrpc over adapters/common/http; object documents are
//   parsed with the hardened adapters/common/xml).
// Auth:         the session string `user:password` (or `user:token`) as the
//   first parameter of every call; it comes from the account's credentials
//   and is never logged or put in an error.
// Reference:    /work/shared/protocols/opennebula.md; translation lives in
//   opennebula_wire.h.
//
// Resource ids: an object is named by its NAME when that is a valid id
// ([a-z][a-z0-9-]{0,62}), else by its numeric id; both forms are accepted
// (all digits = object id; a name picks the lowest id with that NAME).
// Create with `instance_id` / `firewall_id` sets the NAME, refused with
// ALREADY_EXISTS when a live object has it, unless that object carries this
// operation's CLOUDPLANE_OPERATION tag (a re-driven create resumes it).
//
// Instances: Create = one.template.instantiate of `instance.image`
// (accounts/x/images/<template id>; start=false instantiates on hold);
// Start = resume (release for HOLD), Stop = poweroff (force: poweroff-hard),
// Reboot = reboot (force: reboot-hard), Delete = terminate-hard; each polls
// one.vm.info until the target state. Metadata = the USER_TEMPLATE's single
// attributes, written with one.vm.update (merge or replace).
//
// Thread-safety: a Provider made here is thread-safe; calls in flight keep
// what they need alive.
#ifndef CLOUDPLANE_ADAPTERS_OPENNEBULA_OPENNEBULA_ADAPTER_H_
#define CLOUDPLANE_ADAPTERS_OPENNEBULA_OPENNEBULA_ADAPTER_H_

#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "adapters/provider.h"

namespace cloudplane::http {
class HttpTransport;
}

namespace cloudplane::adapters::opennebula {

ProviderInfo OpenNebulaProviderInfo();

// `setup.endpoint` is the XML-RPC URL (`http://host:2633/RPC2`; a URL
// without a path gets /RPC2). `setup.secret` is `user:password`.
// INVALID_ARGUMENT naming `endpoint`, `credentials` (never echoing it) or
// `options.<name>` (no options are taken).
absl::StatusOr<std::unique_ptr<Provider>> CreateOpenNebulaProvider(
    const AccountSetup& setup, std::shared_ptr<http::HttpTransport> transport = nullptr);

// Registers kind "opennebula". ALREADY_EXISTS when registered already.
absl::Status RegisterOpenNebula(AdapterRegistry& registry);

}  // namespace cloudplane::adapters::opennebula

#endif  // CLOUDPLANE_ADAPTERS_OPENNEBULA_OPENNEBULA_ADAPTER_H_
