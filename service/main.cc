// cloudplaned: the cloudplane gRPC server.
//
//   cloudplaned [--config=FILE] [--listen=ADDR] [--state_dir=DIR]
//               [--insecure_allow_remote]
//
// With no config it serves one `sandbox` account on 127.0.0.1:7070 with its
// state in ./state. SIGTERM or SIGINT: health turns NOT_SERVING, Watch
// streams end, in-flight RPCs get the configured grace period, then the
// process exits 0. Unfinished operations resume at the next start.
//
// One server per state directory: a second cloudplaned on a directory in use
// exits 1 naming the holder's pid (service/state_lock.h).
//
// Safe defaults: with no authentication configured, an address that is not
// loopback or a unix socket is refused (exit 2) unless --insecure_allow_remote
// is given, which is then announced by a WARNING line. A state directory this
// process creates is made 0700, and a new database file 0600 (store/store.h).
#include <signal.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "adapters/builtin_adapters.h"
#include "base/event_loop.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "service/accounts.h"
#include "service/config.h"
#include "service/handlers.h"
#include "service/operation_runner.h"
#include "service/state_lock.h"
#include "service/watch_hub.h"
#include "store/store.h"

ABSL_FLAG(std::string, config, "", "ServerConfig text-format file; empty serves the sandbox");
ABSL_FLAG(std::string, listen, "", "address to listen on; overrides the config (port 0 picks one)");
ABSL_FLAG(std::string, state_dir, "", "directory of the state database; overrides the config");
ABSL_FLAG(std::string, port_file, "", "write the bound port to this file once serving");
ABSL_FLAG(std::string, tls_cert, "", "PEM certificate chain; with --tls_key serves TLS");
ABSL_FLAG(std::string, tls_key, "", "PEM private key for --tls_cert");
ABSL_FLAG(bool, insecure_allow_remote, false,
          "listen on a non-loopback address although no authentication is configured: "
          "anyone who can reach it may act on every account");

namespace cloudplane {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Creates the state directory 0700 (whatever the umask) when it does not
// exist yet; an existing directory keeps the mode its owner gave it.
absl::Status CreateStateDir(const std::string& state_dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(state_dir, ec)) return absl::OkStatus();
  fs::path dir(state_dir);
  if (fs::path parent = dir.parent_path(); !parent.empty()) fs::create_directories(parent, ec);
  // mkdir's mode is narrowed by the umask, never widened, so the directory
  // is never more open than 0700, even before the chmod.
  if (::mkdir(state_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return absl::UnavailableError(
        absl::StrCat("cannot create state directory ", state_dir, ": ", std::strerror(errno)));
  }
  if (::chmod(state_dir.c_str(), 0700) != 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot set the mode of ", state_dir, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> Credentials() {
  std::string cert = absl::GetFlag(FLAGS_tls_cert), key = absl::GetFlag(FLAGS_tls_key);
  if (cert.empty() != key.empty()) {
    return absl::InvalidArgumentError("--tls_cert and --tls_key go together");
  }
  if (cert.empty()) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions options;
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  absl::StatusOr<std::string> cert_pem = ReadFile(cert), key_pem = ReadFile(key);
  if (!cert_pem.ok()) return cert_pem.status();
  if (!key_pem.ok()) return key_pem.status();
  pair.cert_chain = *cert_pem;
  pair.private_key = *key_pem;
  options.pem_key_cert_pairs.push_back(pair);
  return grpc::SslServerCredentials(options);
}

int Run() {
  absl::StatusOr<config::v1::ServerConfig> config = service::LoadConfig(absl::GetFlag(FLAGS_config));
  if (!config.ok()) {
    std::cerr << "cloudplaned: " << config.status().message() << "\n";
    return 2;
  }
  if (!absl::GetFlag(FLAGS_listen).empty()) config->set_listen_address(absl::GetFlag(FLAGS_listen));
  if (!absl::GetFlag(FLAGS_state_dir).empty()) config->set_state_dir(absl::GetFlag(FLAGS_state_dir));
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials = Credentials();
  if (!credentials.ok()) {
    std::cerr << "cloudplaned: " << credentials.status().message() << "\n";
    return 2;
  }
  const bool allow_remote = absl::GetFlag(FLAGS_insecure_allow_remote);
  if (absl::Status listen = service::CheckListenAddress(*config, false); !listen.ok()) {
    if (!allow_remote) {
      std::cerr << "cloudplaned: " << listen.message() << std::endl;
      return 2;
    }
    std::cerr << "cloudplaned: WARNING: --insecure_allow_remote: listening on "
              << config->listen_address()
              << " with no authentication; anyone who can reach it may create, change and "
                 "delete resources in every account"
              << std::endl;
  }
  if (absl::Status status = CreateStateDir(config->state_dir()); !status.ok()) {
    std::cerr << "cloudplaned: " << status.message() << std::endl;
    return 1;
  }

  // Signals are taken by sigwait() below; block them before any thread starts
  // so that no other thread receives them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  // Held until the process exits; the kernel releases it on any exit.
  absl::StatusOr<service::StateLock> state_lock = service::StateLock::Acquire(config->state_dir());
  if (!state_lock.ok()) {
    std::cerr << "cloudplaned: " << state_lock.status().message() << std::endl;
    return 1;
  }
  std::string db_path = absl::StrCat(config->state_dir(), "/cloudplane.db");
  absl::StatusOr<std::unique_ptr<store::Store>> store = store::Store::Open(db_path);
  if (!store.ok()) {
    std::cerr << "cloudplaned: cannot open state " << db_path << ": " << store.status() << "\n";
    return 1;
  }
  EventLoop loop;
  service::WatchHub hub(store->get(), &loop);
  adapters::AdapterRegistry registry;
  if (absl::Status status = adapters::RegisterBuiltinAdapters(registry); !status.ok()) {
    std::cerr << "cloudplaned: " << status << "\n";
    return 1;
  }
  adapters::AccountSetup shared;
  shared.store = store->get();
  shared.loop = &loop;
  shared.changes = &hub;
  std::unique_ptr<service::AccountTable> accounts =
      service::AccountTable::Create(*config, registry, shared);
  service::OperationRunner::Options runner_options;
  runner_options.operation_timeout = absl::Seconds(config->operation_timeout_seconds());
  service::OperationRunner runner(store->get(), &loop, &hub, accounts.get(), runner_options);

  service::ServiceContext context{&registry, accounts.get(), &runner, &hub, &loop};
  std::vector<std::unique_ptr<grpc::Service>> services = service::MakeServices(context);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(config->listen_address(), *credentials, &port);
  builder.SetMaxReceiveMessageSize(16 << 20);
  for (auto& service : services) builder.RegisterService(service.get());
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::cerr << "cloudplaned: cannot listen on " << config->listen_address() << "\n";
    return 1;
  }
  grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService();
  for (const std::string& name : service::ServiceNames()) health->SetServingStatus(name, true);
  health->SetServingStatus(true);
  runner.ResumeUnfinished();

  // A unix socket has no port (gRPC reports 1 for it): name its path.
  std::string where = config->listen_address();
  if (!absl::StartsWith(where, "unix:") && !absl::StartsWith(where, "unix-abstract:")) {
    where = absl::StrCat(where.substr(0, where.rfind(':')), ":", port);
  }
  std::cout << "cloudplaned listening on " << where << " (state "
            << db_path << ", " << accounts->List().size() << " account(s))" << std::endl;
  if (std::string port_file = absl::GetFlag(FLAGS_port_file); !port_file.empty()) {
    std::string tmp = port_file + ".tmp";
    std::ofstream(tmp) << port << "\n";
    std::rename(tmp.c_str(), port_file.c_str());
  }

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  std::cout << "cloudplaned: signal " << signal_number << ", shutting down" << std::endl;
  for (const std::string& name : service::ServiceNames()) health->SetServingStatus(name, false);
  health->SetServingStatus(false);
  hub.CloseAll();
  runner.Shutdown();
  server->Shutdown(std::chrono::system_clock::now() +
                   std::chrono::seconds(config->shutdown_grace_seconds()));
  server->Wait();
  loop.Shutdown();
  std::cout << "cloudplaned: stopped" << std::endl;
  return 0;
}

}  // namespace
}  // namespace cloudplane

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("cloudplane gRPC server; see README.md");
  absl::ParseCommandLine(argc, argv);
  return cloudplane::Run();
}
