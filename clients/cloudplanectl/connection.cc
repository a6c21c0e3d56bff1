#include "clients/cloudplanectl/connection.h"

#include <arpa/inet.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"
#include "grpcpp/support/client_interceptor.h"

namespace cloudplane::ctl {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::ostringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

// Every service the API has (proto/cloudplane/v1) and the Operations service;
// connection_test checks the list against the protos. The numbers are the
// gRPC retry design's (gRFC A6); maxAttempts above 5 is capped to 5 anyway.
constexpr absl::string_view kRetryServiceConfig = R"json({
  "methodConfig": [{
    "name": [
      {"service": "cloudplane.v1.AccountsService"},
      {"service": "cloudplane.v1.AuditService"},
      {"service": "cloudplane.v1.AutoscalingService"},
      {"service": "cloudplane.v1.BillingService"},
      {"service": "cloudplane.v1.NetworksService"},
      {"service": "cloudplane.v1.ComputeService"},
      {"service": "cloudplane.v1.FirewallsService"},
      {"service": "cloudplane.v1.UnitsService"},
      {"service": "cloudplane.v1.VolumesService"},
      {"service": "cloudplane.v1.WatchService"},
      {"service": "google.longrunning.Operations"}
    ],
    "retryPolicy": {
      "maxAttempts": 5,
      "initialBackoff": "0.2s",
      "maxBackoff": "5s",
      "backoffMultiplier": 2,
      "retryableStatusCodes": ["UNAVAILABLE"]
    }
  }]
})json";

std::chrono::system_clock::time_point Deadline(absl::Duration d) {
  return absl::ToChronoTime(absl::Now() + d);
}

// Adds `authorization: Bearer <token>` to the initial metadata of every call.
// An interceptor rather than grpc::AccessTokenCredentials: call credentials
// are only sent on channels with transport security, and a plaintext
// loopback channel (tools/run) must carry the token too. MakeChannel decides
// where a token may go.
class BearerTokenInterceptor final : public grpc::experimental::Interceptor {
 public:
  explicit BearerTokenInterceptor(const std::string* value) : value_(value) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      methods->GetSendInitialMetadata()->emplace("authorization", *value_);
    }
    methods->Proceed();
  }

 private:
  const std::string* value_;  // owned by the factory, which the channel keeps
};

class BearerTokenInterceptorFactory final
    : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  explicit BearerTokenInterceptorFactory(absl::string_view token)
      : value_(absl::StrCat("Bearer ", token)) {}

  grpc::experimental::Interceptor* CreateClientInterceptor(
      grpc::experimental::ClientRpcInfo*) override {
    return new BearerTokenInterceptor(&value_);
  }

 private:
  const std::string value_;
};

// A token is one header value: visible ASCII, no spaces (RFC 6750 b64token
// is narrower still; the server judges the rest).
bool IsValidToken(absl::string_view token) {
  if (token.empty()) return false;
  return std::all_of(token.begin(), token.end(),
                     [](char c) { return c > 0x20 && c < 0x7f; });
}

bool IsLoopbackHost(absl::string_view host) {
  if (absl::EqualsIgnoreCase(host, "localhost")) return true;
  const std::string h(host);
  in_addr v4;
  if (inet_pton(AF_INET, h.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6;
  if (inet_pton(AF_INET6, h.c_str(), &v6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
    // ::ffff:127.x.y.z, the IPv4-mapped form.
    return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
  }
  return false;
}

// The host of "host", "host:port", "[v6]" or "[v6]:port"; a bare IPv6
// address (more than one colon, no brackets) is all host.
absl::string_view HostOf(absl::string_view address) {
  if (absl::StartsWith(address, "[")) {
    size_t close = address.find(']');
    return close == absl::string_view::npos ? address : address.substr(1, close - 1);
  }
  if (std::count(address.begin(), address.end(), ':') > 1) return address;
  return address.substr(0, address.find(':'));
}

}  // namespace

bool IsLoopbackTarget(absl::string_view target) {
  if (absl::StartsWith(target, "unix:") || absl::StartsWith(target, "unix-abstract:")) {
    return true;
  }
  if (absl::ConsumePrefix(&target, "ipv4:") || absl::ConsumePrefix(&target, "ipv6:")) {
    if (target.empty()) return false;
    for (absl::string_view address : absl::StrSplit(target, ',')) {
      if (!IsLoopbackHost(HostOf(address))) return false;
    }
    return true;
  }
  if (absl::ConsumePrefix(&target, "dns:")) {
    // dns:[//authority/]host[:port]
    if (absl::ConsumePrefix(&target, "//")) {
      size_t slash = target.find('/');
      if (slash == absl::string_view::npos) return false;
      target.remove_prefix(slash + 1);
    }
  } else if (absl::StrContains(target, "://") || absl::StartsWith(target, "xds:")) {
    return false;  // another resolver: it may go anywhere
  }
  return !target.empty() && IsLoopbackHost(HostOf(target));
}

absl::string_view RetryServiceConfig() { return kRetryServiceConfig; }

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const ConnectionOptions& options) {
  if (options.server.empty()) return absl::InvalidArgumentError("--server is empty");
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return absl::InvalidArgumentError("--tls_cert_file and --tls_key_file go together");
  }
  const bool tls = options.tls || !options.tls_ca_file.empty() || !options.tls_cert_file.empty();
  if (!options.token.empty()) {
    // The token itself never goes into a message.
    if (!IsValidToken(options.token)) {
      return absl::InvalidArgumentError(
          "the token (--token or $CLOUDPLANE_TOKEN) holds spaces or control characters");
    }
    if (!tls && !options.allow_plaintext_token && !IsLoopbackTarget(options.server)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "refusing to send the token in plaintext to ", options.server,
          ": use TLS (--tls or --tls_ca_file), or --allow_plaintext_token when the path is "
          "protected otherwise"));
    }
  }
  grpc::ChannelArguments args;
  args.SetServiceConfigJSON(std::string(kRetryServiceConfig));
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (!tls) {
    credentials = grpc::InsecureChannelCredentials();
  } else {
    grpc::SslCredentialsOptions ssl;
    if (!options.tls_ca_file.empty()) {
      absl::StatusOr<std::string> roots = ReadFile(options.tls_ca_file);
      if (!roots.ok()) return roots.status();
      ssl.pem_root_certs = *roots;
    }
    if (!options.tls_cert_file.empty()) {
      absl::StatusOr<std::string> cert = ReadFile(options.tls_cert_file);
      if (!cert.ok()) return cert.status();
      absl::StatusOr<std::string> key = ReadFile(options.tls_key_file);
      if (!key.ok()) return key.status();
      ssl.pem_cert_chain = *cert;
      ssl.pem_private_key = *key;
    }
    credentials = grpc::SslCredentials(ssl);
    if (!options.tls_server_name.empty()) {
      args.SetSslTargetNameOverride(options.tls_server_name);
    }
  }
  if (options.token.empty()) return grpc::CreateCustomChannel(options.server, credentials, args);
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(std::make_unique<BearerTokenInterceptorFactory>(options.token));
  return grpc::experimental::CreateCustomChannelWithInterceptors(options.server, credentials, args,
                                                                 std::move(interceptors));
}

grpc::Status WaitForOperation(
    google::longrunning::Operations::StubInterface& operations, absl::Duration call_timeout,
    absl::Duration timeout,
    const std::function<void(const google::longrunning::Operation&)>& progress,
    google::longrunning::Operation& op) {
  const absl::Time give_up = absl::Now() + timeout;
  while (!op.done()) {
    absl::Duration remaining = give_up - absl::Now();
    if (remaining <= absl::ZeroDuration()) {
      return grpc::Status(
          grpc::StatusCode::DEADLINE_EXCEEDED,
          absl::StrCat(op.name(), " is not done after ", absl::FormatDuration(timeout)));
    }
    // Short waits: the answer carries the operation's current status line.
    absl::Duration wait = std::min(remaining, absl::Seconds(1));
    google::longrunning::WaitOperationRequest request;
    request.set_name(op.name());
    request.mutable_timeout()->set_seconds(absl::ToInt64Seconds(wait));
    request.mutable_timeout()->set_nanos(static_cast<int32_t>(
        absl::ToInt64Nanoseconds(wait - absl::Seconds(absl::ToInt64Seconds(wait)))));
    grpc::ClientContext context;
    context.set_deadline(Deadline(wait + call_timeout));
    google::longrunning::Operation latest;
    grpc::Status status = operations.WaitOperation(&context, request, &latest);
    if (!status.ok()) return status;
    op = std::move(latest);
    if (!op.done() && progress) progress(op);
  }
  return grpc::Status::OK;
}

}  // namespace cloudplane::ctl
