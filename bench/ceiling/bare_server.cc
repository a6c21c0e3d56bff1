// The reference for bench/grpc_ceiling.py: a gRPC callback server built from
// the same system gRPC as cloudplaned, answering ComputeService.GetInstance
// and ListInstances with canned replies (the bytes cloudplaned sent for the
// same requests, captured by the bench). It does no lookup, no
// authorization and no provider call: what it costs is what gRPC itself
// costs for a reply of that size, the ceiling cloudplane is measured against.
//
//   bare_server --port=N --instance=FILE --list_page=FILE
//
// FILE holds a serialized v1.Instance / v1.ListInstancesResponse. It prints
// "listening on <port>" once it serves.

#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>

#include "cloudplane/v1/compute.grpc.pb.h"

namespace {

namespace v1 = cloudplane::v1;

std::string Flag(int argc, char** argv, const std::string& name) {
  const std::string prefix = "--" + name + "=";
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind(prefix, 0) == 0) return arg.substr(prefix.size());
  }
  return "";
}

template <typename Message>
bool ReadMessage(const std::string& path, Message& out) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  return in.good() || in.eof() ? out.ParseFromString(bytes.str()) : false;
}

class BareCompute final : public v1::ComputeService::CallbackService {
 public:
  BareCompute(v1::Instance instance, v1::ListInstancesResponse page)
      : instance_(std::move(instance)), page_(std::move(page)) {}

  grpc::ServerUnaryReactor* GetInstance(grpc::CallbackServerContext* context,
                                        const v1::GetInstanceRequest*,
                                        v1::Instance* reply) override {
    *reply = instance_;
    auto* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  grpc::ServerUnaryReactor* ListInstances(grpc::CallbackServerContext* context,
                                          const v1::ListInstancesRequest*,
                                          v1::ListInstancesResponse* reply) override {
    *reply = page_;
    auto* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  const v1::Instance instance_;
  const v1::ListInstancesResponse page_;
};

}  // namespace

int main(int argc, char** argv) {
  const std::string port = Flag(argc, argv, "port");
  v1::Instance instance;
  v1::ListInstancesResponse page;
  if (port.empty() || !ReadMessage(Flag(argc, argv, "instance"), instance) ||
      !ReadMessage(Flag(argc, argv, "list_page"), page)) {
    std::cerr << "usage: bare_server --port=N --instance=FILE --list_page=FILE\n";
    return 2;
  }
  BareCompute service(std::move(instance), std::move(page));
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:" + port, grpc::InsecureServerCredentials());
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr) {
    std::cerr << "cannot listen on 127.0.0.1:" << port << "\n";
    return 1;
  }
  std::cout << "listening on " << port << std::endl;
  server->Wait();
  return 0;
}
