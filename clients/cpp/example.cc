// Walks through the cloudplane API with the generated C++ client: lists
// accounts, creates an instance in the sandbox account with a request_id,
// waits for the Operation, reads the instance, deletes it, and shows the
// ErrorInfo and BadRequest details of a call that fails.
//
//   bazel-bin/clients/cpp/example [address]   (default 127.0.0.1:7070)
//
// Credentials come from the environment (clients/README.md,
// "Authentication"): CLOUDPLANE_TOKEN is sent as `authorization: Bearer` on
// every call; CLOUDPLANE_CA (the server's CA), CLOUDPLANE_CERT and
// CLOUDPLANE_KEY (a client certificate) make the connection TLS. None set:
// plaintext, for a local server.
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cloudplane/v1/accounts.grpc.pb.h"
#include "cloudplane/v1/compute.grpc.pb.h"
#include "google/longrunning/operations.grpc.pb.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "grpcpp/grpcpp.h"

namespace {

using google::longrunning::Operation;

constexpr char kAccount[] = "accounts/sandbox";

// gRPC retries a call that fails with UNAVAILABLE (up to 5 attempts, backoff
// 0.2 s doubling to 5 s) and sends the same request again, request_id and all
// (clients/README.md, "Retries").
constexpr char kServiceConfig[] = R"json({
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

const char* CodeName(grpc::StatusCode code) {
  static constexpr const char* kCodeNames[] = {"OK",
                                               "CANCELLED",
                                               "UNKNOWN",
                                               "INVALID_ARGUMENT",
                                               "DEADLINE_EXCEEDED",
                                               "NOT_FOUND",
                                               "ALREADY_EXISTS",
                                               "PERMISSION_DENIED",
                                               "RESOURCE_EXHAUSTED",
                                               "FAILED_PRECONDITION",
                                               "ABORTED",
                                               "OUT_OF_RANGE",
                                               "UNIMPLEMENTED",
                                               "INTERNAL",
                                               "UNAVAILABLE",
                                               "DATA_LOSS",
                                               "UNAUTHENTICATED"};
  return code >= 0 && code <= 16 ? kCodeNames[code] : "UNKNOWN";
}

[[noreturn]] void Fail(const std::string& what, const grpc::Status& status) {
  std::cerr << what << ": " << CodeName(status.error_code()) << ": " << status.error_message()
            << "\n";
  std::exit(1);
}

std::string Env(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : "";
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::cerr << "cannot read " << path << "\n";
    std::exit(1);
  }
  std::ostringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

// TLS when CLOUDPLANE_CA, CLOUDPLANE_CERT or CLOUDPLANE_KEY is set (the
// system's roots when CLOUDPLANE_CA is not), with the client certificate when
// CLOUDPLANE_CERT and CLOUDPLANE_KEY are; else plaintext.
std::shared_ptr<grpc::ChannelCredentials> ChannelCredentials() {
  const std::string ca = Env("CLOUDPLANE_CA");
  const std::string cert = Env("CLOUDPLANE_CERT");
  const std::string key = Env("CLOUDPLANE_KEY");
  if (ca.empty() && cert.empty() && key.empty()) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions ssl;
  if (!ca.empty()) ssl.pem_root_certs = ReadFile(ca);
  if (!cert.empty()) ssl.pem_cert_chain = ReadFile(cert);
  if (!key.empty()) ssl.pem_private_key = ReadFile(key);
  return grpc::SslCredentials(ssl);
}

std::string NewRequestId() {
  absl::BitGen gen;
  return absl::StrFormat("%016x%016x", absl::Uniform<uint64_t>(gen), absl::Uniform<uint64_t>(gen));
}

// Every call gets its own context with a deadline and, with
// CLOUDPLANE_TOKEN set, the token. (Per-call metadata rather than
// grpc::AccessTokenCredentials: those are sent only over TLS, and a local
// plaintext server may want a token too.)
std::unique_ptr<grpc::ClientContext> Context() {
  static const std::string* const token = new std::string(Env("CLOUDPLANE_TOKEN"));
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  if (!token->empty()) context->AddMetadata("authorization", "Bearer " + *token);
  return context;
}

// WaitOperation until the operation is done; a failed operation is fatal.
Operation Wait(google::longrunning::Operations::Stub& operations, Operation op) {
  while (!op.done()) {
    google::longrunning::WaitOperationRequest request;
    request.set_name(op.name());
    request.mutable_timeout()->set_seconds(10);
    grpc::Status status = operations.WaitOperation(Context().get(), request, &op);
    if (!status.ok()) Fail("WaitOperation", status);
  }
  if (op.has_error()) {
    std::cerr << op.name() << " failed: " << op.error().message() << "\n";
    std::exit(1);
  }
  return op;
}

// The google.rpc.Status of a failed call arrives serialized in
// error_details(); its details are Any messages.
void PrintError(const grpc::Status& status) {
  std::cout << "error: " << CodeName(status.error_code()) << ": " << status.error_message()
            << "\n";
  google::rpc::Status rpc_status;
  if (!rpc_status.ParseFromString(status.error_details())) return;
  for (const google::protobuf::Any& detail : rpc_status.details()) {
    google::rpc::ErrorInfo info;
    google::rpc::BadRequest bad_request;
    if (detail.UnpackTo(&info)) {
      std::cout << "reason: " << info.reason() << " (domain " << info.domain() << ")\n";
    } else if (detail.UnpackTo(&bad_request)) {
      for (const auto& v : bad_request.field_violations()) {
        std::cout << "field violation: " << v.field() << ": " << v.description() << "\n";
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  const std::string address = argc > 1 ? argv[1] : "127.0.0.1:7070";
  grpc::ChannelArguments args;
  args.SetServiceConfigJSON(kServiceConfig);
  auto channel = grpc::CreateCustomChannel(address, ChannelCredentials(), args);
  auto accounts = cloudplane::v1::AccountsService::NewStub(channel);
  auto compute = cloudplane::v1::ComputeService::NewStub(channel);
  auto operations = google::longrunning::Operations::NewStub(channel);

  cloudplane::v1::ListAccountsResponse list;
  grpc::Status status = accounts->ListAccounts(Context().get(), {}, &list);
  if (!status.ok()) Fail("ListAccounts", status);
  for (const auto& a : list.accounts()) {
    std::cout << "account: " << a.name() << " (" << a.provider() << ", "
              << cloudplane::v1::Account::State_Name(a.state()) << ")\n";
  }

  // A request_id makes the call safe to retry: the same id returns the same
  // Operation instead of creating a second instance.
  cloudplane::v1::CreateInstanceRequest create;
  create.set_parent(kAccount);
  create.set_instance_id("cpp-example");
  create.set_request_id(NewRequestId());
  create.mutable_instance()->set_image(absl::StrCat(kAccount, "/images/debian-12"));
  create.mutable_instance()->set_machine_type(absl::StrCat(kAccount, "/machineTypes/small"));
  Operation op;
  status = compute->CreateInstance(Context().get(), create, &op);
  if (!status.ok()) Fail("CreateInstance", status);
  std::cout << "create: " << op.name() << "\n";
  op = Wait(*operations, op);
  cloudplane::v1::Instance created;
  op.response().UnpackTo(&created);
  std::cout << "created: " << created.name() << " "
            << cloudplane::v1::Instance::State_Name(created.state()) << "\n";

  cloudplane::v1::GetInstanceRequest get;
  get.set_name(created.name());
  cloudplane::v1::Instance instance;
  status = compute->GetInstance(Context().get(), get, &instance);
  if (!status.ok()) Fail("GetInstance", status);
  std::cout << "get: " << instance.name() << " "
            << cloudplane::v1::Instance::State_Name(instance.state())
            << " machine_type=" << instance.machine_type() << "\n";

  cloudplane::v1::DeleteInstanceRequest remove;
  remove.set_name(instance.name());
  remove.set_request_id(NewRequestId());
  status = compute->DeleteInstance(Context().get(), remove, &op);
  if (!status.ok()) Fail("DeleteInstance", status);
  Wait(*operations, op);
  std::cout << "deleted: " << instance.name() << "\n";

  // A malformed machine type: the server answers INVALID_ARGUMENT with an
  // ErrorInfo (the reason) and a BadRequest (which field, and why).
  cloudplane::v1::CreateInstanceRequest bad;
  bad.set_parent(kAccount);
  bad.mutable_instance()->set_image(absl::StrCat(kAccount, "/images/debian-12"));
  bad.mutable_instance()->set_machine_type("small");
  status = compute->CreateInstance(Context().get(), bad, &op);
  if (status.ok()) {
    std::cerr << "expected INVALID_ARGUMENT\n";
    return 1;
  }
  PrintError(status);
  return 0;
}
