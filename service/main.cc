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
//
// Authentication and authorization (ServerConfig.tls and .auth, see
// service/gate.h): SIGHUP re-reads the config's `auth` section and the TLS
// files without dropping connections; a reload that does not load is refused
// with a log line and the running state stays.
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
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
#include "absl/synchronization/mutex.h"
#include "adapters/builtin_adapters.h"
#include "adapters/common/http/http_transport.h"
#include "base/event_loop.h"
#include "base/memory_return.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "service/accounts.h"
#include "service/audit_log.h"
#include "service/auth/authenticator.h"
#include "service/auth/policy.h"
#include "service/auth/server_tls.h"
#include "service/config.h"
#include "service/gate.h"
#include "service/handlers.h"
#include "service/observer.h"
#include "service/operation_runner.h"
#include "service/retention.h"
#include "service/state_lock.h"
#include "service/watch_hub.h"
#include "store/store.h"

ABSL_FLAG(std::string, config, "", "ServerConfig text-format file; empty serves the sandbox");
ABSL_FLAG(std::string, listen, "", "address to listen on; overrides the config (port 0 picks one)");
ABSL_FLAG(std::string, state_dir, "", "directory of the state database; overrides the config");
ABSL_FLAG(std::string, port_file, "", "write the bound port to this file once serving");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate chain; with --tls_key serves TLS; overrides tls.cert_file");
ABSL_FLAG(std::string, tls_key, "", "PEM private key for --tls_cert; overrides tls.key_file");
ABSL_FLAG(bool, insecure_allow_remote, false,
          "listen on a non-loopback address although no authentication is configured: "
          "anyone who can reach it may act on every account");

namespace cloudplane {
namespace {

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

// Linking gRPC's reflection library registers its plugin with every
// ServerBuilder (a static initializer); this option takes it out again when
// the config turns reflection off.
class WithoutReflection final : public grpc::ServerBuilderOption {
 public:
  void UpdateArguments(grpc::ChannelArguments*) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) override {
    using Reflection = grpc::reflection::ProtoServerReflectionPlugin;
    plugins->erase(std::remove_if(plugins->begin(), plugins->end(),
                                  [](const std::unique_ptr<grpc::ServerBuilderPlugin>& plugin) {
                                    return dynamic_cast<Reflection*>(plugin.get()) != nullptr;
                                  }),
                   plugins->end());
  }
};

// The signals the main thread takes with sigwait(): SIGTERM and SIGINT shut
// down, SIGHUP reloads.
sigset_t ServerSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  return signals;
}

// Feeds an observer the account's changes from the hub's cursor: drains it
// on each wake-up (the hub's fan-out thread) and re-arms. Returns the
// subscription id, 0 when the hub refused.
uint64_t FollowAccount(service::WatchHub& hub, const std::string& account,
                       service::Observer::ChangeListener listener) {
  struct Feed {
    std::shared_ptr<service::WatchHub::Subscription> subscription;
    service::Observer::ChangeListener listener;
    void Drain() {
      std::vector<std::shared_ptr<const v1::WatchResponse>> changes;
      while (true) {
        changes.clear();
        if (!subscription->Next(256, &changes).ok()) return;
        for (const auto& change : changes) listener(*change);
        if (changes.empty() && subscription->ArmIfIdle()) return;
      }
    }
  };
  auto feed = std::make_shared<Feed>();
  feed->listener = std::move(listener);
  service::WatchFilter filter;
  filter.account = account;
  std::weak_ptr<Feed> weak = feed;
  auto subscribed = hub.Subscribe(
      std::move(filter), 0,
      [weak] {
        if (auto f = weak.lock()) f->Drain();
      },
      [feed] {});  // keeps the feed alive until the hub closes it
  if (!subscribed.ok()) return 0;
  feed->subscription = *subscribed;
  feed->Drain();
  return feed->subscription->id();
}

// The config file with the flags applied over it: what the server starts
// with, and what SIGHUP re-reads.
absl::StatusOr<config::v1::ServerConfig> LoadWithFlags() {
  absl::StatusOr<config::v1::ServerConfig> config =
      service::LoadConfig(absl::GetFlag(FLAGS_config));
  if (!config.ok()) return config.status();
  if (!absl::GetFlag(FLAGS_listen).empty()) config->set_listen_address(absl::GetFlag(FLAGS_listen));
  if (!absl::GetFlag(FLAGS_state_dir).empty()) config->set_state_dir(absl::GetFlag(FLAGS_state_dir));
  std::string cert = absl::GetFlag(FLAGS_tls_cert), key = absl::GetFlag(FLAGS_tls_key);
  if (cert.empty() != key.empty()) {
    return absl::InvalidArgumentError("--tls_cert and --tls_key go together");
  }
  if (!cert.empty()) {
    config->mutable_tls()->set_cert_file(cert);
    config->mutable_tls()->set_key_file(key);
  }
  return config;
}

// SIGHUP: re-reads the config file's `auth` section (bindings, API keys, the
// JWT settings and the JWKS file) and the TLS files. Anything that does not
// load is refused as a whole and the running state stays; so is a config
// that would leave a remote listen address without authentication. Other
// sections (accounts, listen address, state directory) need a restart.
void Reload(const config::v1::ServerConfig& running, service::Gate& gate,
            auth::ServerTls* tls) {
  absl::StatusOr<config::v1::ServerConfig> config = LoadWithFlags();
  absl::StatusOr<std::shared_ptr<const auth::Authenticator>> authenticator =
      config.ok() ? auth::Authenticator::Create(*config)
                  : absl::StatusOr<std::shared_ptr<const auth::Authenticator>>(config.status());
  absl::Status status = authenticator.status();
  if (status.ok()) {
    config->set_listen_address(running.listen_address());
    status = service::CheckListenAddress(*config, absl::GetFlag(FLAGS_insecure_allow_remote));
  }
  if (status.ok() && tls != nullptr) status = tls->Reload(config->tls());
  if (status.ok() && tls == nullptr && !config->tls().cert_file().empty()) {
    status = absl::FailedPreconditionError(
        "the server started without TLS; turning it on needs a restart");
  }
  if (!status.ok()) {
    std::cerr << "cloudplaned: SIGHUP: reload refused, keeping the running configuration: "
              << status.message() << std::endl;
    return;
  }
  gate.Replace(*std::move(authenticator), auth::Bindings(config->auth()));
  std::cout << "cloudplaned: SIGHUP: reloaded authentication (" << config->auth().bindings_size()
            << " binding(s), " << config->auth().api_keys_size() << " API key(s)"
            << (config->auth().has_jwt() ? ", JWT" : "") << ")"
            << (tls != nullptr ? " and the TLS files" : "") << std::endl;
}

int Run() {
  absl::StatusOr<config::v1::ServerConfig> config = LoadWithFlags();
  if (!config.ok()) {
    std::cerr << "cloudplaned: " << config.status().message() << "\n";
    return 2;
  }
  absl::StatusOr<std::shared_ptr<const auth::Authenticator>> authenticator =
      auth::Authenticator::Create(*config);
  if (!authenticator.ok()) {
    std::cerr << "cloudplaned: " << authenticator.status().message() << "\n";
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
  // TLS files are validated, then staged under the state directory where
  // gRPC's file watcher reads them; SIGHUP stages new ones.
  std::unique_ptr<auth::ServerTls> tls;
  std::shared_ptr<grpc::ServerCredentials> credentials = grpc::InsecureServerCredentials();
  if (!config->tls().cert_file().empty() || !config->tls().client_ca_file().empty()) {
    absl::StatusOr<std::unique_ptr<auth::ServerTls>> created =
        auth::ServerTls::Create(config->tls(), absl::StrCat(config->state_dir(), "/tls"));
    if (!created.ok()) {
      std::cerr << "cloudplaned: " << created.status().message() << std::endl;
      return 2;
    }
    tls = *std::move(created);
    credentials = tls->Credentials();
  }
  if ((*authenticator)->enabled() && config->auth().bindings_size() == 0) {
    std::cerr << "cloudplaned: WARNING: authentication is on but auth.bindings is empty: "
                 "every call will be denied"
              << std::endl;
  }
  if ((*authenticator)->enabled() && tls == nullptr &&
      !service::IsLoopbackListenAddress(config->listen_address())) {
    std::cerr << "cloudplaned: WARNING: listening on " << config->listen_address()
              << " without TLS: bearer tokens and API keys cross the network in clear text"
              << std::endl;
  }

  // Signals are taken by sigwait() below; main() blocked them before any
  // thread started, so no other thread receives them.
  const sigset_t signals = ServerSignals();

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
  {
    // Before any account exists: every HTTP-based adapter shares this
    // transport (config.proto, ProviderHttpConfig).
    http::HttpTransportOptions http_options;
    http_options.max_connections_per_host = config->provider_http().max_connections_per_host();
    http_options.close_idle_after = absl::Seconds(config->provider_http().idle_close_seconds());
    if (absl::Status status = http::HttpTransport::ConfigureDefault(std::move(http_options));
        !status.ok()) {
      std::cerr << "cloudplaned: " << status.message() << std::endl;
      return 1;
    }
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
  shared.operation_retention = absl::Seconds(config->operation_retention_seconds());
  std::unique_ptr<service::AccountTable> accounts =
      service::AccountTable::Create(*config, registry, shared);
  service::OperationRunner::Options runner_options;
  runner_options.operation_timeout = absl::Seconds(config->operation_timeout_seconds());
  service::OperationRunner runner(store->get(), &loop, &hub, accounts.get(), runner_options);

  service::AuditLog audit(
      store->get(), &loop, &std::cerr,
      {.retention = absl::Seconds(config->audit_retention_seconds())});
  service::Gate gate(*std::move(authenticator), auth::Bindings(config->auth()), &audit);
  service::ServiceContext context{&registry, accounts.get(), &runner, &hub,
                                  &loop,      &gate,          store->get()};
  std::vector<std::unique_ptr<grpc::Service>> services = service::MakeServices(context);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(config->listen_address(), credentials, &port);
  builder.SetMaxReceiveMessageSize(16 << 20);
  for (auto& service : services) builder.RegisterService(service.get());
  if (config->has_reflection() && !config->reflection()) {
    builder.SetOption(std::make_unique<WithoutReflection>());
  }
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::cerr << "cloudplaned: cannot listen on " << config->listen_address() << "\n";
    return 1;
  }
  grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService();
  for (const std::string& name : service::ServiceNames()) health->SetServingStatus(name, true);
  health->SetServingStatus(true);
  runner.ResumeUnfinished();
  // One observer per account whose provider does not report all its changes
  // itself (service/observer.h); its rounds set the account's health.
  std::vector<std::unique_ptr<service::Observer>> observers;
  for (const auto& account : config->accounts()) {
    const std::string health_name = absl::StrCat("cloudplane.account.", account.id());
    absl::StatusOr<adapters::Provider*> provider = accounts->Provider(account.id(), "account");
    health->SetServingStatus(health_name, provider.ok());
    if (!provider.ok() || !service::Observer::Eligible(**provider)) continue;
    const absl::Duration interval = absl::Seconds(account.observe_interval_seconds());
    service::Observer::Options options;
    options.interval = interval;
    options.list_deadline = std::clamp(2 * interval, absl::Seconds(5), absl::Seconds(30));
    // The largest page adapters answer (paging::kMaxPageSize): adapters
    // that fetch the provider's whole list for every page they answer
    // (fleet, OpenNebula, ...) would otherwise re-read it once per page of
    // 50, so a round over 1,000 units cost 20 full listings.
    options.page_size = 1000;
    options.on_health = [accounts = accounts.get(), health, health_name,
                         id = account.id()](const service::Observer::Health& result) {
      accounts->SetHealth(id, {result.state, result.error, result.observed_at});
      health->SetServingStatus(health_name, result.state == v1::Account::READY);
    };
    options.subscribe = [&hub, id = account.id()](service::Observer::ChangeListener listener) {
      return FollowAccount(hub, id, std::move(listener));
    };
    options.unsubscribe = [&hub](uint64_t id) {
      if (id != 0) hub.Unsubscribe(id);
    };
    observers.push_back(std::make_unique<service::Observer>(
        account.id(), *provider, store->get(), &loop, &hub, std::move(options)));
    // Pending operations of the account wait on its rounds, not on polls.
    runner.Observe(account.id(), observers.back().get());
    observers.back()->Start();
  }
  // Finished operations (with their request_ids) and the change log are
  // pruned in the background (ServerConfig *_retention_seconds).
  service::Retention retention(
      store->get(), &loop, &std::cerr,
      {.operation_retention = absl::Seconds(config->operation_retention_seconds()),
       .change_log_retention = absl::Seconds(config->change_log_retention_seconds()),
       .change_log_max_entries = config->change_log_max_entries()});
  retention.Start();
  // After a burst (thousands of calls in flight) glibc keeps the freed
  // memory resident; give it back once more than 4 MiB lies free, checked
  // every 10 s (base/memory_return.h).
  StartMemoryReturn(&loop, absl::Seconds(10), size_t{4} << 20);

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
  while (sigwait(&signals, &signal_number) == 0 && signal_number == SIGHUP) {
    Reload(*config, gate, tls.get());
  }
  std::cout << "cloudplaned: signal " << signal_number << ", shutting down" << std::endl;
  for (const std::string& name : service::ServiceNames()) health->SetServingStatus(name, false);
  health->SetServingStatus(false);
  for (const auto& account : config->accounts()) {
    health->SetServingStatus(absl::StrCat("cloudplane.account.", account.id()), false);
  }
  for (auto& observer : observers) observer->Stop();
  hub.CloseAll();
  runner.Shutdown();
  server->Shutdown(std::chrono::system_clock::now() +
                   std::chrono::seconds(config->shutdown_grace_seconds()));
  server->Wait();
  retention.Stop();
  if (absl::Status flushed = audit.Flush(); !flushed.ok()) {
    std::cerr << "cloudplaned: audit log: " << flushed.message() << std::endl;
  }
  loop.Shutdown();
  std::cout << "cloudplaned: stopped" << std::endl;
  return 0;
}

}  // namespace
}  // namespace cloudplane

int main(int argc, char** argv) {
  // First of all, before any library starts a thread: every thread inherits
  // this mask, so SIGTERM, SIGINT and SIGHUP reach only the main thread's
  // sigwait(). gRPC starts threads of its own (its timer, executor and
  // resolver threads) as soon as it is first used, and starts more later
  // from those; blocked only in Run(), they had the signals unblocked and a
  // SIGTERM could land on one of them and kill the process without a
  // graceful shutdown (a CI run saw that once).
  const sigset_t signals = cloudplane::ServerSignals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  absl::SetProgramUsageMessage("cloudplane gRPC server; see README.md");
  absl::ParseCommandLine(argc, argv);
#ifdef NDEBUG
  // Debian builds abseil with Mutex deadlock detection on, which keeps a
  // lock graph for every Mutex (taken, destroyed) on every RPC; perf showed
  // it on the GetInstance path (issue 15). Release builds switch it off;
  // tests and fastbuild keep it, where it catches lock-order mistakes.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
#endif
  return cloudplane::Run();
}
