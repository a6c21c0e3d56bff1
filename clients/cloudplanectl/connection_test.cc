// MakeChannel's service config, applied by gRPC itself against an in-process
// server that answers UNAVAILABLE a given number of times; the bearer token
// on every call, and where MakeChannel refuses to send one.
#include "clients/cloudplanectl/connection.h"

#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "cloudplane/v1/compute.grpc.pb.h"
#include "gmock/gmock.h"
#include "google/longrunning/operations.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"

namespace cloudplane::ctl {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// CreateInstance fails with `code` for the first `failures` calls, then
// answers with an Operation. Every request it receives is kept.
class FlakyCompute final : public v1::ComputeService::Service {
 public:
  FlakyCompute(int failures, grpc::StatusCode code) : failures_(failures), code_(code) {}

  grpc::Status CreateInstance(grpc::ServerContext*, const v1::CreateInstanceRequest* request,
                              google::longrunning::Operation* op) override {
    absl::MutexLock lock(&mu_);
    received_.push_back(*request);
    if (static_cast<int>(received_.size()) <= failures_) {
      return grpc::Status(code_, "injected failure");
    }
    op->set_name("operations/first");
    return grpc::Status::OK;
  }

  std::vector<v1::CreateInstanceRequest> received() {
    absl::MutexLock lock(&mu_);
    return received_;
  }

 private:
  const int failures_;
  const grpc::StatusCode code_;
  absl::Mutex mu_;
  std::vector<v1::CreateInstanceRequest> received_ ABSL_GUARDED_BY(mu_);
};

class RetryTest : public ::testing::Test {
 protected:
  // Starts the server and returns a stub on a MakeChannel channel to it.
  std::unique_ptr<v1::ComputeService::Stub> Start(int failures, grpc::StatusCode code) {
    service_ = std::make_unique<FlakyCompute>(failures, code);
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    EXPECT_NE(port, 0);
    ConnectionOptions options;
    options.server = absl::StrCat("127.0.0.1:", port);
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = MakeChannel(options);
    EXPECT_TRUE(channel.ok()) << channel.status();
    return v1::ComputeService::NewStub(*channel);
  }

  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown();
  }

  static grpc::Status Create(v1::ComputeService::Stub& stub, google::longrunning::Operation* op) {
    v1::CreateInstanceRequest request;
    request.set_parent("accounts/sandbox");
    request.set_instance_id("web-1");
    request.set_request_id("req-1");
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    return stub.CreateInstance(&context, request, op);
  }

  std::unique_ptr<FlakyCompute> service_;
  std::unique_ptr<grpc::Server> server_;
};

TEST_F(RetryTest, UnavailableIsRetriedWithTheSameRequestId) {
  std::unique_ptr<v1::ComputeService::Stub> stub = Start(2, grpc::StatusCode::UNAVAILABLE);
  google::longrunning::Operation op;
  grpc::Status status = Create(*stub, &op);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(op.name(), "operations/first");
  std::vector<v1::CreateInstanceRequest> received = service_->received();
  ASSERT_EQ(received.size(), 3u);
  for (const v1::CreateInstanceRequest& request : received) {
    EXPECT_EQ(request.request_id(), "req-1");
    EXPECT_EQ(request.SerializeAsString(), received[0].SerializeAsString());
  }
}

TEST_F(RetryTest, GivesUpAfterFiveAttempts) {
  std::unique_ptr<v1::ComputeService::Stub> stub = Start(100, grpc::StatusCode::UNAVAILABLE);
  google::longrunning::Operation op;
  EXPECT_EQ(Create(*stub, &op).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(service_->received().size(), 5u);
}

TEST_F(RetryTest, OtherCodesAreNotRetried) {
  for (grpc::StatusCode code : {grpc::StatusCode::INTERNAL, grpc::StatusCode::ABORTED,
                                grpc::StatusCode::DEADLINE_EXCEEDED}) {
    std::unique_ptr<v1::ComputeService::Stub> stub = Start(1, code);
    google::longrunning::Operation op;
    EXPECT_EQ(Create(*stub, &op).error_code(), code);
    EXPECT_EQ(service_->received().size(), 1u) << code;
    server_->Shutdown();
    server_.reset();
  }
}

// Every service in proto/cloudplane/v1 (read from the protos themselves, so a
// new service cannot be forgotten) and google.longrunning.Operations.
TEST(RetryServiceConfig, NamesEveryApiService) {
  namespace fs = std::filesystem;
  const char* srcdir = getenv("TEST_SRCDIR");
  ASSERT_NE(srcdir, nullptr);
  const fs::path protos = fs::path(srcdir) / "cloudplane" / "proto" / "cloudplane" / "v1";
  std::set<std::string> services = {"google.longrunning.Operations"};
  const std::regex service_line(R"(^service (\w+) \{)");
  for (const fs::directory_entry& entry : fs::directory_iterator(protos)) {
    std::ifstream in(entry.path());
    for (std::string line; std::getline(in, line);) {
      std::smatch match;
      if (std::regex_search(line, match, service_line)) {
        services.insert(absl::StrCat("cloudplane.v1.", match[1].str()));
      }
    }
  }
  EXPECT_GE(services.size(), 9u);
  const std::string config(RetryServiceConfig());
  for (const std::string& service : services) {
    EXPECT_THAT(config, HasSubstr(absl::StrCat("{\"service\": \"", service, "\"}")));
  }
  EXPECT_THAT(config, HasSubstr(R"("retryableStatusCodes": ["UNAVAILABLE"])"));
}

// --- The bearer token ------------------------------------------------------------

constexpr char kToken[] = "cpk_test-token.0123456789";

TEST(IsLoopbackTarget, LoopbackForms) {
  for (const char* target :
       {"127.0.0.1:7070", "127.1.2.3:1", "localhost:7070", "LOCALHOST", "[::1]:7070", "::1",
        "[::ffff:127.0.0.1]:7070", "unix:/run/cloudplane.sock", "unix:///run/cp.sock",
        "unix-abstract:cp", "dns:localhost:7070", "dns:///127.0.0.1:7070",
        "dns://8.8.8.8/localhost:7070", "ipv4:127.0.0.1:1,127.0.0.2:2", "ipv6:[::1]:7070"}) {
    EXPECT_TRUE(IsLoopbackTarget(target)) << target;
  }
}

TEST(IsLoopbackTarget, EverythingElse) {
  for (const char* target :
       {"10.0.0.5:7070", "0.0.0.0:7070", "cloudplane.example.com:443", "localhost.evil.test:1",
        "[2001:db8::1]:7070", "::ffff:10.0.0.1", "dns:///cloudplane.example.com:443",
        "ipv4:127.0.0.1:1,10.0.0.1:2", "ipv4:", "xds:///cloudplane", "passthrough:///127.0.0.1:1",
        "", ":7070", "128.0.0.1:7070"}) {
    EXPECT_FALSE(IsLoopbackTarget(target)) << target;
  }
}

TEST(MakeChannel, RefusesATokenInPlaintextToARemoteServer) {
  ConnectionOptions options;
  options.server = "10.0.0.5:7070";
  options.token = kToken;
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = MakeChannel(options);
  ASSERT_EQ(channel.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(channel.status().message(), HasSubstr("refusing to send the token in plaintext"));
  EXPECT_THAT(channel.status().message(), HasSubstr("--allow_plaintext_token"));
  EXPECT_THAT(channel.status().message(), Not(HasSubstr(kToken)));

  // Over TLS, or when the caller says the path is protected, it goes.
  options.tls = true;
  EXPECT_TRUE(MakeChannel(options).ok());
  options.tls = false;
  options.allow_plaintext_token = true;
  EXPECT_TRUE(MakeChannel(options).ok());
  // Loopback needs neither; no token needs neither.
  options.allow_plaintext_token = false;
  options.server = "127.0.0.1:7070";
  EXPECT_TRUE(MakeChannel(options).ok());
  options.server = "10.0.0.5:7070";
  options.token.clear();
  EXPECT_TRUE(MakeChannel(options).ok());
}

TEST(MakeChannel, RefusesATokenThatIsNotAHeaderValue) {
  for (std::string token : {std::string("two words"), std::string("line\nbreak"),
                            std::string("tab\tinside"), std::string("nul\0x", 5)}) {
    ConnectionOptions options;
    options.server = "127.0.0.1:7070";
    options.token = token;
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = MakeChannel(options);
    ASSERT_EQ(channel.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(channel.status().message(), Not(HasSubstr(token)));
  }
}

// Records the `authorization` entries of every GetInstance and Watch call.
class RecordingService final : public v1::ComputeService::Service {
 public:
  grpc::Status GetInstance(grpc::ServerContext* context, const v1::GetInstanceRequest*,
                           v1::Instance* instance) override {
    Record(*context);
    instance->set_name("accounts/a/instances/i");
    return grpc::Status::OK;
  }

  std::vector<std::vector<std::string>> seen() {
    absl::MutexLock lock(&mu_);
    return seen_;
  }

 private:
  void Record(const grpc::ServerContext& context) {
    std::vector<std::string> values;
    auto [begin, end] = context.client_metadata().equal_range("authorization");
    for (auto it = begin; it != end; ++it) {
      values.emplace_back(it->second.data(), it->second.size());
    }
    absl::MutexLock lock(&mu_);
    seen_.push_back(values);
  }

  absl::Mutex mu_;
  std::vector<std::vector<std::string>> seen_ ABSL_GUARDED_BY(mu_);
};

TEST(MakeChannel, EveryCallCarriesTheBearerTokenOnce) {
  RecordingService service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(port, 0);

  ConnectionOptions options;
  options.server = absl::StrCat("127.0.0.1:", port);
  for (const std::string& token : {std::string(kToken), std::string()}) {
    options.token = token;
    absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = MakeChannel(options);
    ASSERT_TRUE(channel.ok()) << channel.status();
    std::unique_ptr<v1::ComputeService::Stub> stub = v1::ComputeService::NewStub(*channel);
    for (int i = 0; i < 2; ++i) {
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
      v1::Instance instance;
      grpc::Status status = stub->GetInstance(&context, v1::GetInstanceRequest(), &instance);
      ASSERT_TRUE(status.ok()) << status.error_message();
    }
  }
  const std::vector<std::string> with = {absl::StrCat("Bearer ", kToken)};
  const std::vector<std::vector<std::string>> expected = {with, with, {}, {}};
  EXPECT_EQ(service.seen(), expected);
  server->Shutdown();
}

}  // namespace
}  // namespace cloudplane::ctl
