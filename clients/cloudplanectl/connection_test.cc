// MakeChannel's service config, applied by gRPC itself against an in-process
// server that answers UNAVAILABLE a given number of times.
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

}  // namespace
}  // namespace cloudplane::ctl
