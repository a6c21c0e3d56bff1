// ServerTls on a real gRPC server (127.0.0.1:0, the built-in health service)
// with certificates made in the test (test_pki.h), called by gRPC clients
// with SslCredentials.
#include "service/auth/server_tls.h"

#include <grpc/grpc_security_constants.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/impl/client_unary_call.h>
#include <grpcpp/impl/codegen/proto_utils.h>
#include <grpcpp/impl/rpc_method.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/errors.h"
#include "grpc/health/v1/health.pb.h"
#include "gtest/gtest.h"
#include "service/auth/testing/test_pki.h"

namespace cloudplane::auth {
namespace {

using config::v1::TlsConfig;
using testing::CertSpec;
using testing::KeyAndCert;
using testing::TestCa;

constexpr char kServerName[] = "server.test";

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  ASSERT_TRUE(out.good()) << path;
}

// The result of one health Check.
struct CheckResult {
  grpc::Status status;
  std::string peer_cert;  // the server's leaf certificate as the client saw it
};

CheckResult Check(const std::shared_ptr<grpc::Channel>& channel) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  grpc::health::v1::HealthCheckRequest request;
  grpc::health::v1::HealthCheckResponse response;
  static const grpc::internal::RpcMethod kCheck("/grpc.health.v1.Health/Check",
                                                grpc::internal::RpcMethod::NORMAL_RPC);
  CheckResult out;
  out.status =
      grpc::internal::BlockingUnaryCall(channel.get(), kCheck, &context, request, &response);
  if (out.status.ok()) {
    EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  }
  auto auth = context.auth_context();
  if (auth != nullptr) {
    auto values = auth->FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME);
    if (!values.empty()) out.peer_cert = std::string(values.front().data(), values.front().size());
  }
  return out;
}

class ServerTlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    grpc::EnableDefaultHealthCheckService(true);
    server_ca_ = TestCa::Create("server-ca").release();
    client_ca_ = TestCa::Create("client-ca").release();
    other_ca_ = TestCa::Create("other-ca").release();
  }
  static void TearDownTestSuite() {
    delete server_ca_;
    delete client_ca_;
    delete other_ca_;
  }

  void SetUp() override {
    const char* tmp = std::getenv("TEST_TMPDIR");
    dir_ = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_ + "/conf");
    stage_ = dir_ + "/state/tls";
    std::filesystem::create_directories(dir_ + "/state");
    server_ = IssueServer("server-1", 1);
    WriteFile(dir_ + "/conf/cert.pem", server_.cert_pem);
    WriteFile(dir_ + "/conf/key.pem", server_.key_pem);
    WriteFile(dir_ + "/conf/client_ca.pem", client_ca_->cert_pem());
  }

  void TearDown() override {
    if (server_running_ != nullptr) server_running_->Shutdown();
  }

  static KeyAndCert IssueServer(const std::string& cn, long serial) {
    CertSpec spec;
    spec.common_name = cn;
    spec.dns_names = {kServerName};
    spec.serial = serial;
    return server_ca_->Issue(spec);
  }

  TlsConfig Config(bool client_ca, bool require) const {
    TlsConfig tls;
    tls.set_cert_file(dir_ + "/conf/cert.pem");
    tls.set_key_file(dir_ + "/conf/key.pem");
    if (client_ca) tls.set_client_ca_file(dir_ + "/conf/client_ca.pem");
    tls.set_require_client_certificate(require);
    return tls;
  }

  // Starts a server on 127.0.0.1:0 with `tls`'s credentials.
  void Start(const TlsConfig& tls) {
    auto created = ServerTls::Create(tls, stage_);
    ASSERT_TRUE(created.ok()) << created.status();
    tls_ = *std::move(created);
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", tls_->Credentials(), &port_);
    server_running_ = builder.BuildAndStart();
    ASSERT_NE(server_running_, nullptr);
    ASSERT_GT(port_, 0);
  }

  // A channel of its own (its own subchannel pool: a new TCP connection and
  // TLS handshake, never one shared with an earlier channel).
  std::shared_ptr<grpc::Channel> Channel(const KeyAndCert* client = nullptr) const {
    grpc::SslCredentialsOptions options;
    options.pem_root_certs = server_ca_->cert_pem();
    if (client != nullptr) {
      options.pem_private_key = client->key_pem;
      options.pem_cert_chain = client->cert_pem;
    }
    grpc::ChannelArguments args;
    args.SetSslTargetNameOverride(kServerName);
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    return grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port_),
                                     grpc::SslCredentials(options), args);
  }

  static KeyAndCert ClientCert(const TestCa& ca) {
    CertSpec spec;
    spec.common_name = "client";
    spec.uris = {"spiffe://example.org/client"};
    return ca.Issue(spec);
  }

  static TestCa* server_ca_;
  static TestCa* client_ca_;
  static TestCa* other_ca_;
  std::string dir_;
  std::string stage_;
  KeyAndCert server_;
  std::unique_ptr<ServerTls> tls_;
  std::unique_ptr<grpc::Server> server_running_;
  int port_ = 0;
};

TestCa* ServerTlsTest::server_ca_ = nullptr;
TestCa* ServerTlsTest::client_ca_ = nullptr;
TestCa* ServerTlsTest::other_ca_ = nullptr;

TEST_F(ServerTlsTest, WithoutCertificateTheListenerIsInsecure) {
  auto created = ServerTls::Create(TlsConfig(), stage_);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_FALSE((*created)->enabled());
  ASSERT_NE((*created)->Credentials(), nullptr);
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", (*created)->Credentials(), &port_);
  server_running_ = builder.BuildAndStart();
  ASSERT_NE(server_running_, nullptr);
  auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", port_),
                                     grpc::InsecureChannelCredentials());
  EXPECT_TRUE(Check(channel).status.ok());
  EXPECT_FALSE(std::filesystem::exists(stage_));  // nothing staged
  // Reloading an insecure listener with an insecure config is a no-op.
  EXPECT_TRUE((*created)->Reload(TlsConfig()).ok());
}

TEST_F(ServerTlsTest, ServerTlsServesTheConfiguredCertificate) {
  Start(Config(/*client_ca=*/false, /*require=*/false));
  EXPECT_TRUE(tls_->enabled());
  CheckResult got = Check(Channel());
  ASSERT_TRUE(got.status.ok()) << got.status.error_message();
  EXPECT_EQ(got.peer_cert, server_.cert_pem);
  // A client certificate is not asked for, so any one is fine.
  KeyAndCert stranger = ClientCert(*other_ca_);
  EXPECT_TRUE(Check(Channel(&stranger)).status.ok());
}

TEST_F(ServerTlsTest, RequiredClientCertificateMustComeFromTheClientCa) {
  Start(Config(/*client_ca=*/true, /*require=*/true));
  KeyAndCert client = ClientCert(*client_ca_);
  CheckResult got = Check(Channel(&client));
  ASSERT_TRUE(got.status.ok()) << got.status.error_message();
  EXPECT_EQ(got.peer_cert, server_.cert_pem);
  // No client certificate: the handshake fails.
  EXPECT_EQ(Check(Channel()).status.error_code(), grpc::StatusCode::UNAVAILABLE);
  // A certificate from another CA: the handshake fails.
  KeyAndCert stranger = ClientCert(*other_ca_);
  EXPECT_EQ(Check(Channel(&stranger)).status.error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(ServerTlsTest, OptionalClientCertificateIsVerifiedWhenSent) {
  Start(Config(/*client_ca=*/true, /*require=*/false));
  KeyAndCert client = ClientCert(*client_ca_);
  EXPECT_TRUE(Check(Channel(&client)).status.ok());
  // None at all is allowed (the Authenticator then asks for a bearer token).
  EXPECT_TRUE(Check(Channel()).status.ok());
  KeyAndCert stranger = ClientCert(*other_ca_);
  EXPECT_EQ(Check(Channel(&stranger)).status.error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(ServerTlsTest, StagedCopiesArePrivate) {
  Start(Config(/*client_ca=*/true, /*require=*/false));
  struct stat st;
  ASSERT_EQ(::stat(stage_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(::stat((stage_ + "/current/key.pem").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(ReadAll(stage_ + "/current/key.pem"), server_.key_pem);
  EXPECT_EQ(ReadAll(stage_ + "/current/cert.pem"), server_.cert_pem);
  EXPECT_EQ(ReadAll(stage_ + "/current/client_ca.pem"), client_ca_->cert_pem());
}

TEST_F(ServerTlsTest, ReloadReachesNewConnectionsAndKeepsOpenOnes) {
  Start(Config(/*client_ca=*/true, /*require=*/true));
  KeyAndCert client = ClientCert(*client_ca_);
  auto before = Channel(&client);
  CheckResult first = Check(before);
  ASSERT_TRUE(first.status.ok()) << first.status.error_message();
  ASSERT_EQ(first.peer_cert, server_.cert_pem);

  KeyAndCert renewed = IssueServer("server-2", 2);
  WriteFile(dir_ + "/conf/cert.pem", renewed.cert_pem);
  WriteFile(dir_ + "/conf/key.pem", renewed.key_pem);
  absl::Time reloaded = absl::Now();
  ASSERT_TRUE(tls_->Reload(Config(true, true)).ok());

  bool seen = false;
  while (!seen && absl::Now() - reloaded < absl::Seconds(3)) {
    CheckResult got = Check(Channel(&client));
    ASSERT_TRUE(got.status.ok()) << got.status.error_message();
    seen = got.peer_cert == renewed.cert_pem;
    if (!seen) {
      EXPECT_EQ(got.peer_cert, server_.cert_pem);
      absl::SleepFor(absl::Milliseconds(100));
    }
  }
  EXPECT_TRUE(seen) << "no new connection saw the new certificate within 3 s";
  // The channel opened before still works, on its old connection.
  CheckResult old = Check(before);
  EXPECT_TRUE(old.status.ok()) << old.status.error_message();
  EXPECT_EQ(old.peer_cert, server_.cert_pem);
}

TEST_F(ServerTlsTest, BadReloadKeepsTheStagedCopiesAndTheServedCertificate) {
  Start(Config(/*client_ca=*/true, /*require=*/false));
  std::string staged_key = ReadAll(stage_ + "/current/key.pem");
  std::string staged_cert = ReadAll(stage_ + "/current/cert.pem");
  KeyAndCert renewed = IssueServer("server-2", 2);

  struct Case {
    const char* name;
    std::function<void()> damage;
    absl::StatusCode code;
    std::string field;  // "" for FAILED_PRECONDITION
    std::string path;   // named in the message
  } cases[] = {
      {"key of another certificate",
       [&] {
         WriteFile(dir_ + "/conf/cert.pem", renewed.cert_pem);
         WriteFile(dir_ + "/conf/key.pem", server_.key_pem);
       },
       absl::StatusCode::kInvalidArgument, "tls.key_file", dir_ + "/conf/key.pem"},
      {"cert not PEM",
       [&] {
         WriteFile(dir_ + "/conf/cert.pem", "not a certificate\n");
         WriteFile(dir_ + "/conf/key.pem", renewed.key_pem);
       },
       absl::StatusCode::kInvalidArgument, "tls.cert_file", dir_ + "/conf/cert.pem"},
      {"cert damaged",
       [&] {
         std::string broken = renewed.cert_pem;
         broken[100] = broken[100] == 'A' ? '*' : 'A';
         broken[101] = '*';
         WriteFile(dir_ + "/conf/cert.pem", broken);
         WriteFile(dir_ + "/conf/key.pem", renewed.key_pem);
       },
       absl::StatusCode::kInvalidArgument, "tls.cert_file", dir_ + "/conf/cert.pem"},
      {"key not PEM",
       [&] {
         WriteFile(dir_ + "/conf/cert.pem", renewed.cert_pem);
         WriteFile(dir_ + "/conf/key.pem", "secret-bytes-not-a-key\n");
       },
       absl::StatusCode::kInvalidArgument, "tls.key_file", dir_ + "/conf/key.pem"},
      {"client CA not PEM",
       [&] {
         WriteFile(dir_ + "/conf/cert.pem", renewed.cert_pem);
         WriteFile(dir_ + "/conf/key.pem", renewed.key_pem);
         WriteFile(dir_ + "/conf/client_ca.pem", renewed.key_pem);
       },
       absl::StatusCode::kInvalidArgument, "tls.client_ca_file", dir_ + "/conf/client_ca.pem"},
      {"cert missing",
       [&] {
         WriteFile(dir_ + "/conf/client_ca.pem", client_ca_->cert_pem());
         std::filesystem::remove(dir_ + "/conf/cert.pem");
       },
       absl::StatusCode::kFailedPrecondition, "", dir_ + "/conf/cert.pem"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    c.damage();
    absl::Status s = tls_->Reload(Config(true, false));
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.code(), c.code) << s;
    EXPECT_NE(s.message().find(c.path), absl::string_view::npos) << s;
    EXPECT_EQ(s.message().find("PRIVATE KEY"), absl::string_view::npos) << s;
    EXPECT_EQ(s.message().find("secret-bytes"), absl::string_view::npos) << s;
    if (!c.field.empty()) {
      auto bad = GetBadRequest(s);
      ASSERT_TRUE(bad.has_value()) << s;
      EXPECT_EQ(bad->field_violations(0).field(), c.field);
    }
    EXPECT_EQ(ReadAll(stage_ + "/current/key.pem"), staged_key);
    EXPECT_EQ(ReadAll(stage_ + "/current/cert.pem"), staged_cert);
  }
  // Past a watcher refresh, new connections still get the original.
  absl::SleepFor(absl::Seconds(ServerTls::kRefreshSeconds) + absl::Milliseconds(500));
  CheckResult got = Check(Channel());
  ASSERT_TRUE(got.status.ok()) << got.status.error_message();
  EXPECT_EQ(got.peer_cert, server_.cert_pem);
}

TEST_F(ServerTlsTest, ReloadRefusesWhatNeedsARestart) {
  Start(Config(/*client_ca=*/true, /*require=*/false));
  EXPECT_EQ(tls_->Reload(Config(false, false)).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(tls_->Reload(Config(true, true)).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(tls_->Reload(TlsConfig()).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(tls_->Reload(Config(true, false)).ok());
}

TEST_F(ServerTlsTest, CreateRefusesBadConfigs) {
  struct Case {
    const char* name;
    TlsConfig tls;
    absl::StatusCode code;
    std::string field;
  };
  TlsConfig require_without_ca = Config(false, false);
  require_without_ca.set_require_client_certificate(true);
  TlsConfig cert_only = Config(false, false);
  cert_only.clear_key_file();
  TlsConfig key_only = Config(false, false);
  key_only.clear_cert_file();
  TlsConfig ca_without_tls;
  ca_without_tls.set_client_ca_file(dir_ + "/conf/client_ca.pem");
  TlsConfig missing_ca = Config(true, false);
  missing_ca.set_client_ca_file(dir_ + "/conf/nope.pem");
  Case cases[] = {
      {"require without CA", require_without_ca, absl::StatusCode::kInvalidArgument,
       "tls.require_client_certificate"},
      {"cert without key", cert_only, absl::StatusCode::kInvalidArgument, "tls.key_file"},
      {"key without cert", key_only, absl::StatusCode::kInvalidArgument, "tls.cert_file"},
      {"client CA without TLS", ca_without_tls, absl::StatusCode::kInvalidArgument,
       "tls.client_ca_file"},
      {"client CA unreadable", missing_ca, absl::StatusCode::kFailedPrecondition, ""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    auto got = ServerTls::Create(c.tls, stage_);
    ASSERT_FALSE(got.ok());
    EXPECT_EQ(got.status().code(), c.code) << got.status();
    if (!c.field.empty()) {
      auto bad = GetBadRequest(got.status());
      ASSERT_TRUE(bad.has_value()) << got.status();
      EXPECT_EQ(bad->field_violations(0).field(), c.field);
    }
  }
  // A key that does not match its certificate.
  WriteFile(dir_ + "/conf/key.pem", testing::NewKeyPem());
  auto got = ServerTls::Create(Config(false, false), stage_);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument) << got.status();
  EXPECT_NE(got.status().message().find("does not match"), absl::string_view::npos);
  // Nothing was staged by any of them.
  EXPECT_FALSE(std::filesystem::exists(stage_ + "/current"));
}

}  // namespace
}  // namespace cloudplane::auth
