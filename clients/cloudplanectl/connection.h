// The channel to cloudplaned (plaintext or TLS, optionally with a client
// certificate and a bearer token) and waiting on a
// google.longrunning.Operation with progress reports.
#ifndef CLOUDPLANE_CLIENTS_CLOUDPLANECTL_CONNECTION_H_
#define CLOUDPLANE_CLIENTS_CLOUDPLANECTL_CONNECTION_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/longrunning/operations.grpc.pb.h"
#include "grpcpp/channel.h"
#include "grpcpp/support/status.h"

namespace cloudplane::ctl {

struct ConnectionOptions {
  std::string server;           // host:port or any gRPC target, e.g. unix:/run/cp.sock
  bool tls = false;             // TLS with the system's root certificates
  std::string tls_ca_file;      // PEM roots to trust instead; implies tls
  std::string tls_cert_file;    // PEM client certificate (mutual TLS); implies tls
  std::string tls_key_file;     // PEM key of tls_cert_file
  std::string tls_server_name;  // name to verify in the server's certificate
  // Bearer token (an API key or a JWT) sent as `authorization: Bearer
  // <token>` on every call. Never printed, not even in an error.
  std::string token;
  // Lets the token travel over a plaintext channel to a target that is not
  // loopback (see MakeChannel); for a TLS-terminating proxy on the path.
  bool allow_plaintext_token = false;
};

// True when `target` (a gRPC target as --server takes it) can only reach
// this machine: a unix socket (unix:, unix-abstract:), or a host that is
// `localhost`, 127.0.0.0/8 or ::1, optionally behind the dns:, ipv4: or ipv6:
// schemes (every address of an ipv4:/ipv6: list must be loopback). Anything
// else, including names that may resolve to loopback, is not.
bool IsLoopbackTarget(absl::string_view target);

// The gRPC service config of every channel MakeChannel makes: a call to any
// cloudplane.v1 service or google.longrunning.Operations that fails with
// UNAVAILABLE is retried by gRPC itself, at most 5 attempts in all, with
// exponential backoff (0.2 s doubling up to 5 s, full jitter), within the
// call's own deadline. A retry sends the same request bytes, so a mutation
// keeps its request_id and the server answers it with the first Operation
// instead of doing the work twice. clients/README.md gives the same config
// to every language.
absl::string_view RetryServiceConfig();

// A channel for `options`, with RetryServiceConfig() as its default service
// config. Nothing is sent until the first call. With a token, every call on
// the channel carries `authorization: Bearer <token>` (a client interceptor,
// so it works on plaintext loopback channels too, where gRPC's call
// credentials are not sent). Errors:
// INVALID_ARGUMENT when tls_cert_file and tls_key_file are not given together,
// server is empty, or the token is not a valid header value (whitespace or
// control characters inside; the message never contains the token);
// FAILED_PRECONDITION when a token would travel in plaintext to a target that
// is not loopback (IsLoopbackTarget) and allow_plaintext_token is false;
// NOT_FOUND when a PEM file cannot be read.
absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const ConnectionOptions& options);

// Calls WaitOperation until `op` is done or `timeout` has passed, asking the
// server to answer at least every second so that `progress` (if set) sees
// each step (it is called with the operation after every answer that is not
// done). Each call has `call_timeout` on top of its wait. On return `op` is
// the latest state. Returns the gRPC error of a failed call, or
// DEADLINE_EXCEEDED when `timeout` passed first (the operation goes on);
// an operation that finished with an error is OK here (see op.error()).
// Not thread-safe with respect to `op`.
grpc::Status WaitForOperation(
    google::longrunning::Operations::StubInterface& operations, absl::Duration call_timeout,
    absl::Duration timeout,
    const std::function<void(const google::longrunning::Operation&)>& progress,
    google::longrunning::Operation& op);

}  // namespace cloudplane::ctl

#endif  // CLOUDPLANE_CLIENTS_CLOUDPLANECTL_CONNECTION_H_
