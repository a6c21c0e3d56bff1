// The Nimbus Phantom adapter: AutoscalingService (and sites as locations)
// on Phantom, or on standard AWS Auto Scaling, with the same code.
//
// Provider API: Phantom's AWS Auto Scaling-compatible query API (pyhantom,
//   Action=...&Version=2011-01-01, XML answers) and its REST "dev" API
//   (/api/dev, JSON) for sites; or AWS Auto Scaling 2011-01-01 itself.
// Protocol:     HTTP/1.1 (https in production). Query API: describes are GET
//   with the sorted canonical query, mutations POST with the same string as
//   form body, as boto 2 sends them (AWS dialect: POST throughout).
// Auth:         query API: AWS SigV4 (adapters/common/aws). In the phantom
//   dialect the host is signed without its port and the Authorization parts
//   are separated by "," only (pyhantom's signature check). REST API: POST
//   /token with username and password, then HTTP Basic `<user id>:<token>`;
//   an HTTP 200 `success:false` is an auth failure; a 403 on a call
//   re-acquires the token once (it expires after days).
// Reference:    Phantom REST API:
//     http://www.nimbusproject.org/doc/phantom/latest/api.html
//   Phantom's `<launch configuration>@<cloud>` naming:
//     http://www.nimbusproject.org/doc/phantom/latest/protocol.html
//   Amazon EC2 Auto Scaling API Reference (the actions Phantom implements):
//     https://docs.aws.amazon.com/autoscaling/ec2/APIReference/Welcome.html
//   AWS Signature Version 4:
//     https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv.html
//   Where Phantom departs from these, the code follows its sources
//   (github.com/nimbusproject/Phantom pyhantom/, and
//   github.com/nimbusproject/PhantomWebApp phantomweb/api/) and says so at
//   the line that copes. Translation lives in phantom_wire.h.
//
// Account configuration:
//   endpoint  the query API, e.g. https://svc.uc.futuregrid.org:8445 (or an
//             AWS Auto Scaling endpoint / moto).
//   secret    one line `ACCESS_KEY:SECRET_KEY` for the query API, and for
//             the REST API a second line `USERNAME:PASSWORD` (phantom
//             dialect, needed only for locations). Never logged.
//   options   dialect           "phantom" (default) or "aws": the answer
//                               shapes, error format and Phantom semantics.
//             region, service   the SigV4 scope; defaults: aws ->
//                               us-east-1/autoscaling; phantom -> boto 2's
//                               rule from the host name.
//             rest_endpoint     the REST API base, e.g.
//                               https://phantom.nimbusproject.org/api/dev.
//             default_location  the site (phantom) or zone (aws) used when a
//                               template or group names none.
//             max_records       MaxRecords per describe page (1..100,
//                               default 50).
//   Any other option is INVALID_ARGUMENT naming `options.<key>`.
//
// Methods: List/Get/Create/DeleteLaunchTemplate, List/Get/Create/Resize/
// DeleteScalingGroup; ListLocations/GetLocation (phantom dialect with the
// REST API; FAILED_PRECONDITION otherwise). Lists follow NextToken through
// every page, then page for our API (adapters/common/kit/lists.h). Creates
// check first that the name is free (ALREADY_EXISTS): moto and Phantom do
// not always refuse a duplicate themselves; a multi-site template whose
// second launch configuration fails is rolled back. Group creates and
// resizes finish when the group has target_size running, healthy
// instances, polled with a typed token (phantom_tokens.proto); Phantom
// resizes with SetDesiredCapacity (min = max = n), AWS with
// SetDesiredCapacity, or UpdateAutoScalingGroup when n is outside [min,
// max]. Deletes check existence first (NOT_FOUND unless allow_missing); a
// template still used by a group is FAILED_PRECONDITION.
// provider_details keeps what the typed messages have no place for
// (phantom_wire.h): a template's launch configurations one by one (site,
// ARN, created time, image, type, key, kernel, ramdisk, security groups,
// monitoring, the user data's SHA-256, never the data); a group's ARN,
// created time, cooldown and health-check settings, zones, load balancers,
// policy tags and each instance's own fields (its whole health text).
// Field contract (ProviderInfo::honoured_fields, per dialect: see
// PhantomProvider::HonouredFields). Not honoured, so refused by the server:
//   CreateLaunchTemplate, phantom dialect: key_name (Phantom launches with
//       the key registered for the site and reports "phantomkey"; pyhantom
//       system/epu/epu_client.py).
//   CreateLaunchTemplate, aws dialect: locations (an AWS launch
//       configuration has no per-location settings).
//   CreateScalingGroup min_size / max_size are honoured; in the phantom
//   dialect only equal to target_size (Phantom keeps min = max = N; other
//   values are INVALID_ARGUMENT).
// With CallContext::validate_only, mutations run their local checks (ids,
// sizes, sites) and finish without any request. The call's deadline goes
// on every request; the transport refuses one already past
// (DEADLINE_EXCEEDED naming the action, nothing sent).
// Re-drive (how it finds its own work): the runner calls a create again with
// the same CallContext::operation after a crash or an ambiguous answer (a
// reset, a timeout, a 5xx, an unreadable answer: kit::IsAmbiguous). Before it
// asks the provider, a create marks its id as the operation's in the
// account's ScratchStore (collection "phantom.creates", `lt/<id>` or
// `sg/<id>` -> operation name) and waits until the mark is durable; a create
// is then found by its name, and the mark tells whose it is.
//   CreateLaunchTemplate  launch configurations `<id>@<site>` that exist and
//       are marked by this operation are kept; only the missing ones are
//       created (the same name marked by another operation, or unmarked, is
//       ALREADY_EXISTS). After an ambiguous failure nothing is rolled back
//       and the mark stays; only a refusal rolls back what the call made.
//   CreateScalingGroup    a group of that name marked by this operation is
//       adopted and polled; CreateAutoScalingGroup is not sent again. The mark
//       is removed only when the provider refused the create.
//   ResizeScalingGroup sets an absolute size: sending it again is harmless.
//   A re-driven delete whose first request went through finds nothing left:
//   NOT_FOUND unless allow_missing (nothing is duplicated).
//
// Watch: watch_source kPoll. The server's observer (service/observer.h)
// lists launch templates and scaling groups every observe_interval_seconds,
// one list each per round (DescribeLaunchConfigurations /
// DescribeAutoScalingGroups, every page); locations are not observed.
//
// Thread-safety: a Provider made here is thread-safe; requests in flight
// keep what they need alive.
#ifndef CLOUDPLANE_ADAPTERS_PHANTOM_PHANTOM_ADAPTER_H_
#define CLOUDPLANE_ADAPTERS_PHANTOM_PHANTOM_ADAPTER_H_

#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "adapters/common/http/http_client.h"
#include "adapters/provider.h"

namespace cloudplane::adapters::phantom {

// kind "phantom" and its supported methods.
ProviderInfo PhantomProviderInfo();

// Builds the Provider of one account (see the configuration above).
// INVALID_ARGUMENT naming `endpoint`, `secret` (without repeating it) or
// `options.<key>`; the ScratchStore's error when setup.scratch cannot load
// the marks. `transport` nullptr: the process-wide HTTP transport.
absl::StatusOr<std::unique_ptr<Provider>> CreatePhantomProvider(
    const AccountSetup& setup, std::shared_ptr<http::HttpTransport> transport = nullptr);

// Registers kind "phantom". ALREADY_EXISTS when registered already.
absl::Status RegisterPhantom(AdapterRegistry& registry);

}  // namespace cloudplane::adapters::phantom

#endif  // CLOUDPLANE_ADAPTERS_PHANTOM_PHANTOM_ADAPTER_H_
