#include "clients/cloudplanectl/connection.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"

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
      {"service": "cloudplane.v1.AutoscalingService"},
      {"service": "cloudplane.v1.BillingService"},
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

}  // namespace

absl::string_view RetryServiceConfig() { return kRetryServiceConfig; }

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const ConnectionOptions& options) {
  if (options.server.empty()) return absl::InvalidArgumentError("--server is empty");
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return absl::InvalidArgumentError("--tls_cert_file and --tls_key_file go together");
  }
  grpc::ChannelArguments args;
  args.SetServiceConfigJSON(std::string(kRetryServiceConfig));
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  const bool tls = options.tls || !options.tls_ca_file.empty() || !options.tls_cert_file.empty();
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
  return grpc::CreateCustomChannel(options.server, credentials, args);
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
