#include "clients/cloudplanectl/commands.h"

#include <cstdlib>
#include <map>
#include <memory>
#include <set>
#include <utility>

#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cloudplane/v1/accounts.grpc.pb.h"
#include "cloudplane/v1/common.pb.h"
#include "cloudplane/v1/compute.grpc.pb.h"
#include "cloudplane/v1/volumes.grpc.pb.h"
#include "cloudplane/v1/watch.grpc.pb.h"
#include "google/longrunning/operations.grpc.pb.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "grpcpp/grpcpp.h"
#include "clients/cloudplanectl/connection.h"
#include "clients/cloudplanectl/names.h"
#include "clients/cloudplanectl/output.h"

namespace {

std::string DefaultServer() {
  const char* env = std::getenv("CLOUDPLANE_SERVER");
  return env != nullptr && *env != '\0' ? env : "127.0.0.1:7070";
}

}  // namespace

// Global flags.
ABSL_FLAG(std::string, server, DefaultServer(),
          "cloudplaned address: host:port or a gRPC target such as unix:/path; "
          "$CLOUDPLANE_SERVER sets the default");
ABSL_FLAG(std::string, account, "sandbox",
          "account of short names: `web-1` means accounts/<account>/instances/web-1");
ABSL_FLAG(std::string, output, "table", "table (for people) or json (for scripts)");
ABSL_FLAG(absl::Duration, timeout, absl::Seconds(30), "deadline of each call");
ABSL_FLAG(bool, tls, false, "connect with TLS, trusting the system's root certificates");
ABSL_FLAG(std::string, tls_ca_file, "", "PEM root certificates to trust (implies --tls)");
ABSL_FLAG(std::string, tls_cert_file, "",
          "PEM client certificate for mutual TLS (implies --tls; needs --tls_key_file)");
ABSL_FLAG(std::string, tls_key_file, "", "PEM private key of --tls_cert_file");
ABSL_FLAG(std::string, tls_server_name, "",
          "name to expect in the server's certificate, when it differs from --server's host");
// No default from the environment here: --help prints defaults. Run() reads
// $CLOUDPLANE_TOKEN itself.
ABSL_FLAG(std::string, token, "",
          "bearer token (API key or JWT) sent as `authorization: Bearer` on every call; "
          "$CLOUDPLANE_TOKEN sets it when the flag is absent (prefer that: flags show in ps)");
ABSL_FLAG(bool, allow_plaintext_token, false,
          "send the token without TLS to a server that is not on loopback (only when something "
          "else protects the path)");

// Mutations.
ABSL_FLAG(std::string, request_id, "",
          "idempotency key: repeating a command with the same id returns the first Operation "
          "(default: a new random id, kept by gRPC's retries of the call)");
ABSL_FLAG(bool, validate_only, false, "only check the request; change nothing");
ABSL_FLAG(bool, async, false, "print the Operation and return instead of waiting for it");
ABSL_FLAG(absl::Duration, wait_timeout, absl::Minutes(10),
          "how long to wait for an Operation (exit 3 when it is not done by then)");
ABSL_FLAG(bool, quiet, false, "no progress line while waiting");

// instances / volumes.
ABSL_FLAG(std::string, image, "", "image id or name, e.g. debian-12");
ABSL_FLAG(std::string, machine_type, "", "machine type id or name, e.g. small");
ABSL_FLAG(std::string, display_name, "", "human-readable name");
ABSL_FLAG(std::string, location, "", "location id or name");
ABSL_FLAG(std::string, labels, "", "labels as key=value,key=value");
ABSL_FLAG(bool, start, true, "start the instance once created (--nostart to leave it stopped)");
ABSL_FLAG(bool, force, false, "stop without a graceful shutdown");
ABSL_FLAG(bool, allow_missing, false, "succeed when the resource does not exist");
ABSL_FLAG(std::string, size, "", "volume size, e.g. 10GiB or 512MiB");
ABSL_FLAG(std::string, instance, "", "instance id or name");
ABSL_FLAG(std::string, device, "", "device name inside the instance, e.g. vdb");

// Lists and streams.
ABSL_FLAG(std::string, filter, "",
          "operations filter (account=accounts/{id}, done=false); default: --account's");
ABSL_FLAG(std::string, kinds, "", "only these kinds, e.g. Instance,Volume,Operation");
ABSL_FLAG(int64_t, start_after, 0, "resume after this sequence number (0: from now on)");
ABSL_FLAG(int32_t, count, 0, "exit after this many changes (0: run until interrupted)");
ABSL_FLAG(int32_t, heartbeat_interval, 0,
          "seconds between heartbeats (0: the server's default); shown with --output json");

namespace cloudplane::ctl {
namespace {

using google::longrunning::Operation;
using google::protobuf::Any;
using google::protobuf::Message;

// One connection's stubs and the options every command shares.
class Session {
 public:
  Session(std::shared_ptr<grpc::Channel> channel, OutputFormat format, std::ostream& out,
          std::ostream& err, bool err_is_terminal, bool has_credentials)
      : accounts(v1::AccountsService::NewStub(channel)),
        compute(v1::ComputeService::NewStub(channel)),
        volumes(v1::VolumesService::NewStub(channel)),
        watch(v1::WatchService::NewStub(channel)),
        operations(google::longrunning::Operations::NewStub(channel)),
        format(format),
        out(out),
        err(err),
        err_is_terminal_(err_is_terminal),
        has_credentials_(has_credentials),
        account_(absl::GetFlag(FLAGS_account)),
        timeout_(absl::GetFlag(FLAGS_timeout)) {}

  // A context whose deadline is --timeout from now.
  std::unique_ptr<grpc::ClientContext> Context() const {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(absl::ToChronoTime(absl::Now() + timeout_));
    return context;
  }

  std::string Account() const { return AccountName(account_); }
  std::string Name(absl::string_view collection, absl::string_view id) const {
    return ResourceName(account_, collection, id);
  }

  // Prints the error of a failed call and returns its exit code.
  int Fail(const grpc::Status& status) {
    Print(RichStatus(status));
    const grpc::StatusCode code = status.error_code();
    if (code == grpc::StatusCode::UNAUTHENTICATED && format == OutputFormat::kTable) {
      err << (has_credentials_
                  ? "  hint: the server did not accept the token or client certificate given\n"
                  : "  hint: the server wants credentials: a token (--token or "
                    "$CLOUDPLANE_TOKEN) or a client certificate (--tls_cert_file, "
                    "--tls_key_file)\n");
    }
    return code == grpc::StatusCode::UNAVAILABLE || code == grpc::StatusCode::DEADLINE_EXCEEDED
               ? kExitUnavailable
               : kExitFailed;
  }

  // Prints the error of an Operation that finished with one. Whatever its
  // code, the server answered: kExitFailed.
  int FailedOperation(const google::rpc::Status& error) {
    Print(error);
    return kExitFailed;
  }

  // An error on `err`: JSON in JSON mode, else for people.
  void Print(const google::rpc::Status& status) {
    err << (format == OutputFormat::kJson ? ToJson(status) : FormatError(status));
  }

  // `json` in JSON mode, else the table.
  int Print(const Message& json, const Table& table) {
    out << (format == OutputFormat::kJson ? ToJson(json) : table.Render());
    return kExitOk;
  }

  // The tail of every mutation: the call's answer, then (unless --async) the
  // wait with a progress line, then the resource or the error.
  int Mutation(const grpc::Status& status, Operation op);

  std::unique_ptr<v1::AccountsService::Stub> accounts;
  std::unique_ptr<v1::ComputeService::Stub> compute;
  std::unique_ptr<v1::VolumesService::Stub> volumes;
  std::unique_ptr<v1::WatchService::Stub> watch;
  std::unique_ptr<google::longrunning::Operations::Stub> operations;
  const OutputFormat format;
  std::ostream& out;
  std::ostream& err;

 private:
  void Progress(const Operation& op, absl::Time started, std::string& last);

  const bool err_is_terminal_;
  const bool has_credentials_;  // a token or a client certificate was given
  const std::string account_;
  const absl::Duration timeout_;
};

// --- Rendering resources ------------------------------------------------------

// "cloudplane.v1.ComputeService.CreateInstance" → "CreateInstance".
std::string ShortMethod(absl::string_view method) {
  size_t dot = method.rfind('.');
  return std::string(dot == absl::string_view::npos ? method : method.substr(dot + 1));
}

v1::OperationMetadata MetadataOf(const Operation& op) {
  v1::OperationMetadata metadata;
  op.metadata().UnpackTo(&metadata);
  return metadata;
}

Table AccountTable() { return Table({"NAME", "PROVIDER", "STATE", "ENDPOINT", "SUPPORTED"}); }
void AddAccount(Table& table, const v1::Account& a) {
  int supported = 0;
  for (const auto& c : a.capabilities()) supported += c.supported() ? 1 : 0;
  table.AddRow({LastSegment(a.name()), LastSegment(a.provider()),
                v1::Account::State_Name(a.state()), a.endpoint(),
                absl::StrCat(supported, "/", a.capabilities_size(), " methods")});
}

Table InstanceTable() {
  return Table({"NAME", "STATE", "MACHINE_TYPE", "IMAGE", "IP", "LOCATION", "CREATED"});
}
void AddInstance(Table& table, const v1::Instance& i) {
  table.AddRow({LastSegment(i.name()), v1::Instance::State_Name(i.state()),
                LastSegment(i.machine_type()), LastSegment(i.image()),
                absl::StrJoin(i.ip_addresses(), ","), LastSegment(i.location()),
                FormatTime(i.create_time())});
}

Table VolumeTable() {
  return Table({"NAME", "STATE", "SIZE", "ATTACHED_TO", "LOCATION", "CREATED"});
}
void AddVolume(Table& table, const v1::Volume& v) {
  std::vector<std::string> attached;
  for (const auto& name : v.attached_to()) attached.push_back(LastSegment(name));
  table.AddRow({LastSegment(v.name()), v1::Volume::State_Name(v.state()),
                FormatBytes(v.size_bytes()), absl::StrJoin(attached, ","),
                LastSegment(v.location()), FormatTime(v.create_time())});
}

Table OperationTable() { return Table({"NAME", "METHOD", "TARGET", "STATE", "DETAIL"}); }
void AddOperation(Table& table, const Operation& op) {
  v1::OperationMetadata metadata = MetadataOf(op);
  std::string state = "RUNNING";
  std::string detail = metadata.status_detail();
  if (op.done() && op.has_error()) {
    state = absl::StrCat("FAILED ", CodeName(op.error().code()));
    detail = op.error().message();
  } else if (op.done()) {
    state = "DONE";
  }
  table.AddRow({op.name(), ShortMethod(metadata.method()), metadata.target(), state, detail});
}

// The message inside `any`, of the type linked into this binary; null when
// the type is unknown or the bytes do not parse.
std::unique_ptr<Message> Unpack(const Any& any) {
  absl::string_view type = any.type_url();
  type.remove_prefix(type.rfind('/') == absl::string_view::npos ? 0 : type.rfind('/') + 1);
  const auto* descriptor =
      google::protobuf::DescriptorPool::generated_pool()->FindMessageTypeByName(std::string(type));
  if (descriptor == nullptr) return nullptr;
  const Message* prototype =
      google::protobuf::MessageFactory::generated_factory()->GetPrototype(descriptor);
  if (prototype == nullptr) return nullptr;
  std::unique_ptr<Message> message(prototype->New());
  if (!message->ParseFromString(any.value())) return nullptr;
  return message;
}

// --- Mutations and waiting ------------------------------------------------------

void Session::Progress(const Operation& op, absl::Time started, std::string& last) {
  if (absl::GetFlag(FLAGS_quiet)) return;
  std::string detail = MetadataOf(op).status_detail();
  if (detail.empty()) detail = "running";
  if (err_is_terminal_) {
    // One line, rewritten in place, with the time spent so far.
    err << "\r\033[K" << op.name() << ": " << detail
        << absl::StrFormat(" (%.0fs)", absl::ToDoubleSeconds(absl::Now() - started)) << std::flush;
  } else if (detail != last) {
    err << op.name() << ": " << detail << "\n" << std::flush;
  }
  last = detail;
}

int Session::Mutation(const grpc::Status& status, Operation op) {
  if (!status.ok()) return Fail(status);
  if (absl::GetFlag(FLAGS_async)) {
    Table table = OperationTable();
    AddOperation(table, op);
    return Print(op, table);
  }
  const absl::Time started = absl::Now();
  std::string last;
  if (!op.done()) Progress(op, started, last);
  grpc::Status waited = WaitForOperation(
      *operations, timeout_, absl::GetFlag(FLAGS_wait_timeout),
      [&](const Operation& latest) { Progress(latest, started, last); }, op);
  if (!absl::GetFlag(FLAGS_quiet) && !last.empty()) {
    if (err_is_terminal_) err << "\r\033[K";
    if (waited.ok()) {
      err << absl::StrFormat("%s: done after %.1fs\n", op.name(),
                             absl::ToDoubleSeconds(absl::Now() - started));
    }
  }
  if (!waited.ok()) {
    int code = Fail(waited);
    if (waited.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
      err << "the operation goes on; wait again with: cloudplanectl operations wait " << op.name()
          << "\n";
    }
    return code;
  }
  if (op.has_error()) return FailedOperation(op.error());

  std::unique_ptr<Message> response = op.has_response() ? Unpack(op.response()) : nullptr;
  if (format == OutputFormat::kJson) {
    // The resource the operation produced; the Operation itself when it has
    // none (validate_only) or its type is unknown.
    out << (response != nullptr ? ToJson(*response) : ToJson(op));
    return kExitOk;
  }
  if (const auto* instance = dynamic_cast<const v1::Instance*>(response.get())) {
    Table table = InstanceTable();
    AddInstance(table, *instance);
    out << table.Render();
  } else if (const auto* volume = dynamic_cast<const v1::Volume*>(response.get())) {
    Table table = VolumeTable();
    AddVolume(table, *volume);
    out << table.Render();
  } else {
    v1::OperationMetadata metadata = MetadataOf(op);
    out << ShortMethod(metadata.method()) << " " << metadata.target() << ": "
        << (absl::GetFlag(FLAGS_validate_only) ? "valid" : "done") << "\n";
  }
  return kExitOk;
}

// Lists every page: repeated fields of each page are appended to `all`.
template <typename Request, typename Response, typename Call>
grpc::Status ListAll(Session& s, Request request, Call call, Response& all) {
  for (;;) {
    Response page;
    grpc::Status status = call(s.Context().get(), request, &page);
    if (!status.ok()) return status;
    std::string next = page.next_page_token();
    page.clear_next_page_token();
    all.MergeFrom(page);
    if (next.empty()) return grpc::Status::OK;
    request.set_page_token(next);
  }
}

// A fresh idempotency key (32 hex digits, 128 random bits).
std::string NewRequestId() {
  absl::BitGen gen;
  return absl::StrFormat("%016x%016x", absl::Uniform<uint64_t>(gen), absl::Uniform<uint64_t>(gen));
}

// The request_id / validate_only flags onto a mutation request. Without
// --request_id the request gets a random one: gRPC retries UNAVAILABLE with
// the same bytes (RetryServiceConfig), and only a request_id lets the server
// tell a retry of a request it already took from a new one.
template <typename Request>
void SetMutationFlags(Request& request) {
  std::string request_id = absl::GetFlag(FLAGS_request_id);
  request.set_request_id(request_id.empty() ? NewRequestId() : request_id);
  request.set_validate_only(absl::GetFlag(FLAGS_validate_only));
}

// --- Commands ---------------------------------------------------------------------

using Args = std::vector<std::string>;

int AccountsList(Session& s, const Args&) {
  v1::ListAccountsResponse all;
  grpc::Status status = ListAll(
      s, v1::ListAccountsRequest(),
      [&](auto* c, const auto& r, auto* p) { return s.accounts->ListAccounts(c, r, p); }, all);
  if (!status.ok()) return s.Fail(status);
  Table table = AccountTable();
  for (const auto& a : all.accounts()) AddAccount(table, a);
  return s.Print(all, table);
}

int AccountsGet(Session& s, const Args& args) {
  v1::GetAccountRequest request;
  request.set_name(AccountName(args[0]));
  v1::Account account;
  grpc::Status status = s.accounts->GetAccount(s.Context().get(), request, &account);
  if (!status.ok()) return s.Fail(status);
  Table table = AccountTable();
  AddAccount(table, account);
  return s.Print(account, table);
}

int InstancesList(Session& s, const Args&) {
  v1::ListInstancesRequest request;
  request.set_parent(s.Account());
  v1::ListInstancesResponse all;
  grpc::Status status = ListAll(
      s, request,
      [&](auto* c, const auto& r, auto* p) { return s.compute->ListInstances(c, r, p); }, all);
  if (!status.ok()) return s.Fail(status);
  Table table = InstanceTable();
  for (const auto& i : all.instances()) AddInstance(table, i);
  return s.Print(all, table);
}

int InstancesGet(Session& s, const Args& args) {
  v1::GetInstanceRequest request;
  request.set_name(s.Name("instances", args[0]));
  v1::Instance instance;
  grpc::Status status = s.compute->GetInstance(s.Context().get(), request, &instance);
  if (!status.ok()) return s.Fail(status);
  Table table = InstanceTable();
  AddInstance(table, instance);
  return s.Print(instance, table);
}

absl::Status SetLabels(google::protobuf::Map<std::string, std::string>& labels) {
  absl::StatusOr<std::map<std::string, std::string>> parsed =
      ParseLabels(absl::GetFlag(FLAGS_labels));
  if (!parsed.ok()) return parsed.status();
  for (const auto& [key, value] : *parsed) labels[key] = value;
  return absl::OkStatus();
}

int UsageFailure(Session& s, const absl::Status& status) {
  s.err << "cloudplanectl: " << status.message() << "\n";
  return kExitUsage;
}

int InstancesCreate(Session& s, const Args& args) {
  v1::CreateInstanceRequest request;
  request.set_parent(s.Account());
  request.set_instance_id(args[0]);
  v1::Instance& instance = *request.mutable_instance();
  instance.set_image(s.Name("images", absl::GetFlag(FLAGS_image)));
  instance.set_machine_type(s.Name("machineTypes", absl::GetFlag(FLAGS_machine_type)));
  instance.set_location(s.Name("locations", absl::GetFlag(FLAGS_location)));
  instance.set_display_name(absl::GetFlag(FLAGS_display_name));
  if (absl::Status labels = SetLabels(*instance.mutable_labels()); !labels.ok()) {
    return UsageFailure(s, labels);
  }
  if (!absl::GetFlag(FLAGS_start)) request.set_start(false);
  SetMutationFlags(request);
  Operation op;
  grpc::Status status = s.compute->CreateInstance(s.Context().get(), request, &op);
  return s.Mutation(status, std::move(op));
}

int InstancesDelete(Session& s, const Args& args) {
  v1::DeleteInstanceRequest request;
  request.set_name(s.Name("instances", args[0]));
  request.set_allow_missing(absl::GetFlag(FLAGS_allow_missing));
  SetMutationFlags(request);
  Operation op;
  grpc::Status status = s.compute->DeleteInstance(s.Context().get(), request, &op);
  return s.Mutation(status, std::move(op));
}

int InstancesStart(Session& s, const Args& args) {
  v1::StartInstanceRequest request;
  request.set_name(s.Name("instances", args[0]));
  SetMutationFlags(request);
  Operation op;
  grpc::Status status = s.compute->StartInstance(s.Context().get(), request, &op);
  return s.Mutation(status, std::move(op));
}

int InstancesStop(Session& s, const Args& args) {
  v1::StopInstanceRequest request;
  request.set_name(s.Name("instances", args[0]));
  request.set_force(absl::GetFlag(FLAGS_force));
  SetMutationFlags(request);
  Operation op;
  grpc::Status status = s.compute->StopInstance(s.Context().get(), request, &op);
  return s.Mutation(status, std::move(op));
}

int VolumesList(Session& s, const Args&) {
  v1::ListVolumesRequest request;
  request.set_parent(s.Account());
  v1::ListVolumesResponse all;
  grpc::Status status = ListAll(
      s, request, [&](auto* c, const auto& r, auto* p) { return s.volumes->ListVolumes(c, r, p); },
      all);
  if (!status.ok()) return s.Fail(status);
  Table table = VolumeTable();
  for (const auto& v : all.volumes()) AddVolume(table, v);
  return s.Print(all, table);
}

int VolumesGet(Session& s, const Args& args) {
  v1::GetVolumeRequest request;
  request.set_name(s.Name("volumes", args[0]));
  v1::Volume volume;
  grpc::Status status = s.volumes->GetVolume(s.Context().get(), request, &volume);
  if (!status.ok()) return s.Fail(status);
  Table table = VolumeTable();
  AddVolume(table, volume);
  return s.Print(volume, table);
}

int VolumesCreate(Session& s, const Args& args) {
  v1::CreateVolumeRequest request;
  request.set_parent(s.Account());
  request.set_volume_id(args[0]);
  v1::Volume& volume = *request.mutable_volume();
  if (!absl::GetFlag(FLAGS_size).empty()) {
    absl::StatusOr<int64_t> size = ParseSize(absl::GetFlag(FLAGS_size));
    if (!size.ok()) return UsageFailure(s, size.status());
    volume.set_size_bytes(*size);
  }
  volume.set_display_name(absl::GetFlag(FLAGS_display_name));
  volume.set_location(s.Name("locations", absl::GetFlag(FLAGS_location)));
  if (absl::Status labels = SetLabels(*volume.mutable_labels()); !labels.ok()) {
    return UsageFailure(s, labels);
  }
  SetMutationFlags(request);
  Operation op;
  grpc::Status status = s.volumes->CreateVolume(s.Context().get(), request, &op);
  return s.Mutation(status, std::move(op));
}

int VolumesDelete(Session& s, const Args& args) {
  v1::DeleteVolumeRequest request;
  request.set_name(s.Name("volumes", args[0]));
  request.set_allow_missing(absl::GetFlag(FLAGS_allow_missing));
  SetMutationFlags(request);
  Operation op;
  grpc::Status status = s.volumes->DeleteVolume(s.Context().get(), request, &op);
  return s.Mutation(status, std::move(op));
}

int VolumesAttach(Session& s, const Args& args) {
  v1::AttachVolumeRequest request;
  request.set_name(s.Name("volumes", args[0]));
  request.set_instance(s.Name("instances", absl::GetFlag(FLAGS_instance)));
  request.set_device(absl::GetFlag(FLAGS_device));
  SetMutationFlags(request);
  Operation op;
  grpc::Status status = s.volumes->AttachVolume(s.Context().get(), request, &op);
  return s.Mutation(status, std::move(op));
}

int VolumesDetach(Session& s, const Args& args) {
  v1::DetachVolumeRequest request;
  request.set_name(s.Name("volumes", args[0]));
  request.set_instance(s.Name("instances", absl::GetFlag(FLAGS_instance)));
  SetMutationFlags(request);
  Operation op;
  grpc::Status status = s.volumes->DetachVolume(s.Context().get(), request, &op);
  return s.Mutation(status, std::move(op));
}

int OperationsList(Session& s, const Args&) {
  google::longrunning::ListOperationsRequest request;
  request.set_name("operations");
  std::string filter = absl::GetFlag(FLAGS_filter);
  request.set_filter(filter.empty() ? absl::StrCat("account=", s.Account()) : filter);
  google::longrunning::ListOperationsResponse all;
  grpc::Status status = ListAll(
      s, request,
      [&](auto* c, const auto& r, auto* p) { return s.operations->ListOperations(c, r, p); }, all);
  if (!status.ok()) return s.Fail(status);
  Table table = OperationTable();
  for (const auto& op : all.operations()) AddOperation(table, op);
  return s.Print(all, table);
}

int OperationsGet(Session& s, const Args& args) {
  google::longrunning::GetOperationRequest request;
  request.set_name(OperationName(args[0]));
  Operation op;
  grpc::Status status = s.operations->GetOperation(s.Context().get(), request, &op);
  if (!status.ok()) return s.Fail(status);
  Table table = OperationTable();
  AddOperation(table, op);
  return s.Print(op, table);
}

int OperationsWait(Session& s, const Args& args) {
  google::longrunning::GetOperationRequest request;
  request.set_name(OperationName(args[0]));
  Operation op;
  grpc::Status status = s.operations->GetOperation(s.Context().get(), request, &op);
  return s.Mutation(status, std::move(op));
}

// A short summary of the resource in a watch event.
std::string WatchSummary(const v1::WatchResponse& change) {
  std::unique_ptr<Message> resource = change.has_resource() ? Unpack(change.resource()) : nullptr;
  if (const auto* i = dynamic_cast<const v1::Instance*>(resource.get())) {
    return v1::Instance::State_Name(i->state());
  }
  if (const auto* v = dynamic_cast<const v1::Volume*>(resource.get())) {
    return v1::Volume::State_Name(v->state());
  }
  if (const auto* op = dynamic_cast<const Operation*>(resource.get())) {
    if (!op->done()) return "RUNNING";
    return op->has_error() ? absl::StrCat("FAILED ", CodeName(op->error().code())) : "DONE";
  }
  return "";
}

int Watch(Session& s, const Args&) {
  v1::WatchRequest request;
  request.set_parent(s.Account());
  for (absl::string_view kind :
       absl::StrSplit(absl::GetFlag(FLAGS_kinds), ',', absl::SkipWhitespace())) {
    request.add_kinds(std::string(absl::StripAsciiWhitespace(kind)));
  }
  request.set_start_after_sequence(absl::GetFlag(FLAGS_start_after));
  request.set_heartbeat_interval_seconds(absl::GetFlag(FLAGS_heartbeat_interval));
  const int32_t count = absl::GetFlag(FLAGS_count);

  // A stream has no deadline: it runs until interrupted or --count changes.
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientReader<v1::WatchResponse>> reader = s.watch->Watch(&context, request);
  static const std::vector<size_t> kWidths = {8, 20, 7, 9, 44};
  if (s.format == OutputFormat::kTable) {
    s.out << Table::RenderRow({"SEQUENCE", "TIME", "CHANGE", "KIND", "NAME", "STATE"}, kWidths)
          << std::flush;
  }
  int seen = 0;
  bool cancelled_by_us = false;
  v1::WatchResponse change;
  while (reader->Read(&change)) {
    const bool heartbeat = change.change_type() == v1::WatchResponse::HEARTBEAT;
    if (s.format == OutputFormat::kJson) {
      s.out << ToJson(change, /*compact=*/true) << std::flush;
    } else if (!heartbeat) {
      std::string state = WatchSummary(change);
      s.out << Table::RenderRow(
                   {absl::StrCat(change.sequence()), FormatTime(change.time()),
                    v1::WatchResponse::ChangeType_Name(change.change_type()), change.kind(),
                    change.resource_name(), state.empty() ? "-" : state},
                   kWidths)
            << std::flush;
    }
    if (!heartbeat && count > 0 && ++seen >= count) {
      cancelled_by_us = true;
      context.TryCancel();
      break;
    }
  }
  grpc::Status status = reader->Finish();
  if (cancelled_by_us || status.ok()) return kExitOk;
  return s.Fail(status);
}

// --- The command table ------------------------------------------------------------

struct Command {
  const char* group;
  const char* verb;  // empty for a group that is itself the command (watch)
  const char* args;  // e.g. "INSTANCE"; empty when none
  const char* summary;
  const char* details;
  std::vector<const char*> flags;
  int (*run)(Session&, const Args&);
};

const std::vector<const char*> kMutationFlags = {"request_id", "validate_only", "async",
                                                 "wait_timeout", "quiet"};

std::vector<const char*> With(std::vector<const char*> flags,
                              const std::vector<const char*>& more) {
  flags.insert(flags.end(), more.begin(), more.end());
  return flags;
}

const std::vector<Command>& Commands() {
  static const auto* commands = new std::vector<Command>{
      {"accounts",
       "list",
       "",
       "list the accounts the server serves",
       "Shows each account's provider, state, endpoint and how many API methods it supports.",
       {},
       AccountsList},
      {"accounts",
       "get",
       "ACCOUNT",
       "show one account",
       "ACCOUNT is an id (sandbox) or a name (accounts/sandbox). --output json lists every "
       "capability.",
       {},
       AccountsGet},
      {"instances", "list", "", "list the instances of --account", "", {}, InstancesList},
      {"instances",
       "get",
       "INSTANCE",
       "show one instance",
       "INSTANCE is an id (web-1) in --account or a full name (accounts/a/instances/web-1).",
       {},
       InstancesGet},
      {"instances", "create", "INSTANCE", "create an instance and wait until it runs",
       "Creates INSTANCE (the id, e.g. web-1) in --account from --image and --machine_type, "
       "waits for the Operation and prints the instance.\n"
       "Example: cloudplanectl instances create web-1 --image=debian-12 --machine_type=small",
       With({"image", "machine_type", "display_name", "location", "labels", "start"},
            kMutationFlags),
       InstancesCreate},
      {"instances", "delete", "INSTANCE", "delete an instance and wait until it is gone", "",
       With({"allow_missing"}, kMutationFlags), InstancesDelete},
      {"instances", "start", "INSTANCE", "start a stopped instance", "", kMutationFlags,
       InstancesStart},
      {"instances", "stop", "INSTANCE", "stop a running instance", "",
       With({"force"}, kMutationFlags), InstancesStop},
      {"volumes", "list", "", "list the volumes of --account", "", {}, VolumesList},
      {"volumes", "get", "VOLUME", "show one volume", "", {}, VolumesGet},
      {"volumes", "create", "VOLUME", "create a volume of --size",
       "Example: cloudplanectl volumes create data-1 --size=10GiB",
       With({"size", "display_name", "location", "labels"}, kMutationFlags), VolumesCreate},
      {"volumes", "delete", "VOLUME", "delete a volume", "",
       With({"allow_missing"}, kMutationFlags), VolumesDelete},
      {"volumes", "attach", "VOLUME", "attach a volume to --instance", "",
       With({"instance", "device"}, kMutationFlags), VolumesAttach},
      {"volumes", "detach", "VOLUME", "detach a volume from --instance", "",
       With({"instance"}, kMutationFlags), VolumesDetach},
      {"operations",
       "list",
       "",
       "list the operations of --account",
       "Newest first as the server orders them; --filter=done=false shows the unfinished.",
       {"filter"},
       OperationsList},
      {"operations",
       "get",
       "OPERATION",
       "show one operation",
       "OPERATION is operations/<id> or just the id.",
       {},
       OperationsGet},
      {"operations",
       "wait",
       "OPERATION",
       "wait for an operation and print its result",
       "Exits 0 when it succeeded, 2 when it failed, 3 when --wait_timeout passed first.",
       {"wait_timeout", "quiet"},
       OperationsWait},
      {"watch",
       "",
       "",
       "stream changes of --account's resources",
       "One line per change (SEQUENCE, TIME, CHANGE, KIND, NAME, STATE) until interrupted or "
       "--count changes; --output json prints one WatchResponse per line, heartbeats included.",
       {"kinds", "start_after", "count", "heartbeat_interval"},
       Watch},
  };
  return *commands;
}

const std::vector<const char*> kGlobalFlags = {
    "server",       "account",         "output", "timeout", "tls", "tls_ca_file", "tls_cert_file",
    "tls_key_file", "tls_server_name", "token",  "allow_plaintext_token"};

// --token, else $CLOUDPLANE_TOKEN; surrounding whitespace (a newline from
// `$(cat token-file)`) is not part of it.
std::string Token() {
  std::string token = absl::GetFlag(FLAGS_token);
  if (token.empty()) {
    const char* env = std::getenv("CLOUDPLANE_TOKEN");
    if (env != nullptr) token = env;
  }
  return std::string(absl::StripAsciiWhitespace(token));
}

std::string Usage(const Command& c) {
  std::string usage = absl::StrCat("cloudplanectl ", c.group);
  if (*c.verb != '\0') absl::StrAppend(&usage, " ", c.verb);
  if (*c.args != '\0') absl::StrAppend(&usage, " ", c.args);
  if (!c.flags.empty()) absl::StrAppend(&usage, " [flags]");
  return usage;
}

// `text` broken into lines of at most `width` characters, every line after
// the first indented by `indent` spaces.
std::string Wrap(absl::string_view text, size_t indent, size_t width) {
  std::string out;
  size_t column = indent;
  for (absl::string_view word : absl::StrSplit(text, ' ', absl::SkipEmpty())) {
    if (column > indent && column + 1 + word.size() > width) {
      absl::StrAppend(&out, "\n", std::string(indent, ' '));
      column = indent;
    } else if (column > indent) {
      out += ' ';
      ++column;
    }
    absl::StrAppend(&out, word);
    column += word.size();
  }
  return out;
}

constexpr size_t kHelpWidth = 100;

std::string FlagHelp(const std::vector<const char*>& names) {
  std::string out;
  for (const char* name : names) {
    const absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    if (flag == nullptr) continue;
    std::string text = flag->Help();
    std::string value = flag->DefaultValue();
    if (!value.empty() && value != "false" && value != "0") {
      absl::StrAppend(&text, " (default ", value, ")");
    }
    absl::StrAppend(&out, absl::StrFormat("  --%-18s ", name), Wrap(text, 23, kHelpWidth), "\n");
  }
  return out;
}

std::string Overview() {
  std::string out =
      "cloudplanectl: the cloudplane API from the command line.\n\n"
      "Usage: cloudplanectl <group> <command> [arguments] [flags]\n\n"
      "Commands:\n";
  for (const Command& c : Commands()) {
    std::string name =
        absl::StrCat(c.group, *c.verb ? " " : "", c.verb, *c.args ? " " : "", c.args);
    absl::StrAppend(&out, absl::StrFormat("  %-30s %s\n", name, c.summary));
  }
  absl::StrAppend(&out, "\nGlobal flags:\n", FlagHelp(kGlobalFlags),
                  "\nRun `cloudplanectl help <group> <command>` (or add --help) for a command's "
                  "flags.\n"
                  "Exit codes: 0 success; 1 usage error; 2 the server refused the call or the "
                  "operation failed;\n"
                  "3 the server is unreachable, or a call or wait timed out.\n");
  return out;
}

const Command* Find(const std::vector<std::string>& words, size_t* used) {
  for (const Command& c : Commands()) {
    if (words.empty() || words[0] != c.group) continue;
    if (*c.verb == '\0') {
      *used = 1;
      return &c;
    }
    if (words.size() >= 2 && words[1] == c.verb) {
      *used = 2;
      return &c;
    }
  }
  return nullptr;
}

}  // namespace

std::string Help(const std::vector<std::string>& words, bool* found) {
  if (found != nullptr) *found = true;
  if (words.empty()) return Overview();
  size_t used = 0;
  if (const Command* c = Find(words, &used)) {
    std::string summary = c->summary;
    summary[0] = absl::ascii_toupper(summary[0]);
    std::string out = absl::StrCat("Usage: ", Usage(*c), "\n\n", summary, ".\n");
    for (absl::string_view paragraph : absl::StrSplit(c->details, '\n', absl::SkipEmpty())) {
      absl::StrAppend(&out, Wrap(paragraph, 0, kHelpWidth), "\n");
    }
    if (!c->flags.empty()) absl::StrAppend(&out, "\nFlags:\n", FlagHelp(c->flags));
    absl::StrAppend(&out, "\nGlobal flags:\n", FlagHelp(kGlobalFlags));
    return out;
  }
  std::string group_help;
  for (const Command& c : Commands()) {
    if (words[0] != c.group) continue;
    absl::StrAppend(&group_help, absl::StrFormat("  %-40s %s\n", Usage(c), c.summary));
  }
  if (!group_help.empty()) {
    return absl::StrCat("Commands of ", words[0], ":\n", group_help, "\nRun `cloudplanectl help ",
                        words[0], " <command>` for a command's flags.\n");
  }
  if (found != nullptr) *found = false;
  return Overview();
}

int Run(const std::vector<std::string>& words, std::ostream& out, std::ostream& err,
        bool err_is_terminal) {
  size_t used = 0;
  const Command* command = Find(words, &used);
  if (command == nullptr) {
    if (words.empty()) {
      err << Overview();
    } else {
      err << "cloudplanectl: unknown command \"" << absl::StrJoin(words, " ")
          << "\"; run `cloudplanectl help`\n";
    }
    return kExitUsage;
  }
  Args args(words.begin() + used, words.end());
  const size_t wanted = *command->args == '\0' ? 0 : 1;
  if (args.size() != wanted) {
    err << "cloudplanectl: usage: " << Usage(*command) << "\n";
    return kExitUsage;
  }
  // A flag of another command is a mistake (a typo'd command, a flag that
  // would be ignored); say so rather than run without it.
  std::set<std::string> own(command->flags.begin(), command->flags.end());
  for (const Command& other : Commands()) {
    for (const char* name : other.flags) {
      const absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
      if (own.count(name) == 0 && flag != nullptr && flag->CurrentValue() != flag->DefaultValue()) {
        err << "cloudplanectl: --" << name << " does not apply to `" << Usage(*command) << "`\n";
        return kExitUsage;
      }
    }
  }
  absl::StatusOr<OutputFormat> format = ParseOutputFormat(absl::GetFlag(FLAGS_output));
  if (!format.ok()) {
    err << "cloudplanectl: " << format.status().message() << "\n";
    return kExitUsage;
  }
  ConnectionOptions connection;
  connection.server = absl::GetFlag(FLAGS_server);
  connection.tls = absl::GetFlag(FLAGS_tls);
  connection.tls_ca_file = absl::GetFlag(FLAGS_tls_ca_file);
  connection.tls_cert_file = absl::GetFlag(FLAGS_tls_cert_file);
  connection.tls_key_file = absl::GetFlag(FLAGS_tls_key_file);
  connection.tls_server_name = absl::GetFlag(FLAGS_tls_server_name);
  connection.token = Token();
  connection.allow_plaintext_token = absl::GetFlag(FLAGS_allow_plaintext_token);
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = MakeChannel(connection);
  if (!channel.ok()) {
    err << "cloudplanectl: " << channel.status().message() << "\n";
    return kExitUsage;
  }

  Session session(*channel, *format, out, err, err_is_terminal,
                  !connection.token.empty() || !connection.tls_cert_file.empty());
  return command->run(session, args);
}

}  // namespace cloudplane::ctl
